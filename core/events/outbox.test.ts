/**
 * The transactional outbox and its durable delivery: an event is written in its change's transaction and becomes a
 * graphile-worker job in that same transaction; handlers run at least once and take effect exactly once; a crash
 * between commit and handling loses nothing; one customer's events are handled in order.
 *
 * Handlers here belong to a test-only plugin declared in this file (nothing is added to plugins/): it is given to a
 * `Platform` directly, and its effects go to tables this file creates in the test database, granted to crm_app.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Databases } from '../db/clients.ts';
import { Platform } from '../platform.ts';
import type { EventHandler, PluginDefinition } from '../plugin/contract.ts';
import { gid, startTestPlatform, type TestPlatform } from '../testing/platform.ts';
import { inTransaction, toDomainEvent, type DomainEvent } from './outbox.ts';
import { dispatchEvent, registerEventHandlers, runHandler, startWorker } from './worker.ts';

type Owner = TestPlatform['owner'];

const EFFECT_TABLES = `
  CREATE TABLE IF NOT EXISTS test_handler_effect (
    handler text NOT NULL,
    event_id bigint NOT NULL,
    org_id uuid NOT NULL,
    times int NOT NULL DEFAULT 1,
    handled_seq bigserial,
    PRIMARY KEY (handler, event_id)
  );
  GRANT SELECT, INSERT, UPDATE ON test_handler_effect TO crm_app;
  GRANT USAGE ON SEQUENCE test_handler_effect_handled_seq_seq TO crm_app;`;

/** Creates the effect table (one statement per call: the owner client sends prepared statements). */
async function createEffectTables(owner: Owner) {
  for (const statement of EFFECT_TABLES.split(';').map((s) => s.trim()).filter(Boolean)) await owner.$executeRawUnsafe(statement);
}

/**
 * A handler whose effect is NOT idempotent by itself: each run adds 1 to the event's counter. Only the platform's
 * claim in processed_event can keep a redelivery from counting twice.
 */
function countingHandler(name: string, options: { delayMs?: (event: DomainEvent) => number; failWith?: () => Error | null } = {}): EventHandler<unknown> {
  return async (event, { tx }) => {
    // Work first, effect last: `handled_seq` then tells the order in which handlers finished.
    const delay = options.delayMs?.(event) ?? 0;
    if (delay > 0) await tx.$executeRaw`SELECT pg_sleep(${delay / 1000})`;
    await tx.$executeRaw`
      INSERT INTO test_handler_effect (handler, event_id, org_id) VALUES (${name}, ${BigInt(event.id)}, ${event.orgId}::uuid)
      ON CONFLICT (handler, event_id) DO UPDATE SET times = test_handler_effect.times + 1`;
    const failure = options.failWith?.();
    if (failure) throw failure;
  };
}

function effectsPlugin(name: string, handler: EventHandler<unknown>, types = ['visit.booked', 'visit.checkedIn', 'visit.completed', 'visit.cancelled']): PluginDefinition<any> {
  return { name, description: 'test-only plugin', handlers: Object.fromEntries(types.map((type) => [type, handler])) };
}

/** A platform with only the given plugin, and a graphile-worker running its handlers (as `startPlatform` does). */
async function startHandlerWorker(ownerUrl: string, plugin: PluginDefinition<any>, concurrency: number) {
  const dbs = new Databases({ ownerUrl, poolSize: concurrency + 4 });
  const platform = new Platform(dbs, [{ definition: plugin, config: {} }]);
  await registerEventHandlers(dbs.system, platform.plugins);
  const runner = await startWorker(platform, ownerUrl, concurrency);
  return {
    platform,
    async stop() {
      await runner.stop();
      await dbs.close();
    },
  };
}

async function effects(owner: Owner, handler: string) {
  const rows = await owner.$queryRaw<{ event_id: bigint; times: number }[]>`
    SELECT event_id, times FROM test_handler_effect WHERE handler = ${handler} ORDER BY handled_seq`;
  return rows.map((row) => ({ eventId: row.event_id.toString(), times: row.times }));
}

