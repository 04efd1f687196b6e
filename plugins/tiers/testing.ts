/**
 * Shared arrangements and checks for the tiers plugin's tests (not a test file itself). Everything talks to the
 * real test database: arrangements go through the owner client where a test needs a timestamp the API cannot
 * produce (a visit a year ago), or through the plugin's own code as the application role.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import { inTransaction, recordEvent, type DomainEvent, type DomainEventInput } from '../../core/events/outbox.ts';
import { gid, startTestPlatform, type TestPlatform } from '../../core/testing/platform.ts';
import type { TiersConfig } from './config.ts';
import { seedTiersDemo } from './demo.ts';
import { ACTOR, evaluateMember, reevaluateOrganization, type Evaluation } from './evaluate.ts';

export { gid };
export type As = Parameters<TestPlatform['gql']>[2];
export const DAY_MS = 86_400_000;
/** ¥ in minor units. */
export const yuan = (amount: number) => BigInt(Math.round(amount * 100));

export interface TiersWorld {
  api: TestPlatform;
  config: TiersConfig;
  chainId: string;
  otherChainId: string;
  stores: { SH: string; BJ: string; CD: string; UR: string };
  otherStore: string;
  tiers: { SILVER: string; GOLD: string; BLACK: string };
}

/** A test platform with `plugins` on and the demo chain's default ladder and tasks seeded (as `npm start` does). */
export async function startTiersWorld(plugins: string[], tiersConfig: Record<string, unknown> = {}, pluginConfig: Record<string, unknown> = {}): Promise<TiersWorld> {
  const api = await startTestPlatform({ plugins, pluginConfig: { tiers: tiersConfig, ...pluginConfig } });
  const chainId = api.principals.OWNER!.orgId;
  const otherChainId = api.principals.OTHER_CHAIN_OWNER!.orgId;
  const config = api.running.platform.plugins.find((p) => p.definition.name === 'tiers')!.config as TiersConfig;
  await api.owner.$transaction((tx) => seedTiersDemo({ tx, orgId: chainId, config }), { timeout: 120_000 });
  await api.owner.$transaction((tx) => seedTiersDemo({ tx, orgId: otherChainId, config }), { timeout: 120_000 });
  const store = async (code: string) => (await api.owner.store.findFirstOrThrow({ where: { orgId: chainId, code } })).id;
  const tier = async (code: string) => (await api.owner.tierLevel.findFirstOrThrow({ where: { orgId: chainId, code } })).id;
  return {
    api,
    config,
    chainId,
    otherChainId,
    stores: { SH: await store('SH-01'), BJ: await store('BJ-01'), CD: await store('CD-01'), UR: await store('UR-01') },
    otherStore: (await api.owner.store.findFirstOrThrow({ where: { orgId: otherChainId } })).id,
    tiers: { SILVER: await tier('SILVER'), GOLD: await tier('GOLD'), BLACK: await tier('BLACK') },
  };
}

let phoneSequence = 0;

/** A fresh member (no visits, no tasks, no tier) at a store (SH-01 by default). */
export async function newMember(world: TiersWorld, options: { orgId?: string; storeId?: string; member?: boolean } = {}) {
  const orgId = options.orgId ?? world.chainId;
  const storeId = options.storeId ?? world.stores.SH;
  phoneSequence += 1;
  const suffix = `${process.pid % 1000}`.padStart(3, '0') + String(phoneSequence).padStart(5, '0');
  const customer = await world.api.owner.customer.create({
    data: { orgId, name: `Tier test ${randomUUID().slice(0, 8)}`, phone: `+86197${suffix}`, homeStoreId: storeId },
  });
  await world.api.owner.customerFact.create({ data: { customerId: customer.id, orgId } });
  if (options.member !== false) {
    await world.api.owner.membership.create({
      data: { orgId, customerId: customer.id, homeStoreId: storeId, memberNumber: `T${randomUUID().slice(0, 12)}`, joinedOn: new Date() },
    });
  }
  return customer.id;
}

