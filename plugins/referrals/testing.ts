/**
 * Shared arrangements and checks for the referrals plugin's tests (not a test file itself). Everything talks to the
 * real test database: customers and memberships are arranged with the owner client (the migration's trigger gives
 * each customer a code, as in production), visits are completed through the API, and event handlers run as the worker
 * runs them.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { startTestPlatform, gid, type TestPlatform } from '../../core/testing/platform.ts';
import type { PointsConfig } from '../points/config.ts';
import type { ReferralsConfig } from './config.ts';

export { gid };
export type As = Parameters<TestPlatform['gql']>[2];
export type Owner = TestPlatform['owner'];
export const DAY_MS = 86_400_000;

export interface ReferralsWorld {
  api: TestPlatform;
  config: ReferralsConfig;
  points: PointsConfig;
  chainId: string;
  otherChainId: string;
  stores: { SH: string; BJ: string; CD: string; UR: string };
  otherStore: string;
  service: { id: string; priceMinor: number };
}

export async function startReferralsWorld(
  config: Record<string, unknown> = {},
  pointsConfig: Record<string, unknown> = {},
): Promise<ReferralsWorld> {
  const api = await startTestPlatform({ plugins: ['points', 'referrals'], pluginConfig: { points: pointsConfig, referrals: config } });
  const chainId = api.principals.OWNER!.orgId;
  const otherChainId = api.principals.OTHER_CHAIN_OWNER!.orgId;
  const store = async (code: string) => (await api.owner.store.findFirstOrThrow({ where: { orgId: chainId, code } })).id;
  const loaded = (name: string) => api.running.platform.plugins.find((p) => p.definition.name === name)!.config;
  const service = await api.owner.service.findFirstOrThrow({ where: { orgId: chainId, name: { contains: 'Hydrating facial' } } });
  return {
    api,
    config: loaded('referrals') as ReferralsConfig,
    points: loaded('points') as PointsConfig,
    chainId,
    otherChainId,
    stores: { SH: await store('SH-01'), BJ: await store('BJ-01'), CD: await store('CD-01'), UR: await store('UR-01') },
    otherStore: (await api.owner.store.findFirstOrThrow({ where: { orgId: otherChainId } })).id,
    service: { id: service.id, priceMinor: service.priceMinor },
  };
}

let phoneSequence = 0;
export function freshPhone(): string {
  phoneSequence += 1;
  return `+86199${String(process.pid % 1000).padStart(3, '0')}${String(phoneSequence).padStart(5, '0')}`;
}

/** A customer registered `daysAgo` days ago (now by default), optionally a member. */
export async function newCustomer(
  world: ReferralsWorld,
  options: { orgId?: string; storeId?: string | null; member?: boolean; createdAt?: Date; phone?: string; name?: string } = {},
): Promise<string> {
  const orgId = options.orgId ?? world.chainId;
  const storeId = options.storeId === undefined ? (orgId === world.chainId ? world.stores.SH : world.otherStore) : options.storeId;
  const customer = await world.api.owner.customer.create({
    data: {
      orgId,
      name: options.name ?? `推荐 Test ${randomUUID().slice(0, 6)}`,
      phone: options.phone ?? freshPhone(),
      homeStoreId: storeId,
      source: 'REFERRAL',
      createdAt: options.createdAt ?? new Date(),
    },
  });
  await world.api.owner.customerFact.create({ data: { customerId: customer.id, orgId } });
  if (options.member ?? true) await enrol(world, customer.id, { orgId, storeId: storeId ?? world.stores.SH, quiet: true });
  return customer.id;
}

/** Enrols a customer (owner insert). `quiet` skips the membership.enrolled event; otherwise it is recorded for the worker. */
export async function enrol(world: ReferralsWorld, customerId: string, options: { orgId?: string; storeId?: string; quiet?: boolean } = {}) {
  const orgId = options.orgId ?? world.chainId;
  const storeId = options.storeId ?? world.stores.SH;
  const membership = await world.api.owner.membership.create({
    data: { orgId, customerId, homeStoreId: storeId, memberNumber: `R${randomUUID().slice(0, 12)}`, joinedOn: new Date() },
  });
  if (!options.quiet) {
    await world.api.owner.domainEvent.create({
      data: {
        orgId,
        type: 'membership.enrolled',
        aggregateType: 'Membership',
        aggregateId: membership.id,
        streamKey: customerId,
        payload: { membershipId: membership.id, customerId, homeStoreId: storeId, memberNumber: membership.memberNumber },
        actor: 'test:arrange',
      },
    });
  }
  return membership.id;
}

export async function codeOf(owner: Owner, customerId: string): Promise<string> {
  return (await owner.referralCode.findUniqueOrThrow({ where: { customerId } })).code;
}

/** Books, checks in and completes a visit through the API (as the owner), for `amount` (a decimal string). */
export async function completeVisit(world: ReferralsWorld, customerId: string, amount: string, storeId = world.stores.SH): Promise<string> {
  const { api } = world;
  const visit = await api.owner.visit.create({
    data: {
      orgId: world.chainId,
      storeId,
      customerId,
      status: 'BOOKED',
      scheduledStart: new Date(Date.now() - 3_600_000),
      scheduledEnd: new Date(Date.now() - 1_800_000),
    },
  });
  const checkedIn = await call(api, CHECK_IN, { input: { visitId: gid('Visit', visit.id), idempotencyKey: key('in') } });
  expect(checkedIn.userErrors).toEqual([]);
  const completed = await call(api, COMPLETE, {
    input: {
      visitId: gid('Visit', visit.id),
      idempotencyKey: key('done'),
      lineItems: [{ serviceId: gid('Service', world.service.id), unitPrice: amount }],
    },
  });
  expect(completed.userErrors).toEqual([]);
  return visit.id;
}