async function claims(owner: Owner, handler: string, eventId: string) {
  return owner.processedEvent.count({ where: { handler, eventId: BigInt(eventId) } });
}

/** The outbox and the job queue as they stand: events, and graphile-worker 0.17's jobs (view + payload table). */
async function outboxState(owner: Owner) {
  const events = await owner.domainEvent.findMany({ orderBy: { id: 'asc' } });
  const jobs = await owner.$queryRaw<{ id: bigint; task_identifier: string; queue_name: string | null; attempts: number; locked_at: Date | null; last_error: string | null; payload: { id: number } }[]>`
    SELECT j.id, j.task_identifier, j.queue_name, j.attempts, j.locked_at, j.last_error, p.payload
    FROM graphile_worker.jobs j JOIN graphile_worker._private_jobs p ON p.id = j.id
    ORDER BY j.id`;
  return { events, jobs };
}

async function eventually<T>(probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, what = 'the condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Fixture {
  chainId: string;
  sh01: string;
  serviceId: string;
  staffId: string;
  customers: string[];
}

async function fixture(api: TestPlatform): Promise<Fixture> {
  const chainId = api.principals.OWNER!.orgId;
  const sh01 = (await api.owner.store.findFirstOrThrow({ where: { orgId: chainId, code: 'SH-01' } })).id;
  const serviceId = (await api.owner.service.findFirstOrThrow({ where: { orgId: chainId, active: true }, orderBy: { name: 'asc' } })).id;
  const staffId = (
    await api.owner.staff.findFirstOrThrow({ where: { orgId: chainId, active: true, role: 'BEAUTICIAN', stores: { some: { storeId: sh01 } } }, orderBy: { name: 'asc' } })
  ).id;
  const customers = (await api.owner.customer.findMany({ where: { orgId: chainId }, orderBy: { phone: 'asc' }, take: 6, select: { id: true } })).map((c) => c.id);
  return { chainId, sh01, serviceId, staffId, customers };
}

let hour = 0;
/** Distinct future start times (beyond the seeded bookings), so bookings of different tests never overlap. */
function nextStart(): Date {
  hour += 3;
  return new Date(Date.now() + 320 * 86_400_000 + hour * 3_600_000);
}

async function book(api: TestPlatform, f: Fixture, customerId: string, options: { staffId?: string; startsAt?: Date } = {}) {
  return api.gql(
    `mutation($input: BookVisitInput!) { bookVisit(input: $input) { visit { id } userErrors { __typename code message } } }`,
    {
      input: {
        customerId: gid('Customer', customerId),
        storeId: gid('Store', f.sh01),
        staffId: options.staffId ? gid('Staff', options.staffId) : undefined,
        serviceIds: [gid('Service', f.serviceId)],
        startsAt: (options.startsAt ?? nextStart()).toISOString(),
      },
    },
    'FRONT_DESK',
  );
}

async function bookOk(api: TestPlatform, f: Fixture, customerId: string) {
  const result = await book(api, f, customerId);
  expect(result.errors).toBeUndefined();
  expect(result.data.bookVisit.userErrors).toEqual([]);
  return result.data.bookVisit.visit.id as string;
}

async function mutateOk(api: TestPlatform, name: 'checkInVisit' | 'completeVisit' | 'cancelVisit', input: Record<string, unknown>) {
  const inputType = name[0]!.toUpperCase() + name.slice(1) + 'Input';
  const result = await api.gql(`mutation($input: ${inputType}!) { ${name}(input: $input) { userErrors { code message } } }`, { input }, 'FRONT_DESK');
  expect(result.errors).toBeUndefined();
  expect(result.data[name].userErrors).toEqual([]);
}

