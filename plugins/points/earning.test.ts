/**
 * Earning: the rules (category rates, member day in the store's time zone, a multiplier another plugin
 * contributes, rounding), exactly-once awards however often an event is delivered, reversal on refund, welcome
 * points and interaction points.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Tx } from '../../core/db/clients.ts';
import type { DomainEvent } from '../../core/events/outbox.ts';
import { dispatchEvent, runHandler } from '../../core/events/worker.ts';
import { Platform } from '../../core/platform.ts';
import type { EventHandler } from '../../core/plugin/contract.ts';
import { pointsConfigSchema, type PointsConfig } from './config.ts';
import { awardInteraction, EARN_MULTIPLIER, pointsForVisit, type EarnMultiplier } from './earning.ts';
import pointsPlugin from './plugin.ts';
import {
  balanceOf,
  call,
  entriesOf,
  discardQueuedJobs,
  expectLedgerConsistent,
  gid,
  givePoints,
  key,
  lotsOf,
  newCustomer,
  newMember,
  recordDomainEvent,
  redeem,
  createReward,
  startPointsWorld,
  type PointsWorld,
} from './testing.ts';

const CONFIG = {
  earning: {
    categoryRates: { MEDICAL_AESTHETIC: 0.5, PRODUCT: 2 },
    interactions: { 'careDiary.shared': 0, 'skinCheckIn.recorded': 35 },
  },
  // Redemptions in this file are about refunds, not the cap.
  monthlyRedemptionCap: null,
};

let world: PointsWorld;
let facial: { id: string; priceMinor: number };
let ipl: { id: string; priceMinor: number };
let sunscreen: { id: string; priceMinor: number };
beforeAll(async () => {
  world = await startPointsWorld(CONFIG);
  const service = (name: string) => world.api.owner.service.findFirstOrThrow({ where: { orgId: world.chainId, name: { contains: name } } });
  facial = await service('Hydrating facial');
  ipl = await service('IPL photo-rejuvenation');
  sunscreen = await world.api.owner.product.findFirstOrThrow({ where: { orgId: world.chainId, sku: 'LM-SUN-003' } });
});
afterAll(() => world?.api.close());
afterEach(async () => {
  await expectLedgerConsistent(world.api.owner);
  // These tests deliver events themselves; the jobs the outbox queued for them must not run in a later test.
  await discardQueuedJobs(world.api);
});

const platform = () => world.api.running.platform;
const handler = (type: string) => pointsPlugin.handlers![type] as EventHandler<unknown>;

/** Local day of month of an instant in a time zone. */
const dayIn = (at: Date, timeZone: string) => Number(new Intl.DateTimeFormat('en-US', { timeZone, day: 'numeric' }).format(at));

/** A `platform` for pointsForVisit whose extension point offers `multipliers`. */
function platformOffering(multipliers: EarnMultiplier[]) {
  return { contributions: <T>(point: string) => (point === EARN_MULTIPLIER ? multipliers : []) as T[] } as unknown as Platform;
}

