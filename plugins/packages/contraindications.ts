import DataLoader from 'dataloader';
import { can, principalKey } from '../../core/auth/policy.ts';
import type { Tx } from '../../core/db/clients.ts';
import type { DomainEvent } from '../../core/events/outbox.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { customerWhere, orgWhere, requireCapability, visitWhere } from '../../core/graph/access.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import { loader, requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { DomainError, fieldPath, notFound, validationError } from '../../core/graphql/errors.ts';
import type { BookingCheck } from '../../core/graph/visit.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import type { HandlerContext } from '../../core/plugin/contract.ts';
import { asQueryError, customerLoader, flagWhere, serviceLoader, visitLoader } from './access.ts';
import type { PackagesConfig } from './config.ts';

export interface Risk {
  customerId: string;
  serviceId: string;
  /** The service's contraindication tags found among the customer's allergies and sensitivities. */
  tags: string[];
  /** The newest acknowledgement still valid that covers every one of these tags. */
  ackId: string | null;
  ackValidUntil: Date | null;
}

/**
 * Services whose contraindication tags match the customer's allergies or sensitivities, with the acknowledgement
 * covering each (valid now, and for every tag that matches now: a newly recorded allergy needs a new one).
 */
export async function contraindicationRisks(tx: Tx, customerId: string, serviceIds: string[]): Promise<Risk[]> {
  if (serviceIds.length === 0) return [];
  const rows = await tx.$queryRaw<{ service_id: string; tags: string[]; ack_id: string | null; ack_valid_until: Date | null }[]>`
    SELECT s.id AS service_id, m.tags, a.id AS ack_id, a.valid_until AS ack_valid_until
      FROM service s
      JOIN skin_profile sp ON sp.customer_id = ${customerId}::uuid
      CROSS JOIN LATERAL (
        SELECT array_agg(tag ORDER BY tag) AS tags FROM (
          SELECT DISTINCT tag FROM unnest(s.contraindication_tags) AS tag
           WHERE tag = ANY(sp.allergies) OR tag = ANY(sp.sensitivities)) t
      ) m
      LEFT JOIN LATERAL (
        SELECT id, valid_until FROM contraindication_ack
         WHERE customer_id = ${customerId}::uuid AND service_id = s.id AND valid_until > now() AND tags @> m.tags
         ORDER BY created_at DESC LIMIT 1
      ) a ON true
     WHERE s.id = ANY(${serviceIds}::uuid[]) AND m.tags IS NOT NULL
     ORDER BY array_position(${serviceIds}::uuid[], s.id)`;
  return rows.map((r) => ({ customerId, serviceId: r.service_id, tags: r.tags, ackId: r.ack_id, ackValidUntil: r.ack_valid_until }));
}

/**
 * visit.booked: a booked service that is contraindicated for the customer and not acknowledged is flagged, once per
 * (visit, service), for staff to resolve before the treatment. bookVisit refuses such bookings (see
 * refuseUnacknowledgedContraindications); this catches those made another way, e.g. while the plugin was off.
 */
export async function flagRiskyBooking(event: DomainEvent, { tx, emit }: HandlerContext<PackagesConfig>) {
  const visit = await tx.visit.findUnique({ where: { id: event.aggregateId }, include: { lines: { where: { kind: 'SERVICE' } } } });
  if (!visit || visit.status !== 'BOOKED') return;
  const risks = await contraindicationRisks(tx, visit.customerId, visit.lines.flatMap((l) => (l.serviceId ? [l.serviceId] : [])));
  const unacknowledged = risks.filter((r) => !r.ackId);
  if (unacknowledged.length === 0) return;
  const flagged = await tx.contraindicationFlag.createManyAndReturn({
    data: unacknowledged.map((r) => ({ orgId: event.orgId, visitId: visit.id, customerId: visit.customerId, storeId: visit.storeId, serviceId: r.serviceId, tags: r.tags })),
    skipDuplicates: true,
    select: { id: true, serviceId: true },
  });
  if (flagged.length === 0) return;
  await emit({
    type: 'contraindication.flagged',
    aggregateType: 'Visit',
    aggregateId: visit.id,
    streamKey: visit.customerId,
    payload: { visitId: visit.id, customerId: visit.customerId, storeId: visit.storeId, serviceIds: flagged.map((f) => f.serviceId) },
  });
}

/**
 * `visit.bookingCheck`: a service contraindicated for the customer is refused until acknowledged, with one
 * warning per service. The matching tags are told only to those who may read health data.
 */
export const refuseUnacknowledgedContraindications: BookingCheck = async ({ tx, ctx, customerId, serviceIds }) => {
  const unacknowledged = (await contraindicationRisks(tx, customerId, serviceIds)).filter((risk) => !risk.ackId);
  if (unacknowledged.length === 0) return;
  const principal = requirePrincipal(ctx);
  const mayReadTags = (principal.kind === 'CUSTOMER' && principal.customerId === customerId) || can(principal, 'customers:health');
  throw new DomainError(
    unacknowledged.map((risk) => ({
      __typename: 'ContraindicationWarningError',
      code: 'CONTRAINDICATION_UNACKNOWLEDGED',
      message: 'This service is contraindicated for the customer: a consultant must acknowledge it before it is booked',
      field: fieldPath('serviceIds', serviceIds.indexOf(risk.serviceId)),
      serviceId: risk.serviceId,
      tags: mayReadTags ? risk.tags : null,
    })),
  );
};

export function registerContraindications(builder: Builder, config: PackagesConfig) {
  const showTags = (ctx: Context, customerId: string) =>
    (ctx.principal?.kind === 'CUSTOMER' && ctx.principal.customerId === customerId) || can(ctx.principal, 'customers:health');

  const Warning = builder.objectRef<Risk>('ContraindicationWarning').implement({
    description: 'A service contraindicated for the customer: its tags match their allergies or sensitivities.',
    fields: (t) => ({
      service: t.field({ type: 'Service' as never, nullable: true, resolve: (r, _a, ctx) => serviceLoader(ctx).load(r.serviceId) as never }),
      tags: t.stringList({
        nullable: true,
        description: 'The matching tags (health data: null for roles without customers:health — ask a consultant).',
        resolve: (r, _a, ctx) => (showTags(ctx, r.customerId) ? r.tags : null),
      }),
      acknowledged: t.boolean({ description: 'Staff acknowledged this risk, and the acknowledgement still covers it.', resolve: (r) => r.ackId !== null }),
      acknowledgedUntil: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.ackValidUntil }),
    }),
  });

  const Check = builder.objectRef<{ risks: Risk[] }>('ContraindicationCheck').implement({
    description: 'The result of checking services against a customer\'s allergies and sensitivities.',
    fields: (t) => ({
      warnings: t.field({ type: [Warning], resolve: (c) => c.risks }),
      acknowledgementRequired: t.boolean({
        description: 'True while a warning is not acknowledged: a consultant must acknowledge it before the booking.',
        resolve: (c) => c.risks.some((r) => r.ackId === null),
      }),
    }),
  });

  const FlagStatus = builder.enumType('ContraindicationFlagStatus', { values: ['OPEN', 'RESOLVED'] as const });
  builder.prismaNode('ContraindicationFlag', {
    description: 'A booking of a contraindicated service made without an acknowledgement; resolved when staff acknowledge it.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [flagWhere(ctx)] }),
    fields: (t) => ({
      status: t.expose('status', { type: FlagStatus }),
      visit: t.field({ type: 'Visit' as never, nullable: true, resolve: (f, _a, ctx) => visitLoader(ctx).load(f.visitId) as never }),
      customer: t.field({ type: 'Customer' as never, nullable: true, resolve: (f, _a, ctx) => customerLoader(ctx).load(f.customerId) as never }),
      service: t.field({ type: 'Service' as never, nullable: true, resolve: (f, _a, ctx) => serviceLoader(ctx).load(f.serviceId) as never }),
      tags: t.stringList({ nullable: true, resolve: (f, _a, ctx) => (showTags(ctx, f.customerId) ? f.tags : null) }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
      resolvedAt: t.expose('resolvedAt', { type: 'DateTime', nullable: true }),
    }),
  });

  builder.queryField('checkContraindications', (t) =>
    t.field({
      type: Check,
      description:
        'Checks services against the customer\'s allergies and sensitivities before booking (bookVisit itself does not). A warning ' +
        'not yet acknowledged needs acknowledgeContraindications first; a booking made without it is flagged.',
      args: { customerId: t.arg.globalID({ required: true }), serviceIds: t.arg.globalIDList({ required: true }) },
      resolve: (_root, args, ctx) =>
        asQueryError(async () => {
          requirePrincipal(ctx);
          const serviceIds = [...new Set(args.serviceIds.map((id) => id.id))];
          if (serviceIds.length === 0 || serviceIds.length > 20) throw validationError([{ field: ['serviceIds'], message: 'Check 1 to 20 services' }]);
          const customer = await ctx.db.customer.findFirst({ where: { AND: [{ id: args.customerId.id }, customerWhere(ctx)] }, select: { id: true } });
          if (!customer) throw notFound(['customerId'], 'Customer');
          const services = await ctx.db.service.findMany({ where: { id: { in: serviceIds }, ...orgWhere(ctx) }, select: { id: true } });
          if (services.length !== serviceIds.length) throw notFound(['serviceIds'], 'Service');
          return { risks: await contraindicationRisks(ctx.db as unknown as Tx, customer.id, serviceIds) };
        }),
    }),
  );

  builder.queryField('contraindicationFlags', (t) =>
    t.prismaField({
      type: ['ContraindicationFlag'],
      description: 'Flagged bookings at the caller\'s stores, oldest first (open ones by default).',
      args: {
        storeId: t.arg.globalID({ required: false }),
        status: t.arg({ type: FlagStatus, required: false, defaultValue: 'OPEN' }),
        first: t.arg.int({ required: false, defaultValue: 50 }),
      },
      resolve: (query, _root, args, ctx) =>
        ctx.db.contraindicationFlag.findMany({
          ...query,
          where: { AND: [flagWhere(ctx), args.storeId ? { storeId: args.storeId.id } : {}, { status: args.status ?? 'OPEN' }] },
          orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
          take: Math.min(Math.max(args.first ?? 50, 1), 200),
        }),
    }),
  );

  builder.prismaObjectField('Visit', 'contraindicationFlags', (t) =>
    t.field({
      type: ['ContraindicationFlag' as never],
      description: 'Contraindicated services on this booking that were booked without an acknowledgement.',
      resolve: (visit, _a, ctx) =>
        loader(ctx, 'Visit.contraindicationFlags', () =>
          new DataLoader<string, unknown[]>(async (visitIds) => {
            const rows = await ctx.db.contraindicationFlag.findMany({ where: { AND: [flagWhere(ctx), { visitId: { in: [...visitIds] } }] }, orderBy: { createdAt: 'asc' } });
            return visitIds.map((id) => rows.filter((r) => r.visitId === id));
          }),
        ).load(visit.id) as never,
    }),
  );

  defineMutation(builder, 'acknowledgeContraindications', {
    description:
      'Records that a consultant reviewed the contraindications of services for a customer (contraindications:acknowledge), ' +
      `valid for ${config.acknowledgementValidDays} days and for the tags matching now. Resolves open flags on the customer's bookings of those services.`,
    input: (t) => ({
      customerId: t.globalID({ required: true }),
      serviceIds: t.globalIDList({ required: true }),
      visitId: t.globalID({ description: 'The booking this is for, if already made.' }),
      note: t.string({ description: 'What was agreed, e.g. patch test done, customer informed.' }),
    }),
    payload: (t) => ({
      check: t.field({ type: Check, nullable: true, resolve: (p: { risks?: Risk[] }) => (p.risks ? { risks: p.risks } : null) }),
      resolvedFlags: t.int({ nullable: true, resolve: (p: { resolvedFlags?: number }) => p.resolvedFlags ?? null }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'contraindications:acknowledge');
      const serviceIds = [...new Set(input.serviceIds.map((id) => id.id))];
      const note = input.note?.trim() || null;
      const issues: { field: string[]; message: string }[] = [];
      if (serviceIds.length === 0 || serviceIds.length > 20) issues.push({ field: fieldPath('serviceIds'), message: 'Acknowledge 1 to 20 services' });
      if (note && note.length > 1000) issues.push({ field: fieldPath('note'), message: 'A note is at most 1000 characters' });
      if (issues.length) throw validationError(issues);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const customer = await tx.customer.findFirst({ where: { AND: [{ id: input.customerId.id }, customerWhere(ctx)] }, select: { id: true } });
        if (!customer) throw notFound(fieldPath('customerId'), 'Customer');
        const services = await tx.service.findMany({ where: { id: { in: serviceIds }, ...orgWhere(ctx) }, select: { id: true } });
        const missing = serviceIds.findIndex((id) => !services.some((s) => s.id === id));
        if (missing >= 0) throw notFound(fieldPath('serviceIds', missing), 'Service');
        if (input.visitId) {
          const visit = await tx.visit.findFirst({ where: { AND: [{ id: input.visitId.id, customerId: customer.id }, visitWhere(ctx)] }, select: { id: true } });
          if (!visit) throw notFound(fieldPath('visitId'), 'Visit of this customer');
        }
        const risks = await contraindicationRisks(tx, customer.id, serviceIds);
        if (risks.length === 0) {
          throw validationError([{ field: fieldPath('serviceIds'), message: 'None of these services is contraindicated for the customer' }]);
        }
        const validUntil = new Date(Date.now() + config.acknowledgementValidDays * 86_400_000);
        let resolvedFlags = 0;
        for (const risk of risks) {
          const ack = await tx.contraindicationAck.create({
            data: { orgId: principal.orgId, customerId: customer.id, serviceId: risk.serviceId, tags: risk.tags, visitId: input.visitId?.id ?? null, note, acknowledgedBy: principalKey(principal), validUntil },
            select: { id: true },
          });
          // Open flags of this customer's upcoming bookings of the service (at the caller's stores).
          const resolved = await tx.contraindicationFlag.updateMany({
            where: {
              AND: [
                flagWhere(ctx),
                { customerId: customer.id, serviceId: risk.serviceId, status: 'OPEN' },
                input.visitId ? { visitId: input.visitId.id } : {},
              ],
            },
            data: { status: 'RESOLVED', resolvedAt: new Date(), resolvedBy: principalKey(principal), ackId: ack.id },
          });
          resolvedFlags += resolved.count;
        }
        await emit({
          type: 'contraindication.acknowledged',
          aggregateType: 'Customer',
          aggregateId: customer.id,
          streamKey: customer.id,
          payload: { customerId: customer.id, serviceIds: risks.map((r) => r.serviceId), visitId: input.visitId?.id ?? null, resolvedFlags },
        });
        return { risks: await contraindicationRisks(tx, customer.id, serviceIds), resolvedFlags };
      });
    },
  });
}
