import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { gid, startTestPlatform, type TestPlatform } from '../testing/platform.ts';

// --- GraphQL documents ---------------------------------------------------------------------------------------

const ERRORS = 'userErrors { __typename code message field }';
const CUSTOMER = `id name phone birthday gender source tags
  homeStore { id } consultant { id } preferences { key value }
  skinProfile { skinType allergies sensitivities carePreferences }
  consents { purpose granted partnerOrganizationId }`;
const CREATE = `mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { ${CUSTOMER} } ${ERRORS} } }`;
const UPDATE = `mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { customer { ${CUSTOMER} } ${ERRORS} } }`;
const CONSENT = `mutation($input: RecordConsentInput!) { recordConsent(input: $input) { customer { ${CUSTOMER} } ${ERRORS} } }`;
const LIST = `query($first: Int, $after: String, $filter: CustomerFilter, $orderBy: CustomerOrder) {
  customers(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }`;

// --- Helpers -------------------------------------------------------------------------------------------------

type As = Parameters<TestPlatform['gql']>[2];
interface ExpectedError {
  __typename: string;
  code: string;
  field?: string[] | null;
}

let api: TestPlatform;
let chainId: string;
let otherChainId: string;
let sh01: string;
let bj01: string;
let otherStore: string;
let otherCustomer: string;

beforeAll(async () => {
  api = await startTestPlatform();
  chainId = api.principals.OWNER!.orgId;
  otherChainId = api.principals.OTHER_CHAIN_OWNER!.orgId;
  const store = async (orgId: string, code?: string) =>
    (await api.owner.store.findFirstOrThrow({ where: { orgId, ...(code ? { code } : {}) }, orderBy: { code: 'asc' } })).id;
  sh01 = await store(chainId, 'SH-01');
  bj01 = await store(chainId, 'BJ-01');
  otherStore = await store(otherChainId);
  otherCustomer = (await api.owner.customer.findFirstOrThrow({ where: { orgId: otherChainId } })).id;
});
afterAll(() => api?.close());

/** Runs a mutation or query and returns its single root field (GraphQL-level errors fail the test). */
async function call(document: string, variables: Record<string, unknown>, as: As = 'OWNER') {
  const response = await api.gql(document, variables, as);
  expect(response.errors).toBeUndefined();
  return Object.values(response.data!)[0] as any;
}

let phoneSequence = 0;
/** A valid mainland mobile number no seeded customer has (the seed never uses the 199 prefix). */
function newPhone(): string {
  phoneSequence += 1;
  return `+86199${String(phoneSequence).padStart(8, '0')}`;
}

/** A customer arranged directly in the database (with its facts row, as createCustomer would make). */
async function newCustomer(data: { orgId?: string; name?: string; phone?: string; homeStoreId?: string | null; healthConsent?: boolean } = {}) {
  const orgId = data.orgId ?? chainId;
  const customer = await api.owner.customer.create({
    data: {
      orgId,
      name: data.name ?? `Test ${randomUUID().slice(0, 8)}`,
      phone: data.phone ?? newPhone(),
      homeStoreId: data.homeStoreId === undefined ? (orgId === chainId ? sh01 : otherStore) : data.homeStoreId,
    },
  });
  await api.owner.customerFact.create({ data: { customerId: customer.id, orgId } });
  if (data.healthConsent) {
    await api.owner.consent.create({ data: { orgId, customerId: customer.id, purpose: 'HEALTH_DATA', granted: true, recordedBy: 'test' } });
  }
  return customer;
}

/**
 * The state of the tables a mutation could touch: equal fingerprints mean no row was inserted, updated or deleted
 * (every insert or update stamps a row version with a newer transaction id than any before it; a delete lowers the count).
 */
async function fingerprint(): Promise<Record<string, string>> {
  const tables = ['customer', 'skin_profile', 'consent', 'customer_fact', 'membership', 'visit', 'idempotency_record', 'domain_event'];
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
  expect(payload.customer).toBeNull();
  expect(await fingerprint()).toEqual(before);
  return payload.userErrors[0];
}

