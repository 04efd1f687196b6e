/**
 * HQ metrics checked against a hand count (two stores in different time zones, every status, refunds and rejected
 * referrals, claims either side of a local midnight), store scoping and tenancy of the metrics, "aesthetic partner"
 * levels as data (validation, levels held, the referrer's bonus paid on a real qualification), the statement count of
 * Customer.referralProfile on a page of customers, and the demo seed.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { inTransaction } from '../../core/events/outbox.ts';
import pointsPlugin from '../points/plugin.ts';
import { credit, ensureAccount } from '../points/ledger.ts';
import { expectLedgerConsistent } from '../points/testing.ts';
import referralsPlugin from './plugin.ts';
import {
  call,
  claim,
  codeOf,
  completeVisit,
  DAY_MS,
  gid,
  newCustomer,
  startReferralsWorld,
  type ReferralsWorld,
} from './testing.ts';

let world: ReferralsWorld;
beforeAll(async () => {
  world = await startReferralsWorld();
});
afterAll(() => world?.api.close());
afterEach(() => expectLedgerConsistent(world.api.owner));

const METRICS = `query($from: Date!, $to: Date!, $period: ReferralMetricsPeriod, $storeIds: [ID!]) {
  referralMetrics(from: $from, to: $to, period: $period, storeIds: $storeIds) {
    store { code } periodStart registered qualified rewarded pending expired rejected conversionRate
    referredRevenue { amount } payingReferees topReferrers { customer { id } registered qualified } } }`;

describe('the demo seed', () => {
  test('gives the chain referrals in every state, paid through the ledger, that pass the plugin\'s own rules', async () => {
    const { api } = world;
    const orgId = world.chainId;
    await api.owner.$transaction(async (tx) => {
      await pointsPlugin.seedDemo!({ tx, orgId, config: world.points });
      await referralsPlugin.seedDemo!({ tx, orgId, config: world.config });
    }, { timeout: 120_000 });
    const byStatus = Object.fromEntries(
      (await api.owner.referral.groupBy({ by: ['status'], where: { orgId }, _count: true })).map((g) => [g.status, g._count]),
    );
    expect(byStatus.REWARDED).toBeGreaterThan(5);
    expect(byStatus.EXPIRED).toBeGreaterThan(0);
    expect(byStatus.REJECTED).toBe(2);
    const [broken] = await api.owner.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM referral r
      JOIN customer e ON e.id = r.referee_id JOIN customer f ON f.id = r.referrer_id
      WHERE r.org_id = ${orgId}::uuid AND (
        e.created_at <= f.created_at
        OR EXISTS (SELECT 1 FROM visit v WHERE v.customer_id = r.referee_id AND v.completed_at < r.claimed_at)
        OR r.code <> (SELECT code FROM referral_code c WHERE c.customer_id = r.referrer_id)
        OR (r.status = 'REWARDED' AND (SELECT count(*) FROM points_entry p WHERE p.source = 'REFERRAL' AND p.source_ref = r.id::text
                                        AND p.id IN (r.referrer_entry_id, r.referee_entry_id)) <> 2))`;
    expect(broken!.n).toBe(0);
    expect(await api.owner.referralPartnerLevel.count({ where: { orgId } })).toBe(world.config.partnerLevels.length);
    // A year of it shows in the metrics.
    const today = new Date().toISOString().slice(0, 10);
    const yearAgo = new Date(Date.now() - 365 * DAY_MS).toISOString().slice(0, 10);
    const rows = await call(api, METRICS, { from: yearAgo, to: today }, 'HQ_ANALYST');
    expect(rows.reduce((sum: number, row: any) => sum + row.registered, 0)).toBeGreaterThan(0);
  });
});

describe('referral metrics, against a hand count', () => {
  let ur: string;
  let cd: string;
  const r: Record<'R1' | 'R2' | 'R3', string> = { R1: '', R2: '', R3: '' };

  beforeAll(async () => {
    const { api } = world;
    const store = (code: string, timezone: string) =>
      api.owner.store.create({ data: { orgId: world.chainId, code, name: `Hand count ${code}`, timezone } }).then((s) => s.id);
    ur = await store('HC-UR', 'Asia/Urumqi'); // UTC+6
    cd = await store('HC-CD', 'Asia/Chongqing'); // UTC+8
    const old = new Date('2024-01-01T00:00:00Z');
    for (const name of ['R1', 'R2', 'R3'] as const) r[name] = await newCustomer(world, { createdAt: old, name });

    const visit = (customerId: string, storeId: string, at: string, amount: number, status: 'COMPLETED' | 'REFUNDED' = 'COMPLETED') =>
      api.owner.visit.create({
        data: {
          orgId: world.chainId, storeId, customerId, status, totalMinor: amount * 100,
          scheduledStart: new Date(new Date(at).getTime() - 3_600_000), scheduledEnd: new Date(at), completedAt: new Date(at),
          ...(status === 'REFUNDED' ? { refundedAt: new Date(at) } : {}),
        },
      }).then((v) => v.id);
    const pay = async (customerId: string, amount: number) => {
      const platform = world.api.running.platform;
      return inTransaction(platform, platform.dbs.forOrg(world.chainId), world.chainId, 'test', async (tx, emit) => {
        const account = (await ensureAccount(tx, world.chainId, customerId))!;
        const done = await credit({ tx, emit, actor: 'test' }, account, 'EARN', amount, { source: 'REFERRAL', reason: 'hand count', lifetimeMonths: 12, timezone: 'Asia/Shanghai' });
        return done!.entryId;
      });
    };
    /** A referral as it ended up; qualifying visit first in `visits`. */
    const referral = async (
      referrer: string, storeId: string, claimedAt: string, status: 'PENDING' | 'QUALIFIED' | 'REWARDED' | 'EXPIRED' | 'REJECTED',
      visits: [string, number, ('COMPLETED' | 'REFUNDED')?][] = [],
    ) => {
      const referee = await newCustomer(world, { storeId, createdAt: new Date(new Date(claimedAt).getTime() - 3_600_000) });
      const ids = [];
      for (const [at, amount, visitStatus] of visits) ids.push(await visit(referee, storeId, at, amount, visitStatus));
      const claimed = new Date(claimedAt);
      const qualified = status === 'QUALIFIED' || status === 'REWARDED';
      await api.owner.referral.create({
        data: {
          orgId: world.chainId, referrerId: referrer, refereeId: referee, code: await codeOf(api.owner, referrer), storeId,
          status, claimedAt: claimed, claimedBy: 'test', qualifyBy: new Date(claimed.getTime() + 30 * DAY_MS),
          ...(qualified ? { qualifiedAt: new Date(visits[0]![0]), qualifyingVisitId: ids[0], qualifyingAmountMinor: BigInt(visits[0]![1] * 100), referrerPoints: 500, refereePoints: 500 } : {}),
          ...(status === 'REWARDED' ? { rewardedAt: new Date(visits[0]![0]), referrerEntryId: await pay(referrer, 500), refereeEntryId: await pay(referee, 500) } : {}),
          ...(status === 'EXPIRED' ? { expiredAt: new Date(claimed.getTime() + 30 * DAY_MS) } : {}),
          ...(status === 'REJECTED' ? { rejectedAt: new Date(claimed.getTime() + DAY_MS), rejectionCode: 'REPORTED_FRAUD' } : {}),
        },
      });
    };

    // HC-UR (UTC+6)
    await referral(r.R1, ur, '2025-03-10T04:00:00Z', 'REWARDED', [['2025-03-15T06:00:00Z', 400]]); // U1
    await referral(r.R1, ur, '2025-03-20T04:00:00Z', 'QUALIFIED', [['2025-04-02T06:00:00Z', 300]]); // U2: revenue in April
    await referral(r.R2, ur, '2025-03-25T04:00:00Z', 'EXPIRED'); // U3
    await referral(r.R2, ur, '2025-03-31T19:30:00Z', 'PENDING', [['2025-04-05T06:00:00Z', 80]]); // U4: 1 April 01:30 local; a small visit still is revenue
    await referral(r.R2, ur, '2025-03-12T04:00:00Z', 'REJECTED', [['2025-03-13T06:00:00Z', 500]]); // U5: fraud, no registration, no revenue
    await referral(r.R3, ur, '2025-03-05T04:00:00Z', 'REWARDED', [['2025-03-06T06:00:00Z', 200], ['2025-03-20T06:00:00Z', 999, 'REFUNDED']]); // U6
    // HC-CD (UTC+8)
    await referral(r.R1, cd, '2025-03-31T15:30:00Z', 'QUALIFIED', [['2025-03-31T15:45:00Z', 250]]); // C1: 31 March 23:30 local
    await referral(r.R3, cd, '2025-03-02T02:00:00Z', 'EXPIRED'); // C2
    await referral(r.R3, cd, '2025-04-10T02:00:00Z', 'REWARDED', [['2025-04-11T02:00:00Z', 600]]); // C3
  });

  const top = (...rows: [string, number, number][]) => rows.map(([name, registered, qualified]) => ({ customer: { id: gid('Customer', r[name as 'R1']) }, registered, qualified }));

  test('by month: registered, qualified and conversion per store, revenue from referred customers, top referrers', async () => {
    const rows = await call(world.api, METRICS, { from: '2025-03-01', to: '2025-04-30', period: 'MONTH', storeIds: [gid('Store', ur), gid('Store', cd)] }, 'HQ_ANALYST');
    // Rows come by period, then store id: put them in a readable order.
    const sorted = [...rows].sort((a: any, b: any) => `${a.periodStart}${a.store.code}`.localeCompare(`${b.periodStart}${b.store.code}`));
    expect(sorted).toEqual([
      {
        store: { code: 'HC-CD' }, periodStart: '2025-03-01', registered: 2, qualified: 1, rewarded: 0, pending: 0, expired: 1, rejected: 0,
        conversionRate: 0.5, referredRevenue: { amount: '250.00' }, payingReferees: 1, topReferrers: top(['R1', 1, 1], ['R3', 1, 0]),
      },
      {
        store: { code: 'HC-UR' }, periodStart: '2025-03-01', registered: 4, qualified: 3, rewarded: 2, pending: 0, expired: 1, rejected: 1,
        conversionRate: 0.75, referredRevenue: { amount: '600.00' }, payingReferees: 2, topReferrers: top(['R1', 2, 2], ['R3', 1, 1], ['R2', 1, 0]),
      },
      {
        store: { code: 'HC-CD' }, periodStart: '2025-04-01', registered: 1, qualified: 1, rewarded: 1, pending: 0, expired: 0, rejected: 0,
        conversionRate: 1, referredRevenue: { amount: '600.00' }, payingReferees: 1, topReferrers: top(['R3', 1, 1]),
      },
      {
        store: { code: 'HC-UR' }, periodStart: '2025-04-01', registered: 1, qualified: 0, rewarded: 0, pending: 1, expired: 0, rejected: 0,
        conversionRate: 0, referredRevenue: { amount: '380.00' }, payingReferees: 2, topReferrers: top(['R2', 1, 0]),
      },
    ]);
    expect(rows.map((row: any) => row.periodStart)).toEqual(['2025-03-01', '2025-03-01', '2025-04-01', '2025-04-01']);
  });

  test('by day: claims either side of local midnight fall on the store\'s own calendar day', async () => {
    const rows = await call(world.api, METRICS, { from: '2025-03-31', to: '2025-04-01', period: 'DAY', storeIds: [gid('Store', ur), gid('Store', cd)] }, 'OWNER');
    const cells = rows.map((row: any) => [row.store.code, row.periodStart, row.registered, row.referredRevenue.amount]);
    // U4 was claimed at 19:30 UTC on 31 March: 1 April in Ürümqi. C1 at 15:30 UTC: still 31 March in Chongqing.
    expect(cells.sort()).toEqual([['HC-CD', '2025-03-31', 1, '250.00'], ['HC-UR', '2025-04-01', 1, '0.00']]);
  });

  test('store managers see their stores only; the front desk may not ask; another chain sees nothing of ours', async () => {
    const { api } = world;
    const args = { from: '2025-03-01', to: '2025-04-30', storeIds: [gid('Store', ur), gid('Store', cd)] };
    expect(await call(api, METRICS, args, 'STORE_MANAGER')).toEqual([]); // bound to SH-01
    const urManager = { kind: 'STAFF' as const, orgId: world.chainId, staffId: randomUUID(), role: 'STORE_MANAGER' as const, storeIds: [ur] };
    const own = await call(api, METRICS, { from: args.from, to: args.to }, urManager);
    expect(own.map((row: any) => row.store.code)).toEqual(['HC-UR', 'HC-UR']);
    const denied = await api.gql(METRICS, args, 'FRONT_DESK');
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await call(api, METRICS, args, 'OTHER_CHAIN_OWNER')).toEqual([]);
    const backwards = await api.gql(METRICS, { ...args, from: '2025-05-01' }, 'OWNER');
    expect(backwards.errors?.[0]?.message).toBe('to is before from');
  });
});

