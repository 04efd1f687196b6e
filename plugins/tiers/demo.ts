import type { Tx } from '../../core/db/clients.ts';
import type { Prisma } from '../../core/db/generated/client.ts';
import { localDate } from '../../core/graph/local-time.ts';
import type { TiersConfig } from './config.ts';
import { memberMetrics } from './evaluate.ts';
import { describeMetrics, describeRule, loadLadder, meets } from './ladder.ts';

const DAY_MS = 86_400_000;

/** The default ladder (amounts in major units of the organization's currency). */
export const DEFAULT_LADDER = [
  {
    code: 'SILVER',
    name: '银卡 Silver',
    rules: [
      { minSpend: 3_000, minTasks: 0 },
      { minSpend: 1_500, minTasks: 1 },
    ],
    discountBp: 200,
    pointsMultiplierPct: 100,
    birthdayGift: '生日护理礼盒 Birthday care gift box',
    freeSkinTestsPerYear: 1,
    priorityBooking: false,
    dedicatedConsultant: false,
    perks: [] as string[],
  },
  {
    code: 'GOLD',
    name: '金卡 Gold',
    rules: [
      { minSpend: 20_000, minTasks: 0 },
      { minSpend: 12_000, minTasks: 3 },
    ],
    discountBp: 500,
    pointsMultiplierPct: 120,
    birthdayGift: '生日月免费补水护理 Free hydrating facial in the birthday month',
    freeSkinTestsPerYear: 2,
    priorityBooking: true,
    dedicatedConsultant: true,
    perks: ['专属美容顾问 Dedicated consultant'],
  },
  {
    code: 'BLACK',
    name: '黑卡 Black',
    rules: [
      { minSpend: 50_000, minTasks: 0 },
      { minSpend: 35_000, minTasks: 5 },
    ],
    discountBp: 1200,
    pointsMultiplierPct: 150,
    birthdayGift: '生日月免费抗衰护理及礼盒 Free anti-ageing care and gift box in the birthday month',
    freeSkinTestsPerYear: 4,
    priorityBooking: true,
    dedicatedConsultant: true,
    perks: ['私享护理室 Private care room', '年度抗衰方案 Annual anti-ageing plan', '专家优先预约 Priority expert booking'],
  },
];

export const DEFAULT_TASKS = [
  { code: 'SURVEY', name: '完成满意度问卷 Answer a satisfaction survey', eventType: 'survey.completed', customerField: 'customerId', maxPerWindow: 2 },
  { code: 'CARE_DIARY', name: '分享术后护理日记 Share a post-treatment care diary', eventType: 'careDiary.shared', customerField: 'customerId', maxPerWindow: 3 },
  { code: 'BRAND_RESEARCH', name: '参与品牌调研 Join brand research', eventType: 'brandResearch.joined', customerField: 'customerId', maxPerWindow: 2 },
  { code: 'REFERRAL', name: '推荐好友到店 Refer a friend who completes a first visit', eventType: 'referral.qualified', customerField: 'referrerId', maxPerWindow: null },
  { code: 'SKIN_CHECK', name: '定期皮肤检测 Regular skin check-in', eventType: 'skinCheckIn.recorded', customerField: 'customerId', maxPerWindow: 2 },
  { code: 'BRAND_EVENT', name: '参加品牌沙龙 Attend a brand salon (recorded by staff)', eventType: null, customerField: 'customerId', maxPerWindow: 2 },
];

/** Writes an organization's default ladder and tasks (currency amounts in its currency's minor units). */
export async function writeDefaultLadder(tx: Tx, orgId: string, currency: string): Promise<void> {
  const unit = 10n ** BigInt(new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2);
  for (const [index, { rules, ...level }] of DEFAULT_LADDER.entries()) {
    const saved = await tx.tierLevel.create({ data: { ...level, orgId, rank: index + 1 }, select: { id: true } });
    await tx.tierQualification.createMany({
      data: rules.map((rule) => ({ orgId, tierId: saved.id, minSpendMinor: BigInt(rule.minSpend) * unit, minTasks: rule.minTasks })),
    });
  }
  await tx.tierTask.createMany({ data: DEFAULT_TASKS.map((task) => ({ ...task, orgId })) });
}

/**
 * Demo data for a seeded chain: the default ladder and tasks, a year of task completions for some members, and
 * every member's tier as the rules give it today (with a history row each), plus a member in a grace period and
 * one with an override, so every part of the API has something to show. Written by the database owner, in SQL
 * over the seeded visits (no domain events).
 */
