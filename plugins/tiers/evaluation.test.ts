/**
 * Tier rules with the points plugin switched OFF: qualification at its edges (exactly at a threshold, a spend that
 * leaves the 12-month window, the store's time zone), immediate upgrades on the events that matter, downgrades
 * only after the grace period and one level at a time, overrides that expire, events delivered twice, progress
 * between tiers, and a schema without any tier type when the plugin is off.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dispatchEvent, runHandler } from '../../core/events/worker.ts';
import { buildSchema } from '../../core/graphql/schema.ts';
import { localDate } from '../../core/graph/local-time.ts';
import { PLUGINS_DIR } from '../../core/bootstrap.ts';
import { loadPlugins } from '../../core/plugin/loader.ts';
import type { EventHandler } from '../../core/plugin/contract.ts';
import { effectiveTierId, windowStart } from './evaluate.ts';
import tiersPlugin from './plugin.ts';
import {
  call,
  completedVisit,
  completeViaApi,
  DAY_MS,
  evaluate,
  gid,
  historyOf,
  key,
  newMember,
  recordDomainEvent,
  scheduledRun,
  startTiersWorld,
  stateOf,
  taskDone,
  tierEvents,
  yuan,
  type TiersWorld,
} from './testing.ts';

let world: TiersWorld;
beforeAll(async () => {
  world = await startTiersWorld(['tiers']);
});
afterAll(() => world?.api.close());

const platform = () => world.api.running.platform;
const handler = (type: string) => tiersPlugin.handlers![type] as EventHandler<unknown>;
const earned = async (customerId: string) => (await stateOf(world, customerId)).earned;

describe('qualification at the edges', () => {
  test('exactly at a threshold qualifies and one fen below does not; the spend-and-tasks path needs both, each task counted up to its cap', async () => {
    const recent = new Date(Date.now() - 10 * DAY_MS);
    const atGold = await newMember(world);
    await completedVisit(world, atGold, yuan(20_000), recent);
    const below = await newMember(world);
    await completedVisit(world, below, yuan(19_999.99), recent);
    const withTasks = await newMember(world);
    await completedVisit(world, withTasks, yuan(12_000), recent);
    for (const code of ['SURVEY', 'CARE_DIARY', 'BRAND_RESEARCH']) await taskDone(world, withTasks, code, recent);
    const oneTaskShort = await newMember(world);
    await completedVisit(world, oneTaskShort, yuan(12_000), recent);
    for (const code of ['SURVEY', 'CARE_DIARY']) await taskDone(world, oneTaskShort, code, recent);
    // SURVEY counts at most twice per window: three surveys are two tasks.
    const capped = await newMember(world);
    await completedVisit(world, capped, yuan(12_000), recent);
    for (let i = 0; i < 3; i++) await taskDone(world, capped, 'SURVEY', recent);

    for (const id of [atGold, below, withTasks, oneTaskShort, capped]) await evaluate(world, id);
    expect(await earned(atGold)).toBe('GOLD');
    expect(await earned(below)).toBe('SILVER');
    expect(await earned(withTasks)).toBe('GOLD');
    expect(await earned(oneTaskShort)).toBe('SILVER');
    expect(await earned(capped)).toBe('SILVER');
    expect((await historyOf(world, atGold))[0]!.reason).toMatch(/^Qualified for 金卡 Gold \(spend ≥ CNY 20000\.00\): CNY 20000\.00 spent and 0 tasks in the 12 months to /);
    expect((await historyOf(world, withTasks))[0]!.reason).toMatch(/spend ≥ CNY 12000\.00 and 3 tasks\): CNY 12000\.00 spent and 3 tasks/);

    await taskDone(world, capped, 'CARE_DIARY', recent);
    const evaluation = await evaluate(world, capped);
    expect(evaluation!.metrics).toEqual({ spendMinor: yuan(12_000), tasks: 3 });
    expect(await earned(capped)).toBe('GOLD');
    // Straight from nothing to the tier the rules give: one UPGRADE row each, never a step through Silver.
    expect((await historyOf(world, atGold)).map((h) => [h.kind, h.from, h.to])).toEqual([['UPGRADE', null, 'GOLD']]);
    expect((await historyOf(world, capped)).map((h) => [h.kind, h.from, h.to])).toEqual([['UPGRADE', null, 'SILVER'], ['UPGRADE', 'SILVER', 'GOLD']]);
  });

  test('a visit counts for 12 months in its store’s calendar: the edge is local midnight, in Shanghai and in Ürümqi', async () => {
    // 2026-11-23T04:00Z is noon in Shanghai (UTC+8) and 10:00 in Ürümqi (UTC+6), both on the 23rd: visits dated
    // (locally) on 2025-11-24 or later count, visits on 2025-11-23 no longer do.
    const at = new Date('2026-11-23T04:00:00Z');
    const cases = [
      { store: 'SH', completedAt: '2025-11-23T16:00:00Z', counts: true }, // 00:00 on the 24th in Shanghai
      { store: 'SH', completedAt: '2025-11-23T15:59:59Z', counts: false }, // 23:59:59 on the 23rd in Shanghai
      { store: 'UR', completedAt: '2025-11-23T16:00:00Z', counts: false }, // 22:00 on the 23rd in Ürümqi
      { store: 'UR', completedAt: '2025-11-23T18:00:00Z', counts: true }, // 00:00 on the 24th in Ürümqi
      { store: 'UR', completedAt: '2025-11-23T17:59:59Z', counts: false },
    ] as const;
    for (const c of cases) {
      const member = await newMember(world, { storeId: world.stores[c.store] });
      await completedVisit(world, member, yuan(20_000), new Date(c.completedAt), { storeId: world.stores[c.store] });
      const evaluation = await evaluate(world, member, { at });
      expect({ ...c, spend: evaluation!.metrics.spendMinor, tier: await earned(member) }).toEqual({
        ...c,
        spend: c.counts ? yuan(20_000) : 0n,
        tier: c.counts ? 'GOLD' : null,
      });
    }
    // A visit completed after `at` does not count yet either.
    const later = await newMember(world);
    await completedVisit(world, later, yuan(20_000), new Date('2026-11-23T04:00:01Z'));
    expect((await evaluate(world, later, { at }))!.metrics.spendMinor).toBe(0n);
    // The window's first day, as progress reports it, follows the same rule (and clamps at month ends).
    expect(windowStart(at, 'Asia/Shanghai', 12)).toBe('2025-11-24');
    expect(windowStart(new Date('2026-11-23T17:00:00Z'), 'Asia/Shanghai', 12)).toBe('2025-11-25'); // already the 24th locally
    expect(windowStart(new Date('2025-02-28T04:00:00Z'), 'Asia/Shanghai', 12)).toBe('2024-02-29');
    expect(windowStart(new Date('2026-03-31T04:00:00Z'), 'Asia/Shanghai', 1)).toBe('2026-03-01');
  });

  test('a refunded visit no longer counts', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(20_000), new Date(Date.now() - 5 * DAY_MS), { status: 'REFUNDED' });
    await completedVisit(world, member, yuan(3_000), new Date(Date.now() - 5 * DAY_MS));
    expect((await evaluate(world, member))!.metrics.spendMinor).toBe(yuan(3_000));
    expect(await earned(member)).toBe('SILVER');
  });
});

describe('downgrades: only by the scheduled re-evaluation, after the grace period, one level at a time', () => {
  // The 20 000 visit is on 2025-11-24 in Shanghai: it counts through 2026-11-23 and leaves the window on the 24th.
  const gold = new Date('2025-11-24T02:00:00Z');
  const stillIn = new Date('2026-11-23T04:00:00Z');
  const out = new Date('2026-11-24T04:00:00Z');
  const days = (n: number) => new Date(out.getTime() + n * DAY_MS);

  test('Gold falls to Silver after 30 days below, and to no tier after another 30; events and history say so', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(20_000), gold);
    await evaluate(world, member, { at: stillIn });
    expect(await earned(member)).toBe('GOLD');

    // The spend leaves the window: the member is below Gold from now on, but keeps it.
    await evaluate(world, member, { at: out });
    expect(await stateOf(world, member)).toMatchObject({ earned: 'GOLD', belowSince: out });
    await evaluate(world, member, { at: days(29), scheduled: true });
    expect(await earned(member)).toBe('GOLD');
    // Events (a refund, a visit, a task) never lower a tier, however long after the grace period.
    await evaluate(world, member, { at: days(100) });
    expect(await earned(member)).toBe('GOLD');

    await evaluate(world, member, { at: days(30), scheduled: true });
    // Qualifies for nothing, but one level at a time: Silver, and a new grace period starts.
    expect(await stateOf(world, member)).toMatchObject({ earned: 'SILVER', belowSince: days(30) });
    await evaluate(world, member, { at: days(59), scheduled: true });
    expect(await earned(member)).toBe('SILVER');
    await evaluate(world, member, { at: days(60), scheduled: true });
    expect(await stateOf(world, member)).toMatchObject({ earned: null, belowSince: null });

    expect((await historyOf(world, member)).map((h) => [h.kind, h.from, h.to, h.trigger])).toEqual([
      ['UPGRADE', null, 'GOLD', 'test'],
      ['DOWNGRADE', 'GOLD', 'SILVER', 'schedule'],
      ['DOWNGRADE', 'SILVER', null, 'schedule'],
    ]);
    const reasons = (await historyOf(world, member)).map((h) => h.reason);
    expect(reasons[1]).toBe(
      'Below 金卡 Gold since 2026-11-24 and past the 30-day grace period: CNY 0.00 spent and 0 tasks in the 12 months to 2026-12-24; now 银卡 Silver (at most 1 level at a time)',
    );
    expect(await tierEvents(world, member)).toEqual([
      { type: 'tier.upgraded', streamKey: member, customerId: member, changeId: expect.any(String), kind: 'UPGRADE', fromTier: null, toTier: 'GOLD', reason: expect.any(String) },
      { type: 'tier.downgraded', streamKey: member, customerId: member, changeId: expect.any(String), kind: 'DOWNGRADE', fromTier: 'GOLD', toTier: 'SILVER', reason: reasons[1] },
      { type: 'tier.downgraded', streamKey: member, customerId: member, changeId: expect.any(String), kind: 'DOWNGRADE', fromTier: 'SILVER', toTier: null, reason: reasons[2] },
    ]);
  });

  test('qualifying again during the grace period ends it: no downgrade later', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(20_000), gold);
    await evaluate(world, member, { at: stillIn });
    await evaluate(world, member, { at: out });
    expect((await stateOf(world, member)).belowSince).toEqual(out);
    await completedVisit(world, member, yuan(20_000), days(5));
    await evaluate(world, member, { at: days(6) });
    expect(await stateOf(world, member)).toMatchObject({ earned: 'GOLD', belowSince: null });
    await evaluate(world, member, { at: days(45), scheduled: true });
    expect(await earned(member)).toBe('GOLD');
    expect((await historyOf(world, member)).map((h) => h.kind)).toEqual(['UPGRADE']);
  });

  test('the scheduled job moves only the members that are due: grace over, an expired override, an upgrade it finds', async () => {
    const now = new Date();
    const due = await newMember(world);
    await completedVisit(world, due, yuan(20_000), new Date(now.getTime() - 400 * DAY_MS));
    await evaluate(world, due, { at: new Date(now.getTime() - 380 * DAY_MS) });
    await world.api.owner.tierState.update({ where: { customerId: due }, data: { belowSince: new Date(now.getTime() - 31 * DAY_MS) } });
    const inGrace = await newMember(world);
    await completedVisit(world, inGrace, yuan(20_000), new Date(now.getTime() - 400 * DAY_MS));
    await evaluate(world, inGrace, { at: new Date(now.getTime() - 380 * DAY_MS) });
    await world.api.owner.tierState.update({ where: { customerId: inGrace }, data: { belowSince: new Date(now.getTime() - 10 * DAY_MS) } });
    const expired = await newMember(world);
    await completedVisit(world, expired, yuan(3_000), new Date(now.getTime() - 3 * DAY_MS));
    await evaluate(world, expired);
    const until = new Date(); // after its last change
    await world.api.owner.tierState.update({
      where: { customerId: expired },
      data: { overrideTierId: world.tiers.BLACK, overrideUntil: until, overrideReason: 'campaign', overrideBy: 'staff:test' },
    });
    const missed = await newMember(world); // qualified, but no event reached the plugin (e.g. a ladder change)
    await completedVisit(world, missed, yuan(3_000), new Date(now.getTime() - 3 * DAY_MS));

    const runAt = new Date(Date.now() + 1000);
    const run = await scheduledRun(world, runAt);
    expect(run.changed).toEqual(expect.arrayContaining([due, expired, missed]));
    expect(run.changed).not.toContain(inGrace);
    expect(run.members).toBeGreaterThan(190);
    expect(await earned(due)).toBe('SILVER');
    expect(await earned(inGrace)).toBe('GOLD');
    expect(await earned(missed)).toBe('SILVER');
    expect(await stateOf(world, expired)).toMatchObject({ earned: 'SILVER', override: null, overrideUntil: null });
    const ended = (await historyOf(world, expired)).at(-1)!;
    expect(ended).toMatchObject({ kind: 'OVERRIDE_ENDED', from: 'BLACK', to: 'SILVER', tier: 'SILVER', effectiveAt: until, reason: 'Override expired (it was: campaign)' });
    // Running again finds nothing more to do for them.
    const again = await scheduledRun(world, runAt);
    expect(again.changed.filter((id) => [due, expired, missed, inGrace].includes(id))).toEqual([]);
    // The declared job runs the same re-evaluation for every organization with a ladder.
    await tiersPlugin.jobs!.reevaluate!.run({ platform: platform(), config: world.config }, {});
  });
});

describe('upgrades happen at once on the events that matter (points off)', () => {
  test('completing a visit through the API upgrades the member; a refund does not downgrade', async () => {
    const member = await newMember(world);
    await completeViaApi(world, member, '3000.00', { as: 'FRONT_DESK' });
    await world.api.drainJobs();
    expect(await earned(member)).toBe('SILVER');
    const visitId = await completeViaApi(world, member, '17000.00', { as: 'FRONT_DESK' });
    await world.api.drainJobs();
    const read = await call(world.api, `query($id: ID!) { node(id: $id) { ... on Customer { membership { tier { code name } } } } }`, { id: gid('Customer', member) });
    expect(read.membership.tier).toEqual({ code: 'GOLD', name: '金卡 Gold' });
    const upgrade = (await historyOf(world, member)).at(-1)!;
    expect(upgrade).toMatchObject({ kind: 'UPGRADE', from: 'SILVER', to: 'GOLD', trigger: 'visit.completed' });
    expect((await tierEvents(world, member)).map((e) => [e.type, e.fromTier, e.toTier])).toEqual([
      ['tier.upgraded', null, 'SILVER'],
      ['tier.upgraded', 'SILVER', 'GOLD'],
    ]);
    // Points is off: nothing was awarded, and no points handler ran.
    expect(await world.api.owner.pointsEntry.count()).toBe(0);
    expect(await world.api.owner.processedEvent.count({ where: { handler: { startsWith: 'points:' } } })).toBe(0);

    const refunded = await call(
      world.api,
      'mutation($input: RefundVisitInput!) { refundVisit(input: $input) { userErrors { code message } } }',
      { input: { visitId, idempotencyKey: key('refund'), reason: 'Customer unhappy' } },
    );
    expect(refunded.userErrors).toEqual([]);
    await world.api.drainJobs();
    const state = await stateOf(world, member);
    expect(state.earned).toBe('GOLD');
    expect(state.belowSince).not.toBeNull();
    expect((await historyOf(world, member)).map((h) => h.kind)).toEqual(['UPGRADE', 'UPGRADE']);
  });

  test('a customer who enrols with a year of spend behind them gets their tier at once', async () => {
    const customer = await newMember(world, { member: false });
    await completedVisit(world, customer, yuan(21_000), new Date(Date.now() - 100 * DAY_MS));
    expect(await evaluate(world, customer)).toBeNull(); // not a member yet: no tier
    const enrolled = await call(world.api, 'mutation($input: EnrollMembershipInput!) { enrollMembership(input: $input) { membership { tier { code } } userErrors { code } } }', {
      input: { customerId: gid('Customer', customer) },
    }, 'FRONT_DESK');
    expect(enrolled).toEqual({ membership: { tier: null }, userErrors: [] });
    await world.api.drainJobs();
    expect(await earned(customer)).toBe('GOLD');
    expect((await historyOf(world, customer))[0]).toMatchObject({ kind: 'UPGRADE', to: 'GOLD', trigger: 'membership.enrolled' });
  });

  test('a task event from another module completes the mapped task and can upgrade; unmapped, inactive and foreign ones count nothing', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(12_000), new Date(Date.now() - 3 * DAY_MS));
    await taskDone(world, member, 'SURVEY');
    await taskDone(world, member, 'BRAND_EVENT');
    await evaluate(world, member);
    expect(await earned(member)).toBe('SILVER');
    const diary = await recordDomainEvent(world, { type: 'careDiary.shared', aggregateType: 'CareDiary', aggregateId: crypto.randomUUID(), streamKey: member, payload: { customerId: member } });
    await dispatchEvent(platform(), diary.id);
    expect(await earned(member)).toBe('GOLD');
    expect((await historyOf(world, member)).at(-1)).toMatchObject({ kind: 'UPGRADE', from: 'SILVER', to: 'GOLD', trigger: 'careDiary.shared' });

    // referral.qualified names the referrer in `referrerId` (the task's customer_field).
    const referrer = await newMember(world);
    const referee = await newMember(world);
    const referral = await recordDomainEvent(world, { type: 'referral.qualified', aggregateType: 'Referral', aggregateId: crypto.randomUUID(), streamKey: referrer, payload: { referrerId: referrer, customerId: referee } });
    await dispatchEvent(platform(), referral.id);
    const completions = async (id: string) => world.api.owner.tierTaskCompletion.findMany({ where: { customerId: id } });
    expect((await completions(referrer)).map((c) => c.source)).toEqual(['EVENT']);
    expect(await completions(referee)).toEqual([]);

    // A deactivated task no longer counts its event; another organization's customer is never credited.
    await world.api.owner.tierTask.updateMany({ where: { orgId: world.chainId, code: 'BRAND_RESEARCH' }, data: { active: false } });
    const other = await newMember(world, { orgId: world.otherChainId, storeId: world.otherStore });
    const ignored = [
      await recordDomainEvent(world, { type: 'brandResearch.joined', aggregateType: 'Study', aggregateId: crypto.randomUUID(), payload: { customerId: referee } }),
      await recordDomainEvent(world, { type: 'skinCheckIn.recorded', aggregateType: 'SkinCheckIn', aggregateId: crypto.randomUUID(), payload: { customerId: other } }),
      await recordDomainEvent(world, { type: 'survey.completed', aggregateType: 'Survey', aggregateId: crypto.randomUUID(), payload: { customerId: 'not-a-uuid' } }),
    ];
    for (const event of ignored) await dispatchEvent(platform(), event.id);
    await world.api.owner.tierTask.updateMany({ where: { orgId: world.chainId, code: 'BRAND_RESEARCH' }, data: { active: true } });
    expect(await completions(referee)).toEqual([]);
    expect(await completions(other)).toEqual([]);
  });
});

describe('events delivered twice change nothing twice', () => {
  test('visit.completed handled twice in a row, then five times at once: one upgrade, one event', async () => {
    const member = await newMember(world);
    const completedAt = new Date(Date.now() - 60_000).toISOString();
    const visitId = await completedVisit(world, member, yuan(20_000), new Date(completedAt));
    const event = await recordDomainEvent(world, {
      type: 'visit.completed',
      aggregateType: 'Visit',
      aggregateId: visitId,
      streamKey: member,
      payload: { visitId, customerId: member, storeId: world.stores.SH, completedAt, totalMinor: 2_000_000, currency: 'CNY', lines: [] },
    });
    expect(await runHandler(platform(), 'tiers', world.config, handler('visit.completed'), event)).toBe(true);
    expect(await runHandler(platform(), 'tiers', world.config, handler('visit.completed'), event)).toBe(false);
    // A second announcement of the same visit (another event id) finds the member already Gold.
    const again = await recordDomainEvent(world, { ...event, payload: event.payload });
    expect(await runHandler(platform(), 'tiers', world.config, handler('visit.completed'), again)).toBe(true);
    expect((await historyOf(world, member)).map((h) => [h.kind, h.to])).toEqual([['UPGRADE', 'GOLD']]);
    expect(await tierEvents(world, member)).toHaveLength(1);
    // The upgrade counts from the visit's completion.
    expect((await historyOf(world, member))[0]!.effectiveAt.toISOString()).toBe(completedAt);

    const racer = await newMember(world);
    const racerVisit = await completedVisit(world, racer, yuan(20_000), new Date(completedAt));
    const raced = await recordDomainEvent(world, { ...event, aggregateId: racerVisit, streamKey: racer, payload: { ...event.payload, visitId: racerVisit, customerId: racer } });
    const runs = await Promise.allSettled(Array.from({ length: 5 }, () => runHandler(platform(), 'tiers', world.config, handler('visit.completed'), raced)));
    expect(runs.filter((r) => r.status === 'fulfilled' && r.value === true)).toHaveLength(1);
    for (const r of runs) if (r.status === 'rejected') expect(String(r.reason)).toMatch(/unique|duplicate|P2002|23505|deadlock|could not serialize/i);
    expect((await historyOf(world, racer)).map((h) => [h.kind, h.to])).toEqual([['UPGRADE', 'GOLD']]);
    expect(await tierEvents(world, racer)).toHaveLength(1);
  });

  test('a task event delivered twice, and the same survey announced by a second event: one completion, one upgrade', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(12_000), new Date(Date.now() - 3 * DAY_MS));
    await taskDone(world, member, 'CARE_DIARY');
    await taskDone(world, member, 'BRAND_EVENT');
    await evaluate(world, member);
    const surveyId = crypto.randomUUID();
    const survey = await recordDomainEvent(world, { type: 'survey.completed', aggregateType: 'SurveyResponse', aggregateId: surveyId, streamKey: member, payload: { customerId: member } });
    const surveyHandler = handler('survey.completed');
    expect(await runHandler(platform(), 'tiers', world.config, surveyHandler, survey)).toBe(true);
    expect(await runHandler(platform(), 'tiers', world.config, surveyHandler, survey)).toBe(false);
    const duplicate = await recordDomainEvent(world, { type: 'survey.completed', aggregateType: 'SurveyResponse', aggregateId: surveyId, streamKey: member, payload: { customerId: member } });
    await dispatchEvent(platform(), duplicate.id);
    await dispatchEvent(platform(), duplicate.id);
    const task = await world.api.owner.tierTask.findFirstOrThrow({ where: { orgId: world.chainId, code: 'SURVEY' } });
    expect(await world.api.owner.tierTaskCompletion.count({ where: { customerId: member, taskId: task.id } })).toBe(1);
    expect((await historyOf(world, member)).map((h) => [h.kind, h.to])).toEqual([['UPGRADE', 'SILVER'], ['UPGRADE', 'GOLD']]);
    expect((await tierEvents(world, member)).map((e) => e.toTier)).toEqual(['SILVER', 'GOLD']);
  });
});

describe('manual override', () => {
  const OVERRIDE = `mutation($input: OverrideTierInput!) {
    overrideTier(input: $input) { customer { membership { tier { code } } } change { kind reason tier { code } overrideExpiresAt actor } userErrors { __typename code message field } } }`;

  test('holds the tier, with a reason, until it expires; the earned tier moves underneath and applies again after', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(3_000), new Date(Date.now() - DAY_MS));
    await evaluate(world, member);
    const expiresAt = new Date(Date.now() + 2 * 3_600_000);
    const set = await call(
      world.api,
      OVERRIDE,
      { input: { customerId: gid('Customer', member), tierId: gid('TierLevel', world.tiers.BLACK), reason: 'Brand ambassador', expiresAt: expiresAt.toISOString() } },
      'STORE_MANAGER',
    );
    expect(set.userErrors).toEqual([]);
    expect(set.customer.membership.tier.code).toBe('BLACK');
    expect(set.change).toMatchObject({ kind: 'OVERRIDE_SET', tier: { code: 'BLACK' }, overrideExpiresAt: expiresAt.toISOString() });
    expect(set.change.reason).toContain('Brand ambassador');
    expect(set.change.actor).toMatch(/^staff:/);

    // A visit raises the earned tier underneath; the member keeps holding Black (no event: the tier held did not change).
    await completedVisit(world, member, yuan(20_000), new Date(Date.now() - 1000));
    await evaluate(world, member);
    expect(await stateOf(world, member)).toMatchObject({ earned: 'GOLD', override: 'BLACK' });
    expect((await tierEvents(world, member)).map((e) => [e.type, e.fromTier, e.toTier])).toEqual([
      ['tier.upgraded', null, 'SILVER'],
      ['tier.upgraded', 'SILVER', 'BLACK'],
    ]);

    // Reading at a time past the expiry gives the earned tier even before the job settles it…
    const state = (await world.api.owner.tierState.findUniqueOrThrow({ where: { customerId: member } }));
    expect(effectiveTierId(state, new Date(expiresAt.getTime() - 1))).toBe(world.tiers.BLACK);
    expect(effectiveTierId(state, expiresAt)).toBe(world.tiers.GOLD);
    // …and the scheduled evaluation after the expiry ends it, dated at the expiry.
    await evaluate(world, member, { at: new Date(expiresAt.getTime() + 3_600_000), scheduled: true });
    expect(await stateOf(world, member)).toMatchObject({ earned: 'GOLD', override: null, overrideUntil: null });
    expect((await historyOf(world, member)).map((h) => [h.kind, h.from, h.to, h.tier])).toEqual([
      ['UPGRADE', null, 'SILVER', 'SILVER'],
      ['OVERRIDE_SET', 'SILVER', 'BLACK', 'BLACK'],
      ['UPGRADE', 'SILVER', 'GOLD', 'BLACK'],
      ['OVERRIDE_ENDED', 'BLACK', 'GOLD', 'GOLD'],
    ]);
    expect((await historyOf(world, member)).at(-1)!.effectiveAt).toEqual(expiresAt);
    expect((await tierEvents(world, member)).at(-1)).toMatchObject({ type: 'tier.downgraded', fromTier: 'BLACK', toTier: 'GOLD', kind: 'OVERRIDE_ENDED' });
  });
});

describe('progress', () => {
  const PROGRESS = `query($id: ID!) { node(id: $id) { ... on Customer {
    membership { tier { code } }
    tierProgress {
      tier { code } earnedTier { code } qualifiedTier { code } spend { amount currencyCode } tasksCompleted windowStart
      nextTier { code name }
      toNextTier { minSpend { amount } minTasks spendRemaining { amount } tasksRemaining }
      downgradeRisk { belowSince notBefore to { code } toKeep { minSpend { amount } minTasks spendRemaining { amount } tasksRemaining } }
      override { tier { code } }
    }
  } } }`;

  test('a member between Silver and Gold sees what remains on each path to Gold', async () => {
    const member = await newMember(world);
    await completedVisit(world, member, yuan(9_000), new Date(Date.now() - 40 * DAY_MS), { storeId: world.stores.BJ });
    await completedVisit(world, member, yuan(6_000), new Date(Date.now() - 2 * DAY_MS), { storeId: world.stores.UR });
    await completedVisit(world, member, yuan(50_000), new Date(Date.now() - 2 * DAY_MS), { status: 'REFUNDED' });
    await taskDone(world, member, 'SKIN_CHECK');
    await evaluate(world, member);
    const { timezone } = await platform().orgSettings(world.chainId);
    const progress = (await call(world.api, PROGRESS, { id: gid('Customer', member) })).tierProgress;
    expect(progress).toEqual({
      tier: { code: 'SILVER' },
      earnedTier: { code: 'SILVER' },
      qualifiedTier: { code: 'SILVER' },
      spend: { amount: '15000.00', currencyCode: 'CNY' },
      tasksCompleted: 1,
      windowStart: windowStart(new Date(), timezone, 12),
      nextTier: { code: 'GOLD', name: '金卡 Gold' },
      toNextTier: [
        { minSpend: { amount: '20000.00' }, minTasks: 0, spendRemaining: { amount: '5000.00' }, tasksRemaining: 0 },
        { minSpend: { amount: '12000.00' }, minTasks: 3, spendRemaining: { amount: '0.00' }, tasksRemaining: 2 },
      ],
      downgradeRisk: null,
      override: null,
    });
    expect(windowStart(new Date(), timezone, 12) < localDate(timezone)).toBe(true);
  });

  test('a Gold member below Gold’s rules sees the grace period: when the tier could go, where to, and what keeps it', async () => {
    const member = await newMember(world);
    const belowSince = new Date(Date.now() - 10 * DAY_MS);
    await completedVisit(world, member, yuan(20_000), new Date(Date.now() - 400 * DAY_MS));
    await evaluate(world, member, { at: new Date(Date.now() - 380 * DAY_MS) });
    await completedVisit(world, member, yuan(14_000), new Date(Date.now() - 30 * DAY_MS));
    await evaluate(world, member, { at: belowSince });
    const progress = (await call(world.api, PROGRESS, { id: gid('Customer', member) })).tierProgress;
    expect(progress).toMatchObject({
      tier: { code: 'GOLD' },
      earnedTier: { code: 'GOLD' },
      qualifiedTier: { code: 'SILVER' },
      nextTier: { code: 'BLACK' },
      downgradeRisk: {
        belowSince: belowSince.toISOString(),
        notBefore: new Date(belowSince.getTime() + 30 * DAY_MS).toISOString(),
        to: { code: 'SILVER' },
        toKeep: [
          { minSpend: { amount: '20000.00' }, minTasks: 0, spendRemaining: { amount: '6000.00' }, tasksRemaining: 0 },
          { minSpend: { amount: '12000.00' }, minTasks: 3, spendRemaining: { amount: '0.00' }, tasksRemaining: 3 },
        ],
      },
    });
  });

  test('a customer who is not a member has no tier progress', async () => {
    const customer = await newMember(world, { member: false });
    await completedVisit(world, customer, yuan(30_000), new Date(Date.now() - DAY_MS));
    expect(await evaluate(world, customer)).toBeNull();
    expect((await call(world.api, PROGRESS, { id: gid('Customer', customer) })).tierProgress).toBeNull();
    expect(await world.api.owner.tierState.count({ where: { customerId: customer } })).toBe(0);
  });
});

describe('the schema follows the plugin', () => {
  test('with tiers off (no plugins, or points alone) the schema has none of its types or fields; with tiers on it has them all', async () => {
    const tierTypes = ['TierLevel', 'TierBenefits', 'TierQualification', 'TierProgress', 'TierRequirement', 'TierChange', 'TierChangeKind', 'TierTask', 'TierTaskCompletion', 'TierOverride', 'TierDowngradeRisk', 'TierChangeEvent', 'TierInUseError', 'OverrideTierInput', 'SetTierLadderInput'];
    const fields = (schema: ReturnType<typeof buildSchema>) => ({
      customer: Object.keys((schema.getType('Customer') as any).getFields()),
      membership: Object.keys((schema.getType('Membership') as any).getFields()),
      query: Object.keys(schema.getQueryType()!.getFields()),
      mutation: Object.keys(schema.getMutationType()!.getFields()),
      subscription: Object.keys(schema.getSubscriptionType()!.getFields()),
    });
    for (const plugins of [[], ['points']]) {
      const schema = buildSchema(await loadPlugins(PLUGINS_DIR, plugins));
      const types = Object.keys(schema.getTypeMap());
      expect(types.filter((name) => /^Tier|TierInput$|Tier(Ladder|Task|Override)(Input|Payload)$/.test(name))).toEqual([]);
      const f = fields(schema);
      expect(f.customer).not.toContain('tierProgress');
      expect(f.customer).not.toContain('tierHistory');
      expect(f.membership).not.toContain('tier');
      expect(f.query.filter((n) => n.startsWith('tier'))).toEqual([]);
      expect(f.mutation.filter((n) => /tier/i.test(n))).toEqual([]);
      expect(f.subscription).not.toContain('tierChanged');
    }
    const on = buildSchema(await loadPlugins(PLUGINS_DIR, ['tiers']));
    for (const type of tierTypes) expect(on.getType(type), type).toBeDefined();
    const f = fields(on);
    expect(f.customer).toEqual(expect.arrayContaining(['tierProgress', 'tierHistory']));
    expect(f.membership).toContain('tier');
    expect(f.query).toEqual(expect.arrayContaining(['tierLadder', 'tierTasks']));
    expect(f.mutation).toEqual(expect.arrayContaining(['overrideTier', 'clearTierOverride', 'recordTierTask', 'setTierLadder', 'upsertTierTask']));
    expect(f.subscription).toContain('tierChanged');
    // …and tiers alone pulls in nothing of points.
    expect(on.getType('PointsAccount')).toBeUndefined();
    expect(f.customer).not.toContain('points');
    // This file's server runs tiers without points, and answers without them.
    const probe = await world.api.gql('{ viewer { customer { points { balance } } } }', {}, 'CUSTOMER');
    expect(probe.errors?.[0]?.message).toMatch(/Cannot query field "points" on type "Customer"/);
  });
});