describe('"aesthetic partner" levels', () => {
  const SET = `mutation($input: SetReferralPartnerLevelsInput!) { setReferralPartnerLevels(input: $input) {
    levels { code name rank minConvertedReferrals minSpendLast12Months { amount } referralBonusPercent benefits { kind description service { id } } }
    userErrors { __typename code message field } } }`;
  const level = (code: string, minConvertedReferrals: number, minSpendLast12Months: string, referralBonusPercent = 0, benefits: object[] = []) =>
    ({ code, name: `${code} partner`, minConvertedReferrals, minSpendLast12Months, referralBonusPercent, benefits });

  const setLevels = () =>
    call(world.api, SET, {
      input: {
        levels: [
          level('BRONZE', 1, '0'),
          level('SILVER', 3, '3000', 10, [{ kind: 'SERVICE', description: 'A complimentary hydrating facial each quarter', serviceId: gid('Service', world.service.id) }]),
          level('GOLD', 5, '10000', 20, [{ kind: 'PRIORITY_BOOKING', description: 'Priority booking with senior beauticians' }]),
        ],
      },
    });

  test('are data the owner sets, validated: rising thresholds, no absolute claims, services of the organization', async () => {
    const { api } = world;
    const levelsBefore = await api.owner.referralPartnerLevel.findMany({ orderBy: { id: 'asc' } });
    const refused = async (levels: object[], as: 'OWNER' | 'STORE_MANAGER' = 'OWNER') => {
      const payload = await call(api, SET, { input: { levels } }, as);
      expect(payload.levels).toBeNull();
      expect(await api.owner.referralPartnerLevel.findMany({ orderBy: { id: 'asc' } })).toEqual(levelsBefore);
      return payload.userErrors;
    };
    expect(await refused([level('BRONZE', 1, '0')], 'STORE_MANAGER')).toMatchObject([{ __typename: 'ForbiddenError' }]);
    expect(await refused([level('BRONZE', 3, '0'), level('SILVER', 1, '3000')])).toMatchObject([{ __typename: 'ValidationError', field: ['input', 'levels', '1'] }]);
    expect(await refused([level('BRONZE', 1, '0', 0, [{ kind: 'SERVICE', description: '最有效的抗衰护理' }])])).toMatchObject([
      { __typename: 'ValidationError', field: ['input', 'levels', '0', 'benefits', '0', 'description'] },
    ]);
    expect(await refused([level('BRONZE', 1, '0', 0, [{ kind: 'OTHER', description: 'Treatment by our top expert' }])])).toMatchObject([{ __typename: 'ValidationError' }]);
    expect(await refused([level('BRONZE', 1, '-1')])).toMatchObject([{ __typename: 'ValidationError', field: ['input', 'levels', '0', 'minSpendLast12Months'] }]);
    expect(await refused([level('bronze', 1, '0')])).toMatchObject([{ __typename: 'ValidationError', field: ['input', 'levels', '0', 'code'] }]);
    const theirService = await api.owner.service.findFirstOrThrow({ where: { orgId: world.otherChainId } });
    expect(await refused([level('BRONZE', 1, '0', 0, [{ kind: 'SERVICE', description: 'A facial', serviceId: gid('Service', theirService.id) }])])).toMatchObject([
      { __typename: 'NotFoundError', field: ['input', 'levels', '0', 'benefits', '0', 'serviceId'] },
    ]);

    const done = await setLevels();
    expect(done.userErrors).toEqual([]);
    expect(done.levels.map((l: any) => [l.code, l.rank, l.minConvertedReferrals, l.minSpendLast12Months.amount, l.referralBonusPercent])).toEqual([
      ['BRONZE', 0, 1, '0.00', 0], ['SILVER', 1, 3, '3000.00', 10], ['GOLD', 2, 5, '10000.00', 20],
    ]);
    expect(done.levels[1].benefits).toEqual([{ kind: 'SERVICE', description: 'A complimentary hydrating facial each quarter', service: { id: gid('Service', world.service.id) } }]);
    const read = await call(api, `{ referralPartnerLevels { code } }`, {}, 'CUSTOMER');
    expect(read.map((l: any) => l.code)).toEqual(['BRONZE', 'SILVER', 'GOLD']);
    // Another chain keeps its own (the configured defaults).
    const theirs = await call(api, `{ referralPartnerLevels { code } }`, {}, 'OTHER_CHAIN_OWNER');
    expect(theirs.map((l: any) => l.code)).toEqual(world.config.partnerLevels.map((l) => l.code));
  });

  test('a referrer holds the level their converted referrals and own 12-month spend both reach, and earns its bonus', async () => {
    const { api } = world;
    expect((await setLevels()).userErrors).toEqual([]);
    const referrer = await newCustomer(world, { createdAt: new Date(Date.now() - 200 * DAY_MS) });
    // Three converted referrals (arranged) and ¥3,500 of own spend in the last 12 months (one older visit does not count).
    for (let i = 0; i < 3; i++) {
      const referee = await newCustomer(world, { createdAt: new Date(Date.now() - (100 - i) * DAY_MS) });
      const claimedAt = new Date(Date.now() - (99 - i) * DAY_MS);
      const visit = await api.owner.visit.create({
        data: { orgId: world.chainId, storeId: world.stores.SH, customerId: referee, status: 'COMPLETED', totalMinor: 30_000, scheduledStart: claimedAt, scheduledEnd: new Date(claimedAt.getTime() + 3_600_000), completedAt: new Date(claimedAt.getTime() + 3_600_000) },
      });
      await api.owner.referral.create({
        data: {
          orgId: world.chainId, referrerId: referrer, refereeId: referee, code: await codeOf(api.owner, referrer), storeId: world.stores.SH, status: 'QUALIFIED',
          claimedAt, claimedBy: 'test', qualifyBy: new Date(claimedAt.getTime() + 90 * DAY_MS), qualifiedAt: visit.completedAt, qualifyingVisitId: visit.id,
          qualifyingAmountMinor: 30_000n, referrerPoints: 500, refereePoints: 500,
        },
      });
    }
    for (const [daysAgo, amount] of [[30, 200_000], [200, 150_000], [400, 900_000]] as const) {
      const at = new Date(Date.now() - daysAgo * DAY_MS);
      await api.owner.visit.create({ data: { orgId: world.chainId, storeId: world.stores.SH, customerId: referrer, status: 'COMPLETED', totalMinor: amount, scheduledStart: at, scheduledEnd: new Date(at.getTime() + 3_600_000), completedAt: at } });
    }
    const profile = `query($id: ID!) { node(id: $id) { ... on Customer { referralProfile {
      convertedReferrals pendingReferrals spendLast12Months { amount } partnerLevel { code } nextPartnerLevel { code } referralsToNextLevel spendToNextLevel { amount } } } } }`;
    const before = await call(api, profile, { id: gid('Customer', referrer) }, { kind: 'CUSTOMER', orgId: world.chainId, customerId: referrer });
    expect(before.referralProfile).toEqual({
      convertedReferrals: 3, pendingReferrals: 0, spendLast12Months: { amount: '3500.00' }, partnerLevel: { code: 'SILVER' }, nextPartnerLevel: { code: 'GOLD' },
      referralsToNextLevel: 2, spendToNextLevel: { amount: '6500.00' },
    });

    // A fourth newcomer qualifies for real: the SILVER referrer earns the base reward plus 10%; the newcomer the base.
    const newcomer = await newCustomer(world);
    expect((await claim(api, { code: await codeOf(api.owner, referrer), customerId: newcomer })).userErrors).toEqual([]);
    const pending = await call(api, profile, { id: gid('Customer', referrer) }, 'OWNER');
    expect(pending.referralProfile.pendingReferrals).toBe(1);
    await completeVisit(world, newcomer, '300.00');
    await api.drainJobs();
    const rewarded = await api.owner.referral.findFirstOrThrow({ where: { refereeId: newcomer } });
    expect([rewarded.status, rewarded.referrerPoints, rewarded.refereePoints]).toEqual(['REWARDED', 550, 500]);
    const after = await call(api, profile, { id: gid('Customer', referrer) }, 'OWNER');
    expect([after.referralProfile.convertedReferrals, after.referralProfile.pendingReferrals, after.referralProfile.referralsToNextLevel]).toEqual([4, 0, 1]);
    // The newcomer's profile says who referred them.
    const theirs = await call(api, `query($id: ID!) { node(id: $id) { ... on Customer { referralProfile { partnerLevel { code } referredBy { status referrer { id } } } } } }`,
      { id: gid('Customer', newcomer) }, 'FRONT_DESK');
    expect(theirs.referralProfile).toEqual({ partnerLevel: null, referredBy: { status: 'REWARDED', referrer: { id: gid('Customer', referrer) } } });
  });
});

