/**
 * Lots and expiry: when a lot expires (12 months in the store's local calendar, at month ends, on 29 February
 * and around local midnight in Shanghai and Urumqi), FIFO spending across lots with partial redemptions and
 * cancellations, the scheduled expiry job, and `expiringSoon`.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { runHandler } from '../../core/events/worker.ts';
import type { EventHandler } from '../../core/plugin/contract.ts';
import { expireAccount } from './ledger.ts';
import pointsPlugin from './plugin.ts';
import {
  accountOf,
  balanceOf,
  call,
  CANCEL,
  createReward,
  DAY_MS,
  entriesOf,
  discardQueuedJobs,
  expectLedgerConsistent,
  gid,
  givePoints,
  key,
  ledgerWork,
  lotsOf,
  newMember,
  recordDomainEvent,
  redeem,
  startPointsWorld,
  type PointsWorld,
} from './testing.ts';

let world: PointsWorld;
beforeAll(async () => {
  world = await startPointsWorld({ monthlyRedemptionCap: null });
});
afterAll(() => world?.api.close());
afterEach(async () => {
  await expectLedgerConsistent(world.api.owner);
  // These tests deliver events themselves; the jobs the outbox queued for them must not run in a later test.
  await discardQueuedJobs(world.api);
});

const platform = () => world.api.running.platform;

/** Awards a visit completed at `completedAt` at `storeId` through the visit.completed handler; returns its lot. */
async function earnAt(customerId: string, storeId: string, completedAt: string, amountMinor = 10_000) {
  const visitId = randomUUID();
  const event = await recordDomainEvent(world, {
    type: 'visit.completed',
    aggregateType: 'Visit',
    aggregateId: visitId,
    payload: { visitId, customerId, storeId, completedAt, currency: 'CNY', totalMinor: amountMinor, lines: [{ kind: 'SERVICE', category: 'FACIAL', amountMinor }] },
  });
  expect(await runHandler(platform(), 'points', world.config, pointsPlugin.handlers!['visit.completed'] as EventHandler<unknown>, event)).toBe(true);
  const entry = await world.api.owner.pointsEntry.findFirstOrThrow({ where: { dedupeKey: `visit:${visitId}:earn` } });
  return world.api.owner.pointsLot.findUniqueOrThrow({ where: { earnEntryId: entry.id } });
}

