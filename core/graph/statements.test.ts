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

async function measure(first: number) {
  const stats = api.running.platform.dbs.stats;
  await api.gql(CUSTOMERS_WITH_VISITS, { first }); // warm: connections already carry the tenant setting
  stats.trace = [];
  const result = await api.gql(CUSTOMERS_WITH_VISITS, { first });
  const trace = stats.trace;
  stats.trace = null;
  expect(result.errors).toBeUndefined();
  const customers = result.data.customers.edges.map((e: any) => e.node);
  const visits = customers.flatMap((c: any) => c.visits.edges.map((e: any) => e.node));
  const statements = trace.filter((s) => !s.sql.includes("set_config('app.org_id'"));
  const visitRowsRead = statements.filter((s) => /FROM "public"\."visit"|FROM visit\b/.test(s.sql)).reduce((sum, s) => sum + s.rows, 0);
  return { customers: customers.length, visits: visits.length, statements: statements.length, visitRowsRead };
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
