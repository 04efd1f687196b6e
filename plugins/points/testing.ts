/**
 * Shared arrangements and checks for the points plugin's tests (not a test file itself).
 *
 * Everything here talks to the real test database: arrangements go through the plugin's own ledger code
 * (as the application role, under row-level security) or through the owner client where a test needs a
 * timestamp or a state the API cannot produce; checks read the tables through the owner client.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { expect } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import { inTransaction, type DomainEvent } from '../../core/events/outbox.ts';
import { recordOutboxEvent, startTestPlatform, gid, type TestPlatform } from '../../core/testing/platform.ts';
import type { PointsConfig } from './config.ts';
import { credit, ensureAccount, type Account, type CreditKind, type LedgerWrite } from './ledger.ts';

export { gid };
export type As = Parameters<TestPlatform['gql']>[2];
export type Owner = TestPlatform['owner'];

export const DAY_MS = 86_400_000;

export interface PointsWorld {
  api: TestPlatform;
  /** The points plugin's configuration as the platform parsed it (defaults filled in). */
  config: PointsConfig;
  chainId: string;
  otherChainId: string;
  stores: { SH: string; BJ: string; CD: string; UR: string };
  otherStore: string;
  /** A member of the other chain, for cross-tenant checks. */
  otherCustomer: string;
}

/** A test platform with the points plugin enabled (`config` is its raw configuration), and the ids tests use. */
export async function startPointsWorld(config: Record<string, unknown> = {}): Promise<PointsWorld> {
  const api = await startTestPlatform({ plugins: ['points'], pluginConfig: { points: config } });
  const chainId = api.principals.OWNER!.orgId;
  const otherChainId = api.principals.OTHER_CHAIN_OWNER!.orgId;
  const store = async (code: string) => (await api.owner.store.findFirstOrThrow({ where: { orgId: chainId, code } })).id;
  const otherStore = (await api.owner.store.findFirstOrThrow({ where: { orgId: otherChainId } })).id;
  const world: PointsWorld = {
    api,
    config: pluginConfig(api),
    chainId,
    otherChainId,
    stores: { SH: await store('SH-01'), BJ: await store('BJ-01'), CD: await store('CD-01'), UR: await store('UR-01') },
    otherStore,
    otherCustomer: '',
  };
  world.otherCustomer = (await newMember(world, { orgId: otherChainId, storeId: otherStore })).customerId;
  return world;
}

export function pluginConfig(api: TestPlatform): PointsConfig {
  return api.running.platform.plugins.find((p) => p.definition.name === 'points')!.config as PointsConfig;
}

// --- Invariants ----------------------------------------------------------------------------------------------

/**
 * Money adds up: for every points account of every organization, the cached balance equals the sum of its
 * ledger entries and the sum of its lots' remaining points (all lots, due or not), and is not negative. Each
 * lot's remaining equals its original minus what debits that were not undone took from it, and each debit's
 * allocations add up to exactly what it took.
 */
export async function expectLedgerConsistent(owner: Owner): Promise<void> {
  const accounts = await owner.$queryRaw<{ account: string; balance: number; entries: number; lots: number }[]>`
    SELECT a.membership_id AS account, a.balance,
           (SELECT coalesce(sum(e.amount), 0) FROM points_entry e WHERE e.account_id = a.membership_id)::int AS entries,
           (SELECT coalesce(sum(l.remaining), 0) FROM points_lot l WHERE l.account_id = a.membership_id)::int AS lots
    FROM points_account a`;
  const wrong = accounts.filter((a) => a.balance < 0 || a.balance !== a.entries || a.balance !== a.lots);
  expect(wrong, 'accounts whose balance is negative or differs from its entries or lots').toEqual([]);

  const lots = await owner.$queryRaw<{ lot: bigint; original: number; remaining: number; taken: number }[]>`
    SELECT l.id AS lot, l.original, l.remaining,
           (SELECT coalesce(sum(al.amount), 0) FROM points_allocation al
             WHERE al.lot_id = l.id
               AND NOT EXISTS (SELECT 1 FROM points_entry r WHERE r.reverses_entry_id = al.debit_entry_id AND r.amount > 0))::int AS taken
    FROM points_lot l`;
  const badLots = lots.filter((l) => l.remaining < 0 || l.remaining !== l.original - l.taken);
  expect(badLots.map((l) => ({ ...l, lot: String(l.lot) })), 'lots whose remaining is not original − allocations').toEqual([]);

  const debits = await owner.$queryRaw<{ entry: bigint; amount: number; allocated: number }[]>`
    SELECT e.id AS entry, e.amount, (SELECT coalesce(sum(al.amount), 0) FROM points_allocation al WHERE al.debit_entry_id = e.id)::int AS allocated
    FROM points_entry e WHERE e.amount < 0`;
  const badDebits = debits.filter((d) => d.allocated !== -d.amount);
  expect(badDebits.map((d) => ({ ...d, entry: String(d.entry) })), 'debits whose allocations differ from their amount').toEqual([]);
}