describe('earn rules (pointsForVisit)', () => {
  const config = pointsConfigSchema.parse(CONFIG);
  const noTx = {} as Tx;
  const lines = [
    { kind: 'SERVICE' as const, category: 'FACIAL', amountMinor: 68_000 }, // 680 at the base rate
    { kind: 'SERVICE' as const, category: 'MEDICAL_AESTHETIC', amountMinor: 128_000 }, // 1280 × 0.5 = 640
    { kind: 'PRODUCT' as const, category: null, amountMinor: 19_800 }, // 198 × 2 = 396
  ];
  const forVisit = (completedAt: string, timezone: string, visitLines = lines, multipliers: EarnMultiplier[] = [], cfg: PointsConfig = config) =>
    pointsForVisit(cfg, { platform: platformOffering(multipliers), tx: noTx }, {
      orgId: world.chainId,
      customerId: 'c',
      completedAt: new Date(completedAt),
      timezone,
      currency: 'CNY',
      lines: visitLines,
    });

  test('points per yuan by service category, products at their own rate', async () => {
    expect(await forVisit('2026-11-10T04:00:00Z', 'Asia/Shanghai')).toEqual({ points: 680 + 640 + 396, reason: 'visit spend' });
    // Fractions of a point are dropped once, on the total (¥0.50 + ¥0.50 at rate 1 is one point, not zero).
    const cents = [
      { kind: 'SERVICE' as const, category: 'NAIL', amountMinor: 50 },
      { kind: 'SERVICE' as const, category: 'NAIL', amountMinor: 150 },
    ];
    expect((await forVisit('2026-11-10T04:00:00Z', 'Asia/Shanghai', cents)).points).toBe(2);
    expect((await forVisit('2026-11-10T04:00:00Z', 'Asia/Shanghai', [{ kind: 'SERVICE', category: 'NAIL', amountMinor: 99 }])).points).toBe(0);
  });

  test('member day is the 18th in the store’s time zone: both sides of local midnight, Shanghai and Urumqi', async () => {
    const base = 680 + 640 + 396;
    // 2026-11-17T16:30Z is 00:30 on the 18th in Shanghai (UTC+8) but 22:30 on the 17th in Urumqi (UTC+6) and in UTC.
    expect(await forVisit('2026-11-17T16:30:00Z', 'Asia/Shanghai')).toEqual({ points: base * 2, reason: 'visit spend, member day ×2' });
    expect((await forVisit('2026-11-17T16:30:00Z', 'Asia/Urumqi')).points).toBe(base);
    expect((await forVisit('2026-11-17T15:59:59Z', 'Asia/Shanghai')).points).toBe(base); // 23:59:59 on the 17th
    // Urumqi: the 18th starts at 18:00Z on the 17th and ends at 18:00Z on the 18th.
    expect((await forVisit('2026-11-17T17:59:59Z', 'Asia/Urumqi')).points).toBe(base);
    expect((await forVisit('2026-11-17T18:00:00Z', 'Asia/Urumqi')).points).toBe(base * 2);
    expect((await forVisit('2026-11-18T17:59:59Z', 'Asia/Urumqi')).points).toBe(base * 2);
    expect((await forVisit('2026-11-18T18:00:00Z', 'Asia/Urumqi')).points).toBe(base);
    // …and Shanghai's 18th ends at 16:00Z.
    expect((await forVisit('2026-11-18T15:59:59Z', 'Asia/Shanghai')).points).toBe(base * 2);
    expect((await forVisit('2026-11-18T16:00:00Z', 'Asia/Shanghai')).points).toBe(base);
    // No member day configured: no doubling.
    const plain = pointsConfigSchema.parse({ earning: { memberDay: null } });
    expect((await forVisit('2026-11-17T16:30:00Z', 'Asia/Shanghai', lines, [], plain)).points).toBe(680 + 1280 + 198);
  });

  test('a contributed multiplier applies on top of the member day, and sees who and when', async () => {
    const seen: unknown[] = [];
    const tier: EarnMultiplier = async (args) => {
      seen.push({ orgId: args.orgId, customerId: args.customerId, at: args.at.toISOString() });
      return 1.5;
    };
    const facialOnly = [{ kind: 'SERVICE' as const, category: 'FACIAL', amountMinor: 68_000 }];
    expect(await forVisit('2026-11-10T04:00:00Z', 'Asia/Shanghai', facialOnly, [tier])).toEqual({ points: 1020, reason: 'visit spend, ×1.5' });
    expect(await forVisit('2026-11-17T16:30:00Z', 'Asia/Shanghai', facialOnly, [tier])).toEqual({ points: 2040, reason: 'visit spend, member day ×2, ×1.5' });
    expect(seen[0]).toEqual({ orgId: world.chainId, customerId: 'c', at: '2026-11-10T04:00:00.000Z' });
    // 680 × 1.1 is 748, not 747 (binary floating point would say 747.999…).
    expect((await forVisit('2026-11-10T04:00:00Z', 'Asia/Shanghai', facialOnly, [async () => 1.1])).points).toBe(748);
    // A multiplier of 1 is not mentioned.
    expect((await forVisit('2026-11-10T04:00:00Z', 'Asia/Shanghai', facialOnly, [async () => 1])).reason).toBe('visit spend');
  });

  test('a plugin contributes the multiplier through the platform, and the awarded lot reflects it', async () => {
    const points = world.api.running.platform.plugins.find((p) => p.definition.name === 'points')!;
    const tiersStub = {
      definition: {
        name: 'tiers-stub',
        description: 'test double offering points.earnMultiplier',
        contributes: () => ({ [EARN_MULTIPLIER]: (async ({ tx, customerId }) => {
          // The contribution runs inside the handler's transaction (it can read the member's data there).
          const [row] = await tx.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM membership WHERE customer_id = ${customerId}::uuid`;
          return row!.n === 1 ? 3 : 1;
        }) satisfies EarnMultiplier }),
      },
      config: {},
    };
    const withTiers = new Platform(world.api.running.platform.dbs, [points, tiersStub]);
    const { customerId } = await newMember(world);
    const completedAt = '2026-11-10T04:00:00.000Z'; // not a member day
    const event = await visitCompleted(customerId, world.stores.SH, completedAt, [{ kind: 'SERVICE', category: 'FACIAL', amountMinor: 68_000 }]);
    expect(await runHandler(withTiers, 'points', points.config, handler('visit.completed'), event)).toBe(true);
    const [earn] = await entriesOf(world.api.owner, customerId);
    expect(earn).toMatchObject({ kind: 'EARN', amount: 2040, reason: 'visit spend, ×3', source: 'VISIT' });
  });
});

/** A visit.completed event as completeVisit emits it (recorded in the outbox). */
function visitCompleted(customerId: string, storeId: string, completedAt: string, lines: unknown[], visitId: string = randomUUID()): Promise<DomainEvent> {
  const totalMinor = (lines as { amountMinor: number }[]).reduce((s, l) => s + l.amountMinor, 0);
  return recordDomainEvent(world, {
    type: 'visit.completed',
    aggregateType: 'Visit',
    aggregateId: visitId,
    payload: { visitId, customerId, storeId, staffId: null, scheduledStart: completedAt, completedAt, totalMinor, currency: 'CNY', lines },
  });
}

describe('visit.completed awards once, however often it is delivered', () => {
  const facialLine = [{ kind: 'SERVICE', category: 'FACIAL', amountMinor: 68_000 }];

  test('the handler run twice in a row, then five times at once, for one event', async () => {
    const { customerId } = await newMember(world);
    const event = await visitCompleted(customerId, world.stores.SH, '2026-11-10T04:00:00.000Z', facialLine);
    const config = world.config;
    expect(await runHandler(platform(), 'points', config, handler('visit.completed'), event)).toBe(true);
    expect(await runHandler(platform(), 'points', config, handler('visit.completed'), event)).toBe(false);

    const other = await newMember(world);
    const again = await visitCompleted(other.customerId, world.stores.SH, '2026-11-10T04:00:00.000Z', facialLine);
    const runs = await Promise.allSettled(Array.from({ length: 5 }, () => runHandler(platform(), 'points', config, handler('visit.completed'), again)));
    // One claims the event; the others find it claimed (or lose the race on the claim and are retried as a job would be).
    const claimed = runs.filter((r) => r.status === 'fulfilled' && r.value === true);
    expect(claimed).toHaveLength(1);
    for (const r of runs) if (r.status === 'rejected') expect(String(r.reason)).toMatch(/unique|duplicate|P2002|23505/i);

    for (const id of [customerId, other.customerId]) {
      const entries = await entriesOf(world.api.owner, id);
      expect(entries.map((e) => [e.kind, e.amount])).toEqual([['EARN', 680]]);
      expect(await balanceOf(world.api.owner, id)).toBe(680);
    }
  });

  test('dispatchEvent twice at once, and the same visit announced by a second event: still one award', async () => {
    const { customerId } = await newMember(world);
    const visitId = randomUUID();
    const event = await visitCompleted(customerId, world.stores.SH, '2026-11-10T04:00:00.000Z', facialLine, visitId);
    const results = await Promise.allSettled([dispatchEvent(platform(), event.id), dispatchEvent(platform(), event.id)]);
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    await dispatchEvent(platform(), event.id);
    // A duplicate announcement (another event id for the same visit) is caught by the ledger's dedupe key.
    const duplicate = await visitCompleted(customerId, world.stores.SH, '2026-11-10T04:00:00.000Z', facialLine, visitId);
    await dispatchEvent(platform(), duplicate.id);
    expect((await entriesOf(world.api.owner, customerId)).map((e) => [e.kind, e.amount, e.sourceRef])).toEqual([['EARN', 680, visitId]]);
    expect(await world.api.owner.processedEvent.count({ where: { eventId: { in: [BigInt(event.id), BigInt(duplicate.id)] } } })).toBe(2);
  });

  test('a new member’s welcome and first visit handled at the same moment: both are awarded (one account, opened once)', async () => {
    const members = await Promise.all(Array.from({ length: 8 }, () => newMember(world)));
    const runs = await Promise.all(
      members.flatMap(({ customerId, membershipId }) => [
        recordDomainEvent(world, {
          type: 'membership.enrolled',
          aggregateType: 'Membership',
          aggregateId: membershipId,
          payload: { membershipId, customerId, homeStoreId: world.stores.SH, memberNumber: 'T' },
        }).then((e) => runHandler(platform(), 'points', world.config, handler('membership.enrolled'), e)),
        visitCompleted(customerId, world.stores.SH, '2026-11-10T04:00:00.000Z', facialLine).then((e) =>
          runHandler(platform(), 'points', world.config, handler('visit.completed'), e),
        ),
      ]),
    );
    expect(runs.every(Boolean)).toBe(true);
    for (const { customerId } of members) {
      expect((await entriesOf(world.api.owner, customerId)).map((e) => [e.source, e.amount]).sort()).toEqual([
        ['VISIT', 680],
        ['WELCOME', 100],
      ]);
    }
  });

  test('a visit of a customer who is not a member earns nothing and opens no account', async () => {
    const customerId = await newCustomer(world);
    const event = await visitCompleted(customerId, world.stores.SH, '2026-11-10T04:00:00.000Z', facialLine);
    expect(await runHandler(platform(), 'points', world.config, handler('visit.completed'), event)).toBe(true);
    expect(await world.api.owner.pointsAccount.count({ where: { customerId } })).toBe(0);
  });
});

// --- Through the API: complete a visit, drain the jobs, refund it ---------------------------------------------

const VISIT_MUTATION = (name: string) =>
  `mutation($input: ${name[0]!.toUpperCase()}${name.slice(1)}Input!) { ${name}(input: $input) { visit { id status completedAt } userErrors { __typename code message field } } }`;

/** Books, checks in and completes a visit at SH-01 through the API; returns its id and completion time. */
async function completeVisitViaApi(customerId: string, lineItems: Record<string, unknown>[]) {
  const booked = await call(world.api, VISIT_MUTATION('bookVisit'), {
    input: { customerId: gid('Customer', customerId), storeId: gid('Store', world.stores.SH), serviceIds: [gid('Service', facial.id)], startsAt: new Date().toISOString() },
  });
  expect(booked.userErrors).toEqual([]);
  const visitId = booked.visit.id;
  expect((await call(world.api, VISIT_MUTATION('checkInVisit'), { input: { visitId, idempotencyKey: key('checkin') } })).userErrors).toEqual([]);
  const completed = await call(world.api, VISIT_MUTATION('completeVisit'), { input: { visitId, idempotencyKey: key('complete'), lineItems } });
  expect(completed.userErrors).toEqual([]);
  return { visitId, completedAt: new Date(completed.visit.completedAt) };
}

async function refundViaApi(visitId: string) {
  const refunded = await call(world.api, VISIT_MUTATION('refundVisit'), { input: { visitId, idempotencyKey: key('refund'), reason: 'Customer unhappy' } });
  expect(refunded.userErrors).toEqual([]);
  expect(refunded.visit.status).toBe('REFUNDED');
}

describe('through the API', () => {
  const lineItems = () => [{ serviceId: gid('Service', facial.id) }, { productId: gid('Product', sunscreen.id), quantity: 2 }];
  /** 680 for the facial at 1/¥, 2 × 198 × 2/¥ for the sunscreen, doubled on the member day. */
  const expected = (completedAt: Date) => (680 + 792) * (dayIn(completedAt, 'Asia/Shanghai') === 18 ? 2 : 1);

  test('a completed visit earns once however often the jobs run; the refund reverses exactly that', async () => {
    const { customerId } = await newMember(world);
    const { visitId, completedAt } = await completeVisitViaApi(customerId, lineItems());
    await world.api.drainJobs();
    await world.api.drainJobs();
    const points = expected(completedAt);
    const [earn] = await entriesOf(world.api.owner, customerId);
    expect(await entriesOf(world.api.owner, customerId)).toHaveLength(1);
    expect(earn).toMatchObject({ kind: 'EARN', amount: points, source: 'VISIT', sourceRef: uuidOfGid(visitId), storeId: world.stores.SH, actor: 'plugin:points' });
    // The same event dispatched once more (a redelivery) changes nothing.
    const completedEvent = await world.api.owner.domainEvent.findFirstOrThrow({ where: { type: 'visit.completed', aggregateId: uuidOfGid(visitId) } });
    await dispatchEvent(platform(), completedEvent.id.toString());
    expect(await entriesOf(world.api.owner, customerId)).toHaveLength(1);
    const [lot] = await lotsOf(world.api.owner, customerId);
    expect(lot).toMatchObject({ original: points, remaining: points, earnedAt: completedAt });

    await refundViaApi(visitId);
    await world.api.drainJobs();
    await world.api.drainJobs();
    const entries = await entriesOf(world.api.owner, customerId);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ['EARN', points],
      ['REVERSAL', -points],
    ]);
    expect(entries[1]).toMatchObject({ source: 'VISIT', reversesEntryId: earn!.id, reason: 'Visit refunded' });
    expect(await balanceOf(world.api.owner, customerId)).toBe(0);
  });

  test('a refund takes back the whole award from the visit’s own lot first, leaving older points alone', async () => {
    const { customerId } = await newMember(world);
    const older = await givePoints(world, customerId, 1000, { earnedAt: new Date(Date.now() - 100 * 86_400_000) });
    const { visitId, completedAt } = await completeVisitViaApi(customerId, lineItems());
    await world.api.drainJobs();
    const points = expected(completedAt);
    // Spend 500: oldest first, so all from the older lot.
    const rewardId = await createReward(world, { pointsPrice: 100 });
    expect((await redeem(world.api, { rewardId, customerId, quantity: 5 })).userErrors).toEqual([]);
    await refundViaApi(visitId);
    await world.api.drainJobs();
    expect(await balanceOf(world.api.owner, customerId)).toBe(500);
    const lots = await lotsOf(world.api.owner, customerId);
    expect(lots.find((l) => l.id === older.lotId)!.remaining).toBe(500);
    expect(lots.find((l) => l.id !== older.lotId)!.remaining).toBe(0);
    expect((await entriesOf(world.api.owner, customerId)).at(-1)).toMatchObject({ kind: 'REVERSAL', amount: -points });
  });

  test('a refund after the points were partly spent reverses only what is left, and the balance stays at zero', async () => {
    const { customerId } = await newMember(world);
    const { visitId, completedAt } = await completeVisitViaApi(customerId, lineItems());
    await world.api.drainJobs();
    const points = expected(completedAt);
    const rewardId = await createReward(world, { pointsPrice: 100 });
    expect((await redeem(world.api, { rewardId, customerId, quantity: 10 })).userErrors).toEqual([]);
    const left = points - 1000;
    await refundViaApi(visitId);
    await world.api.drainJobs();
    await world.api.drainJobs();
    const entries = await entriesOf(world.api.owner, customerId);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ['EARN', points],
      ['REDEEM', -1000],
      ['REVERSAL', -left],
    ]);
    expect(entries[2]!.reason).toBe(`Visit refunded; 1000 points had already been spent`);
    expect(await balanceOf(world.api.owner, customerId)).toBe(0);
  });

  test('a refund when everything was spent reverses nothing and fails nothing', async () => {
    const { customerId } = await newMember(world);
    const { visitId, completedAt } = await completeVisitViaApi(customerId, [{ serviceId: gid('Service', ipl.id) }]);
    await world.api.drainJobs();
    const points = 640 * (dayIn(completedAt, 'Asia/Shanghai') === 18 ? 2 : 1);
    const rewardId = await createReward(world, { pointsPrice: points });
    expect((await redeem(world.api, { rewardId, customerId })).userErrors).toEqual([]);
    await refundViaApi(visitId);
    await world.api.drainJobs();
    const refundEvent = await world.api.owner.domainEvent.findFirstOrThrow({ where: { type: 'visit.refunded', aggregateId: uuidOfGid(visitId) } });
    expect(await world.api.owner.processedEvent.count({ where: { eventId: refundEvent.id } })).toBe(1);
    expect((await entriesOf(world.api.owner, customerId)).map((e) => e.kind)).toEqual(['EARN', 'REDEEM']);
    expect(await balanceOf(world.api.owner, customerId)).toBe(0);
  });
});

const uuidOfGid = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

describe('welcome points', () => {
  test('enrolling a member awards the welcome points once, at the home store', async () => {
    const customerId = await newCustomer(world, { storeId: world.stores.UR });
    const enrolled = await call(world.api, `mutation($input: EnrollMembershipInput!) { enrollMembership(input: $input) { membership { id } userErrors { code } } }`, {
      input: { customerId: gid('Customer', customerId) },
    });
    expect(enrolled.userErrors).toEqual([]);
    await world.api.drainJobs();
    await world.api.drainJobs();
    const event = await world.api.owner.domainEvent.findFirstOrThrow({ where: { type: 'membership.enrolled', payload: { path: ['customerId'], equals: customerId } } });
    await dispatchEvent(platform(), event.id.toString());
    // A second announcement of the same enrolment (new event id) still awards nothing more.
    const again = await recordDomainEvent(world, { type: 'membership.enrolled', aggregateType: 'Membership', aggregateId: event.aggregateId, payload: event.payload as Record<string, unknown> });
    await dispatchEvent(platform(), again.id);
    const entries = await entriesOf(world.api.owner, customerId);
    expect(entries.map((e) => [e.kind, e.amount, e.source, e.storeId])).toEqual([['EARN', 100, 'WELCOME', world.stores.UR]]);
    expect(await balanceOf(world.api.owner, customerId)).toBe(100);
  });
});

describe('interaction points', () => {
  async function interaction(type: string, customerId: string, aggregateId: string = randomUUID(), extra: Record<string, unknown> = {}) {
    const event = await recordDomainEvent(world, { type, aggregateType: 'Interaction', aggregateId, payload: { customerId, ...extra } });
    await dispatchEvent(platform(), event.id);
    return event;
  }

  test('each interaction earns once per thing done, at the configured or default rate', async () => {
    const { customerId } = await newMember(world);
    const survey = randomUUID();
    await interaction('survey.completed', customerId, survey, { storeId: world.stores.BJ });
    await interaction('survey.completed', customerId, survey); // the same survey reported again
    await interaction('survey.completed', customerId); // another survey
    await interaction('customer.profileCompleted', customerId, customerId);
    await interaction('customer.profileCompleted', customerId, customerId);
    await interaction('skinCheckIn.recorded', customerId); // configured: 35
    await interaction('careDiary.shared', customerId); // configured: 0, turned off
    const entries = await entriesOf(world.api.owner, customerId);
    expect(entries.map((e) => [e.kind, e.amount, e.source])).toEqual([
      ['EARN', 50, 'SURVEY'],
      ['EARN', 50, 'SURVEY'],
      ['EARN', 20, 'PROFILE'],
      ['EARN', 35, 'HEALTH_CHECK_IN'],
    ]);
    expect(entries[0]).toMatchObject({ sourceRef: survey, storeId: world.stores.BJ, reason: 'survey.completed' });
    expect(entries[1]!.storeId).toBeNull();
    expect(await balanceOf(world.api.owner, customerId)).toBe(155);
  });

  test('the handler itself is idempotent per aggregate, even when called directly and concurrently', async () => {
    const { customerId } = await newMember(world);
    const aggregateId = randomUUID();
    const events = await Promise.all([1, 2, 3].map(() =>
      recordDomainEvent(world, { type: 'survey.completed', aggregateType: 'Survey', aggregateId, payload: { customerId } }),
    ));
    const award = awardInteraction('SURVEY', 50, 'survey.completed') as EventHandler<unknown>;
    const runs = await Promise.allSettled(events.map((e) => runHandler(platform(), 'points', world.config, award, e)));
    expect(runs.filter((r) => r.status === 'fulfilled')).not.toHaveLength(0);
    expect((await entriesOf(world.api.owner, customerId)).map((e) => e.amount)).toEqual([50]);
  });

  test('an interaction of a non-member, or without a customer, earns nothing', async () => {
    const stranger = await newCustomer(world);
    await interaction('survey.completed', stranger);
    const anonymous = await recordDomainEvent(world, { type: 'survey.completed', aggregateType: 'Survey', aggregateId: randomUUID(), payload: {} });
    await dispatchEvent(platform(), anonymous.id);
    expect(await world.api.owner.pointsAccount.count({ where: { customerId: stranger } })).toBe(0);
  });
});

