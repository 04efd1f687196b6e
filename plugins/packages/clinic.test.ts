/**
 * Partner clinics: partnerships agreed by both owners, and joint treatment plans the clinic sees only while the
 * partnership is active and the customer's consent naming that clinic is in force — over lists, node(id:), mutations,
 * subscriptions and the row-level security wall underneath.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import {
  activePartnership,
  appRole,
  call,
  consent,
  ERRORS,
  expectRejected,
  gid,
  newCustomer,
  probe,
  refusal,
  secondClinic,
  startWorld,
  untilProbe,
  uuidOf,
  watch,
  type World,
} from './testing.ts';

const PARTNERSHIP = `partnership { id status awaitingMyAcceptance chain { id name kind } clinic { id name kind } proposedBy { name } }`;
const PROPOSE = `mutation($input: ProposeClinicPartnershipInput!) { proposeClinicPartnership(input: $input) { ${PARTNERSHIP} ${ERRORS} } }`;
const transition = (name: string) => `mutation($input: ${name[0]!.toUpperCase() + name.slice(1)}Input!) { ${name}(input: $input) { ${PARTNERSHIP} ${ERRORS} } }`;
const CREATE_PLAN = `mutation($input: CreateTreatmentPlanInput!) { createTreatmentPlan(input: $input) {
  plan { id title sharedWithClinic steps { id position location status followUpDays } } ${ERRORS} } }`;
const RECORD = `mutation($input: RecordTreatmentStepOutcomeInput!) { recordTreatmentStepOutcome(input: $input) {
  step { id status outcome aftercareInstructions completedAt service { id } } plan { id } ${ERRORS} } }`;
const SCHEDULE = `mutation($input: ScheduleTreatmentStepInput!) { scheduleTreatmentStep(input: $input) { step { id status scheduledAt } ${ERRORS} } }`;
const CANCEL_STEP = `mutation($input: CancelTreatmentStepInput!) { cancelTreatmentStep(input: $input) { step { id status } ${ERRORS} } }`;
const CONSENT = `mutation($input: RecordConsentInput!) { recordConsent(input: $input) { userErrors { code message } } }`;
const PLANS = `{ treatmentPlans(first: 100) { edges { node { id } } } }`;
/** node(id:) of a plan or a step (the type is in the global id), with fields of that type. */
const node = (id: string, fields = 'id') =>
  `{ node(id: "${id}") { ... on ${Buffer.from(id, 'base64').toString().split(':')[0]} { ${fields} } } }`;
const SUBSCRIBE = `subscription($planId: ID) { treatmentPlanUpdated(planId: $planId) { type plan { id title } step { id status outcome aftercareInstructions } } }`;

let world: World;
let clinicStaff: Principal;

beforeAll(async () => {
  world = await startWorld();
  clinicStaff = world.api.principals.CLINIC_STAFF!;
  await activePartnership(world);
});
afterAll(() => world.api.close());

/** A joint plan for a customer at SH-01: a salon assessment, the clinic's procedure, two salon repair sessions. */
async function createPlan(customerId: string, clinicId = world.clinicId, as: any = 'CONSULTANT') {
  const payload = await call(
    world.api,
    CREATE_PLAN,
    {
      input: {
        customerId: gid('Customer', customerId),
        storeId: gid('Store', world.stores.SH),
        clinicOrganizationId: gid('Organization', clinicId),
        title: 'HIFU with repair care',
        goal: 'Firmer jawline',
        steps: [
          { location: 'SALON', title: 'Skin assessment', serviceId: gid('Service', world.services.hydrating) },
          { location: 'CLINIC', title: 'HIFU lifting', scheduledAt: new Date(Date.now() + 3 * 86_400_000).toISOString() },
          { location: 'SALON', title: 'Repair care 1/2', serviceId: gid('Service', world.services.repair) },
          { location: 'SALON', title: 'Repair care 2/2', serviceId: gid('Service', world.services.repair) },
        ],
      },
    },
    as,
  );
  expect(payload.userErrors).toEqual([]);
  const steps = payload.plan.steps as { id: string; location: string }[];
  return { planId: payload.plan.id as string, plan: payload.plan, salon: steps.filter((s) => s.location === 'SALON').map((s) => s.id), clinic: steps.find((s) => s.location === 'CLINIC')!.id };
}

