/**
 * Production mode from the outside, over HTTP and over graphql-ws: no introspection, no field suggestions, no
 * internal details in errors, no GraphiQL; depth, cost, alias and token limits refuse a request before any of it
 * runs. A development server over the same platform and database is the control (introspection, suggestions and
 * error details are there), so each check here can fail.
 */
import type { Client } from 'graphql-ws';
import { complexityFromQuery } from '@pothos/plugin-complexity';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTokenVerifier, DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../auth/verify.ts';
import { COMPLEXITY_LIMITS } from '../graphql/builder.ts';
import { buildSchema } from '../graphql/schema.ts';
import { createApp, type RunningServer } from '../server.ts';
import { gid, startTestPlatform, type GraphQLResponse, type TestPlatform } from '../testing/platform.ts';
import { fingerprint, wsFirst, type WsOutcome } from './support.ts';

const schema = buildSchema([]);
let api: TestPlatform;
let dev: RunningServer;
let ws: Client;
let customerId: string;
let storeId: string;

async function post(url: string, query: string, variables: Record<string, unknown> = {}): Promise<{ status: number; body: GraphQLResponse }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${await api.token('OWNER')}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as GraphQLResponse };
}
const prod = (query: string, variables?: Record<string, unknown>) => post(api.url, query, variables);
const development = (query: string, variables?: Record<string, unknown>) => post(dev.url, query, variables);

/** SQL statements the application role ran while `work` ran. */
async function statementsDuring(work: () => Promise<unknown>): Promise<number> {
  const stats = api.running.platform.dbs.stats;
  const before = stats.statements;
  await work();
  return stats.statements - before;
}

const measure = (query: string) => complexityFromQuery(query, { schema, variables: {} });

/** customers → … → membership → customer → … nested until the plugin measures exactly `depth`. */
function queryOfDepth(depth: number, operation: 'query' | 'subscription' = 'query'): string {
  for (let pairs = 0; pairs < 20; pairs++) {
    for (const leaf of ['name', 'membership { memberNumber }']) {
      const inner = `${'membership { customer { '.repeat(pairs)}${leaf}${' } }'.repeat(pairs)}`;
      const query =
        operation === 'query'
          ? `query { customers(first: 1) { edges { node { ${inner} } } } }`
          : `subscription { customerChanged(customerId: "${gid('Customer', customerId)}") { customer { ${inner} } } }`;
      if (measure(query).depth === depth) return query;
    }
  }
  throw new Error(`No query of depth ${depth}`);
}

const COSTLY = `{ customers(first: 100) { edges { node { visits(first: 50) { edges { node {
  customer { visits(first: 50) { edges { node { id services { id name } } } } } } } } } } } }`;
const COSTLY_SUBSCRIPTION = () => `subscription { storeVisitsChanged(storeId: "${gid('Store', storeId)}") { visit { customer {
  a: visits(first: 50) { edges { node { customer { visits(first: 50) { edges { node { id services { id name } lineItems { description } } } } } } } }
  b: visits(first: 50) { edges { node { customer { visits(first: 50) { edges { node { id services { id name } } } } } } } } } } } }`;
