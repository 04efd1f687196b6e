/**
 * The points API beyond redemption: Customer.points (balance, lots, ledger with filters and paging), donation
 * and the charity pool, manual adjustment (who may, with what reason, audited), pointsMetrics per store and
 * period against a hand count, and the pointsChanged subscription.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import type { DomainEvent } from '../../core/events/outbox.ts';
import { debit, expireAccount } from './ledger.ts';
import {
  accountOf,
  ADJUST,
  balanceOf,
  call,
  CANCEL,
  createReward,
  DONATE,
  entriesOf,
  expectLedgerConsistent,
  expectRejected,
  gid,
  givePoints,
  key,
  ledgerWork,
  newCustomer,
  newMember,
  redeem,
  staffAt,
  startPointsWorld,
  type As,
  type PointsWorld,
} from './testing.ts';

let world: PointsWorld;
beforeAll(async () => {
  world = await startPointsWorld({ monthlyRedemptionCap: null });
});
afterAll(() => world?.api.close());
afterEach(() => expectLedgerConsistent(world.api.owner));

const customerPrincipal = (customerId: string): Principal => ({ kind: 'CUSTOMER', orgId: world.chainId, customerId });

const POINTS = `query($id: ID!, $first: Int, $after: String, $filter: PointsLedgerFilter) { node(id: $id) { ... on Customer { points {
  balance
  lots { remaining original }
  ledger(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id kind amount source sourceRef reason actor createdAt } }
    pageInfo { hasNextPage endCursor }
  }
} } } }`;

describe('Customer.points', () => {
  test('balance, lots and the ledger, newest first, with paging and filters', async () => {
    const { customerId } = await newMember(world);
    await givePoints(world, customerId, 100);
    await givePoints(world, customerId, 60);
    const rewardId = await createReward(world, { pointsPrice: 30 });
    expect((await redeem(world.api, { rewardId, customerId }, 'FRONT_DESK')).userErrors).toEqual([]);
    expect((await call(world.api, ADJUST, { input: { customerId: gid('Customer', customerId), points: -5, reason: 'Goodwill correction', idempotencyKey: key() } })).userErrors).toEqual([]);

    const id = gid('Customer', customerId);
    const all = (await call(world.api, POINTS, { id, first: 10 })).points;
    expect(all.balance).toBe(125);
    expect(all.lots).toEqual([
      { remaining: 65, original: 100 },
      { remaining: 60, original: 60 },
    ]);
    expect(all.ledger.edges.map((e: any) => [e.node.kind, e.node.amount])).toEqual([
      ['ADJUST', -5],
      ['REDEEM', -30],
      ['EARN', 60],
      ['EARN', 100],
    ]);
    expect(all.ledger.edges[0].node).toMatchObject({ source: 'MANUAL', reason: 'Goodwill correction', actor: `staff:${(world.api.principals.OWNER as { staffId: string }).staffId}` });

    const page1 = (await call(world.api, POINTS, { id, first: 3 })).points.ledger;
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = (await call(world.api, POINTS, { id, first: 3, after: page1.pageInfo.endCursor })).points.ledger;
    expect(page2.pageInfo.hasNextPage).toBe(false);
    expect([...page1.edges, ...page2.edges].map((e: any) => e.node.id)).toEqual(all.ledger.edges.map((e: any) => e.node.id));

    const earns = (await call(world.api, POINTS, { id, first: 10, filter: { kinds: ['EARN'] } })).points.ledger;
    expect(earns.edges.map((e: any) => e.node.amount)).toEqual([60, 100]);
    const future = (await call(world.api, POINTS, { id, first: 10, filter: { from: new Date(Date.now() + 60_000).toISOString() } })).points.ledger;
    expect(future.edges).toEqual([]);
    const past = (await call(world.api, POINTS, { id, first: 10, filter: { to: new Date(Date.now() + 60_000).toISOString(), kinds: ['REDEEM', 'ADJUST'] } })).points.ledger;
    expect(past.edges.map((e: any) => e.node.kind)).toEqual(['ADJUST', 'REDEEM']);
  });

  test('a customer sees their own points and nobody else’s; a non-member has none; another chain sees nothing', async () => {
    const { customerId } = await newMember(world);
    await givePoints(world, customerId, 42);
    const me = customerPrincipal(customerId);
    const id = gid('Customer', customerId);
    expect((await call(world.api, POINTS, { id, first: 1 }, me)).points.balance).toBe(42);
    const other = await newMember(world);
    await givePoints(world, other.customerId, 7);
    expect(await call(world.api, POINTS, { id: gid('Customer', other.customerId), first: 1 }, me)).toBeNull();
    expect(await call(world.api, POINTS, { id, first: 1 }, 'OTHER_CHAIN_OWNER')).toBeNull();
    const stranger = await newCustomer(world);
    expect((await call(world.api, POINTS, { id: gid('Customer', stranger), first: 1 })).points).toBeNull();
  });
});

describe('donation', () => {
  const POOL = `{ pointsCharityPool { totalDonated donations } }`;

  test('donated points go to the organization’s pool, from the oldest lots, once per key', async () => {
    const before = await call(world.api, POOL);
    const otherBefore = await call(world.api, POOL, {}, 'OTHER_CHAIN_OWNER');
    const { customerId } = await newMember(world);
    await givePoints(world, customerId, 80);
    const me = customerPrincipal(customerId);
    const input = { points: 25, idempotencyKey: key('donate') };
    const first = await call(world.api, DONATE, { input }, me);
    expect(first).toMatchObject({ userErrors: [], balance: 55, replayed: false });
    expect(await call(world.api, DONATE, { input }, me)).toEqual({ ...first, replayed: true });
    // Front desk donates for a member (with the member's consent, at the counter).
    expect((await call(world.api, DONATE, { input: { customerId: gid('Customer', customerId), points: 15, idempotencyKey: key('donate') } }, 'FRONT_DESK')).balance).toBe(40);

    expect(await call(world.api, POOL)).toEqual({ totalDonated: before.totalDonated + 40, donations: before.donations + 2 });
    expect(await call(world.api, POOL, {}, me)).toEqual({ totalDonated: before.totalDonated + 40, donations: before.donations + 2 });
    expect(await call(world.api, POOL, {}, 'OTHER_CHAIN_OWNER')).toEqual(otherBefore);
    const donations = (await entriesOf(world.api.owner, customerId)).filter((e) => e.kind === 'DONATE');
    expect(donations.map((e) => [e.amount, e.source, e.actor, e.storeId])).toEqual([
      [-25, 'DONATION', `customer:${customerId}`, world.stores.SH],
      [-15, 'DONATION', `staff:${(world.api.principals.FRONT_DESK as { staffId: string }).staffId}`, world.stores.SH],
    ]);
  });

  test('bad donations are refused and change nothing', async () => {
    const { customerId } = await newMember(world);
    await givePoints(world, customerId, 10);
    const me = customerPrincipal(customerId);
    await expectRejected(world.api, DONATE, { points: 11, idempotencyKey: key() }, me, { __typename: 'InsufficientPointsError', available: 10, requested: 11 });
    for (const points of [0, -5]) {
      await expectRejected(world.api, DONATE, { points, idempotencyKey: key() }, me, { __typename: 'ValidationError', field: ['input', 'points'] });
    }
    await expectRejected(world.api, DONATE, { customerId: gid('Customer', customerId), points: 1, idempotencyKey: key() }, 'BEAUTICIAN', { __typename: 'ForbiddenError' });
    const other = await newMember(world);
    await givePoints(world, other.customerId, 10);
    await expectRejected(world.api, DONATE, { customerId: gid('Customer', other.customerId), points: 1, idempotencyKey: key() }, me, { __typename: 'NotFoundError' });
    await expectRejected(world.api, DONATE, { customerId: gid('Customer', customerId), points: 1, idempotencyKey: key() }, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' });
  });
});

describe('manual adjustment', () => {
  test('owners and store managers adjust with a reason; the entry and the event record who and why', async () => {
    const { customerId } = await newMember(world);
    const id = gid('Customer', customerId);
    const owner = world.api.principals.OWNER as { staffId: string };
    const manager = world.api.principals.STORE_MANAGER as { staffId: string };
    const added = await call(world.api, ADJUST, { input: { customerId: id, points: 50, reason: 'Compensation for a late appointment', idempotencyKey: key() } }, 'OWNER');
    expect(added).toMatchObject({ userErrors: [], balance: 50 });
    const taken = await call(world.api, ADJUST, { input: { customerId: id, points: -20, reason: 'Duplicate award reversed', idempotencyKey: key() } }, 'STORE_MANAGER');
    expect(taken).toMatchObject({ userErrors: [], balance: 30 });
    const entries = await entriesOf(world.api.owner, customerId);
    expect(entries.map((e) => [e.kind, e.amount, e.source, e.actor, e.reason])).toEqual([
      ['ADJUST', 50, 'MANUAL', `staff:${owner.staffId}`, 'Compensation for a late appointment'],
      ['ADJUST', -20, 'MANUAL', `staff:${manager.staffId}`, 'Duplicate award reversed'],
    ]);
    const events = await world.api.owner.domainEvent.findMany({ where: { type: 'points.adjusted', streamKey: customerId }, orderBy: { id: 'asc' } });
    expect(events.map((e) => [e.actor, (e.payload as Record<string, unknown>).delta])).toEqual([
      [`staff:${owner.staffId}`, 50],
      [`staff:${manager.staffId}`, -20],
    ]);
  });

  test('other roles, customers, bad reasons, zero and overdrafts are refused and change nothing', async () => {
    const { customerId } = await newMember(world);
    await givePoints(world, customerId, 10);
    const id = gid('Customer', customerId);
    const input = (points: number, reason = 'A proper reason') => ({ customerId: id, points, reason, idempotencyKey: key() });
    for (const as of ['FRONT_DESK', 'BEAUTICIAN', 'CONSULTANT', 'HQ_ANALYST', 'POS_CLIENT'] as As[]) {
      await expectRejected(world.api, ADJUST, input(5), as, { __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    }
    await expectRejected(world.api, ADJUST, input(5), customerPrincipal(customerId), { __typename: 'ForbiddenError' });
    await expectRejected(world.api, ADJUST, input(5, '  '), 'OWNER', { __typename: 'ValidationError', field: ['input', 'reason'] });
    await expectRejected(world.api, ADJUST, input(0), 'OWNER', { __typename: 'ValidationError', field: ['input', 'points'] });
    await expectRejected(world.api, ADJUST, input(-11), 'OWNER', { __typename: 'InsufficientPointsError', available: 10, requested: 11 });
    const missing = await expectRejected(world.api, ADJUST, { ...input(5), customerId: gid('Customer', randomUUID()) }, 'OWNER', { __typename: 'NotFoundError' });
    const foreign = await expectRejected(world.api, ADJUST, input(5), 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' });
    expect(foreign).toEqual(missing);
    await expectRejected(world.api, ADJUST, { ...input(5), customerId: gid('Customer', await newCustomer(world)) }, 'OWNER', { code: 'NOT_A_MEMBER' });
  });
});

describe('rewards catalogue', () => {
  const CREATE = `mutation($input: CreatePointsRewardInput!) { createPointsReward(input: $input) {
    reward { id name pointsPrice stock perCustomerLimit active } userErrors { __typename code message field } } }`;
  const CATALOGUE = `query($all: Boolean) { pointsRewards(includeUnavailable: $all) { id name } }`;

  test('owners add rewards; the catalogue shows what can be redeemed now', async () => {
    const name = `Yoga class ${randomUUID().slice(0, 6)}`;
    const created = await call(world.api, CREATE, { input: { kind: 'PARTNER_PERK', name, pointsPrice: 1500, stock: 40, perCustomerLimit: 2 } });
    expect(created).toMatchObject({ userErrors: [], reward: { name, pointsPrice: 1500, stock: 40, perCustomerLimit: 2, active: true } });
    const hidden = await createReward(world, { name: `Retired ${randomUUID().slice(0, 6)}`, active: false });
    const later = await createReward(world, { name: `Next month ${randomUUID().slice(0, 6)}`, validFrom: new Date(Date.now() + 86_400_000) });
    const soldOut = await createReward(world, { name: `Sold out ${randomUUID().slice(0, 6)}`, stock: 0 });
    const shown = (await call(world.api, CATALOGUE, {}, customerPrincipal((await newMember(world)).customerId))).map((r: any) => r.id);
    expect(shown).toContain(created.reward.id);
    for (const id of [hidden, later, soldOut]) expect(shown).not.toContain(gid('PointsReward', id));
    const all = (await call(world.api, CATALOGUE, { all: true })).map((r: any) => r.id);
    for (const id of [hidden, later, soldOut]) expect(all).toContain(gid('PointsReward', id));
    // Another chain's catalogue does not include ours.
    expect((await call(world.api, CATALOGUE, { all: true }, 'OTHER_CHAIN_OWNER')).map((r: any) => r.id)).not.toContain(created.reward.id);
  });

  test('only owners may add rewards, and bad rewards are refused', async () => {
    const input = { kind: 'PRODUCT', name: 'Serum sample', pointsPrice: 800 };
    for (const as of ['STORE_MANAGER', 'FRONT_DESK', 'POS_CLIENT', 'CUSTOMER'] as As[]) {
      await expectRejected(world.api, CREATE, input, as, { __typename: 'ForbiddenError' });
    }
    await expectRejected(world.api, CREATE, { ...input, pointsPrice: 0 }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'pointsPrice'] });
    await expectRejected(world.api, CREATE, { ...input, name: '  ' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'name'] });
    await expectRejected(
      world.api,
      CREATE,
      { ...input, validFrom: '2026-03-01T00:00:00+08:00', validUntil: '2026-02-01T00:00:00+08:00' },
      'OWNER',
      { __typename: 'ValidationError', field: ['input', 'validUntil'] },
    );
  });
});

// --- Metrics -------------------------------------------------------------------------------------------------

const METRICS = `query($from: Date!, $to: Date!, $period: MetricsPeriod, $storeIds: [ID!]) {
  pointsMetrics(from: $from, to: $to, period: $period, storeIds: $storeIds) {
    store { id } periodStart issued redeemed expired donated adjusted usageRate
  } }`;

describe('pointsMetrics', () => {
  /** Moves the entries a step created (those after `sinceId`) to `at`. */
  async function backdate(customerId: string, sinceId: bigint, at: string) {
    await world.api.owner.pointsEntry.updateMany({ where: { customerId, id: { gt: sinceId } }, data: { createdAt: new Date(at) } });
  }
  const lastEntryId = async () => (await world.api.owner.pointsEntry.aggregate({ _max: { id: true } }))._max.id ?? 0n;

  async function step(customerId: string, at: string, work: () => Promise<unknown>) {
    const since = await lastEntryId();
    await work();
    await backdate(customerId, since, at);
  }

  let arranged: Promise<void> | null = null;
  /** Entries with chosen stores and times in September and October 2025 (all stores but UR-01 are UTC+8; UR-01 is UTC+6). */
  function arrange() {
    arranged ??= (async () => {
      const { SH, BJ, UR } = world.stores;
      const m1 = await newMember(world, { storeId: SH });
      const m2 = await newMember(world, { storeId: BJ });
      const m3 = await newMember(world, { storeId: UR });
      let expiring = 0n;
      // SH, September: 680 + 40 issued, 100 redeemed.
      await step(m1.customerId, '2025-09-10T04:00:00Z', () => givePoints(world, m1.customerId, 680, { storeId: SH, source: 'VISIT' }));
      await step(m1.customerId, '2025-09-12T04:00:00Z', async () => {
        expiring = (await givePoints(world, m1.customerId, 40, { storeId: SH, source: 'VISIT' })).lotId;
      });
      const rewardId = await createReward(world, { pointsPrice: 50 });
      await step(m1.customerId, '2025-09-20T04:00:00Z', () => redeem(world.api, { rewardId, customerId: m1.customerId, quantity: 2 }, 'FRONT_DESK'));
      // SH, October: 50 redeemed then cancelled (net 0); the 40-point lot expires (counted at SH, where it was issued).
      await step(m1.customerId, '2025-10-05T04:00:00Z', async () => {
        const r = await redeem(world.api, { rewardId, customerId: m1.customerId }, 'FRONT_DESK');
        await call(world.api, CANCEL, { input: { redemptionId: r.redemption.id, reason: 'changed mind', idempotencyKey: key() } }, 'FRONT_DESK');
      });
      await step(m1.customerId, '2025-10-15T04:00:00Z', async () => {
        await world.api.owner.pointsLot.update({ where: { id: expiring }, data: { expiresAt: new Date(Date.now() - 1000) } });
        const account = await accountOf(world, m1.customerId);
        expect(await ledgerWork(world, world.chainId, (write) => expireAccount(write, account))).toBe(40);
      });
      // No store, October: +20 adjusted by hand.
      await step(m1.customerId, '2025-10-20T04:00:00Z', () =>
        call(world.api, ADJUST, { input: { customerId: gid('Customer', m1.customerId), points: 20, reason: 'Manual correction', idempotencyKey: key() } }),
      );
      // BJ: 368 issued at 01:00 on 1 October local (still 30 September in UTC); 200 issued and reversed by a refund; 30 donated.
      await step(m2.customerId, '2025-09-30T17:00:00Z', () => givePoints(world, m2.customerId, 368, { storeId: BJ, source: 'VISIT' }));
      await step(m2.customerId, '2025-10-03T04:00:00Z', async () => {
        await givePoints(world, m2.customerId, 200, { storeId: BJ, source: 'VISIT' });
        const account = await accountOf(world, m2.customerId);
        await ledgerWork(world, world.chainId, (write) => debit(write, account, 'REVERSAL', 200, { source: 'VISIT', storeId: BJ }, 'points.reversed'));
      });
      await step(m2.customerId, '2025-10-10T04:00:00Z', () =>
        call(world.api, DONATE, { input: { customerId: gid('Customer', m2.customerId), points: 30, idempotencyKey: key() } }, staffAt(world, BJ)),
      );
      // UR: 90 issued at 23:30 on 30 September local (1 October in Shanghai); 50 redeemed at 09:00 on 1 October local.
      await step(m3.customerId, '2025-09-30T17:30:00Z', () => givePoints(world, m3.customerId, 90, { storeId: UR, source: 'VISIT' }));
      await step(m3.customerId, '2025-10-01T03:00:00Z', () => redeem(world.api, { rewardId: rewardId, customerId: m3.customerId }, staffAt(world, UR)));
      // Outside the range: the day after.
      await step(m3.customerId, '2025-10-31T18:30:00Z', () => givePoints(world, m3.customerId, 5, { storeId: UR, source: 'VISIT' })); // 1 Nov 00:30 Urumqi
    })();
    return arranged;
  }

  const row = (store: string | null, periodStart: string, counts: Partial<{ issued: number; redeemed: number; expired: number; donated: number; adjusted: number }>) => {
    const r = { issued: 0, redeemed: 0, expired: 0, donated: 0, adjusted: 0, ...counts };
    return { store: store ? { id: gid('Store', store) } : null, periodStart, ...r, usageRate: r.issued > 0 ? r.redeemed / r.issued : null };
  };
  const sorted = (rows: any[]) => [...rows].sort((a, b) => `${a.periodStart}${a.store?.id ?? '~'}`.localeCompare(`${b.periodStart}${b.store?.id ?? '~'}`));

  test('per store and month equals the hand count', async () => {
    await arrange();
    const { SH, BJ, UR } = world.stores;
    const expected = [
      row(SH, '2025-09-01', { issued: 720, redeemed: 100 }),
      row(UR, '2025-09-01', { issued: 90 }),
      row(SH, '2025-10-01', { redeemed: 0, expired: 40 }),
      row(BJ, '2025-10-01', { issued: 368, donated: 30 }),
      row(UR, '2025-10-01', { redeemed: 50 }),
      row(null, '2025-10-01', { adjusted: 20 }),
    ];
    const rows = await call(world.api, METRICS, { from: '2025-09-01', to: '2025-10-31' });
    expect(sorted(rows)).toEqual(sorted(expected));
    expect(sorted(await call(world.api, METRICS, { from: '2025-09-01', to: '2025-10-31', period: 'MONTH' }, 'HQ_ANALYST'))).toEqual(sorted(expected));
    expect(rows.find((r: any) => r.store?.id === gid('Store', SH) && r.periodStart === '2025-09-01').usageRate).toBeCloseTo(100 / 720, 10);
  });

  test('days are local to each store, and the bounds are inclusive local dates', async () => {
    await arrange();
    const { BJ, UR } = world.stores;
    const rows = await call(world.api, METRICS, { from: '2025-10-01', to: '2025-10-01', period: 'DAY' });
    expect(sorted(rows)).toEqual(sorted([row(BJ, '2025-10-01', { issued: 368 }), row(UR, '2025-10-01', { redeemed: 50 })]));
    const sept30 = await call(world.api, METRICS, { from: '2025-09-30', to: '2025-09-30', period: 'DAY' });
    expect(sept30).toEqual([row(UR, '2025-09-30', { issued: 90 })]);
    const weeks = await call(world.api, METRICS, { from: '2025-09-29', to: '2025-10-05', period: 'WEEK', storeIds: [gid('Store', BJ), gid('Store', UR)] });
    expect(sorted(weeks)).toEqual(sorted([row(BJ, '2025-09-29', { issued: 368 }), row(UR, '2025-09-29', { issued: 90, redeemed: 50 })]));
  });

  test('a store manager sees only their store; others see nothing of this chain', async () => {
    await arrange();
    const { SH, BJ } = world.stores;
    const mine = await call(world.api, METRICS, { from: '2025-09-01', to: '2025-10-31' }, 'STORE_MANAGER');
    expect(sorted(mine)).toEqual(sorted([row(SH, '2025-09-01', { issued: 720, redeemed: 100 }), row(SH, '2025-10-01', { expired: 40 })]));
    expect(await call(world.api, METRICS, { from: '2025-09-01', to: '2025-10-31', storeIds: [gid('Store', BJ)] }, 'STORE_MANAGER')).toEqual([]);
    expect(await call(world.api, METRICS, { from: '2025-09-01', to: '2025-10-31' }, 'OTHER_CHAIN_OWNER')).toEqual([]);
    for (const as of ['FRONT_DESK', 'CUSTOMER', 'POS_CLIENT'] as As[]) {
      const response = await world.api.gql(METRICS, { from: '2025-09-01', to: '2025-10-31' }, as);
      expect(response.data?.pointsMetrics ?? null).toBeNull();
      expect(response.errors?.[0]).toMatchObject({ message: 'Requires the points:metrics permission', extensions: { code: 'FORBIDDEN' } });
    }
    const backwards = await world.api.gql(METRICS, { from: '2025-10-31', to: '2025-09-01' }, 'OWNER');
    expect(backwards.errors?.[0]).toMatchObject({ message: 'to is before from', extensions: { code: 'INVALID' } });
  });
});

