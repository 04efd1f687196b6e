/**
 * Token verification: JWT (signature + registered claims) → Principal, and the env configuration.
 */
import { createPublicKey } from 'node:crypto';
import { errors, jwtVerify, type CompactJWSHeaderParameters } from 'jose';
import { createKeyResolver, type KeySource } from './keys.ts';
import { AuthError, principalFromClaims, type Principal } from './principal.ts';

export const DEFAULT_ISSUER = 'urn:beauty-crm:local';
export const DEFAULT_AUDIENCE = 'urn:beauty-crm:api';
export const DEFAULT_ALGORITHMS: readonly string[] = ['ES256', 'RS256', 'EdDSA'];
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;

/** JWS algorithms that may appear in an allow-list. 'none' is never accepted. */
export const SUPPORTED_ALGORITHMS: readonly string[] = [
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
  'Ed25519',
  'HS256',
  'HS384',
  'HS512',
];

/** Tokens longer than this are rejected before parsing. */
const MAX_TOKEN_LENGTH = 16 * 1024;

/**
 * A token that verified is not verified again for this long (never past its `exp`) while the key set still
 * gives the same key for it: an ES256 verification cost about 7% of a storefront read's CPU, and integrators
 * send the same token for an hour. A key withdrawn from the set stops its tokens when the set is reloaded, as before.
 */
const VERIFIED_TOKEN_TTL_MS = 60_000;
const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

export type TokenVerifierOptions = {
  issuer: string;
  audience: string;
  /** Allow-list of JWS algorithms. Default ['ES256','RS256','EdDSA']. */
  algorithms?: readonly string[];
  keySource: KeySource;
  clockToleranceSeconds?: number;
};

export type TokenVerifier = {
  /** Verifies a compact JWT and returns its Principal; rejects with AuthError. */
  verify(token: string | undefined | null): Promise<Principal>;
};

export function validateAlgorithms(algorithms: readonly string[]): string[] {
  if (!Array.isArray(algorithms) || algorithms.length === 0) throw new Error('JWT algorithm allow-list must not be empty');
  const out: string[] = [];
  for (const alg of algorithms) {
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none') throw new Error('JWT algorithm "none" is never allowed');
    if (!SUPPORTED_ALGORITHMS.includes(alg)) {
      throw new Error(`Unsupported JWT algorithm "${alg}" (supported: ${SUPPORTED_ALGORITHMS.join(', ')})`);
    }
    if (!out.includes(alg)) out.push(alg);
  }
  return out;
}

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const { issuer, audience, keySource } = options;
  if (!issuer) throw new Error('JWT issuer must be configured');
  if (!audience) throw new Error('JWT audience must be configured');
  const algorithms = validateAlgorithms(options.algorithms ?? DEFAULT_ALGORITHMS);
  const clockTolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0) throw new Error('clockToleranceSeconds must be >= 0');
  const resolver = createKeyResolver(keySource);
  // token → its verified claims, the key that verified them and until when; in least-recently-used order.
  const verified = new Map<string, { payload: unknown; header: CompactJWSHeaderParameters; key: CryptoKey; reuseUntilMs: number }>();
  const sameKeyStill = (entry: { header: CompactJWSHeaderParameters; key: CryptoKey }) =>
    resolver(entry.header, { payload: '', signature: '' }).then((key) => key === entry.key, () => false);

  return {
    async verify(token) {
      if (token === undefined || token === null || (typeof token === 'string' && token.trim() === '')) {
        throw new AuthError('TOKEN_MISSING');
      }
      if (typeof token !== 'string') throw new AuthError('TOKEN_INVALID', 'NOT_A_STRING');
      if (token.length > MAX_TOKEN_LENGTH) throw new AuthError('TOKEN_INVALID', 'TOO_LONG');

      const cached = verified.get(token);
      verified.delete(token);
      if (cached && Date.now() < cached.reuseUntilMs && (await sameKeyStill(cached))) {
        verified.set(token, cached);
        return principalFromClaims(cached.payload);
      }

      let result: Awaited<ReturnType<typeof jwtVerify<{ exp?: number }>>> & { key: CryptoKey };
      try {
        result = await jwtVerify(token, resolver, {
          issuer,
          audience,
          algorithms,
          requiredClaims: ['exp', 'iss', 'aud', 'sub'],
          clockTolerance,
        });
      } catch (err) {
        throw toAuthError(err);
      }
      const { payload, protectedHeader, key } = result;
      const principal = principalFromClaims(payload);
      if (verified.size >= VERIFIED_TOKEN_CACHE_SIZE) verified.delete(verified.keys().next().value!);
      const reuseUntilMs = Math.min(Date.now() + VERIFIED_TOKEN_TTL_MS, (payload.exp! + clockTolerance) * 1000);
      verified.set(token, { payload, header: protectedHeader, key, reuseUntilMs });
      return principal;
    },
  };
}

function toAuthError(err: unknown): AuthError {
  if (err instanceof AuthError) return err;
  if (err instanceof errors.JWTExpired) return new AuthError('TOKEN_EXPIRED', err.code, { cause: err });
  if (err instanceof errors.JOSEError) return new AuthError('TOKEN_INVALID', err.code, { cause: err });
  // Non-jose failures (e.g. the JWKS file or URL is unreachable). The caller still gets a 401-style
  // error; `cause` keeps the detail for server logs.
  return new AuthError('TOKEN_INVALID', 'VERIFICATION_ERROR', { cause: err });
}

/**
 * Extracts the token from an `Authorization` header value (or graphql-ws
 * `connectionParams.authorization`). Returns undefined when absent/empty; throws
 * AuthError('TOKEN_INVALID') when present but not `Bearer <token>`.
 */