/** A completed visit written directly (any completion time), as completeVisit would leave it. */
export async function completedVisit(
  world: TiersWorld,
  customerId: string,
  amount: bigint,
  completedAt: Date,
  options: { storeId?: string; orgId?: string; status?: 'COMPLETED' | 'REFUNDED' } = {},
): Promise<string> {
  const visit = await world.api.owner.visit.create({
    data: {
      orgId: options.orgId ?? world.chainId,
      storeId: options.storeId ?? world.stores.SH,
      customerId,
      status: options.status ?? 'COMPLETED',
      scheduledStart: new Date(completedAt.getTime() - 3_600_000),
      scheduledEnd: completedAt,
      checkedInAt: new Date(completedAt.getTime() - 3_600_000),
      completedAt,
      totalMinor: Number(amount),
      ...(options.status === 'REFUNDED' ? { refundedAt: completedAt, refundReason: 'test' } : {}),
    },
  });
  return visit.id;
}

/** A completion of one of the organization's tasks, written directly. */
export async function taskDone(world: TiersWorld, customerId: string, code: string, occurredAt = new Date(), orgId = world.chainId) {
  const task = await world.api.owner.tierTask.findFirstOrThrow({ where: { orgId, code } });
  await world.api.owner.tierTaskCompletion.create({
    data: { orgId, customerId, taskId: task.id, occurredAt, source: 'STAFF', dedupeKey: `test:${randomUUID()}`, recordedBy: 'test:arrange' },
  });
}

/** Evaluates a member at `at` the way a handler does (in its own transaction, as the application role). */
export function evaluate(world: TiersWorld, customerId: string, options: { at?: Date; scheduled?: boolean } = {}, orgId = world.chainId): Promise<Evaluation | null> {
  const platform = world.api.running.platform;
  return inTransaction(platform, platform.dbs.forOrg(orgId), orgId, ACTOR, (tx, emit) =>
    evaluateMember({ tx, emit, actor: ACTOR, config: world.config, platform }, orgId, customerId, {
      at: options.at,
      scheduled: options.scheduled,
      trigger: { type: options.scheduled ? 'schedule' : 'test' },
    }),
  );
}

/** The scheduled re-evaluation of the chain, as if it ran at `at`. */
export function scheduledRun(world: TiersWorld, at: Date, orgId = world.chainId) {
  return reevaluateOrganization(world.api.running.platform, world.config, orgId, at);
}

export async function stateOf(world: TiersWorld, customerId: string) {
  const state = await world.api.owner.tierState.findUnique({ where: { customerId } });
  const code = async (id: string | null | undefined) => (id ? (await world.api.owner.tierLevel.findUniqueOrThrow({ where: { id } })).code : null);
  return {
    earned: await code(state?.earnedTierId),
    override: await code(state?.overrideTierId),
    overrideUntil: state?.overrideUntil ?? null,
    belowSince: state?.belowSince ?? null,
  };
}

export async function historyOf(world: TiersWorld, customerId: string) {
  const rows = await world.api.owner.tierChange.findMany({ where: { customerId }, orderBy: [{ effectiveAt: 'asc' }, { id: 'asc' }] });
  const codes = new Map((await world.api.owner.tierLevel.findMany()).map((l) => [l.id, l.code]));
  return rows.map((r) => ({
    kind: r.kind,
    from: r.fromTierId ? codes.get(r.fromTierId) : null,
    to: r.toTierId ? codes.get(r.toTierId) : null,
    tier: r.effectiveTierId ? codes.get(r.effectiveTierId) : null,
    reason: r.reason,
    effectiveAt: r.effectiveAt,
    trigger: r.trigger,
  }));
}

export async function tierEvents(world: TiersWorld, customerId: string) {
  const events = await world.api.owner.domainEvent.findMany({ where: { aggregateId: customerId, aggregateType: 'MemberTier' }, orderBy: { id: 'asc' } });
  return events.map((e) => ({ type: e.type, streamKey: e.streamKey, ...(e.payload as { fromTier: string | null; toTier: string | null; kind: string }) }));
}

