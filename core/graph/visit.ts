import DataLoader from 'dataloader';
import { queryFromInfo } from '@pothos/plugin-prisma';
import { z } from 'zod';
import { Prisma, type Visit as VisitRow } from '../db/generated/client.ts';
import { OMITTED_COLUMNS, type Tx } from '../db/clients.ts';
import { principalKey } from '../auth/policy.ts';
import type { Principal } from '../auth/principal.ts';
import { pageCost, type Builder } from '../graphql/builder.ts';
import { loader, requirePrincipal, type Context } from '../graphql/context.ts';
import { conflict, fieldPath, notFound, parseInput, pgErrorCode, validationError } from '../graphql/errors.ts';
import { defineMutation } from '../graphql/mutation.ts';
import { selectsColumnsOnly } from '../graphql/selection.ts';
import { inTransaction, type Emit } from '../events/outbox.ts';
import { assertStoreInScope, customerWhere, orgWhere, requireCapability, visitWhere } from './access.ts';
import { idempotent } from './idempotency.ts';
import { moneyFor, toMinorUnits } from './money.ts';

const VISIT_STATUSES = ['BOOKED', 'CHECKED_IN', 'COMPLETED', 'CANCELLED', 'NO_SHOW', 'REFUNDED'] as const;
type VisitStatus = (typeof VISIT_STATUSES)[number];

/**
 * Extension point: a plugin may refuse a booking before it is made by throwing a DomainError (the packages plugin
 * refuses services contraindicated for the customer until staff acknowledge them).
 */
export const BOOKING_CHECK = 'visit.bookingCheck';
export type BookingCheck = (args: { tx: Tx; ctx: Context; customerId: string; storeId: string; serviceIds: string[] }) => Promise<void>;

/** Open visits hold their staff member's time; the database refuses overlaps (visit_staff_no_overlap). */
const EARLIEST_BOOKING_SLACK_MS = 15 * 60_000;
const LATEST_BOOKING_MS = 366 * 24 * 3600_000;

interface VisitPage {
  visits: VisitRow[];
  hasNextPage: boolean;
}

/**
 * The visit's columns under their Prisma field names, so a raw row reads like one Prisma returns; without those
 * Prisma omits (the signature: see `visitSignatures`).
 */
const VISIT_COLUMNS = Prisma.raw(
  Object.keys(Prisma.VisitScalarFieldEnum)
    .filter((field) => !(field in OMITTED_COLUMNS.visit))
    .map((field) => {
      const column = field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
      if (field === 'status') return 'status::text AS status';
      return column === field ? column : `${column} AS "${field}"`;
    })
    .join(', '),
);

function encodeCursor(start: Date, id: string): string {
  return Buffer.from(JSON.stringify([start.toISOString(), id])).toString('base64url');
}

/** A cursor is encoded only when it is asked for: lists of customers with their visits rarely ask (bench (b): 2% of CPU). */
class VisitEdge<Node extends { id: string; scheduledStart: Date }> {
  constructor(readonly node: Node) {}
  get cursor(): string {
    return encodeCursor(this.node.scheduledStart, this.node.id);
  }
}