export function parseBearer(header: unknown): string | undefined {
  if (header === undefined || header === null) return undefined;
  if (typeof header !== 'string') throw new AuthError('TOKEN_INVALID', 'AUTHORIZATION_NOT_A_STRING');
  const value = header.trim();
  if (value === '') return undefined;
  const match = /^Bearer[ \t]+([^\s]+)$/i.exec(value);
  if (!match) throw new AuthError('TOKEN_INVALID', 'AUTHORIZATION_SCHEME');
  return match[1];
}

// ---------------------------------------------------------------------------------------------
// Configuration from the environment
// ---------------------------------------------------------------------------------------------

export type AuthConfig = {
  issuer: string;
  audience: string;
  algorithms: string[];
  keySource: KeySource;
  clockToleranceSeconds: number;
  /** false when no JWT_PUBLIC_KEY / JWT_JWKS_FILE / JWT_JWKS_URL was set and defaults.keySource is used. */
  keySourceFromEnv: boolean;
};

export type AuthConfigDefaults = {
  /** The embedded default (normally the local JWKS file from ensureLocalSigningKey). */
  keySource?: KeySource;
  issuer?: string;
  audience?: string;
  algorithms?: readonly string[];
  clockToleranceSeconds?: number;
};

type Env = Record<string, string | undefined>;

function envValue(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const trimmed = v.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** Guesses the JWS alg for an SPKI PEM public key (used when JWT_PUBLIC_KEY_ALG is not set). */
export function inferAlgFromPublicKeyPem(pem: string): string {
  let key;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error('JWT_PUBLIC_KEY is not a valid PEM public key');
  }
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256';
    case 'rsa-pss':
      return 'PS256';
    case 'ed25519':
      return 'EdDSA';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return 'ES256';
      if (curve === 'secp384r1') return 'ES384';
      if (curve === 'secp521r1') return 'ES512';
      break;
    }
  }
  throw new Error('Cannot infer the algorithm of JWT_PUBLIC_KEY; set JWT_PUBLIC_KEY_ALG');
}

/**
 * Reads JWT_ISSUER, JWT_AUDIENCE, JWT_ALGORITHMS (comma list) and at most one key source:
 * JWT_PUBLIC_KEY (SPKI PEM; literal "\n" escapes allowed) [+ JWT_PUBLIC_KEY_ALG, inferred from the
 * key when unset], JWT_JWKS_FILE, or JWT_JWKS_URL. With none set, `defaults.keySource` is used (the
 * embedded local JWKS file); without that either, throws. Configuration errors are plain Errors.
 *
 * With JWT_PUBLIC_KEY and no JWT_ALGORITHMS, the allow-list is exactly the key's algorithm.
 */
export function authConfigFromEnv(env: Env = process.env, defaults: AuthConfigDefaults = {}): AuthConfig {
  const issuer = envValue(env, 'JWT_ISSUER') ?? defaults.issuer ?? DEFAULT_ISSUER;
  const audience = envValue(env, 'JWT_AUDIENCE') ?? defaults.audience ?? DEFAULT_AUDIENCE;
  const algorithmsEnv = envValue(env, 'JWT_ALGORITHMS');
  let algorithms = algorithmsEnv
    ? validateAlgorithms(algorithmsEnv.split(',').map((s) => s.trim()).filter(Boolean))
    : validateAlgorithms(defaults.algorithms ?? DEFAULT_ALGORITHMS);

  const pemEnv = envValue(env, 'JWT_PUBLIC_KEY');
  const algEnv = envValue(env, 'JWT_PUBLIC_KEY_ALG');
  const jwksFile = envValue(env, 'JWT_JWKS_FILE');
  const jwksUrl = envValue(env, 'JWT_JWKS_URL');

  const set = [pemEnv && 'JWT_PUBLIC_KEY', jwksFile && 'JWT_JWKS_FILE', jwksUrl && 'JWT_JWKS_URL'].filter(Boolean);
  if (set.length > 1) throw new Error(`Set only one of JWT_PUBLIC_KEY, JWT_JWKS_FILE, JWT_JWKS_URL (got ${set.join(', ')})`);
  if (algEnv && !pemEnv) throw new Error('JWT_PUBLIC_KEY_ALG is set but JWT_PUBLIC_KEY is not');

  let keySource: KeySource;
  let keySourceFromEnv = true;
  if (pemEnv) {
    const pem = pemEnv.replace(/\\n/g, '\n');
    if (!/-----BEGIN PUBLIC KEY-----/.test(pem)) {
      throw new Error('JWT_PUBLIC_KEY must be an SPKI PEM ("-----BEGIN PUBLIC KEY-----")');
    }
    const alg = algEnv ?? inferAlgFromPublicKeyPem(pem);
    validateAlgorithms([alg]);
    if (!algorithmsEnv) algorithms = [alg];
    else if (!algorithms.includes(alg)) throw new Error(`JWT_ALGORITHMS does not include JWT_PUBLIC_KEY_ALG (${alg})`);
    keySource = { kind: 'publicKey', pem, alg };
  } else if (jwksFile) {
    keySource = { kind: 'jwksFile', path: jwksFile };
  } else if (jwksUrl) {
    keySource = { kind: 'jwksUrl', url: jwksUrl };
  } else if (defaults.keySource) {
    keySource = defaults.keySource;
    keySourceFromEnv = false;
  } else {
    throw new Error('No JWT key source: set JWT_PUBLIC_KEY, JWT_JWKS_FILE or JWT_JWKS_URL');
  }

  return {
    issuer,
    audience,
    algorithms,
    keySource,
    clockToleranceSeconds: defaults.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
    keySourceFromEnv,
  };
}
