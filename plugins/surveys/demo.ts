import type { Tx } from '../../core/db/clients.ts';
import type { Emit } from '../../core/events/outbox.ts';
import { openComplaint, NEXT_STATUS, type ComplaintStatus } from './complaints.ts';
import type { ComplaintCategory, SurveysConfig } from './config.ts';
import { periodKey } from './invitations.ts';
import { DEFAULT_PERIODIC_QUESTIONS, DEFAULT_POST_VISIT_QUESTIONS } from './questions.ts';

const SEED = 'seed:demo';
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** Seeding records no domain events (as the core demo does not): nothing is replayed to handlers later. */
const noEvents: Emit = async (input) => ({ ...input, id: '0', orgId: '', actor: SEED, occurredAt: new Date().toISOString() });

/** A deterministic number in [0, n) from a string (so the demo is the same on every machine). */
function bucket(text: string, n: number): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0) % n;
}

/**
 * Demo for a seeded chain: the default post-visit survey (version 1 for older visits, version 2 with one more
 * question now) and a quarterly survey; an invitation for every visit completed in the last 120 days, about 45%
 * answered (the Ürümqi store a little less happy); the current period's periodic invitations; a complaint case for
 * every low score plus a few filed by customers and staff, in every state of the workflow, with timelines, some
 * of them late. Written as the database owner, without events.
 */
