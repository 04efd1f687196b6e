import type { Tx } from '../../core/db/clients.ts';
import { levelSchema, type Benefit, type ReferralsConfig } from './config.ts';

/** "Aesthetic partner" levels: the organization's own (data it sets), else the plugin's configured defaults. */
export interface PartnerLevel {
  code: string;
  name: string;
  rank: number;
  minConvertedReferrals: number;
  minSpend12mMinor: bigint;
  referralBonusPercent: number;
  benefits: Benefit[];
}

export interface ReferrerStats {
  customerId: string;
  /** Referrals of theirs that qualified (QUALIFIED or REWARDED). */
  converted: number;
  pending: number;
  /** Their own spend on completed visits over the last 12 months, minor units. */
  spend12mMinor: bigint;
}

type Reader = Pick<Tx, '$queryRaw' | 'referralPartnerLevel'>;

export async function partnerLevels(db: Reader, orgId: string, config: ReferralsConfig): Promise<PartnerLevel[]> {
  const rows = await db.referralPartnerLevel.findMany({ where: { orgId }, orderBy: { rank: 'asc' } });
  if (rows.length) {
    return rows.map((row) => ({ ...row, benefits: levelSchema.shape.benefits.parse(row.benefits) }));
  }
  return config.partnerLevels.map((level, rank) => ({ ...level, rank, minSpend12mMinor: BigInt(level.minSpend12mMinor) }));
}

/** The highest level whose thresholds (converted referrals and 12-month spend) are both met; null below the first. */
export function levelFor(levels: PartnerLevel[], stats: Pick<ReferrerStats, 'converted' | 'spend12mMinor'>): PartnerLevel | null {
  let held: PartnerLevel | null = null;
  for (const level of levels) {
    if (stats.converted >= level.minConvertedReferrals && stats.spend12mMinor >= level.minSpend12mMinor) held = level;
  }
  return held;
}

export function nextLevelAfter(levels: PartnerLevel[], current: PartnerLevel | null): PartnerLevel | null {
  return levels.find((level) => level.rank > (current?.rank ?? -1)) ?? null;
}

/** Converted and pending referrals and 12-month spend for many customers in one statement. */
export async function referrerStats(db: Pick<Tx, '$queryRaw'>, orgId: string, customerIds: readonly string[]): Promise<Map<string, ReferrerStats>> {
  const rows = await db.$queryRaw<ReferrerStats[]>`
    SELECT c.id::text AS "customerId",
           (SELECT count(*) FROM referral r
             WHERE r.org_id = ${orgId}::uuid AND r.referrer_id = c.id AND r.status IN ('QUALIFIED', 'REWARDED'))::int AS converted,
           (SELECT count(*) FROM referral r
             WHERE r.org_id = ${orgId}::uuid AND r.referrer_id = c.id AND r.status = 'PENDING')::int AS pending,
           (SELECT coalesce(sum(v.total_minor), 0) FROM visit v
             WHERE v.customer_id = c.id AND v.org_id = ${orgId}::uuid AND v.status = 'COMPLETED'
               AND v.completed_at > now() - interval '12 months')::bigint AS "spend12mMinor"
    FROM unnest(${[...customerIds]}::uuid[]) AS c(id)`;
  return new Map(rows.map((row) => [row.customerId, row]));
}