/** The events recorded for an aggregate, oldest first. */
function eventsOf(aggregateId: string) {
  return api.owner.domainEvent.findMany({ where: { aggregateId }, orderBy: { id: 'asc' } });
}

/** The transaction id that last wrote a row: equal values mean the rows were written in one transaction. */
async function writer(table: string, keyColumn: string, key: string | bigint): Promise<string> {
  const [row] = await api.owner.$queryRawUnsafe<{ xmin: string }[]>(`SELECT xmin::text FROM ${table} WHERE ${keyColumn}::text = $1`, String(key));
  return row!.xmin;
}

const customerId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

// --- createCustomer ------------------------------------------------------------------------------------------

describe('createCustomer', () => {
  test('creates the customer, its consents, skin profile and facts, and records customer.created in the same transaction', async () => {
    const consultant = await api.owner.staff.findFirstOrThrow({ where: { orgId: chainId, role: 'CONSULTANT', stores: { some: { storeId: bj01 } } } });
    const payload = await call(CREATE, {
      input: {
        name: '  林晓雨  ',
        phone: '199 8800 0001',
        birthday: '1990-04-12',
        gender: 'FEMALE',
        source: 'REFERRAL',
        homeStoreId: gid('Store', bj01),
        consultantId: gid('Staff', consultant.id),
        preferences: [{ key: 'tea', value: 'jasmine' }],
        tags: ['VIP', 'vip', ' Sensitive skin '],
        skinProfile: { skinType: 'SENSITIVE', allergies: ['fragrance'], sensitivities: [], carePreferences: ['warm-towels'] },
        healthDataConsent: true,
        marketingConsent: false,
      },
    });
    expect(payload.userErrors).toEqual([]);
    const created = payload.customer;
    expect(created).toMatchObject({
      name: '林晓雨',
      phone: '+8619988000001',
      birthday: '1990-04-12',
      gender: 'FEMALE',
      source: 'REFERRAL',
      tags: ['vip', 'sensitive skin'],
      homeStore: { id: gid('Store', bj01) },
      consultant: { id: gid('Staff', consultant.id) },
      preferences: [{ key: 'tea', value: 'jasmine' }],
      skinProfile: { skinType: 'SENSITIVE', allergies: ['fragrance'], sensitivities: [], carePreferences: ['warm-towels'] },
    });
    expect(created.consents).toEqual(
      expect.arrayContaining([
        { purpose: 'HEALTH_DATA', granted: true, partnerOrganizationId: null },
        { purpose: 'MARKETING', granted: false, partnerOrganizationId: null },
      ]),
    );

    const id = customerId(created.id);
    const row = await api.owner.customer.findUniqueOrThrow({ where: { id }, include: { skinProfile: true, consents: true, facts: true } });
    expect(row).toMatchObject({ orgId: chainId, name: '林晓雨', phone: '+8619988000001', homeStoreId: bj01, consultantId: consultant.id, birthdayMonth: 4 });
    expect(row.birthday!.toISOString()).toBe('1990-04-12T00:00:00.000Z');
    expect(row.skinProfile).toMatchObject({ skinType: 'SENSITIVE', allergies: ['fragrance'] });
    expect(row.consents).toHaveLength(2);
    expect(row.facts).toMatchObject({ visitCount: 0, totalSpendMinor: 0n });

    const events = await eventsOf(id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      orgId: chainId,
      type: 'customer.created',
      aggregateType: 'Customer',
      actor: `staff:${(api.principals.OWNER as { staffId: string }).staffId}`,
      payload: { customerId: id, homeStoreId: bj01, source: 'REFERRAL', hasSkinProfile: true },
    });
    const tx = await writer('customer', 'id', id);
    expect(await writer('domain_event', 'id', events[0]!.id)).toBe(tx);
    expect(await writer('customer_fact', 'customer_id', id)).toBe(tx);
    expect(await writer('skin_profile', 'customer_id', id)).toBe(tx);
  });

  test('front desk: the home store defaults to their store', async () => {
    const payload = await call(CREATE, { input: { name: 'Amy Chen', phone: newPhone() } }, 'FRONT_DESK');
    expect(payload.userErrors).toEqual([]);
    expect(payload.customer.homeStore).toEqual({ id: gid('Store', sh01) });
    expect(payload.customer.skinProfile).toBeNull();
    const row = await api.owner.customer.findUniqueOrThrow({ where: { id: customerId(payload.customer.id) } });
    expect(row).toMatchObject({ homeStoreId: sh01, gender: 'UNDISCLOSED', source: 'WALK_IN', tags: [] });
  });

  test.each([
    ['country code, spaces and dashes', '+86 199-2200-0001', '+8619922000001'],
    ['national digits', '19922000002', '+8619922000002'],
    ['0086 prefix', '0086 199 2200 0003', '+8619922000003'],
  ])('a duplicate phone in another format is DUPLICATE_PHONE (%s)', async (_label, written, stored) => {
    await newCustomer({ phone: stored });
    await expectRejected(CREATE, { name: 'Duplicate', phone: written }, 'OWNER', { __typename: 'ConflictError', code: 'DUPLICATE_PHONE', field: ['input', 'phone'] });
  });

  test('ten concurrent registrations of one phone number: exactly one customer', async () => {
    const formats = ['199 5500 0001', '+8619955000001', '19955000001', '+86 199-5500-0001', '0086 19955000001'];
    const eventsBefore = await api.owner.domainEvent.count();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => call(CREATE, { input: { name: `Racer ${i}`, phone: formats[i % formats.length] } }, i % 2 ? 'FRONT_DESK' : 'OWNER')));
    expect(results.filter((r) => r.userErrors.length === 0)).toHaveLength(1);
    for (const rejected of results.filter((r) => r.userErrors.length > 0)) {
      expect(rejected.userErrors).toEqual([expect.objectContaining({ __typename: 'ConflictError', code: 'DUPLICATE_PHONE', field: ['input', 'phone'] })]);
    }
    expect(await api.owner.customer.count({ where: { orgId: chainId, phone: '+8619955000001' } })).toBe(1);
    expect(await api.owner.domainEvent.count()).toBe(eventsBefore + 1);
  });

  test('the same phone is free in another organization', async () => {
    const phone = newPhone();
    await newCustomer({ phone, orgId: otherChainId });
    const payload = await call(CREATE, { input: { name: 'Same phone, other chain', phone } });
    expect(payload.userErrors).toEqual([]);
    expect(payload.customer.phone).toBe(phone);
  });

  const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  test.each<[string, () => Record<string, unknown>, As, ExpectedError]>([
    ['malformed phone', () => ({ phone: '12345' }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'phone'] }],
    ['letters for a phone', () => ({ phone: 'call me' }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'phone'] }],
    ['empty name', () => ({ name: '   ' }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'name'] }],
    ['future birthday', () => ({ birthday: tomorrow() }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'birthday'] }],
    ['a malformed tag', () => ({ tags: ['ok', '#!?'] }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'tags', '1'] }],
    ['skin profile without health consent', () => ({ skinProfile: { skinType: 'DRY' } }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'healthDataConsent'] }],
    ['skin profile with consent withheld', () => ({ skinProfile: { skinType: 'DRY' }, healthDataConsent: false }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'healthDataConsent'] }],
    ['unknown home store', () => ({ homeStoreId: gid('Store', randomUUID()) }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'homeStoreId'] }],
    ["another tenant's store", () => ({ homeStoreId: gid('Store', otherStore) }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'homeStoreId'] }],
    ['a store outside the front desk\'s', () => ({ homeStoreId: gid('Store', bj01) }), 'FRONT_DESK', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'homeStoreId'] }],
    ['a store outside the manager\'s', () => ({ homeStoreId: gid('Store', bj01) }), 'STORE_MANAGER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'homeStoreId'] }],
    ['unknown consultant', () => ({ consultantId: gid('Staff', randomUUID()) }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'consultantId'] }],
    ["another tenant's staff as consultant", () => ({ consultantId: gid('Staff', (api.principals.OTHER_CHAIN_OWNER as { staffId: string }).staffId) }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'consultantId'] }],
    ['HQ analyst', () => ({}), 'HQ_ANALYST', { __typename: 'ForbiddenError', code: 'FORBIDDEN' }],
    ['beautician', () => ({}), 'BEAUTICIAN', { __typename: 'ForbiddenError', code: 'FORBIDDEN' }],
    ['a customer token', () => ({}), 'CUSTOMER', { __typename: 'ForbiddenError', code: 'FORBIDDEN' }],
  ])('rejects %s and changes nothing', async (_label, input, as, expected) => {
    await expectRejected(CREATE, { name: 'Rejected', phone: newPhone(), ...input() }, as, expected);
  });

  test("another tenant's ids answer exactly like ids that do not exist", async () => {
    const notFound = { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'homeStoreId'] };
    const unknown = await expectRejected(CREATE, { name: 'X', phone: newPhone(), homeStoreId: gid('Store', randomUUID()) }, 'OWNER', notFound);
    const foreign = await expectRejected(CREATE, { name: 'X', phone: newPhone(), homeStoreId: gid('Store', sh01) }, 'OTHER_CHAIN_OWNER', notFound);
    expect(foreign).toEqual(unknown);
  });
});