export async function seedSurveysDemo({ tx, orgId, config }: { tx: Tx; orgId: string; config: SurveysConfig }) {
  const now = new Date();
  // The demo's surveys become the active ones.
  await tx.surveyTemplate.updateMany({ where: { orgId, active: true }, data: { active: false } });
  const postVisit = await tx.surveyTemplate.create({
    data: {
      orgId,
      key: 'post-visit',
      name: '服务满意度回访 Post-visit feedback',
      purpose: 'POST_VISIT',
      active: true,
      createdBy: SEED,
      createdAt: new Date(now.getTime() - 200 * DAY_MS),
    },
  });
  const v1 = await tx.surveyTemplateVersion.create({
    data: {
      orgId,
      templateId: postVisit.id,
      version: 1,
      questions: DEFAULT_POST_VISIT_QUESTIONS.filter((q) => q.key !== 'rebook') as object[],
      createdBy: SEED,
      createdAt: new Date(now.getTime() - 200 * DAY_MS),
    },
  });
  const v2 = await tx.surveyTemplateVersion.create({
    data: { orgId, templateId: postVisit.id, version: 2, questions: DEFAULT_POST_VISIT_QUESTIONS as object[], createdBy: SEED, createdAt: new Date(now.getTime() - 60 * DAY_MS) },
  });
  const quarterly = await tx.surveyTemplate.create({
    data: {
      orgId,
      key: 'quarterly-satisfaction',
      name: '季度满意度调查 Quarterly satisfaction survey',
      purpose: 'PERIODIC',
      active: config.periodic !== null,
      createdBy: SEED,
      versions: { create: { orgId, version: 1, questions: DEFAULT_PERIODIC_QUESTIONS as object[], createdBy: SEED } },
    },
    include: { versions: true },
  });

  const delay = config.postVisit.delayMinutes;
  const validFor = config.postVisit.validForHours;
  await tx.$executeRaw`
    INSERT INTO survey_invitation (org_id, customer_id, store_id, visit_id, kind, template_version_id, available_at, expires_at, created_at)
    SELECT v.org_id, v.customer_id, v.store_id, v.id, 'POST_VISIT',
           CASE WHEN v.completed_at < ${new Date(now.getTime() - 60 * DAY_MS)} THEN ${v1.id}::uuid ELSE ${v2.id}::uuid END,
           v.completed_at + make_interval(mins => ${delay}::int),
           v.completed_at + make_interval(mins => ${delay}::int) + make_interval(hours => ${validFor}::int),
           v.completed_at
    FROM visit v
    WHERE v.org_id = ${orgId}::uuid AND v.status = 'COMPLETED' AND v.completed_at > ${new Date(now.getTime() - 120 * DAY_MS)}
    ON CONFLICT (visit_id) DO NOTHING`;

  if (config.periodic) {
    const key = periodKey(now, (await tx.organization.findUniqueOrThrow({ where: { id: orgId } })).timezone, config.periodic.everyMonths);
    const opened = new Date(now.getTime() - 5 * DAY_MS);
    await tx.$executeRaw`
      INSERT INTO survey_invitation (org_id, customer_id, store_id, kind, period_key, template_version_id, available_at, expires_at, created_at)
      SELECT c.org_id, c.id, last.store_id, 'PERIODIC', ${key}, ${quarterly.versions[0]!.id}::uuid, ${opened},
             ${new Date(opened.getTime() + config.periodic.validForDays * DAY_MS)}, ${opened}
      FROM customer c JOIN customer_fact f ON f.customer_id = c.id
      CROSS JOIN LATERAL (SELECT store_id FROM visit WHERE customer_id = c.id AND status = 'COMPLETED' ORDER BY completed_at DESC LIMIT 1) last
      WHERE c.org_id = ${orgId}::uuid AND f.last_visit_at >= ${new Date(now.getTime() - config.periodic.activeWithinDays * DAY_MS)}
      ON CONFLICT DO NOTHING`;
  }

  // About 45% of the invitations that have opened are answered, within their validity; scores lean high, Ürümqi's less.
  const comments = ['技师手法很好，会再来 Lovely technique, will be back', '等待时间有点长 Waited a bit long', '环境安静舒适 Calm and comfortable',
    '价格偏高 A bit pricey', '房间不够干净 The room was not clean enough', '预约时间被推迟了 My booking was moved'];
  await tx.$executeRaw`
    WITH picked AS (
      SELECT i.*, abs(hashtext(i.id::text || 'nps')) % 100 + CASE WHEN s.code = 'UR-01' THEN 7 ELSE 0 END AS r,
             least(i.available_at + make_interval(mins => abs(hashtext(i.id::text || 'at')) % 1200), i.expires_at - interval '1 minute', ${now}::timestamptz) AS at
      FROM survey_invitation i JOIN store s ON s.id = i.store_id
      WHERE i.org_id = ${orgId}::uuid AND i.available_at <= ${now} AND i.responded_at IS NULL AND i.withdrawn_at IS NULL
        AND abs(hashtext(i.id::text)) % 100 < 45
    ), scored AS (
      SELECT p.*,
             CASE WHEN r < 52 THEN 9 + r % 2 WHEN r < 78 THEN 7 + r % 2 WHEN r < 92 THEN 5 + r % 2 ELSE r % 5 END AS nps
      FROM picked p
    ), rated AS (
      SELECT s.*,
             CASE WHEN nps >= 9 THEN 5 - (r % 4 = 0)::int WHEN nps >= 7 THEN 4 - (r % 3 = 0)::int WHEN nps >= 5 THEN 3 ELSE 1 + r % 2 END AS csat
      FROM scored s
    ), answered AS (
      UPDATE survey_invitation i SET responded_at = r.at,
             token_hash = CASE WHEN r.r % 3 = 0 THEN encode(sha256(convert_to(i.id::text, 'UTF8')), 'hex') END,
             link_issued_at = CASE WHEN r.r % 3 = 0 THEN i.available_at END
      FROM rated r WHERE i.id = r.id
      RETURNING i.id
    )
    INSERT INTO survey_response (org_id, invitation_id, customer_id, store_id, visit_id, template_version_id, channel, nps_score, csat_score, answers, submitted_at)
    SELECT r.org_id, r.id, r.customer_id, r.store_id, r.visit_id, r.template_version_id,
           CASE WHEN r.r % 3 = 0 THEN 'INVITATION_LINK' ELSE 'CUSTOMER_APP' END::survey_channel,
           r.nps, r.csat,
           jsonb_build_array(
             jsonb_build_object('questionKey', 'recommend', 'kind', 'NPS', 'score', r.nps),
             jsonb_build_object('questionKey', 'satisfaction', 'kind', 'CSAT', 'score', r.csat)
           ) || CASE WHEN r.r % 4 = 0 OR r.nps <= 6
                  THEN jsonb_build_array(jsonb_build_object('questionKey', CASE WHEN r.kind = 'PERIODIC' THEN 'improve' ELSE 'comment' END, 'kind', 'FREE_TEXT',
                         'text', (${comments}::text[])[CASE WHEN r.nps >= 9 THEN 1 + r.r % 3 ELSE 2 + r.r % 5 END]))
                  ELSE '[]'::jsonb END,
           r.at
    FROM rated r JOIN answered a ON a.id = r.id`;

  // Complaint cases: one per low score, and a few filed directly.
  const { npsAtMost, csatAtMost } = config.lowScore;
  const low = await tx.surveyResponse.findMany({
    where: {
      orgId,
      complaint: null,
      OR: [...(npsAtMost !== null ? [{ npsScore: { lte: npsAtMost } }] : []), ...(csatAtMost !== null ? [{ csatScore: { lte: csatAtMost } }] : [])],
    },
    orderBy: [{ submittedAt: 'asc' }, { id: 'asc' }],
  });
  const cases: { id: string; openedAt: Date }[] = [];
  for (const response of npsAtMost === null && csatAtMost === null ? [] : low) {
    const scores = [response.npsScore !== null ? `NPS ${response.npsScore}` : null, response.csatScore !== null ? `CSAT ${response.csatScore}` : null].filter(Boolean).join(', ');
    const text = (response.answers as { kind: string; text?: string }[]).find((a) => a.kind === 'FREE_TEXT')?.text ?? null;
    const opened = await openComplaint(tx, noEvents, config, {
      orgId,
      customerId: response.customerId,
      storeId: response.storeId,
      visitId: response.visitId,
      staffId: null,
      category: config.lowScore.category,
      severity: config.lowScore.severity,
      source: 'SURVEY',
      subject: `Low survey score (${scores})`,
      description: text,
      surveyResponseId: response.id,
      actor: 'plugin:surveys',
      openedAt: response.submittedAt,
    });
    cases.push({ id: opened.id, openedAt: response.submittedAt });
  }
  const filed: { category: ComplaintCategory; severity: 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL'; subject: string; byCustomer: boolean }[] = [
    { category: 'HYGIENE', severity: 'HIGH', subject: '毛巾有异味 Towels smelled musty', byCustomer: true },
    { category: 'STAFF_ATTITUDE', severity: 'MEDIUM', subject: '前台态度冷淡 Front desk was curt', byCustomer: true },
    { category: 'PRICE', severity: 'LOW', subject: '结账金额与报价不符 Bill higher than quoted', byCustomer: false },
    { category: 'BOOKING', severity: 'MEDIUM', subject: '预约被重复安排 Double-booked appointment', byCustomer: true },
    { category: 'ADVERSE_REACTION', severity: 'HIGH', subject: '护理后皮肤泛红刺痛 Redness and stinging after the facial', byCustomer: true },
    { category: 'SERVICE_QUALITY', severity: 'MEDIUM', subject: '护理时间被缩短 Treatment cut short', byCustomer: false },
    { category: 'OTHER', severity: 'LOW', subject: '停车不便 Parking was hard to find', byCustomer: false },
    { category: 'ADVERSE_REACTION', severity: 'CRITICAL', subject: '脱毛后出现水泡 Blisters after hair removal', byCustomer: false },
  ];
  const visits = await tx.visit.findMany({
    where: { orgId, status: 'COMPLETED', completedAt: { gt: new Date(now.getTime() - 45 * DAY_MS) } },
    select: { id: true, customerId: true, storeId: true, staffId: true, completedAt: true },
    orderBy: { id: 'asc' },
  });
  // One case per age, oldest last: a case walks the workflow as far as its age goes (below), so the demo holds
  // cases at every stage whatever day it is seeded on. (Spread by position among the visits, the ages depended on
  // the ids drawn, and some days no case was in progress.)
  const visitAgesDays = [0.3, 1.2, 2.5, 3.5, 6, 15, 25, 40];
  const byAge = (days: number) => {
    const at = now.getTime() - days * DAY_MS;
    return visits.reduce<(typeof visits)[number] | undefined>(
      (best, v) => (!best || Math.abs(v.completedAt!.getTime() - at) < Math.abs(best.completedAt!.getTime() - at) ? v : best),
      undefined,
    );
  };
  for (const [index, complaint] of filed.entries()) {
    const visit = byAge(visitAgesDays[index]!);
    if (!visit) break;
    const openedAt = new Date(Math.min(visit.completedAt!.getTime() + (2 + bucket(visit.id, 40)) * 60 * MINUTE_MS, now.getTime() - 30 * MINUTE_MS));
    const opened = await openComplaint(tx, noEvents, config, {
      orgId,
      customerId: visit.customerId,
      storeId: visit.storeId,
      visitId: visit.id,
      staffId: complaint.category === 'STAFF_ATTITUDE' || complaint.category === 'ADVERSE_REACTION' ? visit.staffId : null,
      category: complaint.category,
      severity: complaint.byCustomer ? (config.customerSeverity[complaint.category] ?? 'MEDIUM') : complaint.severity,
      source: complaint.byCustomer ? 'CUSTOMER' : 'STAFF',
      subject: complaint.subject,
      description: null,
      surveyResponseId: null,
      actor: complaint.byCustomer ? `customer:${visit.customerId}` : 'staff:front-desk',
      openedAt,
    });
    cases.push({ id: opened.id, openedAt });
  }

  // Walk each case along the workflow as far as its age suggests; responses come 0.5–8 hours after opening, so
  // some are late. Written at the end in two statements.
  const rows = await tx.complaint.findMany({ where: { id: { in: cases.map((c) => c.id) } } });
  const notes: Partial<Record<ComplaintStatus, string>> = {
    ACKNOWLEDGED: '已致电顾客致歉 Called the customer to apologise',
    IN_PROGRESS: '与技师复盘服务流程 Reviewing the service steps with the beautician',
    RESOLVED: '赠送一次补水护理并完成回访 Offered a complimentary hydrating facial; customer satisfied',
  };
  const updates: Record<string, unknown>[] = [];
  const entries: { orgId: string; complaintId: string; kind: 'STATUS_CHANGED'; fromStatus: ComplaintStatus; toStatus: ComplaintStatus; note: string | null; actor: string; occurredAt: Date }[] = [];
  for (const complaint of rows) {
    const { id, openedAt } = complaint;
    const ageDays = (now.getTime() - openedAt.getTime()) / DAY_MS;
    const target: ComplaintStatus = ageDays >= 12 ? 'CLOSED' : ageDays >= 4 ? 'RESOLVED' : ageDays >= 1.5 ? 'IN_PROGRESS' : ageDays >= 0.4 ? 'ACKNOWLEDGED' : 'OPEN';
    const actor = complaint.assigneeId ? `staff:${complaint.assigneeId}` : 'staff:unassigned';
    const steps: [ComplaintStatus, Date][] = [];
    let status: ComplaintStatus = 'OPEN';
    let at = new Date(openedAt.getTime() + (30 + bucket(id, 8) * 60) * MINUTE_MS);
    while (status !== target && at < now) {
      const next: ComplaintStatus = NEXT_STATUS[status]!;
      entries.push({ orgId, complaintId: id, kind: 'STATUS_CHANGED', fromStatus: status, toStatus: next, note: notes[next] ?? null, actor, occurredAt: at });
      steps.push([next, at]);
      status = next;
      at = new Date(at.getTime() + (next === 'ACKNOWLEDGED' ? 6 * 60 : next === 'IN_PROGRESS' ? (24 + bucket(id + next, 48)) * 60 : 3 * 24 * 60) * MINUTE_MS);
    }
    const stamp = (s: ComplaintStatus) => steps.find(([to]) => to === s)?.[1] ?? null;
    const firstRespondedAt = stamp('ACKNOWLEDGED');
    const resolvedAt = stamp('RESOLVED');
    const late = (done: Date | null, due: Date) => (done ? (done > due ? done : null) : now > due ? new Date(due.getTime() + MINUTE_MS) : null);
    updates.push({
      id,
      status,
      first_responded_at: firstRespondedAt,
      resolved_at: resolvedAt,
      closed_at: stamp('CLOSED'),
      first_response_breached_at: late(firstRespondedAt, complaint.firstResponseDueAt),
      resolution_breached_at: late(resolvedAt, complaint.resolutionDueAt),
      updated_at: steps.at(-1)?.[1] ?? openedAt,
    });
  }
  if (updates.length) {
    await tx.$executeRaw`
      UPDATE complaint c SET status = u.status, first_responded_at = u.first_responded_at, resolved_at = u.resolved_at,
             closed_at = u.closed_at, first_response_breached_at = u.first_response_breached_at,
             resolution_breached_at = u.resolution_breached_at, updated_at = u.updated_at
      FROM jsonb_to_recordset(${JSON.stringify(updates)}::jsonb) AS u(id uuid, status complaint_status, first_responded_at timestamptz,
             resolved_at timestamptz, closed_at timestamptz, first_response_breached_at timestamptz, resolution_breached_at timestamptz,
             updated_at timestamptz)
      WHERE c.id = u.id`;
  }
  await tx.complaintEntry.createMany({ data: entries });
}
