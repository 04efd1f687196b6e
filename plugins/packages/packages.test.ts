import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { appRole, call, DAY_MS, ERRORS, expectLedgerConsistent, expectRejected, gid, key, newCustomer, staffAt, startWorld, uuidOf, visitFor, type World } from './testing.ts';

const PACKAGE_FIELDS = `id name trial state price { amount minorUnits } purchasedAt expiresAt frozenAt refundedAt sessionsTotal sessionsRemaining
  outstandingValue { minorUnits } services { service { id } sessionsTotal sessionsRemaining value { minorUnits } remainingValue { minorUnits } }`;
const CREATE_TEMPLATE = `mutation($input: CreatePackageTemplateInput!) { createPackageTemplate(input: $input) {
  template { id name trial validityMonths price { amount } sessionsTotal services { service { id } sessions } followUpDays } ${ERRORS} } }`;
const SELL = `mutation($input: SellPackageInput!) { sellPackage(input: $input) { customerPackage { ${PACKAGE_FIELDS} } replayed ${ERRORS} } }`;
const CONSUME = `mutation($input: ConsumePackageSessionInput!) { consumePackageSession(input: $input) {
  customerPackage { id state sessionsRemaining } remainingSessions replayed session { id kind sessions value { minorUnits } } ${ERRORS} } }`;
const REFUND = `mutation($input: RefundPackageInput!) { refundPackage(input: $input) {
  customerPackage { ${PACKAGE_FIELDS} refund { sessions amount { minorUnits } reason } } refund { sessions amount { minorUnits } } replayed ${ERRORS} } }`;
const FREEZE = `mutation($input: FreezePackageInput!) { freezePackage(input: $input) { customerPackage { id state expiresAt frozenAt adjustments { kind previousExpiresAt newExpiresAt reason } } ${ERRORS} } }`;
const UNFREEZE = `mutation($input: UnfreezePackageInput!) { unfreezePackage(input: $input) { customerPackage { id state expiresAt frozenAt } ${ERRORS} } }`;
const EXTEND = `mutation($input: ExtendPackageInput!) { extendPackage(input: $input) { customerPackage { id state expiresAt } ${ERRORS} } }`;

let world: World;
/** Hydrating facial ×4 + chemical peel ×2 (¥680 and ¥880 list), sold for ¥3,600, valid 6 months. */
let courseId: string;
let trialId: string;

beforeAll(async () => {
  world = await startWorld();
  const course = await call(world.api, CREATE_TEMPLATE, {
    input: {
      name: 'Test course',
      price: '3600.00',
      validityMonths: 6,
      services: [
        { serviceId: gid('Service', world.services.hydrating), sessions: 4 },
        { serviceId: gid('Service', world.services.peel), sessions: 2 },
      ],
      followUpDays: [7, 30],
    },
  });
  expect(course.userErrors).toEqual([]);
  courseId = uuidOf(course.template.id);
  const trial = await call(world.api, CREATE_TEMPLATE, {
    input: { name: 'Test trial', price: '99.00', validityMonths: 1, trial: true, services: [{ serviceId: gid('Service', world.services.hydrating), sessions: 1 }] },
  });
  trialId = uuidOf(trial.template.id);
});

afterAll(async () => {
  await expectLedgerConsistent(world.api.owner);
  await world.api.close();
});

async function sell(customerId: string, options: { templateId?: string; price?: string; storeId?: string; as?: any } = {}) {
  const visitId = await visitFor(world, customerId, { storeId: options.storeId });
  const payload = await call(
    world.api,
    SELL,
    { input: { visitId: gid('Visit', visitId), templateId: gid('PackageTemplate', options.templateId ?? courseId), idempotencyKey: key('sell'), ...(options.price ? { price: options.price } : {}) } },
    options.as ?? 'OWNER',
  );
  expect(payload.userErrors).toEqual([]);
  return { pkg: payload.customerPackage, id: uuidOf(payload.customerPackage.id), visitId };
}

function consumeInput(pkgId: string, visitId: string, serviceId = world.services.hydrating, idempotencyKey = key('use')) {
  return { customerPackageId: gid('CustomerPackage', pkgId), serviceId: gid('Service', serviceId), visitId: gid('Visit', visitId), idempotencyKey };
}