/**
 * Every row of the tables a points operation could touch, hashed: equal fingerprints mean nothing changed
 * (including no event recorded and no idempotency key kept).
 */
export async function fingerprint(owner: Owner): Promise<Record<string, string>> {
  const tables = [
    'points_account',
    'points_entry',
    'points_lot',
    'points_allocation',
    'points_reward',
    'points_redemption',
    'idempotency_record',
    'domain_event',
    'processed_event',
  ];
  const rows = await owner.$queryRawUnsafe<{ t: string; h: string }[]>(
    tables
      .map((t) => `SELECT '${t}' AS t, count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM ${t} x`)
      .join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [r.t, r.h]));
}

// --- Arrangements --------------------------------------------------------------------------------------------

let phoneSequence = 0;

/** A fresh customer (not a member) at a store of the chain (SH-01 by default). */
export async function newCustomer(world: PointsWorld, options: { orgId?: string; storeId?: string } = {}): Promise<string> {
  const orgId = options.orgId ?? world.chainId;
  phoneSequence += 1;
  const suffix = `${process.pid % 1000}`.padStart(3, '0') + String(phoneSequence).padStart(5, '0');
  const customer = await world.api.owner.customer.create({
    data: { orgId, name: `Points test ${randomUUID().slice(0, 8)}`, phone: `+86198${suffix}`, homeStoreId: options.storeId ?? world.stores.SH },
  });
  await world.api.owner.customerFact.create({ data: { customerId: customer.id, orgId } });
  return customer.id;
}

/** A fresh member (no points account yet), enrolled at `storeId` (SH-01 by default). */
export async function newMember(world: PointsWorld, options: { orgId?: string; storeId?: string } = {}) {
  const orgId = options.orgId ?? world.chainId;
  const storeId = options.storeId ?? world.stores.SH;
  const customerId = await newCustomer(world, { orgId, storeId });
  const membership = await world.api.owner.membership.create({
    data: { orgId, customerId, homeStoreId: storeId, memberNumber: `T${randomUUID().slice(0, 12)}`, joinedOn: new Date() },
  });
  return { customerId, membershipId: membership.id };
}

/** Runs ledger work in one transaction as the application role, the way handlers and mutations do. */
export function ledgerWork<T>(world: PointsWorld, orgId: string, work: (write: LedgerWrite) => Promise<T>, actor = 'test:arrange'): Promise<T> {
  const platform = world.api.running.platform;
  return inTransaction(platform, platform.dbs.forOrg(orgId), orgId, actor, (tx, emit) => work({ tx, emit, actor }));
}

export async function accountOf(world: PointsWorld, customerId: string, orgId = world.chainId): Promise<Account> {
  return (await ledgerWork(world, orgId, ({ tx }) => ensureAccount(tx, orgId, customerId)))!;
}

/**
 * Credits a member through the ledger (a new lot). `earnedAt` backdates the lot; its expiry follows from it in
 * `timezone` (the chain's by default), as the plugin computes it. Returns the entry and lot ids.
 */
export async function givePoints(
  world: PointsWorld,
  customerId: string,
  amount: number,
  options: { earnedAt?: Date; timezone?: string; lifetimeMonths?: number; kind?: CreditKind; storeId?: string | null; orgId?: string; source?: string } = {},
): Promise<{ entryId: bigint; lotId: bigint; expiresAt: Date }> {
  const orgId = options.orgId ?? world.chainId;
  const done = await ledgerWork(world, orgId, async (write) => {
    const account = (await ensureAccount(write.tx, orgId, customerId))!;
    return credit(write, account, options.kind ?? 'EARN', amount, {
      source: options.source ?? 'TEST',
      reason: 'arranged by a test',
      storeId: options.storeId ?? null,
      lifetimeMonths: options.lifetimeMonths ?? world.config.lotLifetimeMonths,
      timezone: options.timezone ?? 'Asia/Shanghai',
      earnedAt: options.earnedAt,
    });
  });
  const lot = await world.api.owner.pointsLot.findUniqueOrThrow({ where: { earnEntryId: done!.entryId } });
  return { entryId: done!.entryId, lotId: lot.id, expiresAt: lot.expiresAt };
}

export async function balanceOf(owner: Owner, customerId: string): Promise<number | null> {
  return (await owner.pointsAccount.findUnique({ where: { customerId } }))?.balance ?? null;
}

export async function lotsOf(owner: Owner, customerId: string) {
  const account = await owner.pointsAccount.findUniqueOrThrow({ where: { customerId } });
  return owner.pointsLot.findMany({ where: { accountId: account.membershipId }, orderBy: [{ expiresAt: 'asc' }, { id: 'asc' }] });
}

export async function entriesOf(owner: Owner, customerId: string) {
  return owner.pointsEntry.findMany({ where: { customerId }, orderBy: { id: 'asc' } });
}

