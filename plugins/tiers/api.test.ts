/**
 * The tiers API with the points plugin ON: the tier multiplier in awarded points and tier-limited rewards through
 * the extension points; the ladder, history and progress as callers read them; the mutations' success, bad input
 * and permissions (each rejection changes nothing); tenancy probes (another chain's and another store's objects
 * look exactly like random ids); the tierChanged subscription; and statements per request that do not grow with
 * the page.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  call,
  completedVisit,
  completeViaApi,
  DAY_MS,
  evaluate,
  expectRejected,
  fingerprint,
  gid,
  historyOf,
  key,
  newMember,
  staffAt,
  startTiersWorld,
  stateOf,
  taskDone,
  yuan,
  type TiersWorld,
} from './testing.ts';

let world: TiersWorld;
beforeAll(async () => {
  world = await startTiersWorld(['points', 'tiers'], {}, { points: { earning: { memberDay: null }, monthlyRedemptionCap: null } });
});
afterAll(() => world?.api.close());

const ERRORS = 'userErrors { __typename code message field ... on TierInUseError { holders } }';
const OVERRIDE = `mutation($input: OverrideTierInput!) { overrideTier(input: $input) { customer { membership { tier { code } } } change { kind tier { code } } ${ERRORS} } }`;
const CLEAR = `mutation($input: ClearTierOverrideInput!) { clearTierOverride(input: $input) { customer { membership { tier { code } } } change { kind reason tier { code } } ${ERRORS} } }`;
const RECORD = `mutation($input: RecordTierTaskInput!) {
  recordTierTask(input: $input) { completion { id task { code } occurredAt source note recordedBy } customer { membership { tier { code } } } upgraded replayed ${ERRORS} } }`;
const LADDER = `mutation($input: SetTierLadderInput!) { setTierLadder(input: $input) { ladder { code name rank qualifications { minSpend { amount } minTasks } benefits { discountPercent pointsMultiplier perks } } ${ERRORS} } }`;
const TASK = `mutation($input: UpsertTierTaskInput!) { upsertTierTask(input: $input) { task { code name eventType customerField maxPerWindow active } ${ERRORS} } }`;
const randomCustomer = () => gid('Customer', randomUUID());

const visitPoints = (customerId: string) =>
  world.api.owner.pointsEntry.findMany({ where: { customerId, source: 'VISIT' }, orderBy: { id: 'asc' }, select: { amount: true, reason: true } });

describe('with points on', () => {
  test('the tier’s multiplier shows up in awarded points: the visit that upgrades earns at the tier held before it', async () => {
    const member = await newMember(world);
    await completeViaApi(world, member, '20000.00');
    await world.api.drainJobs();
    expect((await stateOf(world, member)).earned).toBe('GOLD');
    await completeViaApi(world, member, '1000.00');
    await world.api.drainJobs();
    expect(await visitPoints(member)).toEqual([
      { amount: 20_000, reason: 'visit spend' },
      { amount: 1_200, reason: 'visit spend, ×1.2' },
    ]);

    // An override counts too: Black earns ×1.5.
    const black = await newMember(world);
    const set = await call(world.api, OVERRIDE, {
      input: { customerId: gid('Customer', black), tierId: gid('TierLevel', world.tiers.BLACK), reason: 'VIP launch guest', expiresAt: new Date(Date.now() + 30 * DAY_MS).toISOString() },
    });
    expect(set.userErrors).toEqual([]);
    await completeViaApi(world, black, '1000.00');
    await world.api.drainJobs();
    expect(await visitPoints(black)).toEqual([{ amount: 1_500, reason: 'visit spend, ×1.5' }]);
    // The balance still equals the ledger.
    const account = await world.api.owner.pointsAccount.findUniqueOrThrow({ where: { customerId: member } });
    const sum = await world.api.owner.pointsEntry.aggregate({ where: { customerId: member }, _sum: { amount: true } });
    expect(account.balance).toBe(sum._sum.amount);
  });

  test('a reward for Gold members: a Silver member is refused, a Gold member redeems (points.customerTier)', async () => {
    const created = await call(world.api, `mutation($input: CreatePointsRewardInput!) { createPointsReward(input: $input) { reward { id } userErrors { code } } }`, {
      input: { kind: 'SERVICE', name: 'Gold members’ eye care', pointsPrice: 500, eligibleTiers: ['GOLD', 'BLACK'] },
    });
    const rewardId = created.reward.id;
    const silver = await newMember(world);
    const gold = await newMember(world);
    await completedVisit(world, silver, yuan(3_000), new Date(Date.now() - DAY_MS));
    await completedVisit(world, gold, yuan(25_000), new Date(Date.now() - DAY_MS));
    for (const id of [silver, gold]) {
      await evaluate(world, id);
      const adjusted = await call(world.api, `mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { balance userErrors { code } } }`, {
        input: { customerId: gid('Customer', id), points: 1000, reason: 'test balance', idempotencyKey: key('adjust') },
      });
      expect(adjusted.balance).toBe(1000);
    }
    const redeem = (customerId: string) =>
      call(world.api, `mutation($input: RedeemRewardInput!) { redeemReward(input: $input) { balance userErrors { __typename code } } }`, {
        input: { rewardId, customerId: gid('Customer', customerId), idempotencyKey: key('redeem') },
      });
    expect((await redeem(silver)).userErrors).toEqual([{ __typename: 'RewardNotAvailableError', code: 'TIER_NOT_ELIGIBLE' }]);
    expect(await redeem(gold)).toEqual({ balance: 500, userErrors: [] });
  });
});

describe('reading tiers', () => {
  test('the ladder with its benefits, for staff and for a customer; another chain sees its own', async () => {
    const query = '{ tierLadder { id code name rank qualifications { minSpend { amount currencyCode } minTasks } benefits { discountPercent pointsMultiplier birthdayGift freeSkinTestsPerYear priorityBooking dedicatedConsultant perks } } }';
    const ladder = await call(world.api, query, {}, 'CUSTOMER');
    expect(ladder.map((l: any) => [l.code, l.rank])).toEqual([['SILVER', 1], ['GOLD', 2], ['BLACK', 3]]);
    expect(ladder[1]).toMatchObject({
      id: gid('TierLevel', world.tiers.GOLD),
      name: '金卡 Gold',
      qualifications: [
        { minSpend: { amount: '20000.00', currencyCode: 'CNY' }, minTasks: 0 },
        { minSpend: { amount: '12000.00', currencyCode: 'CNY' }, minTasks: 3 },
      ],
      benefits: { discountPercent: '5', pointsMultiplier: '1.2', freeSkinTestsPerYear: 2, priorityBooking: true, dedicatedConsultant: true },
    });
    expect(ladder[2].benefits).toMatchObject({ discountPercent: '12', pointsMultiplier: '1.5', perks: expect.arrayContaining(['私享护理室 Private care room']) });
    expect(await call(world.api, query, {}, 'OWNER')).toEqual(ladder);
    const theirs = await call(world.api, query, {}, 'OTHER_CHAIN_OWNER');
    expect(theirs.map((l: any) => l.code)).toEqual(['SILVER', 'GOLD', 'BLACK']);
    expect(theirs.map((l: any) => l.id).filter((id: string) => ladder.some((l: any) => l.id === id))).toEqual([]);
    // node(id:) of our tier, asked by the other chain, answers like a random id.
    const node = `query($id: ID!) { node(id: $id) { id ... on TierLevel { code } } }`;
    expect(await call(world.api, node, { id: gid('TierLevel', world.tiers.GOLD) }, 'OTHER_CHAIN_OWNER')).toBeNull();
    expect(await call(world.api, node, { id: gid('TierLevel', randomUUID()) }, 'OTHER_CHAIN_OWNER')).toBeNull();
    expect(await call(world.api, node, { id: gid('TierLevel', world.tiers.GOLD) }, 'CUSTOMER')).toEqual({ id: gid('TierLevel', world.tiers.GOLD), code: 'GOLD' });
    const tasks = await call(world.api, '{ tierTasks { code eventType customerField maxPerWindow active } }', {}, 'FRONT_DESK');
    expect(tasks).toContainEqual({ code: 'REFERRAL', eventType: 'referral.qualified', customerField: 'referrerId', maxPerWindow: null, active: true });
  });

  test('a customer reads their own tier, progress and history; another customer’s are out of reach', async () => {
    const own = await call(world.api, '{ viewer { customer { id membership { tier { code } } tierProgress { tier { code } nextTier { code } tasksCompleted } tierHistory(first: 5) { kind reason tier { code } effectiveAt } } } }', {}, 'CUSTOMER');
    expect(own.customer.membership.tier.code).toBe('GOLD');
    expect(own.customer.tierProgress).toMatchObject({ tier: { code: 'GOLD' }, nextTier: { code: 'BLACK' }, tasksCompleted: 3 });
    expect(own.customer.tierHistory).toEqual([expect.objectContaining({ kind: 'UPGRADE', tier: { code: 'GOLD' } })]);
    const someoneElse = await newMember(world);
    const probe = await call(world.api, 'query($id: ID!) { node(id: $id) { ... on Customer { tierProgress { spend { amount } } } } }', { id: gid('Customer', someoneElse) }, 'CUSTOMER');
    expect(probe).toBeNull();
    const otherChain = await call(world.api, 'query($id: ID!) { node(id: $id) { ... on Customer { tierProgress { spend { amount } } } } }', { id: own.customer.id }, 'OTHER_CHAIN_OWNER');
    expect(otherChain).toBeNull();
  });

  test('history is newest first and limited per customer in SQL', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(3_000), new Date(Date.now() - 3 * DAY_MS));
    await evaluate(world, member, { at: new Date(Date.now() - 2 * DAY_MS) });
    await completedVisit(world, member, yuan(20_000), new Date(Date.now() - 2 * DAY_MS + 1000));
    await evaluate(world, member, { at: new Date(Date.now() - DAY_MS) });
    await completedVisit(world, member, yuan(40_000), new Date(Date.now() - DAY_MS + 1000));
    await evaluate(world, member);
    const read = (first: number) =>
      call(world.api, `query($id: ID!, $first: Int) { node(id: $id) { ... on Customer { tierHistory(first: $first) { kind fromTier { code } toTier { code } spend { amount } tasks trigger } } } }`, { id: gid('Customer', member), first });
    expect((await read(2)).tierHistory).toEqual([
      { kind: 'UPGRADE', fromTier: { code: 'GOLD' }, toTier: { code: 'BLACK' }, spend: { amount: '63000.00' }, tasks: 0, trigger: 'test' },
      { kind: 'UPGRADE', fromTier: { code: 'SILVER' }, toTier: { code: 'GOLD' }, spend: { amount: '23000.00' }, tasks: 0, trigger: 'test' },
    ]);
    expect((await read(20)).tierHistory.map((h: any) => h.toTier.code)).toEqual(['BLACK', 'GOLD', 'SILVER']);
  });

  test('a page of customers with tier, progress and history costs the same statements at 10 and at 50', async () => {
    const query = `query($first: Int!) { customers(first: $first) { edges { node {
      membership { tier { code benefits { discountPercent } qualifications { minSpend { amount } } } }
      tierProgress { tier { code } spend { amount } tasksCompleted nextTier { code } toNextTier { tasksRemaining spendRemaining { amount } } downgradeRisk { to { code } } }
      tierHistory(first: 3) { kind tier { code } }
    } } } }`;
    const stats = world.api.running.platform.dbs.stats;
    const measure = async (first: number) => {
      await world.api.gql(query, { first });
      stats.trace = [];
      const result = await world.api.gql(query, { first });
      const trace = stats.trace;
      stats.trace = null;
      expect(result.errors).toBeUndefined();
      const nodes = result.data.customers.edges.map((e: any) => e.node);
      return { nodes, statements: trace.filter((s) => !s.sql.includes("set_config('app.org_id'")).length };
    };
    const at10 = await measure(10);
    const at50 = await measure(50);
    expect(at50.nodes.filter((n: any) => n.membership?.tier).length).toBeGreaterThan(at10.nodes.filter((n: any) => n.membership?.tier).length);
    expect(at50.nodes.some((n: any) => n.tierHistory.length > 0)).toBe(true);
    expect(at50.statements).toBe(at10.statements);
    console.log(`tiers: ${at10.statements} statements for 10 customers with tier, progress and history; ${at50.statements} for 50`);
  });

  test('a member\'s storefront costs 3 statements: the tier and the points balance come in one, with other plugins\' rows', async () => {
    // The demo customer (a Gold member) on their own storefront, with points from a visit.
    await completeViaApi(world, (world.api.principals.CUSTOMER as { customerId: string }).customerId, '100.00');
    await world.api.drainJobs();
    const member = (await call(world.api, '{ viewer { customer { id membership { tier { code } } points { balance } } } }', {}, 'CUSTOMER')).customer;
    expect(member.membership.tier.code).toBe('GOLD');
    const storefront = `query($id: ID!) { node(id: $id) { ... on Customer { id name membership { tier { code name } } points { balance }
      visits(first: 10) { edges { node { id status scheduledStart total { amount currencyCode } } } } } } }`;
    const stats = world.api.running.platform.dbs.stats;
    await world.api.gql(storefront, { id: member.id }, 'CUSTOMER');
    stats.trace = [];
    const result = await world.api.gql(storefront, { id: member.id }, 'CUSTOMER');
    const statements = stats.trace.filter((s) => !s.sql.includes("set_config('app.org_id'"));
    stats.trace = null;
    expect(result.errors).toBeUndefined();
    expect(result.data.node).toMatchObject({ membership: { tier: { code: member.membership.tier.code } }, points: { balance: member.points.balance } });
    expect(result.data.node.visits.edges.length).toBeGreaterThan(0);
    // the customer with membership, the tier state and points account together, the visits
    expect(statements.length).toBe(3);
    // Asking for the account's lots too goes through Prisma and gives the same balance.
    const withLots = await call(world.api, `query($id: ID!) { node(id: $id) { ... on Customer { points { balance lots { remaining } } } } }`, { id: member.id }, 'CUSTOMER');
    expect(withLots.points.balance).toBe(member.points.balance);
  });
});

describe('recordTierTask', () => {
  test('records a task and upgrades at once; the same key replays without a second effect', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(12_000), new Date(Date.now() - DAY_MS));
    await evaluate(world, member);
    const input = (code: string, idempotencyKey = key('task')) => ({ customerId: gid('Customer', member), taskCode: code, note: 'Joined the spring salon', idempotencyKey });
    expect((await call(world.api, RECORD, { input: input('BRAND_EVENT') }, 'FRONT_DESK')).upgraded).toBe(false);
    expect((await call(world.api, RECORD, { input: input('SURVEY') }, 'CONSULTANT')).upgraded).toBe(false);
    const third = input('SKIN_CHECK');
    const done = await call(world.api, RECORD, { input: third }, 'FRONT_DESK');
    expect(done).toMatchObject({
      completion: { task: { code: 'SKIN_CHECK' }, source: 'STAFF', note: 'Joined the spring salon', recordedBy: expect.stringMatching(/^staff:/) },
      customer: { membership: { tier: { code: 'GOLD' } } },
      upgraded: true,
      replayed: false,
      userErrors: [],
    });
    expect((await historyOf(world, member)).at(-1)).toMatchObject({ kind: 'UPGRADE', from: 'SILVER', to: 'GOLD', trigger: 'recordTierTask' });
    const before = await fingerprint(world);
    const again = await call(world.api, RECORD, { input: third }, 'FRONT_DESK');
    expect(again).toMatchObject({ completion: { id: done.completion.id }, upgraded: true, replayed: true, userErrors: [] });
    expect(await fingerprint(world)).toEqual(before);
    await expectRejected(world, RECORD, { ...third, taskCode: 'SURVEY' }, 'FRONT_DESK', { __typename: 'ConflictError', code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  test('bad input, unknown and inactive tasks, callers without the permission, other tenants: a typed error and nothing changed', async () => {
    const member = await newMember(world);
    const valid = () => ({ customerId: gid('Customer', member), taskCode: 'SURVEY', idempotencyKey: key('task') });
    await world.api.owner.tierTask.updateMany({ where: { orgId: world.chainId, code: 'BRAND_RESEARCH' }, data: { active: false } });
    try {
      await expectRejected(world, RECORD, { ...valid(), taskCode: 'NO_SUCH_TASK' }, 'OWNER', { __typename: 'NotFoundError', field: ['input', 'taskCode'] });
      await expectRejected(world, RECORD, { ...valid(), taskCode: 'BRAND_RESEARCH' }, 'OWNER', { __typename: 'ConflictError', code: 'TASK_INACTIVE' });
    } finally {
      await world.api.owner.tierTask.updateMany({ where: { orgId: world.chainId, code: 'BRAND_RESEARCH' }, data: { active: true } });
    }
    await expectRejected(world, RECORD, { ...valid(), taskCode: 'survey!' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'taskCode'] });
    await expectRejected(world, RECORD, { ...valid(), occurredAt: new Date(Date.now() + DAY_MS).toISOString() }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'occurredAt'] });
    await expectRejected(world, RECORD, { ...valid(), occurredAt: new Date(Date.now() - 400 * DAY_MS).toISOString() }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'occurredAt'] });
    await expectRejected(world, RECORD, { ...valid(), note: 'x'.repeat(501) }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'note'] });
    await expectRejected(world, RECORD, { ...valid(), idempotencyKey: 'short' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'idempotencyKey'] });
    await expectRejected(world, RECORD, valid(), 'BEAUTICIAN', { __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    await expectRejected(world, RECORD, valid(), 'CUSTOMER', { __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    await expectRejected(world, RECORD, valid(), 'HQ_ANALYST', { __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    // Another chain's customer, a random id and an id of another type all answer alike.
    const other = await newMember(world, { orgId: world.otherChainId, storeId: world.otherStore });
    const foreign = await expectRejected(world, RECORD, { ...valid(), customerId: gid('Customer', other) }, 'OWNER', { __typename: 'NotFoundError' });
    const random = await expectRejected(world, RECORD, { ...valid(), customerId: randomCustomer() }, 'OWNER', { __typename: 'NotFoundError' });
    const wrongType = await expectRejected(world, RECORD, { ...valid(), customerId: gid('Store', world.stores.SH) }, 'OWNER', { __typename: 'NotFoundError' });
    expect(foreign).toEqual(random);
    expect(wrongType).toEqual(random);
    const theirs = await expectRejected(world, RECORD, { ...valid(), customerId: gid('Customer', member) }, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' });
    expect(theirs).toEqual(random);
  });
});

describe('overrides', () => {
  test('bad input, non-members, callers without the permission, another store’s member and other tenants: typed errors, nothing changed', async () => {
    const member = await newMember(world); // home store SH-01
    const bjMember = await newMember(world, { storeId: world.stores.BJ });
    const notMember = await newMember(world, { member: false });
    const other = await newMember(world, { orgId: world.otherChainId, storeId: world.otherStore });
    const otherTier = await world.api.owner.tierLevel.findFirstOrThrow({ where: { orgId: world.otherChainId, code: 'GOLD' } });
    const valid = (customerId = member) => ({ customerId: gid('Customer', customerId), tierId: gid('TierLevel', world.tiers.GOLD), reason: 'Service recovery', expiresAt: new Date(Date.now() + 7 * DAY_MS).toISOString() });
    await expectRejected(world, OVERRIDE, { ...valid(), reason: ' x ' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'reason'] });
    await expectRejected(world, OVERRIDE, { ...valid(), expiresAt: new Date(Date.now() - 1000).toISOString() }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'expiresAt'] });
    await expectRejected(world, OVERRIDE, { ...valid(), expiresAt: new Date(Date.now() + 400 * DAY_MS).toISOString() }, 'OWNER', {
      __typename: 'ValidationError',
      message: 'An override lasts at most 366 days',
    });
    await expectRejected(world, OVERRIDE, valid(notMember), 'OWNER', { __typename: 'ValidationError', code: 'NOT_A_MEMBER' });
    await expectRejected(world, OVERRIDE, valid(), 'FRONT_DESK', { __typename: 'ForbiddenError' });
    await expectRejected(world, OVERRIDE, valid(), 'CONSULTANT', { __typename: 'ForbiddenError' });
    await expectRejected(world, OVERRIDE, valid(), 'CUSTOMER', { __typename: 'ForbiddenError' });
    const random = await expectRejected(world, OVERRIDE, { ...valid(), customerId: randomCustomer() }, 'STORE_MANAGER', { __typename: 'NotFoundError', field: ['input', 'customerId'] });
    // The SH-01 manager cannot reach a BJ-01 member, nor the other chain's; both look like a random id.
    expect(await expectRejected(world, OVERRIDE, valid(bjMember), 'STORE_MANAGER', { __typename: 'NotFoundError' })).toEqual(random);
    expect(await expectRejected(world, OVERRIDE, valid(other), 'STORE_MANAGER', { __typename: 'NotFoundError' })).toEqual(random);
    expect(await expectRejected(world, OVERRIDE, valid(member), 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' })).toEqual(random);
    // …while BJ-01's own manager can.
    const bjManager = staffAt(world, world.stores.BJ, 'STORE_MANAGER');
    expect((await call(world.api, OVERRIDE, { input: valid(bjMember) }, bjManager)).userErrors).toEqual([]);
    // Another chain's tier, a random tier id: not found, alike.
    const foreignTier = await expectRejected(world, OVERRIDE, { ...valid(), tierId: gid('TierLevel', otherTier.id) }, 'OWNER', { __typename: 'NotFoundError', field: ['input', 'tierId'] });
    expect(await expectRejected(world, OVERRIDE, { ...valid(), tierId: gid('TierLevel', randomUUID()) }, 'OWNER', { __typename: 'NotFoundError' })).toEqual(foreignTier);
    await expectRejected(world, CLEAR, { customerId: gid('Customer', member), reason: 'No override here' }, 'OWNER', { __typename: 'ConflictError', code: 'NO_ACTIVE_OVERRIDE' });
    await expectRejected(world, CLEAR, { customerId: gid('Customer', bjMember), reason: 'Not my store' }, 'STORE_MANAGER', { __typename: 'NotFoundError' });
  });

  test('an override to no tier, and clearing it: the earned tier applies again, with history and events', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(20_000), new Date(Date.now() - DAY_MS));
    await evaluate(world, member);
    const held = await call(world.api, OVERRIDE, {
      input: { customerId: gid('Customer', member), tierId: null, reason: 'Membership under review', expiresAt: new Date(Date.now() + DAY_MS).toISOString() },
    }, 'STORE_MANAGER');
    expect(held).toMatchObject({ customer: { membership: { tier: null } }, change: { kind: 'OVERRIDE_SET', tier: null }, userErrors: [] });
    const cleared = await call(world.api, CLEAR, { input: { customerId: gid('Customer', member), reason: 'Review closed' } }, 'STORE_MANAGER');
    expect(cleared).toMatchObject({ customer: { membership: { tier: { code: 'GOLD' } } }, change: { kind: 'OVERRIDE_ENDED', reason: 'Override cleared: Review closed', tier: { code: 'GOLD' } }, userErrors: [] });
    const events = await world.api.owner.domainEvent.findMany({ where: { aggregateId: member, aggregateType: 'MemberTier' }, orderBy: { id: 'asc' } });
    expect(events.map((e) => [e.type, (e.payload as any).fromTier, (e.payload as any).toTier])).toEqual([
      ['tier.upgraded', null, 'GOLD'],
      ['tier.downgraded', 'GOLD', null],
      ['tier.upgraded', null, 'GOLD'],
    ]);
  });
});

describe('managing the ladder and tasks', () => {
  const level = (code: string, name: string, minSpend: string, extra: Record<string, unknown> = {}) => ({ code, name, qualifications: [{ minSpend }], ...extra });

  test('setTierLadder renames, reorders, adds and removes levels by code; a level members hold cannot leave', async () => {
    const holder = await newMember(world, { orgId: world.otherChainId, storeId: world.otherStore });
    await completedVisit(world, holder, yuan(20_000), new Date(Date.now() - DAY_MS), { orgId: world.otherChainId, storeId: world.otherStore });
    await evaluate(world, holder, {}, world.otherChainId);
    const ids = async () => Object.fromEntries((await world.api.owner.tierLevel.findMany({ where: { orgId: world.otherChainId } })).map((l) => [l.code, l.id]));
    const before = await ids();
    const result = await call(world.api, LADDER, {
      input: {
        levels: [
          level('SILVER', '银卡 Silver', '2000'),
          level('GOLD', '金卡 Gold', '15000', { qualifications: [{ minSpend: '15000' }, { minSpend: '9000.50', minTasks: 2 }], benefits: { discountPercent: '8.5', pointsMultiplier: '1.25', perks: ['专属顾问 Dedicated consultant'] } }),
          level('PLATINUM', '铂金卡 Platinum', '30000'),
          level('BLACK', '黑卡 Black', '60000', { benefits: { pointsMultiplier: '2' } }),
        ],
      },
    }, 'OTHER_CHAIN_OWNER');
    expect(result.userErrors).toEqual([]);
    expect(result.ladder.map((l: any) => [l.code, l.rank])).toEqual([['SILVER', 1], ['GOLD', 2], ['PLATINUM', 3], ['BLACK', 4]]);
    expect(result.ladder[1]).toMatchObject({
      qualifications: [{ minSpend: { amount: '15000.00' }, minTasks: 0 }, { minSpend: { amount: '9000.50' }, minTasks: 2 }],
      benefits: { discountPercent: '8.5', pointsMultiplier: '1.25', perks: ['专属顾问 Dedicated consultant'] },
    });
    // Levels keep their ids (members and history point at them).
    const after = await ids();
    expect(after.GOLD).toBe(before.GOLD);
    expect(after.BLACK).toBe(before.BLACK);
    // Our chain's ladder is untouched.
    expect((await world.api.owner.tierLevel.findMany({ where: { orgId: world.chainId } })).map((l) => l.code).sort()).toEqual(['BLACK', 'GOLD', 'SILVER']);

    // PLATINUM (nobody holds it) can leave; GOLD (held) cannot.
    const removed = await call(world.api, LADDER, { input: { levels: [level('SILVER', '银卡 Silver', '2000'), level('GOLD', '金卡 Gold', '15000'), level('BLACK', '黑卡 Black', '60000')] } }, 'OTHER_CHAIN_OWNER');
    expect(removed.ladder.map((l: any) => l.code)).toEqual(['SILVER', 'GOLD', 'BLACK']);
    const inUse = await expectRejected(world, LADDER, { levels: [level('SILVER', '银卡 Silver', '2000'), level('BLACK', '黑卡 Black', '60000')] }, 'OTHER_CHAIN_OWNER', {
      __typename: 'TierInUseError',
      code: 'TIER_IN_USE',
    });
    expect(inUse.holders).toBeGreaterThanOrEqual(1);
  });

  test('members’ tiers are read without loading the ladder again, and show a ladder change at once', async () => {
    const ladder = (goldName: string) => ({ levels: [level('SILVER', '银卡 Silver', '2000'), level('GOLD', goldName, '15000'), level('BLACK', '黑卡 Black', '60000')] });
    expect((await call(world.api, LADDER, { input: ladder('金卡 Gold') }, 'OTHER_CHAIN_OWNER')).userErrors).toEqual([]);
    const holder = await newMember(world, { orgId: world.otherChainId, storeId: world.otherStore });
    await completedVisit(world, holder, yuan(20_000), new Date(Date.now() - DAY_MS), { orgId: world.otherChainId, storeId: world.otherStore });
    await evaluate(world, holder, {}, world.otherChainId);
    const tierName = async () => {
      const stats = world.api.running.platform.dbs.stats;
      stats.trace = [];
      const customer = await call(world.api, 'query($id: ID!) { node(id: $id) { ... on Customer { membership { tier { code name } } } } }', { id: gid('Customer', holder) }, 'OTHER_CHAIN_OWNER');
      const ladderLoaded = stats.trace.some((s) => s.sql.includes('tier_qualification'));
      stats.trace = null;
      return { tier: customer.membership.tier, ladderLoaded };
    };

    expect(await tierName()).toEqual({ tier: { code: 'GOLD', name: '金卡 Gold' }, ladderLoaded: true });
    expect(await tierName()).toEqual({ tier: { code: 'GOLD', name: '金卡 Gold' }, ladderLoaded: false });
    expect((await call(world.api, LADDER, { input: ladder('金卡 Gold Plus') }, 'OTHER_CHAIN_OWNER')).userErrors).toEqual([]);
    expect(await tierName()).toEqual({ tier: { code: 'GOLD', name: '金卡 Gold Plus' }, ladderLoaded: true });
  });

  test('bad ladders are refused with the field at fault, and nothing changes', async () => {
    const ok = [level('SILVER', '银卡 Silver', '3000'), level('GOLD', '金卡 Gold', '20000')];
    const reject = (levels: unknown[], expected: Record<string, unknown>, as: Parameters<typeof call>[3] = 'OWNER') => expectRejected(world, LADDER, { levels }, as, expected);
    await reject([], { __typename: 'ValidationError', field: ['input', 'levels'] });
    await reject([ok[0], { ...ok[1], code: 'SILVER' }], { __typename: 'ValidationError', field: ['input', 'levels', '1', 'code'] });
    await reject([{ ...ok[0], code: 'silver' }], { __typename: 'ValidationError', field: ['input', 'levels', '0', 'code'] });
    await reject([{ ...ok[0], qualifications: [] }], { __typename: 'ValidationError', field: ['input', 'levels', '0', 'qualifications'] });
    await reject([{ ...ok[0], qualifications: [{ minSpend: '12.345' }] }], { __typename: 'ValidationError', field: ['input', 'levels', '0', 'qualifications', '0', 'minSpend'] });
    await reject([{ ...ok[0], qualifications: [{ minSpend: '-1' }] }], { __typename: 'ValidationError', field: ['input', 'levels', '0', 'qualifications', '0', 'minSpend'] });
    await reject([{ ...ok[0], benefits: { pointsMultiplier: '0.5' } }], { __typename: 'ValidationError', field: ['input', 'levels', '0', 'benefits', 'pointsMultiplier'] });
    await reject([{ ...ok[0], benefits: { discountPercent: '95' } }], { __typename: 'ValidationError', field: ['input', 'levels', '0', 'benefits', 'discountPercent'] });
    await reject([{ ...ok[0], benefits: { perks: ['全城最好的护理 The best care in town'] } }], { __typename: 'ValidationError', code: 'ABSOLUTE_CLAIM', field: ['input', 'levels', '0', 'benefits', 'perks', '0'] });
    await reject([{ ...ok[0], benefits: { birthdayGift: 'Consultation with a top expert' } }], { __typename: 'ValidationError', code: 'ABSOLUTE_CLAIM' });
    await reject(ok, { __typename: 'ForbiddenError' }, 'STORE_MANAGER');
    await reject(ok, { __typename: 'ForbiddenError' }, 'HQ_ANALYST');
  });

  test('upsertTierTask maps an event to a task; an event type takes one active task; unknown events are refused', async () => {
    const created = await call(world.api, TASK, { input: { code: 'PROFILE', name: '完善个人资料 Complete the profile', eventType: 'customer.profileCompleted', maxPerWindow: 1 } });
    expect(created).toEqual({ task: { code: 'PROFILE', name: '完善个人资料 Complete the profile', eventType: 'customer.profileCompleted', customerField: 'customerId', maxPerWindow: 1, active: true }, userErrors: [] });
    const updated = await call(world.api, TASK, { input: { code: 'PROFILE', name: 'Complete the profile', eventType: 'customer.profileCompleted', active: false } });
    expect(updated.task).toMatchObject({ name: 'Complete the profile', active: false, maxPerWindow: null });
    await expectRejected(world, TASK, { code: 'SURVEY_TWO', name: 'Another survey task', eventType: 'survey.completed' }, 'OWNER', { __typename: 'ConflictError', code: 'EVENT_TYPE_TAKEN' });
    await expectRejected(world, TASK, { code: 'DANCE', name: 'Dance', eventType: 'dance.performed' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'eventType'] });
    await expectRejected(world, TASK, { code: 'DANCE', name: 'Dance', customerField: 'a.b' }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'customerField'] });
    await expectRejected(world, TASK, { code: 'DANCE', name: 'Dance' }, 'STORE_MANAGER', { __typename: 'ForbiddenError' });
  });
});

describe('tierChanged', () => {
  const SUBSCRIPTION = `subscription($customerId: ID) { tierChanged(customerId: $customerId) { type fromTier toTier change { kind reason tier { code } } customer { id } } }`;
  const PROBE = 'test.probe';

  test('staff follow a customer’s tier changes; a customer follows only their own; other tenants are refused like a random id', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(12_000), new Date(Date.now() - DAY_MS));
    await taskDone(world, member, 'SURVEY');
    await taskDone(world, member, 'CARE_DIARY');
    await evaluate(world, member);
    const ownerClient = await world.api.ws('OWNER');
    const customerClient = await world.api.ws('CUSTOMER');
    const staffFeed = watchWithProbes(ownerClient, { customerId: gid('Customer', member) });
    const ownFeed = watchWithProbes(customerClient, {});
    await staffFeed.live(world.chainId, member);
    await ownFeed.live(world.chainId, (world.api.principals.CUSTOMER as { customerId: string }).customerId);

    const recorded = await call(world.api, RECORD, { input: { customerId: gid('Customer', member), taskCode: 'BRAND_EVENT', idempotencyKey: key('task') } }, 'FRONT_DESK');
    expect(recorded.upgraded).toBe(true);
    await staffFeed.until(() => staffFeed.events().length === 1, 'the upgrade');
    expect(staffFeed.events()[0]).toMatchObject({ type: 'tier.upgraded', fromTier: 'SILVER', toTier: 'GOLD', change: { kind: 'UPGRADE', tier: { code: 'GOLD' } }, customer: { id: gid('Customer', member) } });

    // The customer's own feed: their override shows up, the other member's upgrade did not.
    const self = (world.api.principals.CUSTOMER as { customerId: string }).customerId;
    const override = await call(world.api, OVERRIDE, { input: { customerId: gid('Customer', self), tierId: gid('TierLevel', world.tiers.BLACK), reason: 'Anniversary gift', expiresAt: new Date(Date.now() + DAY_MS).toISOString() } });
    expect(override.userErrors).toEqual([]);
    await ownFeed.until(() => ownFeed.events().length >= 1, 'their own upgrade');
    expect(ownFeed.events()).toEqual([expect.objectContaining({ type: 'tier.upgraded', fromTier: 'GOLD', toTier: 'BLACK', customer: { id: gid('Customer', self) } })]);
    expect((await call(world.api, CLEAR, { input: { customerId: gid('Customer', self), reason: 'Test over' } })).userErrors).toEqual([]);
    await ownFeed.until(() => ownFeed.events().length === 2, 'the override ending');
    staffFeed.dispose();
    ownFeed.dispose();

    // Refused alike: another customer (for a customer token), our customer for the other chain, a random id.
    const refusal = async (as: 'CUSTOMER' | 'OTHER_CHAIN_OWNER', customerId: string) => {
      const client = await world.api.ws(as);
      const feed = watchWithProbes(client, { customerId });
      await feed.until(() => Boolean(feed.failure), 'the refusal');
      return JSON.stringify(feed.failure);
    };
    const random = await refusal('OTHER_CHAIN_OWNER', randomCustomer());
    expect(random).toMatch(/Customer not found/);
    expect(await refusal('OTHER_CHAIN_OWNER', gid('Customer', member))).toBe(random);
    expect(await refusal('CUSTOMER', gid('Customer', member))).toBe(random);
  });

  /** A subscription with liveness probes (counted apart from the tier events). */
  function watchWithProbes(client: Client, variables: Record<string, unknown>) {
    const all: any[] = [];
    let failure: unknown;
    const dispose = client.subscribe({ query: SUBSCRIPTION, variables }, {
      next: (result) => {
        if (result.data) all.push((result.data as any).tierChanged);
        if (result.errors) failure = result.errors;
      },
      error: (error) => {
        failure = error;
      },
      complete: () => {},
    });
    const until = async (predicate: () => boolean, what: string, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (failure && !what.includes('refusal')) throw new Error(`subscription failed: ${JSON.stringify(failure)}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(all)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    return {
      events: () => all.filter((e) => e?.type !== PROBE),
      dispose,
      until,
      get failure() {
        return failure;
      },
      /** Publishes probes until one arrives: from then on the server is listening. */
      async live(orgId: string, customerId: string) {
        const deadline = Date.now() + 15_000;
        for (;;) {
          world.api.running.platform.publish({ id: '0', orgId, actor: 'test', type: PROBE, aggregateType: 'MemberTier', aggregateId: customerId, streamKey: customerId, payload: { customerId, changeId: '0' }, occurredAt: new Date().toISOString() });
          try {
            await until(() => all.some((e) => e?.type === PROBE), 'a probe', 300);
            return;
          } catch (error) {
            if (Date.now() > deadline) throw error;
          }
        }
      },
    };
  }
});
