/**
 * Complaints (with the surveys plugin alone: no points, no tiers): filing by customers and staff, the workflow and
 * its typed errors, reopening within the window, assignment, the append-only timeline, SLA due times in each
 * store's business hours, breach detection at the due-time edge, and complaintUpdated for each kind of caller.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sleep, waitFor, wsCollect } from '../../core/security/support.ts';
import { flagSlaBreaches, openComplaint, slaDueTimes } from './complaints.ts';
import { surveysConfigSchema } from './config.ts';
import {
  appRoleClient,
  ASSIGN,
  asApp,
  call,
  closeWorld,
  COMMENT,
  completeVisit,
  customerPrincipal,
  expectRejected,
  FILE,
  gid,
  newCustomer,
  REOPEN,
  staffAt,
  startSurveysWorld,
  UPDATE_STATUS,
  uuidOf,
  type SurveysWorld,
} from './testing.ts';

let world: SurveysWorld;
beforeAll(async () => {
  world = await startSurveysWorld();
});
afterAll(() => closeWorld(world));

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A case opened through the plugin's own code (as the application role), at a chosen instant. */
function arrangeComplaint(options: { storeId?: string; customerId?: string | null; severity?: 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL'; openedAt?: Date; orgId?: string }) {
  const orgId = options.orgId ?? world.chainId;
  return asApp(world, (tx, emit) =>
    openComplaint(tx, emit, world.config, {
      orgId,
      customerId: options.customerId ?? null,
      storeId: options.storeId ?? world.stores.SH,
      visitId: null,
      staffId: null,
      category: 'SERVICE_QUALITY',
      severity: options.severity ?? 'MEDIUM',
      source: 'STAFF',
      subject: 'Arranged by a test',
      description: null,
      surveyResponseId: null,
      actor: 'test:arrange',
      openedAt: options.openedAt,
    }), orgId);
}

const step = (complaintId: string, status: string, as: Parameters<typeof call>[3] = 'STORE_MANAGER', note?: string) =>
  call(world.api, UPDATE_STATUS, { input: { complaintId: gid('Complaint', complaintId), status, ...(note ? { note } : {}) } }, as);

describe('filing', () => {
  test('a customer files for themself about their visit: severity from the category, the store manager assigned, SLA due times set', async () => {
    const customerId = await newCustomer(world);
    const { visitId } = await completeVisit(world, customerId);
    const as = customerPrincipal(world, customerId);
    const filed = await call(world.api, FILE, { input: { category: 'ADVERSE_REACTION', subject: 'Redness after the peel', description: 'Still red the next day', visitId: gid('Visit', visitId) } }, as);
    expect(filed.userErrors).toEqual([]);
    const complaint = filed.complaint;
    expect(complaint).toMatchObject({
      status: 'OPEN',
      category: 'ADVERSE_REACTION',
      severity: 'HIGH',
      source: 'CUSTOMER',
      assignee: { id: gid('Staff', world.managers.SH) },
      store: { id: gid('Store', world.stores.SH) },
      customer: { id: gid('Customer', customerId) },
      visit: { id: gid('Visit', visitId) },
      timeline: [{ kind: 'OPENED', fromStatus: null, toStatus: 'OPEN', note: 'Redness after the peel', internal: false, actor: `customer:${customerId}` }],
    });
    // HIGH: a first response within 2 business hours, resolution within 22, on Shanghai's clock.
    const [due] = await world.api.owner.$queryRaw<{ first: Date; resolution: Date }[]>`
      SELECT complaint_business_due(${new Date(complaint.openedAt)}::timestamptz, 120, 'Asia/Shanghai', 600, 1260, '{1,2,3,4,5,6,7}') AS first,
             complaint_business_due(${new Date(complaint.openedAt)}::timestamptz, 1320, 'Asia/Shanghai', 600, 1260, '{1,2,3,4,5,6,7}') AS resolution`;
    expect([complaint.firstResponseDueAt, complaint.resolutionDueAt]).toEqual([due!.first.toISOString(), due!.resolution.toISOString()]);
    const opened = await world.api.owner.domainEvent.findMany({ where: { type: 'complaint.opened', aggregateId: uuidOf(complaint.id) } });
    expect(opened).toEqual([expect.objectContaining({ streamKey: customerId, payload: expect.objectContaining({ customerId, storeId: world.stores.SH, status: 'OPEN' }) })]);
  });

  test('staff file for a customer at their store; a store named without a customer is fine too', async () => {
    const customerId = await newCustomer(world);
    const staff = await world.api.owner.staff.findFirstOrThrow({ where: { role: 'BEAUTICIAN', active: true, stores: { some: { storeId: world.stores.SH } } } });
    const filed = await call(world.api, FILE, {
      input: { category: 'STAFF_ATTITUDE', severity: 'LOW', subject: 'Rude on the phone', customerId: gid('Customer', customerId), storeId: gid('Store', world.stores.SH), staffId: gid('Staff', staff.id) },
    }, 'FRONT_DESK');
    expect(filed.userErrors).toEqual([]);
    expect(filed.complaint).toMatchObject({ severity: 'LOW', source: 'STAFF', customer: { id: gid('Customer', customerId) } });
    const anonymous = await call(world.api, FILE, { input: { category: 'HYGIENE', subject: 'Wet floor by the door', storeId: gid('Store', world.stores.SH) } }, 'STORE_MANAGER');
    expect(anonymous.complaint).toMatchObject({ severity: 'MEDIUM', customer: null });
    // Numbers follow each other in the organization.
    expect(anonymous.complaint.number).toBe(filed.complaint.number + 1);
  });

  test('other customers\', other stores\' and other chains\' ids are refused like missing ones, and nothing is stored', async () => {
    const customerId = await newCustomer(world);
    const other = await newCustomer(world);
    const { visitId: othersVisit } = await completeVisit(world, other);
    const { visitId: beijingVisit } = await completeVisit(world, customerId, { storeId: world.stores.BJ });
    const beijingStaff = await world.api.owner.staff.findFirstOrThrow({ where: { role: 'BEAUTICIAN', stores: { some: { storeId: world.stores.BJ } }, NOT: { stores: { some: { storeId: world.stores.SH } } } } });
    const foreignCustomer = await newCustomer(world, { orgId: world.otherChainId, storeId: world.otherStore });
    const as = customerPrincipal(world, customerId);
    const base = { category: 'OTHER', subject: 'Something' };
    const notFound = (field: string, message?: string) => ({ __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', field], ...(message ? { message } : {}) });

    await expectRejected(world, FILE, { ...base, customerId: gid('Customer', other), storeId: gid('Store', world.stores.SH) }, as, notFound('customerId'));
    await expectRejected(world, FILE, { ...base, visitId: gid('Visit', othersVisit) }, as, notFound('visitId'));
    await expectRejected(world, FILE, { ...base, storeId: gid('Store', world.otherStore) }, as, notFound('storeId'));
    await expectRejected(world, FILE, { ...base, storeId: gid('Store', world.stores.SH), severity: 'CRITICAL' }, as, { __typename: 'ValidationError', field: ['input', 'severity'] });
    await expectRejected(world, FILE, { ...base }, as, { __typename: 'ValidationError', field: ['input', 'storeId'] });
    await expectRejected(world, FILE, { ...base, subject: ' ', storeId: gid('Store', world.stores.SH) }, as, { __typename: 'ValidationError', field: ['input', 'subject'] });

    // The SH front desk: not Beijing's visit or store, not Beijing's staff at Shanghai, not another chain's customer.
    await expectRejected(world, FILE, { ...base, visitId: gid('Visit', beijingVisit) }, 'FRONT_DESK', notFound('visitId', 'Visit not found'));
    await expectRejected(world, FILE, { ...base, visitId: gid('Visit', randomUUID()) }, 'FRONT_DESK', notFound('visitId', 'Visit not found'));
    await expectRejected(world, FILE, { ...base, storeId: gid('Store', world.stores.BJ) }, 'FRONT_DESK', notFound('storeId', 'Store not found'));
    await expectRejected(world, FILE, { ...base, storeId: gid('Store', world.stores.SH), staffId: gid('Staff', beijingStaff.id) }, 'FRONT_DESK', notFound('staffId', 'Staff member not found'));
    await expectRejected(world, FILE, { ...base, storeId: gid('Store', world.stores.SH), customerId: gid('Customer', foreignCustomer) }, 'FRONT_DESK', notFound('customerId', 'Customer not found'));
    await expectRejected(world, FILE, { ...base, storeId: gid('Store', world.stores.SH), customerId: gid('Customer', randomUUID()) }, 'FRONT_DESK', notFound('customerId', 'Customer not found'));
    // Another chain's owner naming this chain's store, visit and customer.
    await expectRejected(world, FILE, { ...base, storeId: gid('Store', world.stores.SH) }, 'OTHER_CHAIN_OWNER', notFound('storeId', 'Store not found'));
    await expectRejected(world, FILE, { ...base, visitId: gid('Visit', beijingVisit) }, 'OTHER_CHAIN_OWNER', notFound('visitId', 'Visit not found'));
    await expectRejected(world, FILE, { ...base, storeId: gid('Store', world.otherStore), customerId: gid('Customer', customerId) }, 'OTHER_CHAIN_OWNER', notFound('customerId', 'Customer not found'));
    await expectRejected(world, FILE, { ...base, storeId: gid('Store', world.stores.SH) }, 'HQ_ANALYST', { __typename: 'ForbiddenError' });
  });
});

describe('the workflow', () => {
  test('OPEN → ACKNOWLEDGED → IN_PROGRESS → RESOLVED → CLOSED, one step at a time, every action on the timeline', async () => {
    const customerId = await newCustomer(world);
    const { id } = await arrangeComplaint({ customerId });
    const complaintId = gid('Complaint', id);
    await expectRejected(world, UPDATE_STATUS, { complaintId, status: 'IN_PROGRESS' }, 'STORE_MANAGER', { __typename: 'ComplaintTransitionError', code: 'INVALID_TRANSITION', from: 'OPEN', to: 'IN_PROGRESS' });
    await expectRejected(world, UPDATE_STATUS, { complaintId, status: 'OPEN' }, 'STORE_MANAGER', { __typename: 'ComplaintTransitionError', from: 'OPEN', to: 'OPEN' });
    await expectRejected(world, UPDATE_STATUS, { complaintId, status: 'ACKNOWLEDGED' }, 'FRONT_DESK', { __typename: 'ForbiddenError' });
    await expectRejected(world, UPDATE_STATUS, { complaintId, status: 'ACKNOWLEDGED' }, staffAt(world, world.stores.BJ, 'STORE_MANAGER'), { __typename: 'NotFoundError', field: ['input', 'complaintId'] });
    await expectRejected(world, UPDATE_STATUS, { complaintId, status: 'ACKNOWLEDGED' }, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError', field: ['input', 'complaintId'] });
    await expectRejected(world, UPDATE_STATUS, { complaintId: gid('Complaint', randomUUID()), status: 'ACKNOWLEDGED' }, 'STORE_MANAGER', { __typename: 'NotFoundError', field: ['input', 'complaintId'] });

    const acknowledged = await step(id, 'ACKNOWLEDGED', 'STORE_MANAGER', 'Called the customer');
    expect(acknowledged.complaint).toMatchObject({ status: 'ACKNOWLEDGED', firstResponseBreached: false });
    expect(acknowledged.complaint.firstRespondedAt).not.toBeNull();
    expect((await step(id, 'IN_PROGRESS', 'CONSULTANT')).complaint.status).toBe('IN_PROGRESS');
    await expectRejected(world, UPDATE_STATUS, { complaintId, status: 'RESOLVED' }, 'STORE_MANAGER', { __typename: 'ValidationError', field: ['input', 'note'] });
    await expectRejected(world, UPDATE_STATUS, { complaintId, status: 'CLOSED' }, 'STORE_MANAGER', { __typename: 'ComplaintTransitionError', from: 'IN_PROGRESS', to: 'CLOSED' });
    const resolved = await step(id, 'RESOLVED', 'STORE_MANAGER', 'Free repair treatment booked');
    expect(resolved.complaint).toMatchObject({ status: 'RESOLVED', resolutionBreached: false });
    expect(new Date(resolved.complaint.reopenableUntil).getTime()).toBe(new Date(resolved.complaint.resolvedAt).getTime() + world.config.reopenWindowDays * DAY);
    const closed = await step(id, 'CLOSED', 'OWNER');
    expect(closed.complaint.status).toBe('CLOSED');
    await expectRejected(world, UPDATE_STATUS, { complaintId, status: 'IN_PROGRESS' }, 'STORE_MANAGER', { __typename: 'ComplaintTransitionError', message: 'Use reopenComplaint to reopen a case' });
    expect(closed.complaint.timeline.map((e: { kind: string; fromStatus: string; toStatus: string }) => [e.kind, e.fromStatus, e.toStatus])).toEqual([
      ['OPENED', null, 'OPEN'],
      ['STATUS_CHANGED', 'OPEN', 'ACKNOWLEDGED'],
      ['STATUS_CHANGED', 'ACKNOWLEDGED', 'IN_PROGRESS'],
      ['STATUS_CHANGED', 'IN_PROGRESS', 'RESOLVED'],
      ['STATUS_CHANGED', 'RESOLVED', 'CLOSED'],
    ]);
    const events = await world.api.owner.domainEvent.findMany({ where: { aggregateId: id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['complaint.opened', 'complaint.acknowledged', 'complaint.workStarted', 'complaint.resolved', 'complaint.closed']);

    // The customer reopens within the window; later, outside it, they cannot.
    const as = customerPrincipal(world, customerId);
    const reopened = await call(world.api, REOPEN, { input: { complaintId, reason: 'The redness came back' } }, as);
    expect(reopened.userErrors).toEqual([]);
    expect(reopened.complaint).toMatchObject({ status: 'IN_PROGRESS', reopenCount: 1, resolvedAt: null, closedAt: null, reopenableUntil: null });
    expect(reopened.complaint.timeline.at(-1)).toMatchObject({ kind: 'REOPENED', fromStatus: 'CLOSED', toStatus: 'IN_PROGRESS', note: 'The redness came back' });
    await expectRejected(world, REOPEN, { complaintId, reason: 'Again please' }, as, { __typename: 'ComplaintTransitionError', from: 'IN_PROGRESS', to: 'IN_PROGRESS' });
    await step(id, 'RESOLVED', 'STORE_MANAGER', 'Second repair session done');
    const resolvedAt = new Date(Date.now() - (world.config.reopenWindowDays * DAY + HOUR));
    await world.api.owner.complaint.update({ where: { id }, data: { resolvedAt } });
    const [late] = await expectRejected(world, REOPEN, { complaintId, reason: 'Too late now' }, as, { __typename: 'ReopenWindowClosedError', code: 'REOPEN_WINDOW_CLOSED' });
    expect(late.reopenableUntil).toBe(new Date(resolvedAt.getTime() + world.config.reopenWindowDays * DAY).toISOString());
    // Another customer cannot reopen it, nor see it.
    const stranger = customerPrincipal(world, await newCustomer(world));
    await expectRejected(world, REOPEN, { complaintId, reason: 'Not mine' }, stranger, { __typename: 'NotFoundError' });
    expect((await world.api.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: complaintId }, stranger)).data?.node).toBeNull();
  });

  test('assignment and comments: staff notes can be internal, customers see the rest', async () => {
    const customerId = await newCustomer(world);
    const { id } = await arrangeComplaint({ customerId });
    const complaintId = gid('Complaint', id);
    const consultant = await world.api.owner.staff.findFirstOrThrow({ where: { role: 'CONSULTANT', active: true, stores: { some: { storeId: world.stores.SH } } } });
    const hq = await world.api.owner.staff.findFirstOrThrow({ where: { orgId: world.chainId, role: 'HQ_ANALYST' } });
    const beijing = await world.api.owner.staff.findFirstOrThrow({ where: { role: 'BEAUTICIAN', stores: { some: { storeId: world.stores.BJ } }, NOT: { stores: { some: { storeId: world.stores.SH } } } } });
    const assigned = await call(world.api, ASSIGN, { input: { complaintId, assigneeId: gid('Staff', consultant.id) } }, 'STORE_MANAGER');
    expect(assigned).toMatchObject({ userErrors: [], complaint: { assignee: { id: gid('Staff', consultant.id) } } });
    expect((await call(world.api, ASSIGN, { input: { complaintId, assigneeId: gid('Staff', hq.id) } }, 'OWNER')).complaint.assignee).toEqual({ id: gid('Staff', hq.id) });
    await expectRejected(world, ASSIGN, { complaintId, assigneeId: gid('Staff', beijing.id) }, 'STORE_MANAGER', { __typename: 'NotFoundError', field: ['input', 'assigneeId'] });
    await expectRejected(world, ASSIGN, { complaintId, assigneeId: gid('Staff', randomUUID()) }, 'STORE_MANAGER', { __typename: 'NotFoundError', field: ['input', 'assigneeId'] });
    await expectRejected(world, ASSIGN, { complaintId, assigneeId: gid('Staff', consultant.id) }, 'CONSULTANT', { __typename: 'ForbiddenError' });

    expect((await call(world.api, COMMENT, { input: { complaintId, note: 'Customer prefers calls after 6pm', internal: true } }, 'CONSULTANT')).userErrors).toEqual([]);
    expect((await call(world.api, COMMENT, { input: { complaintId, note: 'We will call you tonight' } }, 'CONSULTANT')).userErrors).toEqual([]);
    const as = customerPrincipal(world, customerId);
    expect((await call(world.api, COMMENT, { input: { complaintId, note: 'Thank you' } }, as)).userErrors).toEqual([]);
    await expectRejected(world, COMMENT, { complaintId, note: 'Secret', internal: true }, as, { __typename: 'ValidationError', field: ['input', 'internal'] });
    await expectRejected(world, COMMENT, { complaintId, note: 'Hi' }, 'FRONT_DESK', { __typename: 'ForbiddenError' });

    const TIMELINE = `query($id: ID!) { node(id: $id) { ... on Complaint { timeline { kind note internal } } } }`;
    const staffView = (await call(world.api, TIMELINE, { id: complaintId }, 'STORE_MANAGER')).timeline;
    expect(staffView.map((e: { kind: string; internal: boolean }) => [e.kind, e.internal])).toEqual([
      ['OPENED', false], ['ASSIGNED', true], ['ASSIGNED', true], ['COMMENTED', true], ['COMMENTED', false], ['COMMENTED', false],
    ]);
    const customerView = (await call(world.api, TIMELINE, { id: complaintId }, as)).timeline;
    expect(customerView.map((e: { note: string }) => e.note)).toEqual(['Arranged by a test', 'We will call you tonight', 'Thank you']);
  });

  test('the timeline is append-only and the case\'s own facts are not rewritable by the application role', async () => {
    const { id } = await arrangeComplaint({});
    const app = await appRoleClient(world);
    const code = async (sql: string) => {
      try {
        await app.query(sql, [id]);
        return 'ok';
      } catch (error) {
        return (error as { code: string }).code;
      }
    };
    try {
      expect(await code(`UPDATE complaint_entry SET note = 'rewritten' WHERE complaint_id = $1`)).toBe('42501');
      expect(await code(`DELETE FROM complaint_entry WHERE complaint_id = $1`)).toBe('42501');
      expect(await code(`UPDATE complaint SET subject = 'rewritten' WHERE id = $1`)).toBe('42501');
      expect(await code(`UPDATE complaint SET first_response_due_at = now() + interval '1 year' WHERE id = $1`)).toBe('42501');
      expect(await code(`DELETE FROM complaint WHERE id = $1`)).toBe('42501');
      // Status and its timestamps must agree.
      expect(await code(`UPDATE complaint SET status = 'RESOLVED' WHERE id = $1`)).toBe('23514');
      expect(await code(`UPDATE complaint SET status = 'ACKNOWLEDGED', first_responded_at = now() WHERE id = $1`)).toBe('ok');
    } finally {
      await app.end();
    }
    expect(await world.api.owner.complaintEntry.count({ where: { complaintId: id } })).toBe(1);
  });
});

describe('SLA due times in business hours', () => {
  const hours = { opens: 600, closes: 1260, everyDay: '{1,2,3,4,5,6,7}', weekdays: '{1,2,3,4,5}' };
  const due = async (start: string, minutes: number, tz: string, days = hours.everyDay) => {
    const [row] = await world.api.owner.$queryRaw<{ at: Date }[]>`
      SELECT complaint_business_due(${new Date(start)}::timestamptz, ${minutes}::int, ${tz}, ${hours.opens}::int, ${hours.closes}::int, ${days}::int[]) AS at`;
    return row!.at.toISOString();
  };

  test('only open hours count, on each store\'s clock', async () => {
    // Monday 23 Nov 2026, 19:00 in Shanghai (UTC+8): 2 hours left today, 2 more from 10:00 on Tuesday.
    expect(await due('2026-11-23T11:00:00Z', 240, 'Asia/Shanghai')).toBe('2026-11-24T04:00:00.000Z');
    // The same instant is 17:00 in Ürümqi (UTC+6): exactly 4 hours to its 21:00 close.
    expect(await due('2026-11-23T11:00:00Z', 240, 'Asia/Urumqi')).toBe('2026-11-23T15:00:00.000Z');
    // Opened before opening time: the clock starts at 10:00.
    expect(await due('2026-11-23T00:30:00Z', 60, 'Asia/Shanghai')).toBe('2026-11-23T03:00:00.000Z');
    // Opened after closing: starts the next morning.
    expect(await due('2026-11-23T14:00:00Z', 30, 'Asia/Shanghai')).toBe('2026-11-24T02:30:00.000Z');
    // Closed at weekends: Friday 20:00 + 2h → Monday 11:00.
    expect(await due('2026-11-27T12:00:00Z', 120, 'Asia/Shanghai', hours.weekdays)).toBe('2026-11-30T03:00:00.000Z');
    // Several days: 33 business hours from Monday 19:00 → Thursday 19:00 (2 + 11 + 11 + 9).
    expect(await due('2026-11-23T11:00:00Z', 33 * 60, 'Asia/Shanghai')).toBe('2026-11-26T11:00:00.000Z');
    expect(await due('2026-11-23T11:00:00Z', 0, 'Asia/Shanghai')).toBe('2026-11-23T11:00:00.000Z');
  });

  test('a case gets its store\'s due times, and the configuration decides the hours', async () => {
    const openedAt = new Date('2026-11-23T11:00:00Z');
    const { id: sh } = await arrangeComplaint({ openedAt, severity: 'MEDIUM' });
    const { id: ur } = await arrangeComplaint({ openedAt, severity: 'MEDIUM', storeId: world.stores.UR });
    const row = (id: string) => world.api.owner.complaint.findUniqueOrThrow({ where: { id } });
    expect((await row(sh)).firstResponseDueAt.toISOString()).toBe('2026-11-24T04:00:00.000Z');
    expect((await row(sh)).resolutionDueAt.toISOString()).toBe('2026-11-26T11:00:00.000Z');
    expect((await row(ur)).firstResponseDueAt.toISOString()).toBe('2026-11-23T15:00:00.000Z');
    const weekdays = surveysConfigSchema.parse({ businessHours: { opensAt: '09:00', closesAt: '18:00', days: [1, 2, 3, 4, 5] }, sla: { CRITICAL: { firstResponseHours: 0.5, resolutionHours: 4 } } });
    // Friday 17:45 in Shanghai, CRITICAL: 15 minutes on Friday, 15 on Monday from 09:00.
    const times = await asApp(world, (tx) => slaDueTimes(tx, weekdays, 'Asia/Shanghai', 'CRITICAL', new Date('2026-11-27T09:45:00Z')));
    expect(times.firstResponse.toISOString()).toBe('2026-11-30T01:15:00.000Z');
    expect(times.resolution.toISOString()).toBe('2026-11-30T04:45:00.000Z');
    expect(() => surveysConfigSchema.parse({ businessHours: { opensAt: '21:00', closesAt: '10:00' } })).toThrow(/opensAt must be before closesAt/);
  });

  test('breach detection at the due-time edge: on time at the due instant, breached a millisecond later, flagged once', async () => {
    const openedAt = new Date(Date.now() - 30 * DAY);
    const customerId = await newCustomer(world);
    const { id } = await arrangeComplaint({ openedAt, customerId, severity: 'HIGH' });
    const complaint = await world.api.owner.complaint.findUniqueOrThrow({ where: { id } });
    const platform = world.api.running.platform;
    const breaches = () => world.api.owner.domainEvent.findMany({ where: { type: 'complaint.slaBreached', aggregateId: id }, orderBy: { id: 'asc' } });

    await flagSlaBreaches(platform, complaint.firstResponseDueAt);
    expect((await world.api.owner.complaint.findUniqueOrThrow({ where: { id } })).firstResponseBreachedAt).toBeNull();
    expect(await breaches()).toEqual([]);

    const justAfter = new Date(complaint.firstResponseDueAt.getTime() + 1);
    await flagSlaBreaches(platform, justAfter);
    await flagSlaBreaches(platform, new Date(justAfter.getTime() + HOUR));
    const flagged = await world.api.owner.complaint.findUniqueOrThrow({ where: { id } });
    expect(flagged.firstResponseBreachedAt).toEqual(justAfter);
    expect(flagged.resolutionBreachedAt).toBeNull();
    const events = await breaches();
    expect(events.map((e) => e.payload)).toEqual([expect.objectContaining({ sla: 'FIRST_RESPONSE', dueAt: complaint.firstResponseDueAt.toISOString(), storeId: world.stores.SH, internal: true })]);
    expect(events[0]!.payload).not.toHaveProperty('customerId');

    // Resolution: the same edge.
    await flagSlaBreaches(platform, complaint.resolutionDueAt);
    expect((await world.api.owner.complaint.findUniqueOrThrow({ where: { id } })).resolutionBreachedAt).toBeNull();
    await Promise.all([flagSlaBreaches(platform, new Date(complaint.resolutionDueAt.getTime() + 1)), flagSlaBreaches(platform, new Date(complaint.resolutionDueAt.getTime() + 2))]);
    expect((await breaches()).map((e) => (e.payload as { sla: string }).sla)).toEqual(['FIRST_RESPONSE', 'RESOLUTION']);
    const timeline = await world.api.owner.complaintEntry.findMany({ where: { complaintId: id, kind: 'SLA_BREACHED' } });
    expect(timeline.map((e) => [e.internal, (e.data as { sla: string }).sla])).toEqual([[true, 'FIRST_RESPONSE'], [true, 'RESOLUTION']]);

    // A case responded to in time is never flagged for its first response.
    const { id: onTime } = await arrangeComplaint({ openedAt, severity: 'HIGH' });
    const onTimeRow = await world.api.owner.complaint.update({ where: { id: onTime }, data: { status: 'ACKNOWLEDGED', firstRespondedAt: new Date(openedAt.getTime() + 60_000) } });
    await flagSlaBreaches(platform, new Date(onTimeRow.firstResponseDueAt.getTime() + DAY));
    expect((await world.api.owner.complaint.findUniqueOrThrow({ where: { id: onTime } })).firstResponseBreachedAt).toBeNull();
  });

  test('a late step records its breach at once, even if the watch has not run', async () => {
    const { id } = await arrangeComplaint({ openedAt: new Date(Date.now() - 10 * DAY), severity: 'CRITICAL' });
    const acknowledged = await step(id, 'ACKNOWLEDGED');
    expect(acknowledged.complaint.firstResponseBreached).toBe(true);
    const row = await world.api.owner.complaint.findUniqueOrThrow({ where: { id } });
    expect(row.firstResponseBreachedAt).not.toBeNull();
    expect(await world.api.owner.domainEvent.count({ where: { type: 'complaint.slaBreached', aggregateId: id } })).toBe(1);
    await flagSlaBreaches(world.api.running.platform);
    // The watch adds the resolution breach, never a second first-response one.
    const events = await world.api.owner.domainEvent.findMany({ where: { type: 'complaint.slaBreached', aggregateId: id } });
    expect(events.map((e) => (e.payload as { sla: string }).sla).sort()).toEqual(['FIRST_RESPONSE', 'RESOLUTION']);
    const listed = await call(world.api, `{ complaints(first: 100, filter: { breached: true, severity: [CRITICAL] }) { edges { node { id } } } }`, {}, 'HQ_ANALYST');
    expect(listed.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(gid('Complaint', id));
  });
});

describe('complaintUpdated', () => {
  test('store staff get their stores\' cases, HQ all, the customer their own (without internal events), other chains nothing', async () => {
    const customerId = await newCustomer(world);
    const SUBSCRIPTION = `subscription($storeId: ID) { complaintUpdated(storeId: $storeId) { type complaint { id status timeline { kind } } } }`;
    const follow = async (as: Parameters<typeof world.api.ws>[0], storeId?: string) =>
      wsCollect(await world.api.ws(as), { query: SUBSCRIPTION, variables: storeId ? { storeId: gid('Store', storeId) } : {} });
    const manager = await follow('STORE_MANAGER');
    const hq = await follow('HQ_ANALYST');
    const customer = await follow(customerPrincipal(world, customerId));
    const beijing = await follow(staffAt(world, world.stores.BJ, 'STORE_MANAGER'));
    const beijingOnly = await follow('OWNER', world.stores.BJ);
    const foreign = await follow('OTHER_CHAIN_OWNER');
    const refused = await follow('FRONT_DESK', world.stores.BJ);
    const beautician = await follow('BEAUTICIAN');
    await sleep(400);

    const filed = await call(world.api, FILE, { input: { category: 'BOOKING', subject: 'My booking vanished', storeId: gid('Store', world.stores.SH) } }, customerPrincipal(world, customerId));
    const id = uuidOf(filed.complaint.id);
    await step(id, 'ACKNOWLEDGED');
    await call(world.api, COMMENT, { input: { complaintId: filed.complaint.id, note: 'Check the booking log', internal: true } }, 'STORE_MANAGER');
    const { id: other } = await arrangeComplaint({ storeId: world.stores.BJ });
    await step(id, 'IN_PROGRESS');

    type Message = { data?: { complaintUpdated: { type: string; complaint: { id: string } | null } } };
    const seen = (sub: { messages: unknown[] }) => (sub.messages as Message[]).map((m) => [m.data?.complaintUpdated.type, m.data?.complaintUpdated.complaint?.id]);
    expect(await waitFor(() => hq.messages.length >= 5 && manager.messages.length >= 4 && customer.messages.length >= 3 && beijing.messages.length >= 1 && beijingOnly.messages.length >= 1, 10_000)).toBe(true);
    await sleep(500);
    const sh = gid('Complaint', id);
    const bj = gid('Complaint', other);
    expect(seen(manager)).toEqual([['complaint.opened', sh], ['complaint.acknowledged', sh], ['complaint.commented', sh], ['complaint.workStarted', sh]]);
    expect(seen(hq)).toEqual([['complaint.opened', sh], ['complaint.acknowledged', sh], ['complaint.commented', sh], ['complaint.opened', bj], ['complaint.workStarted', sh]]);
    expect(seen(customer)).toEqual([['complaint.opened', sh], ['complaint.acknowledged', sh], ['complaint.workStarted', sh]]);
    // The customer's copy of the case leaves the internal note out.
    const last = (customer.messages.at(-1) as { data: { complaintUpdated: { complaint: { timeline: { kind: string }[] } } } }).data.complaintUpdated.complaint;
    expect(last.timeline.map((e) => e.kind)).toEqual(['OPENED', 'STATUS_CHANGED', 'STATUS_CHANGED']);
    expect(seen(beijing)).toEqual([['complaint.opened', bj]]);
    expect(seen(beijingOnly)).toEqual([['complaint.opened', bj]]);
    expect(foreign.messages).toEqual([]);
    // Refused at subscribe time, with the error a missing store (or a missing permission) gives, and no data.
    const codes = (sub: { messages: unknown[] }) => (sub.messages as { data?: unknown; errors?: { extensions: { code: string } }[] }[]).map((m) => [m.data ?? null, m.errors?.map((e) => e.extensions.code)]);
    expect(codes(refused)).toEqual([[null, ['NOT_FOUND']]]);
    expect(codes(beautician)).toEqual([[null, ['FORBIDDEN']]]);
    for (const sub of [manager, hq, customer, beijing, beijingOnly, foreign]) {
      expect(sub.errors).toEqual([]);
      sub.stop();
    }
  });
});