// --- updateCustomer ------------------------------------------------------------------------------------------

describe('updateCustomer', () => {
  test('changes the given fields, keeps the others, and records customer.updated in the same transaction', async () => {
    const customer = await newCustomer({ name: 'Before', healthConsent: true });
    await api.owner.customer.update({ where: { id: customer.id }, data: { birthday: new Date('1985-07-01T00:00:00Z'), tags: ['old'], gender: 'FEMALE' } });
    const consultant = await api.owner.staff.findFirstOrThrow({ where: { orgId: chainId, role: 'CONSULTANT', stores: { some: { storeId: sh01 } } } });
    const payload = await call(UPDATE, {
      input: {
        customerId: gid('Customer', customer.id),
        name: 'After',
        phone: '199 3300 0001',
        birthday: null,
        consultantId: gid('Staff', consultant.id),
        tags: ['New', 'new', 'second'],
        skinProfile: { skinType: 'OILY', allergies: ['retinol'] },
      },
    });
    expect(payload.userErrors).toEqual([]);
    expect(payload.customer).toMatchObject({
      name: 'After',
      phone: '+8619933000001',
      birthday: null,
      gender: 'FEMALE',
      tags: ['new', 'second'],
      homeStore: { id: gid('Store', sh01) },
      consultant: { id: gid('Staff', consultant.id) },
      skinProfile: { skinType: 'OILY', allergies: ['retinol'], sensitivities: [] },
    });
    const row = await api.owner.customer.findUniqueOrThrow({ where: { id: customer.id }, include: { skinProfile: true } });
    expect(row).toMatchObject({ name: 'After', phone: '+8619933000001', birthday: null, birthdayMonth: null, gender: 'FEMALE', homeStoreId: sh01, consultantId: consultant.id, tags: ['new', 'second'] });
    expect(row.skinProfile).toMatchObject({ skinType: 'OILY', allergies: ['retinol'] });

    const events = await eventsOf(customer.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'customer.updated', payload: { customerId: customer.id } });
    expect((events[0]!.payload as { changed: string[] }).changed.sort()).toEqual(['birthday', 'consultantId', 'name', 'phone', 'skinProfile', 'tags']);
    expect(await writer('domain_event', 'id', events[0]!.id)).toBe(await writer('customer', 'id', customer.id));
  });

  test('a consultant may record a skin profile for a customer who consented', async () => {
    const customer = await newCustomer({ healthConsent: true });
    const payload = await call(UPDATE, { input: { customerId: gid('Customer', customer.id), skinProfile: { sensitivities: ['steam'] } } }, 'CONSULTANT');
    expect(payload.userErrors).toEqual([]);
    expect(payload.customer.skinProfile).toMatchObject({ sensitivities: ['steam'] });
    expect(await api.owner.skinProfile.findUnique({ where: { customerId: customer.id } })).toMatchObject({ sensitivities: ['steam'] });
  });

  test('a customer may change their own name, but not their store', async () => {
    const me = api.principals.CUSTOMER as { customerId: string };
    const before = await api.owner.customer.findUniqueOrThrow({ where: { id: me.customerId } });
    const payload = await call(UPDATE, { input: { customerId: gid('Customer', me.customerId), name: `${before.name}·` } }, 'CUSTOMER');
    expect(payload.userErrors).toEqual([]);
    expect(payload.customer.name).toBe(`${before.name}·`);
    await api.owner.customer.update({ where: { id: me.customerId }, data: { name: before.name } });

    await expectRejected(UPDATE, { customerId: gid('Customer', me.customerId), homeStoreId: gid('Store', bj01) }, 'CUSTOMER', {
      __typename: 'ValidationError', code: 'INVALID', field: ['input', 'homeStoreId'],
    });
  });

  test('a duplicate phone in another format is DUPLICATE_PHONE', async () => {
    const taken = await newCustomer({ phone: '+8619944000001' });
    const customer = await newCustomer();
    await expectRejected(UPDATE, { customerId: gid('Customer', customer.id), phone: '199-4400-0001' }, 'OWNER', {
      __typename: 'ConflictError', code: 'DUPLICATE_PHONE', field: ['input', 'phone'],
    });
    // Writing the customer's own number again, in another format, is not a conflict.
    const same = await call(UPDATE, { input: { customerId: gid('Customer', taken.id), phone: '199 4400 0001' } });
    expect(same.userErrors).toEqual([]);
  });

  const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  test.each<[string, (id: string) => Record<string, unknown>, As, ExpectedError]>([
    ['malformed phone', (id) => ({ customerId: id, phone: '+86 123' }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'phone'] }],
    ['empty name', (id) => ({ customerId: id, name: '' }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'name'] }],
    ['future birthday', (id) => ({ customerId: id, birthday: tomorrow() }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'birthday'] }],
    ['skin profile without health consent', (id) => ({ customerId: id, skinProfile: { skinType: 'DRY' } }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'skinProfile'] }],
    ['unknown customer', () => ({ customerId: gid('Customer', randomUUID()), name: 'X' }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'customerId'] }],
    ["another tenant's customer", () => ({ customerId: gid('Customer', otherCustomer), name: 'X' }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'customerId'] }],
    ["another tenant's store", (id) => ({ customerId: id, homeStoreId: gid('Store', otherStore) }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'homeStoreId'] }],
    ['a store outside the front desk\'s', (id) => ({ customerId: id, homeStoreId: gid('Store', bj01) }), 'FRONT_DESK', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'homeStoreId'] }],
    ['HQ analyst', (id) => ({ customerId: id, name: 'X' }), 'HQ_ANALYST', { __typename: 'ForbiddenError', code: 'FORBIDDEN' }],
    ['beautician', (id) => ({ customerId: id, name: 'X' }), 'BEAUTICIAN', { __typename: 'ForbiddenError', code: 'FORBIDDEN' }],
    ['a customer token for someone else', (id) => ({ customerId: id, name: 'X' }), 'CUSTOMER', { __typename: 'ForbiddenError', code: 'FORBIDDEN' }],
  ])('rejects %s and changes nothing', async (_label, input, as, expected) => {
    const customer = await newCustomer();
    await expectRejected(UPDATE, input(gid('Customer', customer.id)), as, expected);
  });

  test("another tenant's customer answers exactly like one that does not exist, both ways", async () => {
    const lumiere = await newCustomer();
    const notFound = { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'customerId'] };
    const unknown = await expectRejected(UPDATE, { customerId: gid('Customer', randomUUID()), name: 'X' }, 'OWNER', notFound);
    expect(await expectRejected(UPDATE, { customerId: gid('Customer', otherCustomer), name: 'X' }, 'OWNER', notFound)).toEqual(unknown);
    expect(await expectRejected(UPDATE, { customerId: gid('Customer', lumiere.id), name: 'X' }, 'OTHER_CHAIN_OWNER', notFound)).toEqual(unknown);
    // A customer token: someone else and no one are the same answer.
    const forbidden = await expectRejected(UPDATE, { customerId: gid('Customer', randomUUID()), name: 'X' }, 'CUSTOMER', { __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    expect(await expectRejected(UPDATE, { customerId: gid('Customer', lumiere.id), name: 'X' }, 'CUSTOMER', { __typename: 'ForbiddenError', code: 'FORBIDDEN' })).toEqual(forbidden);
  });
});

