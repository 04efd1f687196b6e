/**
 * Shared arrangements and checks for the packages plugin's tests (not a test file itself). Arrangements that the
 * API cannot make (a visit completed yesterday, a package about to expire) go through the owner client; checks read
 * the tables through it too.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { expect } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import { gid, startTestPlatform, type TestPlatform } from '../../core/testing/platform.ts';

export { gid };
export type As = Parameters<TestPlatform['gql']>[2];
export type Owner = TestPlatform['owner'];
export const DAY_MS = 86_400_000;

export interface World {
  api: TestPlatform;
  chainId: string;
  clinicId: string;
  otherChainId: string;
  stores: { SH: string; BJ: string; CD: string; UR: string };
  clinicStore: string;
  otherStore: string;
  services: { hydrating: string; hifu: string; repair: string; peel: string; ipl: string; spa: string };
  otherService: string;
  clinicService: string;
  clinicOwner: Principal;
}

export async function startWorld(pluginConfig: Record<string, unknown> = {}): Promise<World> {
  const api = await startTestPlatform({ plugins: ['packages'], pluginConfig: { packages: pluginConfig } });
  const o = api.owner;
  const chainId = api.principals.OWNER!.orgId;
  const clinicId = api.principals.CLINIC_STAFF!.orgId;
  const otherChainId = api.principals.OTHER_CHAIN_OWNER!.orgId;
  const store = async (code: string) => (await o.store.findFirstOrThrow({ where: { orgId: chainId, code } })).id;
  const service = async (part: string, orgId = chainId) => (await o.service.findFirstOrThrow({ where: { orgId, name: { contains: part } } })).id;
  const clinicOwnerStaff = await o.staff.findFirstOrThrow({ where: { orgId: clinicId, role: 'OWNER' } });
  return {
    api,
    chainId,
    clinicId,
    otherChainId,
    stores: { SH: await store('SH-01'), BJ: await store('BJ-01'), CD: await store('CD-01'), UR: await store('UR-01') },
    clinicStore: (await o.store.findFirstOrThrow({ where: { orgId: clinicId } })).id,
    otherStore: (await o.store.findFirstOrThrow({ where: { orgId: otherChainId } })).id,
    services: {
      hydrating: await service('Hydrating facial'),
      hifu: await service('HIFU'),
      repair: await service('Post-procedure repair'),
      peel: await service('chemical peel'),
      ipl: await service('IPL'),
      spa: await service('body spa'),
    },
    otherService: (await o.service.findFirstOrThrow({ where: { orgId: otherChainId } })).id,
    clinicService: await service('Ultraformer', clinicId),
    clinicOwner: { kind: 'STAFF', orgId: clinicId, staffId: clinicOwnerStaff.id, role: 'OWNER', storeIds: [] },
  };
}

let phoneSequence = 0;

/** A fresh customer of an organization (the chain by default), with an optional skin profile. */
export async function newCustomer(
  world: World,
  options: { orgId?: string; storeId?: string; allergies?: string[]; sensitivities?: string[]; name?: string } = {},
): Promise<string> {
  const orgId = options.orgId ?? world.chainId;
  phoneSequence += 1;
  const suffix = `${process.pid % 1000}`.padStart(3, '0') + String(phoneSequence).padStart(5, '0');
  const customer = await world.api.owner.customer.create({
    data: {
      orgId,
      name: options.name ?? `Package test ${randomUUID().slice(0, 8)}`,
      phone: `+86197${suffix}`,
      homeStoreId: options.storeId ?? (orgId === world.chainId ? world.stores.SH : orgId === world.otherChainId ? world.otherStore : null),
    },
  });
  await world.api.owner.customerFact.create({ data: { customerId: customer.id, orgId, totalSpendMinor: 123_456n, visitCount: 3 } });
  if (options.allergies || options.sensitivities) {
    await world.api.owner.skinProfile.create({
      data: { customerId: customer.id, orgId, skinType: 'SENSITIVE', allergies: options.allergies ?? [], sensitivities: options.sensitivities ?? [] },
    });
  }
  return customer.id;
}

