import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  base64url,
  calculateJwkThumbprint,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWTPayload,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLocalSigningKey, JWKS_FILE, PRIVATE_KEY_FILE, readSigningKey, type KeySource } from './keys.ts';
import { runMintCli } from './mint-cli.ts';
import { mintToken, type SigningKey } from './mint.ts';
import { AuthError, principalFromClaims, type AuthErrorCode, type Principal } from './principal.ts';
import { authConfigFromEnv, createTokenVerifier, parseBearer, type TokenVerifier } from './verify.ts';

const ISS = 'urn:beauty-crm:test';
const AUD = 'urn:beauty-crm:api';
const ORG = '5b0c6f4e-0d7c-4f57-9a53-2f1e1c1d0a01';
const STORE_A = '2a7d1b8e-3c4f-4a5b-8c6d-7e8f9a0b1c2d';
const STORE_B = '9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a';

const staff: Principal = {
  kind: 'STAFF',
  orgId: ORG,
  staffId: '0e6f5a4b-3c2d-4e1f-8a9b-0c1d2e3f4a5b',
  role: 'STORE_MANAGER',
  storeIds: [STORE_A, STORE_B],
};
const customer: Principal = { kind: 'CUSTOMER', orgId: ORG, customerId: '6c5b4a39-2817-4f6e-9d5c-4b3a29180f7e' };
const apiClient: Principal = {
  kind: 'API_CLIENT',
  orgId: ORG,
  clientId: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
  scopes: ['appointments:read', 'pos:write'],
  storeIds: [STORE_A],
};

type Pair = { publicKey: CryptoKey; privateKey: CryptoKey; kid: string; alg: string };

async function newPair(alg: 'ES256' | 'RS256' | 'EdDSA', kid: string): Promise<Pair> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { publicKey, privateKey, kid, alg };
}

async function jwksOf(...pairs: Pair[]): Promise<JSONWebKeySet> {
  return {
    keys: await Promise.all(
      pairs.map(async (p) => ({ ...(await exportJWK(p.publicKey)), kid: p.kid, alg: p.alg, use: 'sig' })),
    ),
  };
}

const now = () => Math.floor(Date.now() / 1000);

/** Signs arbitrary claims (for the malformed/edge cases mintToken refuses to produce). */
async function signRaw(
  key: { privateKey: CryptoKey | Uint8Array; kid?: string; alg: string },
  payload: JWTPayload,
  opts: { iss?: string | null; aud?: string | null; exp?: number | null; sub?: string | null } = {},
): Promise<string> {
  const jwt = new SignJWT(payload).setProtectedHeader({ alg: key.alg, ...(key.kid ? { kid: key.kid } : {}) }).setIssuedAt();
  if (opts.iss !== null) jwt.setIssuer(opts.iss ?? ISS);
  if (opts.aud !== null) jwt.setAudience(opts.aud ?? AUD);
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? now() + 600);
  if (opts.sub !== null) jwt.setSubject(opts.sub ?? (staff as { staffId: string }).staffId);
  return jwt.sign(key.privateKey);
}

const staffClaims = { org: ORG, kind: 'staff', role: 'STORE_MANAGER', stores: [STORE_A] };