// --- recordConsent -------------------------------------------------------------------------------------------

describe('recordConsent', () => {
  test('keeps the history; the newest decision is in force; each decision is an event', async () => {
    const customer = await newCustomer();
    const input = { customerId: gid('Customer', customer.id), purpose: 'MARKETING' };
    const granted = await call(CONSENT, { input: { ...input, granted: true } }, 'FRONT_DESK');
    expect(granted.userErrors).toEqual([]);
    expect(granted.customer.consents).toEqual([{ purpose: 'MARKETING', granted: true, partnerOrganizationId: null }]);
    const withdrawn = await call(CONSENT, { input: { ...input, granted: false } }, 'OWNER');
    expect(withdrawn.customer.consents).toEqual([{ purpose: 'MARKETING', granted: false, partnerOrganizationId: null }]);

    const rows = await api.owner.consent.findMany({ where: { customerId: customer.id }, orderBy: { recordedAt: 'asc' } });
    expect(rows.map((r) => [r.purpose, r.granted])).toEqual([['MARKETING', true], ['MARKETING', false]]);
    const events = await eventsOf(customer.id);
    expect(events.map((e) => e.type)).toEqual(['customer.consentGranted', 'customer.consentWithdrawn']);
    expect(events[1]!.payload).toEqual({ customerId: customer.id, purpose: 'MARKETING', partnerOrgId: null });
    expect(await writer('domain_event', 'id', events[1]!.id)).toBe(await writer('consent', 'id', rows[1]!.id));
  });

  test('partner sharing names the partner clinic', async () => {
    const customer = await newCustomer();
    const clinic = await api.owner.organization.findFirstOrThrow({ where: { kind: 'CLINIC' } });
    const payload = await call(CONSENT, {
      input: { customerId: gid('Customer', customer.id), purpose: 'PARTNER_SHARING', granted: true, partnerOrganizationId: gid('Organization', clinic.id) },
    });
    expect(payload.userErrors).toEqual([]);
    expect(payload.customer.consents).toEqual([{ purpose: 'PARTNER_SHARING', granted: true, partnerOrganizationId: gid('Organization', clinic.id) }]);
    expect(await api.owner.consent.count({ where: { customerId: customer.id, partnerOrgId: clinic.id } })).toBe(1);
  });

  test('a customer records their own consent', async () => {
    const me = (api.principals.CUSTOMER as { customerId: string }).customerId;
    const payload = await call(CONSENT, { input: { customerId: gid('Customer', me), purpose: 'RESEARCH', granted: false } }, 'CUSTOMER');
    expect(payload.userErrors).toEqual([]);
    expect(payload.customer.consents).toContainEqual({ purpose: 'RESEARCH', granted: false, partnerOrganizationId: null });
  });

  test.each<[string, (id: string) => Record<string, unknown>, As, ExpectedError]>([
    ['partner sharing without a partner', (id) => ({ customerId: id, purpose: 'PARTNER_SHARING', granted: true }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'partnerOrganizationId'] }],
    ['a partner on another purpose', (id) => ({ customerId: id, purpose: 'MARKETING', granted: true, partnerOrganizationId: gid('Organization', otherChainId) }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'partnerOrganizationId'] }],
    ['an unknown partner organization', (id) => ({ customerId: id, purpose: 'PARTNER_SHARING', granted: true, partnerOrganizationId: gid('Organization', randomUUID()) }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'partnerOrganizationId'] }],
    ['a chain (not a clinic) as partner', (id) => ({ customerId: id, purpose: 'PARTNER_SHARING', granted: true, partnerOrganizationId: gid('Organization', otherChainId) }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'partnerOrganizationId'] }],
    ['unknown customer', () => ({ customerId: gid('Customer', randomUUID()), purpose: 'MARKETING', granted: true }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'customerId'] }],
    ["another tenant's customer", () => ({ customerId: gid('Customer', otherCustomer), purpose: 'MARKETING', granted: true }), 'OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'customerId'] }],
    ['a Lumière customer for the other chain', (id) => ({ customerId: id, purpose: 'MARKETING', granted: true }), 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'customerId'] }],
    ['HQ analyst', (id) => ({ customerId: id, purpose: 'MARKETING', granted: true }), 'HQ_ANALYST', { __typename: 'ForbiddenError', code: 'FORBIDDEN' }],
    ['a customer token for someone else', (id) => ({ customerId: id, purpose: 'MARKETING', granted: true }), 'CUSTOMER', { __typename: 'ForbiddenError', code: 'FORBIDDEN' }],
  ])('rejects %s and changes nothing', async (_label, input, as, expected) => {
    const customer = await newCustomer();
    await expectRejected(CONSENT, input(gid('Customer', customer.id)), as, expected);
  });
});

