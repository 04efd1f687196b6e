import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../testing/platform.ts';

/**
 * The N+1 guard: a page of customers, each with membership and last 5 visits with services and staff,
 * costs the same statements at 10 and at 200, and reads no more visit rows than it returns (per-customer
 * limits are applied in SQL, not by trimming in memory).
 */
const CUSTOMERS_WITH_VISITS = /* GraphQL */ `
  query CustomersWithVisits($first: Int!) {
    customers(first: $first, orderBy: { field: LAST_VISIT_AT, direction: DESC }) {
      edges {
        node {
          name
          membership { memberNumber }
          facts { visitCount totalSpend { amount } }
          visits(first: 5) {
            pageInfo { hasNextPage }
            edges { node { scheduledStart status services { name } staff { name } } }
          }
        }
      }
    }
  }`;

let api: TestPlatform;
beforeAll(async () => {
  api = await startTestPlatform();
});
afterAll(() => api?.close());

/** Visits of columns only: the per-customer page brings the rows themselves (all but the signature: see the last test). */
const VISIT_COLUMNS = 'id status scheduledStart scheduledEnd checkedInAt completedAt cancelledAt cancelReason refundedAt notes readings { metric before after unit } total { amount currencyCode }';
const customersWithVisitColumns = (extra = '') => /* GraphQL */ `
  query CustomersWithVisitColumns($first: Int!) {
    customers(first: $first, orderBy: { field: LAST_VISIT_AT, direction: DESC }) {
      edges { node { name visits(first: 5) { pageInfo { hasNextPage endCursor } edges { cursor node { ${VISIT_COLUMNS} ${extra} } } } } }
    }
  }`;

async function measure(first: number, query = CUSTOMERS_WITH_VISITS) {
  const stats = api.running.platform.dbs.stats;
  await api.gql(query, { first }); // warm: connections already carry the tenant setting
  stats.trace = [];
  const result = await api.gql(query, { first });
  const trace = stats.trace;
  stats.trace = null;
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  const customers = result.data.customers.edges.map((e: any) => e.node);
  const visits = customers.flatMap((c: any) => c.visits.edges.map((e: any) => e.node));
  const statements = trace.filter((s) => !s.sql.includes("set_config('app.org_id'"));
  const visitRowsRead = statements.filter((s) => /FROM "public"\."visit"|FROM visit\b/.test(s.sql)).reduce((sum, s) => sum + s.rows, 0);
  return { customers: customers.length, visits: visits.length, statements: statements.length, visitRowsRead, data: result.data };
}

test('statements per request do not grow with page size, and visit rows read equal rows returned', async () => {
  const at10 = await measure(10);
  const at200 = await measure(200);
  expect(at10.customers).toBe(10);
  expect(at200.customers).toBe(200);
  expect(at200.visits).toBeGreaterThan(at10.visits);
  expect(at200.statements).toBe(at10.statements);
  // customers with membership and facts (joined), the visit page ids, the visits with services and staff (joined).
  expect(at10.statements).toBeLessThanOrEqual(3);
  // Each visit is read once: by the per-customer LATERAL page (ids) and the load of those ids.
  expect(at10.visitRowsRead).toBe(2 * at10.visits);
  expect(at200.visitRowsRead).toBe(2 * at200.visits);
  console.log(`statements: ${at10.statements} at 10 customers, ${at200.statements} at 200; visit rows read ${at200.visitRowsRead} for ${at200.visits} returned (ids + rows)`);
});

test('visits of columns only come with their page: one statement fewer, each visit read once, the same answer', async () => {
  const at10 = await measure(10, customersWithVisitColumns());
  const at100 = await measure(100, customersWithVisitColumns()); // 200 would exceed the complexity limit
  expect(at100.visits).toBeGreaterThan(at10.visits);
  expect(at100.statements).toBe(at10.statements);
  expect(at10.statements).toBeLessThanOrEqual(2); // the customers, the visit pages with their rows
  expect(at100.visitRowsRead).toBe(at100.visits);
  // The same page through Prisma's read (a relation asked for) answers the same columns.
  const throughPrisma = await measure(100, customersWithVisitColumns('store { code }'));
  expect(throughPrisma.statements).toBe(at100.statements + 1);
  const withoutStore = JSON.parse(JSON.stringify(throughPrisma.data, (key, value) => (key === 'store' ? undefined : value)));
  expect(withoutStore).toEqual(at100.data);
});

test('a visit\'s signature (up to 300 kB) is read only when a query shows it, in one statement for all the visits', async () => {
  const stats = api.running.platform.dbs.stats;
  const visitStatements = async (query: string, variables: Record<string, unknown>) => {
    stats.trace = [];
    const result = await api.gql(query, variables);
    const trace = stats.trace;
    stats.trace = null;
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    return { data: result.data, sql: trace.map((s) => s.sql).filter((text) => /FROM "public"\."visit"|FROM visit\b/.test(text)) };
  };
  const list = (visitFields: string) => `query List($first: Int!) { customers(first: $first) { edges { node { id visits(first: 5) { edges { node { ${visitFields} } } } } } } }`;
  const one = (visitFields: string) => `query One($id: ID!) { node(id: $id) { ... on Customer { visits(first: 5) { edges { node { ${visitFields} } } } } } }`;

  const page = await visitStatements(list('id status total { amount }'), { first: 20 });
  const withRelation = await visitStatements(list('id status store { code }'), { first: 20 });
  const customerId = page.data.customers.edges[0].node.id;
  const single = await visitStatements(one('id status notes'), { id: customerId });
  for (const { sql } of [page, withRelation, single]) {
    expect(sql.length).toBeGreaterThan(0);
    expect(sql.join('\n')).not.toMatch(/signature/);
  }
  const signed = await visitStatements(list('id signature { signerName }'), { first: 20 });
  expect(signed.sql.filter((text) => /signature/.test(text))).toHaveLength(1);
  expect((await visitStatements(one('signature { signerName }'), { id: customerId })).sql.join('\n')).toMatch(/signature/);
});
