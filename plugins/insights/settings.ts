import type { Tx } from '../../core/db/clients.ts';
import type { InsightsThresholds } from './config.ts';

/** An organization's thresholds: its own row in insights_settings, or the configured defaults. */
export interface Thresholds extends InsightsThresholds {
  isDefault: boolean;
}

export async function thresholdsFor(db: Pick<Tx, '$queryRaw'>, orgId: string, defaults: InsightsThresholds): Promise<Thresholds> {
  const [row] = await db.$queryRaw<
    { churnDays: number; lostDays: number; segmentWindowDays: number; highFrequencyVisits: number; highTicketMinor: bigint; topCustomerPercent: number }[]
  >`SELECT churn_days AS "churnDays", lost_days AS "lostDays", segment_window_days AS "segmentWindowDays",
           high_frequency_visits AS "highFrequencyVisits", high_ticket_minor AS "highTicketMinor", top_customer_percent AS "topCustomerPercent"
    FROM insights_settings WHERE org_id = ${orgId}::uuid`;
  return row ? { ...row, highTicketMinor: Number(row.highTicketMinor), isDefault: false } : { ...defaults, isDefault: true };
}
