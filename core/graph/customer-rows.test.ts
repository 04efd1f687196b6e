import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Prisma } from '../db/generated/client.ts';
import { createContext } from '../graphql/context.ts';
import { startTestPlatform, type TestPlatform } from '../testing/platform.ts';
import { loadCustomerRow, type CustomerRowSource } from './customer-rows.ts';

let api: TestPlatform;
beforeAll(async () => {
  api = await startTestPlatform();
});
afterAll(() => api?.close());

// Two sources of the kind plugins add: one value per customer, or none.
const nameRow: CustomerRowSource<string> = {
  name: 'test.name',
  subquery: () => Prisma.sql`SELECT json_build_object('name', name) FROM customer WHERE id = c.id`,
  parse: (row) => row.name as string,
};
const membershipRow: CustomerRowSource<{ memberNumber: string; joinedOn: string }> = {
  name: 'test.membership',
  subquery: () => Prisma.sql`SELECT json_build_object('memberNumber', member_number, 'joinedOn', joined_on) FROM membership WHERE customer_id = c.id`,
  parse: (row) => row as { memberNumber: string; joinedOn: string },
};

test('every source asked for in the same tick comes back in one statement, for every customer asked about', async () => {
  const orgId = api.principals.OWNER!.orgId;
  const customers = await api.owner.customer.findMany({ where: { orgId }, include: { membership: true }, take: 20, orderBy: { id: 'asc' } });
  const member = customers.find((c) => c.membership)!;
  const nonMember = customers.find((c) => !c.membership)!;
  const otherChains = await api.owner.customer.findFirstOrThrow({ where: { orgId: api.principals.OTHER_CHAIN_OWNER!.orgId } });
  const ids = [member.id, nonMember.id, otherChains.id, randomUUID()];

  const ctx = createContext(api.running.platform, api.principals.OWNER!);
  const stats = api.running.platform.dbs.stats;
  stats.trace = [];
  const [names, memberships] = await Promise.all([
    Promise.all(ids.map((id) => loadCustomerRow(ctx, nameRow, id))),
    Promise.all(ids.map((id) => loadCustomerRow(ctx, membershipRow, id))),
  ]);
  const statements = stats.trace.filter((s) => !s.sql.includes("set_config('app.org_id'"));
  stats.trace = null;

  expect(statements).toHaveLength(1);
  // Another chain's customer reads like one that does not exist: the tenant client's row security applies.
  expect(names).toEqual([member.name, nonMember.name, null, null]);
  expect(memberships).toEqual([{ memberNumber: member.membership!.memberNumber, joinedOn: member.membership!.joinedOn.toISOString().slice(0, 10) }, null, null, null]);
  // Asked again in the request: from the loader's cache, no statement.
  stats.trace = [];
  expect(await loadCustomerRow(ctx, nameRow, member.id)).toBe(member.name);
  expect(stats.trace).toHaveLength(0);
  stats.trace = null;
});