function decodeCursor(cursor: string): { start: Date; id: string } | null {
  try {
    const [start, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [string, string];
    const date = new Date(start);
    return Number.isNaN(date.getTime()) || !/^[0-9a-f-]{36}$/.test(id) ? null : { start: date, id };
  } catch {
    return null;
  }
}

/**
 * Newest visits of many customers in one statement, limited per customer in SQL (a LATERAL join): a page
 * of 5 reads 5 rows per customer, however many visits each has. `hasNextPage` is computed in the database
 * from the one extra row the window sees, which is never sent.
 */
async function loadVisitPages(
  ctx: Context,
  customerIds: readonly string[],
  options: { first: number; after: { start: Date; id: string } | null; statuses: VisitStatus[] | null },
): Promise<Map<string, VisitPage>> {
  const principal = requirePrincipal(ctx);
  // This raw query must confine rows exactly as visitWhere does: a caller without visits:read gets an
  // impossible id filter there (so nothing here), a customer only their own visits, store-bound staff their stores.
  const where = visitWhere(ctx);
  if (where.id) return new Map();
  const visible = where.customerId ? customerIds.filter((id) => id === where.customerId) : customerIds;
  const stores = (where.storeId as { in: string[] } | undefined)?.in ?? null;
  const rows = await ctx.db.$queryRaw<(VisitRow & { pagePosition: bigint; pageHasMore: boolean })[]>(Prisma.sql`
    SELECT * FROM (
      SELECT v.*,
             row_number() OVER (PARTITION BY c.id ORDER BY v."scheduledStart" DESC, v.id DESC) AS "pagePosition",
             count(*) OVER (PARTITION BY c.id) > ${options.first} AS "pageHasMore"
      FROM unnest(${visible as string[]}::uuid[]) AS c(id)
      CROSS JOIN LATERAL (
        SELECT ${VISIT_COLUMNS} FROM visit
        WHERE customer_id = c.id AND org_id = ${principal.orgId}::uuid
          AND (${stores}::uuid[] IS NULL OR store_id = ANY(${stores}::uuid[]))
          AND (${options.statuses}::visit_status[] IS NULL OR status = ANY(${options.statuses}::visit_status[]))
          AND (${options.after?.start ?? null}::timestamptz IS NULL
               OR (scheduled_start, id) < (${options.after?.start ?? null}::timestamptz, ${options.after?.id ?? null}::uuid))
        ORDER BY scheduled_start DESC, id DESC
        LIMIT ${options.first + 1}
      ) v
    ) page
    WHERE page."pagePosition" <= ${options.first}
    ORDER BY page."customerId", page."pagePosition"`);
  const pages = new Map<string, VisitPage>();
  // The rows keep their two page columns: copies without them took 150 kB a request for 50 customers' visits.
  for (const visit of rows) {
    const page = pages.get(visit.customerId) ?? { visits: [], hasNextPage: visit.pageHasMore };
    page.visits.push(visit);
    pages.set(visit.customerId, page);
  }
  return pages;
}

/**
 * Signatures of the visits a query shows them for, in one statement. A signature image can be 300 kB, so Prisma
 * omits the column from every other read of a visit (`OMITTED_COLUMNS` in core/db/clients.ts): lists never carry it.
 */
function visitSignatures(ctx: Context) {
  return loader(ctx, 'Visit.signature', () =>
    new DataLoader<string, unknown>(async (visitIds) => {
      const rows = await ctx.db.visit.findMany({ where: { id: { in: [...visitIds] } }, select: { id: true, signature: true } });
      const byId = new Map(rows.map((row) => [row.id, row.signature]));
      return visitIds.map((id) => byId.get(id) ?? null);
    }),
  );
}

export function registerVisit(builder: Builder) {
  const VisitStatusEnum = builder.enumType('VisitStatus', {
    values: VISIT_STATUSES,
    description: 'BOOKED → CHECKED_IN → COMPLETED (→ REFUNDED), or CANCELLED / NO_SHOW.',
  });
  const LineItemKind = builder.enumType('LineItemKind', { values: ['SERVICE', 'PRODUCT'] as const });

  const ServiceReading = builder.objectRef<{ metric: string; before: string | null; after: string | null; unit: string | null }>('ServiceReading').implement({
    description: 'A measurement taken during the service, e.g. skin moisture 42 → 55 (%).',
    fields: (t) => ({
      metric: t.exposeString('metric'),
      before: t.field({ type: 'Decimal', nullable: true, resolve: (r) => r.before }),
      after: t.field({ type: 'Decimal', nullable: true, resolve: (r) => r.after }),
      unit: t.exposeString('unit', { nullable: true }),
    }),
  });

  const Signature = builder.objectRef<{ signerName: string; signedAt: string; imageDataUrl: string }>('Signature').implement({
    description: 'The customer\'s confirmation of the service (电子签名).',
    fields: (t) => ({
      signerName: t.exposeString('signerName'),
      signedAt: t.field({ type: 'DateTime', resolve: (s) => new Date(s.signedAt) }),
      imageDataUrl: t.exposeString('imageDataUrl', { description: 'data:image/png or data:image/svg+xml URL.' }),
    }),
  });

  builder.prismaObject('VisitLine', {
    name: 'VisitLineItem',
    description: 'A service or product on a visit, with its amount in the organization\'s currency.',
    fields: (t) => ({
      kind: t.expose('kind', { type: LineItemKind }),
      description: t.exposeString('description'),
      quantity: t.exposeInt('quantity'),
      unitPrice: t.field({ type: 'Money', resolve: (l, _a, ctx) => moneyFor(ctx, l.unitPriceMinor) as never }),
      discount: t.field({ type: 'Money', resolve: (l, _a, ctx) => moneyFor(ctx, l.discountMinor) as never }),
      amount: t.field({ type: 'Money', resolve: (l, _a, ctx) => moneyFor(ctx, l.amountMinor) as never }),
      service: t.relation('service', { nullable: true }),
      product: t.relation('product', { nullable: true }),
      staff: t.relation('staff', { nullable: true, description: 'Who performed or sold it.' }),
    }),
  });

  const Visit = builder.prismaNode('Visit', {
    description: 'A booking and, once completed, the service record (到店 / 服务记录).',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [visitWhere(ctx)] }),
    fields: (t) => ({
      status: t.expose('status', { type: VisitStatusEnum }),
      store: t.relation('store'),
      customer: t.relation('customer'),
      staff: t.relation('staff', { nullable: true, description: 'The beautician holding the time slot.' }),
      scheduledStart: t.expose('scheduledStart', { type: 'DateTime' }),
      scheduledEnd: t.expose('scheduledEnd', { type: 'DateTime' }),
      checkedInAt: t.expose('checkedInAt', { type: 'DateTime', nullable: true }),
      completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
      cancelledAt: t.expose('cancelledAt', { type: 'DateTime', nullable: true }),
      cancelReason: t.exposeString('cancelReason', { nullable: true }),
      refundedAt: t.expose('refundedAt', { type: 'DateTime', nullable: true }),
      refundReason: t.exposeString('refundReason', { nullable: true }),
      notes: t.exposeString('notes', { nullable: true }),
      lineItems: t.relation('lines', { query: { orderBy: { position: 'asc' } } }),
      services: t.field({
        type: ['Service' as never],
        description: 'The services of the visit (booked, or performed once completed), in order.',
        select: { lines: { where: { kind: 'SERVICE' }, orderBy: { position: 'asc' }, select: { service: true } } },
        resolve: (visit) => visit.lines.map((line) => line.service) as never,
      }),
      readings: t.field({
        type: [ServiceReading],
        resolve: (visit) => (visit.readings ?? []) as never,
      }),
      signature: t.field({ type: Signature, nullable: true, resolve: (visit, _a, ctx) => visitSignatures(ctx).load(visit.id) as never }),
      total: t.field({ type: 'Money', resolve: (v, _a, ctx) => moneyFor(ctx, v.totalMinor) as never }),
    }),
  });

  const VisitConnection = builder.connectionObject({ type: Visit, name: 'VisitConnection' }, { name: 'VisitEdge' });

  const VisitFilter = builder.inputType('VisitFilter', {
    fields: (t) => ({
      storeId: t.globalID(),
      staffId: t.globalID(),
      customerId: t.globalID(),
      status: t.field({ type: [VisitStatusEnum] }),
      from: t.field({ type: 'DateTime', description: 'Scheduled start at or after.' }),
      to: t.field({ type: 'DateTime', description: 'Scheduled start before.' }),
    }),
  });
  const OrderDirection = 'OrderDirection' as never;

  builder.queryField('visits', (t) =>
    t.prismaConnection({
      type: 'Visit',
      cursor: 'id',
      description: 'Visits the caller can see (store-bound staff: their stores; a customer: their own), newest first by default.',
      args: {
        filter: t.arg({ type: VisitFilter, required: false }),
        direction: t.arg({ type: OrderDirection, required: false, defaultValue: 'DESC' as never }),
      },
      complexity: (args) => pageCost(args),
      resolve: (query, _root, args, ctx) => {
        const filter = args.filter;
        const direction = (args.direction as unknown) === 'ASC' ? 'asc' : 'desc';
        return ctx.db.visit.findMany({
          ...query,
          where: {
            AND: [
              visitWhere(ctx),
              filter?.storeId ? { storeId: filter.storeId.id } : {},
              filter?.staffId ? { staffId: filter.staffId.id } : {},
              filter?.customerId ? { customerId: filter.customerId.id } : {},
              filter?.status?.length ? { status: { in: filter.status } } : {},
              filter?.from || filter?.to
                ? { scheduledStart: { ...(filter.from ? { gte: filter.from } : {}), ...(filter.to ? { lt: filter.to } : {}) } }
                : {},
            ],
          },
          orderBy: [{ scheduledStart: direction }, { id: direction }],
        });
      },
    }, VisitConnection),
  );

  builder.prismaObjectField('Customer', 'visits', (t) =>
    t.connection({
      type: Visit,
      description: 'The customer\'s visits, newest first. Paged per customer in SQL, so a list of customers costs the same statements at any page size.',
      args: { status: t.arg({ type: [VisitStatusEnum], required: false }) },
      complexity: (args) => pageCost(args, 10, 50),
      resolve: async (customer, args, ctx, info) => {
        if (args.last != null || args.before != null) {
          throw new Error('Customer.visits pages forward only: use first/after');
        }
        const first = Math.min(Math.max(args.first ?? 10, 0), 50);
        const after = args.after ? decodeCursor(args.after) : null;
        const statuses = (args.status as VisitStatus[] | null | undefined)?.length ? (args.status as VisitStatus[]) : null;
        // Planned per customer field: planning records where the loaded rows' nested data lives for this
        // field's path, so the visits' own fields (services, staff) read it instead of loading per row.
        const query = queryFromInfo({ context: ctx, info, path: ['edges', 'node'], typeName: 'Visit' }) as object;
        const key = `Customer.visits:${JSON.stringify([first, after, statuses, query])}`;
        const visits = loader(ctx, key, () => visitsByCustomer(ctx, query, { first, after, statuses }));
        return visits.load(customer.id) as never;
      },
    }, VisitConnection),
  );

  function visitsByCustomer(
    ctx: Context,
    query: object,
    options: { first: number; after: { start: Date; id: string } | null; statuses: VisitStatus[] | null },
  ) {
    return new DataLoader<string, ReturnType<typeof toConnection>>(async (customerIds) => {
      if (customerIds.length === 1) return [await oneCustomerVisits(ctx, query, customerIds[0]!, options)];
      const pages = await loadVisitPages(ctx, customerIds, options);
      // Columns come with the page; relations asked for are read by Prisma, for the page's visits only.
      const columnsOnly = selectsColumnsOnly(query, Prisma.VisitScalarFieldEnum);
      const ids = columnsOnly ? [] : [...pages.values()].flatMap((page) => page.visits.map((visit) => visit.id));
      const visits = ids.length ? await ctx.db.visit.findMany({ ...query, where: { id: { in: ids } } } as Prisma.VisitFindManyArgs) : [];
      const byId = new Map(visits.map((visit) => [visit.id, visit]));
      return customerIds.map((customerId) => {
        const page = pages.get(customerId) ?? { visits: [], hasNextPage: false };
        const nodes = columnsOnly ? page.visits : page.visits.flatMap((visit) => byId.get(visit.id) ?? []);
        return toConnection(nodes, page.hasNextPage, options.after !== null);
      });
    });
  }

  /** One customer's page (a storefront or a detail screen) in one statement: the visits themselves, limited in SQL. */
  async function oneCustomerVisits(
    ctx: Context,
    query: object,
    customerId: string,
    options: { first: number; after: { start: Date; id: string } | null; statuses: VisitStatus[] | null },
  ) {
    const { first, after, statuses } = options;
    const rows = await ctx.db.visit.findMany({
      ...query,
      where: {
        AND: [
          visitWhere(ctx),
          { customerId },
          statuses ? { status: { in: statuses } } : {},
          after ? { OR: [{ scheduledStart: { lt: after.start } }, { scheduledStart: after.start, id: { lt: after.id } }] } : {},
        ],
      },
      orderBy: [{ scheduledStart: 'desc' }, { id: 'desc' }],
      take: first + 1,
    } as Prisma.VisitFindManyArgs);
    return toConnection(rows.slice(0, first), rows.length > first, after !== null);
  }

  function toConnection(visits: { id: string; scheduledStart: Date }[], hasNextPage: boolean, hasPreviousPage: boolean) {
    const edges = visits.map((visit) => new VisitEdge(visit));
    return {
      edges,
      pageInfo: {
        hasNextPage,
        hasPreviousPage,
        get startCursor() {
          return edges[0]?.cursor ?? null;
        },
        get endCursor() {
          return edges.at(-1)?.cursor ?? null;
        },
      },
    };
  }

  registerVisitMutations(builder);
}

