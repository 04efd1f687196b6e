/**
 * Claims refused: each fraud case with its typed error and nothing changed (no referral, no event, no points moved),
 * the claim window, bad and unknown codes, permissions, and other tenants' ids and codes answering exactly like ids
 * and codes that do not exist — for the mutation, the queries, node(id:) and the subscription.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import { expectLedgerConsistent } from '../points/testing.ts';
import { CODE_ALPHABET } from './codes.ts';
import {
  call,
  claim,
  CLAIM,
  codeOf,
  completeVisit,
  DAY_MS,
  expectRejected,
  fingerprint,
  gid,
  newCustomer,
  startReferralsWorld,
  type ReferralsWorld,
} from './testing.ts';

const CAP = 2;
let world: ReferralsWorld;
beforeAll(async () => {
  world = await startReferralsWorld({ monthlyCapPerReferrer: CAP });
});
afterAll(() => world?.api.close());
afterEach(() => expectLedgerConsistent(world.api.owner));

const asCustomer = (customerId: string, orgId = world.chainId): Principal => ({ kind: 'CUSTOMER', orgId, customerId });
const claimInput = async (referrer: string, referee?: string) => ({
  code: await codeOf(world.api.owner, referrer),
  ...(referee ? { customerId: gid('Customer', referee) } : {}),
});
/** A well-formed code that no customer of any organization has. */
async function absentCode(): Promise<string> {
  for (;;) {
    const code = Array.from({ length: 8 }, () => CODE_ALPHABET[Math.floor(Math.random() * CODE_ALPHABET.length)]).join('');
    if (!(await world.api.owner.referralCode.findFirst({ where: { code } }))) return `${code.slice(0, 4)}-${code.slice(4)}`;
  }
}
const referrerNow = () => newCustomer(world, { createdAt: new Date(Date.now() - 5 * DAY_MS) });