export async function balanceOf(owner: Owner, customerId: string): Promise<number | null> {
  return (await owner.pointsAccount.findUnique({ where: { customerId } }))?.balance ?? null;
}

/** Every row of the tables a referral operation could touch, hashed: equal fingerprints mean nothing changed. */
export async function fingerprint(owner: Owner): Promise<Record<string, string>> {
  const tables = [
    'referral', 'referral_code', 'referral_phone', 'referral_partner_level',
    'points_account', 'points_entry', 'points_lot', 'points_allocation',
    'domain_event', 'processed_event', 'idempotency_record',
  ];
  const rows = await owner.$queryRawUnsafe<{ t: string; h: string }[]>(
    tables
      .map((t) => `SELECT '${t}' AS t, count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM ${t} x`)
      .join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [r.t, r.h]));
}

export const key = (label = 'k') => `${label}-${randomUUID()}`;
export const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

/** Runs a document and returns its single root field; GraphQL-level errors fail the test. */
export async function call(api: TestPlatform, document: string, variables: Record<string, unknown> = {}, as: As = 'OWNER') {
  const response = await api.gql(document, variables, as);
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return Object.values(response.data!)[0] as any;
}

export const ERRORS = `userErrors { __typename code message field
  ... on ExistingCustomerReferralError { basis }
  ... on ReferralLoopError { chainLength }
  ... on ReferralCapReachedError { limit resetsAt }
  ... on ReferralClaimWindowClosedError { closedAt } }`;

export const REFERRAL_FIELDS = `id status code claimedAt qualifyBy qualifiedAt rewardedAt expiredAt rejectedAt rejectionCode rejectionReason
  referrerPoints refereePoints referrerRewarded refereeRewarded refereeName
  referrer { id } referee { id } store { code } qualifyingVisit { id } qualifyingAmount { amount }`;

export const CLAIM = `mutation($input: ClaimReferralInput!) { claimReferral(input: $input) { referral { ${REFERRAL_FIELDS} } ${ERRORS} } }`;
export const REJECT = `mutation($input: RejectReferralInput!) { rejectReferral(input: $input) { referral { ${REFERRAL_FIELDS} } ${ERRORS} } }`;
const CHECK_IN = `mutation($input: CheckInVisitInput!) { checkInVisit(input: $input) { userErrors { code message } } }`;
const COMPLETE = `mutation($input: CompleteVisitInput!) { completeVisit(input: $input) { userErrors { code message field } } }`;
export const REFUND = `mutation($input: RefundVisitInput!) { refundVisit(input: $input) { userErrors { code message } } }`;

export function claim(api: TestPlatform, args: { code: string; customerId?: string }, as: As = 'FRONT_DESK') {
  return call(api, CLAIM, { input: { code: args.code, ...(args.customerId ? { customerId: gid('Customer', args.customerId) } : {}) } }, as);
}

/** Sends a mutation that must fail with one typed user error, and checks that no row changed (and no points moved). */
export async function expectRejected(
  api: TestPlatform,
  document: string,
  input: Record<string, unknown>,
  as: As,
  expected: { __typename: string; code?: string; [field: string]: unknown },
) {
  const before = await fingerprint(api.owner);
  const payload = await call(api, document, { input }, as);
  expect(payload.userErrors).toHaveLength(1);
  expect(payload.userErrors[0]).toMatchObject(expected);
  expect(Object.values(payload).filter((value) => value !== null && !Array.isArray(value))).toEqual([]);
  expect(await fingerprint(api.owner)).toEqual(before);
  return payload.userErrors[0];
}

// --- Subscriptions --------------------------------------------------------------------------------------------

export const PROBE = 'referral.testProbe';

/** Collects a subscription's results; `until` waits for a condition (results arrive over a real socket). */
export function watch(client: import('graphql-ws').Client, query: string, variables: Record<string, unknown>) {
  const results: { data?: any; errors?: any[] }[] = [];
  const failures: unknown[] = [];
  const stop = client.subscribe({ query, variables }, {
    next: (result) => void results.push(result as never),
    error: (error) => void failures.push(error),
    complete: () => {},
  });
  const until = async (check: () => boolean, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (failures.length || Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return true;
  };
  return { results, failures, stop, until };
}

/**
 * Publishes probe events (as the platform publishes committed events) until the subscription delivers one, so what
 * follows cannot be missed because the subscription was not live yet.
 */
export async function untilLive(world: ReferralsWorld, sub: ReturnType<typeof watch>, referrerId: string) {
  for (let attempt = 0; attempt < 60; attempt++) {
    world.api.running.platform.publish({
      id: '0',
      orgId: world.chainId,
      actor: 'test',
      type: PROBE,
      aggregateType: 'Referral',
      aggregateId: randomUUID(),
      streamKey: referrerId,
      payload: { customerId: referrerId },
      occurredAt: new Date().toISOString(),
    });
    if (await sub.until(() => sub.results.length > 0, 250)) return;
    if (sub.failures.length) break;
  }
  throw new Error(`subscription did not go live: ${JSON.stringify(sub.failures)}`);
}
