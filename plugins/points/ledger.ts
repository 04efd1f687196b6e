import { Prisma } from '../../core/db/generated/client.ts';
import type { Tx } from '../../core/db/clients.ts';
import type { Emit } from '../../core/events/outbox.ts';
import { DomainError, pgErrorCode } from '../../core/graphql/errors.ts';

/**
 * The points ledger. Every change is an entry; earning creates a lot that expires; every debit takes from
 * the oldest unexpired lots and records where it took from. The account is locked for each change (lockAccount), so
 * an account's changes happen one at a time; the database keeps the cached balance equal to the sum of
 * entries (trigger) and refuses a negative one (CHECK), as a last wall behind the checks here.
 */

export type CreditKind = 'EARN' | 'ADJUST' | 'REVERSAL';
export type DebitKind = 'REDEEM' | 'DONATE' | 'EXPIRE' | 'ADJUST' | 'REVERSAL';

export interface Account {
  membershipId: string;
  orgId: string;
  customerId: string;
  balance: number;
}

export interface LedgerWrite {
  tx: Tx;
  emit: Emit;
  actor: string;
}

export interface EntryInput {
  source: string;
  sourceRef?: string | null;
  /** Same key twice in an organization: the second write is skipped (exactly-once awards). */
  dedupeKey?: string | null;
  storeId?: string | null;
  reason?: string | null;
  reversesEntryId?: bigint | null;
}

export function insufficientPoints(available: number, requested: number): DomainError {
  return new DomainError([
    {
      __typename: 'InsufficientPointsError',
      code: 'INSUFFICIENT_POINTS',
      message: `Only ${available} points available, ${requested} requested`,
      field: ['input', 'points'],
      available,
      requested,
    },
  ]);
}

/** The customer's points account, created on first use for a member; null for a customer who is not a member. */
export async function ensureAccount(tx: Tx, orgId: string, customerId: string): Promise<Account | null> {
  const [account] = await tx.$queryRaw<Account[]>`
    WITH member AS (
      SELECT id, org_id, customer_id FROM membership WHERE customer_id = ${customerId}::uuid AND org_id = ${orgId}::uuid
    ), created AS (
      INSERT INTO points_account (membership_id, org_id, customer_id)
      SELECT id, org_id, customer_id FROM member
      -- Either unique key (membership, customer) may be the one a concurrent creator hits first.
      ON CONFLICT DO NOTHING
      RETURNING membership_id, org_id, customer_id, balance
    )
    SELECT membership_id AS "membershipId", org_id AS "orgId", customer_id AS "customerId", balance FROM created
    UNION ALL
    SELECT a.membership_id, a.org_id, a.customer_id, a.balance FROM points_account a JOIN member m ON m.id = a.membership_id`;
  if (account) return account;
  // Nothing when the customer is not a member — or when another transaction created the account while this
  // statement waited on its insert: that row is not in this statement's snapshot, but is in the next one's.
  const [created] = await tx.$queryRaw<Account[]>`
    SELECT membership_id AS "membershipId", org_id AS "orgId", customer_id AS "customerId", balance
    FROM points_account WHERE customer_id = ${customerId}::uuid AND org_id = ${orgId}::uuid`;
  return created ?? null;
}

/**
 * Locks the account for this transaction. Callers that lock other rows too (a reward's stock) take the account
 * first, so two operations never wait on each other in opposite orders.
 *
 * A transaction-scoped advisory lock per account, not `SELECT … FOR UPDATE`: row locks need the UPDATE privilege,
 * which the application role deliberately lacks on points_account (only the trigger writes it).
 */
export async function lockAccount(tx: Tx, account: Account): Promise<void> {
  await tx.$queryRaw`SELECT pg_advisory_xact_lock(${ACCOUNT_LOCK_CLASS}::int, hashtext(${account.membershipId}::text))::text AS locked`;
}

/** The account's balance, read in a statement after its lock, so it sees whatever the previous holder committed. */
async function balanceOf(tx: Tx, account: Account): Promise<number> {
  const [row] = await tx.$queryRaw<{ balance: number }[]>`
    SELECT balance FROM points_account WHERE membership_id = ${account.membershipId}::uuid`;
  return row!.balance;
}

/** First key of the points accounts' advisory locks (the second is a hash of the account id). */
export const ACCOUNT_LOCK_CLASS = 0x504e5453; // 'PNTS'

