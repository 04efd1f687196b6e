import { Prisma } from '../../core/db/generated/client.ts';
import type { Db } from '../../core/db/clients.ts';

export interface TopReferrerRow {
  customerId: string;
  registered: number;
  qualified: number;
}

export interface ReferralMetricsRow {
  storeId: string | null;
  periodStart: string;
  registered: number;
  qualified: number;
  rewarded: number;
  pending: number;
  expired: number;
  rejected: number;
  revenueMinor: bigint;
  payingReferees: number;
  topReferrers: TopReferrerRow[];
}

/**
 * Referral KPIs per store (the referee's home store when they claimed) and period (calendar day, ISO week or month
 * in that store's time zone; the organization's for referees without a home store), in one statement.
 *
 * - Conversion is by claim cohort: of the codes registered (claimed) in a period, how many qualified. `registered`
 *   leaves out REJECTED claims (fraud is not a registration); `qualified` counts QUALIFIED and REWARDED.
 * - Revenue from referred customers: completed visits (refunds excluded) of referees of non-rejected referrals,
 *   completed after their claim, in the period in which they were completed.
 * - Top referrers: by qualified referrals in the period's cohort, then registered, at most `top` per row.
 */
export function referralMetricsQuery(
  db: Pick<Db, '$queryRaw'>,
  args: { orgId: string; orgTimezone: string; from: string; to: string; grain: 'day' | 'week' | 'month'; storeIds: string[] | null; top: number },
) {
  const { orgId, orgTimezone, from, to, grain, storeIds, top } = args;
  return db.$queryRaw<ReferralMetricsRow[]>(Prisma.sql`
    WITH r AS (
      SELECT r.id, r.referrer_id, r.referee_id, r.store_id, r.status, r.claimed_at,
             coalesce(r.store_id::text, '') AS store_key, coalesce(s.timezone, ${orgTimezone}) AS tz
      FROM referral r LEFT JOIN store s ON s.id = r.store_id
      WHERE r.org_id = ${orgId}::uuid AND (${storeIds}::uuid[] IS NULL OR r.store_id = ANY(${storeIds}::uuid[]))
    ), claimed AS (
      SELECT r.*, date_trunc(${grain}, r.claimed_at AT TIME ZONE r.tz)::date AS period
      FROM r
      -- A day's margin either side keeps an index usable; the exact local bounds follow.
      WHERE r.claimed_at >= ${from}::date - 1 AND r.claimed_at < ${to}::date + 2
        AND (r.claimed_at AT TIME ZONE r.tz)::date BETWEEN ${from}::date AND ${to}::date
    ), cohort AS (
      SELECT store_key, period,
             count(*) FILTER (WHERE status <> 'REJECTED')::int AS registered,
             count(*) FILTER (WHERE status IN ('QUALIFIED', 'REWARDED'))::int AS qualified,
             count(*) FILTER (WHERE status = 'REWARDED')::int AS rewarded,
             count(*) FILTER (WHERE status = 'PENDING')::int AS pending,
             count(*) FILTER (WHERE status = 'EXPIRED')::int AS expired,
             count(*) FILTER (WHERE status = 'REJECTED')::int AS rejected
      FROM claimed GROUP BY store_key, period
    ), revenue AS (
      SELECT r.store_key, date_trunc(${grain}, v.completed_at AT TIME ZONE r.tz)::date AS period,
             sum(v.total_minor)::bigint AS revenue, count(DISTINCT r.referee_id)::int AS paying
      FROM r JOIN visit v ON v.customer_id = r.referee_id AND v.org_id = ${orgId}::uuid
      WHERE r.status <> 'REJECTED' AND v.status = 'COMPLETED' AND v.completed_at >= r.claimed_at
        AND v.completed_at >= ${from}::date - 1 AND v.completed_at < ${to}::date + 2
        AND (v.completed_at AT TIME ZONE r.tz)::date BETWEEN ${from}::date AND ${to}::date
      GROUP BY r.store_key, 2
    ), referrers AS (
      SELECT store_key, period, referrer_id,
             count(*) FILTER (WHERE status <> 'REJECTED')::int AS registered,
             count(*) FILTER (WHERE status IN ('QUALIFIED', 'REWARDED'))::int AS qualified,
             row_number() OVER (PARTITION BY store_key, period
                                ORDER BY count(*) FILTER (WHERE status IN ('QUALIFIED', 'REWARDED')) DESC,
                                         count(*) FILTER (WHERE status <> 'REJECTED') DESC, referrer_id) AS position
      FROM claimed GROUP BY store_key, period, referrer_id
    ), top AS (
      SELECT store_key, period,
             jsonb_agg(jsonb_build_object('customerId', referrer_id, 'registered', registered, 'qualified', qualified) ORDER BY position) AS referrers
      FROM referrers WHERE position <= ${top} AND registered > 0 GROUP BY store_key, period
    )
    SELECT nullif(coalesce(c.store_key, v.store_key), '') AS "storeId",
           to_char(coalesce(c.period, v.period), 'YYYY-MM-DD') AS "periodStart",
           coalesce(c.registered, 0) AS registered, coalesce(c.qualified, 0) AS qualified, coalesce(c.rewarded, 0) AS rewarded,
           coalesce(c.pending, 0) AS pending, coalesce(c.expired, 0) AS expired, coalesce(c.rejected, 0) AS rejected,
           coalesce(v.revenue, 0)::bigint AS "revenueMinor", coalesce(v.paying, 0) AS "payingReferees",
           coalesce(t.referrers, '[]'::jsonb) AS "topReferrers"
    FROM cohort c
    FULL JOIN revenue v ON v.store_key = c.store_key AND v.period = c.period
    LEFT JOIN top t ON t.store_key = coalesce(c.store_key, v.store_key) AND t.period = coalesce(c.period, v.period)
    ORDER BY 2, 1 NULLS LAST`);
}
