import type { Tx } from '../../core/db/clients.ts';
import type { DomainEvent, Emit } from '../../core/events/outbox.ts';
import { conflict, fieldPath, notFound } from '../../core/graphql/errors.ts';
import type { HandlerContext } from '../../core/plugin/contract.ts';
import type { Platform } from '../../core/platform.ts';
import type { PointsConfig } from '../points/config.ts';
import { isDomainError } from '../points/errors.ts';
import { credit, debit, ensureAccount, type LedgerWrite } from '../points/ledger.ts';
import type { ReferralsConfig } from './config.ts';
import { claimWindowClosed, existingCustomer, monthlyCapReached, referralLoop, samePhone, selfReferral } from './errors.ts';
import { levelFor, partnerLevels, referrerStats } from './levels.ts';

/**
 * The referral lifecycle: PENDING (claimed) → QUALIFIED (the newcomer's first paid visit) → REWARDED (both sides'
 * points paid), or EXPIRED (not qualified in time), or REJECTED (fraud found after the claim, or the qualifying
 * visit refunded: points paid are taken back). Every step runs in one transaction with its events; rewards go
 * through the points ledger with one dedupe key per side, so a reward is paid once however often an event arrives.
 */

export const ACTOR = 'plugin:referrals';
const DAY_MS = 86_400_000;

export type RejectionCode = 'SAME_PHONE' | 'QUALIFYING_VISIT_REFUNDED' | 'REPORTED_FRAUD';

export interface Write {
  tx: Tx;
  emit: Emit;
  actor: string;
  config: ReferralsConfig;
  platform: Platform;
}

type ReferralRow = NonNullable<Awaited<ReturnType<Tx['referral']['findUnique']>>>;

/** The points plugin's configuration (referrals depends on it, so it is always loaded alongside). */
export function pointsConfig(platform: Platform): PointsConfig {
  const points = platform.plugins.find((plugin) => plugin.definition.name === 'points');
  if (!points) throw new Error('The referrals plugin needs the points plugin');
  return points.config as PointsConfig;
}

async function announce(write: Write, type: string, referral: ReferralRow, extra: Record<string, unknown> = {}) {
  await write.emit({
    type,
    aggregateType: 'Referral',
    aggregateId: referral.id,
    // The referrer's stream: their partner progress (and the tiers plugin's task count) follows their referrals in order.
    streamKey: referral.referrerId,
    payload: {
      referralId: referral.id,
      customerId: referral.referrerId,
      // Named too, for readers that map a task to its customer by field (the tiers plugin's default).
      referrerId: referral.referrerId,
      refereeId: referral.refereeId,
      storeId: referral.storeId,
      status: referral.status,
      ...extra,
    },
  });
}

/** Locks a referral row for this transaction and returns it. */
async function lockReferral(tx: Tx, orgId: string, where: { id: string } | { refereeId: string }): Promise<ReferralRow | null> {
  const [locked] =
    'id' in where
      ? await tx.$queryRaw<{ id: string }[]>`SELECT id FROM referral WHERE id = ${where.id}::uuid AND org_id = ${orgId}::uuid FOR UPDATE`
      : await tx.$queryRaw<{ id: string }[]>`SELECT id FROM referral WHERE referee_id = ${where.refereeId}::uuid AND org_id = ${orgId}::uuid FOR UPDATE`;
  return locked ? tx.referral.findUnique({ where: { id: locked.id } }) : null;
}

// --- Claiming -----------------------------------------------------------------------------------------------------

/** Whether the two customers have ever had the same phone number (numbers are unique at any one moment). */
async function sharedPhone(tx: Tx, orgId: string, a: string, b: string): Promise<boolean> {
  const [row] = await tx.$queryRaw<{ shared: boolean }[]>`
    SELECT EXISTS (
      SELECT 1 FROM referral_phone x JOIN referral_phone y ON y.org_id = x.org_id AND y.phone = x.phone
      WHERE x.org_id = ${orgId}::uuid AND x.customer_id = ${a}::uuid AND y.customer_id = ${b}::uuid) AS shared`;
  return row!.shared;
}