async function eventOf(owner: Owner, visitGid: string, type: string): Promise<DomainEvent> {
  const visitId = Buffer.from(visitGid, 'base64').toString().split(':')[1]!;
  return toDomainEvent(await owner.domainEvent.findFirstOrThrow({ where: { aggregateId: visitId, type } }));
}

let api: TestPlatform;
let f: Fixture;
beforeAll(async () => {
  api = await startTestPlatform();
  f = await fixture(api);
  await createEffectTables(api.owner);
  // The API under test has no plugins: the visit events get jobs because the handlers these tests start handle them.
  await registerEventHandlers(api.running.platform.dbs.system, [{ definition: effectsPlugin('outbox-test', countingHandler('outbox-test')) }]);
});
afterAll(() => api?.close());

describe('the outbox is written in the change\'s transaction', () => {
  test('a successful mutation leaves exactly one event and one queued job; a failing one leaves neither', async () => {
    const customerId = f.customers[0]!;
    const startsAt = nextStart();
    const before = await outboxState(api.owner);

    const booked = await book(api, f, customerId, { staffId: f.staffId, startsAt });
    expect(booked.data.bookVisit.userErrors).toEqual([]);
    const visitId = Buffer.from(booked.data.bookVisit.visit.id, 'base64').toString().split(':')[1]!;
    const afterSuccess = await outboxState(api.owner);
    const newEvents = afterSuccess.events.slice(before.events.length);
    expect(newEvents.map((e) => ({ type: e.type, aggregateId: e.aggregateId, streamKey: e.streamKey, orgId: e.orgId }))).toEqual([
      { type: 'visit.booked', aggregateId: visitId, streamKey: customerId, orgId: f.chainId },
    ]);
    const newJobs = afterSuccess.jobs.filter((job) => !before.jobs.some((old) => old.id === job.id));
    expect(newJobs.map((job) => ({ task: job.task_identifier, queue: job.queue_name, attempts: job.attempts, locked: job.locked_at, eventId: String(job.payload.id) }))).toEqual([
      { task: 'domain-event', queue: `stream:${customerId}`, attempts: 0, locked: null, eventId: newEvents[0]!.id.toString() },
    ]);

    // The same staff member at an overlapping time: the database refuses the visit, and the whole transaction goes.
    const visitsBefore = await api.owner.visit.count();
    const conflict = await book(api, f, f.customers[1]!, { staffId: f.staffId, startsAt: new Date(startsAt.getTime() + 10 * 60_000) });
    expect(conflict.errors).toBeUndefined();
    expect(conflict.data.bookVisit).toEqual({
      visit: null,
      userErrors: [{ __typename: 'ConflictError', code: 'STAFF_DOUBLE_BOOKED', message: expect.any(String) }],
    });
    const afterFailure = await outboxState(api.owner);
    expect(afterFailure.events.map((e) => e.id)).toEqual(afterSuccess.events.map((e) => e.id));
    expect(afterFailure.jobs.map((j) => j.id)).toEqual(afterSuccess.jobs.map((j) => j.id));
    expect(await api.owner.visit.count()).toBe(visitsBefore);
  });

  test('an event of a type no plugin handles is recorded, but queues no job', async () => {
    const platform = api.running.platform;
    const customerId = f.customers[0]!;
    const before = await outboxState(api.owner);
    const event = await inTransaction(platform, platform.dbs.forOrg(f.chainId), f.chainId, 'test', (_tx, emit) =>
      emit({ type: 'test.nobodyHandles', aggregateType: 'Customer', aggregateId: customerId, streamKey: customerId, payload: {} }),
    );
    const after = await outboxState(api.owner);
    expect(after.events.slice(before.events.length).map((e) => e.id.toString())).toEqual([event.id]);
    expect(after.jobs.map((j) => j.id)).toEqual(before.jobs.map((j) => j.id));
  });

  test('an event emitted before the work fails is rolled back with it: no row, no job, nothing published live', async () => {
    const customerId = f.customers[0]!;
    const platform = api.running.platform;
    const tagsBefore = (await api.owner.customer.findUniqueOrThrow({ where: { id: customerId } })).tags;
    const before = await outboxState(api.owner);
    const live = platform.subscribe(f.chainId)[Symbol.asyncIterator]();
    const published: DomainEvent[] = [];
    const reading = (async () => {
      for (;;) {
        const next = await live.next();
        if (next.done) return;
        published.push(next.value);
      }
    })();

    await expect(
      inTransaction(platform, platform.dbs.forOrg(f.chainId), f.chainId, 'test', async (tx, emit) => {
        await tx.customer.update({ where: { id: customerId }, data: { tags: ['rolled-back'] } });
        await emit({ type: 'customer.updated', aggregateType: 'Customer', aggregateId: customerId, streamKey: customerId, payload: { customerId } });
        throw new Error('work failed after emitting');
      }),
    ).rejects.toThrow('work failed after emitting');

    // A marker published afterwards: once it has arrived, anything published before it has too.
    const marker = { id: '0', orgId: f.chainId, actor: 'test', type: 'test.marker', aggregateType: 'Test', aggregateId: randomUUID(), streamKey: null, payload: {}, occurredAt: new Date().toISOString() };
    platform.publish(marker);
    await eventually(async () => published.some((e) => e.type === 'test.marker'), 10_000, 'the marker');
    await live.return?.();
    await reading;

    // An earlier test's event can still be on its way to live subscribers; only one recorded after `before` counts.
    const lastBefore = before.events.at(-1)?.id ?? 0n;
    expect(published.filter((e) => e.type === 'test.marker' || BigInt(e.id) > lastBefore).map((e) => e.type)).toEqual(['test.marker']);
    const after = await outboxState(api.owner);
    expect(after.events.map((e) => e.id)).toEqual(before.events.map((e) => e.id));
    expect(after.jobs.map((j) => j.id)).toEqual(before.jobs.map((j) => j.id));
    expect((await api.owner.customer.findUniqueOrThrow({ where: { id: customerId } })).tags).toEqual(tagsBefore);
  });
});

