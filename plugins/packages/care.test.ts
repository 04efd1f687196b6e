/**
 * Care around the procedures: follow-up tasks (once per plan step or course, due in the store's time zone, overdue
 * flags, completion), the visit handlers, contraindication checks with acknowledgements and flagged bookings, and the
 * demo data.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { toDomainEvent } from '../../core/events/outbox.ts';
import { runHandler } from '../../core/events/worker.ts';
import type { EventHandler } from '../../core/plugin/contract.ts';
import { flagRiskyBooking } from './contraindications.ts';
import { seedPackagesDemo } from './demo.ts';
import { completeLinkedSteps } from './plans.ts';
import {
  activePartnership,
  call,
  consent,
  DAY_MS,
  ERRORS,
  expectLedgerConsistent,
  expectRejected,
  gid,
  key,
  newCustomer,
  staffAt,
  startWorld,
  uuidOf,
  visitFor,
  type World,
} from './testing.ts';

const CREATE_PLAN = `mutation($input: CreateTreatmentPlanInput!) { createTreatmentPlan(input: $input) { plan { id steps { id location followUpDays } } ${ERRORS} } }`;
const RECORD = `mutation($input: RecordTreatmentStepOutcomeInput!) { recordTreatmentStepOutcome(input: $input) { step { id status completedAt } ${ERRORS} } }`;
const SCHEDULE = `mutation($input: ScheduleTreatmentStepInput!) { scheduleTreatmentStep(input: $input) { step { id status scheduledAt visit { id } } ${ERRORS} } }`;
const TASKS = `query($filter: FollowUpTaskFilter) { followUpTasks(first: 50, filter: $filter) { edges { node {
  id title offsetDays dueOn dueAt overdue completedAt store { code } planStep { id } customerPackage { id } } } } }`;
const COMPLETE_TASK = `mutation($input: CompleteFollowUpTaskInput!) { completeFollowUpTask(input: $input) { task { id completedAt note overdue } ${ERRORS} } }`;
const CHECK = `query($customerId: ID!, $serviceIds: [ID!]!) { checkContraindications(customerId: $customerId, serviceIds: $serviceIds) {
  acknowledgementRequired warnings { service { id } tags acknowledged acknowledgedUntil } } }`;
const ACK = `mutation($input: AcknowledgeContraindicationsInput!) { acknowledgeContraindications(input: $input) {
  resolvedFlags check { acknowledgementRequired warnings { service { id } tags acknowledged } } ${ERRORS} } }`;

let world: World;
let config: any;

beforeAll(async () => {
  world = await startWorld();
  config = world.api.running.platform.plugins.find((p) => p.definition.name === 'packages')!.config;
});
afterAll(() => world.api.close());

/** A salon-only plan at a store with one step that has the given follow-ups. */
async function salonPlan(customerId: string, storeId: string, followUpDays: number[], as: any = 'OWNER') {
  const payload = await call(
    world.api,
    CREATE_PLAN,
    { input: { customerId: gid('Customer', customerId), storeId: gid('Store', storeId), title: 'Peel course', steps: [{ location: 'SALON', title: 'Glycolic peel', followUpDays }] } },
    as,
  );
  expect(payload.userErrors).toEqual([]);
  return { planId: payload.plan.id as string, stepId: payload.plan.steps[0].id as string };
}

async function tasksOf(customerId: string, status = 'ALL', as: any = 'OWNER') {
  return (await call(world.api, TASKS, { filter: { customerId: gid('Customer', customerId), status } }, as)).edges.map((e: any) => e.node);
}

/** The latest instant at 17:00 UTC in the past: 23:00 in Ürümqi (UTC+6) and 01:00 the next day in Shanghai (UTC+8). */
function eveningUtc(): { at: Date; utcDate: string } {
  const now = new Date();
  let at = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 17));
  if (at.getTime() > now.getTime() - 60_000) at = new Date(at.getTime() - DAY_MS);
  return { at, utcDate: at.toISOString().slice(0, 10) };
}

const addDays = (date: string, days: number) => new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);

