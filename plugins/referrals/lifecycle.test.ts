/**
 * The referral lifecycle against the real database, through the API and the worker: codes, claim, qualification on
 * the first paid visit (delivered twice, and racing: rewarded once), two-sided points through the ledger, the
 * newcomer spending them on their first order, payment on enrolment for a newcomer who was not a member, expiry,
 * rejection (refund of the qualifying visit, a phone moved between the accounts, a manager's report) with points taken
 * back, the referrer's live feed, and the dependency on the points plugin.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { PLUGINS_DIR } from '../../core/bootstrap.ts';
import { inTransaction, toDomainEvent, type DomainEvent } from '../../core/events/outbox.ts';
import { runHandler } from '../../core/events/worker.ts';
import type { EventHandler } from '../../core/plugin/contract.ts';
import { loadPlugins, PluginConfigurationError } from '../../core/plugin/loader.ts';
import { expectLedgerConsistent } from '../points/testing.ts';
import { CODE_ALPHABET } from './codes.ts';
import { qualifyOnVisit } from './lifecycle.ts';
import referralsPlugin from './plugin.ts';
import {
  balanceOf,
  call,
  claim,
  codeOf,
  completeVisit,
  DAY_MS,
  enrol,
  expectRejected,
  gid,
  key,
  newCustomer,
  PROBE,
  REFUND,
  REJECT,
  startReferralsWorld,
  untilLive,
  watch,
  type ReferralsWorld,
} from './testing.ts';

let world: ReferralsWorld;
beforeAll(async () => {
  world = await startReferralsWorld();
});
afterAll(() => world?.api.close());
afterEach(() => expectLedgerConsistent(world.api.owner));

const platform = () => world.api.running.platform;
const handler = (type: string) => referralsPlugin.handlers![type] as EventHandler<unknown>;

async function referralOf(refereeId: string) {
  return world.api.owner.referral.findUniqueOrThrow({ where: { orgId_refereeId: { orgId: world.chainId, refereeId } } });
}

/** REFERRAL entries of a customer, oldest first. */
async function referralEntries(customerId: string) {
  return world.api.owner.pointsEntry.findMany({ where: { customerId, source: 'REFERRAL' }, orderBy: { id: 'asc' } });
}

async function eventsOf(referralId: string) {
  return world.api.owner.domainEvent.findMany({ where: { aggregateId: referralId }, orderBy: { id: 'asc' } });
}

async function visitCompletedEvent(visitId: string): Promise<DomainEvent> {
  return toDomainEvent(await world.api.owner.domainEvent.findFirstOrThrow({ where: { type: 'visit.completed', aggregateId: visitId } }));
}

/** A referrer registered earlier and a newcomer who claims their code (both members unless told). */
async function claimedPair(options: { refereeMember?: boolean } = {}) {
  const referrer = await newCustomer(world, { createdAt: new Date(Date.now() - 10 * DAY_MS) });
  const referee = await newCustomer(world, { member: options.refereeMember ?? true });
  const claimed = await claim(world.api, { code: await codeOf(world.api.owner, referrer), customerId: referee });
  expect(claimed.userErrors).toEqual([]);
  return { referrer, referee, referralId: world.api.owner.referral.findUniqueOrThrow({ where: { orgId_refereeId: { orgId: world.chainId, refereeId: referee } } }).then((r) => r.id) };
}

describe('codes', () => {
  test('every customer has a stable code of unambiguous characters, unique in the organization', async () => {
    const { api } = world;
    // The demo customers existed before any claim: the migration's trigger coded each one as it was created.
    const [counts] = await api.owner.$queryRaw<{ customers: number; coded: number; distinct: number; bad: number }[]>`
      SELECT (SELECT count(*) FROM customer)::int AS customers,
             (SELECT count(*) FROM referral_code)::int AS coded,
             (SELECT count(DISTINCT (org_id, code)) FROM referral_code)::int AS distinct,
             (SELECT count(*) FROM referral_code c JOIN customer u ON u.id = c.customer_id WHERE c.org_id <> u.org_id)::int AS bad`;
    expect(counts!.coded).toBe(counts!.customers);
    expect(counts!.distinct).toBe(counts!.coded);
    expect(counts!.bad).toBe(0);
    const codes = await api.owner.referralCode.findMany({ select: { code: true } });
    const allowed = new RegExp(`^[${CODE_ALPHABET}]{8}$`);
    expect(codes.every(({ code }) => allowed.test(code) && !/[01ILO]/.test(code))).toBe(true);

    const customerId = await newCustomer(world);
    const query = `query($id: ID!) { node(id: $id) { ... on Customer { referralProfile { code } } } }`;
    const first = await call(api, query, { id: gid('Customer', customerId) }, 'FRONT_DESK');
    const again = await call(api, query, { id: gid('Customer', customerId) }, 'OWNER');
    const stored = await codeOf(api.owner, customerId);
    expect(first.referralProfile.code).toBe(`${stored.slice(0, 4)}-${stored.slice(4)}`);
    expect(again).toEqual(first);
    // Changing the customer does not change the code.
    await api.owner.customer.update({ where: { id: customerId }, data: { name: 'Renamed', phone: '+8617700000001' } });
    expect(await codeOf(api.owner, customerId)).toBe(stored);
  });
});