const lineItemSchema = z
  .object({
    serviceId: z.string().nullish(),
    productId: z.string().nullish(),
    quantity: z.number().int().min(1).max(100).nullish(),
    unitPrice: z.string().nullish(),
    discount: z.string().nullish(),
    staffId: z.string().nullish(),
  })
  .refine((line) => !!line.serviceId !== !!line.productId, { message: 'Give exactly one of serviceId and productId' });

const readingSchema = z.object({
  metric: z.string().trim().min(1).max(60),
  before: z.string().nullish(),
  after: z.string().nullish(),
  unit: z.string().trim().max(20).nullish(),
});

const signatureSchema = z.object({
  signerName: z.string().trim().min(1).max(100),
  signedAt: z.date(),
  imageDataUrl: z
    .string()
    .max(300_000, 'Signature image must be under 300 kB')
    .regex(/^data:image\/(png|svg\+xml);base64,[A-Za-z0-9+/=]+$/, 'Signature must be a base64 data: URL of a PNG or SVG image'),
});

// Built once, not per request: the POS path completes visits all day.
const completeVisitSchema = z.object({
  lineItems: z.array(lineItemSchema).min(1, 'A completed visit has at least one line item').max(50),
  readings: z.array(readingSchema).max(20).nullish(),
  notes: z.string().max(2000).nullish(),
  signature: signatureSchema.nullish(),
});

