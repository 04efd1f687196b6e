import { Prisma } from '../../core/db/generated/client.ts';

export const PERIODS = ['DAY', 'WEEK', 'MONTH', 'QUARTER', 'YEAR'] as const;
export type Period = (typeof PERIODS)[number];

/** date_trunc field and step of each period. Weeks start on Monday (ISO), as date_trunc('week') does. */
export const PERIOD_SQL: Record<Period, { field: string; step: string }> = {
  DAY: { field: 'day', step: '1 day' },
  WEEK: { field: 'week', step: '7 days' },
  MONTH: { field: 'month', step: '1 month' },
  QUARTER: { field: 'quarter', step: '3 months' },
  YEAR: { field: 'year', step: '1 year' },
};

/** The trailing window of LTV, repurchase rate: the 365 days ending with the period's last day. */
export const TRAILING_DAYS = 365;

export interface MetricsParams {
  orgId: string;
  /** null: every store of the organization. */
  storeIds: string[] | null;
  from: string;
  to: string;
  period: Period;
  /** Overrides the organization's churn threshold for this request. */
  churnDays: number | null;
  /** Used where the organization has no settings of its own. */
  defaults: { churnDays: number; lostDays: number; topCustomerPercent: number };
  includeTotal: boolean;
}

export interface MetricsRow {
  storeId: string | null;
  storeCode: string | null;
  timezone: string | null;
  periodStart: string;
  periodEnd: string;
  revenue: bigint;
  visits: number;
  customers: number;
  newCustomers: number;
  repurchasers: number;
  activeAtStart: number;
  churned: number;
  atRisk: number;
  customersToDate: number;
  revenueToDate: bigint;
  trailingCustomers: number;
  trailingRevenue: bigint;
  topCustomers: number;
  topRevenue: bigint;
  churnDays: number;
  lostDays: number;
  topPercent: number;
}

/**
 * Every metric of every (store, period) and of the stores combined, in ONE statement. See the schema's descriptions
 * (StoreMetrics) for the definitions. Outline:
 *  - v: the scope's completed visits up to the last period's end, each with its local day in its store's time zone,
 *    read once in customer order;
 *  - cw: one row per (scope, customer, local day) — scope a store, or NULL for the stores combined — with the
 *    customer's previous and next visit day in that scope and whether it is their first (window functions);
 *  - in-period figures group cw's rows by (scope, date_trunc(period, day)), no join against the periods: a customer's
 *    first row in a period counts them (its previous day is before the period), the next and previous days decide
 *    repurchase; only the top customers need a per-customer sum;
 *  - figures "as of the period end" (at risk, active, customers and revenue to date, trailing 365 days) are intervals of
 *    days per row (e.g. at risk from day+churnDays until the next visit); each becomes +1 at the period holding its
 *    first day and −1 at the period holding the day after its last (rows with the same marks are counted together
 *    first), and a running sum over periods counts the intervals that hold each period's last day;
 *  - churned in a period: customers active at its start (a visit in the churnDays before it) whose churnDays mark
 *    without a visit falls inside it.
 */
