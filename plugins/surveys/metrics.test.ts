/**
 * Metrics against a hand count: NPS and CSAT per organization, store, staff member and service from nine responses
 * answered through the API (then dated into October 2025, away from anything else in the database); periods on
 * each store's clock; complaints by category, SLA breaches and median times; who may read them; and the demo data.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openComplaint } from './complaints.ts';
import { seedSurveysDemo } from './demo.ts';
import {
  asApp,
  call,
  closeWorld,
  customerPrincipal,
  gid,
  newCustomer,
  openInvitation,
  scores,
  startSurveysWorld,
  SUBMIT,
  type As,
  type SurveysWorld,
} from './testing.ts';

let world: SurveysWorld;
let staff: { b1: string; b2: string; u1: string };
let services: { s1: string; s2: string };

const SURVEY_METRICS = `query($from: Date!, $to: Date!, $period: FeedbackMetricsPeriod, $groupBy: SurveyMetricsGroup, $storeIds: [ID!]) {
  surveyMetrics(from: $from, to: $to, period: $period, groupBy: $groupBy, storeIds: $storeIds) {
    store { code } staff { id } service { id } periodStart responses npsResponses promoters passives detractors nps csatResponses csatSatisfied csat csatAverage } }`;
const COMPLAINT_METRICS = `query($from: Date!, $to: Date!, $period: FeedbackMetricsPeriod, $groupBy: ComplaintMetricsGroup) {
  complaintMetrics(from: $from, to: $to, period: $period, groupBy: $groupBy) {
    store { code } staff { id } periodStart opened resolved byCategory { category count } firstResponseBreaches resolutionBreaches breached slaBreachRate
    medianTimeToFirstResponseSeconds medianTimeToResolutionSeconds } }`;

/** The nine responses: [store, staff, services, NPS, CSAT]. */
const RESPONSES: ['SH' | 'UR', 'b1' | 'b2' | 'u1', ('s1' | 's2')[], number, number][] = [
  ['SH', 'b1', ['s1'], 10, 5],
  ['SH', 'b1', ['s1'], 9, 4],
  ['SH', 'b1', ['s1', 's2'], 6, 2],
  ['SH', 'b2', ['s2'], 8, 4],
  ['SH', 'b2', ['s2'], 3, 3],
  ['SH', 'b2', ['s1'], 10, 5],
  ['UR', 'u1', ['s1'], 7, 3],
  ['UR', 'u1', ['s1'], 0, 1],
  ['UR', 'u1', ['s2'], 9, 4],
];
/** Wednesday 15 October 2025, 12:00 in Shanghai and 10:00 in Ürümqi. */
const ANSWERED_AT = new Date('2025-10-15T04:00:00Z');

async function answer(store: 'SH' | 'UR', by: string, serviceIds: string[], nps: number, csat: number, at: Date) {
  const customerId = await newCustomer(world, { storeId: world.stores[store] });
  const { invitationId } = await openInvitation(world, customerId, { storeId: world.stores[store], staffId: by, serviceIds });
  const done = await call(world.api, SUBMIT, { input: { invitationId: gid('SurveyInvitation', invitationId), answers: scores(nps, csat) } }, customerPrincipal(world, customerId));
  expect(done.userErrors).toEqual([]);
  await world.api.owner.surveyResponse.update({ where: { invitationId }, data: { submittedAt: at } });
}

beforeAll(async () => {
  world = await startSurveysWorld();
  const beautician = async (storeId: string, skip: string[] = []) =>
    (await world.api.owner.staff.findFirstOrThrow({ where: { role: 'BEAUTICIAN', active: true, id: { notIn: skip }, stores: { some: { storeId } } }, orderBy: { name: 'asc' } })).id;
  const b1 = await beautician(world.stores.SH);
  staff = { b1, b2: await beautician(world.stores.SH, [b1]), u1: await beautician(world.stores.UR) };
  const s2 = await world.api.owner.service.findFirstOrThrow({ where: { orgId: world.chainId, active: true, id: { not: world.serviceId } }, orderBy: { name: 'asc' } });
  services = { s1: world.serviceId, s2: s2.id };
  for (const [store, by, on, nps, csat] of RESPONSES) await answer(store, staff[by], on.map((s) => services[s]), nps, csat, ANSWERED_AT);
});
afterAll(() => closeWorld(world));