async function expectAuthError(p: Promise<unknown>, code: AuthErrorCode): Promise<AuthError> {
  const err = await p.then(
    () => {
      throw new Error(`expected AuthError ${code}, but it resolved`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  expect((err as AuthError).code).toBe(code);
  return err as AuthError;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'auth-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ES256 via JWKS file: token checks', () => {
  let key: Pair;
  let verifier: TokenVerifier;
  const verifierWith = (extra: Partial<Parameters<typeof createTokenVerifier>[0]> = {}) =>
    createTokenVerifier({ issuer: ISS, audience: AUD, keySource: { kind: 'jwksFile', path: join(dir, 'es.jwks.json') }, ...extra });

  beforeAll(async () => {
    key = await newPair('ES256', 'es-1');
    await writeFile(join(dir, 'es.jwks.json'), JSON.stringify(await jwksOf(key)));
    verifier = verifierWith();
  });

  it.each([
    ['staff', staff],
    ['customer', customer],
    ['api client', apiClient],
  ])('a valid %s token round-trips to the same principal', async (_label, principal) => {
    const token = await mintToken(key, principal, { issuer: ISS, audience: AUD });
    await expect(verifier.verify(token)).resolves.toEqual(principal);
  });

  it('rejects alg:none (unsigned token crafted by hand)', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const body = base64url.encode(
      JSON.stringify({ ...staffClaims, sub: (staff as { staffId: string }).staffId, iss: ISS, aud: AUD, exp: now() + 600 }),
    );
    await expectAuthError(verifier.verify(`${header}.${body}.`), 'TOKEN_INVALID');
    // Also with an (ignored) signature part, and with 'none' allowed by a misconfiguration attempt.
    await expectAuthError(verifier.verify(`${header}.${body}.AAAA`), 'TOKEN_INVALID');
    expect(() => verifierWith({ algorithms: ['ES256', 'none'] })).toThrow(/none/);
  });

  it('rejects a token signed by a different key with the same kid', async () => {
    const other = await newPair('ES256', 'es-1');
    await expectAuthError(verifier.verify(await mintToken(other, staff, { issuer: ISS, audience: AUD })), 'TOKEN_INVALID');
  });

  it('rejects a token signed by a different key with an unknown kid', async () => {
    const other = await newPair('ES256', 'es-unknown');
    await expectAuthError(verifier.verify(await mintToken(other, staff, { issuer: ISS, audience: AUD })), 'TOKEN_INVALID');
  });

  it('rejects an expired token beyond the clock tolerance with TOKEN_EXPIRED', async () => {
    const token = await mintToken(key, staff, { issuer: ISS, audience: AUD, expiresIn: '-60s' });
    await expectAuthError(verifier.verify(token), 'TOKEN_EXPIRED');
  });

  it('accepts a token expired within the clock tolerance (default 5s)', async () => {
    const token = await signRaw(key, staffClaims, { exp: now() - 2 });
    await expect(verifier.verify(token)).resolves.toMatchObject({ kind: 'STAFF' });
    const strict = verifierWith({ clockToleranceSeconds: 0 });
    await expectAuthError(strict.verify(token), 'TOKEN_EXPIRED');
  });


  it('a token verified once is answered again from memory, yet still expires on time and stays its own', async () => {
    const strict = verifierWith({ clockToleranceSeconds: 0 });
    const token = await signRaw(key, staffClaims, { exp: now() + 1 });
    const first = await strict.verify(token);
    const again = await strict.verify(token);
    expect(again).toEqual(first);
    expect(again).not.toBe(first); // a fresh principal per request: nothing one request does leaks into the next
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    await expectAuthError(strict.verify(token), 'TOKEN_EXPIRED');
  });
  it('rejects a token without exp', async () => {
    await expectAuthError(verifier.verify(await signRaw(key, staffClaims, { exp: null })), 'TOKEN_INVALID');
  });

  it('rejects a token without sub / iss / aud', async () => {
    await expectAuthError(verifier.verify(await signRaw(key, staffClaims, { sub: null })), 'TOKEN_INVALID');
    await expectAuthError(verifier.verify(await signRaw(key, staffClaims, { iss: null })), 'TOKEN_INVALID');
    await expectAuthError(verifier.verify(await signRaw(key, staffClaims, { aud: null })), 'TOKEN_INVALID');
  });

  it('rejects a wrong issuer', async () => {
    const token = await mintToken(key, staff, { issuer: 'urn:someone-else', audience: AUD });
    await expectAuthError(verifier.verify(token), 'TOKEN_INVALID');
  });

  it('rejects a wrong audience', async () => {
    const token = await mintToken(key, staff, { issuer: ISS, audience: 'urn:other-api' });
    await expectAuthError(verifier.verify(token), 'TOKEN_INVALID');
  });

  it('rejects a token that is not yet valid (nbf in the future)', async () => {
    const token = await signRaw(key, { ...staffClaims, nbf: now() + 600 });
    await expectAuthError(verifier.verify(token), 'TOKEN_INVALID');
  });

  it('rejects malformed claims with INVALID_CLAIMS (bad role, non-uuid org, bad stores, unknown kind)', async () => {
    for (const claims of [
      { ...staffClaims, role: 'SUPERUSER' },
      { ...staffClaims, org: 'acme' },
      { ...staffClaims, stores: 'all' },
      { ...staffClaims, stores: [STORE_A, 'not-a-uuid'] },
      { ...staffClaims, kind: 'admin' },
      { org: ORG, kind: 'customer', role: 'OWNER' },
    ]) {
      await expectAuthError(verifier.verify(await signRaw(key, claims)), 'INVALID_CLAIMS');
    }
    await expectAuthError(verifier.verify(await signRaw(key, staffClaims, { sub: 'staff-1' })), 'INVALID_CLAIMS');
  });

  it('rejects garbage and oversized strings', async () => {
    await expectAuthError(verifier.verify('not-a-jwt'), 'TOKEN_INVALID');
    await expectAuthError(verifier.verify('a.b.c'), 'TOKEN_INVALID');
    await expectAuthError(verifier.verify('x'.repeat(20_000)), 'TOKEN_INVALID');
  });

  it('rejects a missing token with TOKEN_MISSING', async () => {
    await expectAuthError(verifier.verify(undefined), 'TOKEN_MISSING');
    await expectAuthError(verifier.verify(''), 'TOKEN_MISSING');
    await expectAuthError(verifier.verify(parseBearer(undefined)), 'TOKEN_MISSING');
  });

  it('rejects an algorithm outside the allow-list even when the key would verify', async () => {
    const ed = await newPair('EdDSA', 'ed-1');
    await writeFile(join(dir, 'ed.jwks.json'), JSON.stringify(await jwksOf(ed)));
    const token = await mintToken(ed, customer, { issuer: ISS, audience: AUD });
    const esOnly = createTokenVerifier({
      issuer: ISS,
      audience: AUD,
      algorithms: ['ES256'],
      keySource: { kind: 'jwksFile', path: join(dir, 'ed.jwks.json') },
    });
    await expectAuthError(esOnly.verify(token), 'TOKEN_INVALID');
    const defaults = createTokenVerifier({ issuer: ISS, audience: AUD, keySource: { kind: 'jwksFile', path: join(dir, 'ed.jwks.json') } });
    await expect(defaults.verify(token)).resolves.toEqual(customer);
  });

  it('AuthError messages are fixed and carry no token or key material', async () => {
    const other = await newPair('ES256', 'es-1');
    const token = await mintToken(other, staff, { issuer: ISS, audience: AUD });
    const err = await expectAuthError(verifier.verify(token), 'TOKEN_INVALID');
    expect(err.message).toBe('Authentication token is invalid');
    expect(err.reason).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    expect(JSON.stringify({ message: err.message, reason: err.reason })).not.toContain(token.split('.')[2]);
  });
});

describe('RS256 via SPKI PEM', () => {
  let rsa: Pair;
  let pem: string;
  let verifier: TokenVerifier;

  beforeAll(async () => {
    rsa = await newPair('RS256', 'rsa-1');
    pem = await exportSPKI(rsa.publicKey);
    verifier = createTokenVerifier({
      issuer: ISS,
      audience: AUD,
      algorithms: ['RS256'],
      keySource: { kind: 'publicKey', pem, alg: 'RS256' },
    });
  });

  it('verifies an RS256 token', async () => {
    const token = await mintToken(rsa, apiClient, { issuer: ISS, audience: AUD });
    await expect(verifier.verify(token)).resolves.toEqual(apiClient);
  });

  it('rejects HS256 signed with the public key PEM as HMAC secret (alg confusion)', async () => {
    const secret = new TextEncoder().encode(pem);
    const token = await signRaw({ privateKey: secret, alg: 'HS256' }, staffClaims);
    const err = await expectAuthError(verifier.verify(token), 'TOKEN_INVALID');
    expect(err.reason).toBe('ERR_JOSE_ALG_NOT_ALLOWED');
    // Even a verifier whose allow-list (wrongly) includes HS256 does not accept it: the resolver only
    // hands out the RSA key for the configured alg.
    const lax = createTokenVerifier({
      issuer: ISS,
      audience: AUD,
      algorithms: ['RS256', 'HS256'],
      keySource: { kind: 'publicKey', pem, alg: 'RS256' },
    });
    await expectAuthError(lax.verify(token), 'TOKEN_INVALID');
  });

  it('rejects an RS256 token from a different key', async () => {
    const other = await newPair('RS256', 'rsa-1');
    await expectAuthError(verifier.verify(await mintToken(other, apiClient, { issuer: ISS, audience: AUD })), 'TOKEN_INVALID');
  });
});

describe('JWKS file rotation', () => {
  it('accepts a token with a new kid after the file is rewritten, without a new verifier', async () => {
    const path = join(dir, 'rotate.jwks.json');
    const k1 = await newPair('ES256', 'k1');
    const k2 = await newPair('ES256', 'k2');
    await writeFile(path, JSON.stringify(await jwksOf(k1)));
    const verifier = createTokenVerifier({
      issuer: ISS,
      audience: AUD,
      keySource: { kind: 'jwksFile', path, reloadCooldownMs: 0 },
    });
    const t1 = await mintToken(k1, staff, { issuer: ISS, audience: AUD });
    const t2 = await mintToken(k2, staff, { issuer: ISS, audience: AUD });
    await expect(verifier.verify(t1)).resolves.toEqual(staff);
    await expectAuthError(verifier.verify(t2), 'TOKEN_INVALID');

    await writeFile(path, JSON.stringify(await jwksOf(k1, k2)));
    await expect(verifier.verify(t2)).resolves.toEqual(staff);
    await expect(verifier.verify(t1)).resolves.toEqual(staff);

    // k1 retired: the file no longer contains it. A kid that is still known is not re-read, so
    // retirement takes effect on the next reload (triggered by any unknown kid, or restart).
    await writeFile(path, JSON.stringify(await jwksOf(k2)));
    const k3 = await newPair('ES256', 'k3');
    await expectAuthError(verifier.verify(await mintToken(k3, staff, { issuer: ISS, audience: AUD })), 'TOKEN_INVALID');
    await expectAuthError(verifier.verify(t1), 'TOKEN_INVALID');
    await expect(verifier.verify(t2)).resolves.toEqual(staff);
  });

  it('rate-limits re-reads on unknown kids and keeps the old set when the new file is broken', async () => {
    const path = join(dir, 'ratelimit.jwks.json');
    const k1 = await newPair('ES256', 'r1');
    const k2 = await newPair('ES256', 'r2');
    await writeFile(path, JSON.stringify(await jwksOf(k1)));
    const verifier = createTokenVerifier({
      issuer: ISS,
      audience: AUD,
      keySource: { kind: 'jwksFile', path, reloadCooldownMs: 300 },
    });
    const t1 = await mintToken(k1, customer, { issuer: ISS, audience: AUD });
    const t2 = await mintToken(k2, customer, { issuer: ISS, audience: AUD });
    await expect(verifier.verify(t1)).resolves.toEqual(customer);

    await writeFile(path, JSON.stringify(await jwksOf(k1, k2)));
    await expectAuthError(verifier.verify(t2), 'TOKEN_INVALID'); // within cooldown: not re-read yet
    await new Promise((r) => setTimeout(r, 350));
    await expect(verifier.verify(t2)).resolves.toEqual(customer);

    await writeFile(path, '{"keys": [ broken');
    await new Promise((r) => setTimeout(r, 350));
    const k3 = await newPair('ES256', 'r3');
    await expectAuthError(verifier.verify(await mintToken(k3, customer, { issuer: ISS, audience: AUD })), 'TOKEN_INVALID');
    await expect(verifier.verify(t1)).resolves.toEqual(customer); // previous set still in use
  });
});

describe('remote JWKS URL', () => {
  let server: Server;
  let current: JSONWebKeySet = { keys: [] };
  let hits = 0;
  let url: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      hits++;
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify(current));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('verifies against the served set, caches it, and picks up a rotated key', async () => {
    const k1 = await newPair('ES256', 'remote-1');
    const k2 = await newPair('EdDSA', 'remote-2');
    current = await jwksOf(k1);
    const verifier = createTokenVerifier({
      issuer: ISS,
      audience: AUD,
      keySource: { kind: 'jwksUrl', url, cooldownMs: 0 },
    });
    const t1 = await mintToken(k1, staff, { issuer: ISS, audience: AUD });
    const t2 = await mintToken(k2, apiClient, { issuer: ISS, audience: AUD });

    await expect(verifier.verify(t1)).resolves.toEqual(staff);
    await expect(verifier.verify(t1)).resolves.toEqual(staff);
    expect(hits).toBe(1); // cached

    await expectAuthError(verifier.verify(t2), 'TOKEN_INVALID'); // unknown kid → refetch, still unknown
    expect(hits).toBe(2);

    current = await jwksOf(k1, k2); // rotation on the server
    await expect(verifier.verify(t2)).resolves.toEqual(apiClient);
    expect(hits).toBe(3);
  });

  it('refuses plain http for non-loopback hosts', () => {
    expect(() =>
      createTokenVerifier({ issuer: ISS, audience: AUD, keySource: { kind: 'jwksUrl', url: 'http://auth.example.com/jwks.json' } }),
    ).toThrow(/https/);
  });

  it('maps an unreachable JWKS endpoint to TOKEN_INVALID', async () => {
    const k1 = await newPair('ES256', 'remote-x');
    const verifier = createTokenVerifier({
      issuer: ISS,
      audience: AUD,
      keySource: { kind: 'jwksUrl', url: url.replace('/.well-known/jwks.json', '/missing') },
    });
    await expectAuthError(verifier.verify(await mintToken(k1, staff, { issuer: ISS, audience: AUD })), 'TOKEN_INVALID');
  });
});

describe('local signing key', () => {
  it('is created once (private JWK 0600 + public jwks.json) and stable across calls', async () => {
    const keysDir = join(dir, 'keys');
    const a = await ensureLocalSigningKey(keysDir);
    const b = await ensureLocalSigningKey(keysDir);
    const c = await readSigningKey(keysDir);
    expect(a.alg).toBe('ES256');
    expect(b.kid).toBe(a.kid);
    expect(c.kid).toBe(a.kid);
    expect(a.jwksPath).toBe(join(keysDir, JWKS_FILE));

    const mode = (await stat(join(keysDir, PRIVATE_KEY_FILE))).mode & 0o777;
    expect(mode).toBe(0o600);
    expect((await stat(keysDir)).mode & 0o077).toBe(0);

    const jwks = JSON.parse(await readFile(a.jwksPath, 'utf8')) as JSONWebKeySet;
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]!.kid).toBe(a.kid);
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect(await calculateJwkThumbprint(jwks.keys[0]!)).toBe(a.kid);

    // A token signed with the key from one call verifies with the JWKS, and so does one from the later load.
    const verifier = createTokenVerifier({ issuer: ISS, audience: AUD, keySource: { kind: 'jwksFile', path: a.jwksPath } });
    await expect(verifier.verify(await mintToken(a, staff, { issuer: ISS, audience: AUD }))).resolves.toEqual(staff);
    await expect(verifier.verify(await mintToken(c, customer, { issuer: ISS, audience: AUD }))).resolves.toEqual(customer);
  });

  it('concurrent first calls agree on one key', async () => {
    const keysDir = join(dir, 'keys-race');
    const keys = await Promise.all(Array.from({ length: 5 }, () => ensureLocalSigningKey(keysDir)));
    expect(new Set(keys.map((k) => k.kid)).size).toBe(1);
  });

  it('readSigningKey explains how to create a missing key', async () => {
    await expect(readSigningKey(join(dir, 'no-keys'))).rejects.toThrow(/npm start/);
  });
});

