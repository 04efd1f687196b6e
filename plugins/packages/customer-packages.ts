import DataLoader from 'dataloader';
import { z } from 'zod';
import { principalKey } from '../../core/auth/policy.ts';
import type { Principal } from '../../core/auth/principal.ts';
import type { Tx } from '../../core/db/clients.ts';
import { inTransaction, type Emit } from '../../core/events/outbox.ts';
import { assertStoreInScope, requireCapability, visitWhere } from '../../core/graph/access.ts';
import { idempotent } from '../../core/graph/idempotency.ts';
import { moneyFor, toMinorUnits } from '../../core/graph/money.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import { loader, type Context } from '../../core/graphql/context.ts';
import { conflict, fieldPath, notFound, parseInput, pgErrorCode, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import { customerLoader, packageWhere, requireChain, serviceLoader, storeLoader, templateWhere, visitLoader } from './access.ts';
import { packagesError } from './errors.ts';

export const PACKAGE_STATES = ['ACTIVE', 'FROZEN', 'EXPIRED', 'EXHAUSTED', 'REFUNDED'] as const;
export type PackageState = (typeof PACKAGE_STATES)[number];

interface Line {
  serviceId: string;
  sessionsTotal: number;
  sessionsRemaining: number;
  valueMinor: number;
}

/**
 * What the remaining sessions of a line are worth: its value less the value of the sessions used, each used session
 * worth floor(value × used / total) − floor(value × (used − 1) / total). The ledger trigger values every entry the
 * same way, so a line's entries plus this always add up to its value, and refunding an untouched package returns
 * exactly its price.
 */
export function remainingValue(line: Pick<Line, 'sessionsTotal' | 'sessionsRemaining' | 'valueMinor'>): number {
  const used = BigInt(line.sessionsTotal - line.sessionsRemaining);
  return Number(BigInt(line.valueMinor) - (BigInt(line.valueMinor) * used) / BigInt(line.sessionsTotal));
}

export function packageState(pkg: { status: string; expiresAt: Date; lines: { sessionsRemaining: number }[] }, now = new Date()): PackageState {
  if (pkg.status === 'REFUNDED') return 'REFUNDED';
  if (pkg.status === 'FROZEN') return 'FROZEN';
  if (pkg.expiresAt.getTime() <= now.getTime()) return 'EXPIRED';
  if (pkg.lines.every((line) => line.sessionsRemaining === 0)) return 'EXHAUSTED';
  return 'ACTIVE';
}

/**
 * The price split over the services by list price × sessions (by sessions when everything is free), in integer
 * minor units by largest remainder: the shares add up to the price exactly.
 */
export function allocateValue(priceMinor: number, lines: { sessions: number; listPriceMinor: number }[]): number[] {
  let weights = lines.map((l) => BigInt(l.sessions) * BigInt(l.listPriceMinor));
  if (weights.every((w) => w === 0n)) weights = lines.map((l) => BigInt(l.sessions));
  const total = weights.reduce((a, b) => a + b, 0n);
  const price = BigInt(priceMinor);
  const shares = weights.map((w) => (price * w) / total);
  let left = price - shares.reduce((a, b) => a + b, 0n);
  const order = weights
    .map((w, i) => ({ i, remainder: (price * w) % total }))
    .sort((a, b) => (b.remainder > a.remainder ? 1 : b.remainder < a.remainder ? -1 : a.i - b.i));
  for (const { i } of order) {
    if (left === 0n) break;
    shares[i]! += 1n;
    left -= 1n;
  }
  return shares.map(Number);
}

/** The end of the local day `months` months (and `days` days) after `from`'s local date, in `timezone`. */
export async function endOfLocalDayAfter(tx: Tx, from: Date, timezone: string, months: number, days = 0): Promise<Date> {
  const [row] = await tx.$queryRaw<{ at: Date }[]>`
    SELECT ((((${from}::timestamptz AT TIME ZONE ${timezone})::date + make_interval(months => ${months}::int))::date
             + ${days}::int + 1)::timestamp AT TIME ZONE ${timezone}) AS at`;
  return row!.at;
}

/** Locks the package (its consumptions, refunds and freezes happen one after the other) and reads it. */
async function lockPackage(tx: Tx, ctx: Context, principal: Principal, id: string) {
  const [locked] = await tx.$queryRaw<{ id: string }[]>`
    SELECT id FROM customer_package WHERE id = ${id}::uuid AND org_id = ${principal.orgId}::uuid FOR UPDATE`;
  const pkg = locked
    ? await tx.customerPackage.findFirst({ where: { AND: [{ id }, packageWhere(ctx)] }, include: { lines: true } })
    : null;
  if (!pkg) throw notFound(fieldPath('customerPackageId'), 'Customer package');
  return pkg;
}

function refusedUnlessActive(pkg: { status: string; expiresAt: Date; frozenAt: Date | null }, options: { frozenOk?: boolean } = {}) {
  if (pkg.status === 'REFUNDED') throw conflict('PACKAGE_REFUNDED', 'The package was refunded', fieldPath('customerPackageId'));
  if (pkg.status === 'FROZEN' && !options.frozenOk) {
    throw packagesError('PackageFrozenError', 'PACKAGE_FROZEN', 'The package is frozen', { frozenAt: pkg.frozenAt }, fieldPath('customerPackageId'));
  }
  if (pkg.expiresAt.getTime() <= Date.now()) {
    throw packagesError('PackageExpiredError', 'PACKAGE_EXPIRED', 'The package has expired', { expiresAt: pkg.expiresAt }, fieldPath('customerPackageId'));
  }
}

async function emitPackage(emit: Emit, type: string, pkg: { id: string; customerId: string; storeId: string }, extra: Record<string, unknown> = {}) {
  await emit({
    type,
    aggregateType: 'CustomerPackage',
    aggregateId: pkg.id,
    streamKey: pkg.customerId,
    payload: { customerPackageId: pkg.id, customerId: pkg.customerId, storeId: pkg.storeId, ...extra },
  });
}

const jsonKey = (value: unknown) => JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v));