function registerVisitMutations(builder: Builder) {
  const visitPayload = (t: any) => ({
    visit: t.prismaField({
      type: 'Visit',
      nullable: true,
      resolve: (query: { include?: object; select?: object }, payload: { visitId?: string; row?: VisitRow }, _args: unknown, ctx: Context) => {
        if (payload.row && selectsColumnsOnly(query, Prisma.VisitScalarFieldEnum)) return payload.row;
        return payload.visitId ? ctx.db.visit.findFirst({ ...query, where: { id: payload.visitId, ...visitWhere(ctx) } }) : null;
      },
    }),
  });
  /** The payload of a mutation run through idempotentVisitChange. */
  const idempotentVisitPayload = (t: any) => ({
    ...visitPayload(t),
    replayed: t.boolean({
      nullable: true,
      description: 'True when this answer repeats an earlier request with the same key.',
      resolve: (p: { replayed?: boolean }) => p.replayed ?? null,
    }),
  });

  const LineItemInput = builder.inputType('VisitLineItemInput', {
    description: 'Exactly one of serviceId and productId. unitPrice defaults to the catalogue price.',
    fields: (t) => ({
      serviceId: t.globalID(),
      productId: t.globalID(),
      quantity: t.int({ defaultValue: 1 }),
      unitPrice: t.field({ type: 'Decimal' }),
      discount: t.field({ type: 'Decimal' }),
      staffId: t.globalID({ description: 'Who performed or sold it; defaults to the visit\'s staff.' }),
    }),
  });
  const ReadingInput = builder.inputType('ServiceReadingInput', {
    fields: (t) => ({
      metric: t.string({ required: true }),
      before: t.field({ type: 'Decimal' }),
      after: t.field({ type: 'Decimal' }),
      unit: t.string(),
    }),
  });
  const SignatureInput = builder.inputType('SignatureInput', {
    fields: (t) => ({
      signerName: t.string({ required: true }),
      signedAt: t.field({ type: 'DateTime', required: true }),
      imageDataUrl: t.string({ required: true }),
    }),
  });

  defineMutation(builder, 'bookVisit', {
    description:
      'Books services for a customer at a store. With a staff member, their time is held: an overlapping open ' +
      'booking is a STAFF_DOUBLE_BOOKED conflict. A customer token books for the customer themself.',
    input: (t) => ({
      customerId: t.globalID({ description: 'Required for staff; a customer books for themself.' }),
      storeId: t.globalID({ required: true }),
      staffId: t.globalID(),
      serviceIds: t.globalIDList({ required: true }),
      startsAt: t.field({ type: 'DateTime', required: true }),
      notes: t.string(),
    }),
    payload: visitPayload,
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      if (principal.kind !== 'CUSTOMER') requireCapability(ctx, 'visits:write');
      const customerId = principal.kind === 'CUSTOMER' ? principal.customerId : input.customerId?.id;
      const issues: { field: string[]; message: string }[] = [];
      if (!customerId) issues.push({ field: fieldPath('customerId'), message: 'customerId is required' });
      if (principal.kind === 'CUSTOMER' && input.customerId && input.customerId.id !== principal.customerId) {
        issues.push({ field: fieldPath('customerId'), message: 'Customers book for themselves' });
      }
      const serviceIds = input.serviceIds.map((id) => id.id);
      if (serviceIds.length === 0 || serviceIds.length > 10) issues.push({ field: fieldPath('serviceIds'), message: 'Book 1 to 10 services' });
      checkStartTime(input.startsAt, issues);
      if ((input.notes?.length ?? 0) > 2000) issues.push({ field: fieldPath('notes'), message: 'Notes are at most 2000 characters' });
      if (issues.length) throw validationError(issues);
      assertStoreInScope(principal, input.storeId.id, fieldPath('storeId'));
      const visitId = await inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const customer = await tx.customer.findFirst({ where: { id: customerId!, ...customerWhere(ctx) }, select: { id: true } });
        if (!customer) throw notFound(fieldPath('customerId'), 'Customer');
        await assertStore(tx, ctx, input.storeId.id);
        if (input.staffId) await assertStaffAtStore(tx, ctx, input.staffId.id, input.storeId.id, fieldPath('staffId'));
        const services = await tx.service.findMany({ where: { id: { in: serviceIds }, ...orgWhere(ctx), active: true } });
        const byId = new Map(services.map((s) => [s.id, s]));
        const missing = serviceIds.findIndex((id) => !byId.has(id));
        if (missing >= 0) throw notFound(fieldPath('serviceIds', missing), 'Service');
        for (const check of ctx.platform.contributions<BookingCheck>(BOOKING_CHECK)) {
          await check({ tx, ctx, customerId: customer.id, storeId: input.storeId.id, serviceIds });
        }
        const minutes = serviceIds.reduce((sum, id) => sum + byId.get(id)!.durationMinutes, 0);
        const visit = await holdSlot(() =>
          tx.visit.create({
            data: {
              orgId: principal.orgId,
              storeId: input.storeId.id,
              customerId: customer.id,
              staffId: input.staffId?.id ?? null,
              scheduledStart: input.startsAt,
              scheduledEnd: new Date(input.startsAt.getTime() + minutes * 60_000),
              notes: input.notes ?? null,
              totalMinor: serviceIds.reduce((sum, id) => sum + byId.get(id)!.priceMinor, 0),
              lines: {
                create: serviceIds.map((id, position) => {
                  const service = byId.get(id)!;
                  return {
                    orgId: principal.orgId,
                    position,
                    kind: 'SERVICE' as const,
                    serviceId: id,
                    staffId: input.staffId?.id ?? null,
                    description: service.name,
                    quantity: 1,
                    unitPriceMinor: service.priceMinor,
                    amountMinor: service.priceMinor,
                  };
                }),
              },
            },
            select: { id: true, storeId: true, customerId: true, scheduledStart: true, staffId: true },
          }),
        );
        await emitVisit(emit, 'visit.booked', visit);
        return visit.id;
      });
      return { visitId };
    },
  });

  defineMutation(builder, 'rescheduleVisit', {
    description: 'Moves a BOOKED visit to a new time (and optionally another staff member of its store), keeping its length.',
    input: (t) => ({
      visitId: t.globalID({ required: true }),
      startsAt: t.field({ type: 'DateTime', required: true }),
      staffId: t.globalID(),
    }),
    payload: visitPayload,
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      if (principal.kind !== 'CUSTOMER') requireCapability(ctx, 'visits:write');
      const issues: { field: string[]; message: string }[] = [];
      checkStartTime(input.startsAt, issues);
      if (issues.length) throw validationError(issues);
      const visitId = input.visitId.id;
      await inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const visit = await lockVisit(tx, ctx, visitId);
        assertStatus(visit.status, ['BOOKED'], 'rescheduled');
        const staffId = input.staffId !== undefined ? (input.staffId?.id ?? null) : visit.staffId;
        if (input.staffId?.id) await assertStaffAtStore(tx, ctx, input.staffId.id, visit.storeId, fieldPath('staffId'));
        const length = visit.scheduledEnd.getTime() - visit.scheduledStart.getTime();
        const updated = await holdSlot(() =>
          tx.visit.update({
            where: { id: visitId },
            data: { scheduledStart: input.startsAt, scheduledEnd: new Date(input.startsAt.getTime() + length), staffId },
            select: { id: true, storeId: true, customerId: true, scheduledStart: true, staffId: true },
          }),
        );
        await emitVisit(emit, 'visit.rescheduled', updated, { previousStart: visit.scheduledStart.toISOString() });
      });
      return { visitId };
    },
  });

  defineMutation(builder, 'cancelVisit', {
    description: 'Cancels a BOOKED or CHECKED_IN visit, with a reason. A customer may cancel their own booking.',
    input: (t) => ({
      visitId: t.globalID({ required: true }),
      reason: t.string({ required: true }),
    }),
    payload: visitPayload,
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      if (principal.kind !== 'CUSTOMER') requireCapability(ctx, 'visits:write');
      const reason = input.reason.trim();
      if (!reason || reason.length > 500) throw validationError([{ field: fieldPath('reason'), message: 'Give a reason of at most 500 characters' }]);
      const visitId = input.visitId.id;
      const row = await inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const updated = await transitionVisit(tx, ctx, visitId, principal.kind === 'CUSTOMER' ? ['BOOKED'] : ['BOOKED', 'CHECKED_IN'], 'cancelled', {
          status: 'CANCELLED',
          cancelledAt: new Date(),
          cancelReason: reason,
        });
        await emitVisit(emit, 'visit.cancelled', updated, { reason });
        return updated;
      });
      return { visitId, row };
    },
  });

  defineMutation(builder, 'markVisitNoShow', {
    description: 'Marks a BOOKED visit whose start time has passed as NO_SHOW, freeing the staff member\'s slot.',
    input: (t) => ({ visitId: t.globalID({ required: true }) }),
    payload: visitPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'visits:write');
      const visitId = input.visitId.id;
      await inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const visit = await lockVisit(tx, ctx, visitId);
        assertStatus(visit.status, ['BOOKED'], 'marked as no-show');
        if (visit.scheduledStart.getTime() > Date.now()) {
          throw conflict('INVALID_STATE', 'A visit can be marked as no-show only after its start time', fieldPath('visitId'));
        }
        const updated = await tx.visit.update({
          where: { id: visitId },
          data: { status: 'NO_SHOW' },
          select: { id: true, storeId: true, customerId: true, scheduledStart: true, staffId: true },
        });
        await emitVisit(emit, 'visit.noShow', updated);
      });
      return { visitId };
    },
  });

  defineMutation(builder, 'checkInVisit', {
    description:
      'Checks the customer in for a BOOKED visit. Idempotent: the same key again returns the first result; ' +
      'the same key with a different request is an IDEMPOTENCY_KEY_REUSED conflict.',
    input: (t) => ({
      visitId: t.globalID({ required: true }),
      idempotencyKey: t.string({ required: true, description: 'Chosen by the client, unique per attempt (e.g. a UUID); 8–128 characters.' }),
    }),
    payload: idempotentVisitPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'visits:write');
      const visitId = input.visitId.id;
      return idempotentVisitChange(ctx, principal, input.idempotencyKey, 'checkInVisit', { visitId }, visitId, async (tx, emit) => {
        const row = await transitionVisit(tx, ctx, visitId, ['BOOKED'], 'checked in', { status: 'CHECKED_IN', checkedInAt: new Date() });
        await emitVisit(emit, 'visit.checkedIn', row);
        return row;
      });
    },
  });

  defineMutation(builder, 'completeVisit', {
    description:
      'Records the service of a CHECKED_IN visit (line items, readings, notes, the customer\'s signature) and ' +
      'completes it. Amounts are exact decimals in the organization\'s currency. Idempotent by key.',
    input: (t) => ({
      visitId: t.globalID({ required: true }),
      idempotencyKey: t.string({ required: true }),
      lineItems: t.field({ type: [LineItemInput], required: true }),
      readings: t.field({ type: [ReadingInput] }),
      notes: t.string(),
      signature: t.field({ type: SignatureInput }),
    }),
    payload: idempotentVisitPayload,
    resolve: async (rawInput, ctx) => {
      const principal = requireCapability(ctx, 'visits:write');
      const input = parseInput(
        completeVisitSchema,
        {
          ...rawInput,
          lineItems: rawInput.lineItems.map((line) => ({ ...line, serviceId: line.serviceId?.id, productId: line.productId?.id, staffId: line.staffId?.id })),
        },
      );
      const { currency } = await ctx.platform.orgSettings(principal.orgId);
      const issues: { field: string[]; message: string }[] = [];
      const decimal = (value: string | null | undefined, field: string[]) => {
        if (value == null) return null;
        const minor = toMinorUnits(value, currency);
        if (minor === null || minor < 0) issues.push({ field, message: `Must be a non-negative amount with at most the digits of ${currency}` });
        // Prices and discounts are stored as 32-bit minor units; the visit total has the same bound.
        else if (minor > 2_000_000_000) issues.push({ field, message: 'Amount is too large' });
        return minor;
      };
      const lines = input.lineItems.map((line, index) => ({
        ...line,
        quantity: line.quantity ?? 1,
        unitPriceMinor: decimal(line.unitPrice, fieldPath('lineItems', index, 'unitPrice')),
        discountMinor: decimal(line.discount, fieldPath('lineItems', index, 'discount')) ?? 0,
      }));
      for (const [index, reading] of (input.readings ?? []).entries()) {
        for (const key of ['before', 'after'] as const) {
          if (reading[key] != null && !/^-?\d{1,9}(\.\d{1,4})?$/.test(reading[key]!)) {
            issues.push({ field: fieldPath('readings', index, key), message: 'Must be a decimal number' });
          }
        }
      }
      if (issues.length) throw validationError(issues);
      const visitId = rawInput.visitId.id;
      return idempotentVisitChange(ctx, principal, rawInput.idempotencyKey, 'completeVisit', { visitId, ...input }, visitId, async (tx, emit) => {
        // Priced first (the catalogue is not locked): the visit's update below needs the total.
        const priced = await priceLines(tx, ctx, lines);
        const total = priced.reduce((sum, line) => sum + line.amountMinor, 0);
        const completedAt = new Date();
        const visit = await transitionVisit(tx, ctx, visitId, ['CHECKED_IN'], 'completed', {
          status: 'COMPLETED',
          completedAt,
          totalMinor: total,
          notes: input.notes ?? undefined,
          readings: (input.readings ?? []).map((r) => ({ metric: r.metric, before: r.before ?? null, after: r.after ?? null, unit: r.unit ?? null })),
          signature: input.signature ? { ...input.signature, signedAt: input.signature.signedAt.toISOString() } : Prisma.DbNull,
        });
        await recordService(tx, principal.orgId, visit, priced.map((line) => line.row), { completedAt, totalMinor: total });
        await emitVisit(emit, 'visit.completed', visit, {
          completedAt: completedAt.toISOString(),
          totalMinor: total,
          currency,
          lines: priced.map((line) => ({
            kind: line.row.kind,
            serviceId: line.row.serviceId,
            productId: line.row.productId,
            category: line.category,
            quantity: line.row.quantity,
            amountMinor: line.amountMinor,
          })),
        });
        return visit;
      });
    },
  });
  defineMutation(builder, 'refundVisit', {
    description:
      'Refunds (voids) a COMPLETED visit: it no longer counts towards the customer\'s facts, and plugins reverse ' +
      'what they awarded for it (e.g. points). Idempotent by key.',
    input: (t) => ({
      visitId: t.globalID({ required: true }),
      idempotencyKey: t.string({ required: true }),
      reason: t.string({ required: true }),
    }),
    payload: idempotentVisitPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'visits:refund');
      const reason = input.reason.trim();
      if (!reason || reason.length > 500) throw validationError([{ field: fieldPath('reason'), message: 'Give a reason of at most 500 characters' }]);
      const visitId = input.visitId.id;
      return idempotentVisitChange(ctx, principal, input.idempotencyKey, 'refundVisit', { visitId, reason }, visitId, async (tx, emit) => {
        const visit = await transitionVisit(tx, ctx, visitId, ['COMPLETED'], 'refunded', { status: 'REFUNDED', refundedAt: new Date(), refundReason: reason });
        // Recomputed from the visits themselves: first/last visit may move when the refunded one was either.
        await tx.$executeRaw`
          UPDATE customer_fact f SET visit_count = s.visits, total_spend_minor = s.spend,
            first_visit_at = s.first_at, last_visit_at = s.last_at
          FROM (SELECT count(*)::int AS visits, coalesce(sum(total_minor), 0)::bigint AS spend,
                       min(completed_at) AS first_at, max(completed_at) AS last_at
                FROM visit WHERE customer_id = ${visit.customerId}::uuid AND status = 'COMPLETED') s
          WHERE f.customer_id = ${visit.customerId}::uuid`;
        await emitVisit(emit, 'visit.refunded', visit, { totalMinor: visit.totalMinor, reason });
        return visit;
      });
    },
  });
}

