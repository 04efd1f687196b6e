/**
 * Care tasks: what the scheduled job creates for a chain arranged around a fixed moment (lapses, birthdays in the
 * home store's time zone, repurchase cycles, follow-ups), that running it twice — one after the other or at once —
 * creates nothing twice, the visit.completed handler (feedback, and closing what the visit answers) delivered twice,
 * completing / snoozing / dismissing with reasons and typed errors, who sees which tasks, and careTaskCreated.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import { toDomainEvent, type DomainEvent } from '../../core/events/outbox.ts';
import { runHandler } from '../../core/events/worker.ts';
import type { EventHandler } from '../../core/plugin/contract.ts';
import { gid, startTestPlatform, type TestPlatform } from '../../core/testing/platform.ts';
import { generateCareTasks } from './care.ts';
import type { InsightsConfig } from './config.ts';
import { call, fingerprint, newChain, type Chain, type StoreCode } from './testing.ts';

const DAY = 86_400_000;
// 17:00 UTC: already 01:00 on December 1 in Shanghai, still 23:00 on November 30 in Ürümqi.
const NOW = new Date('2026-11-30T17:00:00.000Z');
const ago = (days: number, from = NOW) => new Date(from.getTime() - days * DAY);

let api: TestPlatform;
let chain: Chain;
let config: InsightsConfig;
let consultant: Principal;
let formerConsultantId: string;
let serviceS: string;
const c: Record<string, string> = {};
const visits: Record<string, string> = {};

async function visitWith(customerId: string, store: StoreCode, at: Date, serviceId?: string) {
  const visitId = await chain.visit(customerId, store, at, 50_000);
  if (serviceId) {
    await api.owner.visitLine.create({
      data: { orgId: chain.orgId, visitId, position: 0, kind: 'SERVICE', serviceId, description: 'Hydrating facial', quantity: 1, unitPriceMinor: 50_000, amountMinor: 50_000 },
    });
  }
  return visitId;
}

async function booking(customerId: string, store: StoreCode, at: Date) {
  await api.owner.visit.create({
    data: { orgId: chain.orgId, storeId: chain.stores[store], customerId, status: 'BOOKED', scheduledStart: at, scheduledEnd: new Date(at.getTime() + 3_600_000) },
  });
}

beforeAll(async () => {
  api = await startTestPlatform({ plugins: ['insights'] });
  config = api.running.platform.plugins.find((p) => p.definition.name === 'insights')!.config as InsightsConfig;
  chain = await newChain(api.owner, 'Care chain');
  consultant = await chain.staff('CONSULTANT', 'SH');
  const former = await chain.staff('CONSULTANT', 'CD');
  formerConsultantId = (former as { staffId: string }).staffId;
  await api.owner.staff.update({ where: { id: formerConsultantId }, data: { active: false } });
  const consultantId = (consultant as { staffId: string }).staffId;
  serviceS = (await api.owner.service.create({
    data: { orgId: chain.orgId, category: 'FACIAL', name: 'Hydrating facial', durationMinutes: 60, priceMinor: 50_000, repurchaseCycleDays: 28 },
    select: { id: true },
  })).id;

  // Lapses: W1 and W5 reached 90 days without a visit; W2 has a booking; W3 is lost (over a year); W4 came a month ago.
  c.W1 = await chain.customer({ name: 'W1', home: 'SH', consultantId });
  await visitWith(c.W1, 'SH', ago(100));
  c.W2 = await chain.customer({ name: 'W2', home: 'CD' });
  await visitWith(c.W2, 'CD', ago(100));
  await booking(c.W2, 'CD', new Date(NOW.getTime() + 2 * DAY));
  c.W3 = await chain.customer({ name: 'W3', home: 'UR' });
  await visitWith(c.W3, 'UR', ago(400));
  c.W4 = await chain.customer({ name: 'W4', home: 'SH' });
  await visitWith(c.W4, 'SH', ago(30));
  c.W5 = await chain.customer({ name: 'W5', home: undefined, consultantId: formerConsultantId });
  await api.owner.customer.update({ where: { id: c.W5 }, data: { homeStoreId: null } });
  await visitWith(c.W5, 'CD', ago(95));
  // Birthdays, read in the home store's time zone: at NOW Ürümqi is in November, Shanghai in December.
  c.BUR = await chain.customer({ name: 'BUR', home: 'UR', birthday: '1990-11-15' });
  c.BSH = await chain.customer({ name: 'BSH', home: 'SH', birthday: '1990-11-15' });
  c.BSH2 = await chain.customer({ name: 'BSH2', home: 'SH', birthday: '1992-12-03', consultantId });
  c.BUR2 = await chain.customer({ name: 'BUR2', home: 'UR', birthday: '1992-12-03' });
  // Repurchase (28-day cycle, 3 days' lead): R1 is due in 2 days; R2 in 8; R3 came again 5 days ago; R4 is 12 days
  // overdue (past the week of grace: the win-back takes over); R5 has a booking.
  c.R1 = await chain.customer({ name: 'R1', home: 'SH' });
  visits.R1 = await visitWith(c.R1, 'SH', ago(26), serviceS);
  c.R2 = await chain.customer({ name: 'R2', home: 'SH' });
  await visitWith(c.R2, 'SH', ago(20), serviceS);
  c.R3 = await chain.customer({ name: 'R3', home: 'SH' });
  await visitWith(c.R3, 'SH', ago(26), serviceS);
  visits.R3 = await visitWith(c.R3, 'SH', ago(5), serviceS);
  c.R4 = await chain.customer({ name: 'R4', home: 'SH' });
  await visitWith(c.R4, 'SH', ago(40), serviceS);
  c.R5 = await chain.customer({ name: 'R5', home: 'SH' });
  await visitWith(c.R5, 'SH', ago(26), serviceS);
  await booking(c.R5, 'SH', new Date(NOW.getTime() + DAY));
  // Follow-ups from 3 days after a visit until 7: F1 (4 days ago) and R3 (5 days ago) now; F2 (2 days) tomorrow; F3 (8) never.
  c.F1 = await chain.customer({ name: 'F1', home: 'CD' });
  visits.F1 = await visitWith(c.F1, 'CD', ago(4));
  c.F2 = await chain.customer({ name: 'F2', home: 'CD' });
  visits.F2 = await visitWith(c.F2, 'CD', ago(2));
  c.F3 = await chain.customer({ name: 'F3', home: 'CD' });
  await visitWith(c.F3, 'CD', ago(8));
  await chain.refreshFacts();
}, 120_000);
afterAll(() => api?.close());

const name = (id: string) => Object.entries(c).find(([, value]) => value === id)?.[0];

async function tasksOfChain() {
  const rows = await api.owner.insightsCareTask.findMany({ where: { orgId: chain.orgId }, orderBy: [{ kind: 'asc' }, { dedupeKey: 'asc' }] });
  return rows.map((t) => ({ ...t, who: name(t.customerId) }));
}

describe('the care-task job', () => {
  test('creates what is due, once, even when two runs race — and a second run creates nothing', async () => {
    await Promise.all([generateCareTasks(api.running.platform, config, NOW), generateCareTasks(api.running.platform, config, NOW)]);
    const tasks = await tasksOfChain();
    expect(tasks.map((t) => `${t.kind} ${t.who}`).sort()).toEqual(
      ['BIRTHDAY BSH2', 'BIRTHDAY BUR', 'FOLLOW_UP F1', 'FOLLOW_UP R3', 'REPURCHASE R1', 'WIN_BACK W1', 'WIN_BACK W5'].sort(),
    );
    const fingerprintBefore = await fingerprint(api.owner);
    const again = await generateCareTasks(api.running.platform, config, NOW);
    expect(again).toEqual({ created: 0, reopened: 0 });
    expect(await fingerprint(api.owner)).toEqual(fingerprintBefore);
    // One careTask.created event per task.
    const events = await api.owner.domainEvent.findMany({ where: { orgId: chain.orgId, type: 'careTask.created' } });
    expect(events.map((e) => e.aggregateId).sort()).toEqual(tasks.map((t) => t.id).sort());
  });

  test('each task has its key, store, assignee and due time', async () => {
    const tasks = Object.fromEntries((await tasksOfChain()).map((t) => [`${t.kind} ${t.who}`, t]));
    const consultantId = (consultant as { staffId: string }).staffId;
    const lastVisit = (await api.owner.customerFact.findUniqueOrThrow({ where: { customerId: c.W1! } })).lastVisitAt!;
    expect(tasks['WIN_BACK W1']).toMatchObject({
      dedupeKey: `win-back:${c.W1}:${lastVisit.toISOString()}`, storeId: chain.stores.SH, assigneeId: consultantId,
      dueAt: new Date(NOW.getTime() + 72 * 3_600_000), status: 'OPEN', title: 'Win back: no visit in 90 days',
    });
    // No home store: the store of the last visit; an inactive consultant: the store's team.
    expect(tasks['WIN_BACK W5']).toMatchObject({ storeId: chain.stores.CD, assigneeId: null });
    // Ürümqi's November (due: NOW + 24h, the birthday having passed); Shanghai's December (due by the end of Dec 3 local).
    expect(tasks['BIRTHDAY BUR']).toMatchObject({ dedupeKey: `birthday:${c.BUR}:2026-11`, storeId: chain.stores.UR, dueAt: new Date(NOW.getTime() + DAY) });
    expect(tasks['BIRTHDAY BSH2']).toMatchObject({ dedupeKey: `birthday:${c.BSH2}:2026-12`, dueAt: new Date('2026-12-03T16:00:00.000Z'), assigneeId: consultantId });
    expect(tasks['REPURCHASE R1']).toMatchObject({
      dedupeKey: `repurchase:${c.R1}:${serviceS}:${visits.R1}`, serviceId: serviceS, visitId: visits.R1, dueAt: new Date(ago(26).getTime() + 28 * DAY),
      title: 'Repurchase cycle: Hydrating facial',
    });
    expect(tasks['FOLLOW_UP F1']).toMatchObject({ dedupeKey: `follow-up:${visits.F1}`, visitId: visits.F1, storeId: chain.stores.CD, dueAt: new Date(ago(4).getTime() + 7 * DAY) });
    const log = await api.owner.insightsCareTaskLog.findMany({ where: { taskId: tasks['WIN_BACK W1']!.id } });
    expect(log.map((l) => [l.action, l.actor])).toEqual([['CREATED', 'plugin:insights']]);
  });

  test('a day later only the new periods create tasks', async () => {
    const later = new Date(NOW.getTime() + DAY); // Ürümqi is now in December too; F2's visit is 3 days old
    await generateCareTasks(api.running.platform, config, later);
    const tasks = await tasksOfChain();
    expect(tasks.length).toBe(9);
    expect(tasks.map((t) => `${t.kind} ${t.who}`)).toEqual(expect.arrayContaining(['BIRTHDAY BUR2', 'FOLLOW_UP F2']));
    expect(tasks.find((t) => t.who === 'BUR2')!.dedupeKey).toBe(`birthday:${c.BUR2}:2026-12`);
    await generateCareTasks(api.running.platform, config, later);
    expect((await tasksOfChain()).length).toBe(9);
  });
});

// --- visit.completed ----------------------------------------------------------------------------------------------

async function completedEvent(customerId: string, store: StoreCode, serviceId?: string): Promise<DomainEvent> {
  const completedAt = new Date();
  const visitId = await chain.visit(customerId, store, completedAt, 68_000);
  const row = await api.owner.domainEvent.create({
    data: {
      orgId: chain.orgId, type: 'visit.completed', aggregateType: 'Visit', aggregateId: visitId, streamKey: customerId, actor: 'test',
      payload: { visitId, customerId, storeId: chain.stores[store], completedAt: completedAt.toISOString(), totalMinor: 68_000, lines: serviceId ? [{ kind: 'SERVICE', serviceId }] : [] },
    },
  });
  return toDomainEvent(row);
}

describe('visit.completed', () => {
  const handler = () => api.running.platform.plugins.find((p) => p.definition.name === 'insights')!.definition.handlers!['visit.completed'] as EventHandler<unknown>;

  test('creates the feedback task once, however often the event arrives, and closes what the visit answers', async () => {
    const event = await completedEvent(c.W1!, 'SH');
    const platform = api.running.platform;
    expect(await runHandler(platform, 'insights', config, handler(), event)).toBe(true);
    expect(await runHandler(platform, 'insights', config, handler(), event)).toBe(false);
    // Even past the per-handler claim (another handler name), the task's key keeps it single.
    expect(await runHandler(platform, 'insights-replay', config, handler(), event)).toBe(true);
    await api.drainJobs();
    const feedback = await api.owner.insightsCareTask.findMany({ where: { orgId: chain.orgId, kind: 'FEEDBACK', customerId: c.W1 } });
    expect(feedback).toHaveLength(1);
    const visit = await api.owner.visit.findUniqueOrThrow({ where: { id: String(event.payload.visitId) } });
    expect(feedback[0]).toMatchObject({
      dedupeKey: `feedback:${visit.id}`, storeId: chain.stores.SH, dueAt: new Date(visit.completedAt!.getTime() + 24 * 3_600_000),
      assigneeId: (consultant as { staffId: string }).staffId, title: 'Feedback within 24 hours of the visit',
    });
    // W1 came back: the win-back is done, with the reason and a log line.
    const winBack = await api.owner.insightsCareTask.findFirstOrThrow({ where: { orgId: chain.orgId, kind: 'WIN_BACK', customerId: c.W1 }, include: { log: true } });
    expect(winBack).toMatchObject({ status: 'DONE', resolution: 'The customer came back (visit completed)', resolvedBy: 'plugin:insights' });
    expect(winBack.log.map((l) => l.action)).toEqual(['CREATED', 'COMPLETED']);
    expect(await api.owner.domainEvent.count({ where: { orgId: chain.orgId, type: 'careTask.created', aggregateId: feedback[0]!.id } })).toBe(1);
  });

  test('a visit with the service closes its repurchase reminder; other services and other customers\' do not', async () => {
    const other = await api.owner.service.create({ data: { orgId: chain.orgId, category: 'NAIL', name: 'Manicure', durationMinutes: 30, priceMinor: 10_000 }, select: { id: true } });
    await runHandler(api.running.platform, 'insights', config, handler(), await completedEvent(c.R1!, 'SH', other.id));
    expect((await api.owner.insightsCareTask.findFirstOrThrow({ where: { orgId: chain.orgId, kind: 'REPURCHASE', customerId: c.R1 } })).status).toBe('OPEN');
    await runHandler(api.running.platform, 'insights', config, handler(), await completedEvent(c.R1!, 'SH', serviceS));
    expect((await api.owner.insightsCareTask.findFirstOrThrow({ where: { orgId: chain.orgId, kind: 'REPURCHASE', customerId: c.R1 } })).status).toBe('DONE');
    expect((await api.owner.insightsCareTask.findFirstOrThrow({ where: { orgId: chain.orgId, kind: 'WIN_BACK', customerId: c.W5 } })).status).toBe('OPEN');
  });
});

// --- Working on tasks ---------------------------------------------------------------------------------------------

const COMPLETE = `mutation($input: CompleteCareTaskInput!) { completeCareTask(input: $input) { task { status resolution resolvedBy log { action reason actor } } userErrors { __typename code field } } }`;
const DISMISS = `mutation($input: DismissCareTaskInput!) { dismissCareTask(input: $input) { task { status resolution } userErrors { __typename code field } } }`;
const SNOOZE = `mutation($input: SnoozeCareTaskInput!) { snoozeCareTask(input: $input) { task { status snoozedUntil } userErrors { __typename code field } } }`;

async function taskId(kind: string, who: string) {
  return (await api.owner.insightsCareTask.findFirstOrThrow({ where: { orgId: chain.orgId, kind: kind as never, customerId: c[who] } })).id;
}

describe('completing, snoozing and dismissing', () => {
  test('the consultant completes a task with what was done; a second attempt conflicts and changes nothing', async () => {
    const id = gid('CareTask', await taskId('BIRTHDAY', 'BSH2'));
    const done = await call(api, COMPLETE, { input: { taskId: id, reason: 'Called; birthday facial booked' } }, consultant);
    const staffKey = `staff:${(consultant as { staffId: string }).staffId}`;
    expect(done.completeCareTask).toEqual({
      task: { status: 'DONE', resolution: 'Called; birthday facial booked', resolvedBy: staffKey, log: [
        { action: 'CREATED', reason: null, actor: 'plugin:insights' },
        { action: 'COMPLETED', reason: 'Called; birthday facial booked', actor: staffKey },
      ] },
      userErrors: [],
    });
    const before = await fingerprint(api.owner);
    const again = await call(api, DISMISS, { input: { taskId: id, reason: 'Duplicate' } }, consultant);
    expect(again.dismissCareTask).toEqual({ task: null, userErrors: [{ __typename: 'ConflictError', code: 'INVALID_STATE', field: ['input', 'taskId'] }] });
    expect(await fingerprint(api.owner)).toEqual(before);
  });

  test('reasons are required, snoozes are bounded, and bad input changes nothing', async () => {
    const id = gid('CareTask', await taskId('FOLLOW_UP', 'F1'));
    const before = await fingerprint(api.owner);
    expect((await call(api, DISMISS, { input: { taskId: id, reason: '   ' } }, chain.owner)).dismissCareTask.userErrors)
      .toEqual([{ __typename: 'ValidationError', code: 'INVALID', field: ['input', 'reason'] }]);
    expect((await call(api, SNOOZE, { input: { taskId: id, reason: 'Later', until: new Date(Date.now() - 60_000).toISOString() } }, chain.owner)).snoozeCareTask.userErrors)
      .toEqual([{ __typename: 'ValidationError', code: 'INVALID', field: ['input', 'until'] }]);
    expect((await call(api, SNOOZE, { input: { taskId: id, reason: 'Later', until: new Date(Date.now() + 91 * DAY).toISOString() } }, chain.owner)).snoozeCareTask.userErrors)
      .toEqual([{ __typename: 'ValidationError', code: 'INVALID', field: ['input', 'until'] }]);
    expect((await call(api, COMPLETE, { input: { taskId: id, reason: 'x'.repeat(501) } }, chain.owner)).completeCareTask.userErrors[0].field).toEqual(['input', 'reason']);
    expect(await fingerprint(api.owner)).toEqual(before);
  });

  test('a snoozed task opens again when its time comes (the job wakes it, once)', async () => {
    const rawId = await taskId('FOLLOW_UP', 'F1');
    const until = new Date(Date.now() + 3_600_000);
    const snoozed = await call(api, SNOOZE, { input: { taskId: gid('CareTask', rawId), reason: 'Customer travelling', until: until.toISOString() } }, chain.owner);
    expect(snoozed.snoozeCareTask).toEqual({ task: { status: 'SNOOZED', snoozedUntil: until.toISOString() }, userErrors: [] });
    // Runs at today's time only wake snoozed tasks (no kinds): the chain's data is arranged around NOW, not today.
    const wakeOnly = { ...config, care: { ...config.care, kinds: [] } };
    await generateCareTasks(api.running.platform, wakeOnly, new Date(Date.now() + 1_800_000));
    expect((await api.owner.insightsCareTask.findUniqueOrThrow({ where: { id: rawId } })).status).toBe('SNOOZED');
    const woken = await generateCareTasks(api.running.platform, wakeOnly, new Date(Date.now() + 7_200_000));
    expect(woken.reopened).toBeGreaterThanOrEqual(1);
    const task = await api.owner.insightsCareTask.findUniqueOrThrow({ where: { id: rawId }, include: { log: { orderBy: { id: 'asc' } } } });
    expect(task).toMatchObject({ status: 'OPEN', snoozedUntil: null });
    expect(task.log.map((l) => [l.action, l.reason])).toEqual([['CREATED', null], ['SNOOZED', 'Customer travelling'], ['REOPENED', null]]);
    expect(await api.owner.domainEvent.count({ where: { type: 'careTask.reopened', aggregateId: rawId } })).toBe(1);
    await generateCareTasks(api.running.platform, wakeOnly, new Date(Date.now() + 7_200_000));
    expect(await api.owner.domainEvent.count({ where: { type: 'careTask.reopened', aggregateId: rawId } })).toBe(1);
  });

  test('another store\'s staff, another chain and a random id are all "not found"; roles without care:work are forbidden', async () => {
    const id = gid('CareTask', await taskId('FOLLOW_UP', 'R3')); // at SH, not assigned to anyone
    const cdFrontDesk = await chain.staff('FRONT_DESK', 'CD');
    const before = await fingerprint(api.owner);
    const answers = [];
    for (const [as, taskId] of [[cdFrontDesk, id], ['OTHER_CHAIN_OWNER', id], [chain.owner, gid('CareTask', randomUUID())]] as const) {
      answers.push((await call(api, DISMISS, { input: { taskId, reason: 'Not mine' } }, as as never)).dismissCareTask);
    }
    expect(answers).toEqual(Array(3).fill({ task: null, userErrors: [{ __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'taskId'] }] }));
    const beautician = await chain.staff('BEAUTICIAN', 'SH');
    expect((await call(api, DISMISS, { input: { taskId: id, reason: 'x' } }, beautician)).dismissCareTask.userErrors[0].__typename).toBe('ForbiddenError');
    expect(await fingerprint(api.owner)).toEqual(before);
    expect(await call(api, `query($id: ID!) { node(id: $id) { id } }`, { id }, 'OTHER_CHAIN_OWNER')).toEqual({ node: null });
    expect(await call(api, `query($id: ID!) { node(id: $id) { id } }`, { id }, cdFrontDesk)).toEqual({ node: null });
  });
});

describe('careTasks', () => {
  const LIST = `query($filter: CareTaskFilter) { careTasks(first: 50, filter: $filter) { edges { node {
    kind status customer { name } store { code } assignee { name } visit { id } service { name } overdue
  } } } }`;
  const listed = async (as: Principal | 'OTHER_CHAIN_OWNER' | 'OWNER', filter?: object) =>
    (await call(api, LIST, { filter }, as as never)).careTasks.edges.map((e: any) => e.node);

  test('store-bound staff see their store\'s tasks and those assigned to them; HQ sees the chain; nobody else\'s', async () => {
    const all = await listed(chain.owner, { statuses: ['OPEN', 'SNOOZED', 'DONE', 'DISMISSED'] });
    const cd = await chain.staff('FRONT_DESK', 'CD');
    const cdTasks = await listed(cd, { statuses: ['OPEN', 'SNOOZED', 'DONE', 'DISMISSED'] });
    expect(cdTasks.length).toBeGreaterThan(0);
    expect(cdTasks.every((t: any) => t.store.code === 'CD')).toBe(true);
    expect(cdTasks.length).toBe(all.filter((t: any) => t.store?.code === 'CD').length);
    const mine = await listed(consultant, { statuses: ['OPEN', 'SNOOZED', 'DONE', 'DISMISSED'] });
    expect(mine.length).toBe(all.filter((t: any) => t.store?.code === 'SH' || t.assignee?.name === 'CONSULTANT SH').length);
    const assigned = await listed(consultant, { assignedToMe: true, statuses: ['OPEN', 'DONE'] });
    expect(assigned.length).toBeGreaterThan(0);
    expect(assigned.every((t: any) => t.assignee.name === 'CONSULTANT SH')).toBe(true);
    const theirs = await listed('OTHER_CHAIN_OWNER', { statuses: ['OPEN', 'SNOOZED', 'DONE', 'DISMISSED'] });
    expect(theirs.map((t: any) => t.customer?.name)).not.toEqual(expect.arrayContaining(['W1']));
    expect((await api.gql(LIST, {}, 'BEAUTICIAN')).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await api.gql(LIST, {}, 'CUSTOMER')).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  test('filters by kind and status, soonest due first, with the customer, store, visit and service loaded', async () => {
    const open = await listed(chain.owner, { kinds: ['REPURCHASE', 'FOLLOW_UP'], statuses: ['OPEN', 'DONE'] });
    expect(open.map((t: any) => `${t.kind} ${t.customer.name} ${t.status}`).sort()).toEqual(
      ['FOLLOW_UP F1 OPEN', 'FOLLOW_UP F2 OPEN', 'FOLLOW_UP R3 OPEN', 'REPURCHASE R1 DONE'].sort(),
    );
    expect(open.find((t: any) => t.kind === 'REPURCHASE')).toMatchObject({ service: { name: 'Hydrating facial' }, store: { code: 'SH' } });
    expect(open.find((t: any) => t.customer.name === 'F1').visit).toEqual({ id: gid('Visit', visits.F1!) });
  });
});

describe('careTaskCreated', () => {
  const SUBSCRIPTION = `subscription($storeId: ID!) { careTaskCreated(storeId: $storeId) { type task { kind customer { name } } } }`;

  function watch(client: Client, storeId: string) {
    const events: any[] = [];
    const errors: unknown[] = [];
    let done = false;
    const stop = client.subscribe(
      { query: SUBSCRIPTION, variables: { storeId: gid('Store', storeId) } },
      {
        next: (result) => {
          if (result.errors) errors.push(...result.errors);
          if (result.data) events.push((result.data as any).careTaskCreated);
        },
        error: (error) => {
          errors.push(error);
          done = true;
        },
        complete: () => {
          done = true;
        },
      },
    );
    return { events, errors, stop, get done() { return done; }, real: () => events.filter((e) => e.task !== null) };
  }

  async function until(check: () => boolean, ms = 15_000) {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  test('reaches the store\'s staff, and refuses another store\'s staff like a missing store', async () => {
    const frontDesk = await chain.staff('FRONT_DESK', 'SH');
    const sub = watch(await api.ws(frontDesk), chain.stores.SH);
    const refused = [
      watch(await api.ws(await chain.staff('FRONT_DESK', 'CD')), chain.stores.SH),
      watch(await api.ws('OTHER_CHAIN_OWNER'), chain.stores.SH),
      watch(await api.ws(frontDesk), randomUUID()),
    ];
    try {
      // graphql-ws does not acknowledge a subscription: publish probes (no such task) until one arrives.
      while (!sub.events.length) {
        if (sub.done) throw new Error(JSON.stringify(sub.errors));
        api.running.platform.publish({
          id: '0', orgId: chain.orgId, actor: 'test', type: 'careTask.created', aggregateType: 'CareTask', aggregateId: randomUUID(),
          streamKey: null, payload: { storeId: chain.stores.SH }, occurredAt: new Date().toISOString(),
        });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await until(() => refused.every((s) => s.done));
      const answers = refused.map((s) => JSON.stringify(s.errors.map((e: any) => [e.message, e.extensions?.code])));
      expect(new Set(answers).size).toBe(1);
      expect(answers[0]).toContain('NOT_FOUND');

      // A feedback task at SH (from a completed visit) and one at CD.
      const handler = api.running.platform.plugins.find((p) => p.definition.name === 'insights')!.definition.handlers!['visit.completed'] as EventHandler<unknown>;
      await runHandler(api.running.platform, 'insights', config, handler, await completedEvent(c.W4!, 'SH'));
      await runHandler(api.running.platform, 'insights', config, handler, await completedEvent(c.F3!, 'CD'));
      await until(() => sub.real().length >= 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(sub.real()).toEqual([{ type: 'careTask.created', task: { kind: 'FEEDBACK', customer: { name: 'W4' } } }]);
      expect(sub.errors).toEqual([]);
    } finally {
      for (const s of [sub, ...refused]) s.stop();
    }
  });
});

describe('the database wall', () => {
  test('as the application role, another tenant sees no task, and history cannot be rewritten', async () => {
    const client = new pg.Client({ connectionString: api.database.url });
    await client.connect();
    try {
      await client.query('SET ROLE crm_app');
      await client.query("SELECT set_config('app.org_id', $1, false)", [api.principals.OTHER_CHAIN_OWNER!.orgId]);
      for (const table of ['insights_care_task', 'insights_care_task_log', 'insights_segment', 'insights_settings']) {
        const { rows } = await client.query(`SELECT count(*)::int AS n FROM ${table} WHERE org_id = $1`, [chain.orgId]);
        expect(rows[0].n, table).toBe(0);
      }
      const task = await api.owner.insightsCareTask.findFirstOrThrow({ where: { orgId: chain.orgId } });
      await expect(client.query(
        `INSERT INTO insights_care_task_log (org_id, task_id, action, actor) VALUES ($1, $2, 'CREATED', 'intruder')`, [chain.orgId, task.id],
      )).rejects.toThrow(/row-level security/);
      await client.query("SELECT set_config('app.org_id', $1, false)", [chain.orgId]);
      const { rows } = await client.query('SELECT count(*)::int AS n FROM insights_care_task');
      expect(rows[0].n).toBeGreaterThan(0);
      await expect(client.query(`UPDATE insights_care_task_log SET reason = 'rewritten'`)).rejects.toThrow(/permission denied/);
      await expect(client.query(`DELETE FROM insights_care_task WHERE id = $1`, [task.id])).rejects.toThrow(/permission denied/);
      await expect(client.query(`UPDATE insights_care_task SET dedupe_key = 'x' WHERE id = $1`, [task.id])).rejects.toThrow(/permission denied/);
    } finally {
      await client.end();
    }
  });
});
