import { GraphQLError } from 'graphql';
import { z } from 'zod';
import { can, principalKey } from '../../core/auth/policy.ts';
import type { Prisma } from '../../core/db/generated/client.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { assertStoreInScope, customerWhere, orgWhere, requireCapability, visitWhere } from '../../core/graph/access.ts';
import { organizationEvents } from '../../core/graph/subscriptions.ts';
import { pageCost, type Builder } from '../../core/graphql/builder.ts';
import { requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { conflict, fieldPath, notFound, parseInput } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import type { DomainEvent } from '../../core/events/outbox.ts';
import { asQuery, byId, CAPABILITIES, careTaskWhere } from './access.ts';
import { taskEvent } from './care.ts';

const KINDS = ['WIN_BACK', 'BIRTHDAY', 'REPURCHASE', 'FEEDBACK', 'FOLLOW_UP'] as const;
const STATUSES = ['OPEN', 'SNOOZED', 'DONE', 'DISMISSED'] as const;
const ACTIONS = ['CREATED', 'SNOOZED', 'REOPENED', 'COMPLETED', 'DISMISSED', 'ASSIGNED'] as const;
const MAX_SNOOZE_DAYS = 90;

export function registerCare(builder: Builder) {
  const Kind = builder.enumType('CareTaskKind', {
    values: KINDS,
    description:
      'WIN_BACK: no visit in churnDays (due within 72 hours); BIRTHDAY: the birthday month; REPURCHASE: a service\'s ' +
      'repurchase cycle comes round; FEEDBACK: within 24 hours of a visit; FOLLOW_UP: within a week of a visit.',
  });
  const Status = builder.enumType('CareTaskStatus', { values: STATUSES, description: 'OPEN → DONE or DISMISSED; SNOOZED until a time, then OPEN again.' });
  const Action = builder.enumType('CareTaskAction', { values: ACTIONS });

  builder.prismaObject('InsightsCareTaskLog', {
    name: 'CareTaskLogEntry',
    description: 'What happened to a care task, by whom and why (history, never changed).',
    fields: (t) => ({
      action: t.expose('action', { type: Action }),
      reason: t.exposeString('reason', { nullable: true }),
      snoozedUntil: t.expose('snoozedUntil', { type: 'DateTime', nullable: true }),
      actor: t.exposeString('actor', { description: 'staff:<id>, plugin:insights, …' }),
      at: t.expose('at', { type: 'DateTime' }),
    }),
  });

  builder.prismaNode('InsightsCareTask', {
    name: 'CareTask',
    description:
      'Something a store\'s staff should do for a customer, generated once per (kind, customer, period). Assigned to the ' +
      'customer\'s consultant, at a store; store-bound staff see their stores\' tasks and those assigned to them.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [careTaskWhere(ctx)] }),
    fields: (t) => ({
      kind: t.expose('kind', { type: Kind }),
      status: t.expose('status', { type: Status }),
      title: t.exposeString('title'),
      dueAt: t.expose('dueAt', { type: 'DateTime' }),
      overdue: t.boolean({ description: 'Open and past its due time.', resolve: (task) => task.status === 'OPEN' && task.dueAt.getTime() < Date.now() }),
      snoozedUntil: t.expose('snoozedUntil', { type: 'DateTime', nullable: true }),
      resolution: t.exposeString('resolution', { nullable: true, description: 'The reason given when it was completed or dismissed.' }),
      resolvedAt: t.expose('resolvedAt', { type: 'DateTime', nullable: true }),
      resolvedBy: t.exposeString('resolvedBy', { nullable: true }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
      updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
      customer: t.prismaField({
        type: 'Customer',
        nullable: true,
        resolve: (query, task, _a, ctx) => byId(ctx, 'customer', query, customerWhere(ctx), task.customerId) as never,
      }),
      store: t.prismaField({
        type: 'Store',
        nullable: true,
        resolve: (query, task, _a, ctx) => (task.storeId ? byId(ctx, 'store', query, orgWhere(ctx), task.storeId) : null) as never,
      }),
      assignee: t.prismaField({
        type: 'Staff',
        nullable: true,
        description: 'The customer\'s consultant; null when the task is for the store\'s team.',
        resolve: (query, task, _a, ctx) => (task.assigneeId ? byId(ctx, 'staff', query, orgWhere(ctx), task.assigneeId) : null) as never,
      }),
      visit: t.prismaField({
        type: 'Visit',
        nullable: true,
        description: 'The visit it follows up (null when the caller may not see that visit).',
        resolve: (query, task, _a, ctx) => (task.visitId ? byId(ctx, 'visit', query, visitWhere(ctx), task.visitId) : null) as never,
      }),
      service: t.prismaField({
        type: 'Service',
        nullable: true,
        resolve: (query, task, _a, ctx) => (task.serviceId ? byId(ctx, 'service', query, orgWhere(ctx), task.serviceId) : null) as never,
      }),
      log: t.relation('log', { query: { orderBy: { id: 'asc' } } }),
    }),
  });

  const Filter = builder.inputType('CareTaskFilter', {
    fields: (t) => ({
      storeId: t.globalID(),
      assignedToMe: t.boolean({ description: 'Only tasks assigned to the calling staff member.' }),
      assigneeId: t.globalID(),
      customerId: t.globalID(),
      kinds: t.field({ type: [Kind] }),
      statuses: t.field({ type: [Status], description: 'Default: OPEN.' }),
      dueBefore: t.field({ type: 'DateTime' }),
    }),
  });

  builder.queryField('careTasks', (t) =>
    t.prismaConnection(
      {
        type: 'InsightsCareTask',
        cursor: 'id',
        description: 'Care tasks the caller can see, soonest due first.',
        args: { filter: t.arg({ type: Filter, required: false }) },
        complexity: (args) => pageCost(args),
        resolve: (query, _root, args, ctx) =>
          asQuery(async () => {
            const principal = requireCapability(ctx, CAPABILITIES.careRead);
            const f = args.filter;
            const and: Prisma.InsightsCareTaskWhereInput[] = [careTaskWhere(ctx), { status: { in: f?.statuses?.length ? f.statuses : ['OPEN'] } }];
            if (f?.storeId) and.push({ storeId: f.storeId.id });
            if (f?.assigneeId) and.push({ assigneeId: f.assigneeId.id });
            if (f?.assignedToMe) and.push({ assigneeId: principal.kind === 'STAFF' ? principal.staffId : '00000000-0000-0000-0000-000000000000' });
            if (f?.customerId) and.push({ customerId: f.customerId.id });
            if (f?.kinds?.length) and.push({ kind: { in: f.kinds } });
            if (f?.dueBefore) and.push({ dueAt: { lt: f.dueBefore } });
            return ctx.db.insightsCareTask.findMany({ ...query, where: { AND: and }, orderBy: [{ dueAt: 'asc' }, { id: 'asc' }] });
          }),
      },
      { name: 'CareTaskConnection' },
      { name: 'CareTaskEdge' },
    ),
  );

  const payload = (t: any) => ({
    task: t.prismaField({
      type: 'InsightsCareTask',
      nullable: true,
      resolve: (query: object, p: { taskId?: string }, _a: unknown, ctx: Context) =>
        p.taskId ? ctx.db.insightsCareTask.findFirst({ ...query, where: { id: p.taskId, ...careTaskWhere(ctx) } }) : null,
    }),
  });

  const reasonSchema = z.string().trim().min(1, 'Give a reason').max(500);

  /** One transition of a visible, unresolved task, with its log line and event, in one transaction. */
  async function transition(
    ctx: Context,
    taskId: string,
    action: 'COMPLETED' | 'DISMISSED' | 'SNOOZED',
    reason: string,
    snoozedUntil: Date | null,
  ) {
    const principal = requireCapability(ctx, CAPABILITIES.careWork);
    const actor = principalKey(principal);
    return inTransaction(ctx.platform, ctx.db, principal.orgId, actor, async (tx, emit) => {
      // Row lock first: two people acting on one task act one after the other.
      const [locked] = await tx.$queryRaw<{ id: string }[]>`
        SELECT id FROM insights_care_task WHERE id = ${taskId}::uuid AND org_id = ${principal.orgId}::uuid FOR UPDATE`;
      const task = locked ? await tx.insightsCareTask.findFirst({ where: { id: taskId, ...careTaskWhere(ctx) } }) : null;
      if (!task) throw notFound(fieldPath('taskId'), 'Care task');
      if (task.status !== 'OPEN' && task.status !== 'SNOOZED') {
        throw conflict('INVALID_STATE', `The task is already ${task.status === 'DONE' ? 'done' : 'dismissed'}`, fieldPath('taskId'));
      }
      const now = new Date();
      const status = action === 'COMPLETED' ? 'DONE' : action === 'DISMISSED' ? 'DISMISSED' : 'SNOOZED';
      await tx.insightsCareTask.update({
        where: { id: taskId },
        data:
          status === 'SNOOZED'
            ? { status, snoozedUntil, updatedAt: now }
            : { status, snoozedUntil: null, resolution: reason, resolvedAt: now, resolvedBy: actor, updatedAt: now },
      });
      await tx.insightsCareTaskLog.create({ data: { orgId: principal.orgId, taskId, action, reason, snoozedUntil, actor } });
      await emit(
        taskEvent(task, `careTask.${action === 'COMPLETED' ? 'completed' : action === 'DISMISSED' ? 'dismissed' : 'snoozed'}`, {
          reason,
          ...(snoozedUntil ? { snoozedUntil: snoozedUntil.toISOString() } : {}),
        }),
      );
      return { taskId };
    });
  }

  defineMutation(builder, 'completeCareTask', {
    description: 'Marks an open or snoozed care task done, with what was done (care:work).',
    input: (t) => ({ taskId: t.globalID({ required: true }), reason: t.string({ required: true, description: 'What was done.' }) }),
    payload,
    resolve: async (input, ctx) => {
      const { reason } = parseInput(z.object({ reason: reasonSchema }), input);
      return transition(ctx, input.taskId.id, 'COMPLETED', reason, null);
    },
  });

  defineMutation(builder, 'dismissCareTask', {
    description: 'Dismisses an open or snoozed care task, with a reason (care:work).',
    input: (t) => ({ taskId: t.globalID({ required: true }), reason: t.string({ required: true }) }),
    payload,
    resolve: async (input, ctx) => {
      const { reason } = parseInput(z.object({ reason: reasonSchema }), input);
      return transition(ctx, input.taskId.id, 'DISMISSED', reason, null);
    },
  });

  defineMutation(builder, 'snoozeCareTask', {
    description: `Puts a care task aside until a later time (at most ${MAX_SNOOZE_DAYS} days ahead), with a reason; it opens again then.`,
    input: (t) => ({
      taskId: t.globalID({ required: true }),
      until: t.field({ type: 'DateTime', required: true }),
      reason: t.string({ required: true }),
    }),
    payload,
    resolve: async (input, ctx) => {
      const { reason, until } = parseInput(
        z.object({
          reason: reasonSchema,
          until: z
            .date()
            .refine((d) => d.getTime() > Date.now(), 'Snooze until a future time')
            .refine((d) => d.getTime() <= Date.now() + MAX_SNOOZE_DAYS * 86_400_000, `At most ${MAX_SNOOZE_DAYS} days ahead`),
        }),
        input,
      );
      return transition(ctx, input.taskId.id, 'SNOOZED', reason, until);
    },
  });

  const CareTaskChange = builder.objectRef<DomainEvent>('CareTaskChange').implement({
    description: 'A care task was created for a store.',
    fields: (t) => ({
      type: t.exposeString('type'),
      occurredAt: t.field({ type: 'DateTime', resolve: (e) => new Date(e.occurredAt) }),
      task: t.prismaField({
        type: 'InsightsCareTask',
        nullable: true,
        resolve: (query, event, _a, ctx) => ctx.db.insightsCareTask.findFirst({ ...query, where: { id: event.aggregateId, ...careTaskWhere(ctx) } }),
      }),
    }),
  });

  builder.subscriptionField('careTaskCreated', (t) =>
    t.field({
      type: CareTaskChange,
      description: 'New care tasks at a store, for its staff (care:read and the store in scope).',
      args: { storeId: t.arg.globalID({ required: true }) },
      subscribe: async (_root, args, ctx) => {
        const principal = requirePrincipal(ctx);
        if (!can(principal, CAPABILITIES.careRead)) throw new GraphQLError('Requires the care:read permission', { extensions: { code: 'FORBIDDEN' } });
        const storeId = args.storeId.id;
        let visible = true;
        try {
          assertStoreInScope(principal, storeId, ['storeId']);
        } catch {
          visible = false;
        }
        // Another store, another organization's or an unknown one: refused alike.
        if (!visible || !(await ctx.db.store.findFirst({ where: { id: storeId, ...orgWhere(ctx) }, select: { id: true } }))) {
          throw new GraphQLError('Store not found', { extensions: { code: 'NOT_FOUND' } });
        }
        return organizationEvents(ctx, (event) => event.type === 'careTask.created' && event.payload.storeId === storeId);
      },
      resolve: (event: DomainEvent, _args, ctx) => {
        ctx.loaders.clear();
        return event;
      },
    }),
  );

}
