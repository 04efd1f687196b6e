/**
 * Where token verification keys come from, plus the local ES256 signing key used by the embedded
 * (dev/demo) default and by the `npm run token` CLI.
 */
import { randomUUID } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  exportJWK,
  generateKeyPair,
  importJWK,
  importSPKI,
  type CompactJWSHeaderParameters,
  type CryptoKey,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWK,
} from 'jose';

export type KeySource =
  | { kind: 'publicKey'; pem: string; alg: string }
  | {
      kind: 'jwksFile';
      path: string;
      /** Minimum time between re-reads of the file triggered by an unknown `kid`. Default 5000. */
      reloadCooldownMs?: number;
    }
  | {
      kind: 'jwksUrl';
      url: string;
      /** jose cooldownDuration: minimum time between refetches triggered by an unknown `kid`. Default 30000. */
      cooldownMs?: number;
      /** jose cacheMaxAge: refetch when the cached set is older than this. Default 600000. */
      cacheMaxAgeMs?: number;
      /** jose timeoutDuration for the HTTP request. Default 5000. */
      timeoutMs?: number;
    };

/** Usable as the key argument of jose `jwtVerify`. */
export type KeyResolver = (protectedHeader: CompactJWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

export const DEFAULT_JWKS_FILE_RELOAD_COOLDOWN_MS = 5000;

export function createKeyResolver(source: KeySource): KeyResolver {
  switch (source.kind) {
    case 'publicKey':
      return publicKeyResolver(source.pem, source.alg);
    case 'jwksFile':
      return jwksFileResolver(source.path, source.reloadCooldownMs ?? DEFAULT_JWKS_FILE_RELOAD_COOLDOWN_MS);
    case 'jwksUrl':
      return jwksUrlResolver(source);
    default:
      throw new Error(`Unknown key source kind: ${String((source as { kind?: unknown }).kind)}`);
  }
}

function publicKeyResolver(pem: string, alg: string): KeyResolver {
  // Imported once; the rejection (bad PEM / alg mismatch) is surfaced on every verify.
  const key = importSPKI(pem, alg);
  key.catch(() => {});
  return async (protectedHeader) => {
    if (protectedHeader.alg !== alg) {
      throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value does not match the configured key');
    }
    return key;
  };
}

function jwksFileResolver(path: string, cooldownMs: number): KeyResolver {
  if (!Number.isFinite(cooldownMs) || cooldownMs < 0) throw new TypeError('reloadCooldownMs must be a non-negative number');

  let current: ((h: CompactJWSHeaderParameters, t: FlattenedJWSInput) => Promise<CryptoKey>) | undefined;
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let lastLoadError: unknown;
  let pending: Promise<void> | undefined;

  const load = (): Promise<void> => {
    pending ??= (async () => {
      lastAttemptAt = Date.now();
      try {
        const text = await readFile(path, 'utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch (cause) {
          throw new errors.JWKSInvalid('JWKS file is not valid JSON', { cause });
        }
        // createLocalJWKSet validates the shape (throws JWKSInvalid).
        current = createLocalJWKSet(json as JSONWebKeySet);
        lastLoadError = undefined;
      } catch (err) {
        lastLoadError = err;
        throw err;
      }
    })().finally(() => {
      pending = undefined;
    });
    return pending;
  };

  const cooledDown = () => Date.now() - lastAttemptAt >= cooldownMs;

  return async (protectedHeader, token) => {
    if (!current) {
      if (pending) await pending;
      else if (cooledDown()) await load();
      else throw lastLoadError ?? new errors.JWKSNoMatchingKey();
      if (!current) throw lastLoadError ?? new errors.JWKSNoMatchingKey();
    }
    try {
      return await current(protectedHeader, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // Unknown kid: maybe the keys were rotated. Re-read, rate-limited so a flood of tokens with
      // random kids cannot turn into a flood of file reads.
      if (pending) await pending.catch(() => {});
      else if (cooledDown()) {
        try {
          await load();
        } catch {
          // A half-written/broken file during rotation: keep using the previous set.
          throw err;
        }
      } else throw err;
      return current(protectedHeader, token);
    }
  };
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function jwksUrlResolver(source: Extract<KeySource, { kind: 'jwksUrl' }>): KeyResolver {
  let url: URL;
  try {
    url = new URL(source.url);
  } catch {
    throw new Error('JWKS URL is not a valid URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    throw new Error('JWKS URL must use https (plain http is only allowed for localhost/127.0.0.1/[::1])');
  }
  // jose caches the set, refetches after cacheMaxAge, and refetches on an unknown kid (rate-limited
  // by cooldownDuration).
  return createRemoteJWKSet(url, {
    cooldownDuration: source.cooldownMs,
    cacheMaxAge: source.cacheMaxAgeMs,
    timeoutDuration: source.timeoutMs,
  });
}

// ---------------------------------------------------------------------------------------------
// Local signing key (embedded default)
// ---------------------------------------------------------------------------------------------

export const LOCAL_SIGNING_ALG = 'ES256' as const;
export const PRIVATE_KEY_FILE = 'signing-key.private.jwk.json';
export const JWKS_FILE = 'jwks.json';

export type LocalSigningKey = {
  privateKey: CryptoKey;
  kid: string;
  alg: typeof LOCAL_SIGNING_ALG;
  /** Public JWKS file to verify tokens signed by this key (a `jwksFile` key source). */
  jwksPath: string;
};

type EcPrivateJwk = JWK & { kty: 'EC'; crv: 'P-256'; x: string; y: string; d: string };

function isEcPrivateJwk(value: unknown): value is EcPrivateJwk {
  const j = value as Record<string, unknown> | null;
  return (
    typeof j === 'object' &&
    j !== null &&
    j.kty === 'EC' &&
    j.crv === 'P-256' &&
    typeof j.x === 'string' &&
    typeof j.y === 'string' &&
    typeof j.d === 'string'
  );
}

async function readPrivateJwk(path: string): Promise<EcPrivateJwk | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`Local signing key file ${path} is not valid JSON`);
  }
  if (!isEcPrivateJwk(json)) throw new Error(`Local signing key file ${path} is not an ES256 (P-256) private JWK`);
  return json;
}

async function toSigningKey(jwk: EcPrivateJwk, jwksPath: string): Promise<LocalSigningKey> {
  const kid = typeof jwk.kid === 'string' && jwk.kid ? jwk.kid : await calculateJwkThumbprint(jwk);
  const privateKey = await importJWK({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, d: jwk.d }, LOCAL_SIGNING_ALG);
  return { privateKey: privateKey as CryptoKey, kid, alg: LOCAL_SIGNING_ALG, jwksPath };
}

function publicJwks(jwk: EcPrivateJwk, kid: string): JSONWebKeySet {
  return { keys: [{ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid, alg: LOCAL_SIGNING_ALG, use: 'sig' }] };
}

async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Returns the local ES256 signing key, creating it on first call: `<keysDir>/signing-key.private.jwk.json`
 * (mode 0600, directory 0700) and the public `<keysDir>/jwks.json`. Later calls (and other processes)
 * load the same key; creation is race-safe (exclusive hard link of a fully written temp file).
 * The kid is the RFC 7638 thumbprint of the public key.
 */
export async function ensureLocalSigningKey(keysDir: string): Promise<LocalSigningKey> {
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const privatePath = join(keysDir, PRIVATE_KEY_FILE);
  const jwksPath = join(keysDir, JWKS_FILE);

  let jwk = await readPrivateJwk(privatePath);
  if (!jwk) {
    const { privateKey } = await generateKeyPair(LOCAL_SIGNING_ALG, { extractable: true });
    const exported = await exportJWK(privateKey);
    if (!isEcPrivateJwk(exported)) throw new Error('Unexpected key export format');
    const created: EcPrivateJwk = {
      kty: 'EC',
      crv: 'P-256',
      x: exported.x,
      y: exported.y,
      d: exported.d,
      kid: await calculateJwkThumbprint(exported),
      alg: LOCAL_SIGNING_ALG,
      use: 'sig',
    };
    const tmp = `${privatePath}.${process.pid}.${randomUUID()}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(created, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
      try {
        await link(tmp, privatePath); // fails with EEXIST if another process won the race
        jwk = created;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          jwk = await readPrivateJwk(privatePath);
        } else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EXDEV' || code === 'ENOSYS') {
          // File system without hard links: exclusive create directly.
          try {
            await writeFile(privatePath, JSON.stringify(created, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
            jwk = created;
          } catch (err2) {
            if ((err2 as NodeJS.ErrnoException).code !== 'EEXIST') throw err2;
            jwk = await readPrivateJwk(privatePath);
          }
        } else {
          throw err;
        }
      }
    } finally {
      await rm(tmp, { force: true });
    }
    if (!jwk) throw new Error(`Local signing key file ${privatePath} could not be read`);
  } else if (process.platform !== 'win32') {
    const { mode } = await stat(privatePath);
    if (mode & 0o077) await chmod(privatePath, 0o600);
  }

  const key = await toSigningKey(jwk, jwksPath);

  // (Re)write the public JWKS when missing or stale (e.g. the private key was replaced by hand).
  const wanted = JSON.stringify(publicJwks(jwk, key.kid), null, 2) + '\n';
  let existing: string | undefined;
  try {
    existing = await readFile(jwksPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (existing !== wanted) await writeFileAtomic(jwksPath, wanted, 0o644);

  return key;
}

/** Loads the local signing key without creating it (for the mint CLI). */
export async function readSigningKey(keysDir: string): Promise<LocalSigningKey> {
  const privatePath = join(keysDir, PRIVATE_KEY_FILE);
  const jwk = await readPrivateJwk(privatePath);
  if (!jwk) {
    throw new Error(`No local signing key at ${privatePath}; start the server once with npm start to create it`);
  }
  return toSigningKey(jwk, join(keysDir, JWKS_FILE));
}
