import type { Tx } from '../../core/db/clients.ts';
import type { PointsConfig } from './config.ts';

/**
 * Demo history for a seeded chain: an account per membership, the points its completed visits of the
 * last lot lifetime earned (1 lot each, expiring in the store's calendar), a rewards catalogue, and a few
 * redemptions and donations — all through the ledger tables, so balances come out of the trigger.
 */
export async function seedPointsDemo({ tx, orgId, config }: { tx: Tx; orgId: string; config: PointsConfig }) {
  await tx.$executeRaw`
    INSERT INTO points_account (membership_id, org_id, customer_id)
    SELECT id, org_id, customer_id FROM membership WHERE org_id = ${orgId}::uuid
    ON CONFLICT DO NOTHING`;
  const rate = config.earning.pointsPerCurrencyUnit;
  const months = config.lotLifetimeMonths;
  await tx.$executeRaw`
    WITH earned AS (
      INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, source_ref, dedupe_key, store_id, actor, reason, created_at)
      SELECT v.org_id, m.id, v.customer_id, 'EARN', floor(v.total_minor / 100.0 * ${rate})::int, 'VISIT', v.id::text,
             'visit:' || v.id || ':earn', v.store_id, 'plugin:points', 'visit spend', v.completed_at
      FROM visit v JOIN membership m ON m.customer_id = v.customer_id
      WHERE v.org_id = ${orgId}::uuid AND v.status = 'COMPLETED' AND v.total_minor >= 100
        AND v.completed_at > now() - make_interval(months => ${months})
      RETURNING id, org_id, account_id, store_id, amount, created_at
    )
    INSERT INTO points_lot (org_id, account_id, earn_entry_id, earned_at, expires_at, original, remaining)
    SELECT e.org_id, e.account_id, e.id, e.created_at,
           ((e.created_at AT TIME ZONE s.timezone) + make_interval(months => ${months})) AT TIME ZONE s.timezone,
           e.amount, e.amount
    FROM earned e JOIN store s ON s.id = e.store_id`;
  await tx.$executeRaw`
    INSERT INTO points_reward (org_id, kind, name, description, points_price, stock, per_customer_limit)
    VALUES
      (${orgId}::uuid, 'SERVICE', '补水焕颜护理体验 Hydrating facial (trial)', 'One 60-minute hydrating facial at any store.', 3000, NULL, 2),
      (${orgId}::uuid, 'PRODUCT', '玻尿酸精华小样 Hyaluronic serum, travel size', NULL, 800, 120, NULL),
      (${orgId}::uuid, 'CONSULTATION', '皮肤检测与咨询 Skin analysis with a consultant', NULL, 500, NULL, 4),
      (${orgId}::uuid, 'PARTNER_PERK', '瑜伽体验课 Yoga class at a partner studio', NULL, 1500, 40, NULL),
      (${orgId}::uuid, 'PARTNER_PERK', '温泉 SPA 日 Spa day at a partner resort', NULL, 12000, 5, 1)`;
}
