import type { Tx } from '../../core/db/clients.ts';
import { mulberry32 } from '../../core/seed/demo.ts';
import { pointsConfigSchema } from '../points/config.ts';
import type { ReferralsConfig } from './config.ts';

const DAY_MS = 86_400_000;
const ACTOR = 'plugin:referrals';

/**
 * Demo referrals for a seeded chain: its customers who came by referral (source REFERRAL) registered with the code
 * of an earlier customer — mostly a small circle of keen "partners", as in practice — an hour after they were
 * registered. Each referral then took the course the visit history gives it: qualified and rewarded on the first
 * paid visit in time (points paid through the ledger tables, so balances come out of the points trigger), expired
 * without one, or still pending; two are rejected as reported fraud. The organization's partner levels are written
 * as data. Deterministic for a given history.
 */
export async function seedReferralsDemo({ tx, orgId, config }: { tx: Tx; orgId: string; config: ReferralsConfig }) {
  const random = mulberry32(0x4ef3_2a11);
  const now = Date.now();

  await tx.referralPartnerLevel.createMany({
    data: config.partnerLevels.map((level, rank) => ({
      ...level,
      orgId,
      rank,
      minSpend12mMinor: BigInt(level.minSpend12mMinor),
      benefits: level.benefits as object[],
    })),
    skipDuplicates: true,
  });

  const customers = await tx.customer.findMany({
    where: { orgId },
    select: { id: true, createdAt: true, source: true, homeStoreId: true },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
  });
  const codes = new Map((await tx.referralCode.findMany({ where: { orgId }, select: { customerId: true, code: true } })).map((c) => [c.customerId, c.code]));
  const visits = await tx.visit.findMany({
    where: { orgId, completedAt: { not: null } },
    select: { id: true, customerId: true, completedAt: true, totalMinor: true, status: true, storeId: true },
    orderBy: [{ completedAt: 'asc' }, { id: 'asc' }],
  });
  const visitsOf = new Map<string, typeof visits>();
  for (const visit of visits) visitsOf.set(visit.customerId, [...(visitsOf.get(visit.customerId) ?? []), visit]);
  const timezones = new Map((await tx.store.findMany({ where: { orgId }, select: { id: true, timezone: true } })).map((s) => [s.id, s.timezone]));

  // A circle of keen partners (spenders) makes most referrals; anyone earlier may make one.
  const spend = (id: string) => (visitsOf.get(id) ?? []).reduce((sum, v) => sum + (v.status === 'COMPLETED' ? v.totalMinor : 0), 0);
  const partners = [...customers].sort((a, b) => spend(b.id) - spend(a.id)).slice(0, 12).map((c) => c.id);
  const claimsPerMonth = new Map<string, number>();
  const lifetimeMonths = pointsConfigSchema.parse({}).lotLifetimeMonths;
  let rejected = 0;

  for (const referee of customers.filter((c) => c.source === 'REFERRAL')) {
    const claimedAt = new Date(referee.createdAt.getTime() + 3_600_000);
    if (claimedAt.getTime() > now) continue;
    const history = visitsOf.get(referee.id) ?? [];
    if (history.some((v) => v.completedAt! < claimedAt)) continue;
    const earlier = customers.filter((c) => c.id !== referee.id && c.createdAt.getTime() < referee.createdAt.getTime() - DAY_MS);
    const circle = earlier.filter((c) => partners.includes(c.id));
    const pool = circle.length && random() < 0.7 ? circle : earlier;
    if (!pool.length) continue;
    const referrer = pool[Math.floor(random() * pool.length)]!;
    const month = `${referrer.id}:${claimedAt.toISOString().slice(0, 7)}`;
    if (config.monthlyCapPerReferrer !== null && (claimsPerMonth.get(month) ?? 0) >= config.monthlyCapPerReferrer) continue;
    claimsPerMonth.set(month, (claimsPerMonth.get(month) ?? 0) + 1);

    const qualifyBy = new Date(claimedAt.getTime() + config.qualifyWithinDays * DAY_MS);
    const first = history.find(
      (v) => v.completedAt! >= claimedAt && v.completedAt! <= qualifyBy && v.totalMinor >= config.minimumFirstVisitMinor,
    );
    const base = {
      orgId,
      referrerId: referrer.id,
      refereeId: referee.id,
      code: codes.get(referrer.id)!,
      storeId: referee.homeStoreId,
      claimedAt,
      claimedBy: 'seed:demo',
      qualifyBy,
    };
    if (!first) {
      const expired = qualifyBy.getTime() <= now;
      if (!expired && rejected < 2) {
        rejected += 1;
        await tx.referral.create({
          data: { ...base, status: 'REJECTED', rejectedAt: new Date(now - DAY_MS), rejectionCode: 'REPORTED_FRAUD', rejectionReason: 'Same household account reported by the store manager' },
        });
      } else {
        await tx.referral.create({ data: { ...base, status: expired ? 'EXPIRED' : 'PENDING', expiredAt: expired ? qualifyBy : null } });
      }
      continue;
    }
    const points = config.rewards.referrerPoints;
    const refereePoints = config.rewards.refereePoints ?? points;
    const referral = await tx.referral.create({
      data: {
        ...base,
        status: 'QUALIFIED',
        qualifiedAt: first.completedAt,
        qualifyingVisitId: first.id,
        qualifyingAmountMinor: BigInt(first.totalMinor),
        referrerPoints: points,
        refereePoints,
      },
    });
    const paidAt = new Date(first.completedAt!.getTime() + 60_000);
    const timezone = timezones.get(first.storeId)!;
    const pay = async (customerId: string, side: string, amount: number, reason: string) => {
      const [entry] = await tx.$queryRaw<{ id: bigint }[]>`
        WITH account AS (
          SELECT membership_id, org_id, customer_id FROM points_account WHERE customer_id = ${customerId}::uuid
        ), entry AS (
          INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, source_ref, dedupe_key, store_id, actor, reason, created_at)
          SELECT org_id, membership_id, customer_id, 'EARN', ${amount}, 'REFERRAL', ${referral.id}, ${`referral:${referral.id}:${side}`},
                 ${first.storeId}::uuid, ${ACTOR}, ${reason}, ${paidAt}
          FROM account
          RETURNING id, org_id, account_id, amount, created_at
        ), lot AS (
          INSERT INTO points_lot (org_id, account_id, earn_entry_id, earned_at, expires_at, original, remaining)
          SELECT org_id, account_id, id, created_at,
                 ((created_at AT TIME ZONE ${timezone}) + make_interval(months => ${lifetimeMonths})) AT TIME ZONE ${timezone}, amount, amount
          FROM entry
        )
        SELECT id FROM entry`;
      return entry?.id ?? null;
    };
    const referrerEntryId = await pay(referrer.id, 'referrer', points, 'Referral reward: a friend you referred completed their first visit');
    const refereeEntryId = await pay(referee.id, 'referee', refereePoints, 'Welcome reward for joining through a referral');
    await tx.referral.update({ where: { id: referral.id }, data: { referrerEntryId, refereeEntryId } });
    if (referrerEntryId !== null && refereeEntryId !== null) {
      await tx.referral.update({ where: { id: referral.id }, data: { status: 'REWARDED', rewardedAt: paidAt } });
    }
  }
}
