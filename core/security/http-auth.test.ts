/**
 * Authentication from the outside, over real HTTP and WebSocket: forged and expired tokens get 401 and no data,
 * a missing token gets UNAUTHENTICATED on every root field, a bad graphql-ws connection_init is closed with 4403
 * before anything starts, and a subscription dies with its token.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { exportJWK, exportSPKI, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { getNamedType, isInterfaceType, isLeafType, isObjectType } from 'graphql';
import pg from 'pg';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { principalToClaims, type Principal } from '../auth/principal.ts';
import { mintToken } from '../auth/mint.ts';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../auth/verify.ts';
import { buildSchema } from '../graphql/schema.ts';
import { gid, startTestPlatform, type TestPlatform } from '../testing/platform.ts';
import { fingerprint, waitFor } from './support.ts';

let api: TestPlatform;
let db: pg.Client;
const forged: Record<string, string> = {};

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Claims exactly as a real token for the owner carries them (so only the forged part is wrong). */
function ownerClaims(): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  const { sub, ...claims } = principalToClaims(api.principals.OWNER!);
  return { ...claims, sub, iss: DEFAULT_ISSUER, aud: DEFAULT_AUDIENCE, iat: now, exp: now + 3600, jti: randomUUID() };
}

function hs256(header: Record<string, unknown>, claims: Record<string, unknown>, secret: string | Buffer): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

