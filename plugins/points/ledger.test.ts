/**
 * The ledger itself: what the database refuses the application role, and the ledger functions (credit, debit,
 * restoreDebit, expireAccount) under real concurrency.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { DomainError } from '../../core/graphql/errors.ts';
import { debit, ensureAccount, expireAccount, restoreDebit } from './ledger.ts';
import {
  accountOf,
  appRoleClient,
  balanceOf,
  DAY_MS,
  entriesOf,
  expectLedgerConsistent,
  givePoints,
  ledgerWork,
  lotsOf,
  newCustomer,
  newMember,
  startPointsWorld,
  type PointsWorld,
} from './testing.ts';

let world: PointsWorld;
beforeAll(async () => {
  world = await startPointsWorld();
});
afterAll(() => world?.api.close());
afterEach(() => expectLedgerConsistent(world.api.owner));

/** The SQLSTATE of a failed statement. */
async function sqlState(run: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await run();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe('the database protects the ledger from the application role', () => {
  test('entries cannot be updated or deleted, balances cannot be written, and a negative balance is refused', async () => {
    const { customerId } = await newMember(world);
    const { entryId } = await givePoints(world, customerId, 40);
    const account = await world.api.owner.pointsAccount.findUniqueOrThrow({ where: { customerId } });
    const entriesBefore = await entriesOf(world.api.owner, customerId);
    const app = await appRoleClient(world);
    try {
      // The role sees its own organization's ledger (so a refusal below is about privileges, not visibility).
      const visible = await app.query('SELECT id FROM points_entry WHERE id = $1', [entryId]);
      expect(visible.rowCount).toBe(1);

      expect(await sqlState(() => app.query('UPDATE points_entry SET amount = 4000 WHERE id = $1', [entryId]))).toBe('42501');
      expect(await sqlState(() => app.query("UPDATE points_entry SET reason = 'edited' WHERE id = $1", [entryId]))).toBe('42501');
      expect(await sqlState(() => app.query('DELETE FROM points_entry WHERE id = $1', [entryId]))).toBe('42501');
      expect(await sqlState(() => app.query('TRUNCATE points_entry'))).toBe('42501');
      expect(await sqlState(() => app.query('UPDATE points_account SET balance = 1000000 WHERE membership_id = $1', [account.membershipId]))).toBe('42501');
      expect(await sqlState(() => app.query('UPDATE points_account SET updated_at = now() WHERE membership_id = $1', [account.membershipId]))).toBe('42501');
      expect(await sqlState(() => app.query('DELETE FROM points_account WHERE membership_id = $1', [account.membershipId]))).toBe('42501');
      expect(await sqlState(() => app.query('DELETE FROM points_allocation'))).toBe('42501');
      // An account cannot be created with a balance of its own choosing.
      const other = await newMember(world);
      expect(
        await sqlState(() =>
          app.query('INSERT INTO points_account (membership_id, org_id, customer_id, balance) VALUES ($1, $2, $3, 500)', [
            other.membershipId,
            world.chainId,
            other.customerId,
          ]),
        ),
      ).toBe('42501');
      // An entry that would take the balance below zero is refused by the CHECK, whoever writes it.
      expect(
        await sqlState(() =>
          app.query(
            `INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, actor, reason)
             VALUES ($1, $2, $3, 'ADJUST', -41, 'MANUAL', 'test', 'below zero')`,
            [world.chainId, account.membershipId, customerId],
          ),
        ),
      ).toBe('23514');
      // Another organization's ledger is invisible to this tenant's role.
      const foreign = await newMember(world, { orgId: world.otherChainId, storeId: world.otherStore });
      await givePoints(world, foreign.customerId, 5, { orgId: world.otherChainId });
      const leaked = await app.query('SELECT id FROM points_entry WHERE customer_id = $1', [foreign.customerId]);
      expect(leaked.rowCount).toBe(0);
    } finally {
      await app.end();
    }
    expect(await entriesOf(world.api.owner, customerId)).toEqual(entriesBefore);
    expect(await balanceOf(world.api.owner, customerId)).toBe(40);
  });

  test('the trigger keeps the cached balance equal to the entries for every insert', async () => {
    const { customerId } = await newMember(world);
    await givePoints(world, customerId, 10);
    await givePoints(world, customerId, 25);
    const account = await accountOf(world, customerId);
    await ledgerWork(world, world.chainId, (write) => debit(write, account, 'ADJUST', 12, { source: 'MANUAL', reason: 'test' }, 'points.adjusted'));
    expect(await balanceOf(world.api.owner, customerId)).toBe(23);
  });
});

describe('ensureAccount', () => {
  test('creates one account per member, however many callers race, and none for a non-member', async () => {
    const { customerId, membershipId } = await newMember(world);
    const accounts = await Promise.all(
      Array.from({ length: 8 }, () => ledgerWork(world, world.chainId, ({ tx }) => ensureAccount(tx, world.chainId, customerId))),
    );
    expect(new Set(accounts.map((a) => a!.membershipId))).toEqual(new Set([membershipId]));
    expect(await world.api.owner.pointsAccount.count({ where: { customerId } })).toBe(1);

    const stranger = await newCustomer(world);
    expect(await ledgerWork(world, world.chainId, ({ tx }) => ensureAccount(tx, world.chainId, stranger))).toBeNull();
    // Another organization's member has no account here.
    expect(await ledgerWork(world, world.chainId, ({ tx }) => ensureAccount(tx, world.chainId, world.otherCustomer))).toBeNull();
    expect(await world.api.owner.pointsAccount.count({ where: { customerId: { in: [stranger, world.otherCustomer] } } })).toBe(0);
  });
});

test('an account another transaction is creating is found once that one commits, not mistaken for a non-member', async () => {
  const { customerId, membershipId } = await newMember(world);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  // The first creator holds its transaction open; the second's insert waits on it, then finds the row taken.
  const first = ledgerWork(world, world.chainId, async ({ tx }) => {
    const account = await ensureAccount(tx, world.chainId, customerId);
    await sleep(400);
    return account;
  });
  await sleep(150);
  const second = ledgerWork(world, world.chainId, ({ tx }) => ensureAccount(tx, world.chainId, customerId));
  expect((await first)?.membershipId).toBe(membershipId);
  expect((await second)?.membershipId).toBe(membershipId);
});

describe('debit', () => {
  test('takes the oldest lots first, splitting across lots, and records where it took from', async () => {
    const { customerId } = await newMember(world);
    const now = Date.now();
    const oldest = await givePoints(world, customerId, 30, { earnedAt: new Date(now - 300 * DAY_MS) });
    const middle = await givePoints(world, customerId, 50, { earnedAt: new Date(now - 200 * DAY_MS) });
    const newest = await givePoints(world, customerId, 70, { earnedAt: new Date(now - 10 * DAY_MS) });
    const account = await accountOf(world, customerId);
    const taken = await ledgerWork(world, world.chainId, (write) => debit(write, account, 'REDEEM', 60, { source: 'REWARD' }, 'points.redeemed'));
    expect(taken!.balance).toBe(90);
    const allocations = await world.api.owner.pointsAllocation.findMany({ where: { debitEntryId: taken!.entryId }, orderBy: { lotId: 'asc' } });
    expect(allocations.map((a) => [a.lotId, a.amount])).toEqual([
      [oldest.lotId, 30],
      [middle.lotId, 30],
    ]);
    const remaining = Object.fromEntries((await lotsOf(world.api.owner, customerId)).map((l) => [String(l.id), l.remaining]));
    expect(remaining).toEqual({ [String(oldest.lotId)]: 0, [String(middle.lotId)]: 20, [String(newest.lotId)]: 70 });
  });

  test('a preferred lot is taken first', async () => {
    const { customerId } = await newMember(world);
    const old = await givePoints(world, customerId, 40, { earnedAt: new Date(Date.now() - 100 * DAY_MS) });
    const preferred = await givePoints(world, customerId, 20);
    const account = await accountOf(world, customerId);
    const taken = await ledgerWork(world, world.chainId, (write) =>
      debit(write, account, 'REVERSAL', 30, { source: 'VISIT', preferLotId: preferred.lotId }, 'points.reversed'),
    );
    const allocations = await world.api.owner.pointsAllocation.findMany({ where: { debitEntryId: taken!.entryId }, orderBy: { amount: 'desc' } });
    expect(allocations.map((a) => [a.lotId, a.amount])).toEqual([
      [preferred.lotId, 20],
      [old.lotId, 10],
    ]);
  });

  test('more than the balance is refused with InsufficientPointsError and changes nothing', async () => {
    const { customerId } = await newMember(world);
    await givePoints(world, customerId, 15);
    const account = await accountOf(world, customerId);
    const entriesBefore = await entriesOf(world.api.owner, customerId);
    const error = await ledgerWork(world, world.chainId, (write) => debit(write, account, 'REDEEM', 16, { source: 'REWARD' }, 'points.redeemed')).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).userErrors[0]).toMatchObject({ __typename: 'InsufficientPointsError', available: 15, requested: 16 });
    expect(await entriesOf(world.api.owner, customerId)).toEqual(entriesBefore);
  });

  test('lapsed points cannot be spent: a debit first expires the due lots', async () => {
    const { customerId } = await newMember(world);
    const lapsed = await givePoints(world, customerId, 80, { earnedAt: new Date(Date.now() - 400 * DAY_MS) });
    await givePoints(world, customerId, 20);
    expect(await balanceOf(world.api.owner, customerId)).toBe(100);
    const account = await accountOf(world, customerId);
    const error = await ledgerWork(world, world.chainId, (write) => debit(write, account, 'REDEEM', 21, { source: 'REWARD' }, 'points.redeemed')).catch(
      (e: unknown) => e,
    );
    // The failed debit rolled back, the expiry with it: the lot is still there, still due.
    expect((error as DomainError).userErrors[0]).toMatchObject({ available: 20, requested: 21 });
    const done = await ledgerWork(world, world.chainId, (write) => debit(write, account, 'REDEEM', 20, { source: 'REWARD' }, 'points.redeemed'));
    expect(done!.balance).toBe(0);
    const kinds = (await entriesOf(world.api.owner, customerId)).map((e) => [e.kind, e.amount]);
    expect(kinds).toEqual([
      ['EARN', 80],
      ['EARN', 20],
      ['EXPIRE', -80],
      ['REDEEM', -20],
    ]);
    const lot = await world.api.owner.pointsLot.findUniqueOrThrow({ where: { id: lapsed.lotId } });
    expect(lot.remaining).toBe(0);
  });

  test('concurrent debits and credits on one account: every change counts once and the balance never goes below zero', async () => {
    const { customerId } = await newMember(world);
    await givePoints(world, customerId, 50);
    const account = await accountOf(world, customerId);
    // 40 debits of 2 (only 25 + what the credits add can succeed) racing 10 credits of 1.
    const outcomes = await Promise.allSettled([
      ...Array.from({ length: 40 }, () =>
        ledgerWork(world, world.chainId, (write) => debit(write, account, 'REDEEM', 2, { source: 'REWARD' }, 'points.redeemed')),
      ),
      ...Array.from({ length: 10 }, () => givePoints(world, customerId, 1)),
    ]);
    const failures = outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason);
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(DomainError);
      expect((failure as DomainError).userErrors[0]!.code).toBe('INSUFFICIENT_POINTS');
    }
    const debits = 40 - failures.length;
    const balance = await balanceOf(world.api.owner, customerId);
    expect(balance).toBe(50 + 10 - 2 * debits);
    expect(balance).toBeGreaterThanOrEqual(0);
    // At least the 25 the first balance pays for; at most 30 (a debit that found 1 point left had to fail).
    expect(debits).toBeGreaterThanOrEqual(25);
    expect(debits).toBeLessThanOrEqual(30);
  });
});

