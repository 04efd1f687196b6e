import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { z } from 'zod';
import { can, principalKey, storeScope } from '../../core/auth/policy.ts';
import type { Principal } from '../../core/auth/principal.ts';
import type { Prisma } from '../../core/db/generated/client.ts';
import type { Tx } from '../../core/db/clients.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { customerWhere, orgWhere, requireCapability, visitWhere } from '../../core/graph/access.ts';
import { moneyFor, toMinorUnits } from '../../core/graph/money.ts';
import { organizationEvents } from '../../core/graph/subscriptions.ts';
import { pageCost, type Builder } from '../../core/graphql/builder.ts';
import { loader, requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { conflict, DomainError, fieldPath, notFound, parseInput, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import type { SchemaContext } from '../../core/plugin/contract.ts';
import { formatCode, normalizeCode } from './codes.ts';
import { BENEFIT_KINDS, levelsSchema, type Benefit, type ReferralsConfig } from './config.ts';
import { registerReferralErrors } from './errors.ts';
import { levelFor, nextLevelAfter, partnerLevels, referrerStats, type PartnerLevel, type ReferrerStats } from './levels.ts';
import { claimReferral, reject, writer } from './lifecycle.ts';
import { referralMetricsQuery, type ReferralMetricsRow, type TopReferrerRow } from './metrics.ts';

const STATUSES = ['PENDING', 'QUALIFIED', 'REWARDED', 'EXPIRED', 'REJECTED'] as const;
const REJECTION_CODES = ['SAME_PHONE', 'QUALIFYING_VISIT_REFUNDED', 'REPORTED_FRAUD'] as const;

/** Benefit texts may not make absolute claims ("most effective", "top expert", 最佳, 第一 …): advertising rules. */
const ABSOLUTE_CLAIM = /最佳|最好|最优|最强|最有效|最专业|最权威|第一|顶级|首选|唯一|国家级|100%|\b(best|most effective|top expert|number one|no\.\s?1|guaranteed?)\b/i;

/** Which referrals a caller may see: staff who read customers see their organization's; a customer their own, either side. */
function referralWhere(ctx: Context): Prisma.ReferralWhereInput {
  const principal = requirePrincipal(ctx);
  if (principal.kind === 'CUSTOMER') {
    return { orgId: principal.orgId, OR: [{ referrerId: principal.customerId }, { refereeId: principal.customerId }] };
  }
  return can(principal, 'customers:read') ? { orgId: principal.orgId } : { id: { in: [] } };
}

/** "王丽华" → "王**", "Alice Wong" → "A*********": enough for a referrer to recognise a friend, nothing more. */
export function maskName(name: string): string {
  const chars = [...name.trim()];
  return chars.length <= 1 ? '*' : `${chars[0]}${'*'.repeat(Math.min(chars.length - 1, 9))}`;
}

/** A Pothos query shape with `id` selected, so rows loaded by id can be matched back to their keys. */
function withId(query: object): object {
  const select = (query as { select?: Record<string, unknown> }).select;
  return select ? { ...query, select: { ...select, id: true } } : query;
}

/** Customers by id as the caller may see them (others load as null), batched per query shape. */
function customerLoader(ctx: Context, query: object) {
  return loader(ctx, `referrals.customer:${JSON.stringify(query)}`, () =>
    new DataLoader<string, unknown>(async (ids) => {
      const rows = await ctx.db.customer.findMany({ ...(withId(query) as object), where: { AND: [{ id: { in: [...ids] } }, customerWhere(ctx)] } });
      const byId = new Map(rows.map((row) => [(row as { id: string }).id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  );
}

function visitLoader(ctx: Context, query: object) {
  return loader(ctx, `referrals.visit:${JSON.stringify(query)}`, () =>
    new DataLoader<string, unknown>(async (ids) => {
      const rows = await ctx.db.visit.findMany({ ...(withId(query) as object), where: { AND: [{ id: { in: [...ids] } }, visitWhere(ctx)] } });
      const byId = new Map(rows.map((row) => [(row as { id: string }).id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  );
}

function levelsOf(ctx: Context, config: ReferralsConfig): Promise<PartnerLevel[]> {
  const orgId = requirePrincipal(ctx).orgId;
  return loader(ctx, 'referrals.levels', () => new DataLoader<string, PartnerLevel[]>(async (orgs) => Promise.all(orgs.map((org) => partnerLevels(ctx.db, org, config))))).load(orgId);
}

interface ProfileValue {
  customerId: string;
  code: string | null;
  stats: ReferrerStats;
}

/** The customer a referral mutation acts for: a customer acts for themself; staff name one they can see. */
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

export function registerReferralsSchema(builder: Builder, { config }: SchemaContext<ReferralsConfig>) {
  registerReferralErrors(builder);
  const Status = builder.enumType('ReferralStatus', {
    values: STATUSES,
    description: 'PENDING (claimed) → QUALIFIED (first paid visit) → REWARDED (both sides paid in points); EXPIRED; REJECTED.',
  });
  const RejectionCode = builder.enumType('ReferralRejectionCode', { values: REJECTION_CODES });
  const BenefitKind = builder.enumType('ReferralBenefitKind', {
    values: BENEFIT_KINDS,
    description: 'What a partner level gives. Services and perks only: there is no cash benefit.',
  });

  // --- Partner levels -------------------------------------------------------------------------------------------
  const BenefitRef = builder.objectRef<Benefit>('ReferralPartnerBenefit').implement({
    fields: (t) => ({
      kind: t.field({ type: BenefitKind, resolve: (b) => b.kind }),
      description: t.exposeString('description'),
      service: t.prismaField({
        type: 'Service',
        nullable: true,
        resolve: (query, b, _args, ctx) => (b.serviceId ? ctx.db.service.findFirst({ ...query, where: { id: b.serviceId, ...orgWhere(ctx) } }) : null),
      }),
    }),
  });
  const LevelRef = builder.objectRef<PartnerLevel>('ReferralPartnerLevel').implement({
    description: 'An "aesthetic partner" level (e.g. apprentice / official / gold), held by converted referrals and own spend.',
    fields: (t) => ({
      code: t.exposeString('code'),
      name: t.exposeString('name'),
      rank: t.exposeInt('rank', { description: '0 for the first level.' }),
      minConvertedReferrals: t.exposeInt('minConvertedReferrals'),
      minSpendLast12Months: t.field({ type: 'Money', resolve: (level, _a, ctx) => moneyFor(ctx, level.minSpend12mMinor) }),
      referralBonusPercent: t.exposeInt('referralBonusPercent', { description: 'Extra referrer points per converted referral, as a % of the base reward.' }),
      benefits: t.field({ type: [BenefitRef], resolve: (level) => level.benefits }),
    }),
  });

  // --- Referral -------------------------------------------------------------------------------------------------
  builder.prismaNode('Referral', {
    description: 'A newcomer (referee) who registered with an existing customer\'s (referrer\'s) code.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [referralWhere(ctx)] }),
    fields: (t) => ({
      status: t.expose('status', { type: Status }),
      code: t.string({ description: 'The code claimed, as shown (K7QM-2XPA).', resolve: (r) => formatCode(r.code) }),
      referrer: t.prismaField({
        type: 'Customer',
        nullable: true,
        description: 'Null for callers who may not see that customer (a customer sees only themself).',
        resolve: (query, r, _a, ctx) => customerLoader(ctx, query).load(r.referrerId) as never,
      }),
      referee: t.prismaField({
        type: 'Customer',
        nullable: true,
        description: 'Null for callers who may not see that customer (a referrer sees only refereeName).',
        resolve: (query, r, _a, ctx) => customerLoader(ctx, query).load(r.refereeId) as never,
      }),
      refereeName: t.string({
        description: 'The newcomer\'s name, masked (王**), for the referrer.',
        resolve: (r, _a, ctx) =>
          loader(ctx, 'referrals.refereeName', () =>
            new DataLoader<string, string>(async (ids) => {
              // Names of customers the caller may not see in full (a referrer sees their friends only masked).
              const rows = await ctx.db.$queryRaw<{ id: string; name: string }[]>`
                SELECT id::text, name FROM customer WHERE id = ANY(${[...ids]}::uuid[]) AND org_id = ${requirePrincipal(ctx).orgId}::uuid`;
              const byId = new Map(rows.map((row) => [row.id, row.name]));
              return ids.map((id) => maskName(byId.get(id) ?? ''));
            }),
          ).load(r.refereeId),
      }),
      store: t.prismaField({
        type: 'Store',
        nullable: true,
        description: 'The newcomer\'s home store when they claimed the code (metrics count the referral there).',
        resolve: (query, r, _a, ctx) => (r.storeId ? ctx.db.store.findUnique({ ...query, where: { id: r.storeId } }) : null),
      }),
      claimedAt: t.expose('claimedAt', { type: 'DateTime' }),
      qualifyBy: t.expose('qualifyBy', { type: 'DateTime', description: 'Deadline for the first paid visit.' }),
      qualifiedAt: t.expose('qualifiedAt', { type: 'DateTime', nullable: true }),
      qualifyingVisit: t.prismaField({
        type: 'Visit',
        nullable: true,
        resolve: (query, r, _a, ctx) => (r.qualifyingVisitId ? (visitLoader(ctx, query).load(r.qualifyingVisitId) as never) : null),
      }),
      qualifyingAmount: t.field({
        type: 'Money',
        nullable: true,
        resolve: (r, _a, ctx) => (r.qualifyingAmountMinor === null ? null : moneyFor(ctx, r.qualifyingAmountMinor)),
      }),
      referrerPoints: t.exposeInt('referrerPoints', { nullable: true, description: 'Points the referrer earns (set at qualification).' }),
      refereePoints: t.exposeInt('refereePoints', { nullable: true, description: 'Points the newcomer earns (set at qualification).' }),
      referrerRewarded: t.boolean({ resolve: (r) => r.referrerEntryId !== null }),
      refereeRewarded: t.boolean({
        description: 'The newcomer\'s points are paid at qualification (when they are a member; otherwise when they enrol).',
        resolve: (r) => r.refereeEntryId !== null,
      }),
      rewardedAt: t.expose('rewardedAt', { type: 'DateTime', nullable: true }),
      expiredAt: t.expose('expiredAt', { type: 'DateTime', nullable: true }),
      rejectedAt: t.expose('rejectedAt', { type: 'DateTime', nullable: true }),
      rejectionCode: t.field({ type: RejectionCode, nullable: true, resolve: (r) => r.rejectionCode as (typeof REJECTION_CODES)[number] | null }),
      rejectionReason: t.string({
        nullable: true,
        description: 'Staff only.',
        resolve: (r, _a, ctx) => (ctx.principal?.kind === 'CUSTOMER' ? null : r.rejectionReason),
      }),
    }),
  });

  // --- Customer.referralProfile ---------------------------------------------------------------------------------
  const Profile = builder.objectRef<ProfileValue>('ReferralProfile').implement({
    description: 'A customer\'s referral code and their standing as an "aesthetic partner".',
    fields: (t) => ({
      code: t.string({ nullable: true, description: 'The shareable code, e.g. K7QM-2XPA.', resolve: (p) => (p.code ? formatCode(p.code) : null) }),
      convertedReferrals: t.int({ resolve: (p) => p.stats.converted }),
      pendingReferrals: t.int({ resolve: (p) => p.stats.pending }),
      spendLast12Months: t.field({ type: 'Money', resolve: (p, _a, ctx) => moneyFor(ctx, p.stats.spend12mMinor) }),
      partnerLevel: t.field({
        type: LevelRef,
        nullable: true,
        resolve: async (p, _a, ctx) => levelFor(await levelsOf(ctx, config), p.stats),
      }),
      nextPartnerLevel: t.field({
        type: LevelRef,
        nullable: true,
        resolve: async (p, _a, ctx) => {
          const levels = await levelsOf(ctx, config);
          return nextLevelAfter(levels, levelFor(levels, p.stats));
        },
      }),
      referralsToNextLevel: t.int({
        nullable: true,
        resolve: async (p, _a, ctx) => {
          const levels = await levelsOf(ctx, config);
          const next = nextLevelAfter(levels, levelFor(levels, p.stats));
          return next ? Math.max(0, next.minConvertedReferrals - p.stats.converted) : null;
        },
      }),
      spendToNextLevel: t.field({
        type: 'Money',
        nullable: true,
        resolve: async (p, _a, ctx) => {
          const levels = await levelsOf(ctx, config);
          const next = nextLevelAfter(levels, levelFor(levels, p.stats));
          if (!next) return null;
          const missing = next.minSpend12mMinor - p.stats.spend12mMinor;
          return moneyFor(ctx, missing > 0n ? missing : 0n);
        },
      }),
      referredBy: t.prismaField({
        type: 'Referral',
        nullable: true,
        description: 'The referral this customer registered with, if any.',
        resolve: (query, p, _a, ctx) =>
          loader(ctx, `referrals.referredBy:${JSON.stringify(query)}`, () =>
            new DataLoader<string, unknown>(async (ids) => {
              const rows = await ctx.db.referral.findMany({ ...(query as object), where: { AND: [{ refereeId: { in: [...ids] } }, referralWhere(ctx)] } });
              const byReferee = new Map(rows.map((row) => [row.refereeId, row]));
              return ids.map((id) => byReferee.get(id) ?? null);
            }),
          ).load(p.customerId) as never,
      }),
    }),
  });

  builder.prismaObjectField('Customer', 'referralProfile', (t) =>
    t.field({
      type: Profile,
      description: 'Referral code and partner standing (referrals plugin).',
      resolve: (customer, _a, ctx) =>
        loader(ctx, 'Customer.referralProfile', () =>
          new DataLoader<string, ProfileValue>(async (ids) => {
            const orgId = requirePrincipal(ctx).orgId;
            const [codes, stats] = await Promise.all([
              ctx.db.referralCode.findMany({ where: { customerId: { in: [...ids] } }, select: { customerId: true, code: true } }),
              referrerStats(ctx.db, orgId, ids),
            ]);
            const byCustomer = new Map(codes.map((c) => [c.customerId, c.code]));
            return ids.map((id) => ({ customerId: id, code: byCustomer.get(id) ?? null, stats: stats.get(id)! }));
          }),
        ).load(customer.id),
    }),
  );

  // --- Queries ------------------------------------------------------------------------------------------------
  const Filter = builder.inputType('ReferralFilter', {
    fields: (t) => ({
      statuses: t.field({ type: [Status] }),
      referrerId: t.globalID(),
      refereeId: t.globalID(),
      storeId: t.globalID({ description: 'The newcomer\'s home store at claim.' }),
      claimedFrom: t.field({ type: 'DateTime' }),
      claimedTo: t.field({ type: 'DateTime' }),
    }),
  });

  builder.queryFields((t) => ({
    referrals: t.prismaConnection(
      {
        type: 'Referral',
        cursor: 'id',
        description: 'Referrals, newest claim first. Staff see their organization\'s; a customer those they are on either side of.',
        args: { filter: t.arg({ type: Filter, required: false }) },
        complexity: (args) => pageCost(args),
        resolve: (query, _root, args, ctx) =>
          ctx.db.referral.findMany({ ...query, where: referralFilter(ctx, args.filter), orderBy: [{ claimedAt: 'desc' }, { id: 'desc' }] }),
        totalCount: (_root, args, ctx) => ctx.db.referral.count({ where: referralFilter(ctx, args.filter) }),
      },
      { name: 'ReferralConnection' },
      { name: 'ReferralEdge' },
    ),
    referralPartnerLevels: t.field({
      type: [LevelRef],
      description: 'The organization\'s "aesthetic partner" levels, lowest first.',
      resolve: (_root, _a, ctx) => levelsOf(ctx, config),
    }),
  }));

  function referralFilter(
    ctx: Context,
    filter: { statuses?: string[] | null; referrerId?: { id: string } | null; refereeId?: { id: string } | null; storeId?: { id: string } | null; claimedFrom?: Date | null; claimedTo?: Date | null } | null | undefined,
  ): Prisma.ReferralWhereInput {
    const and: Prisma.ReferralWhereInput[] = [referralWhere(ctx)];
    if (filter?.statuses?.length) and.push({ status: { in: filter.statuses as never } });
    if (filter?.referrerId) and.push({ referrerId: filter.referrerId.id });
    if (filter?.refereeId) and.push({ refereeId: filter.refereeId.id });
    if (filter?.storeId) and.push({ storeId: filter.storeId.id });
    if (filter?.claimedFrom) and.push({ claimedAt: { gte: filter.claimedFrom } });
    if (filter?.claimedTo) and.push({ claimedAt: { lt: filter.claimedTo } });
    return { AND: and };
  }

  // --- Metrics ------------------------------------------------------------------------------------------------
  const TopReferrer = builder.objectRef<TopReferrerRow>('TopReferrer').implement({
    fields: (t) => ({
      customer: t.prismaField({
        type: 'Customer',
        nullable: true,
        resolve: (query, row, _a, ctx) => customerLoader(ctx, query).load(row.customerId) as never,
      }),
      registered: t.exposeInt('registered', { description: 'Their codes claimed in the period (not rejected).' }),
      qualified: t.exposeInt('qualified', { description: 'Of those, how many qualified.' }),
    }),
  });
  const MetricsRef = builder.objectRef<ReferralMetricsRow>('ReferralMetrics').implement({
    description:
      'Referral KPIs at one store (the newcomer\'s home store) in one period, by claim cohort: of the codes registered in ' +
      'the period, how many qualified.',
    fields: (t) => ({
      store: t.prismaField({
        type: 'Store',
        nullable: true,
        description: 'Null for newcomers without a home store.',
        resolve: (query, row, _a, ctx) => (row.storeId ? ctx.db.store.findUnique({ ...query, where: { id: row.storeId } }) : null),
      }),
      periodStart: t.field({ type: 'Date', resolve: (row) => row.periodStart }),
      registered: t.exposeInt('registered', { description: 'Newcomers who registered with a code in the period (rejected claims excluded).' }),
      qualified: t.exposeInt('qualified', { description: 'Of those, how many qualified (QUALIFIED or REWARDED).' }),
      rewarded: t.exposeInt('rewarded'),
      pending: t.exposeInt('pending'),
      expired: t.exposeInt('expired'),
      rejected: t.exposeInt('rejected'),
      conversionRate: t.float({
        nullable: true,
        description: 'qualified ÷ registered (null when nobody registered).',
        resolve: (row) => (row.registered > 0 ? row.qualified / row.registered : null),
      }),
      referredRevenue: t.field({
        type: 'Money',
        description: 'Completed visits of referred customers in the period (after their claim; refunds excluded).',
        resolve: (row, _a, ctx) => moneyFor(ctx, row.revenueMinor),
      }),
      payingReferees: t.exposeInt('payingReferees', { description: 'Referred customers with a completed visit in the period.' }),
      topReferrers: t.field({ type: [TopReferrer], resolve: (row) => row.topReferrers }),
    }),
  });
  const Period = builder.enumType('ReferralMetricsPeriod', { values: ['DAY', 'WEEK', 'MONTH'] as const });
  builder.queryField('referralMetrics', (t) =>
    t.field({
      type: [MetricsRef],
      description: 'Referral conversion, revenue from referred customers and top referrers per store and period (dates inclusive, local to each store).',
      args: {
        from: t.arg({ type: 'Date', required: true }),
        to: t.arg({ type: 'Date', required: true }),
        period: t.arg({ type: Period, required: false, defaultValue: 'MONTH' }),
        storeIds: t.arg.globalIDList({ required: false }),
        topReferrers: t.arg.int({ required: false, defaultValue: 5, description: 'At most 20.' }),
      },
      resolve: async (_root, args, ctx) => {
        try {
          const principal = requireCapability(ctx, 'referrals:metrics');
          if (args.to < args.from) throw validationError([{ field: ['to'], message: 'to is before from' }]);
          const top = args.topReferrers ?? 5;
          if (top < 0 || top > 20) throw validationError([{ field: ['topReferrers'], message: 'topReferrers must be 0 to 20' }]);
          const scope = storeScope(principal);
          const wanted = args.storeIds?.map((id) => id.id) ?? null;
          const storeIds = scope ? (wanted ?? scope).filter((id) => scope.includes(id)) : wanted;
          const { timezone } = await ctx.platform.orgSettings(principal.orgId);
          return await referralMetricsQuery(ctx.db, {
            orgId: principal.orgId,
            orgTimezone: timezone,
            from: String(args.from),
            to: String(args.to),
            grain: (args.period ?? 'MONTH').toLowerCase() as 'day' | 'week' | 'month',
            storeIds,
            top,
          });
        } catch (error) {
          if (error instanceof DomainError) throw new GraphQLError(error.message, { extensions: { code: error.userErrors[0]?.code ?? 'BAD_REQUEST' } });
          throw error;
        }
      },
    }),
  );

  // --- Mutations ----------------------------------------------------------------------------------------------
  const referralPayload = (t: any) => ({
    referral: t.prismaField({
      type: 'Referral',
      nullable: true,
      resolve: (query: object, p: { referralId?: string }, _a: unknown, ctx: Context) =>
        p.referralId ? ctx.db.referral.findFirst({ ...query, where: { AND: [{ id: p.referralId }, referralWhere(ctx)] } }) : null,
    }),
  });

  defineMutation(builder, 'claimReferral', {
    description:
      `Registers a newcomer with a referral code, within ${config.claimWindowDays} days after the newcomer was registered. ` +
      'Typed errors: NotFoundError (unknown code), SelfReferralError, SamePhoneReferralError, ReferralLoopError, ' +
      'ExistingCustomerReferralError, ReferralCapReachedError, ReferralClaimWindowClosedError, ConflictError ALREADY_REFERRED.',
    input: (t) => ({
      code: t.string({ required: true, description: 'As shared: any case, with or without the dash.' }),
      customerId: t.globalID({ description: 'The newcomer. Required for staff; a customer claims for themself.' }),
    }),
    payload: referralPayload,
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      if (principal.kind !== 'CUSTOMER') requireCapability(ctx, 'referrals:write');
      const code = normalizeCode(input.code);
      if (!code) throw validationError([{ field: fieldPath('code'), message: 'A referral code is 8 letters and digits, e.g. K7QM-2XPA' }]);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const refereeId = await targetCustomer(tx, ctx, principal, input.customerId?.id);
        const referralId = await claimReferral({ tx, emit, actor: principalKey(principal), config, platform: ctx.platform }, principal.orgId, refereeId, code);
        return { referralId };
      });
    },
  });

  defineMutation(builder, 'rejectReferral', {
    description:
      'Rejects a referral as fraudulent (referrals:reject). Points it already paid are taken back, as far as the members ' +
      'still have them. Store managers act on referrals of their stores.',
    input: (t) => ({
      referralId: t.globalID({ required: true }),
      reason: t.string({ required: true }),
    }),
    payload: referralPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'referrals:reject');
      const { reason } = parseInput(z.object({ reason: z.string().trim().min(3, 'Give a reason').max(500) }), { reason: input.reason });
      const referralId = input.referralId.id;
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const referral = await tx.referral.findFirst({ where: { AND: [{ id: referralId }, referralWhere(ctx)] }, select: { id: true, storeId: true, status: true } });
        const stores = storeScope(principal);
        if (!referral || (stores && !(referral.storeId && stores.includes(referral.storeId)))) throw notFound(fieldPath('referralId'), 'Referral');
        const done = await reject(writer({ tx, emit, config, platform: ctx.platform }, principalKey(principal)), principal.orgId, referral.id, 'REPORTED_FRAUD', reason);
        if (!done) throw conflict('INVALID_STATE', 'The referral is already rejected', fieldPath('referralId'));
        return { referralId };
      });
    },
  });

  const BenefitInput = builder.inputType('ReferralPartnerBenefitInput', {
    fields: (t) => ({
      kind: t.field({ type: BenefitKind, required: true }),
      description: t.string({ required: true }),
      serviceId: t.globalID(),
    }),
  });
  const LevelInput = builder.inputType('ReferralPartnerLevelInput', {
    fields: (t) => ({
      code: t.string({ required: true }),
      name: t.string({ required: true }),
      minConvertedReferrals: t.int({ required: true }),
      minSpendLast12Months: t.field({ type: 'Decimal', required: true }),
      referralBonusPercent: t.int({ defaultValue: 0 }),
      benefits: t.field({ type: [BenefitInput], defaultValue: [] }),
    }),
  });

  defineMutation(builder, 'setReferralPartnerLevels', {
    description:
      'Replaces the organization\'s partner levels (referrals:manage), lowest first; each needs higher thresholds than the ' +
      'one below. Benefit texts may not make absolute claims ("best", "most effective", 最佳, 第一 …).',
    input: (t) => ({ levels: t.field({ type: [LevelInput], required: true }) }),
    payload: (t) => ({
      levels: t.field({ type: [LevelRef], nullable: true, resolve: (p: { levels?: PartnerLevel[] }) => p.levels ?? null }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'referrals:manage');
      const { currency } = await ctx.platform.orgSettings(principal.orgId);
      const issues: { field: string[]; message: string }[] = [];
      const raw = input.levels.map((level, index) => {
        const spend = toMinorUnits(level.minSpendLast12Months, currency);
        if (spend === null || spend < 0) issues.push({ field: fieldPath('levels', index, 'minSpendLast12Months'), message: `Must be a non-negative amount in ${currency}` });
        (level.benefits ?? []).forEach((benefit, b) => {
          if (ABSOLUTE_CLAIM.test(benefit.description)) {
            issues.push({ field: fieldPath('levels', index, 'benefits', b, 'description'), message: 'Benefit texts may not make absolute claims' });
          }
        });
        if (ABSOLUTE_CLAIM.test(level.name)) issues.push({ field: fieldPath('levels', index, 'name'), message: 'Level names may not make absolute claims' });
        return {
          code: level.code,
          name: level.name,
          minConvertedReferrals: level.minConvertedReferrals,
          minSpend12mMinor: spend ?? 0,
          referralBonusPercent: level.referralBonusPercent ?? 0,
          benefits: (level.benefits ?? []).map((b) => ({ kind: b.kind, description: b.description, serviceId: b.serviceId?.id ?? null })),
        };
      });
      if (issues.length) throw validationError(issues);
      const levels = parseInput(z.object({ levels: levelsSchema }), { levels: raw }).levels;
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        for (const [index, level] of levels.entries()) {
          for (const [b, benefit] of level.benefits.entries()) {
            if (!benefit.serviceId) continue;
            const service = await tx.service.findFirst({ where: { id: benefit.serviceId, orgId: principal.orgId }, select: { id: true } });
            if (!service) throw notFound(fieldPath('levels', index, 'benefits', b, 'serviceId'), 'Service');
          }
        }
        await tx.referralPartnerLevel.deleteMany({ where: { orgId: principal.orgId } });
        await tx.referralPartnerLevel.createMany({
          data: levels.map((level, rank) => ({ ...level, orgId: principal.orgId, rank, minSpend12mMinor: BigInt(level.minSpend12mMinor), benefits: level.benefits as object[] })),
        });
        await emit({
          type: 'referral.levelsChanged',
          aggregateType: 'Organization',
          aggregateId: principal.orgId,
          payload: { levels: levels.map((level) => level.code) },
        });
        return { levels: await partnerLevels(tx, principal.orgId, config) };
      });
    },
  });

  // --- Subscription -------------------------------------------------------------------------------------------
  const Update = builder.objectRef<{ type: string; occurredAt: string; aggregateId: string }>('ReferralUpdate').implement({
    description: 'One of the referrer\'s referrals changed.',
    fields: (t) => ({
      type: t.exposeString('type', { description: 'referral.claimed, referral.qualified, referral.rewarded, referral.expired or referral.rejected.' }),
      occurredAt: t.field({ type: 'DateTime', resolve: (e) => new Date(e.occurredAt) }),
      referral: t.prismaField({
        type: 'Referral',
        nullable: true,
        resolve: (query, e, _a, ctx) => ctx.db.referral.findFirst({ ...query, where: { AND: [{ id: e.aggregateId }, referralWhere(ctx)] } }),
      }),
    }),
  });
  builder.subscriptionField('referralUpdated', (t) =>
    t.field({
      type: Update,
      description: 'Changes to the referrals a customer made (as referrer): for the customer themself and for staff.',
      args: { customerId: t.arg.globalID({ required: true }) },
      subscribe: async (_root, args, ctx) => {
        const customerId = args.customerId.id;
        const visible = await ctx.db.customer.findFirst({ where: { AND: [{ id: customerId }, customerWhere(ctx)] }, select: { id: true } });
        if (!visible) throw new GraphQLError('Customer not found', { extensions: { code: 'NOT_FOUND' } });
        return organizationEvents(ctx, (event) => event.aggregateType === 'Referral' && event.payload.customerId === customerId);
      },
      resolve: (event, _a, ctx) => {
        // One context serves every event: each is resolved against the database as it is now.
        ctx.loaders.clear();
        return event;
      },
    }),
  );
}