describe('the lifecycle', () => {
  test('claim → first paid visit → qualified → rewarded: both sides get equal points once, and the newcomer spends them on the first order', async () => {
    const { api } = world;
    const referrer = await newCustomer(world, { createdAt: new Date(Date.now() - 30 * DAY_MS) });
    const referee = await newCustomer(world, { name: '王丽华' });
    const code = await codeOf(api.owner, referrer);

    const feed = watch(await api.ws({ kind: 'CUSTOMER', orgId: world.chainId, customerId: referrer }), `subscription($id: ID!) {
      referralUpdated(customerId: $id) { type referral { status refereeName referee { id } referrerPoints } } }`, { id: gid('Customer', referrer) });
    await untilLive(world, feed, referrer);

    // Typed by the front desk as the customer said it: lower case, with a space instead of the dash.
    const claimed = await claim(api, { code: `${code.slice(0, 4).toLowerCase()} ${code.slice(4)}`, customerId: referee });
    expect(claimed.userErrors).toEqual([]);
    expect(claimed.referral).toMatchObject({
      status: 'PENDING',
      code: `${code.slice(0, 4)}-${code.slice(4)}`,
      referrer: { id: gid('Customer', referrer) },
      referee: { id: gid('Customer', referee) },
      refereeName: '王**',
      store: { code: 'SH-01' },
      qualifiedAt: null,
      referrerPoints: null,
    });
    expect(new Date(claimed.referral.qualifyBy).getTime() - new Date(claimed.referral.claimedAt).getTime()).toBe(world.config.qualifyWithinDays * DAY_MS);
    const referralId = (await referralOf(referee)).id;

    // A visit under the minimum is not the qualifying one.
    await completeVisit(world, referee, '50.00');
    await api.drainJobs();
    expect((await referralOf(referee)).status).toBe('PENDING');
    expect(await referralEntries(referee)).toEqual([]);

    const before = { referrer: (await balanceOf(api.owner, referrer))!, referee: (await balanceOf(api.owner, referee))! };
    const visitId = await completeVisit(world, referee, '380.00');
    await api.drainJobs();
    const rewarded = await referralOf(referee);
    expect(rewarded).toMatchObject({
      status: 'REWARDED',
      qualifyingVisitId: visitId,
      qualifyingAmountMinor: 38_000n,
      referrerPoints: 500,
      refereePoints: 500,
    });
    const [referrerEntry] = await referralEntries(referrer);
    const [refereeEntry] = await referralEntries(referee);
    expect([referrerEntry, refereeEntry].map((e) => [e!.kind, e!.amount, e!.sourceRef, e!.dedupeKey])).toEqual([
      ['EARN', 500, referralId, `referral:${referralId}:referrer`],
      ['EARN', 500, referralId, `referral:${referralId}:referee`],
    ]);
    expect([rewarded.referrerEntryId, rewarded.refereeEntryId]).toEqual([referrerEntry!.id, refereeEntry!.id]);
    // The referrer's balance moved by the reward alone; the newcomer's by the reward and the visit's own points.
    expect(await balanceOf(api.owner, referrer)).toBe(before.referrer + 500);
    const visitPoints = (await api.owner.pointsEntry.findFirstOrThrow({ where: { dedupeKey: `visit:${visitId}:earn` } })).amount;
    expect(await balanceOf(api.owner, referee)).toBe(before.referee + visitPoints + 500);
    // A normal lot: it expires after the points plugin's lot lifetime, in the store's calendar.
    const lot = await api.owner.pointsLot.findUniqueOrThrow({ where: { earnEntryId: refereeEntry!.id } });
    const months = (lot.expiresAt.getUTCFullYear() - lot.earnedAt.getUTCFullYear()) * 12 + lot.expiresAt.getUTCMonth() - lot.earnedAt.getUTCMonth();
    expect(Math.abs(months - world.points.lotLifetimeMonths)).toBeLessThanOrEqual(1);

    const events = await eventsOf(referralId);
    expect(events.map((e) => e.type)).toEqual(['referral.claimed', 'referral.qualified', 'referral.rewarded']);
    for (const event of events) {
      expect(event.streamKey).toBe(referrer);
      expect(event.payload).toMatchObject({ referralId, customerId: referrer, refereeId: referee });
    }

    // Qualification arriving again: the same event redelivered is claimed once; delivered around the claim (as after a
    // lost record) or as another completed visit, it finds the referral rewarded and pays nothing.
    const event = await visitCompletedEvent(visitId);
    const ledgerBefore = await api.owner.pointsEntry.count();
    expect(await runHandler(platform(), 'referrals', world.config, handler('visit.completed'), event)).toBe(false);
    await inTransaction(platform(), platform().dbs.forOrg(world.chainId), world.chainId, 'test', (tx, emit) =>
      qualifyOnVisit(event, { tx, emit, db: platform().dbs.forOrg(world.chainId), config: world.config, platform: platform() }),
    );
    await completeVisit(world, referee, '420.00');
    await api.drainJobs();
    expect(await referralEntries(referrer)).toHaveLength(1);
    expect(await referralEntries(referee)).toHaveLength(1);
    expect(await api.owner.pointsEntry.count({ where: { source: 'REFERRAL', sourceRef: referralId } })).toBe(2);
    expect((await eventsOf(referralId)).length).toBe(3);
    expect(await api.owner.pointsEntry.count()).toBeGreaterThan(ledgerBefore); // the third visit earned its own points

    // The newcomer's points are theirs at once: a 500-point reward redeemed against that first order passes the
    // points plugin's monthly cap (the month's spend includes the visit).
    const reward = await api.owner.pointsReward.create({ data: { orgId: world.chainId, kind: 'SERVICE', name: 'First-order treat', pointsPrice: 500 } });
    const redeemed = await call(api, `mutation($input: RedeemRewardInput!) { redeemReward(input: $input) { balance userErrors { code message } } }`, {
      input: { rewardId: gid('PointsReward', reward.id), customerId: gid('Customer', referee), idempotencyKey: key('first-order') },
    }, 'FRONT_DESK');
    expect(redeemed.userErrors).toEqual([]);

    // The referrer's feed: every step of their referral, in order; they see the newcomer's masked name, not the customer.
    expect(await feed.until(() => feed.results.filter((r) => r.data?.referralUpdated.type !== PROBE).length >= 3)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const updates = feed.results.map((r) => r.data?.referralUpdated).filter((u) => u && u.type !== PROBE);
    expect(feed.results.every((r) => r.errors === undefined)).toBe(true);
    expect(updates.map((u) => u.type)).toEqual(['referral.claimed', 'referral.qualified', 'referral.rewarded']);
    expect(updates.at(-1).referral).toEqual({ status: 'REWARDED', refereeName: '王**', referee: null, referrerPoints: 500 });
    feed.stop();
  });

  test('two deliveries of qualification racing pay each side once', async () => {
    const { api } = world;
    const { referrer, referee } = await claimedPair();
    const visitId = await completeVisit(world, referee, '300.00');
    const event = await visitCompletedEvent(visitId);
    // The same visit.completed announced twice (two outbox rows), handled at the same moment by two workers.
    const copy = toDomainEvent(await api.owner.domainEvent.create({
      data: { orgId: event.orgId, type: event.type, aggregateType: event.aggregateType, aggregateId: event.aggregateId, streamKey: event.streamKey, payload: event.payload as object, actor: 'test:copy' },
    }));
    const handled = await Promise.all([event, copy, event, copy].map((e) => runHandler(platform(), 'referrals', world.config, handler('visit.completed'), e)));
    expect(handled.filter(Boolean)).toHaveLength(2);
    expect((await referralOf(referee)).status).toBe('REWARDED');
    expect((await referralEntries(referrer)).map((e) => e.amount)).toEqual([500]);
    expect((await referralEntries(referee)).map((e) => e.amount)).toEqual([500]);
    await api.drainJobs();
    expect(await api.owner.pointsEntry.count({ where: { source: 'REFERRAL', customerId: { in: [referrer, referee] } } })).toBe(2);
  });

  test('a newcomer who is not a member yet is paid when they enrol; the referrer at once', async () => {
    const { api } = world;
    const { referrer, referee } = await claimedPair({ refereeMember: false });
    await completeVisit(world, referee, '300.00');
    await api.drainJobs();
    const qualified = await referralOf(referee);
    expect(qualified).toMatchObject({ status: 'QUALIFIED', refereeEntryId: null });
    expect(qualified.referrerEntryId).not.toBeNull();
    expect(await balanceOf(api.owner, referee)).toBeNull();

    await enrol(world, referee);
    await api.drainJobs();
    const rewarded = await referralOf(referee);
    expect(rewarded.status).toBe('REWARDED');
    expect((await referralEntries(referee)).map((e) => e.amount)).toEqual([500]);
    expect((await referralEntries(referrer)).map((e) => e.amount)).toEqual([500]);
    expect((await eventsOf(rewarded.id)).map((e) => e.type)).toEqual(['referral.claimed', 'referral.qualified', 'referral.rewarded']);
  });
});

describe('expiry', () => {
  const expire = () => referralsPlugin.jobs!['expire-referrals']!.run({ config: world.config, platform: platform() }, {});

  test('a referral not qualified in time expires; a visit after the deadline does not revive it', async () => {
    const { api } = world;
    const { referee } = await claimedPair();
    const referral = await referralOf(referee);
    await api.owner.referral.update({ where: { id: referral.id }, data: { qualifyBy: new Date(referral.claimedAt.getTime() + 1) } });
    await expire();
    const expired = await referralOf(referee);
    expect(expired.status).toBe('EXPIRED');
    expect(expired.expiredAt).not.toBeNull();
    expect((await eventsOf(referral.id)).map((e) => e.type)).toEqual(['referral.claimed', 'referral.expired']);
    await expire(); // nothing more to do
    expect((await eventsOf(referral.id)).length).toBe(2);

    await completeVisit(world, referee, '500.00');
    await api.drainJobs();
    expect((await referralOf(referee)).status).toBe('EXPIRED');
    expect(await referralEntries(referee)).toEqual([]);
  });

  test('a visit completed before the deadline still qualifies when its event arrives after the expiry job ran', async () => {
    const { api } = world;
    const { referee } = await claimedPair();
    const visitId = await completeVisit(world, referee, '300.00'); // its event waits in the queue
    const completedAt = (await api.owner.visit.findUniqueOrThrow({ where: { id: visitId } })).completedAt!;
    const referral = await referralOf(referee);
    await api.owner.referral.update({ where: { id: referral.id }, data: { qualifyBy: new Date(completedAt.getTime() + 1) } });
    await expire();
    expect((await referralOf(referee)).status).toBe('EXPIRED');
    await api.drainJobs();
    const rewarded = await referralOf(referee);
    expect(rewarded).toMatchObject({ status: 'REWARDED', expiredAt: null, qualifyingVisitId: visitId });
    expect((await eventsOf(referral.id)).map((e) => e.type)).toEqual(['referral.claimed', 'referral.expired', 'referral.qualified', 'referral.rewarded']);
  });
});

describe('rejection', () => {
  test('refunding the qualifying visit rejects the referral and takes the points back (as far as they are unspent)', async () => {
    const { api } = world;
    const { referrer, referee } = await claimedPair();
    const visitId = await completeVisit(world, referee, '300.00');
    await api.drainJobs();
    const referral = await referralOf(referee);
    expect(referral.status).toBe('REWARDED');
    // The newcomer spends everything they have but 200 points before the refund.
    const spend = (await balanceOf(api.owner, referee))! - 200;
    const reward = await api.owner.pointsReward.create({ data: { orgId: world.chainId, kind: 'PRODUCT', name: `Spend ${spend}`, pointsPrice: spend } });
    const redeemed = await call(api, `mutation($input: RedeemRewardInput!) { redeemReward(input: $input) { userErrors { code message } } }`, {
      input: { rewardId: gid('PointsReward', reward.id), customerId: gid('Customer', referee), idempotencyKey: key('spend') },
    });
    expect(redeemed.userErrors).toEqual([]);
    const referrerBefore = (await balanceOf(api.owner, referrer))!;

    const refunded = await call(api, REFUND, { input: { visitId: gid('Visit', visitId), idempotencyKey: key('refund'), reason: 'Customer unhappy' } });
    expect(refunded.userErrors).toEqual([]);
    await api.drainJobs();
    const rejected = await referralOf(referee);
    expect(rejected).toMatchObject({ status: 'REJECTED', rejectionCode: 'QUALIFYING_VISIT_REFUNDED' });
    // The referrer loses the whole reward; the newcomer what was left after the visit's own points were reversed.
    expect((await referralEntries(referrer)).map((e) => [e.kind, e.amount])).toEqual([['EARN', 500], ['REVERSAL', -500]]);
    expect(await balanceOf(api.owner, referrer)).toBe(referrerBefore - 500);
    const refereeReferral = await referralEntries(referee);
    expect(refereeReferral[0]!.amount).toBe(500);
    const takenBack = refereeReferral.slice(1).reduce((sum, e) => sum - e.amount, 0);
    expect(takenBack).toBeGreaterThanOrEqual(0);
    expect(takenBack).toBeLessThanOrEqual(500);
    expect(await balanceOf(api.owner, referee)).toBe(0);
    const [last] = (await eventsOf(referral.id)).slice(-1);
    expect(last).toMatchObject({ type: 'referral.rejected', payload: { rejectionCode: 'QUALIFYING_VISIT_REFUNDED', previousStatus: 'REWARDED', pointsReversed: { referrer: 500, referee: takenBack } } });
  });

  test('a phone number moved between the two accounts after the claim rejects the referral at qualification, paying nothing', async () => {
    const { api } = world;
    const { referrer, referee } = await claimedPair();
    const old = (await api.owner.customer.findUniqueOrThrow({ where: { id: referrer } })).phone;
    await api.owner.customer.update({ where: { id: referrer }, data: { phone: '+8617711112222' } });
    await api.owner.customer.update({ where: { id: referee }, data: { phone: old } });
    await completeVisit(world, referee, '300.00');
    await api.drainJobs();
    expect(await referralOf(referee)).toMatchObject({ status: 'REJECTED', rejectionCode: 'SAME_PHONE', qualifiedAt: null });
    expect(await referralEntries(referrer)).toEqual([]);
    expect(await referralEntries(referee)).toEqual([]);
  });

  test('a store manager rejects a referral of their store as fraud; again is a conflict; others cannot', async () => {
    const { api } = world;
    const { referralId: pending } = await claimedPair();
    const referralId = await pending;
    const input = { referralId: gid('Referral', referralId), reason: 'Same household, reported by staff' };

    await expectRejected(api, REJECT, input, 'FRONT_DESK', { __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    const missing = await expectRejected(api, REJECT, { ...input, referralId: gid('Referral', randomUUID()) }, 'OWNER', { __typename: 'NotFoundError' });
    expect(await expectRejected(api, REJECT, input, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' })).toEqual(missing);
    await expectRejected(api, REJECT, { ...input, reason: ' ' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'reason'] });
    // A manager of another store: like a random id.
    const elsewhere = { kind: 'STAFF' as const, orgId: world.chainId, staffId: randomUUID(), role: 'STORE_MANAGER' as const, storeIds: [world.stores.BJ] };
    expect(await expectRejected(api, REJECT, input, elsewhere, { __typename: 'NotFoundError' })).toEqual(missing);

    const done = await call(api, REJECT, { input }, 'STORE_MANAGER');
    expect(done.userErrors).toEqual([]);
    expect(done.referral).toMatchObject({ status: 'REJECTED', rejectionCode: 'REPORTED_FRAUD', rejectionReason: input.reason });
    expect((await eventsOf(referralId)).map((e) => e.type)).toEqual(['referral.claimed', 'referral.rejected']);
    await expectRejected(api, REJECT, input, 'OWNER', { __typename: 'ConflictError', code: 'INVALID_STATE' });
  });
});

describe('the points dependency', () => {
  test('starting referrals without points fails with a message that says what to change', async () => {
    const attempt = loadPlugins(PLUGINS_DIR, ['referrals']);
    await expect(attempt).rejects.toBeInstanceOf(PluginConfigurationError);
    await expect(attempt).rejects.toThrow('Plugin "referrals" depends on "points", which is not enabled. Enable both (CRM_PLUGINS=referrals,points) or disable "referrals".');
    await expect(loadPlugins(PLUGINS_DIR, ['points', 'referrals'], { referrals: { claimWindowDays: -1 } })).rejects.toThrow(
      /Invalid configuration for plugin "referrals": claimWindowDays/,
    );
    const [points, referrals] = await loadPlugins(PLUGINS_DIR, ['referrals', 'points']);
    expect([points!.definition.name, referrals!.definition.name]).toEqual(['points', 'referrals']);
    expect(referrals!.config.rewards).toEqual({ referrerPoints: 500, refereePoints: null });
  });
});