export async function seedTiersDemo({ tx, orgId, config }: { tx: Tx; orgId: string; config: TiersConfig }): Promise<void> {
  const org = await tx.organization.findUniqueOrThrow({ where: { id: orgId }, select: { timezone: true, currency: true } });
  await writeDefaultLadder(tx, orgId, org.currency);
  const now = new Date();

  // Task completions: a deterministic share of members (by member number) did 0–5 tasks over the last ten months;
  // the showcase customer (the demo CUSTOMER token) did three, so her progress shows both ways to the next tier.
  await tx.$executeRaw`
    INSERT INTO tier_task_completion (org_id, customer_id, task_id, occurred_at, source, source_ref, dedupe_key, recorded_by)
    SELECT m.org_id, m.customer_id, t.id,
           ${now}::timestamptz - make_interval(days => 5 + (abs(hashtext(m.member_number || ':' || n)) % 300)),
           'EVENT', 'demo', 'demo:' || m.member_number || ':' || n, 'seed:demo'
    FROM membership m
    JOIN customer c ON c.id = m.customer_id
    CROSS JOIN LATERAL generate_series(1, CASE WHEN c.name = '林晚晴' THEN 3 ELSE abs(hashtext(m.member_number)) % 6 END) AS n
    JOIN LATERAL (
      SELECT id FROM tier_task WHERE org_id = m.org_id AND code IN ('SURVEY', 'CARE_DIARY', 'BRAND_RESEARCH', 'SKIN_CHECK', 'BRAND_EVENT')
      ORDER BY code OFFSET (CASE WHEN c.name = '林晚晴' THEN n ELSE abs(hashtext(m.member_number || ':task:' || n)) % 5 END) LIMIT 1
    ) t ON true
    WHERE m.org_id = ${orgId}::uuid AND m.status = 'ACTIVE'
      AND (c.name = '林晚晴' OR abs(hashtext(m.member_number || ':engaged')) % 3 <> 0)`;

  const ladder = await loadLadder(tx, orgId);
  const members = await tx.membership.findMany({
    where: { orgId, status: 'ACTIVE' },
    select: { customerId: true, joinedOn: true, customer: { select: { name: true } } },
    orderBy: { memberNumber: 'asc' },
  });
  const metrics = await memberMetrics(tx, orgId, members.map((m) => m.customerId), now, config.windowMonths, org.timezone);
  const today = localDate(org.timezone, now);
  const states: { customerId: string; orgId: string; earnedTierId: string | null; earnedSince: Date | null; belowSince: Date | null; overrideTierId?: string | null; overrideUntil?: Date | null; overrideReason?: string | null; overrideBy?: string | null }[] = [];
  const changes: Prisma.TierChangeCreateManyInput[] = [];
  let graceShown = false;
  let overrideShown = false;
  for (const [index, member] of members.entries()) {
    const measured = metrics.get(member.customerId)!;
    const qualified = ladder.qualified(measured);
    const since = new Date(Math.max(member.joinedOn.getTime(), now.getTime() - (20 + (index % 150)) * DAY_MS));
    let earned = qualified;
    let belowSince: Date | null = null;
    // One member who was Gold and now qualifies only for Silver: in the grace period, 12 days in.
    if (!graceShown && qualified?.code === 'SILVER') {
      earned = ladder.levels.find((l) => l.code === 'GOLD')!;
      belowSince = new Date(now.getTime() - 12 * DAY_MS);
      graceShown = true;
    }
    const state: (typeof states)[number] = { customerId: member.customerId, orgId, earnedTierId: earned?.id ?? null, earnedSince: earned ? since : null, belowSince };
    if (earned) {
      const rule = earned === qualified ? earned.qualifications.find((r) => meets(r, measured)) : null;
      changes.push({
        orgId,
        customerId: member.customerId,
        kind: 'UPGRADE',
        fromTierId: null,
        toTierId: earned.id,
        effectiveTierId: earned.id,
        reason: rule
          ? `Qualified for ${earned.name} (${describeRule(rule, org.currency)}): ${describeMetrics(measured, org.currency, config.windowMonths, today)}`
          : `Qualified for ${earned.name} at the start of the tier programme`,
        spendMinor: measured.spendMinor,
        tasks: measured.tasks,
        actor: 'seed:demo',
        trigger: 'seed',
        effectiveAt: since,
      });
    }
    // One member without a tier held at Black by hand for a campaign.
    if (!overrideShown && !qualified && index > 10) {
      const black = ladder.levels.find((l) => l.code === 'BLACK')!;
      const until = new Date(now.getTime() + 75 * DAY_MS);
      Object.assign(state, { overrideTierId: black.id, overrideUntil: until, overrideReason: '品牌大使 Brand ambassador for the autumn campaign', overrideBy: 'seed:demo' });
      changes.push({
        orgId,
        customerId: member.customerId,
        kind: 'OVERRIDE_SET',
        fromTierId: null,
        toTierId: black.id,
        effectiveTierId: black.id,
        reason: `Override to ${black.name} until ${until.toISOString()}: 品牌大使 Brand ambassador for the autumn campaign`,
        overrideUntil: until,
        actor: 'seed:demo',
        trigger: 'overrideTier',
        effectiveAt: new Date(now.getTime() - 15 * DAY_MS),
      });
      overrideShown = true;
    }
    states.push(state);
  }
  await tx.tierState.createMany({ data: states });
  await tx.tierChange.createMany({ data: changes });
}
