import { z } from 'zod';
import { principalKey } from '../../core/auth/policy.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { orgWhere, requireCapability } from '../../core/graph/access.ts';
import { moneyFor, toMinorUnits } from '../../core/graph/money.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import { requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { fieldPath, notFound, parseInput, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import { requireChain, serviceLoader, templateWhere } from './access.ts';

export const offsetsSchema = z
  .array(z.number().int().min(0, 'Offsets are 0 to 730 days').max(730, 'Offsets are 0 to 730 days'))
  .max(20, 'At most 20 follow-ups')
  .refine((days) => days.every((day, i) => i === 0 || day > days[i - 1]!), 'Offsets must be distinct and ascending');

export function registerTemplates(builder: Builder) {
  builder.prismaObject('PackageTemplateService', {
    description: 'Sessions of one service in a package template.',
    fields: (t) => ({
      service: t.field({
        type: 'Service' as never,
        nullable: true,
        resolve: (row, _args, ctx) => serviceLoader(ctx).load(row.serviceId) as never,
      }),
      sessions: t.exposeInt('sessions'),
    }),
  });

  builder.prismaNode('PackageTemplate', {
    description: 'A course of sessions over one or more services (疗程卡), with a price and a validity; or a small trial pack.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [templateWhere(ctx)] }),
    fields: (t) => ({
      name: t.exposeString('name'),
      description: t.exposeString('description', { nullable: true }),
      price: t.field({ type: 'Money', resolve: (p, _a, ctx) => moneyFor(ctx, p.priceMinor) }),
      validityMonths: t.exposeInt('validityMonths', { description: 'Valid until the end of the same local day this many months after the sale.' }),
      trial: t.exposeBoolean('trial', { description: 'A trial pack: each customer may buy it once.' }),
      followUpDays: t.exposeIntList('followUpDays', { description: 'Follow-ups (days) scheduled when the course\'s last session is used.' }),
      active: t.exposeBoolean('active'),
      services: t.relation('services', { query: { orderBy: { serviceId: 'asc' } } }),
      sessionsTotal: t.int({
        select: { services: { select: { sessions: true } } },
        resolve: (p) => p.services.reduce((sum, s) => sum + s.sessions, 0),
      }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
    }),
  });

  builder.prismaNode('FollowUpTemplate', {
    description: 'A follow-up schedule, e.g. days 1, 7, 30 and 90 after a procedure.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [orgWhere(ctx)] }),
    fields: (t) => ({
      name: t.exposeString('name'),
      offsetsDays: t.exposeIntList('offsetsDays'),
      active: t.exposeBoolean('active'),
    }),
  });

  builder.queryFields((t) => ({
    packageTemplates: t.prismaField({
      type: ['PackageTemplate'],
      description: 'The organization\'s package templates, by name (customers see the active ones).',
      args: { includeInactive: t.arg.boolean({ required: false, defaultValue: false }) },
      resolve: (query, _root, args, ctx) =>
        ctx.db.packageTemplate.findMany({
          ...query,
          where: { AND: [templateWhere(ctx), args.includeInactive ? {} : { active: true }] },
          orderBy: [{ name: 'asc' }, { id: 'asc' }],
        }),
    }),
    followUpTemplates: t.prismaField({
      type: ['FollowUpTemplate'],
      description: 'Follow-up schedules of the organization (staff only).',
      resolve: (query, _root, _args, ctx) => {
        const principal = requirePrincipal(ctx);
        if (principal.kind === 'CUSTOMER') return [];
        return ctx.db.followUpTemplate.findMany({ ...query, where: { ...orgWhere(ctx), active: true }, orderBy: { name: 'asc' } });
      },
    }),
  }));

  const TemplateServiceInput = builder.inputType('PackageTemplateServiceInput', {
    fields: (t) => ({
      serviceId: t.globalID({ required: true }),
      sessions: t.int({ required: true }),
    }),
  });

  const templatePayload = (t: any) => ({
    template: t.prismaField({
      type: 'PackageTemplate',
      nullable: true,
      resolve: (query: object, p: { templateId?: string }, _a: unknown, ctx: Context) =>
        p.templateId ? ctx.db.packageTemplate.findFirst({ ...query, where: { id: p.templateId, ...templateWhere(ctx) } }) : null,
    }),
  });

  defineMutation(builder, 'createPackageTemplate', {
    description: 'Adds a package template (packages:catalog): sessions per service, a price, a validity in months; optionally a trial pack.',
    input: (t) => ({
      name: t.string({ required: true }),
      description: t.string(),
      price: t.field({ type: 'Decimal', required: true }),
      validityMonths: t.int({ required: true }),
      trial: t.boolean({ defaultValue: false }),
      services: t.field({ type: [TemplateServiceInput], required: true }),
      followUpDays: t.intList({ description: 'Follow-ups after the last session, e.g. [7, 30]. Or name a followUpTemplateId.' }),
      followUpTemplateId: t.globalID(),
    }),
    payload: templatePayload,
    resolve: async (rawInput, ctx) => {
      const principal = requireCapability(ctx, 'packages:catalog');
      await requireChain(ctx);
      const input = parseInput(
        z.object({
          name: z.string().trim().min(1, 'Give a name').max(120),
          description: z.string().trim().max(1000).nullish(),
          validityMonths: z.number().int().min(1, 'Validity is 1 to 120 months').max(120, 'Validity is 1 to 120 months'),
          trial: z.boolean().nullish(),
          services: z
            .array(z.object({ serviceId: z.string(), sessions: z.number().int().min(1, '1 to 100 sessions').max(100, '1 to 100 sessions') }))
            .min(1, 'A package has at least one service')
            .max(20)
            .refine((s) => new Set(s.map((x) => x.serviceId)).size === s.length, 'Each service once'),
          followUpDays: offsetsSchema.nullish(),
        }),
        { ...rawInput, services: rawInput.services.map((s) => ({ serviceId: s.serviceId.id, sessions: s.sessions })) },
      );
      const { currency } = await ctx.platform.orgSettings(principal.orgId);
      const price = toMinorUnits(rawInput.price, currency);
      if (price === null || price < 0 || price > 2_000_000_000) {
        throw validationError([{ field: fieldPath('price'), message: `Price must be a non-negative amount in ${currency}` }]);
      }
      if (input.followUpDays?.length && rawInput.followUpTemplateId) {
        throw validationError([{ field: fieldPath('followUpDays'), message: 'Give followUpDays or followUpTemplateId, not both' }]);
      }
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx) => {
        const ids = input.services.map((s) => s.serviceId);
        const found = await tx.service.findMany({ where: { id: { in: ids }, ...orgWhere(ctx) }, select: { id: true } });
        const missing = ids.findIndex((id) => !found.some((s) => s.id === id));
        if (missing >= 0) throw notFound(fieldPath('services', missing, 'serviceId'), 'Service');
        let followUpDays = input.followUpDays ?? [];
        if (rawInput.followUpTemplateId) {
          const template = await tx.followUpTemplate.findFirst({ where: { id: rawInput.followUpTemplateId.id, ...orgWhere(ctx), active: true } });
          if (!template) throw notFound(fieldPath('followUpTemplateId'), 'Follow-up template');
          followUpDays = template.offsetsDays;
        }
        const template = await tx.packageTemplate.create({
          data: {
            orgId: principal.orgId,
            name: input.name,
            description: input.description ?? null,
            priceMinor: price,
            validityMonths: input.validityMonths,
            trial: input.trial ?? false,
            followUpDays,
            services: { create: input.services.map((s) => ({ serviceId: s.serviceId, sessions: s.sessions })) },
          },
          select: { id: true },
        });
        return { templateId: template.id };
      });
    },
  });

  defineMutation(builder, 'setPackageTemplateActive', {
    description: 'Withdraws a template from sale, or offers it again (packages:catalog). Packages already sold are unaffected.',
    input: (t) => ({ templateId: t.globalID({ required: true }), active: t.boolean({ required: true }) }),
    payload: templatePayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'packages:catalog');
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx) => {
        const updated = await tx.packageTemplate.updateMany({ where: { id: input.templateId.id, ...orgWhere(ctx) }, data: { active: input.active } });
        if (updated.count === 0) throw notFound(fieldPath('templateId'), 'Package template');
        return { templateId: input.templateId.id };
      });
    },
  });

  defineMutation(builder, 'createFollowUpTemplate', {
    description: 'Adds a follow-up schedule (packages:catalog), e.g. days 1, 7, 30, 90 after a procedure.',
    input: (t) => ({ name: t.string({ required: true }), offsetsDays: t.intList({ required: true }) }),
    payload: (t) => ({
      followUpTemplate: t.prismaField({
        type: 'FollowUpTemplate',
        nullable: true,
        resolve: (query: object, p: { followUpTemplateId?: string }, _a: unknown, ctx: Context) =>
          p.followUpTemplateId ? ctx.db.followUpTemplate.findFirst({ ...query, where: { id: p.followUpTemplateId, ...orgWhere(ctx) } }) : null,
      }),
    }),
    resolve: async (rawInput, ctx) => {
      const principal = requireCapability(ctx, 'packages:catalog');
      await requireChain(ctx);
      const input = parseInput(
        z.object({ name: z.string().trim().min(1, 'Give a name').max(120), offsetsDays: offsetsSchema.refine((d) => d.length > 0, 'At least one follow-up') }),
        rawInput,
      );
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx) => {
        const created = await tx.followUpTemplate.create({ data: { orgId: principal.orgId, name: input.name, offsetsDays: input.offsetsDays }, select: { id: true } });
        return { followUpTemplateId: created.id };
      });
    },
  });
}
