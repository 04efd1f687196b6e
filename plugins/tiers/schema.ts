import { randomUUID } from 'node:crypto';
import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { z } from 'zod';
import { can, principalKey, storeScope } from '../../core/auth/policy.ts';
import { isUuid, type Principal } from '../../core/auth/principal.ts';
import type { Tx } from '../../core/db/clients.ts';
import { Prisma } from '../../core/db/generated/client.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import type { DomainEvent } from '../../core/events/outbox.ts';
import { customerWhere, orgWhere, requireCapability } from '../../core/graph/access.ts';
import { loadCustomerRow, type CustomerRowSource } from '../../core/graph/customer-rows.ts';
import { idempotent } from '../../core/graph/idempotency.ts';
import { localDate } from '../../core/graph/local-time.ts';
import { moneyFor, toMinorUnits } from '../../core/graph/money.ts';
import { organizationEvents } from '../../core/graph/subscriptions.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import { loader, requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { conflict, DomainError, fieldPath, notFound, parseInput, pgErrorCode, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import type { SchemaContext } from '../../core/plugin/contract.ts';
import { TASK_EVENT_TYPES, type TiersConfig } from './config.ts';
import { tierError, registerTierErrors } from './errors.ts';
import {
  clearOverride,
  effectiveTierId,
  evaluateMember,
  memberMetrics,
  setOverride,
  windowStart,
  type TierStateRow,
} from './evaluate.ts';
import { hundredths, Ladder, loadLadder, remainingFor, type Level, type Metrics, type Rule } from './ladder.ts';
import { recordCompletion } from './tasks.ts';

const CHANGE_KINDS = ['UPGRADE', 'DOWNGRADE', 'OVERRIDE_SET', 'OVERRIDE_ENDED'] as const;
const CODE = /^[A-Z][A-Z0-9_]{0,39}$/;

/**
 * Absolute claims are not allowed in benefit texts (advertising rules: no "best", "most effective", "top expert",
 * 最 / 第一 / 顶级 / 国家级 …).
 */
const ABSOLUTE_CLAIM = /最|第一|顶级|国家级|唯一|万能|100\s*%|\bbest\b|\bmost (effective|advanced|professional)\b|\btop[- ](expert|doctor|specialist|rated)\b|\bnumber one\b|\bno\.\s*1\b|\bguarantee/i;

interface MemberRow extends TierStateRow {
  status: string;
  /** The organization's ladder version when this row was read (see `ladderAt`). */
  ladderVersion: string;
}

interface Progress {
  customerId: string;
  ladder: Ladder;
  state: MemberRow;
  metrics: Metrics;
  at: Date;
  windowStart: string;
  config: TiersConfig;
}

interface Requirement {
  rule: Rule;
  spendRemainingMinor: bigint;
  tasksRemaining: number;
}

// --- Request-scoped loaders (lists stay free of N+1) -------------------------------------------------------------

/** The caller's organization's ladder, loaded once per request. */
function ladderOf(ctx: Context): Promise<Ladder> {
  const principal = requirePrincipal(ctx);
  return loader(ctx, 'tiers:ladder', () => new DataLoader<string, Ladder>(async (orgIds) => Promise.all(orgIds.map((orgId) => loadLadder(ctx.db, orgId))))).load(principal.orgId);
}

/**
 * Ladders this process has loaded, per platform and organization, with the version each had. A ladder changes
 * only through setTierLadder, which rewrites every level it keeps (updated_at) and deletes the others, so the
 * newest updated_at with the number of levels names a version; member rows carry it (`memberRow`).
 */
const ladderCaches = new WeakMap<object, Map<string, { version: string; ladder: Promise<Ladder> }>>();

/**
 * The ladder at a version read in this request: from memory while the version holds, so showing members'
 * tiers costs no ladder statement; reloaded when the version moved (once, however many members ask at once).
 */
function ladderAt(ctx: Context, version: string): Promise<Ladder> {
  const orgId = requirePrincipal(ctx).orgId;
  let ladders = ladderCaches.get(ctx.platform);
  if (!ladders) ladderCaches.set(ctx.platform, (ladders = new Map()));
  const cached = ladders.get(orgId);
  if (cached?.version === version) return cached.ladder;
  // Read now, after the version (not through this request's loader, which may hold an older one): at least as
  // new as the version it is kept under.
  const ladder = loadLadder(ctx.db, orgId);
  const entry = { version, ladder };
  ladders.set(orgId, entry);
  ladder.catch(() => ladders.get(orgId) === entry && ladders.delete(orgId));
  return ladder;
}

const date = (value: unknown) => (value == null ? null : new Date(value as string));

/** Membership status and tier state of a customer (null for non-members), read beside other plugins' per-customer rows. */
const memberRow: CustomerRowSource<MemberRow> = {
  name: 'tiers.member',
  subquery: (ctx) => {
    const { orgId } = requirePrincipal(ctx);
    return Prisma.sql`
      SELECT json_build_object('customerId', m.customer_id, 'orgId', m.org_id, 'status', m.status, 'earnedTierId', s.earned_tier_id,
               'earnedSince', s.earned_since, 'belowSince', s.below_since, 'overrideTierId', s.override_tier_id,
               'overrideUntil', s.override_until, 'overrideReason', s.override_reason, 'overrideBy', s.override_by,
               'ladderVersion', (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') FROM tier_level WHERE org_id = ${orgId}::uuid))
      FROM membership m LEFT JOIN tier_state s ON s.customer_id = m.customer_id
      WHERE m.customer_id = c.id AND m.org_id = ${orgId}::uuid`;
  },
  parse: (row) => ({
    ...(row as unknown as MemberRow),
    earnedSince: date(row.earnedSince),
    belowSince: date(row.belowSince),
    overrideUntil: date(row.overrideUntil),
  }),
};