export function registerCustomerPackages(builder: Builder) {
  const State = builder.enumType('CustomerPackageState', {
    values: PACKAGE_STATES,
    description: 'ACTIVE (sessions left, valid), FROZEN, EXPIRED, EXHAUSTED (every session used) or REFUNDED.',
  });
  const EntryKind = builder.enumType('PackageSessionKind', { values: ['CONSUME', 'REFUND'] as const });
  const AdjustmentKind = builder.enumType('PackageAdjustmentKind', { values: ['FREEZE', 'UNFREEZE', 'EXTEND'] as const });

  const Line = builder.prismaObject('CustomerPackageService', {
    name: 'CustomerPackageLine',
    description: 'Sessions of one service in a customer\'s package.',
    fields: (t) => ({
      service: t.field({ type: 'Service' as never, nullable: true, resolve: (l, _a, ctx) => serviceLoader(ctx).load(l.serviceId) as never }),
      sessionsTotal: t.exposeInt('sessionsTotal'),
      sessionsRemaining: t.exposeInt('sessionsRemaining'),
      sessionsUsed: t.int({ resolve: (l) => l.sessionsTotal - l.sessionsRemaining, description: 'Consumed or refunded.' }),
      value: t.field({ type: 'Money', description: 'The share of the price these sessions carry.', resolve: (l, _a, ctx) => moneyFor(ctx, l.valueMinor) }),
      remainingValue: t.field({ type: 'Money', resolve: (l, _a, ctx) => moneyFor(ctx, remainingValue(l)) }),
    }),
  });

  builder.prismaObject('PackageSessionEntry', {
    name: 'PackageSession',
    description: 'A session consumed on a visit, or refunded: the package\'s ledger, never changed.',
    fields: (t) => ({
      id: t.id({ resolve: (e) => e.id.toString() }),
      kind: t.expose('kind', { type: EntryKind }),
      service: t.field({ type: 'Service' as never, nullable: true, resolve: (e, _a, ctx) => serviceLoader(ctx).load(e.serviceId) as never }),
      sessions: t.exposeInt('sessions'),
      value: t.field({ type: 'Money', resolve: (e, _a, ctx) => moneyFor(ctx, e.valueMinor) }),
      visit: t.field({
        type: 'Visit' as never,
        nullable: true,
        resolve: (e, _a, ctx) => (e.visitId ? visitLoader(ctx).load(e.visitId) : null) as never,
      }),
      store: t.field({ type: 'Store' as never, nullable: true, resolve: (e, _a, ctx) => storeLoader(ctx).load(e.storeId) as never }),
      actor: t.exposeString('actor'),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
    }),
  });

  builder.prismaObject('PackageRefund', {
    description: 'The pro-rata refund of a package\'s unused sessions.',
    fields: (t) => ({
      sessions: t.exposeInt('sessions', { description: 'Unused sessions refunded.' }),
      amount: t.field({ type: 'Money', resolve: (r, _a, ctx) => moneyFor(ctx, r.amountMinor) }),
      reason: t.exposeString('reason'),
      actor: t.exposeString('actor'),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
    }),
  });

  builder.prismaObject('PackageAdjustment', {
    description: 'A freeze, unfreeze or extension, with the expiry before and after.',
    fields: (t) => ({
      kind: t.expose('kind', { type: AdjustmentKind }),
      previousExpiresAt: t.expose('previousExpiresAt', { type: 'DateTime' }),
      newExpiresAt: t.expose('newExpiresAt', { type: 'DateTime' }),
      reason: t.exposeString('reason'),
      actor: t.exposeString('actor'),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
    }),
  });

  builder.prismaNode('CustomerPackage', {
    description: 'A package a customer bought (sold on a completed visit): sessions per service, valid until expiresAt.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [packageWhere(ctx)] }),
    fields: (t) => ({
      name: t.exposeString('name'),
      trial: t.exposeBoolean('trial'),
      state: t.field({
        type: State,
        select: { status: true, expiresAt: true, lines: true },
        resolve: (p) => packageState(p),
      }),
      customer: t.field({ type: 'Customer' as never, nullable: true, resolve: (p, _a, ctx) => customerLoader(ctx).load(p.customerId) as never }),
      template: t.relation('template'),
      store: t.field({ type: 'Store' as never, nullable: true, description: 'Where it was sold.', resolve: (p, _a, ctx) => storeLoader(ctx).load(p.storeId) as never }),
      visit: t.field({
        type: 'Visit' as never,
        nullable: true,
        description: 'The visit it was sold on (null for staff of other stores).',
        resolve: (p, _a, ctx) => visitLoader(ctx).load(p.visitId) as never,
      }),
      price: t.field({ type: 'Money', resolve: (p, _a, ctx) => moneyFor(ctx, p.priceMinor) }),
      purchasedAt: t.expose('purchasedAt', { type: 'DateTime' }),
      expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'The end of the last valid local day at the store that sold it.' }),
      frozenAt: t.expose('frozenAt', { type: 'DateTime', nullable: true }),
      refundedAt: t.expose('refundedAt', { type: 'DateTime', nullable: true }),
      // Every field reads the lines through the same selection, so a list of packages loads them in one statement.
      services: t.field({
        type: [Line],
        select: { lines: true },
        resolve: (p) => [...p.lines].sort((a, b) => a.serviceId.localeCompare(b.serviceId)),
      }),
      sessionsTotal: t.int({ select: { lines: true }, resolve: (p) => p.lines.reduce((s, l) => s + l.sessionsTotal, 0) }),
      sessionsRemaining: t.int({ select: { lines: true }, resolve: (p) => p.lines.reduce((s, l) => s + l.sessionsRemaining, 0) }),
      outstandingValue: t.field({
        type: 'Money',
        description: 'What the unused sessions are worth (what a refund would pay; zero once expired or refunded).',
        select: { status: true, expiresAt: true, lines: true },
        resolve: (p, _a, ctx) => {
          const state = packageState(p);
          return moneyFor(ctx, state === 'EXPIRED' || state === 'REFUNDED' ? 0 : p.lines.reduce((s, l) => s + remainingValue(l), 0));
        },
      }),
      sessions: t.relatedConnection('entries', {
        cursor: 'id',
        description: 'Consumed and refunded sessions, newest first.',
        query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
      }, { name: 'PackageSessionConnection' }, { name: 'PackageSessionEdge' }),
      refund: t.relation('refund', { nullable: true }),
      adjustments: t.relation('adjustments', { query: { orderBy: { createdAt: 'asc' } } }),
    }),
  });

  builder.prismaObjectField('Customer', 'packages', (t) =>
    t.prismaField({
      type: ['CustomerPackage'],
      description: 'Packages the customer bought, newest first (usableOnly: active, unexpired, with sessions left).',
      args: { usableOnly: t.arg.boolean({ required: false, defaultValue: false }) },
      resolve: (query, customer, args, ctx) =>
        loader(ctx, `Customer.packages:${jsonKey([query, args.usableOnly])}`, () =>
          new DataLoader<string, unknown[]>(async (customerIds) => {
            const rows = await ctx.db.customerPackage.findMany({
              ...(query as object),
              where: {
                AND: [
                  packageWhere(ctx),
                  { customerId: { in: [...customerIds] } },
                  args.usableOnly ? { status: 'ACTIVE', expiresAt: { gt: new Date() }, lines: { some: { sessionsRemaining: { gt: 0 } } } } : {},
                ],
              },
              orderBy: [{ purchasedAt: 'desc' }, { id: 'desc' }],
            });
            return customerIds.map((id) => rows.filter((row) => row.customerId === id));
          }),
        ).load(customer.id) as never,
    }),
  );

  const packagePayload = (t: any) => ({
    customerPackage: t.prismaField({
      type: 'CustomerPackage',
      nullable: true,
      resolve: (query: object, p: { customerPackageId?: string }, _a: unknown, ctx: Context) =>
        p.customerPackageId ? ctx.db.customerPackage.findFirst({ ...query, where: { AND: [{ id: p.customerPackageId }, packageWhere(ctx)] } }) : null,
    }),
  });
  const replayed = (t: any) => ({
    replayed: t.boolean({ nullable: true, description: 'True when this answer repeats an earlier request with the same key.', resolve: (p: { replayed?: boolean }) => p.replayed ?? null }),
  });

  defineMutation(builder, 'sellPackage', {
    description:
      'Sells a package on a completed visit (packages:sell) for the amount paid (default: the template\'s price). A package is neither ' +
      'a service nor a product line, so the sale is recorded here against the visit. Idempotent by key.',
    input: (t) => ({
      visitId: t.globalID({ required: true }),
      templateId: t.globalID({ required: true }),
      price: t.field({ type: 'Decimal', description: 'The amount paid, when not the template\'s price.' }),
      idempotencyKey: t.string({ required: true }),
    }),
    payload: (t) => ({ ...packagePayload(t), ...replayed(t) }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'packages:sell');
      await requireChain(ctx);
      const { currency } = await ctx.platform.orgSettings(principal.orgId);
      let price: number | null = null;
      if (input.price != null) {
        price = toMinorUnits(input.price, currency);
        if (price === null || price < 0 || price > 2_000_000_000) {
          throw validationError([{ field: fieldPath('price'), message: `Price must be a non-negative amount in ${currency}` }]);
        }
      }
      const request = { visitId: input.visitId.id, templateId: input.templateId.id, price };
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const { result, replayed } = await idempotent(tx, principal, input.idempotencyKey, 'sellPackage', request, async () => {
          const visit = await tx.visit.findFirst({ where: { AND: [{ id: request.visitId }, visitWhere(ctx)] }, include: { store: true } });
          if (!visit) throw notFound(fieldPath('visitId'), 'Visit');
          if (visit.status !== 'COMPLETED') throw conflict('INVALID_STATE', 'Packages are sold on a completed visit', fieldPath('visitId'));
          const template = await tx.packageTemplate.findFirst({ where: { AND: [{ id: request.templateId }, templateWhere(ctx)] }, include: { services: true } });
          if (!template) throw notFound(fieldPath('templateId'), 'Package template');
          if (!template.active) throw conflict('TEMPLATE_INACTIVE', 'This package is no longer sold', fieldPath('templateId'));
          if (template.trial && (await tx.customerPackage.findFirst({ where: { customerId: visit.customerId, templateId: template.id, trial: true }, select: { id: true } }))) {
            throw conflict('TRIAL_ALREADY_USED', 'The customer already had this trial pack', fieldPath('templateId'));
          }
          const services = await tx.service.findMany({ where: { id: { in: template.services.map((s) => s.serviceId) } }, select: { id: true, priceMinor: true } });
          const paid = price ?? template.priceMinor;
          const values = allocateValue(
            paid,
            template.services.map((s) => ({ sessions: s.sessions, listPriceMinor: services.find((x) => x.id === s.serviceId)?.priceMinor ?? 0 })),
          );
          const purchasedAt = new Date();
          const expiresAt = await endOfLocalDayAfter(tx, purchasedAt, visit.store.timezone, template.validityMonths);
          let created;
          try {
            created = await tx.customerPackage.create({
              data: {
                orgId: principal.orgId,
                customerId: visit.customerId,
                templateId: template.id,
                storeId: visit.storeId,
                visitId: visit.id,
                name: template.name,
                trial: template.trial,
                priceMinor: paid,
                purchasedAt,
                expiresAt,
                followUpDays: template.followUpDays,
                soldBy: principalKey(principal),
              },
              select: { id: true, customerId: true, storeId: true },
            });
          } catch (error) {
            if (pgErrorCode(error) === '23505') throw conflict('TRIAL_ALREADY_USED', 'The customer already had this trial pack', fieldPath('templateId'));
            throw error;
          }
          // Raw: the application may not write sessions_remaining (the database starts each line full).
          for (const [i, s] of template.services.entries()) {
            await tx.$executeRaw`
              INSERT INTO customer_package_service (customer_package_id, org_id, service_id, sessions_total, value_minor)
              VALUES (${created.id}::uuid, ${principal.orgId}::uuid, ${s.serviceId}::uuid, ${s.sessions}::int, ${values[i]!}::int)`;
          }
          await emitPackage(emit, 'package.sold', created, {
            templateId: template.id,
            visitId: visit.id,
            priceMinor: paid,
            sessions: template.services.reduce((sum, s) => sum + s.sessions, 0),
          });
          return { customerPackageId: created.id };
        });
        return { ...result, replayed };
      });
    },
  });

  defineMutation(builder, 'consumePackageSession', {
    description:
      'Uses one session of a service from a customer\'s package on a visit (checked in or completed). Never below zero: an ' +
      'exhausted, expired or frozen package refuses with PackageExhaustedError, PackageExpiredError or PackageFrozenError. ' +
      'Idempotent by key: a retry returns the first result and uses nothing more.',
    input: (t) => ({
      customerPackageId: t.globalID({ required: true }),
      serviceId: t.globalID({ required: true }),
      visitId: t.globalID({ required: true }),
      idempotencyKey: t.string({ required: true }),
    }),
    payload: (t) => ({
      ...packagePayload(t),
      ...replayed(t),
      remainingSessions: t.int({ nullable: true, description: 'Sessions of this service left after this one.', resolve: (p: { remainingSessions?: number }) => p.remainingSessions ?? null }),
      session: t.prismaField({
        type: 'PackageSessionEntry',
        nullable: true,
        resolve: (query: object, p: { entryId?: string }, _a: unknown, ctx: Context) =>
          p.entryId ? ctx.db.packageSessionEntry.findFirst({ ...query, where: { id: BigInt(p.entryId), customerPackage: packageWhere(ctx) } }) : null,
      }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'packages:consume');
      const request = { customerPackageId: input.customerPackageId.id, serviceId: input.serviceId.id, visitId: input.visitId.id };
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const { result, replayed } = await idempotent(tx, principal, input.idempotencyKey, 'consumePackageSession', request, async () => {
          const pkg = await lockPackage(tx, ctx, principal, request.customerPackageId);
          const visit = await tx.visit.findFirst({ where: { AND: [{ id: request.visitId, customerId: pkg.customerId }, visitWhere(ctx)] } });
          if (!visit) throw notFound(fieldPath('visitId'), 'Visit of this customer');
          if (visit.status !== 'CHECKED_IN' && visit.status !== 'COMPLETED') {
            throw conflict('INVALID_STATE', 'Sessions are used on a checked-in or completed visit', fieldPath('visitId'));
          }
          refusedUnlessActive(pkg);
          const line = pkg.lines.find((l) => l.serviceId === request.serviceId);
          if (!line) throw validationError([{ field: fieldPath('serviceId'), message: 'This service is not in the package' }]);
          if (line.sessionsRemaining <= 0) {
            throw packagesError('PackageExhaustedError', 'SESSIONS_EXHAUSTED', 'No session of this service is left', { remainingSessions: 0 }, fieldPath('serviceId'));
          }
          const [entry] = await tx.$queryRaw<{ id: bigint }[]>`
            INSERT INTO package_session_entry (org_id, customer_package_id, service_id, customer_id, kind, sessions, visit_id, store_id, actor)
            VALUES (${principal.orgId}::uuid, ${pkg.id}::uuid, ${line.serviceId}::uuid, ${pkg.customerId}::uuid, 'CONSUME', 1,
                    ${visit.id}::uuid, ${visit.storeId}::uuid, ${principalKey(principal)})
            RETURNING id`;
          const remainingSessions = line.sessionsRemaining - 1;
          await emitPackage(emit, 'package.sessionConsumed', pkg, {
            serviceId: line.serviceId,
            visitId: visit.id,
            consumedAtStoreId: visit.storeId,
            remainingSessions,
          });
          return { customerPackageId: pkg.id, entryId: entry!.id.toString(), remainingSessions };
        });
        return { ...result, replayed };
      });
    },
  });

  const reasonSchema = z.string().trim().min(1, 'Give a reason').max(500, 'A reason is at most 500 characters');

  defineMutation(builder, 'refundPackage', {
    description:
      'Refunds the unused sessions of a package pro rata (packages:refund, at the store that sold it): each unused session is worth ' +
      'its share of the price. Recorded with the sessions and amount; the package is closed. Idempotent by key.',
    input: (t) => ({
      customerPackageId: t.globalID({ required: true }),
      reason: t.string({ required: true }),
      idempotencyKey: t.string({ required: true }),
    }),
    payload: (t) => ({
      ...packagePayload(t),
      ...replayed(t),
      refund: t.prismaField({
        type: 'PackageRefund',
        nullable: true,
        resolve: (query: object, p: { customerPackageId?: string }, _a: unknown, ctx: Context) =>
          p.customerPackageId ? ctx.db.packageRefund.findFirst({ ...query, where: { customerPackageId: p.customerPackageId, customerPackage: packageWhere(ctx) } }) : null,
      }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'packages:refund');
      const reason = parseInput(z.object({ reason: reasonSchema }), { reason: input.reason }).reason;
      const request = { customerPackageId: input.customerPackageId.id, reason };
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const { result, replayed } = await idempotent(tx, principal, input.idempotencyKey, 'refundPackage', request, async () => {
          const pkg = await lockPackage(tx, ctx, principal, request.customerPackageId);
          assertStoreInScope(principal, pkg.storeId, fieldPath('customerPackageId'));
          refusedUnlessActive(pkg, { frozenOk: true });
          const open = pkg.lines.filter((l) => l.sessionsRemaining > 0);
          const sessions = open.reduce((s, l) => s + l.sessionsRemaining, 0);
          const amount = open.reduce((s, l) => s + remainingValue(l), 0);
          const refund = await tx.packageRefund.create({
            data: { orgId: principal.orgId, customerPackageId: pkg.id, storeId: pkg.storeId, sessions, amountMinor: amount, reason, actor: principalKey(principal) },
            select: { id: true },
          });
          for (const line of open) {
            await tx.$executeRaw`
              INSERT INTO package_session_entry (org_id, customer_package_id, service_id, customer_id, kind, sessions, store_id, refund_id, actor)
              VALUES (${principal.orgId}::uuid, ${pkg.id}::uuid, ${line.serviceId}::uuid, ${pkg.customerId}::uuid, 'REFUND',
                      ${line.sessionsRemaining}::int, ${pkg.storeId}::uuid, ${refund.id}::uuid, ${principalKey(principal)})`;
          }
          // The ledger valued the refunded sessions itself: it must agree with the amount recorded.
          const valued = await tx.packageSessionEntry.aggregate({ where: { refundId: refund.id }, _sum: { valueMinor: true } });
          if ((valued._sum.valueMinor ?? 0) !== amount) throw new Error(`refund ${refund.id}: ledger values ${valued._sum.valueMinor}, amount ${amount}`);
          const now = new Date();
          await tx.customerPackage.update({ where: { id: pkg.id }, data: { status: 'REFUNDED', refundedAt: now, frozenAt: null, updatedAt: now } });
          await emitPackage(emit, 'package.refunded', pkg, { sessions, amountMinor: amount, reason });
          return { customerPackageId: pkg.id };
        });
        return { ...result, replayed };
      });
    },
  });

  /** Freeze, unfreeze and extend: a manager at the store that sold the package, with a reason, recorded. */
  async function adjust(
    ctx: Context,
    input: { customerPackageId: { id: string }; reason: string },
    kind: 'FREEZE' | 'UNFREEZE' | 'EXTEND',
    change: (tx: Tx, pkg: Awaited<ReturnType<typeof lockPackage>>, timezone: string) => Promise<{ data: Record<string, unknown>; newExpiresAt: Date }>,
  ) {
    const principal = requireCapability(ctx, 'packages:manage');
    const reason = parseInput(z.object({ reason: reasonSchema }), { reason: input.reason }).reason;
    return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
      const pkg = await lockPackage(tx, ctx, principal, input.customerPackageId.id);
      assertStoreInScope(principal, pkg.storeId, fieldPath('customerPackageId'));
      const store = await tx.store.findUniqueOrThrow({ where: { id: pkg.storeId }, select: { timezone: true } });
      const { data, newExpiresAt } = await change(tx, pkg, store.timezone);
      await tx.customerPackage.update({ where: { id: pkg.id }, data: { ...data, expiresAt: newExpiresAt, updatedAt: new Date() } });
      await tx.packageAdjustment.create({
        data: { orgId: principal.orgId, customerPackageId: pkg.id, kind, previousExpiresAt: pkg.expiresAt, newExpiresAt, reason, actor: principalKey(principal) },
      });
      const type = { FREEZE: 'package.frozen', UNFREEZE: 'package.unfrozen', EXTEND: 'package.extended' }[kind];
      await emitPackage(emit, type, pkg, { expiresAt: newExpiresAt.toISOString(), reason });
      return { customerPackageId: pkg.id };
    });
  }

  defineMutation(builder, 'freezePackage', {
    description: 'Freezes a package (packages:manage): no session can be used until it is unfrozen, and its validity stops running.',
    input: (t) => ({ customerPackageId: t.globalID({ required: true }), reason: t.string({ required: true }) }),
    payload: packagePayload,
    resolve: (input, ctx) =>
      adjust(ctx, input, 'FREEZE', async (_tx, pkg) => {
        if (pkg.status === 'FROZEN') throw conflict('INVALID_STATE', 'The package is already frozen', fieldPath('customerPackageId'));
        refusedUnlessActive(pkg);
        return { data: { status: 'FROZEN', frozenAt: new Date() }, newExpiresAt: pkg.expiresAt };
      }),
  });

  defineMutation(builder, 'unfreezePackage', {
    description: 'Unfreezes a package (packages:manage); its expiry moves later by the whole local days it was frozen.',
    input: (t) => ({ customerPackageId: t.globalID({ required: true }), reason: t.string({ required: true }) }),
    payload: packagePayload,
    resolve: (input, ctx) =>
      adjust(ctx, input, 'UNFREEZE', async (tx, pkg, timezone) => {
        if (pkg.status !== 'FROZEN') throw conflict('INVALID_STATE', 'The package is not frozen', fieldPath('customerPackageId'));
        const frozenDays = Math.ceil((Date.now() - pkg.frozenAt!.getTime()) / 86_400_000);
        const [row] = await tx.$queryRaw<{ at: Date }[]>`
          SELECT (((${pkg.expiresAt}::timestamptz AT TIME ZONE ${timezone}) + make_interval(days => ${frozenDays}::int)) AT TIME ZONE ${timezone}) AS at`;
        return { data: { status: 'ACTIVE', frozenAt: null }, newExpiresAt: row!.at };
      }),
  });

  defineMutation(builder, 'extendPackage', {
    description: 'Extends a package\'s validity by months and/or days in the selling store\'s calendar (packages:manage); also revives an expired one.',
    input: (t) => ({
      customerPackageId: t.globalID({ required: true }),
      months: t.int({ defaultValue: 0 }),
      days: t.int({ defaultValue: 0 }),
      reason: t.string({ required: true }),
    }),
    payload: packagePayload,
    resolve: (rawInput, ctx) => {
      const { months, days } = parseInput(
        z
          .object({ months: z.number().int().min(0).max(24, 'At most 24 months'), days: z.number().int().min(0).max(366, 'At most 366 days') })
          .refine((x) => x.months + x.days > 0, { message: 'Extend by at least one day', path: ['months'] }),
        { months: rawInput.months ?? 0, days: rawInput.days ?? 0 },
      );
      return adjust(ctx, rawInput, 'EXTEND', async (tx, pkg, timezone) => {
        if (pkg.status === 'REFUNDED') throw conflict('PACKAGE_REFUNDED', 'The package was refunded', fieldPath('customerPackageId'));
        // From the last valid local day (expires_at is the end of it).
        const lastDay = new Date(pkg.expiresAt.getTime() - 1);
        return { data: {}, newExpiresAt: await endOfLocalDayAfter(tx, lastDay, timezone, months, days) };
      });
    },
  });
}