/** The entry's INSERT, returning `id` and `createdAt`; nothing when its dedupe key was already used. */
function entryInsert(account: Account, kind: string, amount: number, input: EntryInput, actor: string): Prisma.Sql {
  return Prisma.sql`
    INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, source_ref, dedupe_key,
                              store_id, actor, reason, reverses_entry_id)
    VALUES (${account.orgId}::uuid, ${account.membershipId}::uuid, ${account.customerId}::uuid,
            ${kind}::points_entry_kind, ${amount}, ${input.source}, ${input.sourceRef ?? null}, ${input.dedupeKey ?? null},
            ${input.storeId ?? null}::uuid, ${actor}, ${input.reason ?? null}, ${input.reversesEntryId ?? null})
    ON CONFLICT (org_id, dedupe_key) DO NOTHING
    RETURNING id, created_at AS "createdAt"`;
}

/**
 * Runs a statement that writes an entry of `amount` and returns that entry, or null when its dedupe key was already
 * used. A balance driven below zero (the CHECK) is reported as insufficient points.
 */
async function writeEntry(tx: Tx, amount: number, statement: Prisma.Sql): Promise<{ id: bigint; createdAt: Date } | null> {
  try {
    const [entry] = await tx.$queryRaw<{ id: bigint; createdAt: Date }[]>(statement);
    return entry ?? null;
  } catch (error) {
    // The balance CHECK: only reachable if a caller skipped the account lock.
    if (pgErrorCode(error) === '23514') throw insufficientPoints(0, -amount);
    throw error;
  }
}

function insertEntry(tx: Tx, account: Account, kind: string, amount: number, input: EntryInput, actor: string) {
  return writeEntry(tx, amount, entryInsert(account, kind, amount, input, actor));
}

async function announce(
  write: LedgerWrite,
  account: Account,
  type: string,
  delta: number,
  entryId: bigint,
  extra: Record<string, unknown> = {},
) {
  const balance = await balanceOf(write.tx, account);
  await write.emit({
    type,
    aggregateType: 'PointsAccount',
    aggregateId: account.membershipId,
    streamKey: account.customerId,
    payload: { customerId: account.customerId, membershipId: account.membershipId, delta, balance, entryId: entryId.toString(), ...extra },
  });
  return balance;
}

/**
 * Adds points as a new lot expiring `lifetimeMonths` after `earnedAt`, counted in `timezone` (so a lot
 * earned on 29 February local time expires on 28 February, local time). Returns null when the dedupe key
 * was already used.
 */
export async function credit(
  write: LedgerWrite,
  account: Account,
  kind: CreditKind,
  amount: number,
  input: EntryInput & { lifetimeMonths: number; timezone: string; earnedAt?: Date },
  eventType = 'points.earned',
) {
  if (!Number.isInteger(amount) || amount <= 0) throw new Error(`credit amount must be a positive integer, got ${amount}`);
  await lockAccount(write.tx, account);
  // The entry and its lot in one statement (the lot's foreign key is checked at its end, when the entry exists).
  const entry = await writeEntry(write.tx, amount, Prisma.sql`
    WITH entry AS (${entryInsert(account, kind, amount, input, write.actor)}),
    earned AS (SELECT id, coalesce(${input.earnedAt ?? null}::timestamptz, "createdAt") AS earned_at FROM entry),
    lot AS (
      INSERT INTO points_lot (org_id, account_id, earn_entry_id, earned_at, expires_at, original, remaining)
      SELECT ${account.orgId}::uuid, ${account.membershipId}::uuid, id, earned_at,
             ((earned_at AT TIME ZONE ${input.timezone}) + make_interval(months => ${input.lifetimeMonths})) AT TIME ZONE ${input.timezone},
             ${amount}, ${amount}
      FROM earned)
    SELECT id, "createdAt" FROM entry`);
  if (!entry) return null;
  const balance = await announce(write, account, eventType, amount, entry.id, { kind, source: input.source });
  return { entryId: entry.id, balance };
}

/**
 * Takes points from the oldest unexpired lots first (a preferred lot first, when reversing its own award).
 * Lots that are already due are expired first, so nobody spends points that have lapsed.
 */
export async function debit(
  write: LedgerWrite,
  account: Account,
  kind: DebitKind,
  amount: number,
  input: EntryInput & { preferLotId?: bigint | null },
  eventType: string,
) {
  if (!Number.isInteger(amount) || amount <= 0) throw new Error(`debit amount must be a positive integer, got ${amount}`);
  await lockAccount(write.tx, account);
  const balance = (await balanceOf(write.tx, account)) - (await expireDueLots(write, account));
  if (balance < amount) throw insufficientPoints(balance, amount);
  const entry = await insertEntry(write.tx, account, kind, -amount, input, write.actor);
  if (!entry) return null;
  await write.tx.$executeRaw`
    WITH ordered AS (
      SELECT id, remaining,
             sum(remaining) OVER (ORDER BY (id = ${input.preferLotId ?? null}::bigint) DESC NULLS LAST, expires_at, id) - remaining AS taken_before
      FROM points_lot
      WHERE account_id = ${account.membershipId}::uuid AND remaining > 0
    ), taken AS (
      SELECT id, LEAST(remaining, ${amount} - taken_before) AS amount FROM ordered WHERE taken_before < ${amount}
    ), consumed AS (
      UPDATE points_lot lot SET remaining = lot.remaining - taken.amount FROM taken WHERE lot.id = taken.id
      RETURNING lot.id, taken.amount
    )
    INSERT INTO points_allocation (debit_entry_id, lot_id, org_id, amount)
    SELECT ${entry.id}, id, ${account.orgId}::uuid, amount FROM consumed`;
  const after = await announce(write, account, eventType, -amount, entry.id, { kind, source: input.source });
  return { entryId: entry.id, balance: after };
}