describe('statements', () => {
  const PAGE = `query($first: Int!) { customers(first: $first, orderBy: { field: CREATED_AT, direction: DESC }) { edges { node {
    name referralProfile { code convertedReferrals partnerLevel { code } spendLast12Months { amount }
      referredBy { status refereeName referrer { name } qualifyingVisit { status } } } } } } }`;

  test('Customer.referralProfile costs the same statements for 10 and for 50 customers', async () => {
    const { api } = world;
    // The newest customers: three referred ones (one qualified with its visit), so every nested field loads on both pages.
    const referrer = await newCustomer(world, { createdAt: new Date(Date.now() - DAY_MS) });
    for (const qualified of [true, false, false]) {
      const referee = await newCustomer(world);
      expect((await claim(api, { code: await codeOf(api.owner, referrer), customerId: referee })).userErrors).toEqual([]);
      if (qualified) await completeVisit(world, referee, '300.00');
    }
    await api.drainJobs();
    const stats = api.running.platform.dbs.stats;
    const measure = async (first: number) => {
      await api.gql(PAGE, { first });
      stats.trace = [];
      const result = await api.gql(PAGE, { first });
      const trace = stats.trace.filter((s) => !s.sql.includes("set_config('app.org_id'"));
      stats.trace = null;
      expect(result.errors).toBeUndefined();
      const nodes = result.data.customers.edges.map((e: any) => e.node);
      if (process.env.SHOW_TRACE) console.log(trace.map((s) => `${s.rows} ${s.sql.slice(0, 160)}`).join('\n'));
      return { customers: nodes.length, referred: nodes.filter((n: any) => n.referralProfile.referredBy).length, statements: trace.length };
    };
    const at10 = await measure(10);
    const at50 = await measure(50);
    expect([at10.customers, at50.customers]).toEqual([10, 50]);
    expect(at10.referred).toBeGreaterThanOrEqual(3);
    expect(at50.statements).toBe(at10.statements);
    console.log(`Customer.referralProfile: ${at10.statements} statements at 10 customers, ${at50.statements} at 50 (${at50.referred} referred)`);
  });
});
