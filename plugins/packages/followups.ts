import { principalKey } from '../../core/auth/policy.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { requireCapability } from '../../core/graph/access.ts';
import { pageCost, type Builder } from '../../core/graphql/builder.ts';
import type { Context } from '../../core/graphql/context.ts';
import { conflict, fieldPath, notFound, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import { customerLoader, followUpWhere, storeLoader } from './access.ts';

const STATUSES = ['OPEN', 'OVERDUE', 'DONE', 'ALL'] as const;

export function registerFollowUps(builder: Builder) {
  const Status = builder.enumType('FollowUpTaskStatus', {
    values: STATUSES,
    description: 'OPEN (not done, including overdue), OVERDUE (not done after its due day), DONE, or ALL.',
  });

  builder.prismaNode('FollowUpTask', {
    description:
      'A follow-up call or check after a procedure or a completed course (e.g. day 1, 7, 30, 90). Due on a local date in the ' +
      'store\'s time zone; overdue once that day has ended there.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [followUpWhere(ctx)] }),
    fields: (t) => ({
      title: t.exposeString('title'),
      offsetDays: t.exposeInt('offsetDays'),
      dueOn: t.expose('dueOn', { type: 'Date', description: 'The due date, local to the store.' }),
      dueAt: t.expose('dueAt', { type: 'DateTime', description: 'When the due day ends at the store: overdue from then on.' }),
      overdue: t.boolean({ resolve: (task) => !task.completedAt && task.dueAt.getTime() <= Date.now() }),
      completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
      note: t.exposeString('note', { nullable: true }),
      customer: t.field({ type: 'Customer' as never, nullable: true, resolve: (task, _a, ctx) => customerLoader(ctx).load(task.customerId) as never }),
      store: t.field({ type: 'Store' as never, nullable: true, resolve: (task, _a, ctx) => storeLoader(ctx).load(task.storeId) as never }),
      planStep: t.relation('planStep', { nullable: true, description: 'The plan step it follows (null for a course).' }),
      customerPackage: t.relation('customerPackage', { nullable: true, description: 'The course it follows (null for a plan step).' }),
    }),
  });

  const Filter = builder.inputType('FollowUpTaskFilter', {
    fields: (t) => ({
      storeId: t.globalID(),
      customerId: t.globalID(),
      status: t.field({ type: Status, defaultValue: 'OPEN' }),
      dueBefore: t.field({ type: 'DateTime', description: 'Due (dueAt) before this instant.' }),
    }),
  });

  builder.queryField('followUpTasks', (t) =>
    t.prismaConnection({
      type: 'FollowUpTask',
      cursor: 'id',
      description: 'Follow-up tasks of the caller\'s stores (a customer: their own), soonest due first; open ones by default.',
      args: { filter: t.arg({ type: Filter, required: false }) },
      complexity: (args) => pageCost(args),
      resolve: (query, _root, args, ctx) => {
        const status = args.filter?.status ?? 'OPEN';
        const now = new Date();
        return ctx.db.followUpTask.findMany({
          ...query,
          where: {
            AND: [
              followUpWhere(ctx),
              args.filter?.storeId ? { storeId: args.filter.storeId.id } : {},
              args.filter?.customerId ? { customerId: args.filter.customerId.id } : {},
              args.filter?.dueBefore ? { dueAt: { lt: args.filter.dueBefore } } : {},
              status === 'OPEN' ? { completedAt: null } : status === 'OVERDUE' ? { completedAt: null, dueAt: { lte: now } } : status === 'DONE' ? { completedAt: { not: null } } : {},
            ],
          },
          orderBy: [{ dueAt: 'asc' }, { id: 'asc' }],
        });
      },
    }, { name: 'FollowUpTaskConnection' }, { name: 'FollowUpTaskEdge' }),
  );

  defineMutation(builder, 'completeFollowUpTask', {
    description: 'Marks a follow-up as done, with a note of how the customer is doing (followUps:write).',
    input: (t) => ({ taskId: t.globalID({ required: true }), note: t.string() }),
    payload: (t) => ({
      task: t.prismaField({
        type: 'FollowUpTask',
        nullable: true,
        resolve: (query: object, p: { taskId?: string }, _a: unknown, ctx: Context) =>
          p.taskId ? ctx.db.followUpTask.findFirst({ ...query, where: { AND: [{ id: p.taskId }, followUpWhere(ctx)] } }) : null,
      }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'followUps:write');
      const note = input.note?.trim() || null;
      if (note && note.length > 2000) throw validationError([{ field: fieldPath('note'), message: 'A note is at most 2000 characters' }]);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const task = await tx.followUpTask.findFirst({ where: { AND: [{ id: input.taskId.id }, followUpWhere(ctx)] } });
        if (!task) throw notFound(fieldPath('taskId'), 'Follow-up task');
        const done = await tx.followUpTask.updateMany({ where: { id: task.id, completedAt: null }, data: { completedAt: new Date(), completedBy: principalKey(principal), note } });
        if (done.count === 0) throw conflict('INVALID_STATE', 'The follow-up is already done', fieldPath('taskId'));
        await emit({
          type: 'followUp.completed',
          aggregateType: 'FollowUpTask',
          aggregateId: task.id,
          streamKey: task.customerId,
          payload: { taskId: task.id, customerId: task.customerId, storeId: task.storeId, overdue: task.dueAt.getTime() <= Date.now() },
        });
        return { taskId: task.id };
      });
    },
  });
}
