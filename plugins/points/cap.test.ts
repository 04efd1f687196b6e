/**
 * The monthly redemption cap (default configuration: redeemed points, at 10 fen each, may not exceed 50% of the
 * member's spend in the same calendar month of the organization's time zone, Asia/Shanghai).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  balanceOf,
  call,
  CANCEL,
  createReward,
  expectLedgerConsistent,
  expectRejected,
  givePoints,
  key,
  newMember,
  redeem,
  REDEEM,
  redeemInput,
  startPointsWorld,
  type PointsWorld,
} from './testing.ts';

let world: PointsWorld;
beforeAll(async () => {
  world = await startPointsWorld();
});
afterAll(() => world?.api.close());
afterEach(() => expectLedgerConsistent(world.api.owner));

const HOUR_MS = 3_600_000;

/** The first instant of the current calendar month in Asia/Shanghai (UTC+8, no DST). */
function shanghaiMonthStart(now = new Date()): Date {
  const local = new Date(now.getTime() + 8 * HOUR_MS);
  return new Date(Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), 1) - 8 * HOUR_MS);
}

async function visit(customerId: string, totalMinor: number, completedAt: Date, status: 'COMPLETED' | 'REFUNDED' = 'COMPLETED') {
  await world.api.owner.visit.create({
    data: {
      orgId: world.chainId,
      storeId: world.stores.SH,
      customerId,
      status,
      scheduledStart: new Date(completedAt.getTime() - HOUR_MS),
      scheduledEnd: completedAt,
      checkedInAt: new Date(completedAt.getTime() - HOUR_MS),
      completedAt,
      refundedAt: status === 'REFUNDED' ? completedAt : null,
      totalMinor,
    },
  });
}

/** A member with plenty of points whose spend this month is exactly `spendMinor` (plus spend that must not count). */
async function memberSpending(spendMinor: number) {
  const { customerId } = await newMember(world);
  await givePoints(world, customerId, 100_000);
  const monthStart = shanghaiMonthStart();
  const now = Date.now();
  // This month: one visit just after the month began (local time), one just now.
  await visit(customerId, spendMinor - 30_000, new Date(Math.min(monthStart.getTime() + 60_000, now - 120_000)));
  await visit(customerId, 30_000, new Date(now - 60_000));
  // Not this month's spend: a visit a minute before the month began, and a refunded visit.
  await visit(customerId, 500_000, new Date(monthStart.getTime() - 60_000));
  await visit(customerId, 500_000, new Date(now - 60_000), 'REFUNDED');
  return customerId;
}

describe('monthly redemption cap', () => {
  test("redeeming above 50% of the month's spend is refused with the points still redeemable, and changes nothing", async () => {
    // Spend ¥1,048.00 → cap ¥524.00 → 5,240 points at ¥0.10.
    const customerId = await memberSpending(104_800);
    const big = await createReward(world, { pointsPrice: 1000 });
    const small = await createReward(world, { pointsPrice: 60 });
    const one = await createReward(world, { pointsPrice: 1 });

    expect((await redeem(world.api, { rewardId: big, customerId, quantity: 5 })).userErrors).toEqual([]);
    // 240 left: 5 × 60 = 300 is too much.
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId: small, customerId, quantity: 5 }), 'OWNER', {
      __typename: 'RedemptionCapExceededError',
      code: 'MONTHLY_CAP_EXCEEDED',
      remainingPoints: 240,
    });
    const fits = await redeem(world.api, { rewardId: small, customerId, quantity: 4 });
    expect(fits.userErrors).toEqual([]);
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId: one, customerId }), 'OWNER', {
      __typename: 'RedemptionCapExceededError',
      remainingPoints: 0,
    });
    expect(await balanceOf(world.api.owner, customerId)).toBe(100_000 - 5240);

    // Cancelling a redemption gives its room under the cap back.
    const cancelled = await call(world.api, CANCEL, { input: { redemptionId: fits.redemption.id, reason: 'mistake', idempotencyKey: key('cancel') } });
    expect(cancelled.userErrors).toEqual([]);
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId: small, customerId, quantity: 5 }), 'OWNER', {
      __typename: 'RedemptionCapExceededError',
      remainingPoints: 240,
    });
    expect((await redeem(world.api, { rewardId: small, customerId, quantity: 4 }, 'FRONT_DESK')).userErrors).toEqual([]);
    expect(await balanceOf(world.api.owner, customerId)).toBe(100_000 - 5240);
  });

  test('no spend this month: nothing may be redeemed', async () => {
    const { customerId } = await newMember(world);
    await givePoints(world, customerId, 500);
    await visit(customerId, 900_000, new Date(shanghaiMonthStart().getTime() - 60_000));
    const rewardId = await createReward(world, { pointsPrice: 1 });
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId }), 'OWNER', {
      __typename: 'RedemptionCapExceededError',
      remainingPoints: 0,
    });
  });

  test("last month's redemptions do not count against this month's cap", async () => {
    const customerId = await memberSpending(40_000); // cap: 2,000 points
    const rewardId = await createReward(world, { pointsPrice: 500 });
    const earlier = await redeem(world.api, { rewardId, customerId, quantity: 4 });
    expect(earlier.userErrors).toEqual([]);
    // Move it to the last minute of the previous month (local time).
    await world.api.owner.pointsRedemption.updateMany({
      where: { customerId },
      data: { createdAt: new Date(shanghaiMonthStart().getTime() - 60_000) },
    });
    expect((await redeem(world.api, { rewardId, customerId, quantity: 4 })).userErrors).toEqual([]);
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId }), 'OWNER', {
      __typename: 'RedemptionCapExceededError',
      remainingPoints: 0,
    });
  });

  test('concurrent redemptions of different rewards cannot together pass the cap', async () => {
    const customerId = await memberSpending(40_000); // cap: 2,000 points
    const rewards = await Promise.all(Array.from({ length: 12 }, () => createReward(world, { pointsPrice: 400 })));
    const results = await Promise.all(rewards.map((rewardId) => redeem(world.api, { rewardId, customerId }, 'FRONT_DESK')));
    const ok = results.filter((r) => r.userErrors.length === 0);
    expect(ok).toHaveLength(5);
    for (const r of results.filter((x) => x.userErrors.length > 0)) {
      expect(r.userErrors[0]).toMatchObject({ __typename: 'RedemptionCapExceededError', remainingPoints: 0 });
    }
    expect(await balanceOf(world.api.owner, customerId)).toBe(100_000 - 2000);
  });
});
