import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { z } from 'zod';
import { can, principalKey, storeScope } from '../../core/auth/policy.ts';
import type { Principal } from '../../core/auth/principal.ts';
import type { Tx } from '../../core/db/clients.ts';
import { Prisma, type PointsAccount } from '../../core/db/generated/client.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { assertStoreInScope, customerWhere, orgWhere, requireCapability } from '../../core/graph/access.ts';
import { loadCustomerRow, type CustomerRowSource } from '../../core/graph/customer-rows.ts';
import { idempotent } from '../../core/graph/idempotency.ts';
import { organizationEvents } from '../../core/graph/subscriptions.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import { loader, requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { fieldPath, notFound, parseInput, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import { selectsColumnsOnly } from '../../core/graphql/selection.ts';
import type { SchemaContext } from '../../core/plugin/contract.ts';
import type { PointsConfig } from './config.ts';
import { pointsError, registerPointsErrors } from './errors.ts';
import { credit, debit, ensureAccount, lockAccount, restoreDebit, type Account } from './ledger.ts';
import { pointsMetrics } from './metrics.ts';

/** Extension point: the customer's tier code, for rewards limited to tiers (offered by the tiers plugin). */
export const CUSTOMER_TIER = 'points.customerTier';
export type CustomerTier = (args: { tx: Tx; orgId: string; customerId: string }) => Promise<string | null>;

const ENTRY_KINDS = ['EARN', 'REDEEM', 'EXPIRE', 'ADJUST', 'DONATE', 'REVERSAL'] as const;
const REWARD_KINDS = ['SERVICE', 'PRODUCT', 'CONSULTATION', 'PARTNER_PERK'] as const;

/** The customer a points mutation acts for: a customer acts for themself; staff name one they can see. */
async function targetCustomer(tx: Tx, ctx: Context, principal: Principal, customerId: string | undefined): Promise<string> {
  if (principal.kind === 'CUSTOMER') {
    if (customerId && customerId !== principal.customerId) throw notFound(fieldPath('customerId'), 'Customer');
    return principal.customerId;
  }
  if (!customerId) throw validationError([{ field: fieldPath('customerId'), message: 'customerId is required' }]);
  const visible = await tx.customer.findFirst({ where: { AND: [{ id: customerId }, customerWhere(ctx)] }, select: { id: true } });
  if (!visible) throw notFound(fieldPath('customerId'), 'Customer');
  return customerId;
}

async function memberAccount(tx: Tx, principal: Principal, customerId: string): Promise<Account> {
  const account = await ensureAccount(tx, principal.orgId, customerId);
  if (!account) throw pointsError('ValidationError', 'NOT_A_MEMBER', 'The customer is not a member: enrol them first', {}, fieldPath('customerId'));
  return account;
}

/** The member's account, read beside other plugins' per-customer rows (core/graph/customer-rows.ts). */
const accountRow: CustomerRowSource<PointsAccount> = {
  name: 'points.account',
  subquery: (ctx) => Prisma.sql`
    SELECT json_build_object('membershipId', a.membership_id, 'orgId', a.org_id, 'customerId', a.customer_id, 'balance', a.balance,
                             'createdAt', a.created_at, 'updatedAt', a.updated_at)
    FROM points_account a WHERE a.customer_id = c.id AND a.org_id = ${requirePrincipal(ctx).orgId}::uuid`,
  parse: (row) => ({ ...(row as unknown as PointsAccount), createdAt: new Date(row.createdAt as string), updatedAt: new Date(row.updatedAt as string) }),
};

/** Staff act at one of their stores (defaulting to their first); customers at their home store. */
function actingStore(principal: Principal, storeId: string | undefined, homeStoreId: string | null): string | null {
  if (storeId) {
    assertStoreInScope(principal, storeId, fieldPath('storeId'));
    return storeId;
  }
  const stores = storeScope(principal);
  return stores?.[0] ?? homeStoreId;
}

