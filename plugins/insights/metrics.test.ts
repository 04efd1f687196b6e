/**
 * Store metrics: every figure checked against known answers on a hand-made chain (visits on both sides of a local
 * midnight and of a month end, in Shanghai, Chongqing and Ürümqi time), and against an independent SQL computation —
 * plain per-period predicates, no shared code — on generated data with many visits near local midnights and month
 * ends, for DAY, WEEK, MONTH, QUARTER and YEAR. Also: who sees which stores, one statement per request, and figures
 * contributed by the points plugin.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import type { Prisma } from '../../core/db/generated/client.ts';
import { gid, startTestPlatform, type TestPlatform } from '../../core/testing/platform.ts';
import { PERIOD_SQL, TRAILING_DAYS, type Period } from './metrics-sql.ts';
import { periodsCovering } from './dates.ts';
import { call, local, mulberry32, newChain, STORES, traced, type Chain, type StoreCode } from './testing.ts';

let api: TestPlatform;
let known: Chain;
let generated: Chain;

const METRICS = `query($from: Date!, $to: Date!, $period: InsightsPeriod, $storeIds: [ID!], $includeTotal: Boolean, $churnDays: Int) {
  storeMetrics(from: $from, to: $to, period: $period, storeIds: $storeIds, includeTotal: $includeTotal, churnDays: $churnDays) {
    storeCode timeZone periodStart periodEnd
    revenue { minorUnits amount } visits uniqueCustomers averageTicket { minorUnits } newCustomers returningCustomers
    repurchaseCustomers repurchaseRate activeCustomersAtStart churnedCustomers churnRate atRiskCustomers
    customersToDate lifetimeValue { minorUnits } trailing12MonthCustomers trailing12MonthValue { minorUnits }
    topCustomers topCustomersRevenueShare churnDays lostDays topCustomerPercent
  }
}`;

beforeAll(async () => {
  api = await startTestPlatform({ plugins: ['points', 'insights'] });
  known = await newChain(api.owner, 'Known answers');
  await arrangeKnown(known);
  generated = await newChain(api.owner, 'Generated');
  await arrangeGenerated(generated, 20261123);
}, 180_000);
afterAll(() => api?.close());

// --- Known answers ------------------------------------------------------------------------------------------------
// A: Ürümqi Jan 31 23:30 (UTC+6; already Feb 1 in Shanghai), Shanghai Feb 1 00:30 (still Jan 31 in UTC), and a
//    refunded Shanghai visit (never counted). B: Chongqing Feb 28 23:59:59, Mar 1 00:00, Mar 2. C: Shanghai Jan 28 and Mar 10.
async function arrangeKnown(chain: Chain) {
  const a = await chain.customer({ home: 'UR', name: 'A' });
  const b = await chain.customer({ home: 'CD', name: 'B' });
  const c = await chain.customer({ home: 'SH', name: 'C' });
  await chain.visit(a, 'UR', local('2026-01-31T23:30:00', 'Asia/Urumqi'), 10_000);
  await chain.visit(a, 'SH', local('2026-02-01T00:30:00', 'Asia/Shanghai'), 20_000);
  await chain.visit(a, 'SH', local('2026-02-10T12:00:00', 'Asia/Shanghai'), 99_900, 'REFUNDED');
  await chain.visit(a, 'SH', local('2026-02-11T12:00:00', 'Asia/Shanghai'), 88_800, 'CANCELLED');
  await chain.visit(b, 'CD', local('2026-02-28T23:59:59', 'Asia/Chongqing'), 30_000);
  await chain.visit(b, 'CD', local('2026-03-01T00:00:00', 'Asia/Chongqing'), 40_000);
  await chain.visit(b, 'CD', local('2026-03-02T10:00:00', 'Asia/Chongqing'), 50_000);
  await chain.visit(c, 'SH', local('2026-01-28T12:00:00', 'Asia/Shanghai'), 60_000);
  await chain.visit(c, 'SH', local('2026-03-10T12:00:00', 'Asia/Shanghai'), 70_000);
}

describe('known answers', () => {
  const row = (rows: any[], store: string | null, start: string) => rows.find((r) => r.storeCode === store && r.periodStart === start);

  test('the instants really are on both sides of the edges', () => {
    expect(local('2026-01-31T23:30:00', 'Asia/Urumqi').toISOString()).toBe('2026-01-31T17:30:00.000Z');
    expect(local('2026-02-01T00:30:00', 'Asia/Shanghai').toISOString()).toBe('2026-01-31T16:30:00.000Z');
    expect(local('2026-03-01T00:00:00', 'Asia/Chongqing').toISOString()).toBe('2026-02-28T16:00:00.000Z');
  });

  test('months, per store and for the chain, with a 7-day churn threshold', async () => {
    const { storeMetrics: rows } = await call(api, METRICS, { from: '2026-01-01', to: '2026-03-31', period: 'MONTH', churnDays: 7 }, known.owner);
    expect(rows.map((r: any) => `${r.periodStart} ${r.storeCode ?? 'ALL'}`)).toEqual(
      ['2026-01-01', '2026-02-01', '2026-03-01'].flatMap((m) => ['CD', 'SH', 'UR', 'ALL'].map((s) => `${m} ${s}`)),
    );
    const pick = (r: any) => ({
      revenue: Number(r.revenue.minorUnits), visits: r.visits, customers: r.uniqueCustomers, new: r.newCustomers, returning: r.returningCustomers,
      repurchasers: r.repurchaseCustomers, active: r.activeCustomersAtStart, churned: r.churnedCustomers, atRisk: r.atRiskCustomers,
      toDate: r.customersToDate, ltv: r.lifetimeValue && Number(r.lifetimeValue.minorUnits), top: r.topCustomers, topShare: r.topCustomersRevenueShare,
    });
    // Ürümqi keeps A's 23:30 visit in January; Shanghai counts A's 00:30 visit in February.
    expect(pick(row(rows, 'UR', '2026-01-01'))).toMatchObject({ revenue: 10_000, visits: 1, customers: 1, new: 1 });
    expect(pick(row(rows, 'UR', '2026-02-01'))).toMatchObject({ revenue: 0, visits: 0, customers: 0, atRisk: 1, active: 1, churned: 1 });
    expect(pick(row(rows, 'SH', '2026-01-01'))).toMatchObject({ revenue: 60_000, visits: 1, customers: 1, new: 1 });
    expect(pick(row(rows, 'SH', '2026-02-01'))).toMatchObject({ revenue: 20_000, visits: 1, customers: 1, new: 1, repurchasers: 0 });
    expect(pick(row(rows, 'SH', '2026-03-01'))).toMatchObject({ revenue: 70_000, visits: 1, customers: 1, new: 0, returning: 1, repurchasers: 1 });
    expect(pick(row(rows, 'CD', '2026-02-01'))).toMatchObject({ revenue: 30_000, visits: 1, customers: 1, new: 1 });
    expect(pick(row(rows, 'CD', '2026-03-01'))).toMatchObject({ revenue: 90_000, visits: 2, customers: 1, new: 0, repurchasers: 1, active: 1, churned: 0 });

    expect(pick(row(rows, null, '2026-01-01'))).toEqual({
      revenue: 70_000, visits: 2, customers: 2, new: 2, returning: 0, repurchasers: 0, active: 0, churned: 0,
      atRisk: 0, toDate: 2, ltv: 35_000, top: 1, topShare: 60_000 / 70_000, // on Jan 31, C (Jan 28) is not yet 7 days quiet
    });
    expect(pick(row(rows, null, '2026-02-01'))).toEqual({
      revenue: 50_000, visits: 2, customers: 2, new: 1, returning: 1, repurchasers: 1, // A: Jan 31 and Feb 1; B: one visit
      active: 2, churned: 1, // A and C were active in the 7 days before Feb 1; C's 7th quiet day (Feb 4) fell in February
      atRisk: 2, toDate: 3, ltv: 40_000, top: 1, topShare: 0.6, // A (last Feb 1) and C (Jan 28) at Feb 28; B came that day
    });
    expect(pick(row(rows, null, '2026-03-01'))).toEqual({
      revenue: 160_000, visits: 3, customers: 2, new: 0, returning: 2, repurchasers: 2,
      active: 1, churned: 0, // only B was active (Feb 28), and came back on Mar 1
      atRisk: 3, toDate: 3, ltv: 93_333, top: 1, topShare: 90_000 / 160_000,
    });
    const march = row(rows, null, '2026-03-01');
    expect(march.averageTicket.minorUnits).toBe('53333'); // 160000 / 3, half up
    expect(march.repurchaseRate).toBe(1);
    expect(march.churnRate).toBe(0);
    expect(row(rows, null, '2026-02-01').churnRate).toBe(0.5);
    expect(march).toMatchObject({ churnDays: 7, lostDays: 365, topCustomerPercent: 15, timeZone: null, periodEnd: '2026-03-31' });
    expect(row(rows, 'UR', '2026-01-01')).toMatchObject({ timeZone: 'Asia/Urumqi', periodEnd: '2026-01-31' });
  });

  test('days across the local midnights', async () => {
    const { storeMetrics: rows } = await call(api, METRICS, { from: '2026-01-31', to: '2026-03-01', period: 'DAY' }, known.owner);
    const revenue = (store: string | null, day: string) => Number(row(rows, store, day).revenue.minorUnits);
    expect(revenue(null, '2026-01-31')).toBe(10_000); // A at Ürümqi 23:30 local
    expect(revenue(null, '2026-02-01')).toBe(20_000); // A at Shanghai 00:30 local — Jan 31 in UTC
    expect(revenue('UR', '2026-02-01')).toBe(0);
    expect(revenue('CD', '2026-02-28')).toBe(30_000); // 23:59:59
    expect(revenue('CD', '2026-03-01')).toBe(40_000); // 00:00:00
    expect(rows.filter((r: any) => r.storeCode === null).reduce((sum: number, r: any) => sum + Number(r.revenue.minorUnits), 0)).toBe(100_000);
  });

  test('weeks start on Monday', async () => {
    const { storeMetrics: rows } = await call(api, METRICS, { from: '2026-01-28', to: '2026-02-03', period: 'WEEK', includeTotal: false }, known.owner);
    // 2026-01-28 is a Wednesday: its week starts Monday 2026-01-26 and holds A's Jan 31 and Feb 1 visits; 2026-02-02 starts the next.
    expect([...new Set(rows.map((r: any) => r.periodStart))]).toEqual(['2026-01-26', '2026-02-02']);
    expect(rows.every((r: any) => r.storeCode !== null)).toBe(true);
    expect(Number(row(rows, 'SH', '2026-01-26').revenue.minorUnits)).toBe(80_000);
    expect(row(rows, 'SH', '2026-01-26').periodEnd).toBe('2026-02-01');
  });
});

// --- Generated data against an independent computation -------------------------------------------------------------

async function arrangeGenerated(chain: Chain, seed: number) {
  const random = mulberry32(seed);
  const codes = STORES.map((s) => s.code);
  const tz = Object.fromEntries(STORES.map((s) => [s.code, s.timezone])) as Record<StoreCode, string>;
  const start = Date.UTC(2024, 9, 1);
  const end = Date.UTC(2026, 10, 1);
  const rows: Prisma.VisitCreateManyInput[] = [];
  for (let i = 0; i < 140; i++) {
    const home = codes[i % codes.length]!;
    const customerId = await chain.customer({ home });
    // Each customer comes every `cadence` days on average, from a start to a stop: lapses and returns happen.
    const cadence = 5 + random() * 70;
    let t = start + random() * (end - start) * 0.7;
    const stop = t + random() * (end - start);
    while (t < Math.min(stop, end)) {
      const store = random() < 0.8 ? home : codes[Math.floor(random() * codes.length)]!;
      let day = new Date(t).toISOString().slice(0, 10);
      if (random() < 0.2) {
        // The last or first day of a month.
        const d = new Date(t);
        day = random() < 0.5 ? new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).toISOString().slice(0, 10) : `${day.slice(0, 7)}-01`;
      }
      const nearMidnight = random() < 0.4;
      const minute = nearMidnight ? (random() < 0.5 ? 23 * 60 + Math.floor(random() * 60) : Math.floor(random() * 60)) : 600 + Math.floor(random() * 660);
      const at = local(`${day}T${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}:${String(Math.floor(random() * 60)).padStart(2, '0')}`, tz[store]);
      const roll = random();
      const status = roll < 0.05 ? 'REFUNDED' : roll < 0.1 ? 'CANCELLED' : 'COMPLETED';
      rows.push({
        orgId: chain.orgId, storeId: chain.stores[store], customerId, status,
        scheduledStart: new Date(at.getTime() - 3_600_000), scheduledEnd: at,
        completedAt: status === 'CANCELLED' ? null : at, cancelledAt: status === 'CANCELLED' ? at : null,
        refundedAt: status === 'REFUNDED' ? at : null,
        totalMinor: 5_000 + Math.floor(random() * random() * 300_000),
      });
      t += (0.2 + random() * 1.8) * cadence * 86_400_000;
    }
  }
  await api.owner.visit.createMany({ data: rows });
}

interface Expected {
  code: string | null; ps: string; pe: string; revenue: bigint; visits: number; customers: number; newCustomers: number; repurchasers: number;
  active: number; churned: number; atRisk: number; toDate: number; revenueToDate: bigint; trailing: number; trailingRevenue: bigint;
  top: number; topRevenue: bigint;
}

/** The figures straight from their definitions, one scope and period at a time. */
function independent(orgId: string, period: Period, from: string, to: string, churn: number, lost: number, top: number) {
  const { field, step } = PERIOD_SQL[period];
  const covered = periodsCovering(from, to, period);
  return api.owner.$queryRaw<Expected[]>`
    WITH lv AS (
      SELECT v.store_id, v.customer_id, v.total_minor::bigint AS amt, (v.completed_at AT TIME ZONE s.timezone)::date AS d
      FROM visit v JOIN store s ON s.id = v.store_id WHERE v.org_id = ${orgId}::uuid AND v.status = 'COMPLETED'
    ),
    scopes AS (SELECT id AS scope, code FROM store WHERE org_id = ${orgId}::uuid UNION ALL SELECT NULL, NULL),
    sv AS (SELECT sc.scope, lv.* FROM scopes sc JOIN lv ON sc.scope IS NULL OR lv.store_id = sc.scope),
    periods AS (
      SELECT gs::date AS ps, (gs + ${step}::interval - interval '1 day')::date AS pe
      FROM generate_series(${covered.first}::date::timestamp, ${covered.last}::date::timestamp, ${step}::interval) gs
      WHERE gs = date_trunc(${field}::text, gs)
    ),
    grid AS (SELECT sc.scope, sc.code, p.ps, p.pe FROM scopes sc CROSS JOIN periods p),
    pcs AS (
      SELECT g.scope, g.ps, sv.customer_id, sum(sv.amt) AS spend, count(*)::int AS n
      FROM grid g JOIN sv ON sv.scope IS NOT DISTINCT FROM g.scope AND sv.d BETWEEN g.ps AND g.pe GROUP BY 1, 2, 3
    )
    SELECT g.code, to_char(g.ps, 'YYYY-MM-DD') AS ps, to_char(g.pe, 'YYYY-MM-DD') AS pe,
      coalesce((SELECT sum(spend) FROM pcs WHERE pcs.scope IS NOT DISTINCT FROM g.scope AND pcs.ps = g.ps), 0)::bigint AS revenue,
      coalesce((SELECT sum(n) FROM pcs WHERE pcs.scope IS NOT DISTINCT FROM g.scope AND pcs.ps = g.ps), 0)::int AS visits,
      (SELECT count(*) FROM pcs WHERE pcs.scope IS NOT DISTINCT FROM g.scope AND pcs.ps = g.ps)::int AS customers,
      (SELECT count(*) FROM pcs WHERE pcs.scope IS NOT DISTINCT FROM g.scope AND pcs.ps = g.ps AND NOT EXISTS (
         SELECT 1 FROM sv y WHERE y.scope IS NOT DISTINCT FROM g.scope AND y.customer_id = pcs.customer_id AND y.d < g.ps))::int AS "newCustomers",
      (SELECT count(*) FROM pcs WHERE pcs.scope IS NOT DISTINCT FROM g.scope AND pcs.ps = g.ps AND (
         SELECT count(*) FROM sv y WHERE y.scope IS NOT DISTINCT FROM g.scope AND y.customer_id = pcs.customer_id
           AND y.d > least(g.ps - 1, g.pe - ${TRAILING_DAYS}::int) AND y.d <= g.pe) >= 2)::int AS repurchasers,
      (SELECT count(DISTINCT x.customer_id) FROM sv x WHERE x.scope IS NOT DISTINCT FROM g.scope AND x.d BETWEEN g.ps - ${churn}::int AND g.ps - 1)::int AS active,
      (SELECT count(*) FROM (SELECT x.customer_id, max(x.d) AS last_before FROM sv x WHERE x.scope IS NOT DISTINCT FROM g.scope AND x.d < g.ps GROUP BY 1) lb
        WHERE lb.last_before >= g.ps - ${churn}::int AND lb.last_before + ${churn}::int <= g.pe AND NOT EXISTS (
          SELECT 1 FROM sv y WHERE y.scope IS NOT DISTINCT FROM g.scope AND y.customer_id = lb.customer_id
            AND y.d > lb.last_before AND y.d <= lb.last_before + ${churn}::int))::int AS churned,
      (SELECT count(*) FROM (SELECT x.customer_id, max(x.d) AS last FROM sv x WHERE x.scope IS NOT DISTINCT FROM g.scope AND x.d <= g.pe GROUP BY 1) l
        WHERE l.last <= g.pe - ${churn}::int AND l.last > g.pe - ${lost}::int)::int AS "atRisk",
      (SELECT count(DISTINCT x.customer_id) FROM sv x WHERE x.scope IS NOT DISTINCT FROM g.scope AND x.d <= g.pe)::int AS "toDate",
      (SELECT coalesce(sum(x.amt), 0) FROM sv x WHERE x.scope IS NOT DISTINCT FROM g.scope AND x.d <= g.pe)::bigint AS "revenueToDate",
      (SELECT count(DISTINCT x.customer_id) FROM sv x WHERE x.scope IS NOT DISTINCT FROM g.scope
         AND x.d > g.pe - ${TRAILING_DAYS}::int AND x.d <= g.pe)::int AS trailing,
      (SELECT coalesce(sum(x.amt), 0) FROM sv x WHERE x.scope IS NOT DISTINCT FROM g.scope
         AND x.d > g.pe - ${TRAILING_DAYS}::int AND x.d <= g.pe)::bigint AS "trailingRevenue",
      (SELECT count(*) FROM (SELECT row_number() OVER (ORDER BY spend DESC, customer_id) AS r, count(*) OVER () AS n FROM pcs
         WHERE pcs.scope IS NOT DISTINCT FROM g.scope AND pcs.ps = g.ps) t WHERE r <= ceil(n * ${top}::int / 100.0))::int AS top,
      (SELECT coalesce(sum(spend), 0) FROM (SELECT spend, row_number() OVER (ORDER BY spend DESC, customer_id) AS r, count(*) OVER () AS n FROM pcs
         WHERE pcs.scope IS NOT DISTINCT FROM g.scope AND pcs.ps = g.ps) t WHERE r <= ceil(n * ${top}::int / 100.0))::bigint AS "topRevenue"
    FROM grid g ORDER BY g.ps, g.code NULLS LAST`;
}