/** The end of the local day `months` after `at`'s local date, for a zone without daylight saving at `offsetHours`. */
function endOfLocalDay(at: Date, months: number, offsetHours: number): Date {
  const local = new Date(at.getTime() + offsetHours * 3_600_000);
  const y = local.getUTCFullYear();
  const m = local.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  const day = Math.min(local.getUTCDate(), lastDay);
  return new Date(Date.UTC(y, m, day + 1) - offsetHours * 3_600_000);
}

describe('package templates', () => {
  test('an owner creates a template; the catalogue lists it with its sessions', async () => {
    const list = await call(world.api, '{ packageTemplates { id name trial sessionsTotal services { sessions } followUpDays } }');
    const course = list.find((t: any) => t.id === gid('PackageTemplate', courseId));
    expect(course).toMatchObject({ name: 'Test course', trial: false, sessionsTotal: 6, followUpDays: [7, 30] });
    // Customers browse the active ones too; another chain sees none of ours.
    expect((await call(world.api, '{ packageTemplates { id } }', {}, 'CUSTOMER')).map((t: any) => t.id)).toContain(gid('PackageTemplate', courseId));
    expect(await call(world.api, '{ packageTemplates { id } }', {}, 'OTHER_CHAIN_OWNER')).toEqual([]);
  });

  test('bad templates are refused with a typed error and change nothing', async () => {
    const base = { name: 'X', price: '100.00', validityMonths: 3, services: [{ serviceId: gid('Service', world.services.hydrating), sessions: 2 }] };
    await expectRejected(world.api, CREATE_TEMPLATE, { ...base, validityMonths: 0 }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'validityMonths'] });
    await expectRejected(world.api, CREATE_TEMPLATE, { ...base, price: '-1.00' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'price'] });
    await expectRejected(world.api, CREATE_TEMPLATE, { ...base, price: '1.001' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'price'] });
    await expectRejected(world.api, CREATE_TEMPLATE, { ...base, services: [] }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'services'] });
    await expectRejected(world.api, CREATE_TEMPLATE, { ...base, followUpDays: [30, 7] }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'followUpDays'] });
    await expectRejected(world.api, CREATE_TEMPLATE, { ...base, services: [{ serviceId: gid('Service', world.otherService), sessions: 2 }] }, 'OWNER', {
      __typename: 'NotFoundError',
      field: ['input', 'services', '0', 'serviceId'],
    });
    await expectRejected(world.api, CREATE_TEMPLATE, base, 'STORE_MANAGER', { __typename: 'ForbiddenError' });
    await expectRejected(world.api, CREATE_TEMPLATE, base, world.clinicOwner, { __typename: 'ForbiddenError' });
  });

  test('a template withdrawn from sale leaves the catalogue (and its sold packages alone); only the owner, only their own', async () => {
    const SET_ACTIVE = `mutation($input: SetPackageTemplateActiveInput!) { setPackageTemplateActive(input: $input) { template { id active } ${ERRORS} } }`;
    const made = await call(world.api, CREATE_TEMPLATE, { input: { name: 'Seasonal', price: '10.00', validityMonths: 2, services: [{ serviceId: gid('Service', world.services.spa), sessions: 1 }] } });
    const input = { templateId: made.template.id, active: false };
    await expectRejected(world.api, SET_ACTIVE, input, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError', field: ['input', 'templateId'] });
    await expectRejected(world.api, SET_ACTIVE, input, 'STORE_MANAGER', { __typename: 'ForbiddenError' });
    expect(await call(world.api, SET_ACTIVE, { input })).toMatchObject({ userErrors: [], template: { active: false } });
    const listed = async (includeInactive: boolean) => (await call(world.api, `{ packageTemplates(includeInactive: ${includeInactive}) { id } }`)).map((t: any) => t.id);
    expect(await listed(false)).not.toContain(made.template.id);
    expect(await listed(true)).toContain(made.template.id);
    expect(await call(world.api, `{ node(id: "${made.template.id}") { id } }`, {}, 'CUSTOMER')).toBeNull();
  });
});

