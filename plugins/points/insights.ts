import type { Tx } from '../../core/db/clients.ts';

/**
 * The points plugin's figures for the insights plugin's store metrics (extension point `insights.storeMetrics`; the
 * shape is declared there — repeated here so that points does not import insights). Per store and period, and for
 * the request's stores combined (storeId null), computed in PostgreSQL in one statement, each entry counted on its
 * day in its store's time zone (the organization's for entries without a store, which only the combined row of a
 * request for every store includes):
 *   points.issued     earned − earnings reversed by refunds
 *   points.redeemed   redeemed − redemptions cancelled
 *   points.usageRate  redeemed ÷ issued (null when nothing was issued)
 */
export interface PointsStoreMetricsArgs {
  tx: Tx;
  orgId: string;
  from: string;
  to: string;
  period: 'day' | 'week' | 'month' | 'quarter' | 'year';
  storeIds: string[] | null;
  timezone: string;
}

export async function pointsStoreMetrics({ tx, orgId, from, to, period, storeIds, timezone }: PointsStoreMetricsArgs) {
  const rows = await tx.$queryRaw<{ storeId: string | null; periodStart: string; issued: number; redeemed: number; total: boolean }[]>`
    SELECT e.store_id AS "storeId", to_char(e.ps, 'YYYY-MM-DD') AS "periodStart",
           coalesce(sum(e.amount) FILTER (WHERE e.kind = 'EARN' OR (e.kind = 'REVERSAL' AND e.source = 'VISIT')), 0)::int AS issued,
           coalesce(-sum(e.amount) FILTER (WHERE e.kind = 'REDEEM' OR (e.kind = 'REVERSAL' AND e.source = 'REWARD')), 0)::int AS redeemed,
           GROUPING(e.store_id) = 1 AS total
    FROM (
      SELECT e.store_id, e.kind, e.source, e.amount, date_trunc(${period}::text, l.local)::date AS ps
      FROM points_entry e LEFT JOIN store s ON s.id = e.store_id
      CROSS JOIN LATERAL (SELECT e.created_at AT TIME ZONE coalesce(s.timezone, ${timezone}) AS local) l
      WHERE e.org_id = ${orgId}::uuid
        -- A day's margin either side keeps the index usable; the exact local bounds follow.
        AND e.created_at >= ${from}::date - 1 AND e.created_at < ${to}::date + 2
        AND l.local::date BETWEEN ${from}::date AND ${to}::date
        AND (${storeIds}::uuid[] IS NULL OR e.store_id = ANY(${storeIds}::uuid[]))
    ) e
    GROUP BY GROUPING SETS ((e.store_id, e.ps), (e.ps))`;
  return rows
    .filter((row) => row.total || row.storeId !== null)
    .flatMap((row) => {
      const storeId = row.total ? null : row.storeId;
      return [
        { storeId, periodStart: row.periodStart, name: 'points.issued', value: row.issued },
        { storeId, periodStart: row.periodStart, name: 'points.redeemed', value: row.redeemed },
        { storeId, periodStart: row.periodStart, name: 'points.usageRate', value: row.issued > 0 ? row.redeemed / row.issued : null },
      ];
    });
}
