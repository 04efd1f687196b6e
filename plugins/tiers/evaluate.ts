import type { Db, Tx } from '../../core/db/clients.ts';
import { inTransaction, type Emit } from '../../core/events/outbox.ts';
import { localDate } from '../../core/graph/local-time.ts';
import type { Platform } from '../../core/platform.ts';
import type { TiersConfig } from './config.ts';
import { describeMetrics, describeRule, Ladder, loadLadder, meets, type Level, type Metrics } from './ladder.ts';

export const ACTOR = 'plugin:tiers';

/** What evaluation needs: the transaction, the outbox, who acts, and the plugin's configuration. */
export interface TierWrite {
  tx: Tx;
  emit: Emit;
  actor: string;
  config: TiersConfig;
  platform: Pick<Platform, 'orgSettings'>;
}

export interface TierStateRow {
  customerId: string;
  orgId: string;
  earnedTierId: string | null;
  earnedSince: Date | null;
  belowSince: Date | null;
  overrideTierId: string | null;
  overrideUntil: Date | null;
  overrideReason: string | null;
  overrideBy: string | null;
}

/** The tier a member holds at `at`: an override until it expires, else the earned tier. */
export function effectiveTierId(state: Pick<TierStateRow, 'earnedTierId' | 'overrideTierId' | 'overrideUntil'> | null, at = new Date()): string | null {
  if (!state) return null;
  return state.overrideUntil && state.overrideUntil > at ? state.overrideTierId : state.earnedTierId;
}

// --- Metrics ------------------------------------------------------------------------------------------------------

/**
 * Rolling spend and counted tasks of many customers at `at`, in one statement. A visit counts while its completion
 * date, in its store's time zone, is later than the same date `windowMonths` earlier than `at` (so on 2026-11-23 a
 * visit of 2025-11-24 counts and one of 2025-11-23 no longer does); a refunded visit no longer counts. Tasks use
 * the organization's time zone, and each task counts at most its `max_per_window` times.
 */
export async function memberMetrics(
  db: Tx | Db,
  orgId: string,
  customerIds: readonly string[],
  at: Date,
  windowMonths: number,
  orgTimezone: string,
): Promise<Map<string, Metrics>> {
  if (customerIds.length === 0) return new Map();
  const rows = await db.$queryRaw<{ customer_id: string; spend: bigint; tasks: number }[]>`
    SELECT c.id AS customer_id,
      (SELECT coalesce(sum(v.total_minor), 0) FROM visit v JOIN store s ON s.id = v.store_id
        WHERE v.customer_id = c.id AND v.org_id = ${orgId}::uuid AND v.status = 'COMPLETED'
          AND v.completed_at <= ${at}::timestamptz
          AND v.completed_at > ${at}::timestamptz - make_interval(months => ${windowMonths}::int + 1)
          AND (v.completed_at AT TIME ZONE s.timezone)::date
              > ((${at}::timestamptz AT TIME ZONE s.timezone)::date - make_interval(months => ${windowMonths}::int))::date
      )::bigint AS spend,
      (SELECT coalesce(sum(LEAST(x.n, coalesce(t.max_per_window, x.n))), 0) FROM (
          SELECT tc.task_id, count(*)::int AS n FROM tier_task_completion tc
          WHERE tc.customer_id = c.id AND tc.org_id = ${orgId}::uuid AND tc.occurred_at <= ${at}::timestamptz
            AND (tc.occurred_at AT TIME ZONE ${orgTimezone})::date
                > ((${at}::timestamptz AT TIME ZONE ${orgTimezone})::date - make_interval(months => ${windowMonths}::int))::date
          GROUP BY tc.task_id) x
        JOIN tier_task t ON t.id = x.task_id
      )::int AS tasks
    FROM unnest(${customerIds as string[]}::uuid[]) AS c(id)`;
  return new Map(rows.map((row) => [row.customer_id, { spendMinor: BigInt(row.spend), tasks: Number(row.tasks) }]));
}