/** Runs the scheduled job as the worker would; fails instead of hanging if it never finishes. */
async function runExpiryJob() {
  const job = pointsPlugin.jobs!['expire-lots']!;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('the expire-lots job did not finish within 15 s')), 15_000);
  });
  try {
    await Promise.race([job.run({ config: world.config, platform: platform() }, {}), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('when a lot expires: 12 months later in the store’s local calendar', () => {
  test('29 February 23:30 in Shanghai expires on 28 February 23:30 the next year', async () => {
    const { customerId } = await newMember(world);
    const lot = await earnAt(customerId, world.stores.SH, '2024-02-29T15:30:00.000Z'); // 2024-02-29T23:30+08:00
    expect(lot.earnedAt.toISOString()).toBe('2024-02-29T15:30:00.000Z');
    expect(lot.expiresAt.toISOString()).toBe('2025-02-28T15:30:00.000Z'); // 2025-02-28T23:30+08:00
    expect(lot).toMatchObject({ original: 100, remaining: 100 });
  });

  test('Urumqi (UTC+6), either side of local midnight at the end of February', async () => {
    const { customerId } = await newMember(world, { storeId: world.stores.UR });
    // 00:30 on 29 Feb 2024 in Urumqi (still the 28th in UTC): the local date is the 29th, so 28 Feb 2025 00:30 local.
    const justAfter = await earnAt(customerId, world.stores.UR, '2024-02-28T18:30:00.000Z');
    expect(justAfter.expiresAt.toISOString()).toBe('2025-02-27T18:30:00.000Z');
    // 23:30 on 28 Feb 2024 in Urumqi (already the 29th in Shanghai): the local date is the 28th, so 28 Feb 2025 23:30 local.
    const justBefore = await earnAt(customerId, world.stores.UR, '2024-02-28T17:30:00.000Z');
    expect(justBefore.expiresAt.toISOString()).toBe('2025-02-28T17:30:00.000Z');
    // Midnight exactly on the first of a month (local): the first of the same month a year on.
    const midnight = await earnAt(customerId, world.stores.UR, '2025-02-28T18:00:00.000Z'); // 2025-03-01T00:00+06:00
    expect(midnight.expiresAt.toISOString()).toBe('2026-02-28T18:00:00.000Z'); // 2026-03-01T00:00+06:00
  });

  test('at the end of a month: 31 January with a one-month lifetime is the end of February, local time', async () => {
    const { customerId } = await newMember(world);
    const lot = await givePoints(world, customerId, 10, { earnedAt: new Date('2026-01-31T15:30:00.000Z'), lifetimeMonths: 1, timezone: 'Asia/Shanghai' });
    expect(lot.expiresAt.toISOString()).toBe('2026-02-28T15:30:00.000Z'); // 2026-01-31T23:30+08:00 → 2026-02-28T23:30+08:00
    const urumqi = await givePoints(world, customerId, 10, { earnedAt: new Date('2026-01-31T17:30:00.000Z'), lifetimeMonths: 1, timezone: 'Asia/Urumqi' });
    expect(urumqi.expiresAt.toISOString()).toBe('2026-02-28T17:30:00.000Z'); // 23:30 on 31 Jan in Urumqi → 23:30 on 28 Feb
    // Earned at 00:30 on 31 Jan in Shanghai (still the 30th in UTC): expires 28 Feb 00:30 Shanghai — a day earlier
    // than counting in UTC would (30 Jan → 28 Feb 16:30Z).
    const shanghai = await givePoints(world, customerId, 10, { earnedAt: new Date('2026-01-30T16:30:00.000Z'), lifetimeMonths: 1, timezone: 'Asia/Shanghai' });
    expect(shanghai.expiresAt.toISOString()).toBe('2026-02-27T16:30:00.000Z');
  });

  test('welcome points expire in the member’s home store calendar', async () => {
    const { customerId, membershipId } = await newMember(world, { storeId: world.stores.UR });
    const event = await recordDomainEvent(world, {
      type: 'membership.enrolled',
      aggregateType: 'Membership',
      aggregateId: membershipId,
      payload: { membershipId, customerId, homeStoreId: world.stores.UR, memberNumber: 'T1' },
    });
    await runHandler(platform(), 'points', world.config, pointsPlugin.handlers!['membership.enrolled'] as EventHandler<unknown>, event);
    const [lot] = await lotsOf(world.api.owner, customerId);
    const local = (at: Date) => new Intl.DateTimeFormat('sv-SE', { timeZone: 'Asia/Urumqi', dateStyle: 'short', timeStyle: 'medium' }).format(at);
    const earned = local(lot!.earnedAt);
    const expires = local(lot!.expiresAt);
    // Same wall-clock time; one year later (the day clamped to the month's end when earned on 29 February).
    expect(expires.slice(10)).toBe(earned.slice(10));
    expect(Number(expires.slice(0, 4))).toBe(Number(earned.slice(0, 4)) + 1);
    expect(expires.slice(5, 7)).toBe(earned.slice(5, 7));
  });
});

const POINTS = `query($id: ID!, $within: Int) { node(id: $id) { ... on Customer { points {
  balance
  lots { remaining original earnedAt expiresAt }
  expiringSoon(withinDays: $within) { points lots { remaining expiresAt } }
} } } }`;

describe('FIFO spending across lots, partial redemptions, cancellations and expiry', () => {
  test('oldest first, split across lots; cancelling returns points to the same lots; lapsed points expire before anything is spent', async () => {
    const { customerId } = await newMember(world);
    const now = Date.now();
    const lapsed = await givePoints(world, customerId, 100, { earnedAt: new Date(now - 380 * DAY_MS) }); // due already
    const soon = await givePoints(world, customerId, 80, { earnedAt: new Date(now - 350 * DAY_MS) }); // expires in ~2 weeks
    const recent = await givePoints(world, customerId, 50, { earnedAt: new Date(now - 30 * DAY_MS) });
    const rewardId = await createReward(world, { pointsPrice: 10 });
    const remaining = async () => Object.fromEntries((await lotsOf(world.api.owner, customerId)).map((l) => [String(l.id), l.remaining]));
    const lots = (r: Record<string, number>) => [r[String(lapsed.lotId)], r[String(soon.lotId)], r[String(recent.lotId)]];

    const first = await redeem(world.api, { rewardId, customerId, quantity: 3 }, 'FRONT_DESK'); // 30
    expect(first).toMatchObject({ userErrors: [], balance: 230 - 100 - 30 });
    expect(lots(await remaining())).toEqual([0, 50, 50]);
    const second = await redeem(world.api, { rewardId, customerId, quantity: 7 }, 'FRONT_DESK'); // 70: 50 + 20
    expect(second).toMatchObject({ userErrors: [], balance: 30 });
    expect(lots(await remaining())).toEqual([0, 0, 30]);
    const secondDebit = (await entriesOf(world.api.owner, customerId)).filter((e) => e.kind === 'REDEEM').at(-1)!;
    const split = await world.api.owner.pointsAllocation.findMany({ where: { debitEntryId: secondDebit.id }, orderBy: { lotId: 'asc' } });
    expect(split.map((a) => [a.lotId, a.amount])).toEqual([
      [soon.lotId, 50],
      [recent.lotId, 20],
    ]);

    // Cancel the first: its 30 go back to the lot they came from (which expires soon), not to the newest.
    const cancelled = await call(world.api, CANCEL, { input: { redemptionId: first.redemption.id, reason: 'wrong reward', idempotencyKey: key('cancel') } }, 'FRONT_DESK');
    expect(cancelled).toMatchObject({ userErrors: [], balance: 60 });
    expect(lots(await remaining())).toEqual([0, 30, 30]);

    // What goes when: 30 points within 30 days (the restored lot); everything within 60 days is the same lot only.
    const view = await call(world.api, POINTS, { id: gid('Customer', customerId), within: 30 });
    expect(view.points.balance).toBe(60);
    expect(view.points.lots.map((l: any) => [l.remaining, l.expiresAt])).toEqual([
      [30, soon.expiresAt.toISOString()],
      [30, recent.expiresAt.toISOString()],
    ]);
    expect(view.points.expiringSoon).toEqual({ points: 30, lots: [{ remaining: 30, expiresAt: soon.expiresAt.toISOString() }] });
    const wider = await call(world.api, POINTS, { id: gid('Customer', customerId), within: 400 });
    expect(wider.points.expiringSoon.points).toBe(60);

    const kinds = (await entriesOf(world.api.owner, customerId)).map((e) => [e.kind, e.amount]);
    expect(kinds).toEqual([
      ['EARN', 100],
      ['EARN', 80],
      ['EARN', 50],
      ['EXPIRE', -100],
      ['REDEEM', -30],
      ['REDEEM', -70],
      ['REVERSAL', 30],
    ]);

    // Later, once the soon lot is due: only it expires, once.
    const account = await accountOf(world, customerId);
    const after = new Date(soon.expiresAt.getTime() + 1000);
    expect(await ledgerWork(world, world.chainId, (write) => expireAccount(write, account, after))).toBe(30);
    expect(await ledgerWork(world, world.chainId, (write) => expireAccount(write, account, after))).toBe(0);
    expect(lots(await remaining())).toEqual([0, 0, 30]);
    expect(await balanceOf(world.api.owner, customerId)).toBe(30);
  });

  test('a redemption cancelled after its lot expired: the returned points expire too and cannot be spent', async () => {
    const { customerId } = await newMember(world);
    const lot = await givePoints(world, customerId, 100, { earnedAt: new Date(Date.now() - 300 * DAY_MS) });
    const rewardId = await createReward(world, { pointsPrice: 40 });
    const redeemed = await redeem(world.api, { rewardId, customerId }, 'FRONT_DESK');
    expect(redeemed.balance).toBe(60);
    // Time passes: the lot is due; the job expires its 60.
    await world.api.owner.pointsLot.update({ where: { id: lot.lotId }, data: { expiresAt: new Date(Date.now() - DAY_MS) } });
    await runExpiryJob();
    expect(await balanceOf(world.api.owner, customerId)).toBe(0);
    // Now the redemption is cancelled: its 40 go back to their lot, which has lapsed.
    const cancelled = await call(world.api, CANCEL, { input: { redemptionId: redeemed.redemption.id, reason: 'late cancel', idempotencyKey: key('cancel') } }, 'FRONT_DESK');
    expect(cancelled).toMatchObject({ userErrors: [], balance: 40 });
    // Lapsed points cannot be spent…
    const spend = await redeem(world.api, { rewardId, customerId }, 'FRONT_DESK');
    expect(spend.userErrors[0]).toMatchObject({ __typename: 'InsufficientPointsError', available: 0, requested: 40 });
    // …and the job expires them, and finishes.
    await runExpiryJob();
    expect(await balanceOf(world.api.owner, customerId)).toBe(0);
    const expiries = (await entriesOf(world.api.owner, customerId)).filter((e) => e.kind === 'EXPIRE');
    expect(expiries.map((e) => [e.amount, e.sourceRef])).toEqual([
      [-60, `lot:${lot.lotId}`],
      [-40, `lot:${lot.lotId}`],
    ]);
    await runExpiryJob();
    expect((await entriesOf(world.api.owner, customerId)).filter((e) => e.kind === 'EXPIRE')).toHaveLength(2);
  });
});

describe('the scheduled expiry job', () => {
  test('expires only due lots, each once however often it runs, and announces each expiry', async () => {
    const now = Date.now();
    const a = await newMember(world);
    const b = await newMember(world, { storeId: world.stores.UR });
    const a1 = await givePoints(world, a.customerId, 25);
    const a2 = await givePoints(world, a.customerId, 40);
    const a3 = await givePoints(world, a.customerId, 15);
    const b0 = await givePoints(world, b.customerId, 5);
    const b1 = await givePoints(world, b.customerId, 9, { timezone: 'Asia/Urumqi' });
    const b2 = await givePoints(world, b.customerId, 11, { timezone: 'Asia/Urumqi' });
    // Spent while they were live: 55 of a's (all of a1, 30 of a2) and all of b0.
    const rewardId = await createReward(world, { pointsPrice: 5 });
    expect((await redeem(world.api, { rewardId, customerId: a.customerId, quantity: 11 })).userErrors).toEqual([]);
    expect((await redeem(world.api, { rewardId, customerId: b.customerId, quantity: 1 })).userErrors).toEqual([]);
    // Time passes: a1, a2, b0 and b1 are now due; a3 and b2 are not.
    const expiresAt = new Map([
      [a1.lotId, now - 5 * DAY_MS],
      [a2.lotId, now - 3 * DAY_MS],
      [a3.lotId, now + 200 * DAY_MS],
      [b0.lotId, now - 4 * DAY_MS],
      [b1.lotId, now - 60_000],
      [b2.lotId, now + DAY_MS],
    ]);
    for (const [id, at] of expiresAt) await world.api.owner.pointsLot.update({ where: { id }, data: { expiresAt: new Date(at) } });

    const eventsBefore = await world.api.owner.domainEvent.count({ where: { type: 'points.expired' } });
    await Promise.all([runExpiryJob(), runExpiryJob()]);
    await runExpiryJob();

    // One EXPIRE per lot that still had points when it lapsed; spent lots and live lots are left alone.
    const expiries = await world.api.owner.pointsEntry.findMany({ where: { kind: 'EXPIRE', customerId: { in: [a.customerId, b.customerId] } }, orderBy: { id: 'asc' } });
    expect(expiries.map((e) => [e.customerId, e.amount, e.sourceRef]).sort()).toEqual(
      [
        [a.customerId, -10, `lot:${a2.lotId}`],
        [b.customerId, -9, `lot:${b1.lotId}`],
      ].sort(),
    );
    expect(expiries.every((e) => e.actor === 'plugin:points' && e.source === 'EXPIRY')).toBe(true);
    expect(await balanceOf(world.api.owner, a.customerId)).toBe(15);
    expect(await balanceOf(world.api.owner, b.customerId)).toBe(11);
    expect((await lotsOf(world.api.owner, b.customerId)).map((l) => [l.id, l.remaining])).toEqual([
      [b0.lotId, 0],
      [b1.lotId, 0],
      [b2.lotId, 11],
    ]);

    const events = await world.api.owner.domainEvent.findMany({ where: { type: 'points.expired' }, orderBy: { id: 'asc' }, skip: eventsBefore });
    const ours = events.filter((e) => [a.customerId, b.customerId].includes((e.payload as { customerId: string }).customerId));
    expect(ours.map((e) => (e.payload as Record<string, unknown>).lotId).sort()).toEqual([String(a2.lotId), String(b1.lotId)].sort());
    const forA = ours.find((e) => (e.payload as Record<string, unknown>).customerId === a.customerId)!;
    expect(forA).toMatchObject({ aggregateType: 'PointsAccount', aggregateId: a.membershipId, streamKey: a.customerId, actor: 'plugin:points' });
    expect(forA.payload).toMatchObject({ delta: -10, balance: 15, membershipId: a.membershipId, expiresAt: new Date(now - 3 * DAY_MS).toISOString() });
    // Nothing due is left anywhere.
    expect(await world.api.owner.pointsLot.count({ where: { remaining: { gt: 0 }, expiresAt: { lte: new Date() } } })).toBe(0);
  });
});

describe('expiringSoon', () => {
  test('lists what goes when, soonest first, within the window (30 days by default)', async () => {
    const { customerId } = await newMember(world);
    const now = Date.now();
    const days = (n: number) => new Date(now + n * DAY_MS);
    // Lots with chosen expiries: 3 days, 20 days, 29 days, 45 days; and one lapsed but not yet processed.
    const made = [];
    for (const [amount, expires] of [[7, days(20)], [3, days(3)], [11, days(29)], [13, days(45)], [17, days(-1)]] as const) {
      const lot = await givePoints(world, customerId, amount);
      await world.api.owner.pointsLot.update({ where: { id: lot.lotId }, data: { expiresAt: expires } });
      made.push(lot);
    }
    const q = `query($id: ID!) { node(id: $id) { ... on Customer { points {
      soon: expiringSoon { points lots { remaining expiresAt } }
      week: expiringSoon(withinDays: 7) { points lots { remaining } }
      later: expiringSoon(withinDays: 60) { points }
    } } } }`;
    const { points } = await call(world.api, q, { id: gid('Customer', customerId) });
    expect(points.soon).toEqual({
      points: 3 + 7 + 11,
      lots: [
        { remaining: 3, expiresAt: days(3).toISOString() },
        { remaining: 7, expiresAt: days(20).toISOString() },
        { remaining: 11, expiresAt: days(29).toISOString() },
      ],
    });
    expect(points.week).toEqual({ points: 3, lots: [{ remaining: 3 }] });
    expect(points.later).toEqual({ points: 3 + 7 + 11 + 13 });
    // The customer sees the same about themself.
    const me = world.api.principals.CUSTOMER as { customerId: string };
    const own = await givePoints(world, me.customerId, 5);
    await world.api.owner.pointsLot.update({ where: { id: own.lotId }, data: { expiresAt: days(10) } });
    const mine = await call(world.api, q, { id: gid('Customer', me.customerId) }, 'CUSTOMER');
    expect(mine).toEqual(await call(world.api, q, { id: gid('Customer', me.customerId) }, 'OWNER'));
    expect(mine.points.soon).toEqual({ points: 5, lots: [{ remaining: 5, expiresAt: days(10).toISOString() }] });
  });
});