describe('fraud checks', () => {
  test('self-referral', async () => {
    const me = await newCustomer(world);
    await expectRejected(world.api, CLAIM, await claimInput(me), asCustomer(me), { __typename: 'SelfReferralError', code: 'SELF_REFERRAL', field: ['input', 'code'] });
    await expectRejected(world.api, CLAIM, await claimInput(me, me), 'FRONT_DESK', { __typename: 'SelfReferralError', code: 'SELF_REFERRAL' });
  });

  test('the same phone: a number that moved from the referrer\'s account to the newcomer\'s', async () => {
    const { api } = world;
    const referrer = await referrerNow();
    const phone = (await api.owner.customer.findUniqueOrThrow({ where: { id: referrer } })).phone;
    // The referrer changes number through the API; the old number registers as a "newcomer".
    const changed = await call(api, `mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { userErrors { code message } } }`, {
      input: { customerId: gid('Customer', referrer), phone: '+8617755556666' },
    });
    expect(changed.userErrors).toEqual([]);
    const referee = await newCustomer(world, { phone });
    await expectRejected(api, CLAIM, await claimInput(referrer, referee), 'FRONT_DESK', { __typename: 'SamePhoneReferralError', code: 'SAME_PHONE' });
    // And the other way round: the newcomer's earlier number is now the referrer's.
    const newcomer = await newCustomer(world, { phone: '+8617755557777' });
    await api.owner.customer.update({ where: { id: newcomer }, data: { phone: '+8617755558888' } });
    const other = await newCustomer(world, { phone: '+8617755557777', createdAt: new Date(Date.now() - DAY_MS) });
    await expectRejected(api, CLAIM, await claimInput(other, newcomer), 'FRONT_DESK', { __typename: 'SamePhoneReferralError', code: 'SAME_PHONE' });
  });

  test('an existing customer being "referred": completed visits before the claim, or registered before the referrer', async () => {
    const { api } = world;
    const referrer = await referrerNow();
    const visited = await newCustomer(world);
    await completeVisit(world, visited, '120.00');
    await expectRejected(api, CLAIM, await claimInput(referrer, visited), 'FRONT_DESK', {
      __typename: 'ExistingCustomerReferralError', code: 'EXISTING_CUSTOMER', basis: 'COMPLETED_VISITS', field: ['input', 'customerId'],
    });
    const older = await newCustomer(world, { createdAt: new Date(Date.now() - 6 * DAY_MS) });
    await expectRejected(api, CLAIM, await claimInput(referrer, older), 'FRONT_DESK', {
      __typename: 'ExistingCustomerReferralError', basis: 'REGISTERED_BEFORE_REFERRER',
    });
    // A demo customer with a year of history: registered long ago, so the claim window is shut before anything else.
    const regular = await api.owner.customer.findFirstOrThrow({ where: { orgId: world.chainId, facts: { visitCount: { gt: 3 } } } });
    await expectRejected(api, CLAIM, await claimInput(referrer, regular.id), 'OWNER', { __typename: 'ReferralClaimWindowClosedError', code: 'CLAIM_WINDOW_CLOSED' });
  });

  test('loops: B refers A after A referred B, and a longer chain back to its start', async () => {
    const { api } = world;
    const a = await newCustomer(world, { createdAt: new Date(Date.now() - 3 * DAY_MS) });
    const b = await newCustomer(world, { createdAt: new Date(Date.now() - 2 * DAY_MS) });
    const c = await newCustomer(world, { createdAt: new Date(Date.now() - DAY_MS) });
    expect((await claim(api, { code: await codeOf(api.owner, a), customerId: b })).userErrors).toEqual([]);
    expect((await claim(api, { code: await codeOf(api.owner, b), customerId: c })).userErrors).toEqual([]);
    await expectRejected(api, CLAIM, await claimInput(b, a), 'FRONT_DESK', { __typename: 'ReferralLoopError', code: 'REFERRAL_LOOP', chainLength: 2 });
    await expectRejected(api, CLAIM, await claimInput(c, a), asCustomer(a), { __typename: 'ReferralLoopError', chainLength: 3 });
  });

  test(`a referrer\'s code is claimed at most ${CAP} times per calendar month, also when claims race`, async () => {
    const { api } = world;
    const referrer = await referrerNow();
    const newcomers = await Promise.all(Array.from({ length: CAP + 3 }, () => newCustomer(world)));
    // A claim last month does not count against this month.
    expect((await claim(api, { code: await codeOf(api.owner, referrer), customerId: newcomers[0]! })).userErrors).toEqual([]);
    await api.owner.$executeRaw`UPDATE referral SET claimed_at = date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' - interval '1 second'
      WHERE referee_id = ${newcomers[0]}::uuid`;
    // The rest claim at once: exactly CAP get through.
    const results = await Promise.all(newcomers.slice(1).map(async (id) => claim(api, { code: await codeOf(api.owner, referrer), customerId: id })));
    const refused = results.filter((r) => r.userErrors.length);
    expect(results.length - refused.length).toBe(CAP);
    const nextMonth = await api.owner.$queryRaw<{ at: Date }[]>`
      SELECT (date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') + interval '1 month') AT TIME ZONE 'Asia/Shanghai' AS at`;
    for (const r of refused) {
      expect(r.userErrors).toEqual([{
        __typename: 'ReferralCapReachedError', code: 'REFERRAL_MONTHLY_CAP', field: ['input', 'code'], limit: CAP,
        resetsAt: nextMonth[0]!.at.toISOString(), message: expect.any(String),
      }]);
    }
    expect(await api.owner.referral.count({ where: { referrerId: referrer } })).toBe(CAP + 1);
    await expectRejected(api, CLAIM, await claimInput(referrer, await newCustomer(world)), 'OWNER', { __typename: 'ReferralCapReachedError', limit: CAP });
  });

  test('the claim window, a second claim, and codes that are malformed or unknown', async () => {
    const { api } = world;
    const referrer = await newCustomer(world, { createdAt: new Date(Date.now() - 60 * DAY_MS) });
    const late = await newCustomer(world, { createdAt: new Date(Date.now() - (world.config.claimWindowDays + 1) * DAY_MS) });
    const error = await expectRejected(api, CLAIM, await claimInput(referrer, late), 'FRONT_DESK', { __typename: 'ReferralClaimWindowClosedError', code: 'CLAIM_WINDOW_CLOSED' });
    expect(new Date(error.closedAt as string).getTime()).toBeLessThan(Date.now());

    const newcomer = await newCustomer(world);
    expect((await claim(api, { code: await codeOf(api.owner, referrer), customerId: newcomer })).userErrors).toEqual([]);
    await expectRejected(api, CLAIM, await claimInput(await referrerNow(), newcomer), 'FRONT_DESK', { __typename: 'ConflictError', code: 'ALREADY_REFERRED' });

    const fresh = await newCustomer(world);
    for (const code of ['', 'ABC', 'ABCD-EFGH-J', 'ABCD-EFG0', 'ilo1-2345']) {
      await expectRejected(api, CLAIM, { code, customerId: gid('Customer', fresh) }, 'FRONT_DESK', { __typename: 'ValidationError', field: ['input', 'code'] });
    }
    const unknown = await absentCode();
    await expectRejected(api, CLAIM, { code: unknown, customerId: gid('Customer', fresh) }, 'FRONT_DESK', { __typename: 'NotFoundError', field: ['input', 'code'] });
  });
});

