import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { gid, startTestPlatform, type TestPlatform } from '../testing/platform.ts';
import { localDate } from './local-time.ts';
import { formatMemberNumber } from './membership.ts';

// --- GraphQL documents ---------------------------------------------------------------------------------------

const ENROLL = `mutation($input: EnrollMembershipInput!) { enrollMembership(input: $input) {
  membership { id memberNumber joinedOn status homeStore { id } customer { id membership { memberNumber } } }
  userErrors { __typename code message field } } }`;

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

beforeAll(async () => {
  api = await startTestPlatform();
  chainId = api.principals.OWNER!.orgId;
  otherChainId = api.principals.OTHER_CHAIN_OWNER!.orgId;
  const store = async (orgId: string, code?: string) =>
    (await api.owner.store.findFirstOrThrow({ where: { orgId, ...(code ? { code } : {}) }, orderBy: { code: 'asc' } })).id;
  sh01 = await store(chainId, 'SH-01');
  bj01 = await store(chainId, 'BJ-01');
  otherStore = await store(otherChainId);
});
afterAll(() => api?.close());

async function call(document: string, variables: Record<string, unknown>, as: As = 'OWNER') {
  const response = await api.gql(document, variables, as);
  expect(response.errors).toBeUndefined();
  return Object.values(response.data!)[0] as any;
}

const enroll = (customerId: string, as: As = 'OWNER', homeStoreId?: string) =>
  call(ENROLL, { input: { customerId: gid('Customer', customerId), ...(homeStoreId ? { homeStoreId: gid('Store', homeStoreId) } : {}) } }, as);

let phoneSequence = 0;
async function newCustomer(options: { orgId?: string; homeStoreId?: string | null } = {}) {
  const orgId = options.orgId ?? chainId;
  phoneSequence += 1;
  const customer = await api.owner.customer.create({
    data: {
      orgId,
      name: `Member test ${randomUUID().slice(0, 8)}`,
      phone: `+86199${String(phoneSequence).padStart(8, '0')}`,
      homeStoreId: options.homeStoreId === undefined ? (orgId === chainId ? sh01 : otherStore) : options.homeStoreId,
    },
  });
  await api.owner.customerFact.create({ data: { customerId: customer.id, orgId } });
  return customer.id;
}

/** The organization's member-number counter (0 before its first member). */
async function counter(orgId = chainId): Promise<number> {
  const row = await api.owner.orgCounter.findUnique({ where: { orgId_name: { orgId, name: 'member_number' } } });
  return Number(row?.value ?? 0n);
}

/**
 * The state of the tables a mutation could touch: equal fingerprints mean no row was inserted, updated or deleted
 * (every insert or update stamps a row version with a newer transaction id than any before it; a delete lowers the count).
 */
async function fingerprint(): Promise<Record<string, string>> {
  const tables = ['membership', 'org_counter', 'customer', 'customer_fact', 'domain_event'];
  const rows = await api.owner.$queryRawUnsafe<{ t: string; h: string }[]>(
    tables.map((t) => `SELECT '${t}' AS t, count(*) || ':' || coalesce(max(xmin::text::bigint), 0) AS h FROM ${t}`).join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [r.t, r.h]));
}

async function expectRejected(input: Record<string, unknown>, as: As, expected: ExpectedError) {
  const before = await fingerprint();
  const payload = await call(ENROLL, { input }, as);
  expect(payload.userErrors).toEqual([expect.objectContaining({ field: null, ...expected })]);
  expect(payload.membership).toBeNull();
  expect(await fingerprint()).toEqual(before);
  return payload.userErrors[0];
}

async function writer(table: string, keyColumn: string, key: string | bigint): Promise<string> {
  const [row] = await api.owner.$queryRawUnsafe<{ xmin: string }[]>(`SELECT xmin::text FROM ${table} WHERE ${keyColumn}::text = $1`, String(key));
  return row!.xmin;
}