/** A visit of the customer at a store, in a given state (completed by default), with one service line. */
export async function visitFor(
  world: World,
  customerId: string,
  options: { storeId?: string; orgId?: string; status?: 'BOOKED' | 'CHECKED_IN' | 'COMPLETED' | 'CANCELLED'; serviceId?: string; at?: Date } = {},
): Promise<string> {
  const orgId = options.orgId ?? world.chainId;
  const status = options.status ?? 'COMPLETED';
  const at = options.at ?? (status === 'BOOKED' ? new Date(Date.now() + 2 * DAY_MS) : new Date(Date.now() - 3_600_000));
  const serviceId = options.serviceId ?? (orgId === world.otherChainId ? world.otherService : world.services.hydrating);
  const visit = await world.api.owner.visit.create({
    data: {
      orgId,
      storeId: options.storeId ?? (orgId === world.otherChainId ? world.otherStore : world.stores.SH),
      customerId,
      status,
      scheduledStart: at,
      scheduledEnd: new Date(at.getTime() + 3_600_000),
      checkedInAt: status === 'CHECKED_IN' || status === 'COMPLETED' ? at : null,
      completedAt: status === 'COMPLETED' ? new Date(at.getTime() + 3_000_000) : null,
      totalMinor: 68_000,
      lines: {
        create: [{ orgId, position: 0, kind: 'SERVICE', serviceId, description: 'test', quantity: 1, unitPriceMinor: 68_000, amountMinor: 68_000 }],
      },
    },
  });
  return visit.id;
}

/** An active partnership between the chain and a clinic, arranged directly. */
export async function activePartnership(world: World, clinicId = world.clinicId, orgId = world.chainId): Promise<string> {
  const existing = await world.api.owner.clinicPartnership.findFirst({ where: { orgId, clinicOrgId: clinicId, status: { not: 'ENDED' } } });
  if (existing?.status === 'ACTIVE') return existing.id;
  if (existing) await world.api.owner.clinicPartnership.update({ where: { id: existing.id }, data: { status: 'ENDED', endedAt: new Date(), suspendedByOrgId: null } });
  const row = await world.api.owner.clinicPartnership.create({
    data: { orgId, clinicOrgId: clinicId, status: 'ACTIVE', proposedByOrgId: orgId, proposedBy: 'test', acceptedAt: new Date(), acceptedBy: 'test' },
  });
  return row.id;
}

/** Appends a consent decision as core's recordConsent does. */
export async function consent(world: World, customerId: string, granted: boolean, clinicId = world.clinicId, at = new Date()) {
  await world.api.owner.consent.create({
    data: { orgId: world.chainId, customerId, purpose: 'PARTNER_SHARING', partnerOrgId: clinicId, granted, recordedBy: 'test', recordedAt: at },
  });
}

/** A second clinic organization with a store and a consultant, as a principal. */
export async function secondClinic(world: World): Promise<{ clinicId: string; staff: Principal; owner: Principal }> {
  const o = world.api.owner;
  const org = await o.organization.create({ data: { kind: 'CLINIC', name: `Other clinic ${randomUUID().slice(0, 6)}`, timezone: 'Asia/Shanghai', currency: 'CNY' } });
  const store = await o.store.create({ data: { orgId: org.id, code: 'OC-01', name: 'Other clinic', timezone: 'Asia/Shanghai' } });
  const staff = await o.staff.create({ data: { orgId: org.id, name: 'Dr Other', role: 'CONSULTANT' } });
  const boss = await o.staff.create({ data: { orgId: org.id, name: 'Other owner', role: 'OWNER' } });
  await o.staffStore.create({ data: { staffId: staff.id, storeId: store.id, orgId: org.id } });
  return {
    clinicId: org.id,
    staff: { kind: 'STAFF', orgId: org.id, staffId: staff.id, role: 'CONSULTANT', storeIds: [store.id] },
    owner: { kind: 'STAFF', orgId: org.id, staffId: boss.id, role: 'OWNER', storeIds: [] },
  };
}