function memberState(ctx: Context, customerId: string) {
  return loadCustomerRow(ctx, memberRow, customerId);
}

function progressOf(ctx: Context, config: TiersConfig) {
  const principal = requirePrincipal(ctx);
  return loader(ctx, 'tiers:progress', () =>
    new DataLoader<string, Progress | null>(async (customerIds) => {
      const ladder = await ladderOf(ctx);
      if (ladder.empty) return customerIds.map(() => null);
      const states = await Promise.all(customerIds.map((id) => memberState(ctx, id)));
      const members = customerIds.filter((_, index) => {
        const state = states[index];
        return state?.status === 'ACTIVE';
      });
      const at = new Date();
      const { timezone } = await ctx.platform.orgSettings(principal.orgId);
      const metrics = await memberMetrics(ctx.db, principal.orgId, members, at, config.windowMonths, timezone);
      const start = windowStart(at, timezone, config.windowMonths);
      return customerIds.map((customerId, index) => {
        const state = states[index] as MemberRow | null;
        const measured = metrics.get(customerId);
        return state && measured ? { customerId, ladder, state, metrics: measured, at, windowStart: start, config } : null;
      });
    }),
  );
}

/** The newest `first` history rows of many customers, limited per customer in SQL. */
function historyOf(ctx: Context, first: number) {
  const principal = requirePrincipal(ctx);
  return loader(ctx, `tiers:history:${first}`, () =>
    new DataLoader<string, unknown[]>(async (customerIds) => {
      const ids = await ctx.db.$queryRaw<{ id: bigint }[]>`
        SELECT id FROM (
          SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY effective_at DESC, id DESC) AS position
          FROM tier_change WHERE customer_id = ANY(${customerIds as string[]}::uuid[]) AND org_id = ${principal.orgId}::uuid
        ) page WHERE position <= ${first}`;
      const rows = ids.length ? await ctx.db.tierChange.findMany({ where: { id: { in: ids.map((r) => r.id) } }, orderBy: [{ effectiveAt: 'desc' }, { id: 'desc' }] }) : [];
      return customerIds.map((id) => rows.filter((row) => row.customerId === id));
    }),
  );
}

async function tierById(ctx: Context, tierId: string | null | undefined): Promise<Level | null> {
  return tierId ? (await ladderOf(ctx)).get(tierId) : null;
}

// --- Mutation helpers ----------------------------------------------------------------------------------------------

/** An id of the given type that names nothing visible is reported like any unknown id. */
function idOf(globalId: { typename: string; id: string } | null | undefined, typename: string, field: string[], what: string): string {
  if (!globalId || globalId.typename !== typename || !isUuid(globalId.id)) throw notFound(field, what);
  return globalId.id.toLowerCase();
}

/**
 * The customer a tier mutation acts on. With `ownStoresOnly`, store-bound staff may act only on members of their
 * stores: another store's member answers exactly like an unknown id.
 */
async function targetCustomer(tx: Tx, ctx: Context, principal: Principal, customerId: string, ownStoresOnly: boolean) {
  const customer = await tx.customer.findFirst({
    where: { AND: [{ id: customerId }, customerWhere(ctx)] },
    select: { id: true, homeStoreId: true, membership: { select: { status: true, homeStoreId: true } } },
  });
  if (!customer) throw notFound(fieldPath('customerId'), 'Customer');
  const stores = storeScope(principal);
  if (ownStoresOnly && stores && !stores.includes(customer.membership?.homeStoreId ?? customer.homeStoreId ?? '')) {
    throw notFound(fieldPath('customerId'), 'Customer');
  }
  return customer;
}

function requireMember(customer: { membership: { status: string } | null }) {
  if (!customer.membership || customer.membership.status !== 'ACTIVE') {
    throw new DomainError([{ __typename: 'ValidationError', code: 'NOT_A_MEMBER', message: 'The customer is not an active member: enrol them first', field: fieldPath('customerId') }]);
  }
}

function absoluteClaims(texts: { field: string[]; text: string | null | undefined }[]) {
  const issues = texts.filter((t) => t.text && ABSOLUTE_CLAIM.test(t.text));
  if (issues.length) {
    throw new DomainError(
      issues.map((issue) => ({
        __typename: 'ValidationError',
        code: 'ABSOLUTE_CLAIM',
        message: 'Benefit texts may not make absolute claims ("best", "most effective", "top expert", 最, 第一, 顶级 …)',
        field: issue.field,
      })),
    );
  }
}

/** An exact decimal with at most two places, as hundredths, within [min, max]. */
function hundredthsOf(value: string, field: string[], min: number, max: number, what: string): number {
  const match = /^(\d{1,4})(?:\.(\d{1,2}))?$/.exec(value.trim());
  const parsed = match ? Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0')) : NaN;
  if (!match || parsed < min || parsed > max) {
    throw validationError([{ field, message: `${what} must be a decimal between ${hundredths(min)} and ${hundredths(max)} with at most two places` }]);
  }
  return parsed;
}

// --- Schema ----------------------------------------------------------------------------------------------------------