function checkStartTime(startsAt: Date, issues: { field: string[]; message: string }[]) {
  const now = Date.now();
  if (startsAt.getTime() < now - EARLIEST_BOOKING_SLACK_MS) issues.push({ field: fieldPath('startsAt'), message: 'Start time is in the past' });
  if (startsAt.getTime() > now + LATEST_BOOKING_MS) issues.push({ field: fieldPath('startsAt'), message: 'Bookings open at most a year ahead' });
}

async function holdSlot<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (pgErrorCode(error) === '23P01') {
      throw conflict('STAFF_DOUBLE_BOOKED', 'The staff member already has a booking at that time', fieldPath('staffId'));
    }
    throw error;
  }
}

const VISIT_STATUS_WORDS: Record<string, string> = { BOOKED: 'booked', CHECKED_IN: 'checked in', COMPLETED: 'completed', CANCELLED: 'cancelled', NO_SHOW: 'a no-show', REFUNDED: 'refunded' };

function assertStatus(status: string, allowed: string[], action: string) {
  if (!allowed.includes(status)) {
    throw conflict('INVALID_STATE', `A visit that is ${VISIT_STATUS_WORDS[status]} cannot be ${action}`, fieldPath('visitId'));
  }
}

/**
 * Updates the visit if the caller may see it and it matches `where`, in one statement that also takes its row lock
 * (Prisma has no SELECT … FOR UPDATE), so concurrent changes of one visit happen one after the other: a second
 * waits, then is matched against the first's result. Null when nothing matched; another store's or tenant's visit
 * is never locked.
 */