async function handle(handler: EventHandler<any>, type: string, aggregateId: string, payload: Record<string, unknown>) {
  const row = await world.api.owner.domainEvent.create({
    data: { orgId: world.chainId, type, aggregateType: 'Visit', aggregateId, streamKey: String(payload.customerId), payload: payload as object, actor: 'test' },
  });
  const event = toDomainEvent(row);
  const platform = world.api.running.platform;
  return [await runHandler(platform, 'packages', config, handler as EventHandler<unknown>, event), await runHandler(platform, 'packages', config, handler as EventHandler<unknown>, event)];
}

describe('follow-ups', () => {
  test('generated once per plan step, due on local dates in the plan store\'s time zone (Ürümqi and Shanghai differ)', async () => {
    const { at, utcDate } = eveningUtc();
    const ur = await newCustomer(world, { storeId: world.stores.UR });
    const sh = await newCustomer(world);
    const urPlan = await salonPlan(ur, world.stores.UR, [1, 7]);
    const shPlan = await salonPlan(sh, world.stores.SH, [1, 7]);
    for (const plan of [urPlan, shPlan]) {
      const done = await call(world.api, RECORD, { input: { stepId: plan.stepId, outcome: 'Peel done', performedAt: at.toISOString() } });
      expect(done).toMatchObject({ userErrors: [], step: { status: 'DONE', completedAt: at.toISOString() } });
    }
    // 23:00 on utcDate in Ürümqi: due the next day and a week later, each until midnight there (18:00 UTC the day before).
    const urTasks = await tasksOf(ur);
    expect(urTasks.map((t: any) => [t.offsetDays, t.dueOn, t.dueAt, t.store.code, t.planStep.id])).toEqual([
      [1, addDays(utcDate, 1), `${addDays(utcDate, 1)}T18:00:00.000Z`, 'UR-01', urPlan.stepId],
      [7, addDays(utcDate, 7), `${addDays(utcDate, 7)}T18:00:00.000Z`, 'UR-01', urPlan.stepId],
    ]);
    // The same instant is already the next day in Shanghai: every due date is a day later.
    const shTasks = await tasksOf(sh);
    expect(shTasks.map((t: any) => [t.offsetDays, t.dueOn, t.dueAt])).toEqual([
      [1, addDays(utcDate, 2), `${addDays(utcDate, 2)}T16:00:00.000Z`],
      [7, addDays(utcDate, 8), `${addDays(utcDate, 8)}T16:00:00.000Z`],
    ]);
    // Once: recording again is refused, and the database will not move a done step back (or generate twice).
    await expectRejected(world.api, RECORD, { stepId: urPlan.stepId, outcome: 'again' }, 'OWNER', { __typename: 'ConflictError', code: 'INVALID_STATE' });
    await expect(world.api.owner.treatmentPlanStep.update({ where: { id: uuidOf(urPlan.stepId) }, data: { status: 'SCHEDULED', completedAt: null, completedBy: null } })).rejects.toThrow(/cannot change its status/);
    await world.api.owner.treatmentPlanStep.update({ where: { id: uuidOf(urPlan.stepId) }, data: { status: 'DONE', outcome: 'amended' } });
    expect(await world.api.owner.followUpTask.count({ where: { planStepId: uuidOf(urPlan.stepId) } })).toBe(2);
  });

  test('racing completions of one step: one succeeds, its follow-ups exist once', async () => {
    const customerId = await newCustomer(world);
    const { stepId } = await salonPlan(customerId, world.stores.SH, [1, 7, 30, 90]);
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => call(world.api, RECORD, { input: { stepId, outcome: `attempt ${i}` } }, 'CONSULTANT')));
    expect(answers.filter((a) => a.userErrors.length === 0)).toHaveLength(1);
    expect(answers.filter((a) => a.userErrors[0]?.code === 'INVALID_STATE')).toHaveLength(11);
    const tasks = await world.api.owner.followUpTask.findMany({ where: { planStepId: uuidOf(stepId) }, orderBy: { offsetDays: 'asc' } });
    expect(tasks.map((t) => t.offsetDays)).toEqual([1, 7, 30, 90]);
    expect(await world.api.owner.domainEvent.count({ where: { type: 'treatmentPlan.outcomeRecorded', payload: { path: ['stepId'], equals: uuidOf(stepId) } } })).toBe(1);
  });

  test('a clinic step uses the configured schedule; a template\'s schedule can be named; overdue once the local due day has ended', async () => {
    await activePartnership(world);
    const customerId = await newCustomer(world);
    await consent(world, customerId, true);
    const TEMPLATE = `mutation($input: CreateFollowUpTemplateInput!) { createFollowUpTemplate(input: $input) { followUpTemplate { id offsetsDays } ${ERRORS} } }`;
    const template = await call(world.api, TEMPLATE, { input: { name: 'Peel check-ins', offsetsDays: [2, 14] } });
    await expectRejected(world.api, TEMPLATE, { name: 'Bad', offsetsDays: [] }, 'OWNER', { __typename: 'ValidationError' });
    await expectRejected(world.api, TEMPLATE, { name: 'Bad', offsetsDays: [1000] }, 'OWNER', { __typename: 'ValidationError' });
    const payload = await call(world.api, CREATE_PLAN, {
      input: {
        customerId: gid('Customer', customerId),
        storeId: gid('Store', world.stores.SH),
        clinicOrganizationId: gid('Organization', world.clinicId),
        title: 'Joint',
        steps: [{ location: 'CLINIC', title: 'IPL' }, { location: 'SALON', title: 'Peel', followUpTemplateId: template.followUpTemplate.id }],
      },
    });
    expect(payload.plan.steps.map((s: any) => s.followUpDays)).toEqual([config.defaultClinicFollowUpDays, [2, 14]]);
    // The clinic performed its step 20 days ago: days 1 and 7 are overdue, 30 and 90 are not.
    const performedAt = new Date(Date.now() - 20 * DAY_MS).toISOString();
    const recorded = await call(world.api, RECORD, { input: { stepId: payload.plan.steps[0].id, outcome: 'IPL done', performedAt } }, world.api.principals.CLINIC_STAFF);
    expect(recorded.userErrors).toEqual([]);
    const tasks = await tasksOf(customerId);
    expect(tasks.map((t: any) => [t.offsetDays, t.overdue])).toEqual([[1, true], [7, true], [30, false], [90, false]]);
    expect((await tasksOf(customerId, 'OVERDUE')).map((t: any) => t.offsetDays)).toEqual([1, 7]);
    // The clinic never sees the salon's follow-ups.
    expect((await call(world.api, TASKS, {}, 'CLINIC_STAFF')).edges).toEqual([]);

    // Completing one: the salon's front desk may; another store's staff and another chain see no such task.
    const first = gid('FollowUpTask', uuidOf(tasks[0].id));
    await expectRejected(world.api, COMPLETE_TASK, { taskId: first }, staffAt(world, world.stores.BJ, 'FRONT_DESK'), { __typename: 'NotFoundError' });
    await expectRejected(world.api, COMPLETE_TASK, { taskId: first }, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' });
    await expectRejected(world.api, COMPLETE_TASK, { taskId: first, note: 'x'.repeat(2001) }, 'FRONT_DESK', { __typename: 'ValidationError' });
    const done = await call(world.api, COMPLETE_TASK, { input: { taskId: first, note: 'Redness gone, happy' } }, 'FRONT_DESK');
    expect(done).toMatchObject({ userErrors: [], task: { note: 'Redness gone, happy', overdue: false } });
    await expectRejected(world.api, COMPLETE_TASK, { taskId: first }, 'FRONT_DESK', { __typename: 'ConflictError', code: 'INVALID_STATE' });
    expect((await tasksOf(customerId, 'OPEN')).map((t: any) => t.offsetDays)).toEqual([7, 30, 90]);
  });

  test('visit.completed completes the salon step booked on that visit, once however often it is delivered', async () => {
    const customerId = await newCustomer(world);
    const { stepId } = await salonPlan(customerId, world.stores.SH, [1, 30], 'CONSULTANT');
    const visitId = await visitFor(world, customerId, { status: 'BOOKED' });
    const linked = await call(world.api, SCHEDULE, { input: { stepId, visitId: gid('Visit', visitId) } }, 'CONSULTANT');
    expect(linked).toMatchObject({ userErrors: [], step: { status: 'SCHEDULED', visit: { id: gid('Visit', visitId) } } });
    // Another customer's visit cannot be linked.
    const stranger = await visitFor(world, await newCustomer(world), { status: 'BOOKED' });
    await expectRejected(world.api, SCHEDULE, { stepId, visitId: gid('Visit', stranger) }, 'CONSULTANT', { __typename: 'NotFoundError', field: ['input', 'visitId'] });

    const completedAt = new Date(Date.now() - 3_600_000);
    await world.api.owner.visit.update({ where: { id: visitId }, data: { status: 'COMPLETED', checkedInAt: completedAt, completedAt } });
    const handled = await handle(completeLinkedSteps, 'visit.completed', visitId, { visitId, customerId, storeId: world.stores.SH, completedAt: completedAt.toISOString() });
    expect(handled).toEqual([true, false]);
    const step = await world.api.owner.treatmentPlanStep.findUniqueOrThrow({ where: { id: uuidOf(stepId) } });
    expect(step).toMatchObject({ status: 'DONE', completedAt, completedBy: 'plugin:packages' });
    expect(await world.api.owner.followUpTask.count({ where: { planStepId: step.id } })).toBe(2);
    expect(await world.api.owner.domainEvent.count({ where: { type: 'treatmentPlan.stepCompleted', aggregateId: step.planId } })).toBe(1);
  });

  test('a course\'s follow-ups start when its last session is used, at the store where it was used', async () => {
    const CREATE_TEMPLATE = `mutation($input: CreatePackageTemplateInput!) { createPackageTemplate(input: $input) { template { id } ${ERRORS} } }`;
    const template = await call(world.api, CREATE_TEMPLATE, {
      input: { name: 'Two peels', price: '1000.00', validityMonths: 3, services: [{ serviceId: gid('Service', world.services.peel), sessions: 2 }], followUpDays: [3] },
    });
    const customerId = await newCustomer(world);
    const saleVisit = await visitFor(world, customerId);
    const sold = await call(world.api, `mutation($input: SellPackageInput!) { sellPackage(input: $input) { customerPackage { id } ${ERRORS} } }`, {
      input: { visitId: gid('Visit', saleVisit), templateId: template.template.id, idempotencyKey: key('sell') },
    });
    const CONSUME = `mutation($input: ConsumePackageSessionInput!) { consumePackageSession(input: $input) { remainingSessions ${ERRORS} } }`;
    const use = async (visitId: string) =>
      call(world.api, CONSUME, { input: { customerPackageId: sold.customerPackage.id, serviceId: gid('Service', world.services.peel), visitId: gid('Visit', visitId), idempotencyKey: key('use') } });
    await use(saleVisit);
    expect(await tasksOf(customerId)).toEqual([]);
    const urVisit = await visitFor(world, customerId, { storeId: world.stores.UR });
    expect((await use(urVisit)).remainingSessions).toBe(0);
    const tasks = await tasksOf(customerId);
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Urumqi' }).format(new Date());
    expect(tasks).toEqual([expect.objectContaining({ offsetDays: 3, dueOn: addDays(today, 3), store: { code: 'UR-01' }, customerPackage: { id: sold.customerPackage.id }, planStep: null })]);
  });
});