const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`;
const tokens = (n: number) => `{ viewer { ${'kind '.repeat(n)} } }`;
const INTROSPECTION = '{ __schema { queryType { name } types { name fields { name } } } }';
/** Served by a table the application role is, for the moment, not allowed to read (see `withInternalError`). */
const INTERNAL = '{ stores { id name } }';

beforeAll(async () => {
  api = await startTestPlatform({ production: true });
  // The same platform served in development mode: the control for every production check.
  const verifier = createTokenVerifier({ issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, keySource: { kind: 'jwksFile', path: api.signingKey.jwksPath } });
  dev = await createApp({ platform: api.running.platform, schema, verifier, production: false }).listen(0, '127.0.0.1');
  ws = await api.ws('OWNER');
  const first = await prod('{ customers(first: 1) { edges { node { id } } } stores { id } }');
  customerId = Buffer.from(first.body.data.customers.edges[0].node.id, 'base64').toString().split(':')[1]!;
  storeId = Buffer.from(first.body.data.stores[0].id, 'base64').toString().split(':')[1]!;
});

afterAll(async () => {
  await dev?.close();
  await api?.close();
});

/**
 * Forces an internal error the server cannot turn into anything the caller could act on: the application role
 * loses SELECT on store while `work` runs (this file's own database), so reading stores fails in PostgreSQL.
 */
async function withInternalError<T>(work: () => Promise<T>): Promise<T> {
  const owner = new pg.Client({ connectionString: api.database.url });
  await owner.connect();
  try {
    await owner.query('REVOKE SELECT ON store FROM crm_app');
    return await work();
  } finally {
    await owner.query('GRANT SELECT ON store TO crm_app');
    await owner.end();
  }
}

function expectNoDetails(body: unknown) {
  const text = JSON.stringify(body);
  expect(text).not.toMatch(/stack|originalError|prisma|permission denied|\.ts:|node_modules/i);
}

describe('introspection', () => {
  test('is refused in production, over HTTP', async () => {
    for (const query of [INTROSPECTION, '{ __type(name: "Customer") { name fields { name } } }']) {
      const { body } = await prod(query);
      expect(body.data).toBeUndefined();
      expect(body.errors!.length).toBeGreaterThan(0);
      expect(body.errors![0]!.message).toMatch(/introspection/i);
    }
  });

  test('works in development (control)', async () => {
    const { body } = await development(INTROSPECTION);
    expect(body.errors).toBeUndefined();
    expect(body.data.__schema.queryType.name).toBe('Query');
  });
});

describe('field suggestions', () => {
  test('a misspelled field gets no "Did you mean" in production', async () => {
    for (const query of ['{ custmers(first: 1) { totalCount } }', '{ viewer { kinds } }', '{ stores { nmae } }']) {
      const { body } = await prod(query);
      expect(body.errors!.length).toBeGreaterThan(0);
      for (const error of body.errors!) expect(error.message).not.toMatch(/did you mean|customers|name"/i);
    }
  });

  test('development suggests (control)', async () => {
    const { body } = await development('{ custmers(first: 1) { totalCount } }');
    expect(body.errors![0]!.message).toMatch(/Did you mean "customers"/);
  });
});

describe('internal errors', () => {
  test('are masked in production: "Unexpected error.", no stack, no original error', async () => {
    const { body } = await withInternalError(() => prod(INTERNAL));
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0]!.message).toBe('Unexpected error.');
    expect(body.errors![0]!.extensions ?? {}).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
    expectNoDetails(body);
    // The same query is served once the table is readable again: the error was the forced one.
    expect((await prod(INTERNAL)).body.errors).toBeUndefined();
  });

  test('carry details in development (control)', async () => {
    const { body } = await withInternalError(() => development(INTERNAL));
    expect(JSON.stringify(body)).toMatch(/permission denied/);
    expect(JSON.stringify(body)).toMatch(/originalError|stack/);
  });
});

describe('GraphiQL', () => {
  const page = async (url: string) => {
    const response = await fetch(url, { headers: { accept: 'text/html' } });
    return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
  };

  test('is not served in production', async () => {
    const { status, type, text } = await page(api.url);
    expect(type).not.toMatch(/text\/html/);
    expect(text).not.toMatch(/graphiql/i);
    expect(status).toBeGreaterThanOrEqual(400);
  });

  test('is served in development (control)', async () => {
    const { status, type, text } = await page(dev.url);
    expect(status).toBe(200);
    expect(type).toMatch(/text\/html/);
    expect(text).toMatch(/graphiql/i);
  });
});

describe('limits over HTTP', () => {
  test(`depth over ${COMPLEXITY_LIMITS.depth} is refused before anything runs; depth ${COMPLEXITY_LIMITS.depth} is served`, async () => {
    const deep = queryOfDepth(COMPLEXITY_LIMITS.depth + 1);
    let refused: GraphQLResponse = {};
    expect(await statementsDuring(async () => ({ body: refused } = await prod(deep)))).toBe(0);
    expect(refused.errors![0]!.message).toMatch(/depth/i);
    expect(refused.data?.customers ?? null).toBeNull();

    const { body } = await prod(queryOfDepth(COMPLEXITY_LIMITS.depth));
    expect(body.errors).toBeUndefined();
    expect(body.data.customers.edges).toHaveLength(1);
  });

  test('a mutation operation over the depth limit changes nothing, not even its cheap first field', async () => {
    const inner = `${'membership { customer { '.repeat(6)}name${' } }'.repeat(6)}`;
    const mutation = `mutation($a: CreateCustomerInput!, $b: CreateCustomerInput!) {
      first: createCustomer(input: $a) { userErrors { code } }
      second: createCustomer(input: $b) { customer { ${inner} } userErrors { code } } }`;
    expect(complexityFromQuery(mutation, { schema, variables: { a: { name: 'A', phone: '+8613900000001' }, b: { name: 'B', phone: '+8613900000002' } } }).depth).toBeGreaterThan(COMPLEXITY_LIMITS.depth);
    const owner = new pg.Client({ connectionString: api.database.url });
    await owner.connect();
    try {
      const before = await fingerprint(owner);
      let refused: GraphQLResponse = {};
      const statements = await statementsDuring(async () => ({ body: refused } = await prod(mutation, { a: { name: 'Depth A', phone: '+8613900000001' }, b: { name: 'Depth B', phone: '+8613900000002' } })));
      expect(statements).toBe(0);
      expect(refused.errors![0]!.message).toMatch(/depth/i);
      expect(refused.data?.first ?? null).toBeNull();
      expect(await fingerprint(owner)).toEqual(before);
    } finally {
      await owner.end();
    }
  });

  test('a very costly query is refused before anything runs; a modest one is served', async () => {
    expect(measure(COSTLY).complexity).toBeGreaterThan(COMPLEXITY_LIMITS.complexity);
    expect(measure(COSTLY).depth).toBeLessThanOrEqual(COMPLEXITY_LIMITS.depth);
    let refused: GraphQLResponse = {};
    expect(await statementsDuring(async () => ({ body: refused } = await prod(COSTLY)))).toBe(0);
    expect(refused.errors![0]!.message).toMatch(/complexity/i);
    expect(refused.data?.customers ?? null).toBeNull();

    const modest = '{ customers(first: 10) { edges { node { visits(first: 5) { edges { node { id } } } } } } }';
    expect(measure(modest).complexity).toBeLessThan(COMPLEXITY_LIMITS.complexity);
    expect((await prod(modest)).body.errors).toBeUndefined();
  });

  test('more than 30 aliases are refused; 30 are served', async () => {
    const refused = await prod(aliases(31));
    expect(refused.body.data).toBeUndefined();
    expect(refused.body.errors![0]!.message).toMatch(/alias/i);
    expect((await prod(aliases(30))).body).toEqual({ data: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`a${i}`, 'Query'])) });
  });

  test('more than 2000 tokens are refused', async () => {
    const refused = await prod(tokens(2_100));
    expect(refused.body.data).toBeUndefined();
    expect(refused.body.errors![0]!.message).toMatch(/token/i);
    expect((await prod(tokens(100))).body.errors).toBeUndefined();
  });
});

/** Refused on the socket: a protocol-level error, or a result with errors and no data; never a running operation. */
function expectRefused(outcome: WsOutcome, pattern: RegExp) {
  expect(outcome.kind === 'error' || outcome.kind === 'next').toBe(true);
  const errors = outcome.kind === 'error' ? (outcome.errors as { message: string }[]) : (outcome as { value: GraphQLResponse }).value.errors!;
  expect(Array.isArray(errors) && errors.length > 0).toBe(true);
  expect(errors[0]!.message).toMatch(pattern);
  if (outcome.kind === 'next') {
    const data = (outcome.value as GraphQLResponse).data;
    for (const value of Object.values(data ?? {})) expect(value).toBeNull();
  }
}

describe('the same rules on graphql-ws', () => {
  test('introspection is refused', async () => {
    expectRefused(await wsFirst(ws, { query: INTROSPECTION }), /introspection/i);
  });

  test('a misspelled field gets no suggestion', async () => {
    const outcome = await wsFirst(ws, { query: '{ custmers(first: 1) { totalCount } }' });
    expectRefused(outcome, /custmers/);
    expect(JSON.stringify(outcome)).not.toMatch(/did you mean/i);
  });

  test('internal errors are masked', async () => {
    const outcome = await withInternalError(() => wsFirst(ws, { query: INTERNAL }));
    expectRefused(outcome, /^Unexpected error\.$/);
    expectNoDetails(outcome);
  });

  test('too deep and too costly queries are refused before anything runs', async () => {
    for (const [query, pattern] of [[queryOfDepth(COMPLEXITY_LIMITS.depth + 1), /depth/i], [COSTLY, /complexity/i]] as const) {
      let outcome: WsOutcome = { kind: 'pending' };
      expect(await statementsDuring(async () => (outcome = await wsFirst(ws, { query })))).toBe(0);
      expectRefused(outcome, pattern);
    }
    expect(await wsFirst(ws, { query: queryOfDepth(COMPLEXITY_LIMITS.depth) })).toMatchObject({ kind: 'next', value: { data: { customers: { edges: [{ node: {} }] } } } });
  });

  test('too deep and too costly subscriptions are refused, not started', async () => {
    const deep = queryOfDepth(COMPLEXITY_LIMITS.depth + 1, 'subscription');
    expect(measure(COSTLY_SUBSCRIPTION()).complexity).toBeGreaterThan(COMPLEXITY_LIMITS.complexity);
    expect(measure(COSTLY_SUBSCRIPTION()).depth).toBeLessThanOrEqual(COMPLEXITY_LIMITS.depth);
    for (const [query, pattern] of [[deep, /depth/i], [COSTLY_SUBSCRIPTION(), /complexity/i]] as const) {
      let outcome: WsOutcome = { kind: 'pending' };
      expect(await statementsDuring(async () => (outcome = await wsFirst(ws, { query }, 1_000)))).toBe(0);
      expectRefused(outcome, pattern);
    }
    // Control: a subscription within the limits starts and waits for events.
    expect(await wsFirst(ws, { query: queryOfDepth(COMPLEXITY_LIMITS.depth, 'subscription') }, 500)).toEqual({ kind: 'pending' });
  });

  test('more than 30 aliases and more than 2000 tokens are refused', async () => {
    expectRefused(await wsFirst(ws, { query: aliases(31) }), /alias/i);
    expectRefused(await wsFirst(ws, { query: tokens(2_100) }), /token/i);
    expect(await wsFirst(ws, { query: aliases(30) })).toMatchObject({ kind: 'next', value: { data: { a29: 'Query' } } });
  });
});