export function registerPointsSchema(builder: Builder, { config, contributions }: SchemaContext<PointsConfig>) {
  registerPointsErrors(builder);
  const EntryKind = builder.enumType('PointsEntryKind', { values: ENTRY_KINDS });
  const RewardKind = builder.enumType('PointsRewardKind', { values: REWARD_KINDS });
  const RedemptionStatus = builder.enumType('PointsRedemptionStatus', { values: ['ACTIVE', 'CANCELLED'] as const });

  builder.prismaObject('PointsLot', {
    description: 'Points earned together; they expire together, and are spent oldest first.',
    fields: (t) => ({
      remaining: t.exposeInt('remaining'),
      original: t.exposeInt('original'),
      earnedAt: t.expose('earnedAt', { type: 'DateTime' }),
      expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    }),
  });

  builder.prismaObject('PointsEntry', {
    description: 'One line of the ledger. Entries are never changed: a correction is a new entry.',
    fields: (t) => ({
      id: t.id({ resolve: (entry) => entry.id.toString() }),
      kind: t.expose('kind', { type: EntryKind }),
      amount: t.exposeInt('amount', { description: 'Signed: positive adds points, negative takes them.' }),
      source: t.exposeString('source', { description: 'VISIT, WELCOME, SURVEY, CARE_DIARY, PROFILE, HEALTH_CHECK_IN, REFERRAL, REWARD, DONATION, EXPIRY, MANUAL, …' }),
      sourceRef: t.exposeString('sourceRef', { nullable: true }),
      reason: t.exposeString('reason', { nullable: true }),
      actor: t.exposeString('actor', { description: 'Who caused it, e.g. staff:<id>, customer:<id>, plugin:points.' }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
    }),
  });

  const ExpiringPoints = builder.objectRef<{ points: number; lots: unknown[] }>('ExpiringPoints').implement({
    fields: (t) => ({
      points: t.exposeInt('points'),
      lots: t.field({ type: ['PointsLot' as never], resolve: (e) => e.lots as never }),
    }),
  });

  const LedgerFilter = builder.inputType('PointsLedgerFilter', {
    fields: (t) => ({
      kinds: t.field({ type: [EntryKind] }),
      from: t.field({ type: 'DateTime' }),
      to: t.field({ type: 'DateTime' }),
    }),
  });

  builder.prismaObject('PointsAccount', {
    description: 'A member\'s points. The balance always equals the sum of the ledger and is never negative.',
    fields: (t) => ({
      balance: t.exposeInt('balance'),
      lots: t.relation('lots', {
        description: 'Lots with points left, soonest to expire first.',
        query: () => ({ where: { remaining: { gt: 0 }, expiresAt: { gt: new Date() } }, orderBy: [{ expiresAt: 'asc' }, { id: 'asc' }] }),
      }),
      expiringSoon: t.field({
        type: ExpiringPoints,
        description: `Points that expire within the given days (default ${config.expiringSoonDays}).`,
        args: { withinDays: t.arg.int({ required: false }) },
        select: (args) => ({
          lots: {
            where: {
              remaining: { gt: 0 },
              expiresAt: { gt: new Date(), lte: new Date(Date.now() + (args.withinDays ?? config.expiringSoonDays) * 86_400_000) },
            },
            orderBy: [{ expiresAt: 'asc' }, { id: 'asc' }],
          },
        }),
        resolve: (account) => ({ points: account.lots.reduce((sum, lot) => sum + lot.remaining, 0), lots: account.lots }),
      }),
      ledger: t.relatedConnection('entries', {
        cursor: 'id',
        description: 'The ledger, newest first.',
        args: { filter: t.arg({ type: LedgerFilter, required: false }) },
        query: (args) => ({
          where: {
            ...(args.filter?.kinds?.length ? { kind: { in: args.filter.kinds } } : {}),
            ...(args.filter?.from || args.filter?.to
              ? { createdAt: { ...(args.filter.from ? { gte: args.filter.from } : {}), ...(args.filter.to ? { lt: args.filter.to } : {}) } }
              : {}),
          },
          orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        }),
      }, { name: 'PointsLedgerConnection' }, { name: 'PointsLedgerEdge' }),
    }),
  });

  builder.prismaObjectField('Customer', 'points', (t) =>
    t.prismaField({
      type: 'PointsAccount',
      nullable: true,
      description: 'Loyalty points (null for a customer who is not a member).',
      resolve: (query, customer, _args, ctx) => {
        if (selectsColumnsOnly(query, Prisma.PointsAccountScalarFieldEnum)) return loadCustomerRow(ctx, accountRow, customer.id) as never;
        // Relations asked for (lots, the ledger): Prisma reads them. The query shape keys the loader; a ledger page's
        // cursor is a BigInt id, which JSON.stringify refuses.
        return loader(ctx, `Customer.points:${JSON.stringify(query, (_key, value) => (typeof value === 'bigint' ? value.toString() : value))}`, () =>
          new DataLoader<string, unknown>(async (customerIds) => {
            const accounts = await ctx.db.pointsAccount.findMany({ ...(query as object), where: { customerId: { in: [...customerIds] } } });
            const byCustomer = new Map(accounts.map((account) => [account.customerId, account]));
            return customerIds.map((id) => byCustomer.get(id) ?? null);
          }),
        ).load(customer.id) as never;
      },
    }),
  );

  builder.prismaNode('PointsReward', {
    description: 'Something members can redeem points for: a service, a product, a consultation or a partner perk.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [orgWhere(ctx)] }),
    fields: (t) => ({
      kind: t.expose('kind', { type: RewardKind }),
      name: t.exposeString('name'),
      description: t.exposeString('description', { nullable: true }),
      pointsPrice: t.exposeInt('pointsPrice'),
      stock: t.exposeInt('stock', { nullable: true, description: 'Null means unlimited.' }),
      validFrom: t.expose('validFrom', { type: 'DateTime', nullable: true }),
      validUntil: t.expose('validUntil', { type: 'DateTime', nullable: true }),
      perCustomerLimit: t.exposeInt('perCustomerLimit', { nullable: true }),
      eligibleTiers: t.exposeStringList('eligibleTiers', { description: 'Tier codes that may redeem (empty: everyone). Applies when the tiers plugin is on.' }),
      active: t.exposeBoolean('active'),
    }),
  });

  builder.prismaNode('PointsRedemption', {
    description: 'A reward redeemed with points.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [orgWhere(ctx), redemptionWhere(ctx)] }),
    fields: (t) => ({
      reward: t.relation('reward'),
      quantity: t.exposeInt('quantity'),
      points: t.exposeInt('points'),
      status: t.expose('status', { type: RedemptionStatus }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
      cancelledAt: t.expose('cancelledAt', { type: 'DateTime', nullable: true }),
      cancelReason: t.exposeString('cancelReason', { nullable: true }),
    }),
  });

  function redemptionWhere(ctx: Context) {
    const principal = requirePrincipal(ctx);
    return principal.kind === 'CUSTOMER' ? { customerId: principal.customerId } : can(principal, 'customers:read') ? {} : { id: { in: [] } };
  }

  builder.queryFields((t) => ({
    pointsRewards: t.prismaField({
      type: ['PointsReward'],
      description: 'The rewards catalogue. By default only rewards redeemable now (active, in their window, in stock).',
      args: { includeUnavailable: t.arg.boolean({ required: false, defaultValue: false }) },
      resolve: (query, _root, args, ctx) => {
        const now = new Date();
        return ctx.db.pointsReward.findMany({
          ...query,
          where: {
            ...orgWhere(ctx),
            ...(args.includeUnavailable && can(ctx.principal, 'points:manage')
              ? {}
              : {
                  active: true,
                  AND: [
                    { OR: [{ validFrom: null }, { validFrom: { lte: now } }] },
                    { OR: [{ validUntil: null }, { validUntil: { gt: now } }] },
                    { OR: [{ stock: null }, { stock: { gt: 0 } }] },
                  ],
                }),
          },
          orderBy: [{ pointsPrice: 'asc' }, { name: 'asc' }],
        });
      },
    }),
    pointsCharityPool: t.field({
      type: builder.objectRef<{ totalDonated: number; donations: number }>('PointsCharityPool').implement({
        description: 'Points members have donated to the organization\'s charity programme.',
        fields: (f) => ({ totalDonated: f.exposeInt('totalDonated'), donations: f.exposeInt('donations') }),
      }),
      resolve: async (_root, _args, ctx) => {
        const principal = requirePrincipal(ctx);
        const [pool] = await ctx.db.$queryRaw<{ totalDonated: number; donations: number }[]>`
          SELECT coalesce(-sum(amount), 0)::int AS "totalDonated", count(*)::int AS donations
          FROM points_entry WHERE org_id = ${principal.orgId}::uuid AND kind = 'DONATE'`;
        return pool!;
      },
    }),
  }));

  pointsMetrics(builder);

  const redemptionPayload = (t: any) => ({
    redemption: t.prismaField({
      type: 'PointsRedemption',
      nullable: true,
      resolve: (query: object, payload: { redemptionId?: string }, _args: unknown, ctx: Context) =>
        payload.redemptionId ? ctx.db.pointsRedemption.findFirst({ ...query, where: { id: payload.redemptionId } }) : null,
    }),
    balance: t.int({ nullable: true, description: 'The balance after the change.', resolve: (p: { balance?: number }) => p.balance ?? null }),
    replayed: t.boolean({ nullable: true, resolve: (p: { replayed?: boolean }) => p.replayed ?? null }),
  });

  defineMutation(builder, 'redeemReward', {
    description:
      'Redeems a reward with points, oldest points first. Idempotent by key. Typed errors: InsufficientPointsError, ' +
      'RedemptionCapExceededError, OutOfStockError, RewardNotAvailableError.',
    input: (t) => ({
      rewardId: t.globalID({ required: true }),
      customerId: t.globalID({ description: 'Required for staff; a customer redeems for themself.' }),
      quantity: t.int({ defaultValue: 1 }),
      storeId: t.globalID({ description: 'Where it is redeemed (defaults to the caller\'s store or the member\'s home store).' }),
      idempotencyKey: t.string({ required: true }),
    }),
    payload: redemptionPayload,
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      if (principal.kind !== 'CUSTOMER') requireCapability(ctx, 'points:redeem');
      const quantity = input.quantity ?? 1;
      if (!Number.isInteger(quantity) || quantity < 1 || quantity > 100) {
        throw validationError([{ field: fieldPath('quantity'), message: 'Quantity must be 1 to 100' }]);
      }
      const request = { rewardId: input.rewardId.id, customerId: input.customerId?.id, quantity, storeId: input.storeId?.id };
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const { result, replayed } = await idempotent(tx, principal, input.idempotencyKey, 'redeemReward', request, async () => {
          const customerId = await targetCustomer(tx, ctx, principal, request.customerId);
          const account = await memberAccount(tx, principal, customerId);
          // The account before the reward (cancelRedemption takes them in that order too), and before the monthly
          // cap is read: redemptions of one member happen one at a time, whichever rewards they are for.
          await lockAccount(tx, account);
          const [reward] = await tx.$queryRaw<
            { id: string; name: string; pointsPrice: number; stock: number | null; active: boolean; validFrom: Date | null; validUntil: Date | null; perCustomerLimit: number | null; eligibleTiers: string[] }[]
          >`SELECT id, name, points_price AS "pointsPrice", stock, active, valid_from AS "validFrom", valid_until AS "validUntil",
                   per_customer_limit AS "perCustomerLimit", eligible_tiers AS "eligibleTiers"
            FROM points_reward WHERE id = ${request.rewardId}::uuid AND org_id = ${principal.orgId}::uuid`;
          if (!reward) throw notFound(fieldPath('rewardId'), 'Reward');
          const now = new Date();
          const unavailable = (code: string, message: string) => pointsError('RewardNotAvailableError', code, message, {}, fieldPath('rewardId'));
          if (!reward.active) throw unavailable('REWARD_INACTIVE', 'This reward is no longer offered');
          if ((reward.validFrom && reward.validFrom > now) || (reward.validUntil && reward.validUntil <= now)) {
            throw unavailable('REWARD_OUT_OF_WINDOW', 'This reward cannot be redeemed at this time');
          }
          if (reward.eligibleTiers.length) {
            // Without a tiers plugin there are no tiers to restrict by.
            for (const tierOf of contributions<CustomerTier>(CUSTOMER_TIER).slice(0, 1)) {
              const tier = await tierOf({ tx, orgId: principal.orgId, customerId });
              if (!tier || !reward.eligibleTiers.includes(tier)) {
                throw unavailable('TIER_NOT_ELIGIBLE', `This reward is for ${reward.eligibleTiers.join(', ')} members`);
              }
            }
          }
          if (reward.stock !== null && reward.stock < quantity) {
            throw pointsError('OutOfStockError', 'OUT_OF_STOCK', 'Not enough of this reward is left', { available: reward.stock }, fieldPath('quantity'));
          }
          if (reward.perCustomerLimit !== null) {
            const taken = await tx.pointsRedemption.aggregate({ where: { customerId, rewardId: reward.id, status: 'ACTIVE' }, _sum: { quantity: true } });
            if ((taken._sum.quantity ?? 0) + quantity > reward.perCustomerLimit) {
              throw unavailable('PER_CUSTOMER_LIMIT', `Each customer may redeem this at most ${reward.perCustomerLimit} times`);
            }
          }
          const points = reward.pointsPrice * quantity;
          await checkMonthlyCap(tx, ctx, config, principal.orgId, customerId, points);
          const customer = await tx.customer.findUniqueOrThrow({ where: { id: customerId }, select: { homeStoreId: true } });
          const storeId = actingStore(principal, request.storeId, customer.homeStoreId);
          // Org-wide callers pass the scope check for any id: an unknown store, or another organization's, is not found.
          if (request.storeId && !(await tx.store.findFirst({ where: { id: request.storeId, orgId: principal.orgId }, select: { id: true } }))) {
            throw notFound(fieldPath('storeId'), 'Store');
          }
          const debited = await debit({ tx, emit, actor: principalKey(principal) }, account, 'REDEEM', points, {
            source: 'REWARD',
            sourceRef: reward.id,
            storeId,
            reason: `${quantity} × ${reward.name}`,
          }, 'points.redeemed');
          // The reward row is locked only when its stock is limited, by this conditional decrement: redemptions of
          // an unlimited reward by different members never wait on each other.
          if (reward.stock !== null) {
            const taken = await tx.pointsReward.updateMany({ where: { id: reward.id, stock: { gte: quantity } }, data: { stock: { decrement: quantity } } });
            if (taken.count === 0) {
              const { stock } = await tx.pointsReward.findUniqueOrThrow({ where: { id: reward.id }, select: { stock: true } });
              throw pointsError('OutOfStockError', 'OUT_OF_STOCK', 'Not enough of this reward is left', { available: stock ?? 0 }, fieldPath('quantity'));
            }
          }
          const redemption = await tx.pointsRedemption.create({
            data: { orgId: principal.orgId, accountId: account.membershipId, customerId, rewardId: reward.id, storeId, quantity, points, debitEntryId: debited!.entryId },
            select: { id: true },
          });
          return { redemptionId: redemption.id, balance: debited!.balance };
        });
        return { ...result, replayed };
      });
    },
  });

  defineMutation(builder, 'cancelRedemption', {
    description: 'Cancels a redemption: its points return to the lots they came from, and the stock is restored.',
    input: (t) => ({
      redemptionId: t.globalID({ required: true }),
      reason: t.string({ required: true }),
      idempotencyKey: t.string({ required: true }),
    }),
    payload: redemptionPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'points:redeem');
      const reason = input.reason.trim();
      if (!reason || reason.length > 500) throw validationError([{ field: fieldPath('reason'), message: 'Give a reason of at most 500 characters' }]);
      const redemptionId = input.redemptionId.id;
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const { result, replayed } = await idempotent(tx, principal, input.idempotencyKey, 'cancelRedemption', { redemptionId, reason }, async () => {
          const [locked] = await tx.$queryRaw<{ id: string }[]>`
            SELECT id FROM points_redemption WHERE id = ${redemptionId}::uuid AND org_id = ${principal.orgId}::uuid FOR UPDATE`;
          const redemption = locked ? await tx.pointsRedemption.findUnique({ where: { id: redemptionId } }) : null;
          const stores = storeScope(principal);
          if (!redemption || (stores && redemption.storeId && !stores.includes(redemption.storeId))) {
            throw notFound(fieldPath('redemptionId'), 'Redemption');
          }
          if (redemption.status !== 'ACTIVE') throw pointsError('ConflictError', 'INVALID_STATE', 'The redemption is already cancelled', {}, fieldPath('redemptionId'));
          const account = (await ensureAccount(tx, principal.orgId, redemption.customerId))!;
          const restored = await restoreDebit({ tx, emit, actor: principalKey(principal) }, account, redemption.debitEntryId, {
            source: 'REWARD',
            sourceRef: redemption.rewardId,
            storeId: redemption.storeId,
            reason: `Redemption cancelled: ${reason}`,
          }, 'points.redemptionCancelled');
          await tx.pointsReward.updateMany({ where: { id: redemption.rewardId, stock: { not: null } }, data: { stock: { increment: redemption.quantity } } });
          await tx.pointsRedemption.update({
            where: { id: redemptionId },
            data: { status: 'CANCELLED', cancelledAt: new Date(), cancelReason: reason, reversalEntryId: restored?.entryId ?? null },
          });
          return { redemptionId, balance: restored?.balance };
        });
        return { ...result, replayed };
      });
    },
  });

  const balancePayload = (t: any) => ({
    balance: t.int({ nullable: true, resolve: (p: { balance?: number }) => p.balance ?? null }),
    replayed: t.boolean({ nullable: true, resolve: (p: { replayed?: boolean }) => p.replayed ?? null }),
  });

  defineMutation(builder, 'donatePoints', {
    description: 'Donates points to the organization\'s charity programme (oldest points first). Idempotent by key.',
    input: (t) => ({
      customerId: t.globalID({ description: 'Required for staff; a customer donates their own.' }),
      points: t.int({ required: true }),
      idempotencyKey: t.string({ required: true }),
    }),
    payload: balancePayload,
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      if (principal.kind !== 'CUSTOMER') requireCapability(ctx, 'points:redeem');
      const { points } = parseInput(z.object({ points: z.number().int().min(1).max(10_000_000) }), { points: input.points });
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const request = { customerId: input.customerId?.id, points };
        const { result, replayed } = await idempotent(tx, principal, input.idempotencyKey, 'donatePoints', request, async () => {
          const customerId = await targetCustomer(tx, ctx, principal, request.customerId);
          const account = await memberAccount(tx, principal, customerId);
          // Counted, like a redemption, at the caller's store (or the member's home store) in per-store metrics.
          const customer = await tx.customer.findUniqueOrThrow({ where: { id: customerId }, select: { homeStoreId: true } });
          const done = await debit({ tx, emit, actor: principalKey(principal) }, account, 'DONATE', points, {
            source: 'DONATION',
            storeId: actingStore(principal, undefined, customer.homeStoreId),
            reason: 'Donated to the charity programme',
          }, 'points.donated');
          return { balance: done!.balance };
        });
        return { ...result, replayed };
      });
    },
  });

  defineMutation(builder, 'adjustPoints', {
    description: 'Corrects a balance by hand (positive adds a lot, negative takes oldest first). Needs points:adjust and a reason; audited.',
    input: (t) => ({
      customerId: t.globalID({ required: true }),
      points: t.int({ required: true, description: 'Signed, not zero.' }),
      reason: t.string({ required: true }),
      idempotencyKey: t.string({ required: true }),
    }),
    payload: balancePayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'points:adjust');
      const { points, reason } = parseInput(
        z.object({
          points: z.number().int().min(-10_000_000).max(10_000_000).refine((n) => n !== 0, 'Points must not be zero'),
          reason: z.string().trim().min(3, 'Give a reason').max(500),
        }),
        { points: input.points, reason: input.reason },
      );
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const request = { customerId: input.customerId.id, points, reason };
        const { result, replayed } = await idempotent(tx, principal, input.idempotencyKey, 'adjustPoints', request, async () => {
          const customerId = await targetCustomer(tx, ctx, principal, request.customerId);
          const account = await memberAccount(tx, principal, customerId);
          const write = { tx, emit, actor: principalKey(principal) };
          const entry = { source: 'MANUAL', reason };
          const done =
            points > 0
              ? await credit(write, account, 'ADJUST', points, { ...entry, lifetimeMonths: config.lotLifetimeMonths, timezone: (await ctx.platform.orgSettings(principal.orgId)).timezone }, 'points.adjusted')
              : await debit(write, account, 'ADJUST', -points, entry, 'points.adjusted');
          return { balance: done!.balance };
        });
        return { ...result, replayed };
      });
    },
  });

  defineMutation(builder, 'createPointsReward', {
    description: 'Adds a reward to the catalogue (points:manage).',
    input: (t) => ({
      kind: t.field({ type: RewardKind, required: true }),
      name: t.string({ required: true }),
      description: t.string(),
      pointsPrice: t.int({ required: true }),
      stock: t.int(),
      validFrom: t.field({ type: 'DateTime' }),
      validUntil: t.field({ type: 'DateTime' }),
      perCustomerLimit: t.int(),
      eligibleTiers: t.stringList(),
    }),
    payload: (t) => ({
      reward: t.prismaField({
        type: 'PointsReward',
        nullable: true,
        resolve: (query: object, p: { rewardId?: string }, _a: unknown, ctx: Context) =>
          p.rewardId ? ctx.db.pointsReward.findFirst({ ...query, where: { id: p.rewardId } }) : null,
      }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'points:manage');
      const data = parseInput(
        z
          .object({
            name: z.string().trim().min(1).max(120),
            description: z.string().trim().max(1000).nullish(),
            pointsPrice: z.number().int().min(1).max(10_000_000),
            stock: z.number().int().min(0).nullish(),
            perCustomerLimit: z.number().int().min(1).nullish(),
            validFrom: z.date().nullish(),
            validUntil: z.date().nullish(),
            eligibleTiers: z.array(z.string().trim().min(1).max(40)).max(20).nullish(),
          })
          .refine((r) => !r.validFrom || !r.validUntil || r.validUntil > r.validFrom, { message: 'validUntil must be after validFrom', path: ['validUntil'] }),
        input,
      );
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx) => {
        const reward = await tx.pointsReward.create({
          data: {
            orgId: principal.orgId,
            kind: input.kind,
            name: data.name,
            description: data.description ?? null,
            pointsPrice: data.pointsPrice,
            stock: data.stock ?? null,
            perCustomerLimit: data.perCustomerLimit ?? null,
            validFrom: data.validFrom ?? null,
            validUntil: data.validUntil ?? null,
            eligibleTiers: data.eligibleTiers ?? [],
          },
          select: { id: true },
        });
        return { rewardId: reward.id };
      });
    },
  });

  builder.subscriptionField('pointsChanged', (t) =>
    t.field({
      type: builder.objectRef<{ payload: Record<string, unknown>; type: string; occurredAt: string }>('PointsChange').implement({
        description: 'A member\'s points moved.',
        fields: (f) => ({
          type: f.exposeString('type', { description: 'points.earned, points.redeemed, points.expired, …' }),
          delta: f.int({ resolve: (e) => e.payload.delta as number }),
          balance: f.int({ resolve: (e) => e.payload.balance as number }),
          occurredAt: f.field({ type: 'DateTime', resolve: (e) => new Date(e.occurredAt) }),
        }),
      }),
      description: 'Points changes of one member: for the customer themself and for staff of their stores.',
      args: { customerId: t.arg.globalID({ required: true }) },
      subscribe: async (_root, args, ctx) => {
        const principal = requirePrincipal(ctx);
        const customerId = args.customerId.id;
        // AND, not a spread: a customer principal's filter names an id of its own, which would replace the one asked for.
        const customer = await ctx.db.customer.findFirst({ where: { AND: [{ id: customerId }, customerWhere(ctx)] }, select: { homeStoreId: true } });
        const stores = storeScope(principal);
        const allowed = customer && (principal.kind === 'CUSTOMER' || !stores || (customer.homeStoreId && stores.includes(customer.homeStoreId)));
        if (!allowed) throw new GraphQLError('Customer not found', { extensions: { code: 'NOT_FOUND' } });
        return organizationEvents(ctx, (event) => event.aggregateType === 'PointsAccount' && event.payload.customerId === customerId);
      },
      resolve: (event) => event,
    }),
  );
}