/** A chain staff principal bound to one store. */
export function staffAt(world: World, storeId: string, role: 'FRONT_DESK' | 'STORE_MANAGER' | 'BEAUTICIAN' | 'CONSULTANT' = 'STORE_MANAGER'): Principal {
  return { kind: 'STAFF', orgId: world.chainId, staffId: randomUUID(), role, storeIds: [storeId] };
}

/** A raw connection as the application role, under one organization's row-level security. */
export async function appRole(world: World, orgId: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: world.api.database.url });
  await client.connect();
  await client.query('SET ROLE crm_app');
  await client.query("SELECT set_config('app.org_id', $1, false)", [orgId]);
  return client;
}

// --- Checks ------------------------------------------------------------------------------------------------------

const TABLES = [
  'clinic_partnership',
  'follow_up_template',
  'package_template',
  'package_template_service',
  'customer_package',
  'customer_package_service',
  'package_refund',
  'package_session_entry',
  'package_adjustment',
  'treatment_plan',
  'treatment_plan_step',
  'follow_up_task',
  'contraindication_ack',
  'contraindication_flag',
  'idempotency_record',
  'domain_event',
  'consent',
];

/** Every row of every table a packages operation could touch, hashed: equal fingerprints mean nothing changed. */
export async function fingerprint(owner: Owner): Promise<Record<string, string>> {
  const rows = await owner.$queryRawUnsafe<{ t: string; h: string }[]>(
    TABLES.map((t) => `SELECT '${t}' AS t, count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM ${t} x`).join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [r.t, r.h]));
}

/**
 * Sessions add up: every line's remaining equals its total less its ledger entries, is never negative, and its
 * value equals the value of its entries plus what its remaining sessions are worth; a refund's amount equals the
 * value of its entries.
 */
export async function expectLedgerConsistent(owner: Owner): Promise<void> {
  const wrong = await owner.$queryRaw<{ package: string; service: string }[]>`
    SELECT l.customer_package_id AS package, l.service_id AS service
      FROM customer_package_service l
      LEFT JOIN LATERAL (SELECT coalesce(sum(sessions), 0) AS sessions, coalesce(sum(value_minor), 0) AS value
                           FROM package_session_entry e
                          WHERE e.customer_package_id = l.customer_package_id AND e.service_id = l.service_id) e ON true
     WHERE l.sessions_remaining < 0
        OR l.sessions_remaining <> l.sessions_total - e.sessions
        OR l.value_minor <> e.value + (l.value_minor - (l.value_minor::bigint * (l.sessions_total - l.sessions_remaining)) / l.sessions_total)`;
  expect(wrong, 'package lines whose remaining sessions or value disagree with the ledger').toEqual([]);
  const refunds = await owner.$queryRaw<{ id: string }[]>`
    SELECT r.id FROM package_refund r
     WHERE r.amount_minor <> (SELECT coalesce(sum(value_minor), 0) FROM package_session_entry WHERE refund_id = r.id)
        OR r.sessions <> (SELECT coalesce(sum(sessions), 0) FROM package_session_entry WHERE refund_id = r.id)`;
  expect(refunds, 'refunds whose amount or sessions differ from their ledger entries').toEqual([]);
  const prices = await owner.$queryRaw<{ id: string }[]>`
    SELECT p.id FROM customer_package p
     WHERE p.price_minor <> (SELECT sum(value_minor) FROM customer_package_service WHERE customer_package_id = p.id)`;
  expect(prices, 'packages whose lines do not add up to the price').toEqual([]);
}

// --- GraphQL -------------------------------------------------------------------------------------------------------

export const ERRORS = `userErrors { __typename code message field
  ... on PackageExpiredError { expiresAt } ... on PackageFrozenError { frozenAt } ... on PackageExhaustedError { remainingSessions } }`;

/** Runs a document and returns its single root field; GraphQL-level errors fail the test. */
export async function call(api: TestPlatform, document: string, variables: Record<string, unknown> = {}, as: As = 'OWNER') {
  const response = await api.gql(document, variables, as);
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return Object.values(response.data!)[0] as any;
}

