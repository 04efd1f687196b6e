import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { gid, startTestPlatform, type TestPlatform } from '../testing/platform.ts';

// --- GraphQL documents ---------------------------------------------------------------------------------------

const ERRORS = 'userErrors { __typename code message field }';
const VISIT = `id status scheduledStart scheduledEnd checkedInAt completedAt cancelledAt cancelReason notes
  store { id } customer { id } staff { id } services { id }
  lineItems { kind description quantity unitPrice { amount } discount { amount } amount { amount } service { id } product { id } staff { id } }
  readings { metric before after unit } signature { signerName signedAt imageDataUrl } total { amount currencyCode }`;
const mutation = (name: string, extra = '') =>
  `mutation($input: ${name[0]!.toUpperCase()}${name.slice(1)}Input!) { ${name}(input: $input) { visit { ${VISIT} } ${extra} ${ERRORS} } }`;
const BOOK = mutation('bookVisit');
const RESCHEDULE = mutation('rescheduleVisit');
const CANCEL = mutation('cancelVisit');
const NO_SHOW = mutation('markVisitNoShow');
const CHECK_IN = mutation('checkInVisit', 'replayed');
const COMPLETE = mutation('completeVisit', 'replayed');
/** What a POS asks for after checkout: the visit's own columns. */
const COMPLETE_POS = `mutation($input: CompleteVisitInput!) { completeVisit(input: $input) { visit { id status total { amount currencyCode } } ${ERRORS} } }`;
const FACTS = `query($id: ID!) { node(id: $id) { ... on Customer { facts {
  visitCount firstVisitAt lastVisitAt totalSpend { amount currencyCode } averageTicket { amount } } } } }`;
const CUSTOMER_VISITS = `query($id: ID!, $first: Int, $after: String, $status: [VisitStatus!]) { node(id: $id) { ... on Customer {
  visits(first: $first, after: $after, status: $status) { edges { cursor node { id store { id } } } pageInfo { hasNextPage hasPreviousPage endCursor } } } } }`;
const VISITS = `query($first: Int, $after: String, $filter: VisitFilter, $direction: OrderDirection) {
  visits(first: $first, after: $after, filter: $filter, direction: $direction) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`;

// --- Helpers -------------------------------------------------------------------------------------------------

type As = Parameters<TestPlatform['gql']>[2];
type Status = 'BOOKED' | 'CHECKED_IN' | 'COMPLETED' | 'CANCELLED' | 'NO_SHOW';
interface ExpectedError {
  __typename: string;
  code: string;
  field?: string[] | null;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

let api: TestPlatform;
let chainId: string;
let otherChainId: string;
let sh01: string;
let bj01: string;
let otherStore: string;
let otherCustomer: string;
let otherService: string;
let clinicStore: string;
/** Catalogue of the chain: the 60-minute hydrating facial (680.00), the 45-minute neck massage (368.00), a retired service, a product. */
let facial: { id: string; durationMinutes: number; priceMinor: number };
let massage: { id: string; durationMinutes: number; priceMinor: number };
let retired: string;
let sunscreen: { id: string; priceMinor: number };

beforeAll(async () => {
  api = await startTestPlatform();
  chainId = api.principals.OWNER!.orgId;
  otherChainId = api.principals.OTHER_CHAIN_OWNER!.orgId;
  const store = async (orgId: string, code?: string) =>
    (await api.owner.store.findFirstOrThrow({ where: { orgId, ...(code ? { code } : {}) }, orderBy: { code: 'asc' } })).id;
  sh01 = await store(chainId, 'SH-01');
  bj01 = await store(chainId, 'BJ-01');
  otherStore = await store(otherChainId);
  clinicStore = api.principals.CLINIC_STAFF!.kind === 'STAFF' ? api.principals.CLINIC_STAFF!.storeIds[0]! : '';
  otherCustomer = (await api.owner.customer.findFirstOrThrow({ where: { orgId: otherChainId } })).id;
  otherService = (await api.owner.service.findFirstOrThrow({ where: { orgId: otherChainId } })).id;
  const service = (name: string) => api.owner.service.findFirstOrThrow({ where: { orgId: chainId, name: { contains: name } } });
  facial = await service('Hydrating facial');
  massage = await service('Neck & shoulder');
  retired = (await service('gua sha')).id;
  sunscreen = await api.owner.product.findFirstOrThrow({ where: { orgId: chainId, sku: 'LM-SUN-003' } });
});
afterAll(() => api?.close());

/** Runs a mutation or query and returns its single root field (GraphQL-level errors fail the test). */
async function call(document: string, variables: Record<string, unknown>, as: As = 'OWNER') {
  const response = await api.gql(document, variables, as);
  expect(response.errors).toBeUndefined();
  return Object.values(response.data!)[0] as any;
}

/** A time `ms` from now, on a whole minute. */
const fromNow = (ms: number) => new Date(Math.floor((Date.now() + ms) / MINUTE) * MINUTE);
const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

let phoneSequence = 0;
async function newCustomer(orgId = chainId, name = `Visit test ${randomUUID().slice(0, 8)}`) {
  phoneSequence += 1;
  const customer = await api.owner.customer.create({
    data: { orgId, name, phone: `+86199${String(phoneSequence).padStart(8, '0')}`, homeStoreId: orgId === chainId ? sh01 : otherStore },
  });
  await api.owner.customerFact.create({ data: { customerId: customer.id, orgId } });
  return customer.id;
}

/** A staff member with an empty diary, so tests never collide with seeded bookings or with each other. */
async function newStaff(storeId = sh01, orgId = chainId) {
  const staff = await api.owner.staff.create({ data: { orgId, name: `Beautician ${randomUUID().slice(0, 6)}`, role: 'BEAUTICIAN' } });
  await api.owner.staffStore.create({ data: { staffId: staff.id, storeId, orgId } });
  return staff.id;
}

/** A visit arranged directly in the database, with one service line. */
async function newVisit(options: { status?: Status; start?: Date; minutes?: number; storeId?: string; staffId?: string | null; customerId?: string; orgId?: string } = {}) {
  const orgId = options.orgId ?? chainId;
  const own = orgId === chainId;
  const start = options.start ?? fromNow(2 * DAY);
  const status = options.status ?? 'BOOKED';
  const serviceId = own ? facial.id : otherService;
  const visit = await api.owner.visit.create({
    data: {
      orgId,
      storeId: options.storeId ?? (own ? sh01 : otherStore),
      customerId: options.customerId ?? (own ? await newCustomer() : otherCustomer),
      staffId: options.staffId === undefined ? await newStaff(options.storeId ?? (own ? sh01 : otherStore), orgId) : options.staffId,
      status,
      scheduledStart: start,
      scheduledEnd: new Date(start.getTime() + (options.minutes ?? 60) * MINUTE),
      checkedInAt: status === 'CHECKED_IN' || status === 'COMPLETED' ? start : null,
      completedAt: status === 'COMPLETED' ? new Date(start.getTime() + HOUR) : null,
      totalMinor: 68000,
      lines: { create: [{ orgId, position: 0, kind: 'SERVICE', serviceId, description: 'Facial', quantity: 1, unitPriceMinor: 68000, amountMinor: 68000 }] },
    },
  });
  return visit;
}

/**
 * The state of the tables a mutation could touch: equal fingerprints mean no row was inserted, updated or deleted
 * (every insert or update stamps a row version with a newer transaction id than any before it; a delete lowers the count).
 */
async function fingerprint(): Promise<Record<string, string>> {
  const tables = ['visit', 'visit_line', 'customer_fact', 'customer', 'membership', 'idempotency_record', 'domain_event'];
  const rows = await api.owner.$queryRawUnsafe<{ t: string; h: string }[]>(
    tables.map((t) => `SELECT '${t}' AS t, count(*) || ':' || coalesce(max(xmin::text::bigint), 0) AS h FROM ${t}`).join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [r.t, r.h]));
}

/** Sends a mutation that must fail with exactly one typed user error, and checks that no row changed. */
async function expectRejected(document: string, input: Record<string, unknown>, as: As, expected: ExpectedError) {
  const before = await fingerprint();
  const payload = await call(document, { input }, as);
  expect(payload.userErrors).toEqual([expect.objectContaining({ field: null, ...expected })]);
  expect(payload.visit).toBeNull();
  expect(await fingerprint()).toEqual(before);
  return payload.userErrors[0];
}