describe('selling', () => {
  test('a package sold on a completed visit: the price split over its services by list price, valid to the end of the local day in the store\'s zone', async () => {
    const customerId = await newCustomer(world, { storeId: world.stores.UR });
    const before = Date.now();
    const { pkg } = await sell(customerId, { storeId: world.stores.UR });
    expect(pkg).toMatchObject({ name: 'Test course', state: 'ACTIVE', price: { amount: '3600.00' }, sessionsTotal: 6, sessionsRemaining: 6, outstandingValue: { minorUnits: '360000' } });
    // 4 × ¥680 = 2720 and 2 × ¥880 = 1760 of 4480 list: 218571.4… and 141428.57…: the fen left over goes to the larger remainder.
    const lines = Object.fromEntries(pkg.services.map((s: any) => [uuidOf(s.service.id), s.value.minorUnits]));
    expect(lines).toEqual({ [world.services.hydrating]: '218571', [world.services.peel]: '141429' });
    // Ürümqi is UTC+6 all year: 6 months after the sale's local date, through the end of that day there.
    const purchasedAt = new Date(pkg.purchasedAt);
    expect(purchasedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(pkg.expiresAt).toBe(endOfLocalDay(purchasedAt, 6, 6).toISOString());
    const event = await world.api.owner.domainEvent.findFirstOrThrow({ where: { type: 'package.sold', aggregateId: uuidOf(pkg.id) } });
    expect(event.payload).toMatchObject({ customerId, priceMinor: 360000, sessions: 6 });
  });

  test('a negotiated price is allocated the same way and is what the package is worth', async () => {
    const customerId = await newCustomer(world);
    const { pkg } = await sell(customerId, { price: '1000.01' });
    expect(pkg.price.minorUnits).toBe('100001');
    expect(pkg.services.reduce((sum: number, s: any) => sum + Number(s.value.minorUnits), 0)).toBe(100001);
  });

  test('a trial pack once per customer; retrying the same sale returns it without a second package', async () => {
    const customerId = await newCustomer(world);
    const visitId = await visitFor(world, customerId);
    const input = { visitId: gid('Visit', visitId), templateId: gid('PackageTemplate', trialId), idempotencyKey: key('trial') };
    const first = await call(world.api, SELL, { input });
    expect(first).toMatchObject({ replayed: false, userErrors: [], customerPackage: { trial: true } });
    const again = await call(world.api, SELL, { input });
    expect(again).toMatchObject({ replayed: true, customerPackage: { id: first.customerPackage.id } });
    expect(await world.api.owner.customerPackage.count({ where: { customerId } })).toBe(1);
    await expectRejected(world.api, SELL, { ...input, idempotencyKey: key('trial') }, 'OWNER', { __typename: 'ConflictError', code: 'TRIAL_ALREADY_USED' });
    await expectRejected(world.api, SELL, { ...input, price: '1.00' }, 'OWNER', { __typename: 'ConflictError', code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  test('refused sales change nothing: open visit, inactive template, bad price, other tenants\' ids, roles', async () => {
    const customerId = await newCustomer(world);
    const open = await visitFor(world, customerId, { status: 'CHECKED_IN' });
    const done = await visitFor(world, customerId);
    const input = (visitId: string, templateId = courseId) => ({ visitId: gid('Visit', visitId), templateId: gid('PackageTemplate', templateId), idempotencyKey: key('sell') });
    await expectRejected(world.api, SELL, input(open), 'OWNER', { __typename: 'ConflictError', code: 'INVALID_STATE' });
    await expectRejected(world.api, SELL, { ...input(done), price: '-5.00' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'price'] });
    const otherCustomer = await newCustomer(world, { orgId: world.otherChainId });
    const otherVisit = await visitFor(world, otherCustomer, { orgId: world.otherChainId });
    await expectRejected(world.api, SELL, input(otherVisit), 'OWNER', { __typename: 'NotFoundError', field: ['input', 'visitId'] });
    // A store-bound front desk at BJ-01 cannot see the SH-01 visit: exactly like a missing one.
    await expectRejected(world.api, SELL, input(done), staffAt(world, world.stores.BJ, 'FRONT_DESK'), { __typename: 'NotFoundError', field: ['input', 'visitId'] });
    // Our template id with the other chain's owner, and their visit with ours: not found.
    await expectRejected(world.api, SELL, input(otherVisit), 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError', field: ['input', 'templateId'] });
    await expectRejected(world.api, SELL, input(done), 'BEAUTICIAN', { __typename: 'ForbiddenError' });
    await expectRejected(world.api, SELL, input(done), 'CLINIC_STAFF', { __typename: 'ForbiddenError' });
    const inactive = await world.api.owner.packageTemplate.create({
      data: { orgId: world.chainId, name: 'Retired', priceMinor: 100, validityMonths: 1, active: false, services: { create: [{ serviceId: world.services.hydrating, sessions: 1 }] } },
    });
    await expectRejected(world.api, SELL, input(done, inactive.id), 'OWNER', { __typename: 'ConflictError', code: 'TEMPLATE_INACTIVE' });
  });
});

describe('consuming sessions', () => {
  test('a session used on a visit; the value it carried is recorded', async () => {
    const customerId = await newCustomer(world);
    const { id, visitId } = await sell(customerId);
    const used = await call(world.api, CONSUME, { input: consumeInput(id, visitId) }, 'FRONT_DESK');
    expect(used).toMatchObject({ userErrors: [], replayed: false, remainingSessions: 3, customerPackage: { sessionsRemaining: 5, state: 'ACTIVE' }, session: { kind: 'CONSUME', sessions: 1 } });
    // 218571 over 4 sessions: the first is worth floor(218571/4) = 54642.
    expect(used.session.value.minorUnits).toBe('54642');
    const event = await world.api.owner.domainEvent.findFirstOrThrow({ where: { type: 'package.sessionConsumed', aggregateId: id } });
    expect(event.payload).toMatchObject({ customerId, remainingSessions: 3, serviceId: world.services.hydrating });
  });

  test('retried consumption with the same key has one effect, also when the retries race', async () => {
    const customerId = await newCustomer(world);
    const { id, visitId } = await sell(customerId);
    const input = consumeInput(id, visitId, world.services.peel, key('retry'));
    const first = await call(world.api, CONSUME, { input }, 'CONSULTANT');
    const second = await call(world.api, CONSUME, { input }, 'CONSULTANT');
    expect(first).toMatchObject({ replayed: false, remainingSessions: 1 });
    expect(second).toMatchObject({ replayed: true, remainingSessions: 1, session: { id: first.session.id } });
    const raced = key('race');
    const answers = await Promise.all(Array.from({ length: 12 }, () => call(world.api, CONSUME, { input: { ...input, idempotencyKey: raced } }, 'CONSULTANT')));
    expect(answers.filter((a) => a.replayed === false)).toHaveLength(1);
    expect(new Set(answers.map((a) => a.session.id)).size).toBe(1);
    expect(await world.api.owner.packageSessionEntry.count({ where: { customerPackageId: id } })).toBe(2);
    const line = await world.api.owner.customerPackageService.findFirstOrThrow({ where: { customerPackageId: id, serviceId: world.services.peel } });
    expect(line.sessionsRemaining).toBe(0);
    // The same key for a different request is refused, with nothing changed.
    await expectRejected(world.api, CONSUME, { ...consumeInput(id, visitId), idempotencyKey: input.idempotencyKey }, 'CONSULTANT', { code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  test('50 concurrent consumptions of the last 3 sessions: exactly 3 succeed, never below zero', async () => {
    const customerId = await newCustomer(world);
    const { id, visitId } = await sell(customerId);
    await call(world.api, CONSUME, { input: consumeInput(id, visitId) });
    const answers = await Promise.all(Array.from({ length: 50 }, () => world.api.gql(CONSUME, { input: consumeInput(id, visitId) }, 'FRONT_DESK')));
    expect(answers.filter((a) => a.errors).map((a) => a.errors)).toEqual([]);
    const payloads = answers.map((a) => a.data!.consumePackageSession);
    const succeeded = payloads.filter((p) => p.userErrors.length === 0);
    expect(succeeded).toHaveLength(3);
    expect(succeeded.map((p) => p.remainingSessions).sort()).toEqual([0, 1, 2]);
    const refused = payloads.filter((p) => p.userErrors.length > 0);
    expect(refused).toHaveLength(47);
    for (const p of refused) expect(p.userErrors).toEqual([expect.objectContaining({ __typename: 'PackageExhaustedError', code: 'SESSIONS_EXHAUSTED', remainingSessions: 0 })]);
    const line = await world.api.owner.customerPackageService.findFirstOrThrow({ where: { customerPackageId: id, serviceId: world.services.hydrating } });
    expect(line.sessionsRemaining).toBe(0);
    expect(await world.api.owner.packageSessionEntry.count({ where: { customerPackageId: id, serviceId: world.services.hydrating } })).toBe(4);
    // The four hydrating sessions carried exactly the line's value between them.
    const values = await world.api.owner.packageSessionEntry.aggregate({ where: { customerPackageId: id, serviceId: world.services.hydrating }, _sum: { valueMinor: true } });
    expect(values._sum.valueMinor).toBe(line.valueMinor);
    await expectLedgerConsistent(world.api.owner);
  });

  test('exhausted, expired, frozen and refunded packages refuse with typed errors and change nothing', async () => {
    const customerId = await newCustomer(world);
    const { id, visitId } = await sell(customerId);
    await call(world.api, CONSUME, { input: consumeInput(id, visitId, world.services.peel) });
    await call(world.api, CONSUME, { input: consumeInput(id, visitId, world.services.peel) });
    await expectRejected(world.api, CONSUME, consumeInput(id, visitId, world.services.peel), 'OWNER', { __typename: 'PackageExhaustedError', code: 'SESSIONS_EXHAUSTED', field: ['input', 'serviceId'] });
    await expectRejected(world.api, CONSUME, consumeInput(id, visitId, world.services.spa), 'OWNER', { __typename: 'ValidationError', field: ['input', 'serviceId'] });

    await world.api.owner.customerPackage.update({ where: { id }, data: { status: 'FROZEN', frozenAt: new Date() } });
    const frozen = await expectRejected(world.api, CONSUME, consumeInput(id, visitId), 'OWNER', { __typename: 'PackageFrozenError', code: 'PACKAGE_FROZEN' });
    expect(frozen.frozenAt).toBeTruthy();
    await world.api.owner.customerPackage.update({ where: { id }, data: { status: 'ACTIVE', frozenAt: null, purchasedAt: new Date(Date.now() - 200 * DAY_MS), expiresAt: new Date(Date.now() - DAY_MS) } });
    const expired = await expectRejected(world.api, CONSUME, consumeInput(id, visitId), 'OWNER', { __typename: 'PackageExpiredError', code: 'PACKAGE_EXPIRED' });
    expect(new Date(expired.expiresAt).getTime()).toBeLessThan(Date.now());
    expect((await call(world.api, `{ node(id: "${gid('CustomerPackage', id)}") { ... on CustomerPackage { state outstandingValue { minorUnits } } } }`)).state).toBe('EXPIRED');
    // The database refuses too, whatever the application does.
    await expect(
      world.api.owner.$executeRaw`INSERT INTO package_session_entry (org_id, customer_package_id, service_id, customer_id, kind, sessions, visit_id, store_id, actor)
        VALUES (${world.chainId}::uuid, ${id}::uuid, ${world.services.hydrating}::uuid, ${customerId}::uuid, 'CONSUME', 1, ${visitId}::uuid, ${world.stores.SH}::uuid, 'test')`,
    ).rejects.toThrow(/cannot be used/);

    const other = await sell(customerId);
    await call(world.api, REFUND, { input: { customerPackageId: gid('CustomerPackage', other.id), reason: 'test', idempotencyKey: key('refund') } });
    await expectRejected(world.api, CONSUME, consumeInput(other.id, other.visitId), 'OWNER', { __typename: 'ConflictError', code: 'PACKAGE_REFUNDED' });
  });

  test('the visit must be the customer\'s, open or completed, and visible to the caller; other tenants look like random ids', async () => {
    const customerId = await newCustomer(world);
    const { id, visitId } = await sell(customerId);
    const stranger = await newCustomer(world);
    const strangerVisit = await visitFor(world, stranger);
    await expectRejected(world.api, CONSUME, consumeInput(id, strangerVisit), 'OWNER', { __typename: 'NotFoundError', field: ['input', 'visitId'] });
    const booked = await visitFor(world, customerId, { status: 'BOOKED' });
    await expectRejected(world.api, CONSUME, consumeInput(id, booked), 'OWNER', { __typename: 'ConflictError', code: 'INVALID_STATE' });
    await expectRejected(world.api, CONSUME, consumeInput(id, visitId), staffAt(world, world.stores.BJ, 'FRONT_DESK'), { __typename: 'NotFoundError', field: ['input', 'visitId'] });
    // The other chain's owner and the clinic, with our ids: not found, exactly like a random one.
    for (const as of ['OTHER_CHAIN_OWNER', 'CLINIC_STAFF'] as const) {
      await expectRejected(world.api, CONSUME, consumeInput(id, visitId), as, { __typename: 'NotFoundError', field: ['input', 'customerPackageId'] });
    }
    await expectRejected(world.api, CONSUME, consumeInput(crypto.randomUUID(), visitId), 'OWNER', { __typename: 'NotFoundError', field: ['input', 'customerPackageId'] });
    // The customer themself does not consume their sessions: staff at the visit do.
    await expectRejected(world.api, CONSUME, consumeInput(id, visitId), { kind: 'CUSTOMER', orgId: world.chainId, customerId }, { __typename: 'ForbiddenError' });
  });
});

describe('refunds, freezes and extensions', () => {
  test('a pro-rata refund of unused sessions: each worth its share of the price, recorded once', async () => {
    const customerId = await newCustomer(world);
    const { id, visitId } = await sell(customerId);
    await call(world.api, CONSUME, { input: consumeInput(id, visitId) });
    await call(world.api, CONSUME, { input: consumeInput(id, visitId, world.services.peel) });
    const input = { customerPackageId: gid('CustomerPackage', id), reason: '顾客搬家 moved away', idempotencyKey: key('refund') };
    await expectRejected(world.api, REFUND, input, 'FRONT_DESK', { __typename: 'ForbiddenError' });
    await expectRejected(world.api, REFUND, input, staffAt(world, world.stores.BJ), { __typename: 'NotFoundError', field: ['input', 'customerPackageId'] });
    await expectRejected(world.api, REFUND, { ...input, reason: '  ' }, 'STORE_MANAGER', { __typename: 'ValidationError', field: ['input', 'reason'] });
    const refunded = await call(world.api, REFUND, { input }, 'STORE_MANAGER');
    // Hydrating: 218571 with 3 of 4 left → 218571 − floor(218571/4) = 163929; peel: 141429 with 1 of 2 left → 141429 − 70714.
    expect(refunded).toMatchObject({ userErrors: [], replayed: false, refund: { sessions: 4, amount: { minorUnits: String(163_929 + 70_715) } } });
    expect(refunded.customerPackage).toMatchObject({ state: 'REFUNDED', sessionsRemaining: 0, outstandingValue: { minorUnits: '0' }, refund: { reason: '顾客搬家 moved away' } });
    expect(await call(world.api, REFUND, { input }, 'STORE_MANAGER')).toMatchObject({ replayed: true, refund: { sessions: 4 } });
    await expectRejected(world.api, REFUND, { ...input, idempotencyKey: key('again') }, 'STORE_MANAGER', { __typename: 'ConflictError', code: 'PACKAGE_REFUNDED' });
    expect(await world.api.owner.packageRefund.count({ where: { customerPackageId: id } })).toBe(1);
    // An untouched package refunds its price exactly.
    const whole = await sell(customerId, { price: '999.99' });
    const back = await call(world.api, REFUND, { input: { customerPackageId: gid('CustomerPackage', whole.id), reason: 'changed mind', idempotencyKey: key('refund') } });
    expect(back.refund).toEqual({ sessions: 6, amount: { minorUnits: '99999' } });
    await expectLedgerConsistent(world.api.owner);
  });

  test('freeze stops use and the clock, unfreeze moves the expiry by the frozen days, extend adds months in the store\'s calendar', async () => {
    const customerId = await newCustomer(world, { storeId: world.stores.CD });
    const { id, visitId, pkg } = await sell(customerId, { storeId: world.stores.CD, as: staffAt(world, world.stores.CD, 'FRONT_DESK') });
    const cd = staffAt(world, world.stores.CD);
    const ref = gid('CustomerPackage', id);
    await expectRejected(world.api, FREEZE, { customerPackageId: ref, reason: 'travel' }, 'FRONT_DESK', { __typename: 'ForbiddenError' });
    await expectRejected(world.api, FREEZE, { customerPackageId: ref, reason: 'travel' }, 'STORE_MANAGER', { __typename: 'NotFoundError' });
    const frozen = await call(world.api, FREEZE, { input: { customerPackageId: ref, reason: 'travel abroad' } }, cd);
    expect(frozen.customerPackage).toMatchObject({ state: 'FROZEN', expiresAt: pkg.expiresAt, adjustments: [{ kind: 'FREEZE', reason: 'travel abroad' }] });
    await expectRejected(world.api, FREEZE, { customerPackageId: ref, reason: 'again' }, cd, { __typename: 'ConflictError', code: 'INVALID_STATE' });
    await expectRejected(world.api, CONSUME, consumeInput(id, visitId), 'OWNER', { __typename: 'PackageFrozenError' });
    // Frozen 10 days and a bit ago: unfreezing adds 11 whole days (Chongqing has no daylight saving).
    await world.api.owner.customerPackage.update({ where: { id }, data: { frozenAt: new Date(Date.now() - 10.5 * DAY_MS) } });
    const thawed = await call(world.api, UNFREEZE, { input: { customerPackageId: ref, reason: 'back' } }, cd);
    expect(thawed.customerPackage).toMatchObject({ state: 'ACTIVE', frozenAt: null });
    expect(new Date(thawed.customerPackage.expiresAt).getTime() - new Date(pkg.expiresAt).getTime()).toBe(11 * DAY_MS);
    await expectRejected(world.api, UNFREEZE, { customerPackageId: ref, reason: 'again' }, cd, { __typename: 'ConflictError', code: 'INVALID_STATE' });

    // An expired package cannot be frozen, but a manager may extend (revive) it: 2 months from its last valid day.
    const expiredAt = new Date(Date.UTC(2026, 0, 31) - 8 * 3_600_000); // end of 2026-01-30 in Asia/Chongqing (UTC+8)
    await world.api.owner.customerPackage.update({ where: { id }, data: { purchasedAt: new Date(expiredAt.getTime() - 90 * DAY_MS), expiresAt: expiredAt } });
    await expectRejected(world.api, FREEZE, { customerPackageId: ref, reason: 'late' }, cd, { __typename: 'PackageExpiredError', code: 'PACKAGE_EXPIRED' });
    await expectRejected(world.api, EXTEND, { customerPackageId: ref, reason: 'x', months: 0, days: 0 }, cd, { __typename: 'ValidationError' });
    await expectRejected(world.api, EXTEND, { customerPackageId: ref, reason: 'x', months: 25 }, cd, { __typename: 'ValidationError' });
    const extended = await call(world.api, EXTEND, { input: { customerPackageId: ref, reason: 'goodwill', months: 1 } }, cd);
    // Last valid day 2026-01-30 + 1 month = 2026-02-28 (clamped), valid through its end.
    expect(extended.customerPackage.expiresAt).toBe(new Date(Date.UTC(2026, 2, 1) - 8 * 3_600_000).toISOString());
    const adjustments = await world.api.owner.packageAdjustment.findMany({ where: { customerPackageId: id }, orderBy: { createdAt: 'asc' } });
    expect(adjustments.map((a) => a.kind)).toEqual(['FREEZE', 'UNFREEZE', 'EXTEND']);
  });
});

describe('reading packages', () => {
  test('Customer.packages and node(id:): the chain\'s staff and the customer; never another tenant', async () => {
    const customerId = await newCustomer(world);
    const { id } = await sell(customerId);
    const ref = gid('CustomerPackage', id);
    const query = `{ node(id: "${ref}") { ... on CustomerPackage { id name customer { id } } } }`;
    expect((await call(world.api, query, {}, 'BEAUTICIAN')).id).toBe(ref);
    expect((await call(world.api, query, {}, staffAt(world, world.stores.UR, 'FRONT_DESK'))).id).toBe(ref);
    expect((await call(world.api, query, {}, { kind: 'CUSTOMER', orgId: world.chainId, customerId })).id).toBe(ref);
    for (const as of ['OTHER_CHAIN_OWNER', 'CLINIC_STAFF', 'CUSTOMER'] as const) expect(await call(world.api, query, {}, as)).toBeNull();
    const mine = await call(world.api, `{ viewer { customer { packages { id sessionsRemaining sessions(first: 5) { edges { node { kind } } } } } } }`, {}, { kind: 'CUSTOMER', orgId: world.chainId, customerId });
    expect(mine.customer.packages.map((p: any) => p.id)).toEqual([ref]);
  });

  test('customers with packages in a list cost the same statements at 5 and at 40 customers', async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => newCustomer(world)));
    for (const id of ids) await sell(id);
    const stats = world.api.running.platform.dbs.stats;
    const count = async (first: number) => {
      const before = stats.statements;
      await call(world.api, `{ customers(first: ${first}, orderBy: { field: CREATED_AT, direction: DESC }) { edges { node { id
        packages { id state template { name } services { sessionsRemaining service { name } } } treatmentPlans { id } } } } }`);
      return stats.statements - before;
    };
    await count(5);
    stats.trace = [];
    const big = await count(40);
    const small = await count(5);
    if (big !== small) console.log(stats.trace.map((t) => t.sql.slice(0, 160)).join('\n'));
    stats.trace = null;
    expect(big).toBe(small);
  });
});

describe('metrics', () => {
  test('sessions sold, consumed, refunded and outstanding with the liability, per store and in its calendar', async () => {
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Urumqi' }).format(new Date());
    const query = `query($from: Date!, $to: Date!, $stores: [ID!]) { packageMetrics(from: $from, to: $to, storeIds: $stores) {
      store { code } packagesSold sessionsSold soldValue { minorUnits } sessionsConsumed consumedValue { minorUnits }
      sessionsRefunded refundedValue { minorUnits } sessionsOutstanding liability { minorUnits } sessionsExpired } }`;
    const before = (await call(world.api, query, { from: today, to: today, stores: [gid('Store', world.stores.UR)] }))[0];
    const customerId = await newCustomer(world, { storeId: world.stores.UR });
    const a = await sell(customerId, { storeId: world.stores.UR });
    const b = await sell(customerId, { storeId: world.stores.UR, price: '1000.00' });
    const urVisit = await visitFor(world, customerId, { storeId: world.stores.UR });
    await call(world.api, CONSUME, { input: consumeInput(a.id, urVisit) });
    await call(world.api, REFUND, { input: { customerPackageId: gid('CustomerPackage', b.id), reason: 'test', idempotencyKey: key('refund') } });
    const after = (await call(world.api, query, { from: today, to: today, stores: [gid('Store', world.stores.UR)] }))[0];
    const delta = (field: string) => Number(after[field]?.minorUnits ?? after[field]) - Number(before[field]?.minorUnits ?? before[field]);
    expect(after.store.code).toBe('UR-01');
    expect(delta('packagesSold')).toBe(2);
    expect(delta('sessionsSold')).toBe(12);
    expect(delta('soldValue')).toBe(460_000);
    expect(delta('sessionsConsumed')).toBe(1);
    expect(delta('consumedValue')).toBe(54_642);
    expect(delta('sessionsRefunded')).toBe(6);
    expect(delta('refundedValue')).toBe(100_000);
    expect(delta('sessionsOutstanding')).toBe(5);
    expect(delta('liability')).toBe(360_000 - 54_642);
    // A store manager sees their store only; a front desk nothing.
    const sh = await call(world.api, query, { from: today, to: today }, 'STORE_MANAGER');
    expect(sh.map((r: any) => r.store.code)).toEqual(['SH-01']);
    const denied = await world.api.gql(query, { from: today, to: today }, 'FRONT_DESK');
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const backwards = await world.api.gql(query, { from: today, to: '2020-01-01' }, 'OWNER');
    expect(backwards.errors?.[0]?.extensions?.code).toBe('INVALID');
    expect(await call(world.api, query, { from: today, to: today }, 'OTHER_CHAIN_OWNER')).toEqual([expect.objectContaining({ packagesSold: 0, sessionsOutstanding: 0 })]);
  });
});

test('the application role cannot write remaining sessions or rewrite the ledger', async () => {
  const client = await appRole(world, world.chainId);
  try {
    await expect(client.query('UPDATE customer_package_service SET sessions_remaining = 99')).rejects.toThrow(/permission denied/);
    await expect(client.query('UPDATE package_session_entry SET sessions = 2')).rejects.toThrow(/permission denied/);
    await expect(client.query('DELETE FROM package_refund')).rejects.toThrow(/permission denied/);
  } finally {
    await client.end();
  }
});
