import type { Tx } from '../../core/db/clients.ts';

/** Extension point other plugins contribute to (`contributes: () => ({ [STORE_METRICS]: fn })`). */
export const STORE_METRICS = 'insights.storeMetrics';

export interface StoreMetricsArgs {
  /** The caller's tenant client (row-level security applies). */
  tx: Tx;
  orgId: string;
  /** First day of the first period and last day of the last one (inclusive, local to each store). */
  from: string;
  to: string;
  /** date_trunc field of the periods: day, week (Monday), month, quarter or year. */
  period: 'day' | 'week' | 'month' | 'quarter' | 'year';
  /** The stores of the request; null means every store of the organization. */
  storeIds: string[] | null;
  /** The organization's time zone, for rows without a store. */
  timezone: string;
}

/**
 * One contributed figure. `storeId` null is the stores of the request combined (computed by the contributor: a rate
 * does not add up); `periodStart` is the period's first day (YYYY-MM-DD); `name` is namespaced, e.g.
 * `points.usageRate`; `value` null when undefined (e.g. a rate over nothing).
 */
export interface ContributedMetric {
  storeId: string | null;
  periodStart: string;
  name: string;
  value: number | null;
}

export type StoreMetricsContribution = (args: StoreMetricsArgs) => Promise<ContributedMetric[]>;