const notFound = (...field: string[]): ExpectedError => ({ __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', ...field] });
const invalid = (...field: string[]): ExpectedError => ({ __typename: 'ValidationError', code: 'INVALID', field: ['input', ...field] });
const conflict = (code: string, ...field: string[]): ExpectedError => ({ __typename: 'ConflictError', code, field: ['input', ...field] });
const FORBIDDEN: ExpectedError = { __typename: 'ForbiddenError', code: 'FORBIDDEN' };

function eventsOf(aggregateId: string) {
  return api.owner.domainEvent.findMany({ where: { aggregateId }, orderBy: { id: 'asc' } });
}

/** The transaction id that last wrote a row: equal values mean the rows were written in one transaction. */
async function writer(table: string, keyColumn: string, key: string | bigint): Promise<string> {
  const [row] = await api.owner.$queryRawUnsafe<{ xmin: string }[]>(`SELECT xmin::text FROM ${table} WHERE ${keyColumn}::text = $1 LIMIT 1`, String(key));
  return row!.xmin;
}

const staffIdOf = (label: string) => (api.principals[label] as { staffId: string }).staffId;
const bookInput = (customerId: string, staffId: string | null, startsAt: Date, services = [facial.id], storeId = sh01) => ({
  customerId: gid('Customer', customerId),
  storeId: gid('Store', storeId),
  ...(staffId ? { staffId: gid('Staff', staffId) } : {}),
  serviceIds: services.map((id) => gid('Service', id)),
  startsAt: startsAt.toISOString(),
});

// --- bookVisit -----------------------------------------------------------------------------------------------

describe('bookVisit', () => {
  test('books services with a staff member: length and total from the catalogue; visit.booked in the same transaction', async () => {
    const [customer, staff] = [await newCustomer(), await newStaff()];
    const start = fromNow(3 * DAY);
    const payload = await call(BOOK, { input: { ...bookInput(customer, staff, start, [facial.id, massage.id]), notes: 'Prefers a quiet room' } }, 'FRONT_DESK');
    expect(payload.userErrors).toEqual([]);
    const end = new Date(start.getTime() + (facial.durationMinutes + massage.durationMinutes) * MINUTE);
    expect(payload.visit).toMatchObject({
      status: 'BOOKED',
      scheduledStart: start.toISOString(),
      scheduledEnd: end.toISOString(),
      notes: 'Prefers a quiet room',
      store: { id: gid('Store', sh01) },
      customer: { id: gid('Customer', customer) },
      staff: { id: gid('Staff', staff) },
      services: [{ id: gid('Service', facial.id) }, { id: gid('Service', massage.id) }],
      total: { amount: '1048.00', currencyCode: 'CNY' },
    });

    const id = uuidOf(payload.visit.id);
    const row = await api.owner.visit.findUniqueOrThrow({ where: { id }, include: { lines: { orderBy: { position: 'asc' } } } });
    expect(row).toMatchObject({ orgId: chainId, storeId: sh01, customerId: customer, staffId: staff, status: 'BOOKED', scheduledEnd: end, totalMinor: 104800 });
    expect(row.lines.map((l) => [l.serviceId, l.amountMinor, l.staffId])).toEqual([[facial.id, 68000, staff], [massage.id, 36800, staff]]);

    const events = await eventsOf(id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'visit.booked',
      orgId: chainId,
      streamKey: customer,
      actor: `staff:${staffIdOf('FRONT_DESK')}`,
      payload: { visitId: id, customerId: customer, storeId: sh01, staffId: staff, scheduledStart: start.toISOString() },
    });
    expect(await writer('domain_event', 'id', events[0]!.id)).toBe(await writer('visit', 'id', id));
  });

  test('a customer books for themself, at any store of the chain', async () => {
    const me = (api.principals.CUSTOMER as { customerId: string }).customerId;
    const payload = await call(BOOK, { input: { storeId: gid('Store', bj01), serviceIds: [gid('Service', massage.id)], startsAt: fromNow(5 * DAY).toISOString() } }, 'CUSTOMER');
    expect(payload.userErrors).toEqual([]);
    expect(payload.visit).toMatchObject({ status: 'BOOKED', customer: { id: gid('Customer', me) }, store: { id: gid('Store', bj01) }, staff: null });
    expect(await api.owner.visit.findUniqueOrThrow({ where: { id: uuidOf(payload.visit.id) } })).toMatchObject({ customerId: me, storeId: bj01 });
  });

  test.each<[string, (f: { customer: string; staff: string }) => Record<string, unknown>, As, ExpectedError]>([
    ['a start in the past', (f) => bookInput(f.customer, f.staff, fromNow(-HOUR)), 'OWNER', invalid('startsAt')],
    ['a start more than a year ahead', (f) => bookInput(f.customer, f.staff, fromNow(400 * DAY)), 'OWNER', invalid('startsAt')],
    ['no services', (f) => ({ ...bookInput(f.customer, f.staff, fromNow(DAY)), serviceIds: [] }), 'OWNER', invalid('serviceIds')],
    ['no customer (staff must name one)', (f) => ({ ...bookInput(f.customer, f.staff, fromNow(DAY)), customerId: null }), 'OWNER', invalid('customerId')],
    ['an unknown customer', (f) => bookInput(randomUUID(), f.staff, fromNow(DAY)), 'OWNER', notFound('customerId')],
    ["another tenant's customer", (f) => bookInput(otherCustomer, f.staff, fromNow(DAY)), 'OWNER', notFound('customerId')],
    ['a Lumière customer, by the other chain', (f) => bookInput(f.customer, null, fromNow(DAY), [otherService], otherStore), 'OTHER_CHAIN_OWNER', notFound('customerId')],
    ['a Lumière customer, by partner-clinic staff at their clinic', (f) => bookInput(f.customer, null, fromNow(DAY), [facial.id], clinicStore), 'CLINIC_STAFF', notFound('customerId')],
    ['a Lumière store, by partner-clinic staff', (f) => bookInput(f.customer, null, fromNow(DAY), [facial.id], sh01), 'CLINIC_STAFF', notFound('storeId')],
    ['an unknown store', (f) => bookInput(f.customer, null, fromNow(DAY), [facial.id], randomUUID()), 'OWNER', notFound('storeId')],
    ["another tenant's store", (f) => bookInput(f.customer, null, fromNow(DAY), [facial.id], otherStore), 'OWNER', notFound('storeId')],
    ['another store, by the front desk of SH-01', (f) => bookInput(f.customer, null, fromNow(DAY), [facial.id], bj01), 'FRONT_DESK', notFound('storeId')],
    ['another store, by the manager of SH-01', (f) => bookInput(f.customer, null, fromNow(DAY), [facial.id], bj01), 'STORE_MANAGER', notFound('storeId')],
    ['another store, by the POS client of SH-01', (f) => bookInput(f.customer, null, fromNow(DAY), [facial.id], bj01), 'POS_CLIENT', notFound('storeId')],
    ['an unknown staff member', (f) => bookInput(f.customer, randomUUID(), fromNow(DAY)), 'OWNER', notFound('staffId')],
    ['a staff member of another store', (f) => bookInput(f.customer, f.staff, fromNow(DAY), [facial.id], bj01), 'OWNER', notFound('staffId')],
    ["another tenant's staff member", (f) => bookInput(f.customer, staffIdOf('OTHER_CHAIN_OWNER'), fromNow(DAY)), 'OWNER', notFound('staffId')],
    ['an unknown service', (f) => bookInput(f.customer, f.staff, fromNow(DAY), [randomUUID()]), 'OWNER', notFound('serviceIds', '0')],
    ["another tenant's service", (f) => bookInput(f.customer, f.staff, fromNow(DAY), [facial.id, otherService]), 'OWNER', notFound('serviceIds', '1')],
    ['a retired service', (f) => bookInput(f.customer, f.staff, fromNow(DAY), [retired]), 'OWNER', notFound('serviceIds', '0')],
    ['the HQ analyst', (f) => bookInput(f.customer, f.staff, fromNow(DAY)), 'HQ_ANALYST', FORBIDDEN],
  ])('rejects %s and changes nothing', async (_label, input, as, expected) => {
    const fixture = { customer: await newCustomer(), staff: await newStaff() };
    await expectRejected(BOOK, input(fixture), as, expected);
  });

  test("a customer token cannot book for another customer: the same answer as for no customer at all", async () => {
    const someoneElse = await newCustomer();
    const input = (customerId: string) => ({ ...bookInput(customerId, null, fromNow(DAY)) });
    const other = await expectRejected(BOOK, input(someoneElse), 'CUSTOMER', invalid('customerId'));
    expect(await expectRejected(BOOK, input(randomUUID()), 'CUSTOMER', invalid('customerId'))).toEqual(other);
  });

  test("another tenant's ids answer exactly like ids that do not exist", async () => {
    const customer = await newCustomer();
    const unknown = await expectRejected(BOOK, bookInput(customer, null, fromNow(DAY), [facial.id], randomUUID()), 'OWNER', notFound('storeId'));
    expect(await expectRejected(BOOK, bookInput(customer, null, fromNow(DAY), [facial.id], otherStore), 'OWNER', notFound('storeId'))).toEqual(unknown);
    const unknownCustomer = await expectRejected(BOOK, bookInput(randomUUID(), null, fromNow(DAY), [otherService], otherStore), 'OTHER_CHAIN_OWNER', notFound('customerId'));
    expect(await expectRejected(BOOK, bookInput(customer, null, fromNow(DAY), [otherService], otherStore), 'OTHER_CHAIN_OWNER', notFound('customerId'))).toEqual(unknownCustomer);
  });
});

describe('double booking', () => {
  test('an overlapping booking of one staff member is STAFF_DOUBLE_BOOKED; back-to-back is fine; cancelling frees the slot', async () => {
    const staff = await newStaff();
    const start = fromNow(4 * DAY);
    const first = await call(BOOK, { input: bookInput(await newCustomer(), staff, start) }); // 60 minutes
    expect(first.userErrors).toEqual([]);

    for (const offset of [0, 30, -30, 59, -59]) {
      await expectRejected(BOOK, bookInput(await newCustomer(), staff, new Date(start.getTime() + offset * MINUTE)), 'OWNER', conflict('STAFF_DOUBLE_BOOKED', 'staffId'));
    }
    // A longer booking that contains the first one entirely.
    await expectRejected(BOOK, bookInput(await newCustomer(), staff, new Date(start.getTime() - 30 * MINUTE), [facial.id, facial.id]), 'OWNER', conflict('STAFF_DOUBLE_BOOKED', 'staffId'));

    const after = await call(BOOK, { input: bookInput(await newCustomer(), staff, new Date(start.getTime() + HOUR)) });
    expect(after.userErrors).toEqual([]);
    const before = await call(BOOK, { input: bookInput(await newCustomer(), staff, new Date(start.getTime() - massage.durationMinutes * MINUTE), [massage.id]) });
    expect(before.userErrors).toEqual([]);
    // Another staff member at the same time is not a conflict.
    expect((await call(BOOK, { input: bookInput(await newCustomer(), await newStaff(), start) })).userErrors).toEqual([]);

    expect((await call(CANCEL, { input: { visitId: first.visit.id, reason: 'Customer is travelling' } })).userErrors).toEqual([]);
    const again = await call(BOOK, { input: bookInput(await newCustomer(), staff, new Date(start.getTime() + 15 * MINUTE), [massage.id]) });
    expect(again.userErrors).toEqual([]);
    expect(await api.owner.visit.count({ where: { staffId: staff, status: 'BOOKED' } })).toBe(3);
  });

  test('ten concurrent overlapping bookings of one staff member: exactly one succeeds', async () => {
    const staff = await newStaff();
    const start = fromNow(6 * DAY);
    const customers = await Promise.all(Array.from({ length: 10 }, () => newCustomer()));
    const eventsBefore = await api.owner.domainEvent.count();
    const results = await Promise.all(
      customers.map((customer, i) => call(BOOK, { input: bookInput(customer, staff, new Date(start.getTime() + i * 5 * MINUTE)) }, i % 2 ? 'FRONT_DESK' : 'OWNER')),
    );
    const booked = results.filter((r) => r.userErrors.length === 0);
    expect(booked).toHaveLength(1);
    for (const rejected of results.filter((r) => r.userErrors.length > 0)) {
      expect(rejected.userErrors).toEqual([expect.objectContaining(conflict('STAFF_DOUBLE_BOOKED', 'staffId'))]);
      expect(rejected.visit).toBeNull();
    }
    const visits = await api.owner.visit.findMany({ where: { staffId: staff } });
    expect(visits.map((v) => v.id)).toEqual([uuidOf(booked[0].visit.id)]);
    expect(await api.owner.domainEvent.count()).toBe(eventsBefore + 1);
  });
});

// --- rescheduleVisit -----------------------------------------------------------------------------------------

describe('rescheduleVisit', () => {
  test('moves a booking, keeping its length; overlapping its own old slot is fine; visit.rescheduled in the same transaction', async () => {
    const visit = await newVisit({ minutes: 90 });
    const to = new Date(visit.scheduledStart.getTime() + 30 * MINUTE);
    const payload = await call(RESCHEDULE, { input: { visitId: gid('Visit', visit.id), startsAt: to.toISOString() } }, 'FRONT_DESK');
    expect(payload.userErrors).toEqual([]);
    const end = new Date(to.getTime() + 90 * MINUTE);
    expect(payload.visit).toMatchObject({ status: 'BOOKED', scheduledStart: to.toISOString(), scheduledEnd: end.toISOString(), staff: { id: gid('Staff', visit.staffId!) } });
    expect(await api.owner.visit.findUniqueOrThrow({ where: { id: visit.id } })).toMatchObject({ scheduledStart: to, scheduledEnd: end, staffId: visit.staffId });
    const [event] = await eventsOf(visit.id);
    expect(event).toMatchObject({ type: 'visit.rescheduled', payload: { visitId: visit.id, scheduledStart: to.toISOString(), previousStart: visit.scheduledStart.toISOString() } });
    expect(await writer('domain_event', 'id', event!.id)).toBe(await writer('visit', 'id', visit.id));
  });

  test('moves a booking to another staff member of its store', async () => {
    const visit = await newVisit();
    const colleague = await newStaff(sh01);
    const payload = await call(RESCHEDULE, { input: { visitId: gid('Visit', visit.id), startsAt: visit.scheduledStart.toISOString(), staffId: gid('Staff', colleague) } });
    expect(payload.userErrors).toEqual([]);
    expect(payload.visit.staff).toEqual({ id: gid('Staff', colleague) });
    expect((await api.owner.visit.findUniqueOrThrow({ where: { id: visit.id } })).staffId).toBe(colleague);
  });

  test('a customer moves their own booking', async () => {
    const me = (api.principals.CUSTOMER as { customerId: string }).customerId;
    const visit = await newVisit({ customerId: me });
    const to = fromNow(9 * DAY);
    const payload = await call(RESCHEDULE, { input: { visitId: gid('Visit', visit.id), startsAt: to.toISOString() } }, 'CUSTOMER');
    expect(payload.userErrors).toEqual([]);
    expect(payload.visit.scheduledStart).toBe(to.toISOString());
  });

  test('onto another booking of the staff member is STAFF_DOUBLE_BOOKED', async () => {
    const staff = await newStaff();
    const taken = await newVisit({ staffId: staff, start: fromNow(3 * DAY) });
    const visit = await newVisit({ staffId: staff, start: fromNow(4 * DAY) });
    await expectRejected(RESCHEDULE, { visitId: gid('Visit', visit.id), startsAt: new Date(taken.scheduledStart.getTime() + 30 * MINUTE).toISOString() }, 'OWNER', conflict('STAFF_DOUBLE_BOOKED', 'staffId'));
    // …and so is moving it to a colleague who is busy then.
    const busy = await newStaff();
    await newVisit({ staffId: busy, start: visit.scheduledStart });
    await expectRejected(RESCHEDULE, { visitId: gid('Visit', visit.id), startsAt: visit.scheduledStart.toISOString(), staffId: gid('Staff', busy) }, 'OWNER', conflict('STAFF_DOUBLE_BOOKED', 'staffId'));
  });

  test.each<[string, () => Promise<Record<string, unknown>>, As, ExpectedError]>([
    ['a COMPLETED visit', async () => ({ visitId: gid('Visit', (await newVisit({ status: 'COMPLETED', start: fromNow(-DAY) })).id), startsAt: fromNow(DAY).toISOString() }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['a CANCELLED visit', async () => ({ visitId: gid('Visit', (await newVisit({ status: 'CANCELLED' })).id), startsAt: fromNow(DAY).toISOString() }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['a CHECKED_IN visit', async () => ({ visitId: gid('Visit', (await newVisit({ status: 'CHECKED_IN', start: fromNow(-10 * MINUTE) })).id), startsAt: fromNow(DAY).toISOString() }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['a time in the past', async () => ({ visitId: gid('Visit', (await newVisit()).id), startsAt: fromNow(-DAY).toISOString() }), 'OWNER', invalid('startsAt')],
    ['a staff member of another store', async () => ({ visitId: gid('Visit', (await newVisit()).id), startsAt: fromNow(DAY).toISOString(), staffId: gid('Staff', await newStaff(bj01)) }), 'OWNER', notFound('staffId')],
    ["another tenant's staff member", async () => ({ visitId: gid('Visit', (await newVisit()).id), startsAt: fromNow(DAY).toISOString(), staffId: gid('Staff', staffIdOf('OTHER_CHAIN_OWNER')) }), 'OWNER', notFound('staffId')],
    ['an unknown visit', async () => ({ visitId: gid('Visit', randomUUID()), startsAt: fromNow(DAY).toISOString() }), 'OWNER', notFound('visitId')],
    ["another tenant's visit", async () => ({ visitId: gid('Visit', (await newVisit({ orgId: otherChainId })).id), startsAt: fromNow(DAY).toISOString() }), 'OWNER', notFound('visitId')],
    ['a visit at another store, by the front desk', async () => ({ visitId: gid('Visit', (await newVisit({ storeId: bj01 })).id), startsAt: fromNow(DAY).toISOString() }), 'FRONT_DESK', notFound('visitId')],
    ["another customer's visit, by a customer", async () => ({ visitId: gid('Visit', (await newVisit()).id), startsAt: fromNow(DAY).toISOString() }), 'CUSTOMER', notFound('visitId')],
    ['the HQ analyst', async () => ({ visitId: gid('Visit', (await newVisit()).id), startsAt: fromNow(DAY).toISOString() }), 'HQ_ANALYST', FORBIDDEN],
  ])('rejects %s and changes nothing', async (_label, input, as, expected) => {
    await expectRejected(RESCHEDULE, await input(), as, expected);
  });
});

// --- cancelVisit ---------------------------------------------------------------------------------------------

describe('cancelVisit', () => {
  test('cancels a booking with a reason; visit.cancelled in the same transaction', async () => {
    const visit = await newVisit();
    const payload = await call(CANCEL, { input: { visitId: gid('Visit', visit.id), reason: '  Customer is ill  ' } }, 'FRONT_DESK');
    expect(payload.userErrors).toEqual([]);
    expect(payload.visit).toMatchObject({ status: 'CANCELLED', cancelReason: 'Customer is ill' });
    const row = await api.owner.visit.findUniqueOrThrow({ where: { id: visit.id } });
    expect(row).toMatchObject({ status: 'CANCELLED', cancelReason: 'Customer is ill' });
    expect(row.cancelledAt!.getTime()).toBeGreaterThan(Date.now() - MINUTE);
    const [event] = await eventsOf(visit.id);
    expect(event).toMatchObject({ type: 'visit.cancelled', payload: { visitId: visit.id, staffId: visit.staffId, reason: 'Customer is ill' } });
    expect(await writer('domain_event', 'id', event!.id)).toBe(await writer('visit', 'id', visit.id));
  });

  test('staff may cancel a checked-in visit; a customer may cancel only their own booking', async () => {
    const checkedIn = await newVisit({ status: 'CHECKED_IN', start: fromNow(-5 * MINUTE) });
    expect((await call(CANCEL, { input: { visitId: gid('Visit', checkedIn.id), reason: 'Allergic reaction on patch test' } })).visit.status).toBe('CANCELLED');

    const me = (api.principals.CUSTOMER as { customerId: string }).customerId;
    const mine = await newVisit({ customerId: me });
    expect((await call(CANCEL, { input: { visitId: gid('Visit', mine.id), reason: 'Plans changed' } }, 'CUSTOMER')).visit.status).toBe('CANCELLED');
    const mineCheckedIn = await newVisit({ customerId: me, status: 'CHECKED_IN', start: fromNow(-5 * MINUTE) });
    await expectRejected(CANCEL, { visitId: gid('Visit', mineCheckedIn.id), reason: 'Leaving' }, 'CUSTOMER', conflict('INVALID_STATE', 'visitId'));
  });

  test.each<[string, () => Promise<Record<string, unknown>>, As, ExpectedError]>([
    ['an empty reason', async () => ({ visitId: gid('Visit', (await newVisit()).id), reason: '   ' }), 'OWNER', invalid('reason')],
    ['a COMPLETED visit', async () => ({ visitId: gid('Visit', (await newVisit({ status: 'COMPLETED', start: fromNow(-DAY) })).id), reason: 'x' }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['a NO_SHOW visit', async () => ({ visitId: gid('Visit', (await newVisit({ status: 'NO_SHOW', start: fromNow(-DAY) })).id), reason: 'x' }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['an unknown visit', async () => ({ visitId: gid('Visit', randomUUID()), reason: 'x' }), 'OWNER', notFound('visitId')],
    ["another tenant's visit", async () => ({ visitId: gid('Visit', (await newVisit({ orgId: otherChainId })).id), reason: 'x' }), 'OWNER', notFound('visitId')],
    ['a Lumière visit, by the other chain', async () => ({ visitId: gid('Visit', (await newVisit()).id), reason: 'x' }), 'OTHER_CHAIN_OWNER', notFound('visitId')],
    ['a visit at another store, by the manager', async () => ({ visitId: gid('Visit', (await newVisit({ storeId: bj01 })).id), reason: 'x' }), 'STORE_MANAGER', notFound('visitId')],
    ["another customer's visit, by a customer", async () => ({ visitId: gid('Visit', (await newVisit()).id), reason: 'x' }), 'CUSTOMER', notFound('visitId')],
    ['the HQ analyst', async () => ({ visitId: gid('Visit', (await newVisit()).id), reason: 'x' }), 'HQ_ANALYST', FORBIDDEN],
  ])('rejects %s and changes nothing', async (_label, input, as, expected) => {
    await expectRejected(CANCEL, await input(), as, expected);
  });
});

// --- markVisitNoShow -----------------------------------------------------------------------------------------

describe('markVisitNoShow', () => {
  test('after the start time: NO_SHOW, visit.noShow, and the staff member is free again', async () => {
    const staff = await newStaff();
    const visit = await newVisit({ staffId: staff, start: fromNow(-10 * MINUTE) });
    const payload = await call(NO_SHOW, { input: { visitId: gid('Visit', visit.id) } }, 'FRONT_DESK');
    expect(payload.userErrors).toEqual([]);
    expect(payload.visit.status).toBe('NO_SHOW');
    expect((await api.owner.visit.findUniqueOrThrow({ where: { id: visit.id } })).status).toBe('NO_SHOW');
    const [event] = await eventsOf(visit.id);
    expect(event).toMatchObject({ type: 'visit.noShow', payload: { visitId: visit.id, staffId: staff } });
    expect(await writer('domain_event', 'id', event!.id)).toBe(await writer('visit', 'id', visit.id));
    // The rest of the no-show's hour can be given to a walk-in.
    const walkIn = await call(BOOK, { input: bookInput(await newCustomer(), staff, fromNow(MINUTE), [massage.id]) });
    expect(walkIn.userErrors).toEqual([]);
  });

  test.each<[string, () => Promise<Record<string, unknown>>, As, ExpectedError]>([
    ['a booking that has not started', async () => ({ visitId: gid('Visit', (await newVisit({ start: fromNow(HOUR) })).id) }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['a CHECKED_IN visit', async () => ({ visitId: gid('Visit', (await newVisit({ status: 'CHECKED_IN', start: fromNow(-HOUR) })).id) }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['a COMPLETED visit', async () => ({ visitId: gid('Visit', (await newVisit({ status: 'COMPLETED', start: fromNow(-DAY) })).id) }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['an unknown visit', async () => ({ visitId: gid('Visit', randomUUID()) }), 'OWNER', notFound('visitId')],
    ["another tenant's visit", async () => ({ visitId: gid('Visit', (await newVisit({ orgId: otherChainId, start: fromNow(-HOUR) })).id) }), 'OWNER', notFound('visitId')],
    ['a visit at another store, by the front desk', async () => ({ visitId: gid('Visit', (await newVisit({ storeId: bj01, start: fromNow(-HOUR) })).id) }), 'FRONT_DESK', notFound('visitId')],
    ['a customer', async () => ({ visitId: gid('Visit', (await newVisit({ start: fromNow(-HOUR) })).id) }), 'CUSTOMER', FORBIDDEN],
    ['the HQ analyst', async () => ({ visitId: gid('Visit', (await newVisit({ start: fromNow(-HOUR) })).id) }), 'HQ_ANALYST', FORBIDDEN],
  ])('rejects %s and changes nothing', async (_label, input, as, expected) => {
    await expectRejected(NO_SHOW, await input(), as, expected);
  });
});

// --- checkInVisit --------------------------------------------------------------------------------------------

describe('checkInVisit', () => {
  const key = () => `checkin-${randomUUID()}`;
  const checkIn = (visitId: string, idempotencyKey: string, as: As = 'FRONT_DESK') =>
    call(CHECK_IN, { input: { visitId: gid('Visit', visitId), idempotencyKey } }, as);

  test('checks in a booking; visit.checkedIn in the same transaction as the change and the idempotency record', async () => {
    const visit = await newVisit({ start: fromNow(10 * MINUTE) });
    const k = key();
    const payload = await checkIn(visit.id, k);
    expect(payload.userErrors).toEqual([]);
    expect(payload.replayed).toBe(false);
    expect(payload.visit.status).toBe('CHECKED_IN');
    const row = await api.owner.visit.findUniqueOrThrow({ where: { id: visit.id } });
    expect(row.status).toBe('CHECKED_IN');
    expect(payload.visit.checkedInAt).toBe(row.checkedInAt!.toISOString());
    const events = await eventsOf(visit.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'visit.checkedIn', actor: `staff:${staffIdOf('FRONT_DESK')}`, payload: { visitId: visit.id, customerId: visit.customerId, storeId: sh01 } });
    const tx = await writer('visit', 'id', visit.id);
    expect(await writer('domain_event', 'id', events[0]!.id)).toBe(tx);
    expect(await writer('idempotency_record', 'key', k)).toBe(tx);
  });

  test('the same key again returns the same visit, replayed, with no second effect', async () => {
    const visit = await newVisit({ start: fromNow(10 * MINUTE) });
    const k = key();
    const first = await checkIn(visit.id, k);
    const before = await fingerprint();
    const again = await checkIn(visit.id, k);
    expect(again.userErrors).toEqual([]);
    expect(again.replayed).toBe(true);
    expect(again.visit).toEqual(first.visit);
    expect(await fingerprint()).toEqual(before);
    expect(await eventsOf(visit.id)).toHaveLength(1);
  });

  test('the same key for a different request is IDEMPOTENCY_KEY_REUSED and changes nothing', async () => {
    const [visit, other] = [await newVisit({ start: fromNow(10 * MINUTE) }), await newVisit({ start: fromNow(10 * MINUTE) })];
    const k = key();
    await checkIn(visit.id, k);
    await expectRejected(CHECK_IN, { visitId: gid('Visit', other.id), idempotencyKey: k }, 'FRONT_DESK', conflict('IDEMPOTENCY_KEY_REUSED', 'idempotencyKey'));
    expect((await api.owner.visit.findUniqueOrThrow({ where: { id: other.id } })).status).toBe('BOOKED');
  });

  test('ten concurrent identical requests: one effect, the same answer for all', async () => {
    const visit = await newVisit({ start: fromNow(10 * MINUTE) });
    const k = key();
    const eventsBefore = await api.owner.domainEvent.count();
    const results = await Promise.all(Array.from({ length: 10 }, () => checkIn(visit.id, k)));
    for (const result of results) {
      expect(result.userErrors).toEqual([]);
      expect(result.visit).toEqual(results[0].visit);
    }
    expect(results[0].visit.status).toBe('CHECKED_IN');
    expect(results.filter((r) => r.replayed === false)).toHaveLength(1);
    expect(await eventsOf(visit.id)).toHaveLength(1);
    expect(await api.owner.domainEvent.count()).toBe(eventsBefore + 1);
    expect(await api.owner.idempotencyRecord.count({ where: { key: k } })).toBe(1);
  });

  test('a key whose request failed can be used again once the state is fixed', async () => {
    const visit = await newVisit({ status: 'CANCELLED', start: fromNow(10 * MINUTE) });
    const k = key();
    await expectRejected(CHECK_IN, { visitId: gid('Visit', visit.id), idempotencyKey: k }, 'FRONT_DESK', conflict('INVALID_STATE', 'visitId'));
    expect(await api.owner.idempotencyRecord.count({ where: { key: k } })).toBe(0);
    await api.owner.visit.update({ where: { id: visit.id }, data: { status: 'BOOKED' } });
    const retried = await checkIn(visit.id, k);
    expect(retried.userErrors).toEqual([]);
    expect(retried).toMatchObject({ replayed: false, visit: { status: 'CHECKED_IN' } });
  });

  test('keys belong to the caller: the same key from two principals are two requests', async () => {
    const [a, b, c] = [await newVisit({ start: fromNow(10 * MINUTE) }), await newVisit({ start: fromNow(10 * MINUTE) }), await newVisit({ orgId: otherChainId, start: fromNow(10 * MINUTE) })];
    const k = key();
    const byFrontDesk = await checkIn(a.id, k, 'FRONT_DESK');
    const byManager = await checkIn(b.id, k, 'STORE_MANAGER');
    const byOtherChain = await checkIn(c.id, k, 'OTHER_CHAIN_OWNER');
    for (const result of [byFrontDesk, byManager, byOtherChain]) expect(result).toMatchObject({ userErrors: [], replayed: false, visit: { status: 'CHECKED_IN' } });
    expect(await api.owner.visit.count({ where: { id: { in: [a.id, b.id, c.id] }, status: 'CHECKED_IN' } })).toBe(3);
    // …and a replay by the manager still replays the manager's request, not the front desk's.
    expect((await checkIn(b.id, k, 'STORE_MANAGER')).visit.id).toBe(gid('Visit', b.id));
  });

  test.each<[string, () => Promise<Record<string, unknown>>, As, ExpectedError]>([
    ['a malformed idempotency key', async () => ({ visitId: gid('Visit', (await newVisit()).id), idempotencyKey: 'short' }), 'OWNER', invalid('idempotencyKey')],
    ['a CANCELLED visit', async () => ({ visitId: gid('Visit', (await newVisit({ status: 'CANCELLED' })).id), idempotencyKey: key() }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['a COMPLETED visit', async () => ({ visitId: gid('Visit', (await newVisit({ status: 'COMPLETED', start: fromNow(-DAY) })).id), idempotencyKey: key() }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['a CHECKED_IN visit', async () => ({ visitId: gid('Visit', (await newVisit({ status: 'CHECKED_IN', start: fromNow(-MINUTE) })).id), idempotencyKey: key() }), 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['an unknown visit', async () => ({ visitId: gid('Visit', randomUUID()), idempotencyKey: key() }), 'OWNER', notFound('visitId')],
    ["another tenant's visit", async () => ({ visitId: gid('Visit', (await newVisit({ orgId: otherChainId })).id), idempotencyKey: key() }), 'OWNER', notFound('visitId')],
    ['a Lumière visit, by the other chain', async () => ({ visitId: gid('Visit', (await newVisit()).id), idempotencyKey: key() }), 'OTHER_CHAIN_OWNER', notFound('visitId')],
    ['a visit at another store, by the front desk', async () => ({ visitId: gid('Visit', (await newVisit({ storeId: bj01 })).id), idempotencyKey: key() }), 'FRONT_DESK', notFound('visitId')],
    ['a visit at another store, by the POS client', async () => ({ visitId: gid('Visit', (await newVisit({ storeId: bj01 })).id), idempotencyKey: key() }), 'POS_CLIENT', notFound('visitId')],
    ['a customer', async () => ({ visitId: gid('Visit', (await newVisit()).id), idempotencyKey: key() }), 'CUSTOMER', FORBIDDEN],
    ['the HQ analyst', async () => ({ visitId: gid('Visit', (await newVisit()).id), idempotencyKey: key() }), 'HQ_ANALYST', FORBIDDEN],
  ])('rejects %s and changes nothing', async (_label, input, as, expected) => {
    await expectRejected(CHECK_IN, await input(), as, expected);
  });

  test("another tenant's visit answers exactly like one that does not exist", async () => {
    const mine = await newVisit();
    const unknown = await expectRejected(CHECK_IN, { visitId: gid('Visit', randomUUID()), idempotencyKey: key() }, 'OTHER_CHAIN_OWNER', notFound('visitId'));
    expect(await expectRejected(CHECK_IN, { visitId: gid('Visit', mine.id), idempotencyKey: key() }, 'OTHER_CHAIN_OWNER', notFound('visitId'))).toEqual(unknown);
    const other = await newVisit({ storeId: bj01 });
    expect(await expectRejected(CHECK_IN, { visitId: gid('Visit', other.id), idempotencyKey: key() }, 'FRONT_DESK', notFound('visitId'))).toEqual(unknown);
  });
});

// --- completeVisit -------------------------------------------------------------------------------------------

describe('completeVisit', () => {
  const key = () => `complete-${randomUUID()}`;
  const SIGNATURE = { signerName: 'Lin Xiaoyu', signedAt: '2026-03-01T10:55:00+08:00', imageDataUrl: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==' };
  const facialLine = (extra: Record<string, unknown> = {}) => ({ serviceId: gid('Service', facial.id), ...extra });
  const complete = (visitId: string, idempotencyKey: string, extra: Record<string, unknown> = {}, as: As = 'BEAUTICIAN') =>
    call(COMPLETE, { input: { visitId: gid('Visit', visitId), idempotencyKey, lineItems: [facialLine()], ...extra } }, as);
  const facts = async (customerId: string) => (await call(FACTS, { id: gid('Customer', customerId) })).facts;

  test('completing a visit from a POS is 7 statements, BEGIN and COMMIT included, however many services; products add their price read', async () => {
    const customer = await newCustomer();
    const stats = api.running.platform.dbs.stats;
    const statementsOf = async (lineItems: unknown[]) => {
      const visit = await newVisit({ status: 'CHECKED_IN', customerId: customer, start: fromNow(-HOUR) });
      stats.trace = [];
      const payload = await call(COMPLETE_POS, { input: { visitId: gid('Visit', visit.id), idempotencyKey: key(), lineItems } }, 'BEAUTICIAN');
      const trace = stats.trace;
      stats.trace = null;
      expect(payload.userErrors).toEqual([]);
      return trace.filter((s) => !s.sql.includes("set_config('app.org_id'")).map((s) => s.sql.replace(/\s+/g, ' ').slice(0, 60));
    };
    const one = await statementsOf([facialLine()]);
    expect(one, one.join('\n')).toHaveLength(7);
    expect(await statementsOf([facialLine(), facialLine({ quantity: 2 }), facialLine({ discount: '1.00' })])).toHaveLength(7);
    expect(await statementsOf([facialLine(), { productId: gid('Product', sunscreen.id) }])).toHaveLength(8);
  });

  test('records lines, readings, notes and signature; totals are exact; facts and visit.completed in the same transaction', async () => {
    const customer = await newCustomer();
    const visit = await newVisit({ status: 'CHECKED_IN', customerId: customer, start: fromNow(-HOUR) });
    const seller = await newStaff();
    const k = key();
    const payload = await complete(visit.id, k, {
      lineItems: [
        facialLine({ quantity: 3, unitPrice: '199.90', discount: '50.00' }),
        { productId: gid('Product', sunscreen.id), staffId: gid('Staff', seller) },
      ],
      readings: [{ metric: 'moisture', before: '42', after: '55.5', unit: '%' }, { metric: 'oil', before: '-1.25' }],
      notes: 'Skin responded well',
      signature: SIGNATURE,
    });
    expect(payload.userErrors).toEqual([]);
    expect(payload.replayed).toBe(false);
    expect(payload.visit).toMatchObject({
      status: 'COMPLETED',
      notes: 'Skin responded well',
      total: { amount: '747.70', currencyCode: 'CNY' },
      lineItems: [
        { kind: 'SERVICE', quantity: 3, unitPrice: { amount: '199.90' }, discount: { amount: '50.00' }, amount: { amount: '549.70' }, service: { id: gid('Service', facial.id) }, product: null, staff: { id: gid('Staff', visit.staffId!) } },
        { kind: 'PRODUCT', quantity: 1, unitPrice: { amount: '198.00' }, discount: { amount: '0.00' }, amount: { amount: '198.00' }, service: null, product: { id: gid('Product', sunscreen.id) }, staff: { id: gid('Staff', seller) } },
      ],
      readings: [{ metric: 'moisture', before: '42', after: '55.5', unit: '%' }, { metric: 'oil', before: '-1.25', after: null, unit: null }],
      signature: { signerName: 'Lin Xiaoyu', signedAt: '2026-03-01T02:55:00.000Z', imageDataUrl: SIGNATURE.imageDataUrl },
    });

    const row = await api.owner.visit.findUniqueOrThrow({ where: { id: visit.id }, include: { lines: { orderBy: { position: 'asc' } } } });
    expect(row).toMatchObject({ status: 'COMPLETED', totalMinor: 74770, notes: 'Skin responded well' });
    expect(row.lines.map((l) => [l.kind, l.quantity, l.unitPriceMinor, l.discountMinor, l.amountMinor])).toEqual([['SERVICE', 3, 19990, 5000, 54970], ['PRODUCT', 1, 19800, 0, 19800]]);
    expect(payload.visit.completedAt).toBe(row.completedAt!.toISOString());

    const completedAt = row.completedAt!.toISOString();
    expect(await facts(customer)).toEqual({ visitCount: 1, firstVisitAt: completedAt, lastVisitAt: completedAt, totalSpend: { amount: '747.70', currencyCode: 'CNY' }, averageTicket: { amount: '747.70' } });

    const events = await eventsOf(visit.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'visit.completed',
      streamKey: customer,
      actor: `staff:${staffIdOf('BEAUTICIAN')}`,
      payload: {
        visitId: visit.id,
        customerId: customer,
        storeId: sh01,
        completedAt,
        totalMinor: 74770,
        currency: 'CNY',
        lines: [
          { kind: 'SERVICE', serviceId: facial.id, productId: null, category: 'FACIAL', quantity: 3, amountMinor: 54970 },
          { kind: 'PRODUCT', serviceId: null, productId: sunscreen.id, category: null, quantity: 1, amountMinor: 19800 },
        ],
      },
    });
    const tx = await writer('visit', 'id', visit.id);
    expect(await writer('domain_event', 'id', events[0]!.id)).toBe(tx);
    expect(await writer('customer_fact', 'customer_id', customer)).toBe(tx);
    expect(await writer('visit_line', 'visit_id', visit.id)).toBe(tx);
    expect(await writer('idempotency_record', 'key', k)).toBe(tx);
  });

  test('what was done replaces what was booked: fewer lines than booked leaves no booked line behind', async () => {
    const visit = await newVisit({ status: 'CHECKED_IN', start: fromNow(-HOUR) });
    await api.owner.visitLine.create({
      data: { orgId: chainId, visitId: visit.id, position: 1, kind: 'SERVICE', serviceId: massage.id, description: 'Massage', quantity: 1, unitPriceMinor: 36800, amountMinor: 36800 },
    });
    const payload = await complete(visit.id, key(), { lineItems: [{ productId: gid('Product', sunscreen.id), quantity: 2 }] });
    expect(payload.userErrors).toEqual([]);
    expect(payload.visit.services).toEqual([]);
    expect(payload.visit.lineItems).toMatchObject([{ kind: 'PRODUCT', quantity: 2, amount: { amount: '396.00' }, service: null, product: { id: gid('Product', sunscreen.id) }, staff: { id: gid('Staff', visit.staffId!) } }]);
    const lines = await api.owner.visitLine.findMany({ where: { visitId: visit.id } });
    expect(lines.map((l) => [l.position, l.kind, l.productId, l.serviceId, l.amountMinor])).toEqual([[0, 'PRODUCT', sunscreen.id, null, 39600]]);
  });

  test('facts add up over visits; the average ticket rounds half up to the fen', async () => {
    const customer = await newCustomer();
    const first = await newVisit({ status: 'CHECKED_IN', customerId: customer, start: fromNow(-3 * HOUR) });
    const second = await newVisit({ status: 'CHECKED_IN', customerId: customer, start: fromNow(-HOUR) });
    await complete(first.id, key(), { lineItems: [facialLine({ quantity: 3, unitPrice: '199.90', discount: '50.00' })] });
    await complete(second.id, key(), { lineItems: [facialLine({ unitPrice: '100.01' })] });
    const { completedAt: firstAt } = await api.owner.visit.findUniqueOrThrow({ where: { id: first.id } });
    const { completedAt: lastAt } = await api.owner.visit.findUniqueOrThrow({ where: { id: second.id } });
    // 549.70 + 100.01 = 649.71; ÷ 2 = 324.855 → 324.86
    expect(await facts(customer)).toEqual({
      visitCount: 2,
      firstVisitAt: firstAt!.toISOString(),
      lastVisitAt: lastAt!.toISOString(),
      totalSpend: { amount: '649.71', currencyCode: 'CNY' },
      averageTicket: { amount: '324.86' },
    });
    expect(await api.owner.customerFact.findUniqueOrThrow({ where: { customerId: customer } })).toMatchObject({ visitCount: 2, totalSpendMinor: 64971n });
  });

  test('the same key again returns the same visit, replayed: one event, facts counted once', async () => {
    const customer = await newCustomer();
    const visit = await newVisit({ status: 'CHECKED_IN', customerId: customer, start: fromNow(-HOUR) });
    const k = key();
    const input = { lineItems: [facialLine({ quantity: 2 })], signature: SIGNATURE };
    const first = await complete(visit.id, k, input);
    const before = await fingerprint();
    const again = await complete(visit.id, k, input);
    expect(again).toMatchObject({ userErrors: [], replayed: true });
    expect(again.visit).toEqual(first.visit);
    expect(await fingerprint()).toEqual(before);
    expect(await eventsOf(visit.id)).toHaveLength(1);
    expect(await api.owner.customerFact.findUniqueOrThrow({ where: { customerId: customer } })).toMatchObject({ visitCount: 1, totalSpendMinor: 136000n });
  });

  test('the same key with a different request is IDEMPOTENCY_KEY_REUSED and changes nothing', async () => {
    const visit = await newVisit({ status: 'CHECKED_IN', start: fromNow(-HOUR) });
    const k = key();
    await complete(visit.id, k, { lineItems: [facialLine({ quantity: 1 })] });
    await expectRejected(COMPLETE, { visitId: gid('Visit', visit.id), idempotencyKey: k, lineItems: [facialLine({ quantity: 2 })] }, 'BEAUTICIAN', conflict('IDEMPOTENCY_KEY_REUSED', 'idempotencyKey'));
    await expectRejected(COMPLETE, { visitId: gid('Visit', visit.id), idempotencyKey: k, lineItems: [facialLine()], notes: 'changed my mind' }, 'BEAUTICIAN', conflict('IDEMPOTENCY_KEY_REUSED', 'idempotencyKey'));
    // The key of a check-in cannot complete a visit either.
    const checkInKey = key();
    const other = await newVisit({ start: fromNow(10 * MINUTE) });
    await call(CHECK_IN, { input: { visitId: gid('Visit', other.id), idempotencyKey: checkInKey } }, 'BEAUTICIAN');
    await expectRejected(COMPLETE, { visitId: gid('Visit', other.id), idempotencyKey: checkInKey, lineItems: [facialLine()] }, 'BEAUTICIAN', conflict('IDEMPOTENCY_KEY_REUSED', 'idempotencyKey'));
  });

  test('ten concurrent identical requests: one effect, the same answer for all', async () => {
    const customer = await newCustomer();
    const visit = await newVisit({ status: 'CHECKED_IN', customerId: customer, start: fromNow(-HOUR) });
    const k = key();
    const input = { lineItems: [facialLine({ unitPrice: '500.00' }), { productId: gid('Product', sunscreen.id) }], readings: [{ metric: 'moisture', after: '60' }] };
    const eventsBefore = await api.owner.domainEvent.count();
    const results = await Promise.all(Array.from({ length: 10 }, () => complete(visit.id, k, input, 'POS_CLIENT')));
    for (const result of results) {
      expect(result.userErrors).toEqual([]);
      expect(result.visit).toEqual(results[0].visit);
    }
    expect(results[0].visit.total.amount).toBe('698.00');
    expect(results.filter((r) => r.replayed === false)).toHaveLength(1);
    expect(await api.owner.domainEvent.count()).toBe(eventsBefore + 1);
    expect(await api.owner.visitLine.count({ where: { visitId: visit.id } })).toBe(2);
    expect(await api.owner.customerFact.findUniqueOrThrow({ where: { customerId: customer } })).toMatchObject({ visitCount: 1, totalSpendMinor: 69800n });
  });

  test('concurrent completions of one visit under different keys: one completes it, the others see INVALID_STATE', async () => {
    const customer = await newCustomer();
    const visit = await newVisit({ status: 'CHECKED_IN', customerId: customer, start: fromNow(-HOUR) });
    const results = await Promise.all(Array.from({ length: 5 }, () => complete(visit.id, key())));
    const completed = results.filter((r) => r.userErrors.length === 0);
    expect(completed).toHaveLength(1);
    for (const rejected of results.filter((r) => r.userErrors.length > 0)) {
      expect(rejected.userErrors).toEqual([expect.objectContaining(conflict('INVALID_STATE', 'visitId'))]);
    }
    expect(await eventsOf(visit.id)).toHaveLength(1);
    expect(await api.owner.idempotencyRecord.count({ where: { principalKey: `staff:${staffIdOf('BEAUTICIAN')}`, result: { path: ['visitId'], equals: visit.id } } })).toBe(1);
    expect(await api.owner.customerFact.findUniqueOrThrow({ where: { customerId: customer } })).toMatchObject({ visitCount: 1, totalSpendMinor: 68000n });
  });

  test('a key whose request failed can be used again once the visit is checked in', async () => {
    const visit = await newVisit({ status: 'BOOKED', start: fromNow(-10 * MINUTE) });
    const k = key();
    await expectRejected(COMPLETE, { visitId: gid('Visit', visit.id), idempotencyKey: k, lineItems: [facialLine()] }, 'BEAUTICIAN', conflict('INVALID_STATE', 'visitId'));
    expect((await call(CHECK_IN, { input: { visitId: gid('Visit', visit.id), idempotencyKey: key() } }, 'BEAUTICIAN')).userErrors).toEqual([]);
    const retried = await complete(visit.id, k);
    expect(retried).toMatchObject({ userErrors: [], replayed: false, visit: { status: 'COMPLETED', total: { amount: '680.00' } } });
  });

  test('keys belong to the caller', async () => {
    const [a, b] = [await newVisit({ status: 'CHECKED_IN', start: fromNow(-HOUR) }), await newVisit({ status: 'CHECKED_IN', start: fromNow(-HOUR) })];
    const k = key();
    expect(await complete(a.id, k, {}, 'BEAUTICIAN')).toMatchObject({ userErrors: [], replayed: false });
    expect(await complete(b.id, k, {}, 'FRONT_DESK')).toMatchObject({ userErrors: [], replayed: false });
    expect(await api.owner.visit.count({ where: { id: { in: [a.id, b.id] }, status: 'COMPLETED' } })).toBe(2);
  });

  const line = (extra: Record<string, unknown>) => ({ lineItems: [facialLine(extra)] });
  test.each<[string, () => Record<string, unknown>, As, ExpectedError]>([
    ['a negative price', () => line({ unitPrice: '-1.00' }), 'OWNER', invalid('lineItems', '0', 'unitPrice')],
    ['a negative discount', () => line({ discount: '-5' }), 'OWNER', invalid('lineItems', '0', 'discount')],
    ['a price finer than the fen', () => line({ unitPrice: '1.234' }), 'OWNER', invalid('lineItems', '0', 'unitPrice')],
    ['a discount finer than the fen', () => line({ discount: '0.005' }), 'OWNER', invalid('lineItems', '0', 'discount')],
    ['a discount above the line amount', () => line({ quantity: 2, unitPrice: '100.00', discount: '200.01' }), 'OWNER', invalid('lineItems', '0', 'discount')],
    ['a price too large to record', () => line({ unitPrice: '30000000.00', discount: '10000000.00' }), 'OWNER', invalid('lineItems', '0', 'unitPrice')],
    ['a discount too large to record', () => line({ quantity: 100, unitPrice: '20000000.00', discount: '1999000000.00' }), 'OWNER', invalid('lineItems', '0', 'discount')],
    ['a visit total too large to record', () => line({ quantity: 2, unitPrice: '20000000.00' }), 'OWNER', invalid('lineItems')],
    ['a quantity of zero', () => line({ quantity: 0 }), 'OWNER', invalid('lineItems', '0', 'quantity')],
    ['a line with both a service and a product', () => line({ productId: gid('Product', sunscreen.id) }), 'OWNER', invalid('lineItems', '0')],
    ['a line with neither service nor product', () => ({ lineItems: [{ quantity: 1 }] }), 'OWNER', invalid('lineItems', '0')],
    ['no line items', () => ({ lineItems: [] }), 'OWNER', invalid('lineItems')],
    ['a malformed signature image', () => ({ signature: { ...SIGNATURE, imageDataUrl: 'https://example.com/sig.png' } }), 'OWNER', invalid('signature', 'imageDataUrl')],
    ['a malformed idempotency key', () => ({ idempotencyKey: 'has spaces in it' }), 'OWNER', invalid('idempotencyKey')],
    ['an unknown service', () => ({ lineItems: [{ serviceId: gid('Service', randomUUID()) }] }), 'OWNER', notFound('lineItems', '0', 'serviceId')],
    ["another tenant's service", () => ({ lineItems: [facialLine(), { serviceId: gid('Service', otherService) }] }), 'OWNER', notFound('lineItems', '1', 'serviceId')],
    ['an unknown product', () => ({ lineItems: [{ productId: gid('Product', randomUUID()) }] }), 'OWNER', notFound('lineItems', '0', 'productId')],
    ["another tenant's staff on a line", () => line({ staffId: gid('Staff', staffIdOf('OTHER_CHAIN_OWNER')) }), 'OWNER', notFound('lineItems', '0', 'staffId')],
    ['a customer', () => ({}), 'CUSTOMER', FORBIDDEN],
    ['the HQ analyst', () => ({}), 'HQ_ANALYST', FORBIDDEN],
  ])('rejects %s and changes nothing', async (_label, input, as, expected) => {
    const visit = await newVisit({ status: 'CHECKED_IN', start: fromNow(-HOUR) });
    await expectRejected(COMPLETE, { visitId: gid('Visit', visit.id), idempotencyKey: key(), lineItems: [facialLine()], ...input() }, as, expected);
  });

  test.each<[string, () => Promise<string>, As, ExpectedError]>([
    ['a BOOKED visit', async () => (await newVisit({ start: fromNow(-HOUR) })).id, 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['a COMPLETED visit', async () => (await newVisit({ status: 'COMPLETED', start: fromNow(-DAY) })).id, 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['a CANCELLED visit', async () => (await newVisit({ status: 'CANCELLED' })).id, 'OWNER', conflict('INVALID_STATE', 'visitId')],
    ['an unknown visit', async () => randomUUID(), 'OWNER', notFound('visitId')],
    ["another tenant's visit", async () => (await newVisit({ orgId: otherChainId, status: 'CHECKED_IN', start: fromNow(-HOUR) })).id, 'OWNER', notFound('visitId')],
    ['a visit at another store, by a beautician of SH-01', async () => (await newVisit({ storeId: bj01, status: 'CHECKED_IN', start: fromNow(-HOUR) })).id, 'BEAUTICIAN', notFound('visitId')],
  ])('rejects completing %s and changes nothing', async (_label, visitId, as, expected) => {
    await expectRejected(COMPLETE, { visitId: gid('Visit', await visitId()), idempotencyKey: key(), lineItems: [facialLine()] }, as, expected);
  });
});

// --- Connections ---------------------------------------------------------------------------------------------

describe('Customer.visits', () => {
  /** Pages through one customer's visits and returns their ids, checking cursors and page flags on the way. */
  async function pageCustomerVisits(customerId: string, first: number, as: As = 'OWNER', status?: Status[]) {
    const ids: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 50; page++) {
      const { visits } = await call(CUSTOMER_VISITS, { id: gid('Customer', customerId), first, after, status }, as);
      expect(visits.pageInfo.hasPreviousPage).toBe(after !== null);
      ids.push(...visits.edges.map((e: { node: { id: string } }) => uuidOf(e.node.id)));
      if (!visits.pageInfo.hasNextPage) break;
      expect(visits.edges).toHaveLength(first);
      after = visits.pageInfo.endCursor;
    }
    return ids;
  }

  async function newestFirst(customerId: string, where = 'true') {
    const rows = await api.owner.$queryRawUnsafe<{ id: string }[]>(
      `SELECT id FROM visit WHERE customer_id = $1::uuid AND ${where} ORDER BY scheduled_start DESC, id DESC`,
      customerId,
    );
    return rows.map((r) => r.id);
  }

  test('pages newest first without gaps or repeats, ties broken by id; hasNextPage is right at the end', async () => {
    const customer = await newCustomer();
    const base = fromNow(-30 * DAY);
    // Six visits, two pairs starting at the same instant (with different staff).
    for (const day of [0, 3, 3, 7, 12, 12]) await newVisit({ customerId: customer, status: 'COMPLETED', start: new Date(base.getTime() + day * DAY) });
    const expected = await newestFirst(customer);
    expect(expected).toHaveLength(6);
    for (const first of [1, 2, 3, 4, 5, 6, 7]) expect(await pageCustomerVisits(customer, first), `first: ${first}`).toEqual(expected);

    const exact = await call(CUSTOMER_VISITS, { id: gid('Customer', customer), first: 6 });
    expect(exact.visits.pageInfo.hasNextPage).toBe(false);
    const short = await call(CUSTOMER_VISITS, { id: gid('Customer', customer), first: 5 });
    expect(short.visits.pageInfo.hasNextPage).toBe(true);
    const last = await call(CUSTOMER_VISITS, { id: gid('Customer', customer), first: 3, after: short.visits.pageInfo.endCursor });
    expect(last.visits.edges).toHaveLength(1);
    expect(last.visits.pageInfo.hasNextPage).toBe(false);
  });

  test('a seeded regular: every visit exactly once, and the status filter', async () => {
    const [{ customer_id: regular }] = await api.owner.$queryRawUnsafe<{ customer_id: string }[]>(
      `SELECT customer_id FROM visit WHERE org_id = '${chainId}' GROUP BY customer_id ORDER BY count(*) DESC LIMIT 1`,
    );
    const expected = await newestFirst(regular);
    expect(expected.length).toBeGreaterThan(10);
    expect(await pageCustomerVisits(regular, 4)).toEqual(expected);
    expect(await pageCustomerVisits(regular, 5, 'OWNER', ['CANCELLED', 'NO_SHOW'])).toEqual(await newestFirst(regular, `status IN ('CANCELLED', 'NO_SHOW')`));
  });

  test('a list of customers, each with their own page, in one request', async () => {
    // Letters only: three or more digits in a search also match phone numbers.
    const tag = `batch ${Array.from({ length: 8 }, () => String.fromCharCode(97 + Math.floor(Math.random() * 26))).join('')}`;
    const customers = [await newCustomer(chainId, `${tag} A`), await newCustomer(chainId, `${tag} B`), await newCustomer(chainId, `${tag} C`)];
    for (const [i, customer] of customers.entries()) {
      for (let n = 0; n < i * 2; n++) await newVisit({ customerId: customer, status: 'COMPLETED', start: fromNow(-(n + 1) * DAY) });
    }
    const result = await call(`query($search: String) { customers(first: 10, filter: { search: $search }) { edges { node { id
      visits(first: 2) { edges { node { id } } pageInfo { hasNextPage } } } } } }`, { search: tag });
    const pages = result.edges.map((e: any) => ({ customer: uuidOf(e.node.id), ids: e.node.visits.edges.map((v: any) => uuidOf(v.node.id)), more: e.node.visits.pageInfo.hasNextPage }));
    expect(pages).toEqual([
      { customer: customers[0], ids: [], more: false },
      { customer: customers[1], ids: (await newestFirst(customers[1]!)).slice(0, 2), more: false },
      { customer: customers[2], ids: (await newestFirst(customers[2]!)).slice(0, 2), more: true },
    ]);
  });

  test('store-bound staff see only their stores\' visits; a customer sees their own', async () => {
    const customer = await newCustomer();
    await newVisit({ customerId: customer, storeId: sh01, status: 'COMPLETED', start: fromNow(-2 * DAY) });
    await newVisit({ customerId: customer, storeId: bj01, status: 'COMPLETED', start: fromNow(-DAY) });
    expect(await pageCustomerVisits(customer, 5, 'OWNER')).toEqual(await newestFirst(customer));
    expect(await pageCustomerVisits(customer, 5, 'FRONT_DESK')).toEqual(await newestFirst(customer, `store_id = '${sh01}'`));
    expect(await pageCustomerVisits(customer, 5, 'BEAUTICIAN')).toEqual(await newestFirst(customer, `store_id = '${sh01}'`));

    const me = (api.principals.CUSTOMER as { customerId: string }).customerId;
    expect(await pageCustomerVisits(me, 10, 'CUSTOMER')).toEqual(await newestFirst(me));
    const someoneElse = await api.gql(CUSTOMER_VISITS, { id: gid('Customer', customer), first: 5 }, 'CUSTOMER');
    expect(someoneElse).toEqual({ data: { node: null } });
  });

  test('an API client without the visits:read scope sees no visits, here as in the root list', async () => {
    const customer = await newCustomer();
    await newVisit({ customerId: customer, storeId: sh01, status: 'COMPLETED', start: fromNow(-DAY) });
    const pos = api.principals.POS_CLIENT!;
    const customersOnly = { ...pos, scopes: ['customers:read'] };
    expect(await pageCustomerVisits(customer, 5, customersOnly)).toEqual([]);
    expect(await pageCustomerVisits(customer, 5, 'POS_CLIENT')).toEqual(await newestFirst(customer));
    const root = await call(VISITS, { first: 5, filter: { customerId: gid('Customer', customer) } }, customersOnly);
    expect(root.edges).toEqual([]);
  });
});

describe('visits connection', () => {
  type Filter = Record<string, unknown>;

  async function pageAll(filter: Filter | null, as: As = 'OWNER', direction?: 'ASC' | 'DESC') {
    const ids: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 100; page++) {
      const { edges, pageInfo } = await call(VISITS, { first: 100, after, filter, direction }, as);
      ids.push(...edges.map((e: { node: { id: string } }) => uuidOf(e.node.id)));
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor;
    }
    expect(new Set(ids).size).toBe(ids.length);
    return ids;
  }

  async function sqlIds(where: string, direction = 'DESC', ...params: unknown[]) {
    const rows = await api.owner.$queryRawUnsafe<{ id: string }[]>(
      `SELECT id FROM visit WHERE org_id = '${chainId}' AND (${where}) ORDER BY scheduled_start ${direction}, id ${direction}`,
      ...params,
    );
    return rows.map((r) => r.id);
  }

  // A fortnight of the seeded year keeps each comparison a few pages long.
  const window = () => ({ from: new Date(Date.now() - 60 * DAY), to: new Date(Date.now() - 46 * DAY) });

  test('filters by date range, store, status and staff, like the database', async () => {
    const { from, to } = window();
    const range = { from: from.toISOString(), to: to.toISOString() };
    const inRange = `scheduled_start >= $1 AND scheduled_start < $2`;
    const [{ staff_id: busiest }] = await api.owner.$queryRawUnsafe<{ staff_id: string }[]>(
      `SELECT staff_id FROM visit WHERE org_id = '${chainId}' AND staff_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`,
    );
    const cases: [Filter, string][] = [
      [range, inRange],
      [{ ...range, storeId: gid('Store', bj01) }, `${inRange} AND store_id = '${bj01}'`],
      [{ ...range, status: ['CANCELLED', 'NO_SHOW'] }, `${inRange} AND status IN ('CANCELLED', 'NO_SHOW')`],
      [{ staffId: gid('Staff', busiest) }, `staff_id = '${busiest}' AND $1::timestamptz IS NOT NULL AND $2::timestamptz IS NOT NULL`],
      [{ ...range, storeId: gid('Store', sh01), status: ['COMPLETED'] }, `${inRange} AND store_id = '${sh01}' AND status = 'COMPLETED'`],
    ];
    for (const [filter, where] of cases) {
      const expected = await sqlIds(where, 'DESC', from, to);
      expect(expected.length, JSON.stringify(filter)).toBeGreaterThan(0);
      expect(await pageAll(filter), JSON.stringify(filter)).toEqual(expected);
    }
    expect(await pageAll(range, 'OWNER', 'ASC')).toEqual(await sqlIds(inRange, 'ASC', from, to));
  });

  test('store-bound roles see only their store; asking for another store gives nothing', async () => {
    const { from, to } = window();
    const range = { from: from.toISOString(), to: to.toISOString() };
    const sh01Only = await sqlIds(`scheduled_start >= $1 AND scheduled_start < $2 AND store_id = '${sh01}'`, 'DESC', from, to);
    expect(sh01Only.length).toBeGreaterThan(0);
    for (const role of ['FRONT_DESK', 'STORE_MANAGER', 'BEAUTICIAN', 'POS_CLIENT'] as const) {
      expect(await pageAll(range, role), role).toEqual(sh01Only);
      expect(await pageAll({ ...range, storeId: gid('Store', bj01) }, role), role).toEqual([]);
    }
    expect((await pageAll(range, 'HQ_ANALYST')).length).toBeGreaterThan(sh01Only.length);
  });

  test('a customer sees only their own visits; another organization sees none', async () => {
    const me = (api.principals.CUSTOMER as { customerId: string }).customerId;
    const mine = await sqlIds(`customer_id = '${me}'`);
    expect(mine.length).toBeGreaterThan(0);
    expect(await pageAll(null, 'CUSTOMER')).toEqual(mine);
    expect(await pageAll({ customerId: gid('Customer', (await newVisit({ status: 'COMPLETED', start: fromNow(-DAY) })).customerId) }, 'CUSTOMER')).toEqual([]);

    const theirs = await pageAll(null, 'OTHER_CHAIN_OWNER');
    const ours = new Set(await sqlIds('true'));
    expect(theirs.filter((id) => ours.has(id))).toEqual([]);
    expect(await pageAll({ storeId: gid('Store', sh01) }, 'OTHER_CHAIN_OWNER')).toEqual([]);
  });
});