/**
 * Customers in the loop a new referral referrer → referee would close: the referee is already up the referrer's
 * chain of referrers (A refers B, then B refers A; or A → B → C, then C refers A). 0 when there is no loop.
 */
async function loopLength(tx: Tx, orgId: string, referrerId: string, refereeId: string): Promise<number> {
  const [row] = await tx.$queryRaw<{ depth: number | null }[]>`
    WITH RECURSIVE up (customer_id, depth) AS (
      SELECT referrer_id, 1 FROM referral WHERE org_id = ${orgId}::uuid AND referee_id = ${referrerId}::uuid AND status <> 'REJECTED'
      UNION ALL
      SELECT r.referrer_id, up.depth + 1 FROM referral r JOIN up ON r.referee_id = up.customer_id
      WHERE r.org_id = ${orgId}::uuid AND r.status <> 'REJECTED' AND up.depth < 1000
    )
    SELECT min(depth)::int AS depth FROM up WHERE customer_id = ${refereeId}::uuid`;
  return row?.depth ? row.depth + 1 : 0;
}

/**
 * Records that `refereeId` registered with `code`. The caller has checked that it may act for the referee. Checks,
 * in order: the code exists in the organization, it is not the referee's own, the referee has not been referred
 * before, the claim window is open, the two never shared a phone, no loop, the referee is a newcomer, and the
 * referrer's monthly cap. Claims of an organization are serialized (a transaction-scoped advisory lock), so two
 * claims cannot together pass the loop check or the cap.
 */
