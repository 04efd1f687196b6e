/**
 * Redeeming rewards through the API: real concurrency, retries with idempotency keys, the typed errors (each
 * changing nothing), who may redeem for whom, and cancellation. The monthly cap is off here (see cap.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import {
  balanceOf,
  call,
  CANCEL,
  createReward,
  entriesOf,
  expectLedgerConsistent,
  expectRejected,
  gid,
  givePoints,
  key,
  lotsOf,
  newCustomer,
  newMember,
  redeem,
  REDEEM,
  redeemInput,
  staffAt,
  startPointsWorld,
  uuidOf,
  DAY_MS,
  type PointsWorld,
} from './testing.ts';

let world: PointsWorld;
beforeAll(async () => {
  world = await startPointsWorld({ monthlyRedemptionCap: null });
});
afterAll(() => world?.api.close());
afterEach(() => expectLedgerConsistent(world.api.owner));

async function memberWith(points: number, storeId?: string) {
  const member = await newMember(world, { storeId });
  if (points > 0) await givePoints(world, member.customerId, points);
  return member.customerId;
}

describe('concurrency', () => {
  test('200 concurrent redemptions of 1 point against a balance of 100: exactly 100 succeed, the balance ends at 0 and is never negative', async () => {
    const customerId = await memberWith(100);
    const rewardId = await createReward(world, { pointsPrice: 1 });
    // Tokens first, so the requests leave together.
    const token = await world.api.token('POS_CLIENT');
    const send = (idempotencyKey: string) =>
      fetch(world.api.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: REDEEM, variables: { input: redeemInput({ rewardId, customerId, key: idempotencyKey }) } }),
      }).then((r) => r.json() as Promise<{ data?: any; errors?: unknown }>);

    // Watch the balance from outside while the requests run.
    const seen: number[] = [];
    let running = true;
    const watcher = (async () => {
      while (running) {
        seen.push((await balanceOf(world.api.owner, customerId))!);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const keys = Array.from({ length: 200 }, (_, i) => `concurrent-${i}-${randomUUID()}`);
    const responses = await Promise.all(keys.map(send));
    // On a loaded machine some requests may not get a database connection within the platform's wait: they answer
    // SERVICE_UNAVAILABLE before any transaction began. A POS retries those with the same key, as here.
    const transient = (r: { errors?: unknown }) => JSON.stringify(r.errors ?? '').includes('SERVICE_UNAVAILABLE');
    for (let round = 0; round < 20 && responses.some(transient); round++) {
      const again = responses.flatMap((r, i) => (transient(r) ? [i] : []));
      const retried = await Promise.all(again.map((i) => send(keys[i]!)));
      again.forEach((i, n) => (responses[i] = retried[n]!));
    }
    running = false;
    await watcher;

    expect(responses.filter((r) => r.errors)).toEqual([]);
    const payloads = responses.map((r) => r.data.redeemReward);
    const succeeded = payloads.filter((p) => p.userErrors.length === 0);
    const failed = payloads.filter((p) => p.userErrors.length > 0);
    expect(succeeded).toHaveLength(100);
    expect(failed).toHaveLength(100);
    for (const p of failed) {
      expect(p.userErrors).toEqual([expect.objectContaining({ __typename: 'InsufficientPointsError', code: 'INSUFFICIENT_POINTS', available: 0, requested: 1 })]);
      expect(p.redemption).toBeNull();
    }
    // Each success saw a distinct balance after it: 99, 98, …, 0.
    expect(succeeded.map((p) => p.balance).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(new Set(succeeded.map((p) => p.redemption.id)).size).toBe(100);

    expect(await balanceOf(world.api.owner, customerId)).toBe(0);
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(0);
    expect(await world.api.owner.pointsRedemption.count({ where: { customerId } })).toBe(100);
    const entries = await entriesOf(world.api.owner, customerId);
    expect(entries.filter((e) => e.kind === 'REDEEM')).toHaveLength(100);
    expect(entries.filter((e) => e.kind === 'REDEEM').every((e) => e.amount === -1 && e.actor.startsWith('api_client:'))).toBe(true);
  });
});

describe('retries with an idempotency key', () => {
  test('each redemption sent 3 times with one key, two of them at once: one effect each, and the same answer every time', async () => {
    const customerId = await memberWith(1000);
    const rewardId = await createReward(world, { pointsPrice: 7, stock: 50 });
    const keys = Array.from({ length: 8 }, (_, i) => `retry-${i}-${randomUUID()}`);
    const send = (k: string, i: number) => redeem(world.api, { rewardId, customerId, quantity: (i % 3) + 1, key: k }, 'FRONT_DESK');
    // The first two of each key race (one is in flight while the other arrives); the third comes after.
    const racing = await Promise.all(keys.flatMap((k, i) => [send(k, i), send(k, i)]));
    const late = await Promise.all(keys.map((k, i) => send(k, i)));

    let points = 0;
    for (const [i, k] of keys.entries()) {
      const answers = [racing[2 * i]!, racing[2 * i + 1]!, late[i]!];
      expect(answers.map((a) => a.userErrors)).toEqual([[], [], []]);
      expect(answers.filter((a) => a.replayed === false)).toHaveLength(1);
      expect(answers.filter((a) => a.replayed === true)).toHaveLength(2);
      const withoutReplayed = answers.map(({ replayed: _replayed, ...rest }) => rest);
      expect(withoutReplayed[1]).toEqual(withoutReplayed[0]);
      expect(withoutReplayed[2]).toEqual(withoutReplayed[0]);
      expect(answers[0]!.redemption.quantity).toBe((i % 3) + 1);
      points += 7 * ((i % 3) + 1);
      void k;
    }
    expect(await world.api.owner.pointsRedemption.count({ where: { customerId } })).toBe(keys.length);
    expect((await entriesOf(world.api.owner, customerId)).filter((e) => e.kind === 'REDEEM')).toHaveLength(keys.length);
    expect(await balanceOf(world.api.owner, customerId)).toBe(1000 - points);
    const quantities = keys.reduce((sum, _k, i) => sum + (i % 3) + 1, 0);
    expect((await world.api.owner.pointsReward.findUniqueOrThrow({ where: { id: rewardId } })).stock).toBe(50 - quantities);
  });

  test('the same key with a different quantity is IDEMPOTENCY_KEY_REUSED and changes nothing', async () => {
    const customerId = await memberWith(100);
    const rewardId = await createReward(world, { pointsPrice: 10 });
    const k = key('reuse');
    const first = await redeem(world.api, { rewardId, customerId, quantity: 1, key: k }, 'FRONT_DESK');
    expect(first.userErrors).toEqual([]);
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId, quantity: 2, key: k }), 'FRONT_DESK', {
      __typename: 'ConflictError',
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
    // … and for another customer or another reward under the same key.
    const other = await memberWith(100);
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId: other, quantity: 1, key: k }), 'FRONT_DESK', {
      __typename: 'ConflictError',
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
    expect(await balanceOf(world.api.owner, customerId)).toBe(90);
  });

  test('a retry after a failure is a fresh attempt: the failure kept nothing', async () => {
    const customerId = await memberWith(5);
    const rewardId = await createReward(world, { pointsPrice: 10 });
    const k = key('after-failure');
    const failed = await redeem(world.api, { rewardId, customerId, key: k }, 'FRONT_DESK');
    expect(failed.userErrors[0]).toMatchObject({ __typename: 'InsufficientPointsError', available: 5, requested: 10 });
    await givePoints(world, customerId, 5);
    const retried = await redeem(world.api, { rewardId, customerId, key: k }, 'FRONT_DESK');
    expect(retried).toMatchObject({ userErrors: [], balance: 0, replayed: false });
  });
});

describe('typed errors change nothing', () => {
  test('insufficient points', async () => {
    const customerId = await memberWith(29);
    const rewardId = await createReward(world, { pointsPrice: 10 });
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId, quantity: 3 }), 'OWNER', {
      __typename: 'InsufficientPointsError',
      code: 'INSUFFICIENT_POINTS',
      available: 29,
      requested: 30,
    });
  });

  test('out of stock', async () => {
    const customerId = await memberWith(100);
    const rewardId = await createReward(world, { pointsPrice: 1, stock: 2 });
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId, quantity: 3 }), 'OWNER', {
      __typename: 'OutOfStockError',
      code: 'OUT_OF_STOCK',
      available: 2,
    });
    expect((await redeem(world.api, { rewardId, customerId, quantity: 2 })).userErrors).toEqual([]);
    expect((await world.api.owner.pointsReward.findUniqueOrThrow({ where: { id: rewardId } })).stock).toBe(0);
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId }), 'OWNER', { __typename: 'OutOfStockError', available: 0 });
  });

  test('per-customer limit of a reward', async () => {
    const customerId = await memberWith(100);
    const rewardId = await createReward(world, { pointsPrice: 5, perCustomerLimit: 3 });
    expect((await redeem(world.api, { rewardId, customerId, quantity: 2 })).userErrors).toEqual([]);
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId, quantity: 2 }), 'OWNER', {
      __typename: 'RewardNotAvailableError',
      code: 'PER_CUSTOMER_LIMIT',
    });
    expect((await redeem(world.api, { rewardId, customerId, quantity: 1 })).userErrors).toEqual([]);
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId }), 'OWNER', { code: 'PER_CUSTOMER_LIMIT', __typename: 'RewardNotAvailableError' });
    // The limit is per customer: another member may still redeem it.
    const other = await memberWith(100);
    expect((await redeem(world.api, { rewardId, customerId: other, quantity: 3 })).userErrors).toEqual([]);
  });

  test('inactive and out-of-window rewards are not available', async () => {
    const customerId = await memberWith(100);
    const now = Date.now();
    const cases = [
      { reward: await createReward(world, { active: false }), code: 'REWARD_INACTIVE' },
      { reward: await createReward(world, { validFrom: new Date(now + DAY_MS) }), code: 'REWARD_OUT_OF_WINDOW' },
      { reward: await createReward(world, { validFrom: new Date(now - 2 * DAY_MS), validUntil: new Date(now - DAY_MS) }), code: 'REWARD_OUT_OF_WINDOW' },
    ];
    for (const { reward, code } of cases) {
      await expectRejected(world.api, REDEEM, redeemInput({ rewardId: reward, customerId }), 'OWNER', { __typename: 'RewardNotAvailableError', code });
    }
    // Inside its window it is fine.
    const open = await createReward(world, { validFrom: new Date(now - DAY_MS), validUntil: new Date(now + DAY_MS) });
    expect((await redeem(world.api, { rewardId: open, customerId })).userErrors).toEqual([]);
  });

  test('a customer who is not a member gets NOT_A_MEMBER and no account', async () => {
    const customerId = await newCustomer(world);
    const rewardId = await createReward(world);
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId }), 'OWNER', { __typename: 'ValidationError', code: 'NOT_A_MEMBER' });
    expect(await world.api.owner.pointsAccount.count({ where: { customerId } })).toBe(0);
  });

  test('malformed input: quantity out of range, a bad idempotency key', async () => {
    const customerId = await memberWith(100);
    const rewardId = await createReward(world);
    for (const quantity of [0, -1, 101]) {
      await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId, quantity }), 'OWNER', { __typename: 'ValidationError', field: ['input', 'quantity'] });
    }
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId, key: 'short' }), 'OWNER', {
      __typename: 'ValidationError',
      field: ['input', 'idempotencyKey'],
    });
  });
});

describe('who may redeem for whom', () => {
  test('roles without points:redeem are forbidden, whoever they name', async () => {
    const customerId = await memberWith(50);
    const rewardId = await createReward(world);
    for (const as of ['BEAUTICIAN', 'HQ_ANALYST'] as const) {
      await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId }), as, { __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    }
  });

  test('a customer token redeems for the customer themself, and another customer is not found', async () => {
    const me = (world.api.principals.CUSTOMER as Extract<Principal, { kind: 'CUSTOMER' }>).customerId;
    await givePoints(world, me, 20);
    const before = (await balanceOf(world.api.owner, me))!;
    const rewardId = await createReward(world, { pointsPrice: 3 });
    const own = await redeem(world.api, { rewardId }, 'CUSTOMER');
    expect(own.userErrors).toEqual([]);
    expect(own.balance).toBe(before - 3);
    // Naming themself explicitly is the same.
    expect((await redeem(world.api, { rewardId, customerId: me }, 'CUSTOMER')).userErrors).toEqual([]);
    // The redemption is attributed to the customer and to their home store.
    const redemption = await world.api.owner.pointsRedemption.findUniqueOrThrow({ where: { id: uuidOf(own.redemption.id) } });
    expect(redemption).toMatchObject({ customerId: me, storeId: world.stores.SH });

    const other = await memberWith(50);
    const otherError = await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId: other }), 'CUSTOMER', {
      __typename: 'NotFoundError',
      code: 'NOT_FOUND',
    });
    const randomError = await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId: randomUUID() }), 'CUSTOMER', {
      __typename: 'NotFoundError',
    });
    expect(otherError).toEqual(randomError);
    expect(await balanceOf(world.api.owner, other)).toBe(50);
  });

  test("another organization's reward or customer answers exactly like a random id", async () => {
    const customerId = await memberWith(50);
    const rewardId = await createReward(world);
    const foreignReward = await createReward(world, { orgId: world.otherChainId });
    const rewardMissing = await expectRejected(world.api, REDEEM, redeemInput({ rewardId: randomUUID(), customerId }), 'OWNER', { __typename: 'NotFoundError' });
    const rewardForeign = await expectRejected(world.api, REDEEM, redeemInput({ rewardId: foreignReward, customerId }), 'OWNER', { __typename: 'NotFoundError' });
    expect(rewardForeign).toEqual(rewardMissing);

    await givePoints(world, world.otherCustomer, 30, { orgId: world.otherChainId });
    const customerMissing = await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId: randomUUID() }), 'FRONT_DESK', { __typename: 'NotFoundError' });
    const customerForeign = await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId: world.otherCustomer }), 'FRONT_DESK', {
      __typename: 'NotFoundError',
    });
    expect(customerForeign).toEqual(customerMissing);

    // The other chain's owner cannot use our reward for our member, nor our member with their reward.
    const ours = await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId }), 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' });
    expect(ours.field).toEqual(['input', 'customerId']);
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId: world.otherCustomer }), 'OTHER_CHAIN_OWNER', {
      __typename: 'NotFoundError',
      field: ['input', 'rewardId'],
    });
    expect(await balanceOf(world.api.owner, world.otherCustomer)).toBe(30);
  });

  test("a store that does not exist or is another organization's is not found, for org-wide roles too", async () => {
    const customerId = await memberWith(50);
    const rewardId = await createReward(world, { pointsPrice: 2 });
    const missing = await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId, storeId: randomUUID() }), 'OWNER', {
      __typename: 'NotFoundError',
      field: ['input', 'storeId'],
    });
    const foreign = await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId, storeId: world.otherStore }), 'OWNER', {
      __typename: 'NotFoundError',
    });
    expect(foreign).toEqual(missing);
    // At one of its own stores the owner may redeem anywhere.
    const atUr = await redeem(world.api, { rewardId, customerId, storeId: world.stores.UR });
    expect(atUr.userErrors).toEqual([]);
    expect((await world.api.owner.pointsRedemption.findUniqueOrThrow({ where: { id: uuidOf(atUr.redemption.id) } })).storeId).toBe(world.stores.UR);
  });

  test('store-bound staff redeem at their own stores only', async () => {
    const customerId = await memberWith(50);
    const rewardId = await createReward(world, { pointsPrice: 2 });
    await expectRejected(world.api, REDEEM, redeemInput({ rewardId, customerId, storeId: world.stores.BJ }), 'FRONT_DESK', {
      __typename: 'NotFoundError',
      field: ['input', 'storeId'],
    });
    const done = await redeem(world.api, { rewardId, customerId }, 'FRONT_DESK');
    expect(done.userErrors).toEqual([]);
    const redemption = await world.api.owner.pointsRedemption.findUniqueOrThrow({ where: { id: uuidOf(done.redemption.id) } });
    expect(redemption.storeId).toBe(world.stores.SH);
    // A front desk of BJ-01 may serve the same member (customers are shared by the chain's stores), at BJ-01.
    const atBj = await redeem(world.api, { rewardId, customerId }, staffAt(world, world.stores.BJ));
    expect(atBj.userErrors).toEqual([]);
    expect((await world.api.owner.pointsRedemption.findUniqueOrThrow({ where: { id: uuidOf(atBj.redemption.id) } })).storeId).toBe(world.stores.BJ);
  });
});

describe('cancelling a redemption', () => {
  test('returns the points to the lots they came from and the stock to the reward, once', async () => {
    const { customerId } = await newMember(world);
    const old = await givePoints(world, customerId, 30, { earnedAt: new Date(Date.now() - 200 * DAY_MS) });
    const recent = await givePoints(world, customerId, 30, { earnedAt: new Date(Date.now() - 20 * DAY_MS) });
    const rewardId = await createReward(world, { pointsPrice: 20, stock: 5 });
    const first = await redeem(world.api, { rewardId, customerId, quantity: 2 }, 'FRONT_DESK'); // 40: 30 from old, 10 from recent
    expect(first.userErrors).toEqual([]);
    const second = await redeem(world.api, { rewardId, customerId }, 'FRONT_DESK'); // 20: the rest of recent
    expect(second.balance).toBe(0);
    const remaining = async () => Object.fromEntries((await lotsOf(world.api.owner, customerId)).map((l) => [String(l.id), l.remaining]));
    expect(await remaining()).toEqual({ [String(old.lotId)]: 0, [String(recent.lotId)]: 0 });

    const cancelInput = { redemptionId: first.redemption.id, reason: 'Customer changed her mind', idempotencyKey: key('cancel') };
    const cancelled = await call(world.api, CANCEL, { input: cancelInput }, 'FRONT_DESK');
    expect(cancelled).toMatchObject({ userErrors: [], balance: 40, redemption: { status: 'CANCELLED', cancelReason: 'Customer changed her mind' } });
    expect(await remaining()).toEqual({ [String(old.lotId)]: 30, [String(recent.lotId)]: 10 });
    expect((await world.api.owner.pointsReward.findUniqueOrThrow({ where: { id: rewardId } })).stock).toBe(5 - 3 + 2);
    const reversal = (await entriesOf(world.api.owner, customerId)).at(-1)!;
    expect(reversal).toMatchObject({ kind: 'REVERSAL', amount: 40, source: 'REWARD' });

    // The same request again is a replay; a new request to cancel it again is a conflict; neither changes anything.
    const replay = await call(world.api, CANCEL, { input: cancelInput }, 'FRONT_DESK');
    expect(replay).toMatchObject({ ...cancelled, replayed: true });
    await expectRejected(world.api, CANCEL, { ...cancelInput, idempotencyKey: key('cancel') }, 'FRONT_DESK', { __typename: 'ConflictError', code: 'INVALID_STATE' });
  });

  test('only staff with points:redeem at the redemption store may cancel; others find nothing', async () => {
    const customerId = await memberWith(30);
    const rewardId = await createReward(world, { pointsPrice: 10 });
    const done = await redeem(world.api, { rewardId, customerId }, 'FRONT_DESK');
    const input = () => ({ redemptionId: done.redemption.id, reason: 'test', idempotencyKey: key('cancel') });
    await expectRejected(world.api, CANCEL, input(), 'CUSTOMER', { __typename: 'ForbiddenError' });
    await expectRejected(world.api, CANCEL, input(), 'BEAUTICIAN', { __typename: 'ForbiddenError' });
    const elsewhere = await expectRejected(world.api, CANCEL, input(), staffAt(world, world.stores.BJ), { __typename: 'NotFoundError' });
    const foreign = await expectRejected(world.api, CANCEL, input(), 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' });
    const missing = await expectRejected(world.api, CANCEL, { ...input(), redemptionId: gid('PointsRedemption', randomUUID()) }, 'OWNER', {
      __typename: 'NotFoundError',
    });
    expect(elsewhere).toEqual(missing);
    expect(foreign).toEqual(missing);
    expect(await balanceOf(world.api.owner, customerId)).toBe(20);
  });

  test('cancelling a redemption and redeeming at the same time for the same member both complete', async () => {
    // Redeem locks reward then account; cancel locks account then reward: they must not deadlock.
    const customerId = await memberWith(400);
    const rewardId = await createReward(world, { pointsPrice: 10, stock: 1000 });
    const made = [];
    for (let i = 0; i < 10; i++) made.push(await redeem(world.api, { rewardId, customerId }, 'FRONT_DESK'));
    const results = await Promise.all([
      ...made.map((m) => call(world.api, CANCEL, { input: { redemptionId: m.redemption.id, reason: 'race', idempotencyKey: key('cancel') } }, 'FRONT_DESK')),
      ...Array.from({ length: 10 }, () => redeem(world.api, { rewardId, customerId }, 'FRONT_DESK')),
    ]);
    expect(results.map((r) => r.userErrors)).toEqual(results.map(() => []));
    expect(await balanceOf(world.api.owner, customerId)).toBe(400 - 100);
    expect((await world.api.owner.pointsReward.findUniqueOrThrow({ where: { id: rewardId } })).stock).toBe(1000 - 10);
  });
});