/** The first local date of the window that ends on `at`'s date, in a time zone (YYYY-MM-DD). */
export function windowStart(at: Date, timezone: string, windowMonths: number): string {
  const [y, m, d] = localDate(timezone, at).split('-').map(Number) as [number, number, number];
  // Same date windowMonths earlier (clamped to the month's end, as PostgreSQL does), plus one day.
  const monthIndex = m - 1 - windowMonths;
  const year = y + Math.floor(monthIndex / 12);
  const month = ((monthIndex % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const start = new Date(Date.UTC(year, month, Math.min(d, lastDay) + 1));
  return start.toISOString().slice(0, 10);
}

// --- State and history ----------------------------------------------------------------------------------------------

/**
 * The member's state row, created when missing and locked for the rest of the transaction. The locking read is a
 * statement of its own: it must see a row another transaction inserted and committed while the INSERT waited.
 */
async function lockState(tx: Tx, orgId: string, customerId: string): Promise<TierStateRow> {
  await tx.$executeRaw`INSERT INTO tier_state (customer_id, org_id) VALUES (${customerId}::uuid, ${orgId}::uuid) ON CONFLICT (customer_id) DO NOTHING`;
  const [state] = await tx.$queryRaw<TierStateRow[]>`
    SELECT customer_id::text AS "customerId", org_id::text AS "orgId", earned_tier_id::text AS "earnedTierId",
           earned_since AS "earnedSince", below_since AS "belowSince", override_tier_id::text AS "overrideTierId",
           override_until AS "overrideUntil", override_reason AS "overrideReason", override_by AS "overrideBy"
    FROM tier_state WHERE customer_id = ${customerId}::uuid FOR UPDATE`;
  if (!state) throw new Error(`tier state of customer ${customerId} is not in organization ${orgId}`);
  return state;
}

interface ChangeInput {
  kind: 'UPGRADE' | 'DOWNGRADE' | 'OVERRIDE_SET' | 'OVERRIDE_ENDED';
  fromTierId: string | null;
  toTierId: string | null;
  /** The tier the member held before and holds after this change. */
  effectiveBefore: string | null;
  effectiveAfter: string | null;
  reason: string;
  metrics?: Metrics | null;
  overrideUntil?: Date | null;
  trigger: Trigger;
  effectiveAt: Date;
}

export interface Trigger {
  /** The event type, 'schedule', or the mutation. */
  type: string;
  ref?: string | null;
  /** When what triggered the change happened (a visit's completion, a task's time); defaults to now. */
  at?: Date;
}

export interface RecordedChange {
  changeId: bigint;
  event: 'tier.upgraded' | 'tier.downgraded' | null;
}

/**
 * Writes one history row and, when the tier the member holds changed, emits tier.upgraded / tier.downgraded
 * (stream key: the customer, so a member's changes are handled in order).
 */
async function recordChange(write: TierWrite, ladder: Ladder, orgId: string, customerId: string, change: ChangeInput): Promise<RecordedChange> {
  const last = await write.tx.tierChange.findFirst({
    where: { customerId },
    orderBy: [{ effectiveAt: 'desc' }, { id: 'desc' }],
    select: { effectiveAt: true },
  });
  // History stays in order even when what triggered a change happened before the last recorded change.
  const effectiveAt = last && last.effectiveAt > change.effectiveAt ? last.effectiveAt : change.effectiveAt;
  const row = await write.tx.tierChange.create({
    data: {
      orgId,
      customerId,
      kind: change.kind,
      fromTierId: change.fromTierId,
      toTierId: change.toTierId,
      effectiveTierId: change.effectiveAfter,
      reason: change.reason.slice(0, 1000),
      spendMinor: change.metrics?.spendMinor ?? null,
      tasks: change.metrics?.tasks ?? null,
      overrideUntil: change.overrideUntil ?? null,
      actor: write.actor,
      trigger: change.trigger.type,
      triggerRef: change.trigger.ref ?? null,
      effectiveAt,
    },
    select: { id: true },
  });
  if (change.effectiveBefore === change.effectiveAfter) return { changeId: row.id, event: null };
  const type = ladder.position(change.effectiveAfter) > ladder.position(change.effectiveBefore) ? 'tier.upgraded' : 'tier.downgraded';
  await write.emit({
    type,
    aggregateType: 'MemberTier',
    aggregateId: customerId,
    streamKey: customerId,
    payload: {
      customerId,
      changeId: row.id.toString(),
      kind: change.kind,
      fromTier: ladder.get(change.effectiveBefore)?.code ?? null,
      toTier: ladder.get(change.effectiveAfter)?.code ?? null,
      reason: change.reason,
    },
  });
  return { changeId: row.id, event: type };
}

/** Ends an override whose time is up (history dated at its expiry). Returns the state as it is afterwards. */
async function settleExpiredOverride(
  write: TierWrite,
  ladder: Ladder,
  state: TierStateRow,
  at: Date,
): Promise<{ state: TierStateRow; change: RecordedChange | null }> {
  if (!state.overrideUntil || state.overrideUntil > at) return { state, change: null };
  const ended = { ...state, overrideTierId: null, overrideUntil: null, overrideReason: null, overrideBy: null };
  await write.tx.tierState.update({
    where: { customerId: state.customerId },
    data: { overrideTierId: null, overrideUntil: null, overrideReason: null, overrideBy: null, updatedAt: new Date() },
  });
  const change = await recordChange(write, ladder, state.orgId, state.customerId, {
    kind: 'OVERRIDE_ENDED',
    fromTierId: state.overrideTierId,
    toTierId: state.earnedTierId,
    effectiveBefore: state.overrideTierId,
    effectiveAfter: state.earnedTierId,
    reason: `Override expired (it was: ${state.overrideReason})`,
    trigger: { type: 'override.expired' },
    effectiveAt: state.overrideUntil,
  });
  return { state: ended, change };
}

// --- Evaluation -----------------------------------------------------------------------------------------------------

export interface Evaluation {
  customerId: string;
  metrics: Metrics;
  qualified: Level | null;
  earned: Level | null;
  effective: Level | null;
  changes: RecordedChange[];
}

/**
 * Re-evaluates one member at `at`, in the caller's transaction (a handler's, so a redelivered event has no second
 * effect; or the scheduled job's). Upgrades happen at once, to the highest level the member qualifies for.
 * A member below their tier's rules starts a grace period; only a scheduled evaluation (`scheduled`) lowers the
 * tier, once the grace period is over, by at most `levelsPerStep` levels — a further step waits for another grace
 * period. Non-members, and organizations without a ladder, are left alone (null).
 */
export async function evaluateMember(
  write: TierWrite,
  orgId: string,
  customerId: string,
  options: { at?: Date; scheduled?: boolean; trigger: Trigger; ladder?: Ladder },
): Promise<Evaluation | null> {
  const at = options.at ?? new Date();
  const { tx, config } = write;
  const ladder = options.ladder ?? (await loadLadder(tx, orgId));
  if (ladder.empty) return null;
  const membership = await tx.membership.findFirst({ where: { customerId, orgId }, select: { status: true } });
  if (!membership || membership.status !== 'ACTIVE') return null;
  const changes: RecordedChange[] = [];
  const settled = await settleExpiredOverride(write, ladder, await lockState(tx, orgId, customerId), at);
  if (settled.change) changes.push(settled.change);
  let state = settled.state;

  const { timezone, currency } = await write.platform.orgSettings(orgId);
  const metrics = (await memberMetrics(tx, orgId, [customerId], at, config.windowMonths, timezone)).get(customerId)!;
  const qualified = ladder.qualified(metrics);
  const qualifiedPos = ladder.position(qualified?.id);
  const earnedPos = ladder.position(state.earnedTierId);
  const today = localDate(timezone, at);
  const measured = describeMetrics(metrics, currency, config.windowMonths, today);
  const effectiveBefore = effectiveTierId(state, at);
  const overrideActive = Boolean(state.overrideUntil && state.overrideUntil > at);

  let next: { tierId: string | null; kind: 'UPGRADE' | 'DOWNGRADE'; reason: string; belowSince: Date | null } | null = null;
  let belowSince = state.belowSince;
  if (qualifiedPos > earnedPos) {
    const rule = qualified!.qualifications.find((r) => meets(r, metrics))!;
    next = { tierId: qualified!.id, kind: 'UPGRADE', reason: `Qualified for ${qualified!.name} (${describeRule(rule, currency)}): ${measured}`, belowSince: null };
  } else if (qualifiedPos === earnedPos) {
    belowSince = null;
  } else {
    belowSince ??= at;
    const graceEnds = new Date(belowSince.getTime() + config.downgrade.graceDays * 86_400_000);
    if (options.scheduled && at >= graceEnds) {
      const targetPos = Math.max(qualifiedPos, earnedPos - config.downgrade.levelsPerStep);
      const target = ladder.at(targetPos);
      const from = ladder.get(state.earnedTierId)!;
      next = {
        tierId: target?.id ?? null,
        kind: 'DOWNGRADE',
        reason:
          `Below ${from.name} since ${localDate(timezone, belowSince)} and past the ${config.downgrade.graceDays}-day grace period: ${measured}; ` +
          `now ${target?.name ?? 'no tier'}` +
          (targetPos > qualifiedPos ? ` (at most ${config.downgrade.levelsPerStep} level${config.downgrade.levelsPerStep === 1 ? '' : 's'} at a time)` : ''),
        // Still above what the member qualifies for: the next step waits for another grace period.
        belowSince: targetPos > qualifiedPos ? at : null,
      };
    }
  }

  if (next) {
    // An upgrade counts from what earned it (a visit's completion, a task's time); a downgrade from now.
    const since = next.kind === 'UPGRADE' ? (options.trigger.at ?? at) : at;
    await tx.tierState.update({
      where: { customerId },
      data: { earnedTierId: next.tierId, earnedSince: next.tierId ? since : null, belowSince: next.belowSince, updatedAt: new Date() },
    });
    const effectiveAfter = overrideActive ? state.overrideTierId : next.tierId;
    changes.push(
      await recordChange(write, ladder, orgId, customerId, {
        kind: next.kind,
        fromTierId: state.earnedTierId,
        toTierId: next.tierId,
        effectiveBefore,
        effectiveAfter,
        reason: next.reason,
        metrics,
        trigger: options.trigger,
        effectiveAt: since,
      }),
    );
    state = { ...state, earnedTierId: next.tierId, earnedSince: next.tierId ? since : null, belowSince: next.belowSince };
  } else if ((belowSince?.getTime() ?? null) !== (state.belowSince?.getTime() ?? null)) {
    await tx.tierState.update({ where: { customerId }, data: { belowSince, updatedAt: new Date() } });
    state = { ...state, belowSince };
  }
  return {
    customerId,
    metrics,
    qualified,
    earned: ladder.get(state.earnedTierId),
    effective: ladder.get(effectiveTierId(state, at)),
    changes,
  };
}

// --- Overrides ------------------------------------------------------------------------------------------------------

/** Sets (or replaces) a member's override. `tierId` null pins the member at no tier. */
export async function setOverride(
  write: TierWrite,
  orgId: string,
  customerId: string,
  override: { tierId: string | null; until: Date; reason: string; at?: Date },
): Promise<RecordedChange> {
  const at = override.at ?? new Date();
  const ladder = await loadLadder(write.tx, orgId);
  const { state } = await settleExpiredOverride(write, ladder, await lockState(write.tx, orgId, customerId), at);
  const before = effectiveTierId(state, at);
  await write.tx.tierState.update({
    where: { customerId },
    data: { overrideTierId: override.tierId, overrideUntil: override.until, overrideReason: override.reason, overrideBy: write.actor, updatedAt: new Date() },
  });
  const tier = ladder.get(override.tierId);
  return recordChange(write, ladder, orgId, customerId, {
    kind: 'OVERRIDE_SET',
    fromTierId: before,
    toTierId: override.tierId,
    effectiveBefore: before,
    effectiveAfter: override.tierId,
    reason: `Override to ${tier?.name ?? 'no tier'} until ${override.until.toISOString()}: ${override.reason}`,
    overrideUntil: override.until,
    trigger: { type: 'overrideTier' },
    effectiveAt: at,
  });
}

/** Ends an active override now; null when there is none. */
export async function clearOverride(write: TierWrite, orgId: string, customerId: string, reason: string, at = new Date()): Promise<RecordedChange | null> {
  const ladder = await loadLadder(write.tx, orgId);
  const { state } = await settleExpiredOverride(write, ladder, await lockState(write.tx, orgId, customerId), at);
  if (!state.overrideUntil) return null;
  await write.tx.tierState.update({
    where: { customerId },
    data: { overrideTierId: null, overrideUntil: null, overrideReason: null, overrideBy: null, updatedAt: new Date() },
  });
  return recordChange(write, ladder, orgId, customerId, {
    kind: 'OVERRIDE_ENDED',
    fromTierId: state.overrideTierId,
    toTierId: state.earnedTierId,
    effectiveBefore: state.overrideTierId,
    effectiveAfter: state.earnedTierId,
    reason: `Override cleared: ${reason}`,
    trigger: { type: 'clearTierOverride' },
    effectiveAt: at,
  });
}

// --- Scheduled re-evaluation -----------------------------------------------------------------------------------------

/**
 * Re-evaluates an organization's members at `at`: reads every active member's metrics in one statement, then
 * changes, each in its own transaction, only those whose state must move (an upgrade, a grace period to start or
 * end, a downgrade that is due, an override that has expired).
 */
export async function reevaluateOrganization(
  platform: Platform,
  config: TiersConfig,
  orgId: string,
  at = new Date(),
): Promise<{ members: number; changed: string[] }> {
  const db = platform.dbs.forOrg(orgId);
  const ladder = await loadLadder(db, orgId);
  if (ladder.empty) return { members: 0, changed: [] };
  const { timezone } = await platform.orgSettings(orgId);
  const members = await db.$queryRaw<{ customer_id: string; earned_tier_id: string | null; below_since: Date | null; override_until: Date | null }[]>`
    SELECT m.customer_id, s.earned_tier_id, s.below_since, s.override_until
    FROM membership m LEFT JOIN tier_state s ON s.customer_id = m.customer_id
    WHERE m.org_id = ${orgId}::uuid AND m.status = 'ACTIVE'
    ORDER BY m.customer_id`;
  const changed: string[] = [];
  const graceMs = config.downgrade.graceDays * 86_400_000;
  for (let offset = 0; offset < members.length; offset += 1000) {
    const chunk = members.slice(offset, offset + 1000);
    const metrics = await memberMetrics(db, orgId, chunk.map((m) => m.customer_id), at, config.windowMonths, timezone);
    for (const member of chunk) {
      const qualifiedPos = ladder.position(ladder.qualified(metrics.get(member.customer_id)!)?.id);
      const earnedPos = ladder.position(member.earned_tier_id);
      const due =
        (member.override_until !== null && member.override_until <= at) ||
        qualifiedPos > earnedPos ||
        (qualifiedPos === earnedPos && member.below_since !== null) ||
        (qualifiedPos < earnedPos && (member.below_since === null || member.below_since.getTime() + graceMs <= at.getTime()));
      if (!due) continue;
      await inTransaction(platform, db, orgId, ACTOR, (tx, emit) =>
        evaluateMember({ tx, emit, actor: ACTOR, config, platform }, orgId, member.customer_id, { at, scheduled: true, trigger: { type: 'schedule' } }),
      );
      changed.push(member.customer_id);
    }
  }
  return { members: members.length, changed };
}

/** Every organization with a ladder (the job's entry point). */
export async function reevaluateAll(platform: Platform, config: TiersConfig, at = new Date()): Promise<void> {
  const orgs = await platform.dbs.system.$queryRaw<{ org_id: string }[]>`SELECT DISTINCT org_id FROM tier_level ORDER BY org_id`;
  for (const { org_id } of orgs) await reevaluateOrganization(platform, config, org_id, at);
}

// --- What other plugins ask ---------------------------------------------------------------------------------------

/**
 * The tier a member held at an instant, from the history: the last change strictly before `at` (so the visit that
 * earns an upgrade still earns at the tier held before it, whichever plugin's handler runs first).
 */
export async function tierHeldAt(tx: Tx, orgId: string, customerId: string, at: Date): Promise<Level | null> {
  const last = await tx.tierChange.findFirst({
    where: { orgId, customerId, effectiveAt: { lt: at } },
    orderBy: [{ effectiveAt: 'desc' }, { id: 'desc' }],
    select: { kind: true, effectiveTierId: true, overrideUntil: true },
  });
  if (!last) return null;
  let tierId = last.effectiveTierId;
  if (last.kind === 'OVERRIDE_SET' && last.overrideUntil && last.overrideUntil <= at) {
    // The override had run out by then but was not yet settled: the earned tier applied.
    const earned = await tx.tierChange.findFirst({
      where: { orgId, customerId, kind: { in: ['UPGRADE', 'DOWNGRADE'] }, effectiveAt: { lt: at } },
      orderBy: [{ effectiveAt: 'desc' }, { id: 'desc' }],
      select: { toTierId: true },
    });
    tierId = earned?.toTierId ?? null;
  }
  if (!tierId) return null;
  return (await tx.tierLevel.findFirst({ where: { id: tierId, orgId }, include: { qualifications: true } })) as Level | null;
}

/** The tier a member holds now (for rewards limited to tiers). */
export async function currentTier(tx: Tx, orgId: string, customerId: string): Promise<Level | null> {
  const state = await tx.tierState.findFirst({ where: { customerId, orgId } });
  const membership = await tx.membership.findFirst({ where: { customerId, orgId }, select: { status: true } });
  const tierId = membership?.status === 'ACTIVE' ? effectiveTierId(state) : null;
  if (!tierId) return null;
  return (await tx.tierLevel.findFirst({ where: { id: tierId, orgId }, include: { qualifications: true } })) as Level | null;
}