async function grant(customerId: string, granted: boolean, clinicId = world.clinicId) {
  const payload = await call(world.api, CONSENT, {
    input: { customerId: gid('Customer', customerId), purpose: 'PARTNER_SHARING', granted, partnerOrganizationId: gid('Organization', clinicId) },
  });
  expect(payload.userErrors).toEqual([]);
}

async function visiblePlans(as: any): Promise<string[]> {
  return (await call(world.api, PLANS, {}, as)).edges.map((e: any) => e.node.id);
}

/** What the clinic's database role reads for a plan, straight through row-level security. */
async function rawReads(orgId: string, planId: string) {
  const client = await appRole(world, orgId);
  try {
    const id = uuidOf(planId);
    const plans = await client.query('SELECT count(*)::int AS n FROM treatment_plan WHERE id = $1', [id]);
    const steps = await client.query('SELECT count(*)::int AS n FROM treatment_plan_step WHERE plan_id = $1', [id]);
    const profile = await client.query('SELECT count(*)::int AS n FROM packages_shared_profiles($1::uuid[])', [[id]]);
    return { plans: plans.rows[0].n, steps: steps.rows[0].n, profiles: profile.rows[0].n };
  } finally {
    await client.end();
  }
}

describe('partnerships', () => {
  test('agreed by both owners: one proposes, the other accepts; nobody else sees or changes it', async () => {
    const x = await secondClinic(world);
    const clinicRef = gid('Organization', x.clinicId);
    await expectRejected(world.api, PROPOSE, { partnerOrganizationId: clinicRef }, x.staff, { __typename: 'ForbiddenError' });
    await expectRejected(world.api, PROPOSE, { partnerOrganizationId: gid('Organization', world.otherChainId) }, 'OWNER', { __typename: 'NotFoundError', field: ['input', 'partnerOrganizationId'] });
    await expectRejected(world.api, PROPOSE, { partnerOrganizationId: gid('Organization', world.chainId) }, 'OWNER', { __typename: 'NotFoundError' });
    await expectRejected(world.api, PROPOSE, { partnerOrganizationId: gid('Organization', randomUUID()) }, 'OWNER', { __typename: 'NotFoundError' });

    const proposed = await call(world.api, PROPOSE, { input: { partnerOrganizationId: clinicRef, note: 'Joint anti-ageing' } });
    expect(proposed.userErrors).toEqual([]);
    expect(proposed.partnership).toMatchObject({ status: 'PROPOSED', awaitingMyAcceptance: false, clinic: { id: clinicRef, kind: 'CLINIC' }, chain: { kind: 'CHAIN' } });
    const ref = proposed.partnership.id;
    await expectRejected(world.api, PROPOSE, { partnerOrganizationId: clinicRef }, 'OWNER', { __typename: 'ConflictError', code: 'PARTNERSHIP_EXISTS' });
    // The clinic proposing the same pair back is the same partnership.
    await expectRejected(world.api, PROPOSE, { partnerOrganizationId: gid('Organization', world.chainId) }, x.owner, { __typename: 'ConflictError', code: 'PARTNERSHIP_EXISTS' });
    const customerId = await newCustomer(world);
    await expectRejected(
      world.api,
      CREATE_PLAN,
      { customerId: gid('Customer', customerId), storeId: gid('Store', world.stores.SH), clinicOrganizationId: clinicRef, title: 'T', steps: [{ location: 'CLINIC', title: 'Procedure' }] },
      'OWNER',
      { __typename: 'ConflictError', code: 'PARTNERSHIP_NOT_ACTIVE' },
    );
    await expectRejected(world.api, transition('acceptClinicPartnership'), { partnershipId: ref }, 'OWNER', { __typename: 'ConflictError', code: 'INVALID_STATE' });
    await expectRejected(world.api, transition('acceptClinicPartnership'), { partnershipId: ref }, x.staff, { __typename: 'ForbiddenError' });
    for (const as of ['OTHER_CHAIN_OWNER', 'CLINIC_STAFF'] as const) {
      await expectRejected(world.api, transition('acceptClinicPartnership'), { partnershipId: ref }, as === 'CLINIC_STAFF' ? world.clinicOwner : as, { __typename: 'NotFoundError' });
      expect(await call(world.api, `{ node(id: "${ref}") { id } }`, {}, as)).toBeNull();
    }
    // The clinic's owner sees the proposal waiting for it, with the chain's name (and nothing else of the chain).
    const seen = await call(world.api, `{ clinicPartnerships { id status awaitingMyAcceptance chain { name } } }`, {}, x.owner);
    expect(seen).toEqual([{ id: ref, status: 'PROPOSED', awaitingMyAcceptance: true, chain: { name: 'Lumière Beauty 丽美连锁' } }]);
    expect(await call(world.api, '{ viewer { organization { name } } }', {}, x.owner)).toEqual({ organization: { name: expect.stringMatching(/^Other clinic/) } });

    const accepted = await call(world.api, transition('acceptClinicPartnership'), { input: { partnershipId: ref } }, x.owner);
    expect(accepted).toMatchObject({ userErrors: [], partnership: { status: 'ACTIVE', awaitingMyAcceptance: false, proposedBy: { name: 'Lumière Beauty 丽美连锁' } } });
    // The database holds the rules too: the chain cannot put it back to a proposal, nor rewrite who the parties are.
    const client = await appRole(world, world.chainId);
    try {
      await expect(client.query("UPDATE clinic_partnership SET status = 'PROPOSED' WHERE id = $1", [uuidOf(ref)])).rejects.toThrow(/cannot go from ACTIVE to PROPOSED/);
      await expect(client.query('UPDATE clinic_partnership SET clinic_org_id = $2 WHERE id = $1', [uuidOf(ref), world.clinicId])).rejects.toThrow(/permission denied/);
    } finally {
      await client.end();
    }
  });

  test('suspending or ending a partnership cuts the clinic off at once; only the party that suspended resumes', async () => {
    const y = await secondClinic(world);
    const partnershipId = gid('ClinicPartnership', await activePartnership(world, y.clinicId));
    const customerId = await newCustomer(world);
    await grant(customerId, true, y.clinicId);
    const { planId } = await createPlan(customerId, y.clinicId);
    expect(await visiblePlans(y.staff)).toEqual([planId]);

    expect((await call(world.api, transition('suspendClinicPartnership'), { input: { partnershipId } })).partnership.status).toBe('SUSPENDED');
    expect(await visiblePlans(y.staff)).toEqual([]);
    expect(await call(world.api, node(planId), {}, y.staff)).toBeNull();
    expect(await rawReads(y.clinicId, planId)).toEqual({ plans: 0, steps: 0, profiles: 0 });
    await expectRejected(world.api, transition('resumeClinicPartnership'), { partnershipId }, y.owner, { __typename: 'ConflictError', code: 'INVALID_STATE' });
    expect((await call(world.api, transition('resumeClinicPartnership'), { input: { partnershipId } })).partnership.status).toBe('ACTIVE');
    expect(await visiblePlans(y.staff)).toEqual([planId]);

    expect((await call(world.api, transition('endClinicPartnership'), { input: { partnershipId } }, y.owner)).partnership.status).toBe('ENDED');
    expect(await visiblePlans(y.staff)).toEqual([]);
    expect(await rawReads(y.clinicId, planId)).toEqual({ plans: 0, steps: 0, profiles: 0 });
    await expectRejected(world.api, transition('resumeClinicPartnership'), { partnershipId }, 'OWNER', { __typename: 'ConflictError', code: 'INVALID_STATE' });
    // The chain still has its plan, and knows the clinic cannot see it.
    expect(await call(world.api, node(planId, 'id sharedWithClinic'))).toEqual({ id: planId, sharedWithClinic: false });
  });
});