describe('handlers take effect exactly once', () => {
  test('the same event delivered twice, one after the other, has one effect (runHandler and the worker\'s dispatch)', async () => {
    const event = await eventOf(api.owner, await bookOk(api, f, f.customers[0]!), 'visit.booked');
    const handler = countingHandler('sequential');
    const claim = 'sequential:visit.booked';
    expect(await runHandler(api.running.platform, 'sequential', {}, handler, event)).toBe(true);
    expect(await runHandler(api.running.platform, 'sequential', {}, handler, event)).toBe(false);
    expect(await effects(api.owner, 'sequential')).toEqual([{ eventId: event.id, times: 1 }]);
    expect(await claims(api.owner, claim, event.id)).toBe(1);

    // The worker's entry point, for a plugin that handles it: twice, still once in effect.
    const dbs = new Databases({ ownerUrl: api.database.url, poolSize: 4 });
    try {
      const platform = new Platform(dbs, [{ definition: effectsPlugin('dispatched', countingHandler('dispatched')), config: {} }]);
      await dispatchEvent(platform, event.id);
      await dispatchEvent(platform, event.id);
    } finally {
      await dbs.close();
    }
    expect(await effects(api.owner, 'dispatched')).toEqual([{ eventId: event.id, times: 1 }]);
  });

  test('the same event delivered ten times at once has one effect', async () => {
    const event = await eventOf(api.owner, await bookOk(api, f, f.customers[1]!), 'visit.booked');
    // Each delivery holds its transaction open a while, so the ten really overlap.
    const handler = countingHandler('concurrent', { delayMs: () => 200 });
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => runHandler(api.running.platform, 'concurrent', {}, handler, event)));
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    expect(await effects(api.owner, 'concurrent')).toEqual([{ eventId: event.id, times: 1 }]);
    expect(await claims(api.owner, 'concurrent:visit.booked', event.id)).toBe(1);
  });

  test('a handler that throws leaves nothing behind, not even its claim; a redelivery then takes effect once', async () => {
    const event = await eventOf(api.owner, await bookOk(api, f, f.customers[2]!), 'visit.booked');
    const failing = countingHandler('flaky', { failWith: () => new Error('handler crashed') });
    await expect(runHandler(api.running.platform, 'flaky', {}, failing, event)).rejects.toThrow('handler crashed');
    expect(await effects(api.owner, 'flaky')).toEqual([]);
    expect(await claims(api.owner, 'flaky:visit.booked', event.id)).toBe(0);

    expect(await runHandler(api.running.platform, 'flaky', {}, countingHandler('flaky'), event)).toBe(true);
    expect(await effects(api.owner, 'flaky')).toEqual([{ eventId: event.id, times: 1 }]);
    expect(await claims(api.owner, 'flaky:visit.booked', event.id)).toBe(1);
  });

  test('through the job queue: a failed job is retried by graphile-worker and then takes effect once', async () => {
    await api.drainJobs(); // earlier tests' jobs, so this worker only has this test's
    const visit = await bookOk(api, f, f.customers[3]!);
    const event = await eventOf(api.owner, visit, 'visit.booked');
    let attempts = 0;
    const handler = countingHandler('retried', { failWith: () => (++attempts === 1 ? new Error('first attempt fails') : null) });
    const worker = await startHandlerWorker(api.database.url, effectsPlugin('retried', handler, ['visit.booked']), 1);
    try {
      const failed = await eventually(async () => {
        const { jobs } = await outboxState(api.owner);
        return jobs.find((job) => String(job.payload.id) === event.id && job.attempts === 1 && job.locked_at === null);
      }, 15_000, 'the first attempt to fail');
      expect(failed.last_error).toContain('first attempt fails');
      expect(await effects(api.owner, 'retried')).toEqual([]);
      // graphile-worker retries after exp(1) ≈ 2.7 s.
      await eventually(async () => (await effects(api.owner, 'retried')).length > 0, 20_000, 'the retry to take effect');
      await eventually(async () => !(await outboxState(api.owner)).jobs.some((job) => String(job.payload.id) === event.id), 10_000, 'the job to be done');
    } finally {
      await worker.stop();
    }
    expect(attempts).toBe(2);
    expect(await effects(api.owner, 'retried')).toEqual([{ eventId: event.id, times: 1 }]);
  });
});