/** Sends a mutation that must fail with one typed user error, and checks that no row changed. */
export async function expectRejected(api: TestPlatform, document: string, input: Record<string, unknown>, as: As, expected: Record<string, unknown>) {
  const before = await fingerprint(api.owner);
  const payload = await call(api, document, { input }, as);
  expect(payload.userErrors, JSON.stringify(payload.userErrors)).toHaveLength(1);
  expect(payload.userErrors[0]).toMatchObject(expected);
  expect(await fingerprint(api.owner)).toEqual(before);
  return payload.userErrors[0];
}

export const key = (label = 'k') => `${label}-${randomUUID()}`;
export const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

// --- Subscriptions -------------------------------------------------------------------------------------------------

export interface WatchResult {
  data?: Record<string, any> | null;
  errors?: readonly { message: string; extensions?: Record<string, unknown> }[];
}

export const PROBE = 'test.probe';

/** A subscription's results as they arrive, with a way to wait for them (probes are counted apart). */
export function watch(client: import('graphql-ws').Client, query: string, variables: Record<string, unknown> = {}) {
  const results: WatchResult[] = [];
  let failure: unknown;
  let completed = false;
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((waiter) => waiter());
  const dispose = client.subscribe<Record<string, any>>(
    { query, variables },
    {
      next: (result) => {
        results.push(result as WatchResult);
        wake();
      },
      error: (error) => {
        failure = error;
        wake();
      },
      complete: () => {
        completed = true;
        wake();
      },
    },
  );
  const payloads = () => results.flatMap((r) => (r.data ? Object.values(r.data) : []));
  return {
    results,
    dispose,
    get completed() {
      return completed;
    },
    get failure() {
      return failure;
    },
    events: (): any[] => payloads().filter((e) => e && e.type !== PROBE),
    probes: (): any[] => payloads().filter((e) => e && e.type === PROBE),
    until(predicate: () => boolean, timeoutMs = 10_000, what = 'the expected events'): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate()) return done(resolve);
          if (failure || completed) return done(() => reject(new Error(`subscription ended: ${JSON.stringify(failure ?? results)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(results)}`))), timeoutMs);
        const done = (finish: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          finish();
        };
        waiters.add(check);
        check();
      });
    },
  };
}
export type Watch = ReturnType<typeof watch>;

/**
 * A live plan event published straight to an organization's stream (never stored): graphql-ws does not acknowledge
 * a subscription, so a test sends probes until one arrives; and since each subscription handles its events in order,
 * a probe arriving also proves every event published before it has been handled (delivered or filtered out).
 */
export function probe(world: World, orgId: string, planGlobalId: string) {
  const planId = uuidOf(planGlobalId);
  world.api.running.platform.publish({
    id: '0',
    orgId,
    actor: 'test',
    type: PROBE,
    aggregateType: 'TreatmentPlan',
    aggregateId: planId,
    streamKey: null,
    payload: { planId },
    occurredAt: new Date().toISOString(),
  });
}

export async function untilProbe(sub: Watch, send: () => void, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const seen = sub.probes().length;
  for (;;) {
    send();
    try {
      await sub.until(() => sub.probes().length > seen, 300, 'a probe');
      return;
    } catch (error) {
      if (sub.completed || Date.now() > deadline) throw error;
    }
  }
}

/** The errors of a subscription refused when it is made. */
export async function refusal(client: import('graphql-ws').Client, query: string, variables: Record<string, unknown>) {
  const sub = watch(client, query, variables);
  await new Promise<void>((resolve, reject) => {
    const started = Date.now();
    const tick = () => (sub.completed || sub.failure ? resolve() : Date.now() - started > 10_000 ? reject(new Error('not refused')) : setTimeout(tick, 20));
    tick();
  });
  const errors = Array.isArray(sub.failure) ? sub.failure : sub.results.flatMap((r) => r.errors ?? []);
  expect(sub.results.filter((r) => r.data)).toEqual([]);
  return errors.map((e: any) => ({ message: e.message, code: e.extensions?.code }));
}