describe('consent', () => {
  test('a clinic token reads a plan only with consent, and after withdrawal 0 reads — lists, node(id:), steps and the database itself', async () => {
    const a = await newCustomer(world, { allergies: ['fragrance'] });
    const b = await newCustomer(world);
    await grant(a, true);
    const planA = await createPlan(a);
    const planB = await createPlan(b);

    expect(await visiblePlans(clinicStaff)).toContain(planA.planId);
    expect(await visiblePlans(clinicStaff)).not.toContain(planB.planId);
    expect(await call(world.api, node(planA.planId), {}, clinicStaff)).toEqual({ id: planA.planId });
    expect(await call(world.api, node(planA.clinic), {}, clinicStaff)).toEqual({ id: planA.clinic });
    expect(await call(world.api, node(planB.planId), {}, clinicStaff)).toBeNull();
    expect(await call(world.api, node(planB.clinic), {}, clinicStaff)).toBeNull();
    expect(await rawReads(world.clinicId, planA.planId)).toEqual({ plans: 1, steps: 4, profiles: 1 });
    expect(await rawReads(world.clinicId, planB.planId)).toEqual({ plans: 0, steps: 0, profiles: 0 });
    expect((await call(world.api, node(planA.planId, 'sharedWithClinic'))).sharedWithClinic).toBe(true);
    expect((await call(world.api, node(planB.planId, 'sharedWithClinic'))).sharedWithClinic).toBe(false);

    await grant(a, false);
    expect(await visiblePlans(clinicStaff)).not.toContain(planA.planId);
    for (const id of [planA.planId, planA.clinic, ...planA.salon]) expect(await call(world.api, node(id), {}, clinicStaff)).toBeNull();
    const nodes = await call(world.api, `{ nodes(ids: ${JSON.stringify([planA.planId, planA.clinic])}) { id } }`, {}, clinicStaff);
    expect(nodes).toEqual([null, null]);
    expect(await rawReads(world.clinicId, planA.planId)).toEqual({ plans: 0, steps: 0, profiles: 0 });
    // The chain keeps its plan.
    expect(await call(world.api, node(planA.planId, 'id sharedWithClinic'))).toEqual({ id: planA.planId, sharedWithClinic: false });

    // A new grant is in force again; a grant and a withdrawal recorded in the same millisecond count as withdrawn.
    await grant(a, true);
    expect(await call(world.api, node(planA.planId), {}, clinicStaff)).toEqual({ id: planA.planId });
    const at = new Date();
    await consent(world, a, true, world.clinicId, at);
    await consent(world, a, false, world.clinicId, at);
    expect(await call(world.api, node(planA.planId), {}, clinicStaff)).toBeNull();
  });

  test('the clinic never sees a field that is not shared: no customer record, contact, spend, points, store or visits', async () => {
    const a = await newCustomer(world, { name: '王小美 Test', allergies: ['fragrance'], sensitivities: ['sun'] });
    await grant(a, true);
    const plan = await createPlan(a);
    const phone = (await world.api.owner.customer.findUniqueOrThrow({ where: { id: a } })).phone;
    const visitId = (await world.api.owner.visit.findFirst({ where: { orgId: world.chainId }, select: { id: true } }))!.id;
    const everything = `{ node(id: "${plan.planId}") { ... on TreatmentPlan { id title goal status
      sharedProfile { name skinType allergies sensitivities }
      customer { id name phone facts { totalSpend { minorUnits } visitCount } visits(first: 5) { edges { node { id } } } }
      store { id name } chain { name } clinic { name }
      steps { id title location status service { id name } visit { id } followUps { id } plan { id } } } } }`;
    const seen = await call(world.api, everything, {}, clinicStaff);
    expect(seen).toMatchObject({
      id: plan.planId,
      sharedProfile: { name: '王小美 Test', skinType: 'SENSITIVE', allergies: ['fragrance'], sensitivities: ['sun'] },
      customer: null,
      store: null,
      clinic: { name: 'Harmony Aesthetic Clinic 和美医美诊所' },
    });
    for (const step of seen.steps) expect(step).toMatchObject({ service: null, visit: null, followUps: [] });
    const text = JSON.stringify(seen);
    expect(text).not.toContain(phone.slice(-4));
    expect(text).not.toContain('123456');
    // The shared profile type has exactly the shared fields.
    const type = await call(world.api, `{ __type(name: "SharedCustomerProfile") { fields { name } } }`);
    expect(type.fields.map((f: any) => f.name).sort()).toEqual(['allergies', 'name', 'sensitivities', 'skinType']);
    // Roles of the clinic without health access see the name only.
    const desk: Principal = { kind: 'STAFF', orgId: world.clinicId, staffId: randomUUID(), role: 'HQ_ANALYST', storeIds: [] };
    expect((await call(world.api, everything, {}, desk)).sharedProfile).toEqual({ name: '王小美 Test', skinType: null, allergies: null, sensitivities: null });
    // Nothing of the customer through the core graph either.
    expect(await call(world.api, `{ node(id: "${gid('Customer', a)}") { id } }`, {}, clinicStaff)).toBeNull();
    expect(await call(world.api, `{ node(id: "${gid('Visit', visitId)}") { id } }`, {}, clinicStaff)).toBeNull();
    expect((await call(world.api, `{ customers(first: 10) { edges { node { id } } } }`, {}, clinicStaff)).edges).toEqual([]);
    expect((await call(world.api, `{ visits(first: 10) { edges { node { id } } } }`, {}, clinicStaff)).edges).toEqual([]);
    // And underneath: the clinic's database role reads none of the customer's rows, even with consent.
    const client = await appRole(world, world.clinicId);
    try {
      for (const table of ['customer', 'skin_profile', 'customer_fact', 'consent', 'visit', 'visit_line', 'membership', 'follow_up_task', 'customer_package', 'contraindication_ack']) {
        const { rows } = await client.query(`SELECT count(*)::int AS n FROM ${table} WHERE org_id = $1`, [world.chainId]);
        expect({ table, n: rows[0].n }).toEqual({ table, n: 0 });
      }
      // The access function answers for the asking clinic only.
      const { rows } = await client.query('SELECT packages_clinic_access($1, $2, $3) AS a', [world.chainId, randomUUID(), a]);
      expect(rows[0].a).toBe(false);
    } finally {
      await client.end();
    }
  });

  test('never another clinic\'s plans, even for a customer who consented to both', async () => {
    const z = await secondClinic(world);
    await activePartnership(world, z.clinicId);
    const a = await newCustomer(world);
    const c = await newCustomer(world);
    await grant(a, true);
    await grant(a, true, z.clinicId);
    await grant(c, true, z.clinicId);
    const planA = await createPlan(a);
    const planC = await createPlan(c, z.clinicId);
    expect(await visiblePlans(z.staff)).toEqual([planC.planId]);
    expect(await visiblePlans(clinicStaff)).not.toContain(planC.planId);
    for (const id of [planA.planId, planA.clinic]) expect(await call(world.api, node(id), {}, z.staff)).toBeNull();
    for (const id of [planC.planId, planC.clinic]) expect(await call(world.api, node(id), {}, clinicStaff)).toBeNull();
    expect(await rawReads(z.clinicId, planA.planId)).toEqual({ plans: 0, steps: 0, profiles: 0 });
    await expectRejected(world.api, RECORD, { stepId: planA.clinic, outcome: 'done' }, z.staff, { __typename: 'NotFoundError', field: ['input', 'stepId'] });
    // The other chain sees neither.
    expect(await visiblePlans('OTHER_CHAIN_OWNER')).toEqual([]);
    expect(await call(world.api, node(planA.planId), {}, 'OTHER_CHAIN_OWNER')).toBeNull();
  });
});