export function metricsSql(p: MetricsParams): Prisma.Sql {
  const { field, step } = PERIOD_SQL[p.period];
  // On timestamp, not date: a date would be cast to timestamptz, costing two time zone conversions per call.
  const trunc = (date: Prisma.Sql) => Prisma.sql`date_trunc(${field}::text, (${date})::timestamp)::date`;
  return Prisma.sql`
WITH
-- Thresholds: the organization's settings, else the configured defaults; the request may override the churn days.
cfg AS (
  SELECT churn, greatest(lost, churn + 1) AS lost, top FROM (
    SELECT coalesce(${p.churnDays}::int, s.churn_days, ${p.defaults.churnDays}::int) AS churn,
           coalesce(s.lost_days, ${p.defaults.lostDays}::int) AS lost,
           coalesce(s.top_customer_percent, ${p.defaults.topCustomerPercent}::int) AS top
    FROM (SELECT 1) one LEFT JOIN insights_settings s ON s.org_id = ${p.orgId}::uuid
  ) t
),
b AS (
  SELECT ${trunc(Prisma.sql`${p.from}::date`)} AS first_ps,
         (date_trunc(${field}::text, ${p.to}::date::timestamp) + ${step}::interval - interval '1 day')::date AS last_pe,
         (date_trunc(${field}::text, ${p.from}::date::timestamp) - ${step}::interval)::date AS p0
),
-- The periods asked for, and the one before (its end is the first period's start).
p AS (
  SELECT ps::date AS ps, (ps + ${step}::interval - interval '1 day')::date AS pe, ps::date >= b.first_ps AS wanted
  FROM b, generate_series(b.p0::timestamp, b.last_pe::timestamp, ${step}::interval) ps
),
st AS (
  SELECT s.id, s.code, s.timezone, ((SELECT last_pe FROM b) + 1)::timestamp AT TIME ZONE s.timezone AS until
  FROM store s
  WHERE s.org_id = ${p.orgId}::uuid AND (${p.storeIds}::uuid[] IS NULL OR s.id = ANY(${p.storeIds}::uuid[]))
),
-- Completed visits up to the last period's end, with their day in their store's time zone; read once, in customer order.
v AS MATERIALIZED (
  SELECT v.customer_id, v.store_id, (v.completed_at AT TIME ZONE st.timezone)::date AS d, v.total_minor
  FROM visit v JOIN st ON st.id = v.store_id
  WHERE v.org_id = ${p.orgId}::uuid AND v.status = 'COMPLETED' AND v.completed_at < st.until
  ORDER BY v.customer_id, d
),
-- One row per (scope, customer, day): scope is a store, or NULL for the stores combined.
cw AS MATERIALIZED (
  SELECT scope, customer_id, d, amt, n, lag(d) OVER w AS prev_d, lead(d) OVER w AS next_d, row_number() OVER w = 1 AS is_first
  FROM (SELECT store_id AS scope, customer_id, d, sum(total_minor)::bigint AS amt, count(*)::int AS n FROM v GROUP BY customer_id, store_id, d) x
  WINDOW w AS (PARTITION BY customer_id, scope ORDER BY d)
  UNION ALL
  SELECT NULL::uuid, customer_id, d, amt, n, lag(d) OVER w, lead(d) OVER w, row_number() OVER w = 1
  FROM (SELECT customer_id, d, sum(total_minor)::bigint AS amt, count(*)::int AS n FROM v WHERE ${p.includeTotal}::boolean GROUP BY customer_id, d) x
  WINDOW w AS (PARTITION BY customer_id ORDER BY d)
),
-- The rows of the wanted periods. A row is its customer's first in the period when the previous visit day is before
-- the period; that customer repurchases when that row holds two visits, another day of theirs follows in the period, or
-- the previous visit is within the 365 days ending on the period's last day. All per row: no per-customer grouping.
pr AS NOT MATERIALIZED (
  SELECT cw.scope, cw.customer_id, cw.amt, cw.n, cw.is_first, cw.prev_d, cw.next_d, x.ps,
         (x.ps + ${step}::interval - interval '1 day')::date AS pe
  FROM cw CROSS JOIN LATERAL (SELECT ${trunc(Prisma.sql`cw.d`)} AS ps) x
  WHERE cw.d >= (SELECT first_ps FROM b)
),
inp AS (
  SELECT scope, ps, sum(amt)::bigint AS revenue, sum(n)::int AS visits,
         count(*) FILTER (WHERE prev_d IS NULL OR prev_d < ps)::int AS customers,
         count(*) FILTER (WHERE is_first)::int AS new_customers,
         count(*) FILTER (WHERE (prev_d IS NULL OR prev_d < ps)
                            AND (n >= 2 OR next_d <= pe OR prev_d > pe - ${TRAILING_DAYS}::int))::int AS repurchasers
  FROM pr GROUP BY scope, ps
),
-- The top customers need each customer's spend in the period, ranked.
top AS (
  SELECT scope, ps, count(*) FILTER (WHERE rank <= top_n)::int AS top_customers,
         coalesce(sum(amt) FILTER (WHERE rank <= top_n), 0)::bigint AS top_revenue
  FROM (
    SELECT scope, ps, amt, row_number() OVER (PARTITION BY scope, ps ORDER BY amt DESC, customer_id) AS rank,
           ceil(count(*) OVER (PARTITION BY scope, ps) * (SELECT top FROM cfg) / 100.0) AS top_n
    FROM (SELECT scope, ps, customer_id, sum(amt) AS amt FROM pr GROUP BY scope, ps, customer_id) pc
  ) ranked
  GROUP BY scope, ps
),
-- Each row starts or ends intervals of period-end days E (a period holds E when its last day does):
--   active (a visit in the churn days up to E)   [d, min(next − 1, d + churn − 1)]
--   at risk (churn or more days without one)      [d + churn, min(next − 1, d + lost − 1)]  when next > d + churn
--   customer of the trailing 365 days             [d, min(next − 1, d + 364)]
--   revenue of the trailing 365 days              [d, d + 364]
--   customer and revenue to date                  [d, ∞)  (customers: the first visit's row only)
-- marked at the period holding the first day (on) and at the period holding the day after the last (off), both
-- clamped to the period before the first; a running sum over the periods then counts the intervals holding each E.
-- And the churn mark: d + churn inside a wanted period, when d is before that period.
mk AS (
  SELECT cw.scope, cw.amt, cw.is_first,
    greatest(${trunc(Prisma.sql`cw.d`)}, b.p0) AS on_ps,
    CASE WHEN least(cw.next_d, cw.d + cfg.churn) <= b.last_pe THEN greatest(${trunc(Prisma.sql`least(cw.next_d, cw.d + cfg.churn)`)}, b.p0) END AS active_off,
    CASE WHEN lapsed AND cw.d + cfg.churn <= b.last_pe THEN greatest(${trunc(Prisma.sql`cw.d + cfg.churn`)}, b.p0) END AS risk_on,
    CASE WHEN lapsed AND least(cw.next_d, cw.d + cfg.lost) <= b.last_pe THEN greatest(${trunc(Prisma.sql`least(cw.next_d, cw.d + cfg.lost)`)}, b.p0) END AS risk_off,
    CASE WHEN least(cw.next_d, cw.d + ${TRAILING_DAYS}::int) <= b.last_pe THEN greatest(${trunc(Prisma.sql`least(cw.next_d, cw.d + ${TRAILING_DAYS}::int)`)}, b.p0) END AS trail_off,
    CASE WHEN cw.d + ${TRAILING_DAYS}::int <= b.last_pe THEN greatest(${trunc(Prisma.sql`cw.d + ${TRAILING_DAYS}::int`)}, b.p0) END AS trail_rev_off,
    CASE WHEN lapsed AND cw.d + cfg.churn BETWEEN b.first_ps AND b.last_pe AND cw.d < ${trunc(Prisma.sql`cw.d + cfg.churn`)}
         THEN ${trunc(Prisma.sql`cw.d + cfg.churn`)} END AS churn_ps
  FROM cw CROSS JOIN b CROSS JOIN cfg, LATERAL (SELECT cw.next_d IS NULL OR cw.next_d > cw.d + cfg.churn AS lapsed) l
),
-- Rows with the same marks first (a few thousand combinations), then a few rows per scope and period.
marks AS (
  SELECT scope, on_ps, active_off, risk_on, risk_off, trail_off, trail_rev_off, churn_ps,
         sum(cnt)::int AS cnt, sum(amt)::bigint AS amt, sum(firsts)::int AS firsts
  FROM (
    SELECT scope, on_ps, active_off, risk_on, risk_off, trail_off, trail_rev_off, churn_ps,
           count(*) AS cnt, sum(amt) AS amt, count(*) FILTER (WHERE is_first) AS firsts
    FROM mk GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
  ) combinations
  GROUP BY GROUPING SETS ((scope, on_ps), (scope, active_off), (scope, risk_on), (scope, risk_off), (scope, trail_off),
                         (scope, trail_rev_off), (scope, churn_ps))
),
scopes AS (SELECT id AS scope FROM st UNION ALL SELECT NULL WHERE ${p.includeTotal}::boolean AND EXISTS (SELECT 1 FROM st)),
states AS (
  SELECT sc.scope, p.ps, p.pe, p.wanted,
    coalesce(sum(m.cnt) FILTER (WHERE m.on_ps <= p.ps), 0) - coalesce(sum(m.cnt) FILTER (WHERE m.active_off <= p.ps), 0) AS active,
    coalesce(sum(m.cnt) FILTER (WHERE m.risk_on <= p.ps), 0) - coalesce(sum(m.cnt) FILTER (WHERE m.risk_off <= p.ps), 0) AS at_risk,
    coalesce(sum(m.cnt) FILTER (WHERE m.on_ps <= p.ps), 0) - coalesce(sum(m.cnt) FILTER (WHERE m.trail_off <= p.ps), 0) AS trail,
    coalesce(sum(m.cnt) FILTER (WHERE m.churn_ps = p.ps), 0) AS churned,
    coalesce(sum(m.firsts) FILTER (WHERE m.on_ps <= p.ps), 0) AS customers_to_date,
    coalesce(sum(m.amt) FILTER (WHERE m.on_ps <= p.ps), 0) AS revenue_to_date,
    coalesce(sum(m.amt) FILTER (WHERE m.on_ps <= p.ps), 0) - coalesce(sum(m.amt) FILTER (WHERE m.trail_rev_off <= p.ps), 0) AS trail_revenue
  FROM p CROSS JOIN scopes sc
  LEFT JOIN marks m ON m.scope IS NOT DISTINCT FROM sc.scope
    AND coalesce(m.on_ps, m.active_off, m.risk_on, m.risk_off, m.trail_off, m.trail_rev_off, m.churn_ps) <= p.ps
  GROUP BY sc.scope, p.ps, p.pe, p.wanted
),
full_states AS (
  SELECT s.*, lag(active) OVER (PARTITION BY scope ORDER BY ps) AS active_at_start FROM states s
)
SELECT s.scope AS "storeId", st.code AS "storeCode", st.timezone,
       to_char(s.ps, 'YYYY-MM-DD') AS "periodStart", to_char(s.pe, 'YYYY-MM-DD') AS "periodEnd",
       coalesce(i.revenue, 0)::bigint AS revenue, coalesce(i.visits, 0) AS visits, coalesce(i.customers, 0) AS customers,
       coalesce(i.new_customers, 0) AS "newCustomers", coalesce(i.repurchasers, 0) AS repurchasers,
       s.active_at_start::int AS "activeAtStart", s.churned::int AS churned, s.at_risk::int AS "atRisk",
       s.customers_to_date::int AS "customersToDate", s.revenue_to_date::bigint AS "revenueToDate",
       s.trail::int AS "trailingCustomers", s.trail_revenue::bigint AS "trailingRevenue",
       coalesce(t.top_customers, 0) AS "topCustomers", coalesce(t.top_revenue, 0)::bigint AS "topRevenue",
       cfg.churn AS "churnDays", cfg.lost AS "lostDays", cfg.top AS "topPercent"
FROM full_states s CROSS JOIN cfg
LEFT JOIN st ON st.id = s.scope
LEFT JOIN inp i ON i.scope IS NOT DISTINCT FROM s.scope AND i.ps = s.ps
LEFT JOIN top t ON t.scope IS NOT DISTINCT FROM s.scope AND t.ps = s.ps
WHERE s.wanted
ORDER BY s.ps, st.code NULLS LAST`;
}