async function updateVisibleVisit(tx: Tx, ctx: Context, visitId: string, where: Prisma.VisitWhereInput, data: Prisma.VisitUpdateInput) {
  try {
    return await tx.visit.update({ where: { id: visitId, AND: [visitWhere(ctx), where] }, data });
  } catch (error) {
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2025') return null;
    throw error;
  }
}

/** The visit, read under its row lock, for changes that must read it before they decide (reschedule, no-show). */
async function lockVisit(tx: Tx, ctx: Context, visitId: string) {
  const visit = await updateVisibleVisit(tx, ctx, visitId, {}, { updatedAt: new Date() });
  if (!visit) throw notFound(fieldPath('visitId'), 'Visit');
  return visit;
}

/** Moves a visit that is in one of `from` to its next state in one statement; when nothing matched, a read says why. */
async function transitionVisit(tx: Tx, ctx: Context, visitId: string, from: VisitStatus[], action: string, data: Prisma.VisitUpdateInput) {
  const updated = await updateVisibleVisit(tx, ctx, visitId, { status: { in: from } }, data);
  if (updated) return updated;
  const visit = await tx.visit.findFirst({ where: { id: visitId, AND: [visitWhere(ctx)] }, select: { status: true } });
  if (!visit) throw notFound(fieldPath('visitId'), 'Visit');
  assertStatus(visit.status, from, action);
  throw conflict('INVALID_STATE', 'The visit changed meanwhile: read it again', fieldPath('visitId'));
}