export async function createReward(
  world: PointsWorld,
  data: Partial<{ name: string; pointsPrice: number; stock: number | null; perCustomerLimit: number | null; active: boolean; validFrom: Date | null; validUntil: Date | null; orgId: string; eligibleTiers: string[] }> = {},
): Promise<string> {
  const reward = await world.api.owner.pointsReward.create({
    data: {
      orgId: data.orgId ?? world.chainId,
      kind: 'PARTNER_PERK',
      name: data.name ?? `Test reward ${randomUUID().slice(0, 8)}`,
      pointsPrice: data.pointsPrice ?? 1,
      stock: data.stock ?? null,
      perCustomerLimit: data.perCustomerLimit ?? null,
      active: data.active ?? true,
      validFrom: data.validFrom ?? null,
      validUntil: data.validUntil ?? null,
      eligibleTiers: data.eligibleTiers ?? [],
    },
  });
  return reward.id;
}

/** Records a domain event as a change would (its job is queued by the outbox trigger). */
export function recordDomainEvent(
  world: PointsWorld,
  event: { type: string; aggregateType: string; aggregateId: string; payload: Record<string, unknown>; orgId?: string },
): Promise<DomainEvent> {
  return recordOutboxEvent(world.api, event.orgId ?? world.chainId, event);
}

/**
 * Marks every queued job as done without running it. For test files that deliver events themselves (runHandler,
 * dispatchEvent on recorded events): their jobs have nothing left to do, and must not run in a later test's drain.
 */
export async function discardQueuedJobs(api: TestPlatform): Promise<void> {
  await api.owner.$queryRaw`
    SELECT count(*) FROM graphile_worker.complete_jobs(
      (SELECT coalesce(array_agg(id), '{}') FROM graphile_worker.jobs WHERE locked_at IS NULL))`;
}

/** A staff principal of another store of the chain (a front desk at BJ-01 by default). */
export function staffAt(world: PointsWorld, storeId: string, role: 'FRONT_DESK' | 'STORE_MANAGER' | 'BEAUTICIAN' = 'FRONT_DESK'): Principal {
  return { kind: 'STAFF', orgId: world.chainId, staffId: randomUUID(), role, storeIds: [storeId] };
}

/** A raw connection as the application role, under one organization's row-level security. */
export async function appRoleClient(world: PointsWorld, orgId = world.chainId): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: world.api.database.url });
  await client.connect();
  await client.query('SET ROLE crm_app');
  await client.query("SELECT set_config('app.org_id', $1, false)", [orgId]);
  return client;
}

// --- GraphQL -------------------------------------------------------------------------------------------------

export const ERRORS = 'userErrors { __typename code message field ... on InsufficientPointsError { available requested } ... on RedemptionCapExceededError { remainingPoints } ... on OutOfStockError { available } }';

export const REDEEM = `mutation($input: RedeemRewardInput!) {
  redeemReward(input: $input) { redemption { id points quantity status reward { id } } balance replayed ${ERRORS} } }`;
export const CANCEL = `mutation($input: CancelRedemptionInput!) {
  cancelRedemption(input: $input) { redemption { id status cancelReason } balance replayed ${ERRORS} } }`;
export const DONATE = `mutation($input: DonatePointsInput!) { donatePoints(input: $input) { balance replayed ${ERRORS} } }`;
export const ADJUST = `mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { balance replayed ${ERRORS} } }`;

/** Runs a document and returns its single root field; GraphQL-level errors fail the test. */
export async function call(api: TestPlatform, document: string, variables: Record<string, unknown> = {}, as: As = 'OWNER') {
  const response = await api.gql(document, variables, as);
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return Object.values(response.data!)[0] as any;
}

export interface RedeemArgs {
  rewardId: string;
  customerId?: string;
  quantity?: number;
  storeId?: string;
  key?: string;
}

export function redeemInput(args: RedeemArgs) {
  return {
    rewardId: gid('PointsReward', args.rewardId),
    ...(args.customerId ? { customerId: gid('Customer', args.customerId) } : {}),
    ...(args.quantity !== undefined ? { quantity: args.quantity } : {}),
    ...(args.storeId ? { storeId: gid('Store', args.storeId) } : {}),
    idempotencyKey: args.key ?? `redeem-${randomUUID()}`,
  };
}

export function redeem(api: TestPlatform, args: RedeemArgs, as: As = 'OWNER') {
  return call(api, REDEEM, { input: redeemInput(args) }, as);
}

/** Sends a mutation that must fail with one typed user error, and checks that no row changed. */
export async function expectRejected(
  api: TestPlatform,
  document: string,
  input: Record<string, unknown>,
  as: As,
  expected: { __typename?: string; code?: string; [field: string]: unknown },
) {
  const before = await fingerprint(api.owner);
  const payload = await call(api, document, { input }, as);
  expect(payload.userErrors).toHaveLength(1);
  expect(payload.userErrors[0]).toMatchObject(expected);
  expect(await fingerprint(api.owner)).toEqual(before);
  return payload.userErrors[0];
}

export const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;
export const key = (label = 'k') => `${label}-${randomUUID()}`;