describe('steps and outcomes', () => {
  test('the clinic records its procedure\'s outcome and aftercare; the salon sees them; each party records only its own steps', async () => {
    const a = await newCustomer(world);
    await grant(a, true);
    const plan = await createPlan(a);
    const outcome = { stepId: plan.clinic, outcome: 'Full-face HIFU, 400 lines', aftercareInstructions: 'No sauna for 7 days; SPF 50.' };
    await expectRejected(world.api, RECORD, { ...outcome, stepId: plan.salon[0] }, clinicStaff, { __typename: 'ForbiddenError' });
    await expectRejected(world.api, RECORD, outcome, 'CONSULTANT', { __typename: 'ForbiddenError' });
    await expectRejected(world.api, RECORD, { ...outcome, serviceId: gid('Service', world.services.hifu) }, clinicStaff, { __typename: 'NotFoundError', field: ['input', 'serviceId'] });
    await expectRejected(world.api, RECORD, { ...outcome, outcome: ' ' }, clinicStaff, { __typename: 'ValidationError', field: ['input', 'outcome'] });
    await expectRejected(world.api, RECORD, { ...outcome, performedAt: new Date(Date.now() + 86_400_000).toISOString() }, clinicStaff, { __typename: 'ValidationError', field: ['input', 'performedAt'] });

    const recorded = await call(world.api, RECORD, { input: { ...outcome, serviceId: gid('Service', world.clinicService) } }, clinicStaff);
    expect(recorded).toMatchObject({ userErrors: [], step: { status: 'DONE', outcome: outcome.outcome, aftercareInstructions: outcome.aftercareInstructions, service: { id: gid('Service', world.clinicService) } } });
    await expectRejected(world.api, RECORD, outcome, clinicStaff, { __typename: 'ConflictError', code: 'INVALID_STATE' });
    // The salon sees the outcome (not the clinic's catalogue entry), and has its follow-ups (days 1, 7, 30, 90 by default).
    const chainView = await call(world.api, node(plan.clinic, 'status outcome aftercareInstructions service { id } followUps { offsetDays }'));
    expect(chainView).toEqual({ status: 'DONE', outcome: outcome.outcome, aftercareInstructions: outcome.aftercareInstructions, service: null, followUps: [1, 7, 30, 90].map((offsetDays) => ({ offsetDays })) });
    // The event is the clinic's own, and names no customer of the chain.
    const event = await world.api.owner.domainEvent.findFirstOrThrow({ where: { type: 'treatmentPlan.outcomeRecorded', aggregateId: uuidOf(plan.planId) } });
    expect(event.orgId).toBe(world.clinicId);
    expect(JSON.stringify(event.payload)).not.toContain(a);

    // The salon schedules and records its own steps; the clinic may not change a salon step or a step's title.
    const scheduled = await call(world.api, SCHEDULE, { input: { stepId: plan.salon[1], scheduledAt: new Date(Date.now() + 5 * 86_400_000).toISOString() } }, 'CONSULTANT');
    expect(scheduled.step.status).toBe('SCHEDULED');
    await expectRejected(world.api, SCHEDULE, { stepId: plan.salon[1], scheduledAt: new Date(Date.now() + 6 * 86_400_000).toISOString() }, clinicStaff, { __typename: 'ForbiddenError' });
    const client = await appRole(world, world.clinicId);
    try {
      const salon = await client.query("UPDATE treatment_plan_step SET outcome = 'x' WHERE id = $1", [uuidOf(plan.salon[1]!)]);
      expect(salon.rowCount).toBe(0);
      await expect(client.query("UPDATE treatment_plan_step SET title = 'x' WHERE id = $1", [uuidOf(plan.clinic)])).rejects.toThrow(/may not change this field/);
      await expect(client.query("UPDATE treatment_plan SET title = 'x' WHERE id = $1", [uuidOf(plan.planId)])).resolves.toMatchObject({ rowCount: 0 });
    } finally {
      await client.end();
    }

    // Consent withdrawn: the clinic can no longer record on another plan's step, and nothing changes.
    const second = await createPlan(a);
    await grant(a, false);
    await expectRejected(world.api, RECORD, { ...outcome, stepId: second.clinic }, clinicStaff, { __typename: 'NotFoundError', field: ['input', 'stepId'] });
    await expectRejected(world.api, CANCEL_STEP, { stepId: second.clinic, reason: 'x' }, clinicStaff, { __typename: 'NotFoundError' });
    // The chain may cancel any open step of its plan.
    expect((await call(world.api, CANCEL_STEP, { input: { stepId: second.clinic, reason: 'customer declined' } })).step.status).toBe('CANCELLED');
  });

  test('plans are the chain\'s: bad input, other tenants and clinics are refused, and nothing changes', async () => {
    const a = await newCustomer(world);
    const base = { customerId: gid('Customer', a), storeId: gid('Store', world.stores.SH), title: 'Plan', steps: [{ location: 'SALON', title: 'Care' }] };
    await expectRejected(world.api, CREATE_PLAN, { ...base, steps: [] }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'steps'] });
    await expectRejected(world.api, CREATE_PLAN, { ...base, title: '' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'title'] });
    await expectRejected(world.api, CREATE_PLAN, { ...base, steps: [{ location: 'CLINIC', title: 'HIFU' }] }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'steps', '0', 'location'] });
    await expectRejected(
      world.api,
      CREATE_PLAN,
      { ...base, clinicOrganizationId: gid('Organization', world.clinicId), steps: [{ location: 'CLINIC', title: 'HIFU', serviceId: gid('Service', world.services.hifu) }] },
      'OWNER',
      { __typename: 'ValidationError', field: ['input', 'steps', '0', 'serviceId'] },
    );
    await expectRejected(world.api, CREATE_PLAN, { ...base, steps: [{ location: 'SALON', title: 'x', followUpDays: [7, 1] }] }, 'OWNER', { __typename: 'ValidationError' });
    await expectRejected(world.api, CREATE_PLAN, { ...base, clinicOrganizationId: gid('Organization', world.otherChainId) }, 'OWNER', { __typename: 'NotFoundError', field: ['input', 'clinicOrganizationId'] });
    await expectRejected(world.api, CREATE_PLAN, { ...base, storeId: gid('Store', world.stores.BJ) }, 'CONSULTANT', { __typename: 'NotFoundError', field: ['input', 'storeId'] });
    await expectRejected(world.api, CREATE_PLAN, base, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError', field: ['input', 'customerId'] });
    await expectRejected(world.api, CREATE_PLAN, base, world.clinicOwner, { __typename: 'ForbiddenError' });
    await expectRejected(world.api, CREATE_PLAN, base, 'FRONT_DESK', { __typename: 'ForbiddenError' });
    const plan = await createPlan(a);
    const ADD = `mutation($input: AddTreatmentPlanStepsInput!) { addTreatmentPlanSteps(input: $input) { plan { steps { position title location } } ${ERRORS} } }`;
    const added = await call(world.api, ADD, { input: { planId: plan.planId, steps: [{ location: 'SALON', title: 'Extra care' }] } }, 'CONSULTANT');
    expect(added.plan.steps.map((s: any) => [s.position, s.title])).toEqual([[0, 'Skin assessment'], [1, 'HIFU lifting'], [2, 'Repair care 1/2'], [3, 'Repair care 2/2'], [4, 'Extra care']]);
    await expectRejected(world.api, ADD, { planId: plan.planId, steps: [{ location: 'SALON', title: 'x' }] }, world.clinicOwner, { __typename: 'ForbiddenError' });
    await expectRejected(world.api, ADD, { planId: plan.planId, steps: [{ location: 'SALON', title: 'x' }] }, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError', field: ['input', 'planId'] });
    await expectRejected(world.api, ADD, { planId: plan.planId, steps: [] }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'steps'] });
    const CLOSE = `mutation($input: CloseTreatmentPlanInput!) { closeTreatmentPlan(input: $input) { plan { id status } ${ERRORS} } }`;
    await expectRejected(world.api, CLOSE, { planId: plan.planId, status: 'COMPLETED' }, 'OWNER', { __typename: 'ConflictError', code: 'OPEN_STEPS' });
    await expectRejected(world.api, CLOSE, { planId: plan.planId, status: 'CANCELLED' }, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' });
    await expectRejected(world.api, SCHEDULE, { stepId: plan.salon[0], scheduledAt: new Date().toISOString() }, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' });
    // A store-bound consultant at BJ-01 does not see an SH-01 plan.
    const bj: Principal = { kind: 'STAFF', orgId: world.chainId, staffId: randomUUID(), role: 'CONSULTANT', storeIds: [world.stores.BJ] };
    expect(await call(world.api, node(plan.planId), {}, bj)).toBeNull();
    expect((await call(world.api, CLOSE, { input: { planId: plan.planId, status: 'CANCELLED' } })).plan.status).toBe('CANCELLED');
    const steps = await world.api.owner.treatmentPlanStep.findMany({ where: { planId: uuidOf(plan.planId) } });
    expect(steps.every((s) => s.status === 'CANCELLED')).toBe(true);
    await expectRejected(world.api, RECORD, { stepId: plan.salon[0], outcome: 'x' }, 'OWNER', { __typename: 'ConflictError', code: 'INVALID_STATE' });
    await expectRejected(world.api, ADD, { planId: plan.planId, steps: [{ location: 'SALON', title: 'x' }] }, 'OWNER', { __typename: 'ConflictError', code: 'INVALID_STATE' });
    // The customer sees their own plans (and only those).
    const mine = await call(world.api, PLANS, {}, { kind: 'CUSTOMER', orgId: world.chainId, customerId: a });
    expect(mine.edges.map((e: any) => e.node.id)).toEqual([plan.planId]);
  });
});