async function assertStore(tx: Tx, ctx: Context, storeId: string) {
  const store = await tx.store.findFirst({ where: { id: storeId, ...orgWhere(ctx) }, select: { id: true } });
  if (!store) throw notFound(fieldPath('storeId'), 'Store');
}

async function assertStaffAtStore(tx: Tx, ctx: Context, staffId: string, storeId: string, field: string[]) {
  const staff = await tx.staff.findFirst({
    where: { id: staffId, ...orgWhere(ctx), active: true, stores: { some: { storeId } } },
    select: { id: true },
  });
  if (!staff) throw notFound(field, 'Staff member at this store');
}

async function priceLines(
  tx: Tx,
  ctx: Context,
  lines: { serviceId?: string | null; productId?: string | null; staffId?: string | null; quantity: number; unitPriceMinor: number | null; discountMinor: number }[],
) {
  const serviceIds = lines.flatMap((l) => (l.serviceId ? [l.serviceId] : []));
  const productIds = lines.flatMap((l) => (l.productId ? [l.productId] : []));
  const staffIds = lines.flatMap((l) => (l.staffId ? [l.staffId] : []));
  const [services, products, staff] = await Promise.all([
    serviceIds.length ? tx.service.findMany({ where: { id: { in: serviceIds }, ...orgWhere(ctx) } }) : [],
    productIds.length ? tx.product.findMany({ where: { id: { in: productIds }, ...orgWhere(ctx) } }) : [],
    staffIds.length ? tx.staff.findMany({ where: { id: { in: staffIds }, ...orgWhere(ctx) }, select: { id: true } }) : [],
  ]);
  const serviceById = new Map(services.map((s) => [s.id, s]));
  const productById = new Map(products.map((p) => [p.id, p]));
  const staffIdsFound = new Set(staff.map((s) => s.id));
  const issues: { field: string[]; message: string }[] = [];
  const priced = lines.map((line, index) => {
    const item = line.serviceId ? serviceById.get(line.serviceId) : productById.get(line.productId!);
    if (!item) {
      issues.push({ field: fieldPath('lineItems', index, line.serviceId ? 'serviceId' : 'productId'), message: `${line.serviceId ? 'Service' : 'Product'} not found` });
      return null;
    }
    if (line.staffId && !staffIdsFound.has(line.staffId)) issues.push({ field: fieldPath('lineItems', index, 'staffId'), message: 'Staff member not found' });
    const unit = line.unitPriceMinor ?? item.priceMinor;
    const gross = unit * line.quantity;
    if (line.discountMinor > gross) issues.push({ field: fieldPath('lineItems', index, 'discount'), message: 'Discount exceeds the line amount' });
    return {
      category: 'category' in item ? item.category : null,
      amountMinor: gross - line.discountMinor,
      row: {
        kind: (line.serviceId ? 'SERVICE' : 'PRODUCT') as 'SERVICE' | 'PRODUCT',
        serviceId: line.serviceId ?? null,
        productId: line.productId ?? null,
        staffId: line.staffId ?? null, // null: the visit's staff member (recordService fills it in)
        description: item.name,
        quantity: line.quantity,
        unitPriceMinor: unit,
        discountMinor: line.discountMinor,
        amountMinor: gross - line.discountMinor,
      },
    };
  });
  if (issues.length) {
    const missing = issues.find((issue) => issue.message.endsWith('not found'));
    throw missing ? notFound(missing.field, missing.message.replace(/ not found$/, '')) : validationError(issues);
  }
  const total = priced.reduce((sum, line) => sum + line!.amountMinor, 0);
  if (total > 2_000_000_000) throw validationError([{ field: fieldPath('lineItems'), message: 'Visit total is too large' }]);
  return priced.map((line) => line!);
}