/**
 * Points redeemed in the current calendar month (organization's time zone), valued at the configured
 * point value, may not exceed the configured share of the customer's spend in that month.
 */
async function checkMonthlyCap(tx: Tx, ctx: Context, config: PointsConfig, orgId: string, customerId: string, points: number) {
  const cap = config.monthlyRedemptionCap;
  if (!cap) return;
  const { timezone } = await ctx.platform.orgSettings(orgId);
  const [month] = await tx.$queryRaw<{ spend: bigint; redeemed: bigint }[]>`
    WITH bounds AS (
      SELECT date_trunc('month', now() AT TIME ZONE ${timezone}) AT TIME ZONE ${timezone} AS starts,
             (date_trunc('month', now() AT TIME ZONE ${timezone}) + interval '1 month') AT TIME ZONE ${timezone} AS ends
    )
    SELECT
      (SELECT coalesce(sum(total_minor), 0) FROM visit, bounds
        WHERE customer_id = ${customerId}::uuid AND status = 'COMPLETED' AND completed_at >= starts AND completed_at < ends)::bigint AS spend,
      (SELECT coalesce(sum(points), 0) FROM points_redemption, bounds
        WHERE customer_id = ${customerId}::uuid AND status = 'ACTIVE' AND created_at >= starts AND created_at < ends)::bigint AS redeemed`;
  // Compare in integers: redeemed points × point value × 100 ≤ percent × spend.
  const allowedPoints = (month!.spend * BigInt(cap.percentOfMonthlySpend)) / (100n * BigInt(cap.pointValueMinor));
  const remaining = allowedPoints - month!.redeemed;
  if (BigInt(points) > remaining) {
    throw pointsError(
      'RedemptionCapExceededError',
      'MONTHLY_CAP_EXCEEDED',
      `This month's redemptions are capped at ${cap.percentOfMonthlySpend}% of this month's spend`,
      { remainingPoints: Number(remaining > 0n ? remaining : 0n) },
      fieldPath('rewardId'),
    );
  }
}