// --- customers connection ------------------------------------------------------------------------------------

describe('customers connection', () => {
  type Filter = Record<string, unknown>;

  /** Pages through the whole connection and returns the ids in order, checking that no id repeats. */
  async function pageAll(filter: Filter | null, orderBy: Filter | null = null, as: As = 'OWNER', first = 37) {
    const ids: string[] = [];
    let after: string | null = null;
    let totalCount = -1;
    for (let page = 0; page < 100; page++) {
      const result: any = await call(LIST, { first, after, filter, orderBy }, as);
      totalCount = result.totalCount;
      ids.push(...result.edges.map((e: { node: { id: string } }) => customerId(e.node.id)));
      if (!result.pageInfo.hasNextPage) break;
      expect(result.edges).toHaveLength(first);
      after = result.pageInfo.endCursor;
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(totalCount);
    return ids;
  }

  /** The same question asked directly of the database. */
  async function sqlIds(where: string, orderBy = 'c.name ASC, c.id ASC', ...params: unknown[]) {
    const rows = await api.owner.$queryRawUnsafe<{ id: string }[]>(
      `SELECT c.id FROM customer c LEFT JOIN customer_fact f ON f.customer_id = c.id
       WHERE c.org_id = '${chainId}' AND (${where}) ORDER BY ${orderBy}`,
      ...params,
    );
    return rows.map((r) => r.id);
  }

  test('paging through all customers visits each exactly once, in name order', async () => {
    const ids = await pageAll(null);
    expect(ids).toEqual(await sqlIds('true'));
    expect(ids.length).toBeGreaterThanOrEqual(260);
  });

  test.each([
    ['LAST_VISIT_AT DESC', { field: 'LAST_VISIT_AT', direction: 'DESC' }, 'f.last_visit_at DESC NULLS LAST, c.id DESC'],
    ['TOTAL_SPEND DESC', { field: 'TOTAL_SPEND', direction: 'DESC' }, 'f.total_spend_minor DESC, c.id DESC'],
    ['NAME DESC', { field: 'NAME', direction: 'DESC' }, 'c.name DESC, c.id DESC'],
    ['CREATED_AT ASC', { field: 'CREATED_AT' }, 'c.created_at ASC, c.id ASC'],
  ])('ordering %s pages like the database orders', async (_label, orderBy, sqlOrder) => {
    expect(await pageAll(null, orderBy, 'OWNER', 50)).toEqual(await sqlIds('true', sqlOrder));
  });

  test('search matches part of a name', async () => {
    const sample = await api.owner.customer.findFirstOrThrow({ where: { orgId: chainId, name: { contains: ' ' } }, orderBy: { name: 'asc' } });
    const part = sample.name.split(' ')[1]!.slice(0, 3).toLowerCase();
    const ids = await pageAll({ search: part });
    expect(ids).toContain(sample.id);
    expect(ids).toEqual(await sqlIds(`c.name ILIKE '%' || $1 || '%' OR c.phone LIKE '%' || $2 || '%'`, undefined, part, part.replace(/\D/g, '') || 'x'));
  });

  test('search matches a Chinese name part', async () => {
    const sample = await api.owner.customer.findFirstOrThrow({ where: { orgId: chainId, name: { startsWith: '王' } } });
    const ids = await pageAll({ search: '王' });
    expect(ids).toContain(sample.id);
    expect(ids).toEqual(await sqlIds(`c.name ILIKE '%王%'`));
  });

  test('search matches digits of the phone number, however they are written', async () => {
    const customer = await newCustomer({ phone: '+8619955501234' });
    for (const search of ['5550 1234', '555-01234', '9955501234']) {
      const ids = await pageAll({ search });
      const digits = search.replace(/\D/g, '');
      expect(ids).toContain(customer.id);
      expect(ids).toEqual(await sqlIds(`c.name ILIKE '%' || $1 || '%' OR c.phone LIKE '%' || $2 || '%'`, undefined, search, digits));
    }
  });

  test('search treats % and _ as plain characters', async () => {
    const customer = await newCustomer({ name: 'Percent 100% Under_score' });
    for (const search of ['%', '_', '0%', 'r_s']) {
      expect(await pageAll({ search }), search).toEqual(await sqlIds(`strpos(lower(c.name), lower($1)) > 0`, undefined, search));
    }
    expect(await pageAll({ search: 'der_sc' })).toEqual([customer.id]);
  });

  test('filters by tag, home store, birthday month and membership', async () => {
    const [{ tag }] = await api.owner.$queryRawUnsafe<{ tag: string }[]>(
      `SELECT unnest(tags) AS tag FROM customer WHERE org_id = '${chainId}' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`,
    );
    const cases: [Filter, string][] = [
      [{ tag }, `'${tag.replace(/'/g, "''")}' = ANY(c.tags)`],
      [{ homeStoreId: gid('Store', bj01) }, `c.home_store_id = '${bj01}'`],
      [{ birthdayMonth: 3 }, `extract(month FROM c.birthday) = 3`],
      [{ hasMembership: true }, `EXISTS (SELECT 1 FROM membership m WHERE m.customer_id = c.id)`],
      [{ hasMembership: false }, `NOT EXISTS (SELECT 1 FROM membership m WHERE m.customer_id = c.id)`],
      [{ homeStoreId: gid('Store', sh01), hasMembership: true, tag }, `c.home_store_id = '${sh01}' AND EXISTS (SELECT 1 FROM membership m WHERE m.customer_id = c.id) AND '${tag.replace(/'/g, "''")}' = ANY(c.tags)`],
    ];
    for (const [filter, where] of cases) {
      const expected = await sqlIds(where);
      expect(expected.length, JSON.stringify(filter)).toBeGreaterThan(0);
      expect(await pageAll(filter, null, 'OWNER', 100), JSON.stringify(filter)).toEqual(expected);
    }
  });

  test('filters by last-visit range (from inclusive, to exclusive)', async () => {
    const [{ at }] = await api.owner.$queryRawUnsafe<{ at: Date }[]>(
      `SELECT last_visit_at AS at FROM customer_fact WHERE org_id = '${chainId}' AND last_visit_at IS NOT NULL ORDER BY last_visit_at LIMIT 1 OFFSET 40`,
    );
    const to = new Date(at.getTime() + 45 * 86_400_000);
    const ids = await pageAll({ lastVisitFrom: at.toISOString(), lastVisitTo: to.toISOString() }, { field: 'LAST_VISIT_AT', direction: 'DESC' });
    const expected = await sqlIds(`f.last_visit_at >= $1 AND f.last_visit_at < $2`, 'f.last_visit_at DESC NULLS LAST, c.id DESC', at, to);
    expect(expected.length).toBeGreaterThan(1);
    expect(ids).toEqual(expected);
    expect(await pageAll({ lastVisitTo: at.toISOString() })).toEqual(await sqlIds(`f.last_visit_at < $1`, undefined, at));
  });

  test('a customer sees only themself; another organization sees none of these customers', async () => {
    const me = (api.principals.CUSTOMER as { customerId: string }).customerId;
    expect(await pageAll(null, null, 'CUSTOMER')).toEqual([me]);
    const theirs = await pageAll(null, null, 'OTHER_CHAIN_OWNER');
    const ours = new Set(await sqlIds('true'));
    expect(theirs.length).toBeGreaterThan(0);
    expect(theirs.filter((id) => ours.has(id))).toEqual([]);
    expect(await pageAll({ homeStoreId: gid('Store', sh01) }, null, 'OTHER_CHAIN_OWNER')).toEqual([]);
  });
});