export function registerTiersSchema(builder: Builder, { config }: SchemaContext<TiersConfig>) {
  registerTierErrors(builder);
  const ChangeKind = builder.enumType('TierChangeKind', {
    values: CHANGE_KINDS,
    description: 'UPGRADE / DOWNGRADE move the earned tier; OVERRIDE_SET / OVERRIDE_ENDED start and end a manual override.',
  });
  const TaskSource = builder.enumType('TierTaskSource', { values: ['EVENT', 'STAFF'] as const });

  const Qualification = builder.objectRef<Rule>('TierQualification').implement({
    description: `One way to reach a tier: at least this spend in the rolling ${config.windowMonths} months AND at least this many behaviour tasks.`,
    fields: (t) => ({
      minSpend: t.field({ type: 'Money', resolve: (rule, _args, ctx) => moneyFor(ctx, rule.minSpendMinor) }),
      minTasks: t.exposeInt('minTasks'),
    }),
  });

  const Benefits = builder.objectRef<Level>('TierBenefits').implement({
    description: 'What a tier gives its members.',
    fields: (t) => ({
      discountPercent: t.field({ type: 'Decimal', description: 'Discount on services, in percent (e.g. "5" is 5% off).', resolve: (l) => hundredths(l.discountBp) }),
      pointsMultiplier: t.field({
        type: 'Decimal',
        description: 'Multiplier on points earned from spending (applied by the points plugin when it is on), e.g. "1.5".',
        resolve: (l) => hundredths(l.pointsMultiplierPct),
      }),
      birthdayGift: t.string({ nullable: true, resolve: (l) => l.birthdayGift }),
      freeSkinTestsPerYear: t.int({ resolve: (l) => l.freeSkinTestsPerYear }),
      priorityBooking: t.boolean({ resolve: (l) => l.priorityBooking }),
      dedicatedConsultant: t.boolean({ resolve: (l) => l.dedicatedConsultant }),
      perks: t.stringList({ description: 'Further benefits in words (e.g. a private care room).', resolve: (l) => l.perks }),
    }),
  });

  const TierLevel = builder.prismaNode('TierLevel', {
    description: 'A level of the organization\'s membership ladder (会员等级), with how to reach it and its benefits.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [orgWhere(ctx)] }),
    fields: (t) => ({
      code: t.exposeString('code', { description: 'Stable code, e.g. GOLD (rewards name tiers by code).' }),
      name: t.exposeString('name'),
      rank: t.exposeInt('rank', { description: '1 is the lowest tier.' }),
      qualifications: t.field({
        type: [Qualification],
        description: 'Any one of these reaches the tier.',
        resolve: async (level, _args, ctx) => (level as Partial<Level>).qualifications ?? (await ladderOf(ctx)).get(level.id)?.qualifications ?? [],
      }),
      benefits: t.field({ type: Benefits, resolve: (level) => level as Level }),
    }),
  });

  builder.prismaObject('TierTask', {
    description: 'A behaviour task that counts towards qualification (answering a survey, sharing a care diary, …).',
    fields: (t) => ({
      code: t.exposeString('code'),
      name: t.exposeString('name'),
      description: t.exposeString('description', { nullable: true }),
      eventType: t.exposeString('eventType', { nullable: true, description: 'The event from another module that completes it (null: recorded by staff only).' }),
      customerField: t.exposeString('customerField', { description: 'The event payload field naming the customer who did it.' }),
      maxPerWindow: t.exposeInt('maxPerWindow', { nullable: true, description: 'Completions counted per qualification window (null: all).' }),
      active: t.exposeBoolean('active'),
    }),
  });

  builder.prismaObject('TierTaskCompletion', {
    description: 'A behaviour task a customer completed.',
    fields: (t) => ({
      id: t.id({ resolve: (c) => c.id.toString() }),
      task: t.field({
        type: 'TierTask' as never,
        resolve: (c, _args, ctx) => ctx.db.tierTask.findFirstOrThrow({ where: { id: c.taskId, ...orgWhere(ctx) } }) as never,
      }),
      occurredAt: t.expose('occurredAt', { type: 'DateTime' }),
      source: t.expose('source', { type: TaskSource }),
      recordedBy: t.exposeString('recordedBy'),
      note: t.exposeString('note', { nullable: true }),
    }),
  });

  builder.prismaObject('TierChange', {
    description: 'One change of a member\'s tier, with its reason. History is never rewritten.',
    fields: (t) => ({
      id: t.id({ resolve: (c) => c.id.toString() }),
      kind: t.expose('kind', { type: ChangeKind }),
      fromTier: t.field({ type: TierLevel, nullable: true, description: 'Earned tier before (UPGRADE/DOWNGRADE), or the tier held before (OVERRIDE_*).', resolve: (c, _a, ctx) => tierById(ctx, c.fromTierId) as never }),
      toTier: t.field({ type: TierLevel, nullable: true, resolve: (c, _a, ctx) => tierById(ctx, c.toTierId) as never }),
      tier: t.field({ type: TierLevel, nullable: true, description: 'The tier the member holds after the change.', resolve: (c, _a, ctx) => tierById(ctx, c.effectiveTierId) as never }),
      reason: t.exposeString('reason'),
      spend: t.field({ type: 'Money', nullable: true, description: 'Rolling spend when evaluated.', resolve: (c, _a, ctx) => (c.spendMinor === null ? null : moneyFor(ctx, c.spendMinor)) }),
      tasks: t.exposeInt('tasks', { nullable: true, description: 'Counted tasks when evaluated.' }),
      overrideExpiresAt: t.expose('overrideUntil', { type: 'DateTime', nullable: true }),
      actor: t.exposeString('actor', { description: 'staff:<id>, plugin:tiers, …' }),
      trigger: t.exposeString('trigger', { nullable: true, description: 'What caused it: an event type (visit.completed, survey.completed, …), schedule, or a mutation.' }),
      effectiveAt: t.expose('effectiveAt', { type: 'DateTime' }),
    }),
  });

  const Requirement = builder.objectRef<Requirement>('TierRequirement').implement({
    description: 'One rule of a tier and what is still missing to meet it (zero where a part is met).',
    fields: (t) => ({
      minSpend: t.field({ type: 'Money', resolve: (r, _a, ctx) => moneyFor(ctx, r.rule.minSpendMinor) }),
      minTasks: t.int({ resolve: (r) => r.rule.minTasks }),
      spendRemaining: t.field({ type: 'Money', resolve: (r, _a, ctx) => moneyFor(ctx, r.spendRemainingMinor) }),
      tasksRemaining: t.int({ resolve: (r) => r.tasksRemaining }),
    }),
  });

  const Override = builder.objectRef<MemberRow>('TierOverride').implement({
    description: 'A tier set by hand, until it expires.',
    fields: (t) => ({
      tier: t.field({ type: TierLevel, nullable: true, description: 'Null: held at no tier.', resolve: (s, _a, ctx) => tierById(ctx, s.overrideTierId) as never }),
      reason: t.string({ resolve: (s) => s.overrideReason! }),
      expiresAt: t.field({ type: 'DateTime', resolve: (s) => s.overrideUntil! }),
      setBy: t.string({ resolve: (s) => s.overrideBy! }),
    }),
  });

  const Downgrade = builder.objectRef<Progress>('TierDowngradeRisk').implement({
    description: 'The member no longer meets their tier\'s rules: after the grace period the tier goes down.',
    fields: (t) => ({
      belowSince: t.field({ type: 'DateTime', resolve: (p) => p.state.belowSince! }),
      notBefore: t.field({
        type: 'DateTime',
        description: 'The earliest time the scheduled re-evaluation lowers the tier.',
        resolve: (p) => new Date(p.state.belowSince!.getTime() + p.config.downgrade.graceDays * 86_400_000),
      }),
      to: t.field({
        type: TierLevel,
        nullable: true,
        description: 'Where the next step would take the member (one level at a time by default).',
        resolve: (p) => {
          const qualified = p.ladder.position(p.ladder.qualified(p.metrics)?.id);
          return p.ladder.at(Math.max(qualified, p.ladder.position(p.state.earnedTierId) - p.config.downgrade.levelsPerStep)) as never;
        },
      }),
      toKeep: t.field({
        type: [Requirement],
        description: 'What would keep the current tier.',
        resolve: (p) => remainingFor(p.ladder.get(p.state.earnedTierId)!, p.metrics),
      }),
    }),
  });

  const nextPosition = (p: Progress) => Math.max(p.ladder.position(p.state.earnedTierId), p.ladder.position(p.ladder.qualified(p.metrics)?.id)) + 1;

  const TierProgress = builder.objectRef<Progress>('TierProgress').implement({
    description: `Where a member stands: the tier held, the rolling ${config.windowMonths}-month spend and tasks, and what remains to the next tier.`,
    fields: (t) => ({
      tier: t.field({ type: TierLevel, nullable: true, description: 'The tier held now (an active override, else the earned tier).', resolve: (p) => p.ladder.get(effectiveTierId(p.state, p.at)) as never }),
      earnedTier: t.field({ type: TierLevel, nullable: true, description: 'The tier earned by qualification (kept during the grace period).', resolve: (p) => p.ladder.get(p.state.earnedTierId) as never }),
      earnedSince: t.field({ type: 'DateTime', nullable: true, resolve: (p) => p.state.earnedSince }),
      qualifiedTier: t.field({ type: TierLevel, nullable: true, description: 'The tier the rolling window qualifies for right now.', resolve: (p) => p.ladder.qualified(p.metrics) as never }),
      override: t.field({ type: Override, nullable: true, resolve: (p) => (p.state.overrideUntil && p.state.overrideUntil > p.at ? p.state : null) }),
      spend: t.field({ type: 'Money', description: 'Completed visits in the window, net of refunds.', resolve: (p, _a, ctx) => moneyFor(ctx, p.metrics.spendMinor) }),
      tasksCompleted: t.int({ description: 'Behaviour tasks counted in the window.', resolve: (p) => p.metrics.tasks }),
      windowStart: t.field({ type: 'Date', description: 'First day that counts (in the organization\'s time zone; visits use their store\'s).', resolve: (p) => p.windowStart }),
      nextTier: t.field({ type: TierLevel, nullable: true, description: 'The next tier up (null at the top).', resolve: (p) => p.ladder.at(nextPosition(p)) as never }),
      toNextTier: t.field({
        type: [Requirement],
        description: 'For each way to reach the next tier, the spend and tasks still missing.',
        resolve: (p) => {
          const next = p.ladder.at(nextPosition(p));
          return next ? remainingFor(next, p.metrics) : [];
        },
      }),
      downgradeRisk: t.field({
        type: Downgrade,
        nullable: true,
        resolve: (p) => (p.state.belowSince && p.state.earnedTierId ? p : null),
      }),
    }),
  });

  builder.prismaObjectField('Membership', 'tier', (t) =>
    t.field({
      type: TierLevel,
      nullable: true,
      description: 'The member\'s tier now (null below the lowest tier, for an inactive membership, or without a ladder).',
      resolve: async (membership, _args, ctx) => {
        if (membership.status !== 'ACTIVE') return null;
        const state = await memberState(ctx, membership.customerId);
        const tierId = effectiveTierId(state);
        return tierId && state ? ((await ladderAt(ctx, state.ladderVersion)).get(tierId) as never) : null;
      },
    }),
  );

  builder.prismaObjectField('Customer', 'tierProgress', (t) =>
    t.field({
      type: TierProgress,
      nullable: true,
      description: 'Tier standing and progress (null for a customer who is not an active member, or without a ladder).',
      resolve: (customer, _args, ctx) => progressOf(ctx, config).load(customer.id),
    }),
  );

  builder.prismaObjectField('Customer', 'tierHistory', (t) =>
    t.field({
      type: ['TierChange' as never],
      description: 'Tier changes, newest first.',
      args: { first: t.arg.int({ required: false, defaultValue: 20 }) },
      complexity: (args) => Math.min(Math.max(args.first ?? 20, 1), 100),
      resolve: (customer, args, ctx) => historyOf(ctx, Math.min(Math.max(args.first ?? 20, 1), 100)).load(customer.id) as never,
    }),
  );

  builder.queryFields((t) => ({
    tierLadder: t.field({
      type: [TierLevel],
      description: 'The organization\'s membership ladder, lowest tier first, with qualifications and benefits.',
      resolve: async (_root, _args, ctx) => (await ladderOf(ctx)).levels as never,
    }),
    tierTasks: t.prismaField({
      type: ['TierTask'],
      description: 'Behaviour tasks that count towards tiers.',
      resolve: (query, _root, _args, ctx) => ctx.db.tierTask.findMany({ ...query, where: orgWhere(ctx), orderBy: { code: 'asc' } }),
    }),
  }));

  // --- Mutations -------------------------------------------------------------------------------------------------

  const customerField = (t: any) =>
    t.prismaField({
      type: 'Customer',
      nullable: true,
      resolve: (query: object, p: { customerId?: string }, _a: unknown, ctx: Context) =>
        p.customerId ? ctx.db.customer.findFirst({ ...query, where: { AND: [{ id: p.customerId }, customerWhere(ctx)] } }) : null,
    });
  const changeField = (t: any) =>
    t.prismaField({
      type: 'TierChange',
      nullable: true,
      resolve: (query: object, p: { changeId?: string }, _a: unknown, ctx: Context) =>
        p.changeId ? ctx.db.tierChange.findFirst({ ...query, where: { id: BigInt(p.changeId), ...orgWhere(ctx) } }) : null,
    });

  defineMutation(builder, 'overrideTier', {
    description:
      'Sets a member\'s tier by hand (tiers:override), with a reason and an expiry; the earned tier keeps being evaluated ' +
      'underneath and applies again when the override expires. Store managers act on their stores\' members.',
    input: (t) => ({
      customerId: t.globalID({ required: true }),
      tierId: t.globalID({ description: 'Null holds the member at no tier.' }),
      reason: t.string({ required: true }),
      expiresAt: t.field({ type: 'DateTime', required: true }),
    }),
    payload: (t) => ({ customer: customerField(t), change: changeField(t) }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'tiers:override');
      const now = new Date();
      const { reason, expiresAt } = parseInput(
        z.object({
          reason: z.string().trim().min(3, 'Give a reason').max(500),
          expiresAt: z
            .date()
            .refine((d) => d > now, 'The expiry must be in the future')
            .refine((d) => d.getTime() <= now.getTime() + config.override.maxDays * 86_400_000, `An override lasts at most ${config.override.maxDays} days`),
        }),
        { reason: input.reason, expiresAt: input.expiresAt },
      );
      const customerId = idOf(input.customerId, 'Customer', fieldPath('customerId'), 'Customer');
      const tierId = input.tierId ? idOf(input.tierId, 'TierLevel', fieldPath('tierId'), 'Tier') : null;
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const customer = await targetCustomer(tx, ctx, principal, customerId, true);
        requireMember(customer);
        if (tierId && !(await tx.tierLevel.findFirst({ where: { id: tierId, orgId: principal.orgId }, select: { id: true } }))) {
          throw notFound(fieldPath('tierId'), 'Tier');
        }
        const change = await setOverride({ tx, emit, actor: principalKey(principal), config, platform: ctx.platform }, principal.orgId, customerId, {
          tierId,
          until: expiresAt,
          reason,
          at: now,
        });
        return { customerId, changeId: change.changeId.toString() };
      });
    },
  });

  defineMutation(builder, 'clearTierOverride', {
    description: 'Ends a member\'s active override now (tiers:override); the earned tier applies again.',
    input: (t) => ({ customerId: t.globalID({ required: true }), reason: t.string({ required: true }) }),
    payload: (t) => ({ customer: customerField(t), change: changeField(t) }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'tiers:override');
      const { reason } = parseInput(z.object({ reason: z.string().trim().min(3, 'Give a reason').max(500) }), { reason: input.reason });
      const customerId = idOf(input.customerId, 'Customer', fieldPath('customerId'), 'Customer');
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        await targetCustomer(tx, ctx, principal, customerId, true);
        const change = await clearOverride({ tx, emit, actor: principalKey(principal), config, platform: ctx.platform }, principal.orgId, customerId, reason);
        if (!change) throw conflict('NO_ACTIVE_OVERRIDE', 'The member has no active override', fieldPath('customerId'));
        return { customerId, changeId: change.changeId.toString() };
      });
    },
  });

  defineMutation(builder, 'recordTierTask', {
    description:
      'Records a behaviour task a customer completed (tiers:tasks), e.g. at a brand event. A member who now qualifies ' +
      'for a higher tier is upgraded at once. Idempotent by key.',
    input: (t) => ({
      customerId: t.globalID({ required: true }),
      taskCode: t.string({ required: true }),
      occurredAt: t.field({ type: 'DateTime', description: 'Defaults to now; must be within the qualification window.' }),
      note: t.string(),
      idempotencyKey: t.string({ required: true }),
    }),
    payload: (t) => ({
      completion: t.prismaField({
        type: 'TierTaskCompletion',
        nullable: true,
        resolve: (query: object, p: { completionId?: string }, _a: unknown, ctx: Context) =>
          p.completionId ? ctx.db.tierTaskCompletion.findFirst({ ...query, where: { id: BigInt(p.completionId), ...orgWhere(ctx) } }) : null,
      }),
      customer: customerField(t),
      upgraded: t.boolean({ nullable: true, description: 'True when this task raised the member\'s tier.', resolve: (p: { upgraded?: boolean }) => p.upgraded ?? null }),
      replayed: t.boolean({ nullable: true, resolve: (p: { replayed?: boolean }) => p.replayed ?? null }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'tiers:tasks');
      const now = new Date();
      const { timezone } = await ctx.platform.orgSettings(principal.orgId);
      const earliest = windowStart(now, timezone, config.windowMonths);
      const request = parseInput(
        z.object({
          taskCode: z.string().trim().regex(CODE, 'A task code is upper case letters, digits and _'),
          note: z.string().trim().max(500).nullish(),
          occurredAt: z
            .date()
            .refine((d) => d.getTime() <= now.getTime() + 5 * 60_000, 'The task cannot be in the future')
            .refine((d) => localDate(timezone, d) >= earliest, `Only tasks within the qualification window (from ${earliest}) count`)
            .nullish(),
        }),
        { taskCode: input.taskCode, note: input.note, occurredAt: input.occurredAt },
      );
      const customerId = idOf(input.customerId, 'Customer', fieldPath('customerId'), 'Customer');
      const occurredAt = request.occurredAt ?? now;
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const key = { customerId, taskCode: request.taskCode, occurredAt: request.occurredAt?.toISOString() ?? null, note: request.note ?? null };
        const { result, replayed } = await idempotent(tx, principal, input.idempotencyKey, 'recordTierTask', key, async () => {
          await targetCustomer(tx, ctx, principal, customerId, false);
          const task = await tx.tierTask.findFirst({ where: { orgId: principal.orgId, code: request.taskCode } });
          if (!task) throw notFound(fieldPath('taskCode'), 'Task');
          if (!task.active) throw conflict('TASK_INACTIVE', 'This task no longer counts towards tiers', fieldPath('taskCode'));
          const write = { tx, emit, actor: principalKey(principal), config, platform: ctx.platform };
          const { completionId } = await recordCompletion(write, principal.orgId, customerId, {
            taskId: task.id,
            occurredAt,
            source: 'STAFF',
            sourceRef: null,
            dedupeKey: `staff:${randomUUID()}`,
            recordedBy: principalKey(principal),
            note: request.note ?? null,
          });
          const evaluation = await evaluateMember(write, principal.orgId, customerId, {
            trigger: { type: 'recordTierTask', ref: completionId.toString(), at: occurredAt },
          });
          return { customerId, completionId: completionId.toString(), upgraded: evaluation?.changes.some((c) => c.event === 'tier.upgraded') ?? false };
        });
        return { ...result, replayed };
      });
    },
  });

  const QualificationInput = builder.inputType('TierQualificationInput', {
    fields: (t) => ({
      minSpend: t.field({ type: 'Decimal', required: true, description: 'Rolling spend, in the organization\'s currency.' }),
      minTasks: t.int({ defaultValue: 0 }),
    }),
  });
  const BenefitsInput = builder.inputType('TierBenefitsInput', {
    fields: (t) => ({
      discountPercent: t.field({ type: 'Decimal', defaultValue: '0', description: '0 to 90, at most two decimals.' }),
      pointsMultiplier: t.field({ type: 'Decimal', defaultValue: '1', description: '1 to 10, at most two decimals.' }),
      birthdayGift: t.string(),
      freeSkinTestsPerYear: t.int({ defaultValue: 0 }),
      priorityBooking: t.boolean({ defaultValue: false }),
      dedicatedConsultant: t.boolean({ defaultValue: false }),
      perks: t.stringList({ defaultValue: [] }),
    }),
  });
  const LevelInput = builder.inputType('TierLevelInput', {
    fields: (t) => ({
      code: t.string({ required: true }),
      name: t.string({ required: true }),
      qualifications: t.field({ type: [QualificationInput], required: true }),
      benefits: t.field({ type: BenefitsInput }),
    }),
  });

  defineMutation(builder, 'setTierLadder', {
    description:
      'Replaces the organization\'s ladder (tiers:manage): levels lowest first, matched to existing ones by code. A level ' +
      'members hold (or their history names) cannot be removed (TierInUseError). Members move at their next event or ' +
      'at the scheduled re-evaluation.',
    input: (t) => ({ levels: t.field({ type: [LevelInput], required: true }) }),
    payload: (t) => ({
      ladder: t.field({
        type: [TierLevel],
        nullable: true,
        resolve: async (p: { saved?: boolean }, _a: unknown, ctx: Context) => (p.saved ? ((await loadLadder(ctx.db, requirePrincipal(ctx).orgId)).levels as never) : null),
      }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'tiers:manage');
      const { currency } = await ctx.platform.orgSettings(principal.orgId);
      const text = z.string().trim().min(1).max(200);
      const { levels } = parseInput(
        z.object({
          levels: z
            .array(
              z.object({
                code: z.string().trim().regex(CODE, 'A tier code is upper case letters, digits and _ (e.g. GOLD)'),
                name: z.string().trim().min(1).max(80),
                qualifications: z
                  .array(z.object({ minSpend: z.string(), minTasks: z.number().int().min(0).max(1000).nullish() }))
                  .min(1, 'A tier needs at least one way to reach it')
                  .max(5),
                benefits: z
                  .object({
                    discountPercent: z.string().nullish(),
                    pointsMultiplier: z.string().nullish(),
                    birthdayGift: text.nullish(),
                    freeSkinTestsPerYear: z.number().int().min(0).max(52).nullish(),
                    priorityBooking: z.boolean().nullish(),
                    dedicatedConsultant: z.boolean().nullish(),
                    perks: z.array(z.string().trim().min(1).max(120)).max(20).nullish(),
                  })
                  .nullish(),
              }),
            )
            .min(1, 'A ladder has at least one tier')
            .max(10)
            .superRefine((list, issue) => {
              const seen = new Set<string>();
              list.forEach((level, index) => {
                if (seen.has(level.code)) issue.addIssue({ code: 'custom', path: [index, 'code'], message: `Tier code ${level.code} appears twice` });
                seen.add(level.code);
              });
            }),
        }),
        { levels: input.levels },
      );
      const prepared = levels.map((level, index) => {
        const at = (...path: (string | number)[]) => ['input', 'levels', String(index), ...path.map(String)];
        absoluteClaims([
          { field: at('name'), text: level.name },
          { field: at('benefits', 'birthdayGift'), text: level.benefits?.birthdayGift },
          ...(level.benefits?.perks ?? []).map((perk, p) => ({ field: at('benefits', 'perks', p), text: perk })),
        ]);
        const rules = level.qualifications.map((rule, r) => {
          const minor = toMinorUnits(rule.minSpend.trim(), currency);
          if (minor === null || minor < 0) throw validationError([{ field: at('qualifications', r, 'minSpend'), message: `Must be a non-negative amount with at most the digits of ${currency}` }]);
          return { minSpendMinor: BigInt(minor), minTasks: rule.minTasks ?? 0 };
        });
        const distinct = new Set(rules.map((r) => `${r.minSpendMinor}:${r.minTasks}`));
        if (distinct.size !== rules.length) throw validationError([{ field: at('qualifications'), message: 'The same rule appears twice' }]);
        return {
          code: level.code,
          name: level.name,
          rank: index + 1,
          discountBp: hundredthsOf(level.benefits?.discountPercent ?? '0', at('benefits', 'discountPercent'), 0, 9000, 'The discount'),
          pointsMultiplierPct: hundredthsOf(level.benefits?.pointsMultiplier ?? '1', at('benefits', 'pointsMultiplier'), 100, 1000, 'The points multiplier'),
          birthdayGift: level.benefits?.birthdayGift ?? null,
          freeSkinTestsPerYear: level.benefits?.freeSkinTestsPerYear ?? 0,
          priorityBooking: level.benefits?.priorityBooking ?? false,
          dedicatedConsultant: level.benefits?.dedicatedConsultant ?? false,
          perks: level.benefits?.perks ?? [],
          rules,
        };
      });
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx) => {
        // One ladder change at a time per organization.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('tier_ladder'), hashtext(${principal.orgId}))`;
        const existing = await tx.tierLevel.findMany({ where: { orgId: principal.orgId } });
        const wanted = new Set(prepared.map((level) => level.code));
        const now = new Date();
        for (const level of existing) {
          if (wanted.has(level.code)) continue;
          const [held] = await tx.$queryRaw<{ holders: number; referenced: boolean }[]>`
            SELECT (SELECT count(*) FROM tier_state WHERE earned_tier_id = ${level.id}::uuid
                      OR (override_tier_id = ${level.id}::uuid AND override_until > ${now}))::int AS holders,
                   EXISTS (SELECT 1 FROM tier_state WHERE earned_tier_id = ${level.id}::uuid OR override_tier_id = ${level.id}::uuid)
                   OR EXISTS (SELECT 1 FROM tier_change WHERE ${level.id}::uuid IN (from_tier_id, to_tier_id, effective_tier_id)) AS referenced`;
          if (held!.referenced) {
            throw tierError('TierInUseError', 'TIER_IN_USE', `${level.name} (${level.code}) is held by ${held!.holders} member(s) or named in their tier history`, ['input', 'levels'], {
              holders: held!.holders,
            });
          }
          await tx.tierLevel.delete({ where: { id: level.id } });
        }
        const byCode = new Map(existing.map((level) => [level.code, level]));
        for (const { rules, ...level } of prepared) {
          const current = byCode.get(level.code);
          const saved = current
            ? await tx.tierLevel.update({ where: { id: current.id }, data: { ...level, updatedAt: now }, select: { id: true } })
            : await tx.tierLevel.create({ data: { ...level, orgId: principal.orgId }, select: { id: true } });
          await tx.tierQualification.deleteMany({ where: { tierId: saved.id } });
          await tx.tierQualification.createMany({ data: rules.map((rule) => ({ ...rule, orgId: principal.orgId, tierId: saved.id })) });
        }
        return { saved: true };
      });
    },
  });

  defineMutation(builder, 'upsertTierTask', {
    description:
      'Defines or changes a behaviour task (tiers:manage), by code. `eventType` maps an event of another module to it ' +
      `(one of ${TASK_EVENT_TYPES.join(', ')}); at most one active task per event type.`,
    input: (t) => ({
      code: t.string({ required: true }),
      name: t.string({ required: true }),
      description: t.string(),
      eventType: t.string(),
      customerField: t.string({ defaultValue: 'customerId' }),
      maxPerWindow: t.int(),
      active: t.boolean({ defaultValue: true }),
    }),
    payload: (t) => ({
      task: t.prismaField({
        type: 'TierTask',
        nullable: true,
        resolve: (query: object, p: { taskId?: string }, _a: unknown, ctx: Context) =>
          p.taskId ? ctx.db.tierTask.findFirst({ ...query, where: { id: p.taskId, ...orgWhere(ctx) } }) : null,
      }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'tiers:manage');
      const data = parseInput(
        z.object({
          code: z.string().trim().regex(CODE, 'A task code is upper case letters, digits and _'),
          name: z.string().trim().min(1).max(120),
          description: z.string().trim().max(1000).nullish(),
          eventType: z
            .string()
            .refine((type) => (TASK_EVENT_TYPES as readonly string[]).includes(type), `Events that can complete a task: ${TASK_EVENT_TYPES.join(', ')}`)
            .nullish(),
          customerField: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,39}$/, 'A payload field name').nullish(),
          maxPerWindow: z.number().int().min(1).max(1000).nullish(),
          active: z.boolean().nullish(),
        }),
        input,
      );
      absoluteClaims([
        { field: fieldPath('name'), text: data.name },
        { field: fieldPath('description'), text: data.description },
      ]);
      const values = {
        name: data.name,
        description: data.description ?? null,
        eventType: data.eventType ?? null,
        customerField: data.customerField ?? 'customerId',
        maxPerWindow: data.maxPerWindow ?? null,
        active: data.active ?? true,
      };
      try {
        return await inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx) => {
          const task = await tx.tierTask.upsert({
            where: { orgId_code: { orgId: principal.orgId, code: data.code } },
            create: { orgId: principal.orgId, code: data.code, ...values },
            update: values,
            select: { id: true },
          });
          return { taskId: task.id };
        });
      } catch (error) {
        if (pgErrorCode(error) === '23505' || (error as { code?: string }).code === 'P2002') {
          throw conflict('EVENT_TYPE_TAKEN', 'Another active task already counts this event', fieldPath('eventType'));
        }
        throw error;
      }
    },
  });

  // --- Subscription ----------------------------------------------------------------------------------------------

  const TierChangeEvent = builder.objectRef<DomainEvent>('TierChangeEvent').implement({
    description: 'A member\'s tier went up or down (tier.upgraded / tier.downgraded).',
    fields: (t) => ({
      type: t.exposeString('type'),
      occurredAt: t.field({ type: 'DateTime', resolve: (e) => new Date(e.occurredAt) }),
      fromTier: t.string({ nullable: true, description: 'Tier code before.', resolve: (e) => (e.payload.fromTier as string | null) ?? null }),
      toTier: t.string({ nullable: true, description: 'Tier code after.', resolve: (e) => (e.payload.toTier as string | null) ?? null }),
      change: t.prismaField({
        type: 'TierChange',
        nullable: true,
        resolve: (query, e, _a, ctx) => ctx.db.tierChange.findFirst({ ...query, where: { id: BigInt(e.payload.changeId as string), ...orgWhere(ctx) } }),
      }),
      customer: t.prismaField({
        type: 'Customer',
        nullable: true,
        resolve: (query, e, _a, ctx) => ctx.db.customer.findFirst({ ...query, where: { AND: [{ id: String(e.payload.customerId) }, customerWhere(ctx)] } }),
      }),
    }),
  });

  builder.subscriptionField('tierChanged', (t) =>
    t.field({
      type: TierChangeEvent,
      description:
        'Tier changes of one customer (a customer token: only its own), or, without customerId, of every customer the ' +
        'caller can see (staff).',
      args: { customerId: t.arg.globalID({ required: false }) },
      subscribe: async (_root, args, ctx) => {
        const principal = requirePrincipal(ctx);
        let customerId = args.customerId ? args.customerId.id : principal.kind === 'CUSTOMER' ? principal.customerId : null;
        if (customerId) {
          const visible =
            args.customerId?.typename === 'Customer' || !args.customerId
              ? isUuid(customerId) && (await ctx.db.customer.findFirst({ where: { AND: [{ id: customerId }, customerWhere(ctx)] }, select: { id: true } }))
              : null;
          if (!visible) throw new GraphQLError('Customer not found', { extensions: { code: 'NOT_FOUND' } });
          customerId = customerId.toLowerCase();
        } else if (!can(principal, 'customers:read')) {
          throw new GraphQLError('Requires the customers:read permission', { extensions: { code: 'FORBIDDEN' } });
        }
        return organizationEvents(ctx, (event) => event.aggregateType === 'MemberTier' && (!customerId || event.payload.customerId === customerId));
      },
      resolve: (event, _args, ctx) => {
        // One context serves every event of a subscription: read each event fresh.
        ctx.loaders.clear();
        return event;
      },
    }),
  );
}