describe('restoreDebit', () => {
  test('returns the points to the lots they came from, once', async () => {
    const { customerId } = await newMember(world);
    const a = await givePoints(world, customerId, 10, { earnedAt: new Date(Date.now() - 50 * DAY_MS) });
    const b = await givePoints(world, customerId, 10, { earnedAt: new Date(Date.now() - 40 * DAY_MS) });
    const c = await givePoints(world, customerId, 10);
    const account = await accountOf(world, customerId);
    const taken = await ledgerWork(world, world.chainId, (write) => debit(write, account, 'REDEEM', 15, { source: 'REWARD' }, 'points.redeemed'));
    // Spend more after it, from the lots that are left (b's other half, then c).
    await ledgerWork(world, world.chainId, (write) => debit(write, account, 'REDEEM', 8, { source: 'REWARD' }, 'points.redeemed'));
    const restore = () =>
      ledgerWork(world, world.chainId, (write) =>
        restoreDebit(write, account, taken!.entryId, { source: 'REWARD', dedupeKey: `test:restore:${taken!.entryId}` }, 'points.redemptionCancelled'),
      );
    const restored = await restore();
    expect(restored!.balance).toBe(30 - 15 - 8 + 15);
    expect(await restore()).toBeNull();
    const remaining = Object.fromEntries((await lotsOf(world.api.owner, customerId)).map((l) => [String(l.id), l.remaining]));
    expect(remaining).toEqual({ [String(a.lotId)]: 10, [String(b.lotId)]: 5, [String(c.lotId)]: 7 });
  });
});

describe('expireAccount', () => {
  test('expires only the lots that are due, each once', async () => {
    const { customerId } = await newMember(world);
    const due = await givePoints(world, customerId, 12, { earnedAt: new Date(Date.now() - 366 * DAY_MS) });
    const notYet = await givePoints(world, customerId, 7, { earnedAt: new Date(Date.now() - 300 * DAY_MS) });
    const account = await accountOf(world, customerId);
    const expired = await Promise.all([1, 2, 3].map(() => ledgerWork(world, world.chainId, (write) => expireAccount(write, account))));
    expect(expired.sort()).toEqual([0, 0, 12]);
    const expiries = (await entriesOf(world.api.owner, customerId)).filter((e) => e.kind === 'EXPIRE');
    expect(expiries.map((e) => [e.amount, e.sourceRef])).toEqual([[-12, `lot:${due.lotId}`]]);
    expect((await world.api.owner.pointsLot.findUniqueOrThrow({ where: { id: notYet.lotId } })).remaining).toBe(7);
  });
});