describe('principalFromClaims', () => {
  it('normalizes uuid case and drops duplicate list entries', () => {
    expect(
      principalFromClaims({ sub: STORE_A.toUpperCase(), org: ORG, kind: 'staff', role: 'OWNER', stores: [STORE_B, STORE_B.toUpperCase()] }),
    ).toEqual({ kind: 'STAFF', orgId: ORG, staffId: STORE_A, role: 'OWNER', storeIds: [STORE_B] });
  });

  it.each([
    ['missing stores on staff', { sub: STORE_A, org: ORG, kind: 'staff', role: 'OWNER' }],
    ['scopes on staff', { sub: STORE_A, org: ORG, kind: 'staff', role: 'OWNER', stores: [], scopes: ['x'] }],
    ['stores on customer', { sub: STORE_A, org: ORG, kind: 'customer', stores: [] }],
    ['missing scopes on api_client', { sub: STORE_A, org: ORG, kind: 'api_client', stores: [] }],
    ['non-string scope', { sub: STORE_A, org: ORG, kind: 'api_client', stores: [], scopes: [1] }],
    ['scope with spaces', { sub: STORE_A, org: ORG, kind: 'api_client', stores: [], scopes: ['a b'] }],
    ['role on api_client', { sub: STORE_A, org: ORG, kind: 'api_client', stores: [], scopes: [], role: 'OWNER' }],
    ['uppercase kind', { sub: STORE_A, org: ORG, kind: 'STAFF', role: 'OWNER', stores: [] }],
    ['not an object', 'staff'],
    ['null', null],
  ])('rejects %s', (_label, claims) => {
    expect(() => principalFromClaims(claims)).toThrow(expect.objectContaining({ code: 'INVALID_CLAIMS' }));
  });

  it('mintToken refuses to sign a malformed principal', async () => {
    const k = await newPair('ES256', 'm');
    await expect(
      mintToken(k, { ...staff, role: 'ROOT' } as unknown as Principal, { issuer: ISS, audience: AUD }),
    ).rejects.toMatchObject({ code: 'INVALID_CLAIMS' });
  });
});

