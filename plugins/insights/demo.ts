import type { Tx } from '../../core/db/clients.ts';
import { createDueTasks } from './care.ts';
import type { InsightsConfig } from './config.ts';
import type { Rule } from './rules.ts';

/**
 * Demo data for a freshly seeded chain: three saved segments HQ would define, the feedback tasks of the past fortnight
 * as the visit.completed handler would have left them, and the tasks the hourly job finds due now (win-backs, birthdays,
 * repurchase reminders, follow-ups) — written without events, like the rest of the demo history.
 */
export async function seedInsightsDemo({ tx, orgId, config }: { tx: Tx; orgId: string; config: InsightsConfig }) {
  const segments: { name: string; description: string; rules: Rule }[] = [
    {
      name: '高价值沉睡 High spenders gone quiet',
      description: 'Spent ¥3,000 or more in 12 months, no visit in 60 days, sensitive skin: a personal call from their consultant.',
      rules: {
        all: [
          { spend: { withinDays: 365, min: 300_000, max: null } },
          { lastVisit: { moreThanDaysAgo: 60, withinDays: null } },
          { tags: { all: ['sensitive-skin'], any: [], none: [] } },
        ],
      },
    },
    {
      name: '核心价值客户 Core value customers',
      description: 'The value segment CORE_VALUE, members only.',
      rules: { all: [{ valueSegments: ['CORE_VALUE'] }, { member: true }] },
    },
    {
      name: '抗衰潜力 Anti-ageing prospects',
      description: 'Tagged anti-ageing, two or more visits in 6 months, never a premium ticket.',
      rules: {
        all: [
          { tags: { all: [], any: ['anti-ageing'], none: ['vip'] } },
          { visits: { withinDays: 182, min: 2, max: null } },
          { not: { valueSegments: ['CORE_VALUE', 'POTENTIAL'] } },
        ],
      },
    },
  ];
  for (const segment of segments) {
    await tx.$executeRaw`
      INSERT INTO insights_segment (org_id, name, description, rules, created_by)
      VALUES (${orgId}::uuid, ${segment.name}, ${segment.description}, ${JSON.stringify(segment.rules)}::jsonb, 'seed:demo')`;
  }
  // Feedback tasks of the last fortnight's visits: most done, a few dismissed, the last two days' still open.
  const hours = config.care.feedbackDueHours;
  await tx.$executeRaw`
    WITH created AS (
      INSERT INTO insights_care_task (org_id, kind, dedupe_key, customer_id, store_id, assignee_id, visit_id, title, due_at, status,
                                      resolution, resolved_at, resolved_by, created_at, updated_at)
      SELECT v.org_id, 'FEEDBACK', 'feedback:' || v.id, v.customer_id, v.store_id, c.consultant_id, v.id,
             'Feedback within ' || ${hours}::int || ' hours of the visit', v.completed_at + make_interval(hours => ${hours}::int),
             x.status::insights_care_task_status,
             CASE x.status WHEN 'DONE' THEN '已回访，客户满意 Called: happy with the result' WHEN 'DISMISSED' THEN '客户不希望被打扰 Prefers not to be called' END,
             CASE WHEN x.status <> 'OPEN' THEN v.completed_at + interval '5 hours' END,
             CASE WHEN x.status <> 'OPEN' THEN 'staff:' || coalesce(c.consultant_id::text, 'demo') END,
             v.completed_at, v.completed_at
      FROM visit v JOIN customer c ON c.id = v.customer_id
      CROSS JOIN LATERAL (SELECT CASE WHEN v.completed_at > now() - interval '2 days' THEN 'OPEN'
                                      WHEN abs(hashtext(v.id::text)) % 7 = 0 THEN 'DISMISSED' ELSE 'DONE' END AS status) x
      WHERE v.org_id = ${orgId}::uuid AND v.status = 'COMPLETED' AND v.completed_at > now() - interval '14 days'
      RETURNING id, org_id, assignee_id, status, resolution, resolved_at, resolved_by, created_at
    )
    INSERT INTO insights_care_task_log (org_id, task_id, action, reason, assignee_id, actor, at)
    SELECT org_id, id, 'CREATED', NULL, assignee_id, 'plugin:insights', created_at FROM created
    UNION ALL
    SELECT org_id, id, CASE status WHEN 'DONE' THEN 'COMPLETED' ELSE 'DISMISSED' END::insights_care_task_action, resolution, NULL, resolved_by, resolved_at
    FROM created WHERE status <> 'OPEN'`;
  const org = await tx.organization.findUniqueOrThrow({ where: { id: orgId }, select: { timezone: true } });
  await createDueTasks(tx, orgId, org.timezone, config, new Date());
}