const halfUp = (total: bigint, n: number) => (n === 0 ? null : String((total * 2n + BigInt(n)) / (2n * BigInt(n))));

describe('generated data against an independent SQL computation', () => {
  test('the generated data has what the edges need', async () => {
    const [edges] = await api.owner.$queryRaw<{ visits: number; nearMidnight: number; monthEdge: number; refunded: number; stores: number }[]>`
      SELECT count(*)::int AS visits,
             count(*) FILTER (WHERE extract(hour FROM v.completed_at AT TIME ZONE s.timezone) IN (23, 0))::int AS "nearMidnight",
             count(*) FILTER (WHERE extract(day FROM v.completed_at AT TIME ZONE s.timezone) = 1
                               OR extract(day FROM (v.completed_at AT TIME ZONE s.timezone) + interval '1 day') = 1)::int AS "monthEdge",
             count(*) FILTER (WHERE v.status = 'REFUNDED')::int AS refunded,
             count(DISTINCT v.store_id)::int AS stores
      FROM visit v JOIN store s ON s.id = v.store_id WHERE v.org_id = ${generated.orgId}::uuid`;
    expect(edges.visits).toBeGreaterThan(1000);
    expect(edges.nearMidnight).toBeGreaterThan(300);
    expect(edges.monthEdge).toBeGreaterThan(100);
    expect(edges.refunded).toBeGreaterThan(20);
    expect(edges.stores).toBe(3);
  });

  const cases: { period: Period; from: string; to: string; churnDays: number }[] = [
    { period: 'DAY', from: '2026-01-25', to: '2026-02-08', churnDays: 30 },
    { period: 'DAY', from: '2025-12-28', to: '2026-01-03', churnDays: 90 },
    { period: 'WEEK', from: '2025-11-20', to: '2026-03-10', churnDays: 30 },
    { period: 'MONTH', from: '2025-01-01', to: '2026-10-31', churnDays: 90 },
    { period: 'MONTH', from: '2025-06-15', to: '2025-09-15', churnDays: 7 },
    { period: 'QUARTER', from: '2025-01-01', to: '2026-09-30', churnDays: 90 },
    { period: 'YEAR', from: '2024-01-01', to: '2026-12-31', churnDays: 60 },
  ];
  test.each(cases)('$period $from – $to, churn after $churnDays days', async ({ period, from, to, churnDays }) => {
    const { storeMetrics: rows } = await call(api, METRICS, { from, to, period, churnDays }, generated.owner);
    const expected = await independent(generated.orgId, period, from, to, churnDays, 365, 15);
    expect(rows.length).toBe(expected.length);
    const actual = rows.map((r: any) => ({
      code: r.storeCode, ps: r.periodStart, pe: r.periodEnd, revenue: r.revenue.minorUnits, visits: r.visits, customers: r.uniqueCustomers,
      averageTicket: r.averageTicket?.minorUnits ?? null, newCustomers: r.newCustomers, returning: r.returningCustomers,
      repurchasers: r.repurchaseCustomers, repurchaseRate: r.repurchaseRate, active: r.activeCustomersAtStart, churned: r.churnedCustomers,
      churnRate: r.churnRate, atRisk: r.atRiskCustomers, toDate: r.customersToDate, ltv: r.lifetimeValue?.minorUnits ?? null,
      trailing: r.trailing12MonthCustomers, ltv12: r.trailing12MonthValue?.minorUnits ?? null, top: r.topCustomers, topShare: r.topCustomersRevenueShare,
    }));
    const want = expected.map((e) => ({
      code: e.code, ps: e.ps, pe: e.pe, revenue: String(e.revenue), visits: e.visits, customers: e.customers,
      averageTicket: halfUp(e.revenue, e.visits), newCustomers: e.newCustomers, returning: e.customers - e.newCustomers,
      repurchasers: e.repurchasers, repurchaseRate: e.customers ? e.repurchasers / e.customers : null, active: e.active, churned: e.churned,
      churnRate: e.active ? e.churned / e.active : null, atRisk: e.atRisk, toDate: e.toDate, ltv: halfUp(e.revenueToDate, e.toDate),
      trailing: e.trailing, ltv12: halfUp(e.trailingRevenue, e.trailing), top: e.top, topShare: e.revenue > 0n ? Number(e.topRevenue) / Number(e.revenue) : null,
    }));
    expect(actual).toEqual(want);
    // The data exercise what is compared: some churn, some risk, some repurchase somewhere.
    if (period === 'MONTH' && churnDays === 90) {
      expect(want.some((w) => w.churned > 0) && want.some((w) => w.atRisk > 0) && want.some((w) => w.repurchasers > 0) && want.some((w) => w.newCustomers > 0)).toBe(true);
    }
  });

  test('the stores combined add up where figures are additive', async () => {
    const { storeMetrics: rows } = await call(api, METRICS, { from: '2025-01-01', to: '2026-10-31', period: 'MONTH' }, generated.owner);
    for (const start of new Set(rows.map((r: any) => r.periodStart))) {
      const stores = rows.filter((r: any) => r.periodStart === start && r.storeCode !== null);
      const total = rows.find((r: any) => r.periodStart === start && r.storeCode === null);
      expect(total.visits).toBe(stores.reduce((s: number, r: any) => s + r.visits, 0));
      expect(BigInt(total.revenue.minorUnits)).toBe(stores.reduce((s: bigint, r: any) => s + BigInt(r.revenue.minorUnits), 0n));
      expect(total.uniqueCustomers).toBeLessThanOrEqual(stores.reduce((s: number, r: any) => s + r.uniqueCustomers, 0));
    }
  });
});