describe('contraindications', () => {
  test('a check warns of services matching the customer\'s allergies or sensitivities; tags only for those who may read health data', async () => {
    const customerId = await newCustomer(world, { allergies: ['fragrance'], sensitivities: ['photosensitivity'] });
    const ids = [world.services.spa, world.services.ipl, world.services.hydrating].map((id) => gid('Service', id));
    const variables = { customerId: gid('Customer', customerId), serviceIds: ids };
    const check = await call(world.api, CHECK, variables, 'CONSULTANT');
    expect(check).toEqual({
      acknowledgementRequired: true,
      warnings: [
        { service: { id: ids[0] }, tags: ['fragrance'], acknowledged: false, acknowledgedUntil: null },
        { service: { id: ids[1] }, tags: ['photosensitivity'], acknowledged: false, acknowledgedUntil: null },
      ],
    });
    expect((await call(world.api, CHECK, variables, 'FRONT_DESK')).warnings.map((w: any) => w.tags)).toEqual([null, null]);
    expect((await call(world.api, CHECK, variables, { kind: 'CUSTOMER', orgId: world.chainId, customerId })).warnings[0].tags).toEqual(['fragrance']);
    expect(await call(world.api, CHECK, { ...variables, serviceIds: [ids[2]] })).toEqual({ acknowledgementRequired: false, warnings: [] });
    for (const as of ['OTHER_CHAIN_OWNER', 'CLINIC_STAFF', 'CUSTOMER'] as const) {
      const refused = await world.api.gql(CHECK, variables, as);
      expect(refused.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    }
  });

  test('a risky booking is refused until a consultant acknowledges it; one made another way is flagged once', async () => {
    const customerId = await newCustomer(world, { allergies: ['fragrance'] });
    const BOOK = `mutation($input: BookVisitInput!) { bookVisit(input: $input) { visit { id } userErrors { __typename code field ... on ContraindicationWarningError { serviceId tags } } } }`;
    const attempt = (as: 'FRONT_DESK' | 'CONSULTANT' = 'FRONT_DESK') => {
      const startsAt = new Date(Date.now() + (5 + Math.random() * 200) * DAY_MS).toISOString();
      return call(world.api, BOOK, { input: { customerId: gid('Customer', customerId), storeId: gid('Store', world.stores.SH), serviceIds: [gid('Service', world.services.spa)], startsAt } }, as);
    };
    const visitsBefore = await world.api.owner.visit.count({ where: { customerId } });
    // Refused, with the tags only for a role that may read health data, and nothing booked.
    expect(await attempt()).toEqual({
      visit: null,
      userErrors: [{ __typename: 'ContraindicationWarningError', code: 'CONTRAINDICATION_UNACKNOWLEDGED', field: ['input', 'serviceIds', '0'], serviceId: gid('Service', world.services.spa), tags: null }],
    });
    expect((await attempt('CONSULTANT')).userErrors[0].tags).toEqual(['fragrance']);
    expect(await world.api.owner.visit.count({ where: { customerId } })).toBe(visitsBefore);

    // A booking made without the check (e.g. while the plugin was off) is flagged by the visit.booked handler, once.
    const visitId = await visitFor(world, customerId, { status: 'BOOKED', serviceId: world.services.spa });
    const booked = await world.api.owner.visit.findUniqueOrThrow({ where: { id: visitId } });
    const event = await world.api.owner.domainEvent.create({
      data: { orgId: world.chainId, type: 'visit.booked', aggregateType: 'Visit', aggregateId: visitId, streamKey: customerId, payload: { visitId, customerId, storeId: booked.storeId }, actor: 'test' },
    });
    const platform = world.api.running.platform;
    const results = [];
    for (let i = 0; i < 2; i++) results.push(await runHandler(platform, 'packages', config, flagRiskyBooking as EventHandler<unknown>, toDomainEvent(event)));
    expect(results).toEqual([true, false]);
    const flags = await world.api.owner.contraindicationFlag.findMany({ where: { visitId } });
    expect(flags).toEqual([expect.objectContaining({ serviceId: world.services.spa, tags: ['fragrance'], status: 'OPEN' })]);
    expect(await world.api.owner.domainEvent.count({ where: { type: 'contraindication.flagged', aggregateId: visitId } })).toBe(1);
    const visitFlags = `{ node(id: "${gid('Visit', visitId)}") { ... on Visit { contraindicationFlags { status tags service { id } } } } }`;
    expect((await call(world.api, visitFlags, {}, 'FRONT_DESK')).contraindicationFlags).toEqual([{ status: 'OPEN', tags: null, service: { id: gid('Service', world.services.spa) } }]);
    const open = `{ contraindicationFlags { id visit { id } } }`;
    expect((await call(world.api, open, {}, 'STORE_MANAGER')).map((f: any) => f.visit.id)).toContain(gid('Visit', visitId));
    expect(await call(world.api, open, {}, staffAt(world, world.stores.BJ))).toEqual([]);
    expect(await call(world.api, open, {}, 'OTHER_CHAIN_OWNER')).toEqual([]);

    const input = { customerId: gid('Customer', customerId), serviceIds: [gid('Service', world.services.spa)], visitId: gid('Visit', visitId), note: 'Fragrance-free oil used' };
    await expectRejected(world.api, ACK, input, 'FRONT_DESK', { __typename: 'ForbiddenError' });
    await expectRejected(world.api, ACK, { ...input, serviceIds: [gid('Service', world.services.hydrating)] }, 'CONSULTANT', { __typename: 'ValidationError', field: ['input', 'serviceIds'] });
    await expectRejected(world.api, ACK, { ...input, visitId: gid('Visit', await visitFor(world, await newCustomer(world))) }, 'CONSULTANT', { __typename: 'NotFoundError', field: ['input', 'visitId'] });
    await expectRejected(world.api, ACK, input, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError', field: ['input', 'customerId'] });
    const acked = await call(world.api, ACK, { input }, 'CONSULTANT');
    expect(acked).toMatchObject({ userErrors: [], resolvedFlags: 1, check: { acknowledgementRequired: false, warnings: [{ tags: ['fragrance'], acknowledged: true }] } });
    expect((await world.api.owner.contraindicationFlag.findFirstOrThrow({ where: { visitId } })).status).toBe('RESOLVED');

    // Acknowledged: the front desk can book it now.
    const next = await attempt();
    expect(next.userErrors).toEqual([]);
    // A newly recorded sensitivity matching the service needs a new acknowledgement.
    await world.api.owner.skinProfile.update({ where: { customerId }, data: { sensitivities: ['pregnancy'] } });
    const check = await call(world.api, CHECK, { customerId: gid('Customer', customerId), serviceIds: [gid('Service', world.services.spa)] }, 'CONSULTANT');
    expect(check).toEqual({ acknowledgementRequired: true, warnings: [expect.objectContaining({ tags: ['fragrance', 'pregnancy'], acknowledged: false })] });
    expect((await attempt('CONSULTANT')).userErrors).toEqual([expect.objectContaining({ code: 'CONTRAINDICATION_UNACKNOWLEDGED', tags: ['fragrance', 'pregnancy'] })]);
  });
});

test('the demo data: consistent ledgers, and the clinic sees exactly the plans of customers who consented', async () => {
  const chains = await world.api.owner.organization.findMany({ where: { kind: 'CHAIN' }, select: { id: true } });
  for (const chain of chains) {
    await world.api.owner.$transaction((tx) => seedPackagesDemo({ tx, orgId: chain.id, config }), { timeout: 120_000 });
  }
  await expectLedgerConsistent(world.api.owner);
  const sold = await world.api.owner.customerPackage.groupBy({ by: ['status'], where: { orgId: world.chainId, soldBy: 'seed' }, _count: true });
  expect(Object.fromEntries(sold.map((s) => [s.status, s._count]))).toMatchObject({ ACTIVE: expect.any(Number), FROZEN: 1, REFUNDED: 1 });
  expect(await world.api.owner.packageSessionEntry.count({ where: { orgId: world.chainId, kind: 'CONSUME', actor: 'seed' } })).toBeGreaterThan(10);
  const plans = await world.api.owner.treatmentPlan.findMany({ where: { orgId: world.chainId, createdBy: 'seed' }, select: { id: true, customerId: true } });
  expect(plans.length).toBe(7);
  const seenByClinic = (await call(world.api, `{ treatmentPlans(first: 100) { edges { node { id title sharedProfile { name } steps { status outcome } } } } }`, {}, 'CLINIC_STAFF')).edges.map((e: any) => e.node);
  const consented = await world.api.owner.$queryRaw<{ id: string }[]>`
    SELECT p.id FROM treatment_plan p
     WHERE p.created_by = 'seed' AND (SELECT granted FROM consent c WHERE c.customer_id = p.customer_id AND c.purpose = 'PARTNER_SHARING'
       AND c.partner_org_id = p.clinic_org_id ORDER BY recorded_at DESC, granted LIMIT 1)`;
  const seedIds = new Set(plans.map((p) => gid('TreatmentPlan', p.id)));
  expect(seenByClinic.filter((p: any) => seedIds.has(p.id)).map((p: any) => p.id).sort()).toEqual(consented.map((c) => gid('TreatmentPlan', c.id)).sort());
  expect(consented.length).toBe(6);
  expect(await world.api.owner.followUpTask.count({ where: { orgId: world.chainId, planStep: { plan: { createdBy: 'seed' } } } })).toBeGreaterThan(0);
  const [{ flagged }] = await world.api.owner.$queryRaw<{ flagged: number }[]>`
    SELECT count(*)::int AS flagged FROM contraindication_flag f JOIN visit v ON v.id = f.visit_id
     WHERE f.org_id = ${world.chainId}::uuid AND f.status = 'OPEN' AND v.notes = 'Booked online'`;
  expect(flagged).toBe(1);
  // The other chain got a catalogue of its own and no partnership.
  expect(await world.api.owner.packageTemplate.count({ where: { orgId: world.otherChainId } })).toBeGreaterThan(0);
  expect(await world.api.owner.clinicPartnership.count({ where: { orgId: world.otherChainId } })).toBe(0);
});

test('node(id:) of every type of this plugin: another chain, another store and the clinic see exactly what a random id shows', async () => {
  const o = world.api.owner;
  const customerId = await newCustomer(world, { allergies: ['fragrance'] });
  const visitId = await visitFor(world, customerId, { status: 'BOOKED', serviceId: world.services.spa });
  const flag = await o.contraindicationFlag.create({ data: { orgId: world.chainId, visitId, customerId, storeId: world.stores.SH, serviceId: world.services.spa, tags: ['fragrance'] } });
  const template = await o.packageTemplate.create({
    data: { orgId: world.chainId, name: 'Probe', priceMinor: 100, validityMonths: 1, services: { create: [{ serviceId: world.services.hydrating, sessions: 1 }] } },
  });
  const followUpTemplate = await o.followUpTemplate.create({ data: { orgId: world.chainId, name: 'Probe', offsetsDays: [1] } });
  const plan = await salonPlan(customerId, world.stores.SH, [1]);
  await call(world.api, RECORD, { input: { stepId: plan.stepId, outcome: 'ok' } });
  const task = await o.followUpTask.findFirstOrThrow({ where: { planStepId: uuidOf(plan.stepId) } });
  const partnership = await activePartnership(world);
  const ids: Record<string, { id: string; storeBound: boolean }> = {
    PackageTemplate: { id: template.id, storeBound: false },
    FollowUpTemplate: { id: followUpTemplate.id, storeBound: false },
    TreatmentPlan: { id: uuidOf(plan.planId), storeBound: true },
    TreatmentPlanStep: { id: uuidOf(plan.stepId), storeBound: true },
    FollowUpTask: { id: task.id, storeBound: true },
    ContraindicationFlag: { id: flag.id, storeBound: true },
    ClinicPartnership: { id: partnership, storeBound: false },
  };
  const bj = staffAt(world, world.stores.BJ);
  for (const [type, { id, storeBound }] of Object.entries(ids)) {
    const query = (uuid: string) => `{ node(id: "${gid(type, uuid)}") { id } }`;
    expect(await world.api.gql(query(id), {}, 'OWNER'), type).toEqual({ data: { node: { id: gid(type, id) } } });
    const missing = await world.api.gql(query(crypto.randomUUID()), {}, 'OTHER_CHAIN_OWNER');
    expect(missing).toEqual({ data: { node: null } });
    expect(await world.api.gql(query(id), {}, 'OTHER_CHAIN_OWNER'), type).toEqual(missing);
    if (type !== 'ClinicPartnership') expect(await world.api.gql(query(id), {}, 'CLINIC_STAFF'), type).toEqual(missing);
    if (storeBound) expect(await world.api.gql(query(id), {}, bj), type).toEqual(missing);
  }
});