describe('parseBearer', () => {
  it('extracts the token', () => {
    expect(parseBearer('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(parseBearer('bearer   abc.def.ghi ')).toBe('abc.def.ghi');
  });
  it('treats absent/empty as missing', () => {
    expect(parseBearer(undefined)).toBeUndefined();
    expect(parseBearer(null)).toBeUndefined();
    expect(parseBearer('  ')).toBeUndefined();
  });
  it('rejects other schemes and shapes', () => {
    for (const h of ['Basic dXNlcjpwYXNz', 'abc.def.ghi', 'Bearer', 'Bearer a b', 42]) {
      expect(() => parseBearer(h)).toThrow(expect.objectContaining({ code: 'TOKEN_INVALID' }));
    }
  });
});

describe('authConfigFromEnv', () => {
  const localDefault: KeySource = { kind: 'jwksFile', path: '/data/keys/jwks.json' };

  it('uses the embedded default key source and default issuer/audience when nothing is set', () => {
    expect(authConfigFromEnv({}, { keySource: localDefault })).toEqual({
      issuer: 'urn:beauty-crm:local',
      audience: 'urn:beauty-crm:api',
      algorithms: ['ES256', 'RS256', 'EdDSA'],
      keySource: localDefault,
      clockToleranceSeconds: 5,
      keySourceFromEnv: false,
    });
  });

  it('reads issuer, audience, algorithms and a JWKS URL', () => {
    const cfg = authConfigFromEnv(
      { JWT_ISSUER: 'https://idp.example.com/', JWT_AUDIENCE: 'crm', JWT_ALGORITHMS: 'RS256, PS256', JWT_JWKS_URL: 'https://idp.example.com/jwks' },
      { keySource: localDefault },
    );
    expect(cfg).toMatchObject({
      issuer: 'https://idp.example.com/',
      audience: 'crm',
      algorithms: ['RS256', 'PS256'],
      keySource: { kind: 'jwksUrl', url: 'https://idp.example.com/jwks' },
      keySourceFromEnv: true,
    });
    expect(authConfigFromEnv({ JWT_JWKS_FILE: '/etc/jwks.json' }).keySource).toEqual({ kind: 'jwksFile', path: '/etc/jwks.json' });
  });

  it('reads a PEM (with \\n escapes), infers its alg and narrows the allow-list to it', async () => {
    const rsa = await newPair('RS256', 'x');
    const pem = await exportSPKI(rsa.publicKey);
    const cfg = authConfigFromEnv({ JWT_PUBLIC_KEY: pem.replace(/\n/g, '\\n') });
    expect(cfg.keySource).toEqual({ kind: 'publicKey', pem, alg: 'RS256' });
    expect(cfg.algorithms).toEqual(['RS256']);
    const ec = await newPair('ES256', 'y');
    expect(authConfigFromEnv({ JWT_PUBLIC_KEY: await exportSPKI(ec.publicKey) }).keySource).toMatchObject({ alg: 'ES256' });
    // And the result drives a working verifier.
    const verifier = createTokenVerifier(cfg);
    await expect(verifier.verify(await mintToken(rsa, customer, { issuer: cfg.issuer, audience: cfg.audience }))).resolves.toEqual(customer);
  });

  it('rejects bad configurations', async () => {
    const pem = await exportSPKI((await newPair('RS256', 'x')).publicKey);
    expect(() => authConfigFromEnv({ JWT_JWKS_FILE: '/a', JWT_JWKS_URL: 'https://b' })).toThrow(/only one/);
    expect(() => authConfigFromEnv({})).toThrow(/No JWT key source/);
    expect(() => authConfigFromEnv({ JWT_ALGORITHMS: 'none' }, { keySource: localDefault })).toThrow(/none/);
    expect(() => authConfigFromEnv({ JWT_ALGORITHMS: 'XS999' }, { keySource: localDefault })).toThrow(/Unsupported/);
    expect(() => authConfigFromEnv({ JWT_PUBLIC_KEY_ALG: 'RS256' }, { keySource: localDefault })).toThrow(/JWT_PUBLIC_KEY/);
    expect(() => authConfigFromEnv({ JWT_PUBLIC_KEY: pem, JWT_ALGORITHMS: 'ES256' })).toThrow(/does not include/);
    expect(() => authConfigFromEnv({ JWT_PUBLIC_KEY: 'hello' })).toThrow(/SPKI PEM/);
  });
});

describe('mint CLI', () => {
  let dataDir: string;
  let verifier: TokenVerifier;
  const clinicStaff: Principal = {
    kind: 'STAFF',
    orgId: '7d6c5b4a-3928-4716-a5f4-e3d2c1b0a998',
    staffId: '1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b',
    role: 'CONSULTANT',
    storeIds: [],
  };

  beforeAll(async () => {
    dataDir = join(dir, 'cli-data');
    const key = await ensureLocalSigningKey(join(dataDir, 'keys'));
    await writeFile(
      join(dataDir, 'demo-principals.json'),
      JSON.stringify({ OWNER: { ...staff, role: 'OWNER' }, STORE_MANAGER: staff, CUSTOMER: customer, CLINIC_STAFF: clinicStaff, POS_CLIENT: apiClient }),
    );
    verifier = createTokenVerifier({ issuer: 'urn:beauty-crm:local', audience: 'urn:beauty-crm:api', keySource: { kind: 'jwksFile', path: key.jwksPath } });
  });

  it.each([
    ['STORE_MANAGER', staff],
    ['customer', customer],
    ['api_client', apiClient],
    ['clinic_staff', clinicStaff],
    ['CONSULTANT', clinicStaff],
  ])('mints a verifiable token for %s', async (selector, expected) => {
    const token = await runMintCli([selector], { dataDir, env: {} });
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    await expect(verifier.verify(token)).resolves.toEqual(expected);
  });

  it('honours --expires and --principal', async () => {
    const token = await runMintCli(['--principal', JSON.stringify(customer), '--expires=-1m'], { dataDir, env: {} });
    await expectAuthError(verifier.verify(token), 'TOKEN_EXPIRED');
  });

  it('gives clear errors', async () => {
    await expect(runMintCli(['OWNER'], { dataDir: join(dir, 'empty'), env: {} })).rejects.toThrow(/npm start/);
    await expect(runMintCli(['NOBODY'], { dataDir, env: {} })).rejects.toThrow(/Available: OWNER/);
    await expect(runMintCli(['OWNER', '--expires', 'soon'], { dataDir, env: {} })).rejects.toThrow(/--expires/);
  });
});