/** Records an event in the outbox (as another module would emit it) and returns it as handlers see it. */
export async function recordDomainEvent(world: TiersWorld, input: DomainEventInput, orgId = world.chainId, actor = 'test:module'): Promise<DomainEvent> {
  const platform = world.api.running.platform;
  return inTransaction(platform, platform.dbs.forOrg(orgId), orgId, actor, (tx) => recordEvent(tx, orgId, actor, input));
}

/** Every row of the tables a tier operation could touch, hashed: equal fingerprints mean nothing changed. */
export async function fingerprint(world: TiersWorld): Promise<Record<string, string>> {
  const tables = ['tier_level', 'tier_qualification', 'tier_task', 'tier_task_completion', 'tier_state', 'tier_change', 'idempotency_record', 'domain_event'];
  const rows = await world.api.owner.$queryRawUnsafe<{ t: string; h: string }[]>(
    tables
      .map((t) => `SELECT '${t}' AS t, count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM ${t} x`)
      .join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [r.t, r.h]));
}

/** Runs a document and returns its single root field; GraphQL-level errors fail the test. */
export async function call(api: TestPlatform, document: string, variables: Record<string, unknown> = {}, as: As = 'OWNER') {
  const response = await api.gql(document, variables, as);
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return Object.values(response.data!)[0] as any;
}

/** Sends a mutation that must fail with one typed user error, and checks that no row changed. */
export async function expectRejected(world: TiersWorld, document: string, input: Record<string, unknown>, as: As, expected: Record<string, unknown>) {
  const before = await fingerprint(world);
  const payload = await call(world.api, document, { input }, as);
  expect(payload.userErrors, JSON.stringify(payload.userErrors)).toHaveLength(1);
  expect(payload.userErrors[0]).toMatchObject(expected);
  expect(await fingerprint(world)).toEqual(before);
  return payload.userErrors[0];
}

/** A store-bound staff principal of another store of the chain. */
export function staffAt(world: TiersWorld, storeId: string, role: 'FRONT_DESK' | 'STORE_MANAGER' | 'CONSULTANT' = 'STORE_MANAGER'): Principal {
  return { kind: 'STAFF', orgId: world.chainId, staffId: randomUUID(), role, storeIds: [storeId] };
}

export const key = (label = 'k') => `${label}-${randomUUID()}`;

/** Books, checks in and completes a visit through the API (one service at `unitPrice`); returns the visit's global id. */
export async function completeViaApi(world: TiersWorld, customerId: string, unitPrice: string, options: { storeId?: string; as?: As } = {}): Promise<string> {
  const as = options.as ?? 'OWNER';
  const service = await world.api.owner.service.findFirstOrThrow({ where: { orgId: world.chainId, active: true }, orderBy: { name: 'asc' } });
  const booked = await call(
    world.api,
    'mutation($input: BookVisitInput!) { bookVisit(input: $input) { visit { id } userErrors { code message } } }',
    {
      input: {
        customerId: gid('Customer', customerId),
        storeId: gid('Store', options.storeId ?? world.stores.SH),
        serviceIds: [gid('Service', service.id)],
        startsAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
    },
    as,
  );
  expect(booked.userErrors).toEqual([]);
  const visitId = booked.visit.id as string;
  const checkedIn = await call(world.api, 'mutation($input: CheckInVisitInput!) { checkInVisit(input: $input) { userErrors { code message } } }', { input: { visitId, idempotencyKey: key('checkin') } }, as);
  expect(checkedIn.userErrors).toEqual([]);
  const completed = await call(
    world.api,
    'mutation($input: CompleteVisitInput!) { completeVisit(input: $input) { visit { status } userErrors { code message } } }',
    { input: { visitId, idempotencyKey: key('complete'), lineItems: [{ serviceId: gid('Service', service.id), unitPrice }] } },
    as,
  );
  expect(completed.userErrors).toEqual([]);
  return visitId;
}