/**
 * What a completed visit leaves behind, in one statement: its lines become `lines` (the booked services are replaced
 * by what was done: lines past the new count are deleted, the others written over by position), and the customer's
 * facts count the visit and its spend. The three parts touch different rows, so their order inside the statement does
 * not matter.
 */
/**
 * An idempotent visit mutation, in one transaction: `work` changes the visit and returns its row, which the payload
 * shows without reading it again. A replay finds the stored answer (the visit's id) and the payload reads the visit.
 */
async function idempotentVisitChange(
  ctx: Context,
  principal: Principal,
  idempotencyKey: string,
  operation: string,
  input: unknown,
  visitId: string,
  work: (tx: Tx, emit: Emit) => Promise<VisitRow>,
) {
  return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
    let row: VisitRow | undefined;
    const { result, replayed } = await idempotent(tx, principal, idempotencyKey, operation, input, async () => {
      row = await work(tx, emit);
    }, { visitId });
    return { ...result, replayed, row };
  });
}

async function recordService(
  tx: Tx,
  orgId: string,
  visit: { id: string; customerId: string; staffId: string | null },
  lines: { kind: 'SERVICE' | 'PRODUCT'; serviceId: string | null; productId: string | null; staffId: string | null; description: string; quantity: number; unitPriceMinor: number; discountMinor: number; amountMinor: number }[],
  { completedAt, totalMinor }: { completedAt: Date; totalMinor: number },
) {
  const rows = lines.map((line, position) => ({ ...line, position, staffId: line.staffId ?? visit.staffId }));
  await tx.$executeRaw`
    WITH surplus AS (DELETE FROM visit_line WHERE visit_id = ${visit.id}::uuid AND position >= ${rows.length}),
    fact AS (
      INSERT INTO customer_fact (customer_id, org_id, visit_count, first_visit_at, last_visit_at, total_spend_minor)
      VALUES (${visit.customerId}::uuid, ${orgId}::uuid, 1, ${completedAt}, ${completedAt}, ${totalMinor})
      ON CONFLICT (customer_id) DO UPDATE SET
        visit_count = customer_fact.visit_count + 1,
        first_visit_at = LEAST(customer_fact.first_visit_at, EXCLUDED.first_visit_at),
        last_visit_at = GREATEST(customer_fact.last_visit_at, EXCLUDED.last_visit_at),
        total_spend_minor = customer_fact.total_spend_minor + EXCLUDED.total_spend_minor)
    INSERT INTO visit_line (org_id, visit_id, position, kind, service_id, product_id, staff_id, description, quantity,
                            unit_price_minor, discount_minor, amount_minor)
    SELECT ${orgId}::uuid, ${visit.id}::uuid, l.position, l.kind::line_item_kind, l."serviceId", l."productId", l."staffId",
           l.description, l.quantity, l."unitPriceMinor", l."discountMinor", l."amountMinor"
    FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS l(position int, kind text, "serviceId" uuid, "productId" uuid,
         "staffId" uuid, description text, quantity int, "unitPriceMinor" int, "discountMinor" int, "amountMinor" int)
    ON CONFLICT (visit_id, position) DO UPDATE SET kind = EXCLUDED.kind, service_id = EXCLUDED.service_id,
      product_id = EXCLUDED.product_id, staff_id = EXCLUDED.staff_id, description = EXCLUDED.description,
      quantity = EXCLUDED.quantity, unit_price_minor = EXCLUDED.unit_price_minor, discount_minor = EXCLUDED.discount_minor,
      amount_minor = EXCLUDED.amount_minor`;
}

async function emitVisit(
  emit: Emit,
  type: string,
  visit: { id: string; storeId: string; customerId: string; scheduledStart: Date; staffId: string | null },
  extra: Record<string, unknown> = {},
) {
  await emit({
    type,
    aggregateType: 'Visit',
    aggregateId: visit.id,
    streamKey: visit.customerId,
    payload: {
      visitId: visit.id,
      customerId: visit.customerId,
      storeId: visit.storeId,
      staffId: visit.staffId,
      scheduledStart: visit.scheduledStart.toISOString(),
      ...extra,
    },
  });
}