const metrics = (variables: Record<string, unknown>, as: As = 'OWNER') =>
  call(world.api, SURVEY_METRICS, { from: '2025-10-01', to: '2025-10-31', ...variables }, as);

/** NPS and CSAT figures of a row, as the hand count below writes them. */
const figures = (row: Record<string, unknown>) => [row.responses, row.promoters, row.passives, row.detractors, row.nps, row.csatSatisfied, row.csat, row.csatAverage];

describe('NPS and CSAT against a hand count', () => {
  test('by store and by organization', async () => {
    const byStore = (await metrics({ groupBy: 'STORE' })).sort((a: { store: { code: string } }, b: { store: { code: string } }) => a.store.code.localeCompare(b.store.code));
    expect(byStore.map((row: { store: { code: string }; periodStart: string }) => [row.store.code, row.periodStart])).toEqual([['SH-01', '2025-10-01'], ['UR-01', '2025-10-01']]);
    // SH: NPS 10 9 6 8 3 10 → 3 promoters, 1 passive, 2 detractors: (3 − 2) / 6 = 16.7. CSAT 5 4 2 4 3 5 → 4 of 6 satisfied = 66.7, mean 23/6.
    expect(figures(byStore[0])).toEqual([6, 3, 1, 2, 16.7, 4, 66.7, 3.83]);
    // UR: NPS 7 0 9 → 1, 1, 1: 0. CSAT 3 1 4 → 1 of 3 = 33.3, mean 8/3.
    expect(figures(byStore[1])).toEqual([3, 1, 1, 1, 0, 1, 33.3, 2.67]);
    // All nine: 4 promoters, 2 passives, 3 detractors: (4 − 3) / 9 = 11.1. CSAT 5 of 9 = 55.6, mean 31/9.
    const [org, ...rest] = await metrics({ groupBy: 'ORGANIZATION' });
    expect(rest).toEqual([]);
    expect(org).toMatchObject({ store: null, staff: null, service: null, npsResponses: 9, csatResponses: 9 });
    expect(figures(org)).toEqual([9, 4, 2, 3, 11.1, 5, 55.6, 3.44]);
  });

  test('by staff member who served the visit, and by service on the visit', async () => {
    const byStaff = new Map((await metrics({ groupBy: 'STAFF' })).map((row: { staff: { id: string } }) => [row.staff.id, figures(row)]));
    expect(byStaff).toEqual(new Map([
      // b1: NPS 10 9 6 → (2 − 1) / 3 = 33.3; CSAT 5 4 2 → 2 of 3, mean 11/3.
      [gid('Staff', staff.b1), [3, 2, 0, 1, 33.3, 2, 66.7, 3.67]],
      // b2: NPS 8 3 10 → (1 − 1) / 3 = 0; CSAT 4 3 5 → 2 of 3, mean 4.
      [gid('Staff', staff.b2), [3, 1, 1, 1, 0, 2, 66.7, 4]],
      // u1: NPS 7 0 9 → 0; CSAT 3 1 4 → 1 of 3, mean 8/3.
      [gid('Staff', staff.u1), [3, 1, 1, 1, 0, 1, 33.3, 2.67]],
    ]));
    const byService = new Map((await metrics({ groupBy: 'SERVICE' })).map((row: { service: { id: string } }) => [row.service.id, figures(row)]));
    expect(byService).toEqual(new Map([
      // s1 on responses 1, 2, 3, 6, 7, 8: NPS 10 9 6 10 7 0 → (3 − 2) / 6 = 16.7; CSAT 5 4 2 5 3 1 → 3 of 6, mean 20/6.
      [gid('Service', services.s1), [6, 3, 1, 2, 16.7, 3, 50, 3.33]],
      // s2 on responses 3, 4, 5, 9 (the third visit had both services): NPS 6 8 3 9 → (1 − 2) / 4 = −25; CSAT 2 4 3 4 → 2 of 4, mean 13/4.
      [gid('Service', services.s2), [4, 1, 1, 2, -25, 2, 50, 3.25]],
    ]));
  });

  test('periods are calendar periods on each store\'s clock', async () => {
    // 2025-08-31T17:00Z is 1 September 01:00 in Shanghai but still 31 August 23:00 in Ürümqi.
    const edge = new Date('2025-08-31T17:00:00Z');
    await answer('SH', staff.b1, [services.s1], 10, 5, edge);
    await answer('UR', staff.u1, [services.s1], 2, 1, edge);
    const rows = await call(world.api, SURVEY_METRICS, { from: '2025-08-01', to: '2025-09-30', period: 'MONTH', groupBy: 'STORE' }, 'OWNER');
    expect(rows.map((r: { store: { code: string }; periodStart: string; nps: number }) => [r.store.code, r.periodStart, r.nps])).toEqual([
      ['UR-01', '2025-08-01', -100],
      ['SH-01', '2025-09-01', 100],
    ]);
    // Local dates bound the range too: 1 September alone holds Shanghai's response only.
    const day = await call(world.api, SURVEY_METRICS, { from: '2025-09-01', to: '2025-09-01', period: 'DAY', groupBy: 'ORGANIZATION' }, 'OWNER');
    expect(day.map((r: { periodStart: string; responses: number }) => [r.periodStart, r.responses])).toEqual([['2025-09-01', 1]]);
    // Weeks start on Monday: Wednesday 15 October 2025 is in the week of the 13th.
    const week = await metrics({ period: 'WEEK', groupBy: 'ORGANIZATION' });
    expect(week.map((r: { periodStart: string; responses: number }) => [r.periodStart, r.responses])).toEqual([['2025-10-13', 9]]);
    const quarter = await call(world.api, SURVEY_METRICS, { from: '2025-07-01', to: '2025-12-31', period: 'QUARTER', groupBy: 'ORGANIZATION' }, 'OWNER');
    expect(quarter.map((r: { periodStart: string; responses: number }) => [r.periodStart, r.responses])).toEqual([['2025-07-01', 2], ['2025-10-01', 9]]);
  });

  test('store managers see their stores; customers and other chains see nothing; bad ranges are refused', async () => {
    const mine = await metrics({ groupBy: 'STORE' }, 'STORE_MANAGER');
    expect(mine.map((r: { store: { code: string } }) => r.store.code)).toEqual(['SH-01']);
    expect(await metrics({ groupBy: 'STORE', storeIds: [gid('Store', world.stores.UR)] }, 'STORE_MANAGER')).toEqual([]);
    const theirs = await metrics({ groupBy: 'ORGANIZATION' }, 'STORE_MANAGER');
    expect(figures(theirs[0])).toEqual([6, 3, 1, 2, 16.7, 4, 66.7, 3.83]);
    expect(await metrics({ groupBy: 'STORE' }, 'OTHER_CHAIN_OWNER')).toEqual([]);
    for (const as of ['CUSTOMER', 'FRONT_DESK', 'OTHER_CHAIN_OWNER'] as const) {
      const response = await world.api.gql(COMPLAINT_METRICS, { from: '2025-10-01', to: '2025-10-31' }, as);
      if (as === 'OTHER_CHAIN_OWNER') expect(response.data?.complaintMetrics).toEqual([]);
      else expect(response.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    }
    const backwards = await world.api.gql(SURVEY_METRICS, { from: '2025-10-31', to: '2025-10-01' }, 'OWNER');
    expect(backwards.errors?.map((e) => e.extensions?.code)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('complaint metrics against a hand count', () => {
  beforeAll(async () => {
    // Four MEDIUM cases opened Sunday 12 October 2025, 11:00 in Shanghai (open every day): first response due 15:00
    // (4 business hours), resolution due Wednesday 11:00 (33 business hours: 10 on Sunday, 11 Monday, 11 Tuesday, 1 Wednesday).
    const openedAt = new Date('2025-10-12T03:00:00Z');
    const open = (category: 'HYGIENE' | 'SERVICE_QUALITY' | 'PRICE', staffId: string | null) =>
      asApp(world, (tx, emit) =>
        openComplaint(tx, emit, world.config, {
          orgId: world.chainId, customerId: null, storeId: world.stores.SH, visitId: null, staffId, category, severity: 'MEDIUM',
          source: 'STAFF', subject: `Metrics ${category}`, description: null, surveyResponseId: null, actor: 'test:arrange', openedAt,
        }));
    const at = (iso: string) => new Date(iso);
    const a = await open('HYGIENE', null);
    const b = await open('SERVICE_QUALITY', staff.b1);
    const c = await open('SERVICE_QUALITY', staff.b1);
    await open('PRICE', null);
    const row = await world.api.owner.complaint.findUniqueOrThrow({ where: { id: a.id } });
    expect([row.firstResponseDueAt.toISOString(), row.resolutionDueAt.toISOString()]).toEqual(['2025-10-12T07:00:00.000Z', '2025-10-15T03:00:00.000Z']);
    // A: answered after 1 hour, resolved after 24 (both in time).
    await world.api.owner.complaint.update({ where: { id: a.id }, data: { status: 'RESOLVED', firstRespondedAt: at('2025-10-12T04:00:00Z'), resolvedAt: at('2025-10-13T03:00:00Z') } });
    // B: answered after 6 hours (late), resolved after 96 (late).
    await world.api.owner.complaint.update({ where: { id: b.id }, data: { status: 'RESOLVED', firstRespondedAt: at('2025-10-12T09:00:00Z'), resolvedAt: at('2025-10-16T03:00:00Z') } });
    // C: answered after 2 hours, never resolved (late by now). D: never answered (both late by now).
    await world.api.owner.complaint.update({ where: { id: c.id }, data: { status: 'IN_PROGRESS', firstRespondedAt: at('2025-10-12T05:00:00Z') } });
  });

  test('by store: categories, breaches and their rate, median times', async () => {
    const [sh, ...rest] = await call(world.api, COMPLAINT_METRICS, { from: '2025-10-01', to: '2025-10-31', groupBy: 'STORE' }, 'HQ_ANALYST');
    expect(rest).toEqual([]);
    expect(sh).toEqual({
      store: { code: 'SH-01' },
      staff: null,
      periodStart: '2025-10-01',
      opened: 4,
      resolved: 2,
      byCategory: [{ category: 'SERVICE_QUALITY', count: 2 }, { category: 'HYGIENE', count: 1 }, { category: 'PRICE', count: 1 }],
      // First response late: B (6 h) and D (never). Resolution late: B (96 h), C and D (never, due passed).
      firstResponseBreaches: 2,
      resolutionBreaches: 3,
      breached: 3,
      slaBreachRate: 0.75,
      // Responses after 1, 6 and 2 hours: median 2 hours. Resolutions after 24 and 96 hours: median 60 hours.
      medianTimeToFirstResponseSeconds: 2 * 3600,
      medianTimeToResolutionSeconds: 60 * 3600,
    });
  });

  test('by the staff member complained about', async () => {
    const rows = await call(world.api, COMPLAINT_METRICS, { from: '2025-10-01', to: '2025-10-31', groupBy: 'STAFF' }, 'OWNER');
    expect(rows).toEqual([
      expect.objectContaining({ store: null, staff: { id: gid('Staff', staff.b1) }, opened: 2, resolved: 1, breached: 2, slaBreachRate: 1, medianTimeToFirstResponseSeconds: 4 * 3600 }),
    ]);
  });
});

describe('the demo data', () => {
  test('seeds templates, invitations, responses and cases that hold together, and the metrics read them', async () => {
    const since = new Date(Date.now() - 120 * 86_400_000);
    await world.api.owner.$transaction((tx) => seedSurveysDemo({ tx, orgId: world.chainId, config: world.config }), { timeout: 120_000 });
    const templates = await world.api.owner.surveyTemplate.findMany({ where: { orgId: world.chainId, active: true, createdBy: 'seed:demo' }, include: { versions: true } });
    expect(templates.map((t) => [t.purpose, t.versions.length]).sort()).toEqual([['PERIODIC', 1], ['POST_VISIT', 2]]);
    const [{ visits, invited }] = await world.owner.query(
      `SELECT (SELECT count(*) FROM visit v WHERE v.org_id = $1 AND v.status = 'COMPLETED' AND v.completed_at > $2
                 AND NOT EXISTS (SELECT 1 FROM survey_invitation i WHERE i.visit_id = v.id AND i.created_at >= $3))::int AS visits,
              (SELECT count(*) FROM survey_invitation i JOIN survey_template_version tv ON tv.id = i.template_version_id
                 JOIN survey_template t ON t.id = tv.template_id WHERE t.created_by = 'seed:demo' AND i.kind = 'POST_VISIT')::int AS invited`,
      [world.chainId, since, new Date(Date.now() - 3_600_000)],
    ).then((r) => r.rows);
    expect(invited).toBeGreaterThan(300);
    expect(invited).toBe(visits);
    const [{ responses, opened, low, cases, lowCases, answeredWithout }] = await world.owner.query(
      `SELECT (SELECT count(*) FROM survey_response r JOIN survey_invitation i ON i.id = r.invitation_id
                WHERE r.org_id = $1 AND r.submitted_at > $2 AND i.created_at < now() - interval '1 hour')::int AS responses,
              (SELECT count(*) FROM survey_invitation WHERE org_id = $1 AND available_at <= now() AND created_at < now() - interval '1 hour')::int AS opened,
              (SELECT count(*) FROM survey_response WHERE org_id = $1 AND (nps_score <= 6 OR csat_score <= 2))::int AS low,
              (SELECT count(*) FROM complaint WHERE org_id = $1 AND created_by <> 'test:arrange')::int AS cases,
              (SELECT count(*) FROM complaint c JOIN survey_response r ON r.id = c.survey_response_id WHERE c.org_id = $1)::int AS "lowCases",
              (SELECT count(*) FROM survey_invitation i WHERE i.org_id = $1 AND (i.responded_at IS NOT NULL) <> EXISTS (SELECT 1 FROM survey_response r WHERE r.invitation_id = i.id))::int AS "answeredWithout"`,
      [world.chainId, since],
    ).then((r) => r.rows);
    expect(responses / opened).toBeGreaterThan(0.3);
    expect(responses / opened).toBeLessThan(0.6);
    // Every low score has its one case (the test responses above included), and eight were filed directly.
    expect(lowCases).toBe(low);
    expect(cases).toBe(low + 8);
    expect(answeredWithout).toBe(0);
    const statuses = await world.api.owner.complaint.groupBy({ by: ['status'], where: { orgId: world.chainId, createdBy: { not: 'test:arrange' } }, _count: true });
    // Cases of every age: most closed, some still being worked on.
    expect(statuses.map((s) => s.status)).toEqual(expect.arrayContaining(['CLOSED', 'RESOLVED', 'IN_PROGRESS']));

    const from = since.toISOString().slice(0, 10);
    const to = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const rows = await call(world.api, SURVEY_METRICS, { from, to, period: 'MONTH', groupBy: 'STORE' }, 'HQ_ANALYST');
    const [{ inRange }] = await world.owner.query(
      `SELECT count(*)::int AS "inRange" FROM survey_response r JOIN store s ON s.id = r.store_id
        WHERE r.org_id = $1 AND (r.submitted_at AT TIME ZONE s.timezone)::date BETWEEN $2::date AND $3::date`,
      [world.chainId, from, to],
    ).then((r) => r.rows);
    expect(rows.reduce((sum: number, r: { responses: number }) => sum + r.responses, 0)).toBe(inRange);
    expect(new Set(rows.map((r: { store: { code: string } }) => r.store.code))).toEqual(new Set(['SH-01', 'BJ-01', 'CD-01', 'UR-01']));
    const complaintsByStore = await call(world.api, COMPLAINT_METRICS, { from, to, period: 'YEAR', groupBy: 'ORGANIZATION' }, 'OWNER');
    expect(complaintsByStore.reduce((sum: number, r: { opened: number }) => sum + r.opened, 0)).toBeGreaterThan(8);
  });
});