const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;
const notFound = (field: string): ExpectedError => ({ __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', field] });
const FORBIDDEN: ExpectedError = { __typename: 'ForbiddenError', code: 'FORBIDDEN' };
const ALREADY_MEMBER: ExpectedError = { __typename: 'ConflictError', code: 'ALREADY_MEMBER', field: ['input', 'customerId'] };

// --- enrollMembership ----------------------------------------------------------------------------------------

describe('enrollMembership', () => {
  test('the seed numbered its members M00000001…M00000193 and left the counter there', async () => {
    const seeded = await api.owner.membership.findMany({
      where: { orgId: chainId, customer: { name: { not: { startsWith: 'Member test' } } } },
      select: { memberNumber: true },
    });
    const numbers = seeded.map((m) => m.memberNumber).sort();
    expect(numbers).toHaveLength(193);
    expect(numbers[0]).toBe('M00000001');
    expect(numbers.at(-1)).toBe('M00000193');
    expect(await counter()).toBeGreaterThanOrEqual(193);
  });

  test('enrols with the next number of the organization; membership.enrolled in the same transaction', async () => {
    const customer = await newCustomer({ homeStoreId: bj01 });
    const [{ max }] = await api.owner.$queryRawUnsafe<{ max: string }[]>(`SELECT max(member_number) AS max FROM membership WHERE org_id = '${chainId}'`);
    const next = formatMemberNumber(Number(max.slice(1)) + 1);
    const before = await counter();
    expect(formatMemberNumber(before)).toBe(max);

    const payload = await enroll(customer, 'FRONT_DESK', sh01);
    expect(payload.userErrors).toEqual([]);
    const store = await api.owner.store.findUniqueOrThrow({ where: { id: sh01 } });
    expect(payload.membership).toMatchObject({
      memberNumber: next,
      joinedOn: localDate(store.timezone),
      status: 'ACTIVE',
      homeStore: { id: gid('Store', sh01) },
      customer: { id: gid('Customer', customer), membership: { memberNumber: next } },
    });
    expect(await counter()).toBe(before + 1);

    const id = uuidOf(payload.membership.id);
    const row = await api.owner.membership.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ orgId: chainId, customerId: customer, homeStoreId: sh01, memberNumber: next, status: 'ACTIVE' });
    const events = await api.owner.domainEvent.findMany({ where: { aggregateId: id } });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'membership.enrolled',
      aggregateType: 'Membership',
      streamKey: customer,
      actor: `staff:${(api.principals.FRONT_DESK as { staffId: string }).staffId}`,
      payload: { membershipId: id, customerId: customer, homeStoreId: sh01, memberNumber: next },
    });
    const tx = await writer('membership', 'id', id);
    expect(await writer('domain_event', 'id', events[0]!.id)).toBe(tx);
    expect(await writer('org_counter', 'org_id', chainId)).toBe(tx);
  });

  test("the home store defaults to the customer's; numbers follow one another", async () => {
    const [a, b] = [await newCustomer({ homeStoreId: bj01 }), await newCustomer()];
    const first = await enroll(a);
    const second = await enroll(b);
    expect(first.membership.homeStore).toEqual({ id: gid('Store', bj01) });
    expect(second.membership.homeStore).toEqual({ id: gid('Store', sh01) });
    expect(Number(second.membership.memberNumber.slice(1))).toBe(Number(first.membership.memberNumber.slice(1)) + 1);
  });

  test('each organization has its own sequence', async () => {
    const theirs = await counter(otherChainId);
    const ours = await counter();
    const payload = await enroll(await newCustomer({ orgId: otherChainId }), 'OTHER_CHAIN_OWNER');
    expect(payload.userErrors).toEqual([]);
    expect(payload.membership.memberNumber).toBe(formatMemberNumber(theirs + 1));
    expect(await counter()).toBe(ours);
  });

  test('a second enrolment is ALREADY_MEMBER and uses no number', async () => {
    const customer = await newCustomer();
    expect((await enroll(customer)).userErrors).toEqual([]);
    const before = await counter();
    await expectRejected({ customerId: gid('Customer', customer) }, 'OWNER', ALREADY_MEMBER);
    await expectRejected({ customerId: gid('Customer', customer), homeStoreId: gid('Store', bj01) }, 'OWNER', ALREADY_MEMBER);
    expect(await counter()).toBe(before);
  });

  test('ten concurrent enrolments of one customer make one membership and use one number', async () => {
    const customer = await newCustomer();
    const before = await counter();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => enroll(customer, i % 2 ? 'FRONT_DESK' : 'OWNER')));
    const enrolled = results.filter((r) => r.userErrors.length === 0);
    expect(enrolled).toHaveLength(1);
    for (const rejected of results.filter((r) => r.userErrors.length > 0)) {
      expect(rejected.userErrors).toEqual([expect.objectContaining(ALREADY_MEMBER)]);
    }
    expect(await api.owner.membership.count({ where: { customerId: customer } })).toBe(1);
    expect(enrolled[0].membership.memberNumber).toBe(formatMemberNumber(before + 1));
    expect(await counter()).toBe(before + 1);
    expect(await api.owner.domainEvent.count({ where: { type: 'membership.enrolled', streamKey: customer } })).toBe(1);
  });

  test('ten concurrent enrolments of different customers get ten consecutive numbers', async () => {
    const customers = await Promise.all(Array.from({ length: 10 }, () => newCustomer()));
    const before = await counter();
    const results = await Promise.all(customers.map((customer) => enroll(customer)));
    for (const result of results) expect(result.userErrors).toEqual([]);
    const numbers = results.map((r) => r.membership.memberNumber).sort();
    expect(numbers).toEqual(Array.from({ length: 10 }, (_, i) => formatMemberNumber(before + 1 + i)));
    expect(await counter()).toBe(before + 10);
  });

  test.each<[string, () => Promise<Record<string, unknown>>, As, ExpectedError]>([
    ['an unknown customer', async () => ({ customerId: gid('Customer', randomUUID()) }), 'OWNER', notFound('customerId')],
    ["another tenant's customer", async () => ({ customerId: gid('Customer', await newCustomer({ orgId: otherChainId })) }), 'OWNER', notFound('customerId')],
    ['a Lumière customer, by the other chain', async () => ({ customerId: gid('Customer', await newCustomer()) }), 'OTHER_CHAIN_OWNER', notFound('customerId')],
    ['a Lumière customer, by partner-clinic staff', async () => ({ customerId: gid('Customer', await newCustomer()) }), 'CLINIC_STAFF', notFound('customerId')],
    ['a customer without a home store, none given', async () => ({ customerId: gid('Customer', await newCustomer({ homeStoreId: null })) }), 'OWNER', { __typename: 'ValidationError', code: 'INVALID', field: ['input', 'homeStoreId'] }],
    ['an unknown store', async () => ({ customerId: gid('Customer', await newCustomer()), homeStoreId: gid('Store', randomUUID()) }), 'OWNER', notFound('homeStoreId')],
    ["another tenant's store", async () => ({ customerId: gid('Customer', await newCustomer()), homeStoreId: gid('Store', otherStore) }), 'OWNER', notFound('homeStoreId')],
    ['another store, by the front desk of SH-01', async () => ({ customerId: gid('Customer', await newCustomer()), homeStoreId: gid('Store', bj01) }), 'FRONT_DESK', notFound('homeStoreId')],
    ["another store (the customer's own), by the manager of SH-01", async () => ({ customerId: gid('Customer', await newCustomer({ homeStoreId: bj01 })) }), 'STORE_MANAGER', notFound('homeStoreId')],
    ['the HQ analyst', async () => ({ customerId: gid('Customer', await newCustomer()) }), 'HQ_ANALYST', FORBIDDEN],
    ['a beautician', async () => ({ customerId: gid('Customer', await newCustomer()) }), 'BEAUTICIAN', FORBIDDEN],
    ['a customer token', async () => ({ customerId: gid('Customer', (api.principals.CUSTOMER as { customerId: string }).customerId) }), 'CUSTOMER', FORBIDDEN],
  ])('rejects %s and changes nothing', async (_label, input, as, expected) => {
    await expectRejected(await input(), as, expected);
  });

  test("another tenant's ids answer exactly like ids that do not exist", async () => {
    const unknown = await expectRejected({ customerId: gid('Customer', randomUUID()) }, 'OWNER', notFound('customerId'));
    const foreign = await expectRejected({ customerId: gid('Customer', await newCustomer({ orgId: otherChainId })) }, 'OWNER', notFound('customerId'));
    expect(foreign).toEqual(unknown);
    const unknownStore = await expectRejected({ customerId: gid('Customer', await newCustomer()), homeStoreId: gid('Store', randomUUID()) }, 'OWNER', notFound('homeStoreId'));
    const foreignStore = await expectRejected({ customerId: gid('Customer', await newCustomer()), homeStoreId: gid('Store', otherStore) }, 'OWNER', notFound('homeStoreId'));
    expect(foreignStore).toEqual(unknownStore);
  });
});