describe('permissions and other tenants', () => {
  test('staff without referrals:write, and customers acting for others, are refused and change nothing', async () => {
    const { api } = world;
    const referrer = await referrerNow();
    const newcomer = await newCustomer(world);
    await expectRejected(api, CLAIM, await claimInput(referrer, newcomer), 'BEAUTICIAN', { __typename: 'ForbiddenError' });
    await expectRejected(api, CLAIM, await claimInput(referrer, newcomer), 'HQ_ANALYST', { __typename: 'ForbiddenError' });
    // A customer claims for themself only: another customer's id answers like a random one.
    const random = await expectRejected(api, CLAIM, { ...(await claimInput(referrer)), customerId: gid('Customer', randomUUID()) }, asCustomer(newcomer), { __typename: 'NotFoundError' });
    const other = await expectRejected(api, CLAIM, await claimInput(referrer, await newCustomer(world)), asCustomer(newcomer), { __typename: 'NotFoundError' });
    expect(other).toEqual(random);
    await expectRejected(api, CLAIM, await claimInput(referrer), 'FRONT_DESK', { __typename: 'ValidationError', field: ['input', 'customerId'] });
    // A customer claims for themself without naming anyone.
    const mine = await call(api, CLAIM, { input: await claimInput(referrer) }, asCustomer(newcomer));
    expect(mine.userErrors).toEqual([]);
    expect(mine.referral.referee).toEqual({ id: gid('Customer', newcomer) });
  });

  test('another organization\'s customers and codes answer exactly like ones that do not exist', async () => {
    const { api } = world;
    const ours = await referrerNow();
    const theirs = await newCustomer(world, { orgId: world.otherChainId, createdAt: new Date(Date.now() - 5 * DAY_MS) });
    const theirNewcomer = await newCustomer(world, { orgId: world.otherChainId });
    const ourNewcomer = await newCustomer(world);
    const missingCustomer = await expectRejected(api, CLAIM, { ...(await claimInput(ours)), customerId: gid('Customer', randomUUID()) }, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' });
    // Their owner naming our newcomer, with their own code.
    expect(await expectRejected(api, CLAIM, await claimInput(theirs, ourNewcomer), 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' })).toEqual(missingCustomer);
    // Our front desk using their code for our newcomer: like an unknown code.
    const unknownCode = await expectRejected(api, CLAIM, { code: await absentCode(), customerId: gid('Customer', ourNewcomer) }, 'FRONT_DESK', { __typename: 'NotFoundError' });
    expect(await expectRejected(api, CLAIM, await claimInput(theirs, ourNewcomer), 'FRONT_DESK', { __typename: 'NotFoundError' })).toEqual(unknownCode);
    // Their own claim works in their organization; ours then cannot see it anywhere.
    const theirClaim = await call(api, CLAIM, { input: await claimInput(theirs, theirNewcomer) }, 'OTHER_CHAIN_OWNER');
    expect(theirClaim.userErrors).toEqual([]);
    const foreign = theirClaim.referral.id as string;
    const read = `query($id: ID!) { node(id: $id) { id } referrals(first: 100) { edges { node { id } } totalCount } }`;
    for (const as of ['OWNER', 'HQ_ANALYST', 'FRONT_DESK', 'CUSTOMER'] as const) {
      const seen = await call(api, `query($id: ID!) { node(id: $id) { id } }`, { id: foreign }, as);
      const missing = await call(api, `query($id: ID!) { node(id: $id) { id } }`, { id: gid('Referral', randomUUID()) }, as);
      expect(seen).toBeNull();
      expect(missing).toBeNull();
      const listed = await api.gql(read, { id: foreign }, as);
      expect(listed.errors).toBeUndefined();
      expect(listed.data.referrals.edges.map((e: any) => e.node.id)).not.toContain(foreign);
    }
    const rejected = await expectRejected(api, `mutation($input: RejectReferralInput!) { rejectReferral(input: $input) { referral { id } userErrors { __typename code message field } } }`,
      { referralId: foreign, reason: 'probing another chain' }, 'OWNER', { __typename: 'NotFoundError' });
    expect(rejected.message).toBe('Referral not found');
  });

  test('a customer sees the referrals they are on either side of; staff who read customers see all; the subscription follows the same rules', async () => {
    const { api } = world;
    const referrer = await referrerNow();
    const newcomer = await newCustomer(world);
    const bystander = await newCustomer(world);
    const claimed = await claim(api, { code: await codeOf(api.owner, referrer), customerId: newcomer });
    const id = claimed.referral.id as string;
    const list = `{ referrals(first: 100) { edges { node { id referrer { id } referee { id } refereeName rejectionReason } } } }`;
    const forReferrer = await call(api, list, {}, asCustomer(referrer));
    expect(forReferrer.edges.map((e: any) => e.node.id)).toEqual([id]);
    // The referrer cannot open the newcomer's customer record; they see a masked name.
    expect(forReferrer.edges[0].node.referee).toBeNull();
    expect(forReferrer.edges[0].node.refereeName).toMatch(/^推\*+$/);
    expect((await call(api, list, {}, asCustomer(newcomer))).edges.map((e: any) => e.node.id)).toEqual([id]);
    expect((await call(api, list, {}, asCustomer(bystander))).edges).toEqual([]);
    expect(await call(api, `query($id: ID!) { node(id: $id) { id } }`, { id }, asCustomer(bystander))).toBeNull();
    // An API client reads referrals with the customers:read scope, and without it sees none.
    const pos = api.principals.POS_CLIENT as Extract<Principal, { kind: 'API_CLIENT' }>;
    expect((await call(api, list, {}, pos)).edges.map((e: any) => e.node.id)).toContain(id);
    expect((await call(api, list, {}, { ...pos, scopes: ['visits:read'] })).edges).toEqual([]);

    // Subscribing to someone else's referrals: refused like a customer that does not exist.
    const subscribe = async (as: Principal | 'OTHER_CHAIN_OWNER', customerId: string) => {
      const client = await api.ws(as);
      return new Promise<unknown>((resolve) => {
        const stop = client.subscribe({ query: `subscription($id: ID!) { referralUpdated(customerId: $id) { type } }`, variables: { id: gid('Customer', customerId) } }, {
          next: (value) => { stop(); resolve(value); },
          error: (error) => resolve(error),
          complete: () => resolve('complete'),
        });
      });
    };
    const random = await subscribe(asCustomer(bystander), randomUUID());
    expect(await subscribe(asCustomer(bystander), referrer)).toEqual(random);
    expect(await subscribe('OTHER_CHAIN_OWNER', referrer)).toEqual(random);
    expect(JSON.stringify(random)).toContain('NOT_FOUND');
  });

  test('nothing about a refused claim is left behind, however it is refused', async () => {
    const before = await fingerprint(world.api.owner);
    const referrer = await referrerNow();
    const newcomer = await newCustomer(world);
    const after = await fingerprint(world.api.owner);
    // Arranging the two customers wrote their codes and phones (the triggers) and nothing else.
    for (const table of ['referral', 'points_entry', 'domain_event', 'referral_partner_level']) expect(after[table]).toBe(before[table]);
    expect(after.referral_code).not.toBe(before.referral_code);
    await expectRejected(world.api, CLAIM, await claimInput(newcomer, referrer), 'OWNER', { __typename: 'ExistingCustomerReferralError' });
  });
});