// --- Subscription --------------------------------------------------------------------------------------------

const CHANGES = `subscription($customerId: ID!) { pointsChanged(customerId: $customerId) { type delta balance occurredAt } }`;
const PROBE = 'test.probe';

function watch(client: Client, customerId: string) {
  const events: any[] = [];
  const errors: unknown[] = [];
  let done = false;
  const stop = client.subscribe(
    { query: CHANGES, variables: { customerId: gid('Customer', customerId) } },
    {
      next: (result) => {
        if (result.errors) errors.push(...result.errors);
        if (result.data) events.push((result.data as any).pointsChanged);
      },
      error: (error) => {
        errors.push(error);
        done = true;
      },
      complete: () => {
        done = true;
      },
    },
  );
  return {
    events,
    errors,
    get done() {
      return done;
    },
    stop,
    real: () => events.filter((e) => e.type !== PROBE),
  };
}

async function until(check: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** graphql-ws does not acknowledge a subscription: publish probes (never stored) until the subscriber gets one. */
async function untilLive(sub: ReturnType<typeof watch>, customerId: string) {
  const probe: DomainEvent = {
    id: '0',
    orgId: world.chainId,
    actor: 'test',
    type: PROBE,
    aggregateType: 'PointsAccount',
    aggregateId: randomUUID(),
    streamKey: customerId,
    payload: { customerId, delta: 0, balance: 0 },
    occurredAt: new Date().toISOString(),
  };
  const deadline = Date.now() + 15_000;
  while (!sub.events.some((e) => e.type === PROBE)) {
    if (sub.done) throw new Error(`subscription ended: ${JSON.stringify(sub.errors)}`);
    if (Date.now() > deadline) throw new Error('subscription never became live');
    world.api.running.platform.publish(probe);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('pointsChanged', () => {
  test('reaches the customer and the staff of their store, and refuses staff of another store like a missing customer', async () => {
    const { customerId } = await newMember(world, { storeId: world.stores.SH });
    const other = await newMember(world, { storeId: world.stores.SH });
    const subscribers = {
      customer: watch(await world.api.ws(customerPrincipal(customerId)), customerId),
      frontDesk: watch(await world.api.ws('FRONT_DESK'), customerId),
      owner: watch(await world.api.ws('OWNER'), customerId),
    };
    const refused = {
      otherStore: watch(await world.api.ws(staffAt(world, world.stores.BJ)), customerId),
      otherCustomer: watch(await world.api.ws(customerPrincipal(other.customerId)), customerId),
      otherChain: watch(await world.api.ws('OTHER_CHAIN_OWNER'), customerId),
      missing: watch(await world.api.ws('FRONT_DESK'), randomUUID()),
    };
    try {
      await Promise.all(Object.values(subscribers).map((s) => untilLive(s, customerId)));
      await until(() => Object.values(refused).every((s) => s.done));
      const codes = Object.values(refused).map((s) => JSON.stringify(s.errors.map((e: any) => [e.message, e.extensions?.code])));
      expect(new Set(codes).size).toBe(1);
      expect(codes[0]).toContain('NOT_FOUND');
      for (const s of Object.values(refused)) expect(s.events).toEqual([]);

      // Points move for the customer (and, separately, for someone else).
      await givePoints(world, other.customerId, 9);
      expect((await call(world.api, ADJUST, { input: { customerId: gid('Customer', customerId), points: 30, reason: 'Welcome gift', idempotencyKey: key() } })).userErrors).toEqual([]);
      const rewardId = await createReward(world, { pointsPrice: 12 });
      expect((await redeem(world.api, { rewardId, customerId }, 'FRONT_DESK')).userErrors).toEqual([]);

      await until(() => Object.values(subscribers).every((s) => s.real().length >= 2));
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const s of Object.values(subscribers)) {
        expect(s.errors).toEqual([]);
        expect(s.real().map((e) => [e.type, e.delta, e.balance])).toEqual([
          ['points.adjusted', 30, 30],
          ['points.redeemed', -12, 18],
        ]);
      }
      expect(await balanceOf(world.api.owner, customerId)).toBe(18);
    } finally {
      for (const s of [...Object.values(subscribers), ...Object.values(refused)]) s.stop();
    }
  });

  test('staff of SH-01 are refused for a customer of another store', async () => {
    const { customerId } = await newMember(world, { storeId: world.stores.BJ });
    const sub = watch(await world.api.ws('FRONT_DESK'), customerId);
    const bj = watch(await world.api.ws(staffAt(world, world.stores.BJ)), customerId);
    try {
      await untilLive(bj, customerId);
      await until(() => sub.done);
      expect(JSON.stringify(sub.errors)).toContain('NOT_FOUND');
    } finally {
      sub.stop();
      bj.stop();
    }
  });
});