describe('durability and order', () => {
  test('a job left queued when its API process stopped before handling it is handled by the next process', async () => {
    // Its own database: the first process must close without taking the data with it.
    const base = await startTestPlatform();
    try {
      await createEffectTables(base.owner);
      const g = await fixture(base);
      // Both processes run a plugin that handles visit events, which the first registered as it started.
      const recovered = effectsPlugin('recovered', countingHandler('recovered'));
      await registerEventHandlers(base.running.platform.dbs.system, [{ definition: recovered }]);
      const first = await startTestPlatform({ shareDatabaseWith: base, workerConcurrency: 0 });
      const visit = await bookOk(first, g, g.customers[0]!);
      await first.close();

      const event = await eventOf(base.owner, visit, 'visit.booked');
      const queued = (await outboxState(base.owner)).jobs.filter((job) => String(job.payload.id) === event.id);
      expect(queued.map((job) => ({ attempts: job.attempts, locked: job.locked_at }))).toEqual([{ attempts: 0, locked: null }]);
      expect(await effects(base.owner, 'recovered')).toEqual([]);

      const next = await startHandlerWorker(base.database.url, recovered, 1);
      try {
        await eventually(async () => (await effects(base.owner, 'recovered')).length > 0, 20_000, 'the next process to handle the event');
        await eventually(async () => (await outboxState(base.owner)).jobs.length === 0, 10_000, 'the queue to empty');
      } finally {
        await next.stop();
      }
      expect(await effects(base.owner, 'recovered')).toEqual([{ eventId: event.id, times: 1 }]);
    } finally {
      await base.close();
    }
  });

  test('one customer\'s events are handled in the order they happened, even by a worker running jobs in parallel', async () => {
    await api.drainJobs();
    const customerId = f.customers[4]!;
    const first = await bookOk(api, f, customerId);
    await mutateOk(api, 'checkInVisit', { visitId: first, idempotencyKey: randomUUID() });
    await mutateOk(api, 'completeVisit', { visitId: first, idempotencyKey: randomUUID(), lineItems: [{ serviceId: gid('Service', f.serviceId) }] });
    const second = await bookOk(api, f, customerId);
    await mutateOk(api, 'cancelVisit', { visitId: second, reason: 'changed plans' });
    await bookOk(api, f, customerId);

    const { events, jobs } = await outboxState(api.owner);
    const stream = events.filter((e) => e.streamKey === customerId && jobs.some((job) => String(job.payload.id) === e.id.toString()));
    expect(stream.map((e) => e.type)).toEqual(['visit.booked', 'visit.checkedIn', 'visit.completed', 'visit.booked', 'visit.cancelled', 'visit.booked']);
    expect(new Set(jobs.filter((job) => stream.some((e) => e.id.toString() === String(job.payload.id))).map((job) => job.queue_name))).toEqual(
      new Set([`stream:${customerId}`]),
    );

    // Earlier events take longer to handle: run side by side, later ones would finish first.
    const position = new Map(stream.map((e, index) => [e.id.toString(), index]));
    const handler = countingHandler('ordered', { delayMs: (event) => (stream.length - (position.get(event.id) ?? stream.length)) * 80 });
    const worker = await startHandlerWorker(api.database.url, effectsPlugin('ordered', handler), 4);
    try {
      await eventually(async () => (await effects(api.owner, 'ordered')).filter((e) => position.has(e.eventId)).length === stream.length, 30_000, 'all six events');
    } finally {
      await worker.stop();
    }
    const handled = (await effects(api.owner, 'ordered')).filter((e) => position.has(e.eventId));
    expect(handled).toEqual(stream.map((e) => ({ eventId: e.id.toString(), times: 1 })));
  });

  test('a failed event holds back the rest of its customer\'s stream until its retry succeeds', async () => {
    await api.drainJobs();
    const customerId = f.customers[5]!;
    const first = await bookOk(api, f, customerId);
    await mutateOk(api, 'checkInVisit', { visitId: first, idempotencyKey: randomUUID() });
    await mutateOk(api, 'cancelVisit', { visitId: first, reason: 'feeling unwell' });
    const stream = (await api.owner.domainEvent.findMany({ where: { streamKey: customerId }, orderBy: { id: 'asc' } })).slice(-3);
    expect(stream.map((e) => e.type)).toEqual(['visit.booked', 'visit.checkedIn', 'visit.cancelled']);
    const firstId = stream[0]!.id.toString();

    // The stream's first event fails once; graphile-worker frees the queue while that job waits for its retry.
    let failures = 0;
    const handler = countingHandler('held', { failWith: () => null });
    const failingFirst: EventHandler<unknown> = async (event, ctx) => {
      if (event.id === firstId && failures === 0) {
        failures += 1;
        throw new Error('first event fails once');
      }
      await handler(event, ctx);
    };
    const worker = await startHandlerWorker(api.database.url, effectsPlugin('held', failingFirst), 4);
    try {
      await eventually(async () => (await effects(api.owner, 'held')).filter((e) => stream.some((s) => s.id.toString() === e.eventId)).length === 3, 30_000, 'the stream to be handled');
    } finally {
      await worker.stop();
    }
    expect(failures).toBe(1);
    const handled = (await effects(api.owner, 'held')).filter((e) => stream.some((s) => s.id.toString() === e.eventId));
    expect(handled).toEqual(stream.map((e) => ({ eventId: e.id.toString(), times: 1 })));
  });
});