// --- Who sees what ------------------------------------------------------------------------------------------------

describe('visibility', () => {
  let manager: Principal;
  beforeAll(async () => {
    manager = await known.staff('STORE_MANAGER', 'CD');
  });

  test('a store manager sees their store, and their stores combined', async () => {
    const { storeMetrics: rows } = await call(api, METRICS, { from: '2026-03-01', to: '2026-03-31' }, manager);
    expect(rows.map((r: any) => r.storeCode)).toEqual(['CD', null]);
    expect(rows[0].revenue.minorUnits).toBe('90000');
    expect(rows[1].revenue.minorUnits).toBe('90000');
    // Asking for another store of the chain is like asking for nothing.
    const other = await call(api, METRICS, { from: '2026-03-01', to: '2026-03-31', storeIds: [gid('Store', known.stores.SH)] }, manager);
    expect(other.storeMetrics).toEqual([]);
  });

  test('another chain\'s stores and random ids answer alike: nothing', async () => {
    const variables = { from: '2026-03-01', to: '2026-03-31' };
    const foreign = await call(api, METRICS, { ...variables, storeIds: [gid('Store', known.stores.SH)] }, 'OTHER_CHAIN_OWNER');
    const random = await call(api, METRICS, { ...variables, storeIds: [gid('Store', '0b0b0b0b-0000-4000-8000-000000000000')] }, 'OTHER_CHAIN_OWNER');
    expect(foreign.storeMetrics).toEqual([]);
    expect(random.storeMetrics).toEqual(foreign.storeMetrics);
    const ownRandom = await call(api, METRICS, { ...variables, storeIds: [gid('Store', '0b0b0b0b-0000-4000-8000-000000000000')] }, known.owner);
    expect(ownRandom.storeMetrics).toEqual([]);
    // And the other chain's own metrics never include this chain's visits.
    const theirs = await call(api, METRICS, variables, 'OTHER_CHAIN_OWNER');
    expect(theirs.storeMetrics.every((r: any) => r.storeCode !== 'CD' && r.storeCode !== 'UR')).toBe(true);
  });

  test('roles without insights:read are refused with a code', async () => {
    for (const as of ['BEAUTICIAN', 'FRONT_DESK', 'CUSTOMER', 'POS_CLIENT'] as const) {
      const result = await api.gql(METRICS, { from: '2026-03-01', to: '2026-03-31' }, as);
      expect(result.errors?.[0]?.extensions?.code, as).toBe('FORBIDDEN');
    }
    expect((await api.gql(METRICS, { from: '2026-03-01', to: '2026-03-31' }, null)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('bad ranges are refused', async () => {
    const backwards = await api.gql(METRICS, { from: '2026-03-31', to: '2026-03-01' }, known.owner);
    expect(backwards.errors?.[0]?.extensions?.code).toBe('INVALID');
    const tooMany = await api.gql(METRICS, { from: '2020-01-01', to: '2026-03-01', period: 'DAY' }, known.owner);
    expect(tooMany.errors?.[0]?.message).toMatch(/At most 400 day periods/);
    const churn = await api.gql(METRICS, { from: '2026-03-01', to: '2026-03-31', churnDays: 3 }, known.owner);
    expect(churn.errors?.[0]?.extensions?.code).toBe('INVALID');
  });
});

describe('statements and plugin figures', () => {
  test('a metrics request is one SQL statement, whatever the number of periods', async () => {
    const count = async (from: string, to: string, period: Period) => {
      await call(api, METRICS, { from, to, period }, generated.owner); // warm: connections carry the tenant, currency is cached
      const { statements } = await traced(api, () => call(api, METRICS, { from, to, period }, generated.owner));
      return statements;
    };
    const oneMonth = await count('2026-03-01', '2026-03-31', 'MONTH');
    const manyDays = await count('2025-12-01', '2026-03-31', 'DAY');
    expect(oneMonth).toHaveLength(1);
    expect(manyDays).toHaveLength(1);
    expect(oneMonth[0]).toMatch(/FROM visit v JOIN st/);
  });

  test('points contributes issued, redeemed and usage rate per store and combined, as its own metrics compute them', async () => {
    // Members with earned and redeemed points at two stores of the known chain.
    for (const [store, earned, redeemed] of [['SH', 500, 120], ['CD', 300, 0]] as const) {
      const customerId = await known.customer({ home: store });
      const membership = await api.owner.membership.create({
        data: { orgId: known.orgId, customerId, memberNumber: `M-${store}-${customerId.slice(0, 6)}`, joinedOn: new Date('2026-01-01'), homeStoreId: known.stores[store] },
        select: { id: true },
      });
      await api.owner.$executeRaw`INSERT INTO points_account (membership_id, org_id, customer_id) VALUES (${membership.id}::uuid, ${known.orgId}::uuid, ${customerId}::uuid)`;
      const at = local('2026-03-05T12:00:00', 'Asia/Shanghai');
      await api.owner.$executeRaw`
        INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, store_id, actor, created_at)
        VALUES (${known.orgId}::uuid, ${membership.id}::uuid, ${customerId}::uuid, 'EARN', ${earned}, 'VISIT', ${known.stores[store]}::uuid, 'test', ${at})`;
      if (redeemed) {
        await api.owner.$executeRaw`
          INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, store_id, actor, created_at)
          VALUES (${known.orgId}::uuid, ${membership.id}::uuid, ${customerId}::uuid, 'REDEEM', ${-redeemed}, 'REWARD', ${known.stores[store]}::uuid, 'test', ${at})`;
      }
    }
    const WITH_EXTRA = `query { storeMetrics(from: "2026-03-01", to: "2026-03-31") { storeCode extra { name value } } }`;
    const { storeMetrics: rows } = await call(api, WITH_EXTRA, {}, known.owner);
    const extra = (code: string | null) => Object.fromEntries(rows.find((r: any) => r.storeCode === code).extra.map((m: any) => [m.name, m.value]));
    const { pointsMetrics } = await call(api, `query { pointsMetrics(from: "2026-03-01", to: "2026-03-31", period: MONTH) { store { code } issued redeemed usageRate } }`, {}, known.owner);
    const own = (code: string) => pointsMetrics.find((m: any) => m.store?.code === code);
    expect(extra('SH')).toEqual({ 'points.issued': own('SH').issued, 'points.redeemed': own('SH').redeemed, 'points.usageRate': own('SH').usageRate });
    expect(extra('SH')).toEqual({ 'points.issued': 500, 'points.redeemed': 120, 'points.usageRate': 0.24 });
    expect(extra('CD')).toEqual({ 'points.issued': 300, 'points.redeemed': 0, 'points.usageRate': 0 });
    expect(extra(null)).toEqual({ 'points.issued': 800, 'points.redeemed': 120, 'points.usageRate': 0.15 });
    expect(extra('UR')).toEqual({});
  });
});