/** Undoes a debit: the points go back to the lots they came from (with their original expiry). */
export async function restoreDebit(write: LedgerWrite, account: Account, debitEntryId: bigint, input: EntryInput, eventType: string) {
  await lockAccount(write.tx, account);
  const allocations = await write.tx.pointsAllocation.findMany({ where: { debitEntryId } });
  const amount = allocations.reduce((sum, allocation) => sum + allocation.amount, 0);
  if (amount === 0) return null;
  const entry = await insertEntry(write.tx, account, 'REVERSAL', amount, { ...input, reversesEntryId: debitEntryId }, write.actor);
  if (!entry) return null;
  await write.tx.$executeRaw`
    UPDATE points_lot lot SET remaining = lot.remaining + a.amount
    FROM points_allocation a WHERE a.debit_entry_id = ${debitEntryId} AND lot.id = a.lot_id`;
  const balance = await announce(write, account, eventType, amount, entry.id, { kind: 'REVERSAL', source: input.source });
  return { entryId: entry.id, balance };
}

/** Locks the account and expires its lots that are due; returns the points expired. */
export async function expireAccount(write: LedgerWrite, account: Account, now = new Date()): Promise<number> {
  await lockAccount(write.tx, account);
  return expireDueLots(write, account, now);
}

/**
 * One EXPIRE entry per due lot (idempotent by lot). The caller holds the account lock. A lot can lapse a second
 * time when a cancelled redemption returns points to it after it expired: that expiry gets a key of its own.
 */
async function expireDueLots(write: LedgerWrite, account: Account, now = new Date()): Promise<number> {
  // The expiry counts at the store that issued the lot (metrics per store).
  const due = await write.tx.$queryRaw<{ id: bigint; remaining: number; expiresAt: Date; expiredBefore: number; storeId: string | null }[]>`
    SELECT l.id, l.remaining, l.expires_at AS "expiresAt",
           (SELECT count(*) FROM points_allocation a JOIN points_entry e ON e.id = a.debit_entry_id
             WHERE a.lot_id = l.id AND e.kind = 'EXPIRE')::int AS "expiredBefore",
           (SELECT store_id FROM points_entry WHERE id = l.earn_entry_id) AS "storeId"
    FROM points_lot l
    WHERE l.account_id = ${account.membershipId}::uuid AND l.remaining > 0 AND l.expires_at <= ${now}
    ORDER BY l.expires_at, l.id`;
  let expired = 0;
  for (const lot of due) {
    const dedupeKey = lot.expiredBefore === 0 ? `expire:lot:${lot.id}` : `expire:lot:${lot.id}:${lot.expiredBefore + 1}`;
    const entry = await insertEntry(
      write.tx,
      account,
      'EXPIRE',
      -lot.remaining,
      { source: 'EXPIRY', sourceRef: `lot:${lot.id}`, dedupeKey, storeId: lot.storeId, reason: `Expired ${lot.expiresAt.toISOString()}` },
      write.actor,
    );
    if (!entry) continue;
    await write.tx.$executeRaw`
      INSERT INTO points_allocation (debit_entry_id, lot_id, org_id, amount)
      VALUES (${entry.id}, ${lot.id}, ${account.orgId}::uuid, ${lot.remaining})`;
    await write.tx.$executeRaw`UPDATE points_lot SET remaining = 0 WHERE id = ${lot.id}`;
    await announce(write, account, 'points.expired', -lot.remaining, entry.id, { lotId: lot.id.toString(), expiresAt: lot.expiresAt.toISOString() });
    expired += lot.remaining;
  }
  return expired;
}

/** Accounts with lots due at `now`, across organizations (the scheduled job's work list). */
export function accountsWithDueLots(system: { $queryRaw: Tx['$queryRaw'] }, now: Date, limit = 500) {
  return system.$queryRaw<Account[]>(Prisma.sql`
    SELECT DISTINCT a.membership_id AS "membershipId", a.org_id AS "orgId", a.customer_id AS "customerId", a.balance
    FROM points_lot l JOIN points_account a ON a.membership_id = l.account_id
    WHERE l.remaining > 0 AND l.expires_at <= ${now}
    LIMIT ${limit}`);
}