async function post(body: unknown, authorization?: string): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (authorization !== undefined) headers.authorization = authorization;
  const response = await fetch(api.url, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

beforeAll(async () => {
  api = await startTestPlatform();
  db = new pg.Client({ connectionString: api.database.url });
  await db.connect();
  const { kid } = api.signingKey;
  const owner = api.principals.OWNER!;
  const mint = (options: { issuer?: string; audience?: string; expiresIn?: string }) =>
    mintToken(api.signingKey, owner, { issuer: options.issuer ?? DEFAULT_ISSUER, audience: options.audience ?? DEFAULT_AUDIENCE, expiresIn: options.expiresIn ?? '1h' });

  forged['alg none'] = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(ownerClaims())}.`;
  forged['alg none with the real kid'] = `${b64url({ alg: 'none', typ: 'JWT', kid })}.${b64url(ownerClaims())}.`;
  const stranger = await generateKeyPair('ES256');
  forged['wrong key, real kid'] = await new SignJWT(ownerClaims()).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).sign(stranger.privateKey);
  forged['wrong key, own kid'] = await new SignJWT(ownerClaims()).setProtectedHeader({ alg: 'ES256', kid: 'attacker', typ: 'JWT' }).sign(stranger.privateKey);
  // HS/RS confusion: an HMAC keyed with the server's public key, in the forms an attacker can get.
  const jwks = JSON.parse(await readFile(api.signingKey.jwksPath, 'utf8')) as { keys: JWK[] };
  const publicJwk = jwks.keys[0]!;
  const publicPem = await exportSPKI((await importJWK(publicJwk, 'ES256', { extractable: true })) as never);
  forged['HS256 keyed with the public JWK'] = hs256({ alg: 'HS256', typ: 'JWT', kid }, ownerClaims(), JSON.stringify(publicJwk));
  forged['HS256 keyed with the public PEM'] = hs256({ alg: 'HS256', typ: 'JWT', kid }, ownerClaims(), publicPem);
  forged['HS256 keyed with the JWKS file'] = hs256({ alg: 'HS256', typ: 'JWT', kid }, ownerClaims(), await readFile(api.signingKey.jwksPath));
  forged.expired = await mint({ expiresIn: '-2m' });
  forged['wrong iss'] = await mint({ issuer: 'urn:someone-else' });
  forged['wrong aud'] = await mint({ audience: 'urn:another-api' });
  const genuine = (await api.token('OTHER_CHAIN_OWNER')).split('.');
  forged['payload swapped under a real signature'] = `${genuine[0]}.${b64url(ownerClaims())}.${genuine[2]}`;
  forged['no exp'] = await new SignJWT({ ...ownerClaims(), exp: undefined }).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).sign(api.signingKey.privateKey);
  forged.garbage = 'garbage';
  forged['three garbage segments'] = 'aaa.bbb.ccc';
  // A real key pair's public half, to check the stranger key really differs.
  expect((await exportJWK(stranger.publicKey)).x).not.toBe(publicJwk.x);
});

afterAll(async () => {
  await db?.end();
  await api?.close();
});

const READ = '{ viewer { kind organization { name } } customers(first: 3) { totalCount edges { node { name phone } } } }';

describe('HTTP', () => {
  test('a genuine token reads data (control)', async () => {
    const { status, body } = await post({ query: READ }, `Bearer ${await api.token('OWNER')}`);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data.customers.totalCount).toBeGreaterThan(0);
  });

  test.each([
    'alg none', 'alg none with the real kid', 'wrong key, real kid', 'wrong key, own kid', 'HS256 keyed with the public JWK',
    'HS256 keyed with the public PEM', 'HS256 keyed with the JWKS file', 'expired', 'wrong iss', 'wrong aud',
    'payload swapped under a real signature', 'no exp', 'garbage', 'three garbage segments',
  ])('%s: 401, UNAUTHENTICATED, no data', async (name) => {
    const { status, body } = await post({ query: READ }, `Bearer ${forged[name]}`);
    expect(status).toBe(401);
    expect(body.data).toBeUndefined();
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    expect(body.errors[0].extensions.reason).toEqual(name === 'expired' ? 'TOKEN_EXPIRED' : name === 'no exp' ? 'TOKEN_INVALID' : expect.any(String));
    expect(JSON.stringify(body)).not.toMatch(/Lumière|丽美|stack/);
  });

  test('a malformed Authorization header is 401 too', async () => {
    for (const header of ['Basic b3duZXI6c2VjcmV0', `Bearer`, `Bearer ${forged.garbage} extra`, `Token ${await api.token('OWNER')}`]) {
      const { status, body } = await post({ query: READ }, header);
      expect({ header, status, code: body.errors?.[0]?.extensions?.code, data: body.data }).toEqual({ header, status: 401, code: 'UNAUTHENTICATED', data: undefined });
    }
  });

  test('a forged token cannot write: the mutation does not run', async () => {
    const before = await fingerprint(db);
    const customer = (await db.query<{ id: string }>('SELECT id FROM customer WHERE org_id = $1 LIMIT 1', [api.principals.OWNER!.orgId])).rows[0]!.id;
    for (const name of ['alg none', 'HS256 keyed with the public PEM', 'wrong key, real kid', 'expired']) {
      const { status, body } = await post(
        {
          query: 'mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { customer { name } userErrors { code } } }',
          variables: { input: { customerId: gid('Customer', customer), name: 'Forged' } },
        },
        `Bearer ${forged[name]}`,
      );
      expect({ name, status, data: body.data }).toEqual({ name, status: 401, data: undefined });
    }
    expect(await fingerprint(db)).toEqual(before);
  });

  test('without a token, every root field answers UNAUTHENTICATED and nothing else', async () => {
    const fields = schemaRootFields();
    expect(fields.length).toBeGreaterThanOrEqual(9);
    const customer = (await db.query<{ id: string }>('SELECT id FROM customer LIMIT 1')).rows[0]!.id;
    for (const [name, args, selection] of fields) {
      const query = args ? `query($id: ID!) { ${name}${args} { ${selection} } }` : `{ ${name} { ${selection} } }`;
      const { body } = await post({ query, variables: args ? { id: gid('Customer', customer) } : {} });
      // Null where the field is (or the whole data, for a non-null field such as nodes), an error at the field.
      expect(body.data === null || body.data[name] === null, name).toBe(true);
      expect(body.errors.map((e: { path: string[]; message: string; extensions?: { code: string } }) => [e.path, e.extensions?.code ?? e.message]), name).toEqual([[[name], 'UNAUTHENTICATED']]);
    }
    // The request itself is served: a field that needs nobody answers.
    const served = await post({ query: '{ __typename }' });
    expect(served).toEqual({ status: 200, body: { data: { __typename: 'Query' } } });
  });

  test('without a token, a mutation answers UNAUTHENTICATED and changes nothing', async () => {
    const before = await fingerprint(db);
    const { body } = await post({
      query: 'mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } userErrors { code } } }',
      variables: { input: { name: 'Anonymous', phone: '+8613900001111' } },
    });
    expect(body.data?.createCustomer ?? null).toBeNull();
    expect(body.errors.map((error: { extensions: { code: string } }) => error.extensions.code)).toEqual(['UNAUTHENTICATED']);
    expect(await fingerprint(db)).toEqual(before);
  });
});

/** Root query fields with the arguments they require (`$id` is declared by the caller) and a selection that needs data. */
function schemaRootFields(): [string, string, string][] {
  const fields = buildSchema([]).getQueryType()!.getFields();
  return Object.values(fields).map((field) => {
    const required = field.args.filter((arg) => String(arg.type).endsWith('!'));
    const args = required.map((arg) => `${arg.name}: ${String(arg.type).startsWith('[') ? '[$id]' : '$id'}`).join(', ');
    const type = getNamedType(field.type);
    const own = isObjectType(type) || isInterfaceType(type) ? type.getFields() : {};
    const scalar = Object.values(own).find((f) => f.args.length === 0 && isLeafType(getNamedType(f.type)));
    const selection = own.edges ? 'edges { cursor }' : own.id ? 'id' : (scalar?.name ?? '__typename');
    return [field.name, args ? `(${args})` : '', selection];
  });
}

// ---------------------------------------------------------------------------------------------------------------

interface RawSocket {
  messages: { type: string; id?: string; payload?: unknown }[];
  closed: Promise<{ code: number; reason: string; at: number }>;
  send(message: unknown): void;
  close(): void;
}

/** A graphql-transport-ws socket driven by hand, to see the protocol's own messages and close codes. */
function openSocket(): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(api.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const messages: RawSocket['messages'] = [];
    const closed = new Promise<{ code: number; reason: string; at: number }>((done) =>
      socket.on('close', (code, reason) => done({ code, reason: reason.toString(), at: Date.now() })),
    );
    socket.on('message', (data) => messages.push(JSON.parse(data.toString())));
    socket.on('error', reject);
    socket.on('open', () =>
      resolve({
        messages,
        closed,
        send: (message) => socket.send(JSON.stringify(message)),
        close: () => socket.close(),
      }),
    );
  });
}

const SUBSCRIBE = (storeId: string) => ({
  id: '1',
  type: 'subscribe',
  payload: { query: 'subscription($id: ID!) { storeVisitsChanged(storeId: $id) { type visit { id } } }', variables: { id: gid('Store', storeId) } },
});
const shStore = () => (api.principals.FRONT_DESK as Extract<Principal, { kind: 'STAFF' }>).storeIds[0]!;

async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([promise, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms))]);
}

describe('graphql-ws', () => {
  test('a genuine token is acknowledged and can subscribe (control)', async () => {
    const socket = await openSocket();
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${await api.token('FRONT_DESK')}` } });
    expect(await waitFor(() => socket.messages.length > 0, 5_000)).toBe(true);
    socket.send(SUBSCRIBE(shStore()));
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Acknowledged, and the subscription is running (no error, no completion).
    expect(socket.messages.map((m) => m.type)).toEqual(['connection_ack']);
    socket.close();
    await socket.closed;
  });

  test.each([
    ['missing payload', undefined],
    ['payload without authorization', {}],
    ['empty authorization', { authorization: '' }],
    ['not a Bearer', { authorization: 'Basic b3duZXI6c2VjcmV0' }],
    ...Object.keys({ 'alg none': 1, 'wrong key, real kid': 1, 'HS256 keyed with the public PEM': 1, 'HS256 keyed with the public JWK': 1, expired: 1, 'wrong iss': 1, 'wrong aud': 1, 'payload swapped under a real signature': 1, garbage: 1 }).map(
      (name) => [name, 'forged'] as [string, unknown],
    ),
  ])('connection_init with %s is closed with 4403 and nothing starts', async (name, payload) => {
    const init = payload === 'forged' ? { authorization: `Bearer ${forged[name]}` } : payload;
    const initMessage = init === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload: init };
    // A client that waits for the acknowledgement, as the protocol asks: refused with 4403, never acknowledged.
    const polite = await openSocket();
    polite.send(initMessage);
    const closed = await within(polite.closed, 5_000);
    expect(closed).not.toBe('timeout');
    expect((closed as { code: number }).code).toBe(4403);
    expect(polite.messages).toEqual([]);
    // A client that subscribes without waiting: closed too (4401 "subscribe before ack", or 4403), and no data.
    const eager = await openSocket();
    eager.send(initMessage);
    eager.send(SUBSCRIBE(shStore()));
    const eagerClosed = await within(eager.closed, 5_000);
    expect([4401, 4403]).toContain((eagerClosed as { code: number }).code);
    expect(eager.messages).toEqual([]);
  });

  test('a subscription is closed when its token expires', async () => {
    const token = await api.token('FRONT_DESK', '2s');
    const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp as number;
    const socket = await openSocket();
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
    expect(await waitFor(() => socket.messages.length > 0, 1_500)).toBe(true);
    socket.send(SUBSCRIBE(shStore()));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(socket.messages.map((m) => m.type)).toEqual(['connection_ack']);
    const closed = await within(socket.closed, 8_000);
    expect(closed).not.toBe('timeout');
    const { code, at } = closed as { code: number; at: number };
    expect(code).toBe(4403);
    // At exp (the server's timer), not long before or after.
    expect(at).toBeGreaterThanOrEqual(exp * 1000 - 1_000);
    expect(at).toBeLessThanOrEqual(exp * 1000 + 3_000);
    expect(socket.messages.filter((m) => m.type === 'next')).toEqual([]);
  });

  test('an already expired token is refused at connection_init', async () => {
    const socket = await openSocket();
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${await api.token('FRONT_DESK', '-1m')}` } });
    const closed = await within(socket.closed, 5_000);
    expect((closed as { code: number }).code).toBe(4403);
    expect(socket.messages).toEqual([]);
  });
});