describe('treatmentPlanUpdated', () => {
  test('both parties follow a plan live; the clinic\'s access is re-checked on every event (consent withdrawn → no more events)', async () => {
    const a = await newCustomer(world);
    const d = await newCustomer(world);
    await grant(a, true);
    await grant(d, true);
    const plan = await createPlan(a);
    const control = await createPlan(d);
    const clinicAll = watch(await world.api.ws(clinicStaff), SUBSCRIBE, {});
    const clinicOne = watch(await world.api.ws(clinicStaff), SUBSCRIBE, { planId: plan.planId });
    const chainAll = watch(await world.api.ws('OWNER'), SUBSCRIBE, {});
    await untilProbe(clinicAll, () => probe(world, world.chainId, control.planId));
    await untilProbe(clinicOne, () => probe(world, world.chainId, plan.planId));
    await untilProbe(chainAll, () => probe(world, world.clinicId, control.planId));

    // The salon schedules a step: the clinic hears of it.
    await call(world.api, SCHEDULE, { input: { stepId: plan.salon[0], scheduledAt: new Date(Date.now() + 86_400_000).toISOString() } }, 'CONSULTANT');
    await clinicAll.until(() => clinicAll.events().length === 1);
    await clinicOne.until(() => clinicOne.events().length === 1);
    expect(clinicOne.events()[0]).toMatchObject({ type: 'treatmentPlan.stepScheduled', plan: { id: plan.planId, title: 'HIFU with repair care' }, step: { id: plan.salon[0], status: 'SCHEDULED' } });
    // The clinic records its outcome: the salon hears of it, with the outcome and aftercare.
    await call(world.api, RECORD, { input: { stepId: plan.clinic, outcome: 'Done well', aftercareInstructions: 'Rest' } }, clinicStaff);
    await chainAll.until(() => chainAll.events().some((e) => e.type === 'treatmentPlan.outcomeRecorded'));
    expect(chainAll.events().find((e) => e.type === 'treatmentPlan.outcomeRecorded')).toMatchObject({ step: { id: plan.clinic, outcome: 'Done well', aftercareInstructions: 'Rest' } });
    await clinicAll.until(() => clinicAll.events().length === 2);
    // Each subscription handles events on its own: clinicOne must have the outcome before consent is withdrawn.
    await clinicOne.until(() => clinicOne.events().length === 2);

    // Consent withdrawn mid-subscription: the chain's next change reaches the chain, and not the clinic.
    await grant(a, false);
    await call(world.api, CANCEL_STEP, { input: { stepId: plan.salon[2], reason: 'not needed' } }, 'CONSULTANT');
    await chainAll.until(() => chainAll.events().some((e) => e.type === 'treatmentPlan.stepCancelled'));
    // A probe published after it has been handled by the clinic's subscription: the cancellation was handled first.
    await untilProbe(clinicAll, () => probe(world, world.chainId, control.planId));
    expect(clinicAll.events().map((e) => e.type)).toEqual(['treatmentPlan.stepScheduled', 'treatmentPlan.outcomeRecorded']);
    expect(clinicOne.events().map((e) => e.type)).toEqual(['treatmentPlan.stepScheduled', 'treatmentPlan.outcomeRecorded']);
    clinicOne.dispose();

    // Granted again: events flow again.
    await grant(a, true);
    await call(world.api, SCHEDULE, { input: { stepId: plan.salon[1], scheduledAt: new Date(Date.now() + 2 * 86_400_000).toISOString() } }, 'CONSULTANT');
    await clinicAll.until(() => clinicAll.events().length === 3);
    expect(clinicAll.events().map((e) => e.step?.id)).toEqual([plan.salon[0], plan.clinic, plan.salon[1]]);
    expect(clinicAll.results.every((r) => !r.errors)).toBe(true);
    for (const sub of [clinicAll, clinicOne, chainAll]) sub.dispose();
  });

  test('another clinic hears nothing of a plan that is not its own; refusals at subscribe time look like a missing plan', async () => {
    const z = await secondClinic(world);
    await activePartnership(world, z.clinicId);
    const a = await newCustomer(world);
    const c = await newCustomer(world);
    await grant(a, true);
    await grant(a, true, z.clinicId);
    await grant(c, true, z.clinicId);
    const planA = await createPlan(a);
    const planC = await createPlan(c, z.clinicId);
    const other = watch(await world.api.ws(z.staff), SUBSCRIBE, {});
    await untilProbe(other, () => probe(world, world.chainId, planC.planId));
    await call(world.api, SCHEDULE, { input: { stepId: planA.salon[0], scheduledAt: new Date(Date.now() + 86_400_000).toISOString() } }, 'CONSULTANT');
    await call(world.api, RECORD, { input: { stepId: planA.clinic, outcome: 'Harmony only' } }, clinicStaff);
    // Probes published after those events reach the other clinic: the plan's events were handled, and dropped.
    await untilProbe(other, () => probe(world, world.chainId, planC.planId));
    expect(other.events()).toEqual([]);
    other.dispose();

    const b = await newCustomer(world);
    const planB = await createPlan(b);
    const notFound = [{ message: 'Treatment plan not found', code: 'NOT_FOUND' }];
    expect(await refusal(await world.api.ws(clinicStaff), SUBSCRIBE, { planId: planB.planId })).toEqual(notFound);
    expect(await refusal(await world.api.ws(z.staff), SUBSCRIBE, { planId: planA.planId })).toEqual(notFound);
    expect(await refusal(await world.api.ws('OTHER_CHAIN_OWNER'), SUBSCRIBE, { planId: planA.planId })).toEqual(notFound);
    expect(await refusal(await world.api.ws(clinicStaff), SUBSCRIBE, { planId: gid('TreatmentPlan', randomUUID()) })).toEqual(notFound);
    expect((await refusal(await world.api.ws('FRONT_DESK'), SUBSCRIBE, {}))[0]?.code).toBe('FORBIDDEN');
  });
});