export async function claimReferral(write: Write, orgId: string, refereeId: string, code: string): Promise<string> {
  const { tx, config } = write;
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended('referrals:claim:' || ${orgId}, 0))`;
  const owner = await tx.referralCode.findFirst({ where: { orgId, code }, select: { customerId: true } });
  if (!owner) throw notFound(fieldPath('code'), 'Referral code');
  const referrerId = owner.customerId;
  if (referrerId === refereeId) throw selfReferral();
  if (await tx.referral.findFirst({ where: { orgId, refereeId }, select: { id: true } })) {
    throw conflict('ALREADY_REFERRED', 'This customer has already registered with a referral code', fieldPath('customerId'));
  }
  const [referee, referrer] = await Promise.all([
    tx.customer.findFirstOrThrow({ where: { id: refereeId, orgId }, select: { createdAt: true, homeStoreId: true } }),
    tx.customer.findFirstOrThrow({ where: { id: referrerId, orgId }, select: { createdAt: true } }),
  ]);
  const now = new Date();
  const closedAt = new Date(referee.createdAt.getTime() + config.claimWindowDays * DAY_MS);
  if (now > closedAt) throw claimWindowClosed(closedAt);
  if (await sharedPhone(tx, orgId, referrerId, refereeId)) throw samePhone();
  const loop = await loopLength(tx, orgId, referrerId, refereeId);
  if (loop > 0) throw referralLoop(loop);
  const visited = await tx.visit.findFirst({ where: { customerId: refereeId, orgId, completedAt: { not: null, lte: now } }, select: { id: true } });
  if (visited) throw existingCustomer('COMPLETED_VISITS');
  if (referee.createdAt < referrer.createdAt) throw existingCustomer('REGISTERED_BEFORE_REFERRER');
  if (config.monthlyCapPerReferrer !== null) {
    const { timezone } = await write.platform.orgSettings(orgId);
    const [month] = await tx.$queryRaw<{ claims: number; resetsAt: Date }[]>`
      WITH bounds AS (
        SELECT date_trunc('month', ${now}::timestamptz AT TIME ZONE ${timezone}) AT TIME ZONE ${timezone} AS starts,
               (date_trunc('month', ${now}::timestamptz AT TIME ZONE ${timezone}) + interval '1 month') AT TIME ZONE ${timezone} AS ends
      )
      SELECT (SELECT count(*) FROM referral r
               WHERE r.org_id = ${orgId}::uuid AND r.referrer_id = ${referrerId}::uuid AND r.status <> 'REJECTED'
                 AND r.claimed_at >= bounds.starts AND r.claimed_at < bounds.ends)::int AS claims,
             bounds.ends AS "resetsAt"
      FROM bounds`;
    if (month!.claims >= config.monthlyCapPerReferrer) throw monthlyCapReached(config.monthlyCapPerReferrer, month!.resetsAt);
  }
  const referral = await tx.referral.create({
    data: {
      orgId,
      referrerId,
      refereeId,
      code,
      storeId: referee.homeStoreId,
      claimedAt: now,
      claimedBy: write.actor,
      qualifyBy: new Date(now.getTime() + config.qualifyWithinDays * DAY_MS),
    },
  });
  await announce(write, 'referral.claimed', referral, { occurredAt: now.toISOString(), qualifyBy: referral.qualifyBy.toISOString() });
  return referral.id;
}

// --- Qualifying and rewarding --------------------------------------------------------------------------------------

/**
 * visit.completed: the referee's first paid visit (at least the configured amount, completed after the claim and by
 * the deadline) qualifies the referral and pays both sides. A later visit, or the same event again, finds the
 * referral no longer PENDING and does nothing. A visit completed in time whose event arrives after the expiry job
 * ran still qualifies.
 */
export async function qualifyOnVisit(event: DomainEvent, ctx: HandlerContext<ReferralsConfig>) {
  const payload = event.payload as { visitId: string; customerId: string; completedAt: string; totalMinor: number };
  const write = writer(ctx);
  const referral = await lockReferral(ctx.tx, event.orgId, { refereeId: payload.customerId });
  if (!referral || (referral.status !== 'PENDING' && referral.status !== 'EXPIRED')) return;
  const completedAt = new Date(payload.completedAt);
  if (completedAt < referral.claimedAt || completedAt > referral.qualifyBy) return;
  if (!(payload.totalMinor >= ctx.config.minimumFirstVisitMinor)) return;
  // The visit as it is now: a refund recorded before this handler ran means it no longer counts.
  const visit = await ctx.tx.visit.findFirst({ where: { id: payload.visitId, orgId: event.orgId }, select: { status: true, totalMinor: true } });
  if (visit?.status !== 'COMPLETED') return;
  // Phones can change after the claim: a number moved between the two accounts since then is caught here.
  if (await sharedPhone(ctx.tx, event.orgId, referral.referrerId, referral.refereeId)) {
    await reject(write, event.orgId, referral.id, 'SAME_PHONE', 'The referrer and the newcomer have used the same phone number');
    return;
  }
  const { referrerPoints, refereePoints } = await rewardAmounts(write, event.orgId, referral.referrerId);
  const qualified = await ctx.tx.referral.update({
    where: { id: referral.id },
    data: {
      status: 'QUALIFIED',
      qualifiedAt: completedAt,
      qualifyingVisitId: payload.visitId,
      qualifyingAmountMinor: BigInt(visit.totalMinor),
      referrerPoints,
      refereePoints,
      expiredAt: null,
    },
  });
  await announce(write, 'referral.qualified', qualified, { occurredAt: completedAt.toISOString(), visitId: payload.visitId });
  await payOutstanding(write, event.orgId, referral.id);
}

/**
 * Points for each side: the configured base (the newcomer's equal to the referrer's unless configured), plus the
 * referrer's partner-level bonus, from the level they held before this referral converted.
 */
async function rewardAmounts(write: Write, orgId: string, referrerId: string) {
  const { rewards } = write.config;
  const [levels, stats] = await Promise.all([partnerLevels(write.tx, orgId, write.config), referrerStats(write.tx, orgId, [referrerId])]);
  const level = levelFor(levels, stats.get(referrerId)!);
  const bonus = level?.referralBonusPercent ?? 0;
  return {
    referrerPoints: Math.floor((rewards.referrerPoints * (100 + bonus)) / 100),
    refereePoints: rewards.refereePoints ?? rewards.referrerPoints,
  };
}

/**
 * Pays each side of a QUALIFIED referral that has not been paid yet and has a points account (members only: a side
 * that is not a member yet is paid when they enrol). Both paid: REWARDED. Each side's credit has its own dedupe key.
 */
export async function payOutstanding(write: Write, orgId: string, referralId: string) {
  const referral = await lockReferral(write.tx, orgId, { id: referralId });
  if (!referral || referral.status !== 'QUALIFIED') return;
  const { lotLifetimeMonths } = pointsConfig(write.platform);
  const visit = await write.tx.visit.findFirstOrThrow({ where: { id: referral.qualifyingVisitId!, orgId }, select: { storeId: true } });
  const { timezone } = await write.tx.store.findUniqueOrThrow({ where: { id: visit.storeId }, select: { timezone: true } });
  const ledger: LedgerWrite = { tx: write.tx, emit: write.emit, actor: ACTOR };
  const sides = [
    { side: 'referrer', customerId: referral.referrerId, points: referral.referrerPoints!, paid: referral.referrerEntryId, reason: 'Referral reward: a friend you referred completed their first visit' },
    { side: 'referee', customerId: referral.refereeId, points: referral.refereePoints!, paid: referral.refereeEntryId, reason: 'Welcome reward for joining through a referral' },
  ] as const;
  const entries: { referrerEntryId?: bigint; refereeEntryId?: bigint } = {};
  for (const { side, customerId, points, paid, reason } of sides) {
    if (paid !== null) continue;
    const account = await ensureAccount(write.tx, orgId, customerId);
    if (!account) continue;
    const dedupeKey = `referral:${referral.id}:${side}`;
    const credited = await credit(ledger, account, 'EARN', points, {
      source: 'REFERRAL',
      sourceRef: referral.id,
      dedupeKey,
      storeId: visit.storeId,
      reason,
      lifetimeMonths: lotLifetimeMonths,
      timezone,
    });
    const entryId =
      credited?.entryId ??
      (await write.tx.pointsEntry.findUniqueOrThrow({ where: { orgId_dedupeKey: { orgId, dedupeKey } }, select: { id: true } })).id;
    entries[side === 'referrer' ? 'referrerEntryId' : 'refereeEntryId'] = entryId;
  }
  if (!entries.referrerEntryId && !entries.refereeEntryId) return;
  const updated = await write.tx.referral.update({ where: { id: referral.id }, data: entries });
  if (updated.referrerEntryId !== null && updated.refereeEntryId !== null) {
    const rewarded = await write.tx.referral.update({ where: { id: referral.id }, data: { status: 'REWARDED', rewardedAt: new Date() } });
    await announce(write, 'referral.rewarded', rewarded, { referrerPoints: rewarded.referrerPoints, refereePoints: rewarded.refereePoints });
  }
}

/** membership.enrolled: a side of a qualified referral who was not a member yet is paid now. */
export async function payOnEnrolment(event: DomainEvent, ctx: HandlerContext<ReferralsConfig>) {
  const customerId = event.payload.customerId as string;
  const waiting = await ctx.tx.referral.findMany({
    where: { orgId: event.orgId, status: 'QUALIFIED', OR: [{ referrerId: customerId }, { refereeId: customerId }] },
    select: { id: true },
    orderBy: { qualifiedAt: 'asc' },
  });
  for (const { id } of waiting) await payOutstanding(writer(ctx), event.orgId, id);
}

// --- Rejecting and expiring ----------------------------------------------------------------------------------------

/**
 * REJECTED, from any state but REJECTED. Points already paid are taken back from the reward's own lot first, as far
 * as the member still has them (a partial reversal says so in its reason). Returns false when already rejected.
 */
export async function reject(write: Write, orgId: string, referralId: string, code: RejectionCode, reason: string): Promise<boolean> {
  const referral = await lockReferral(write.tx, orgId, { id: referralId });
  if (!referral || referral.status === 'REJECTED') return false;
  const ledger: LedgerWrite = { tx: write.tx, emit: write.emit, actor: write.actor };
  const reversed: Record<string, number> = {};
  for (const [side, customerId, entryId] of [
    ['referrer', referral.referrerId, referral.referrerEntryId],
    ['referee', referral.refereeId, referral.refereeEntryId],
  ] as const) {
    if (entryId === null) continue;
    reversed[side] = await takeBack(ledger, orgId, referral.id, side, customerId, entryId);
  }
  const rejected = await write.tx.referral.update({
    where: { id: referral.id },
    data: { status: 'REJECTED', rejectedAt: new Date(), rejectionCode: code, rejectionReason: reason },
  });
  await announce(write, 'referral.rejected', rejected, { rejectionCode: code, pointsReversed: reversed, previousStatus: referral.status });
  return true;
}

async function takeBack(ledger: LedgerWrite, orgId: string, referralId: string, side: string, customerId: string, entryId: bigint): Promise<number> {
  const earned = await ledger.tx.pointsEntry.findUniqueOrThrow({ where: { id: entryId }, select: { amount: true } });
  const lot = await ledger.tx.pointsLot.findUnique({ where: { earnEntryId: entryId }, select: { id: true } });
  const account = (await ensureAccount(ledger.tx, orgId, customerId))!;
  const reverse = (amount: number, reason: string) =>
    debit(ledger, account, 'REVERSAL', amount, {
      source: 'REFERRAL',
      sourceRef: referralId,
      dedupeKey: `referral:${referralId}:${side}:reversal`,
      reason,
      reversesEntryId: entryId,
      preferLotId: lot?.id ?? null,
    }, 'points.reversed');
  try {
    return (await reverse(earned.amount, 'Referral rejected')) ? earned.amount : 0;
  } catch (error) {
    const shortfall = isDomainError(error, 'INSUFFICIENT_POINTS');
    if (!shortfall) throw error;
    const available = shortfall.available as number;
    if (available <= 0) return 0;
    await reverse(available, `Referral rejected; ${earned.amount - available} points had already been spent`);
    return available;
  }
}

/** visit.refunded: a refunded qualifying visit was no conversion. The referral is rejected and its rewards reversed. */
export async function rejectOnRefund(event: DomainEvent, ctx: HandlerContext<ReferralsConfig>) {
  const visitId = event.payload.visitId as string;
  const referral = await ctx.tx.referral.findFirst({
    where: { orgId: event.orgId, qualifyingVisitId: visitId, status: { in: ['QUALIFIED', 'REWARDED'] } },
    select: { id: true },
  });
  if (referral) await reject(writer(ctx), event.orgId, referral.id, 'QUALIFYING_VISIT_REFUNDED', 'The qualifying visit was refunded');
}

/** PENDING referrals past their deadline become EXPIRED, in batches, each with its event. Returns how many. */
export async function expireDue(write: Write, orgId: string, now = new Date(), limit = 500): Promise<number> {
  const due = await write.tx.$queryRaw<{ id: string }[]>`
    SELECT id FROM referral WHERE org_id = ${orgId}::uuid AND status = 'PENDING' AND qualify_by <= ${now}
    ORDER BY qualify_by LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
  for (const { id } of due) {
    const expired = await write.tx.referral.update({ where: { id }, data: { status: 'EXPIRED', expiredAt: now } });
    await announce(write, 'referral.expired', expired, { qualifyBy: expired.qualifyBy.toISOString() });
  }
  return due.length;
}

export function writer(ctx: Pick<HandlerContext<ReferralsConfig>, 'tx' | 'emit' | 'config' | 'platform'>, actor = ACTOR): Write {
  return { tx: ctx.tx, emit: ctx.emit, actor, config: ctx.config, platform: ctx.platform };
}
