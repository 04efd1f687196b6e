/**
 * Who is calling: the authenticated principal and the JWT claims layout it is carried in.
 *
 * Claims layout (all tokens):
 *   sub    — staff id | customer id | API client id (uuid)
 *   org    — organization id (uuid)
 *   kind   — 'staff' | 'customer' | 'api_client'
 *   role   — StaffRole                       (staff only)
 *   stores — uuid[]                          (staff and api_client)
 *   scopes — string[]                        (api_client only)
 *
 * Partner-clinic staff are STAFF principals of a CLINIC organization; the claims do not
 * distinguish organization types.
 */

export const STAFF_ROLES = [
  'OWNER',
  'HQ_ANALYST',
  'STORE_MANAGER',
  'CONSULTANT',
  'BEAUTICIAN',
  'FRONT_DESK',
] as const;

export type StaffRole = (typeof STAFF_ROLES)[number];

export type StaffPrincipal = {
  kind: 'STAFF';
  orgId: string;
  staffId: string;
  role: StaffRole;
  storeIds: string[];
};

export type CustomerPrincipal = {
  kind: 'CUSTOMER';
  orgId: string;
  customerId: string;
};

export type ApiClientPrincipal = {
  kind: 'API_CLIENT';
  orgId: string;
  clientId: string;
  scopes: string[];
  storeIds: string[];
};

export type Principal = StaffPrincipal | CustomerPrincipal | ApiClientPrincipal;

export type PrincipalKind = Principal['kind'];

/** The `kind` claim values. */
export type ClaimKind = 'staff' | 'customer' | 'api_client';

/** Custom claims we put in a token (registered claims like exp/iss/aud are added by the signer). */
export type PrincipalClaims = {
  sub: string;
  org: string;
  kind: ClaimKind;
  role?: StaffRole;
  stores?: string[];
  scopes?: string[];
};

export type AuthErrorCode = 'TOKEN_MISSING' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'INVALID_CLAIMS';

const SAFE_MESSAGES: Record<AuthErrorCode, string> = {
  TOKEN_MISSING: 'Authentication token is missing',
  TOKEN_INVALID: 'Authentication token is invalid',
  TOKEN_EXPIRED: 'Authentication token has expired',
  INVALID_CLAIMS: 'Authentication token claims are malformed',
};

/**
 * Authentication failure. `message` is always a fixed, client-safe sentence per code; `reason` is a
 * short machine-readable detail for logs (a jose error code or a claim name), never key or token
 * material. `cause` (when present) is the underlying error, for server-side logging only.
 */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly code: AuthErrorCode;
  readonly reason: string | undefined;

  constructor(code: AuthErrorCode, reason?: string, options?: { cause?: unknown }) {
    super(SAFE_MESSAGES[code], options);
    this.code = code;
    this.reason = reason;
  }
}

export function isAuthError(err: unknown): err is AuthError {
  return err instanceof AuthError;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** OAuth-style scope token: printable, no spaces/quotes/backslashes. */
const SCOPE_RE = /^[A-Za-z0-9_.:/+\-*]{1,128}$/;
const MAX_LIST = 5000;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value);
}

export function isStaffRole(value: unknown): value is StaffRole {
  return typeof value === 'string' && (STAFF_ROLES as readonly string[]).includes(value);
}

function invalid(reason: string): never {
  throw new AuthError('INVALID_CLAIMS', reason);
}

function uuidClaim(value: unknown, name: string): string {
  if (!isUuid(value)) invalid(name);
  // Canonical lower case so string comparisons (storeIds.includes(id)) behave like uuid comparisons.
  return value.toLowerCase();
}

function listClaim(value: unknown, name: string, item: (v: unknown) => string | undefined): string[] {
  if (!Array.isArray(value) || value.length > MAX_LIST) invalid(name);
  const out: string[] = [];
  const seen = new Set<string>();
  for (const v of value) {
    const parsed = item(v);
    if (parsed === undefined) invalid(name);
    if (!seen.has(parsed)) {
      seen.add(parsed);
      out.push(parsed);
    }
  }
  return out;
}

const uuidItem = (v: unknown) => (isUuid(v) ? v.toLowerCase() : undefined);
const scopeItem = (v: unknown) => (typeof v === 'string' && SCOPE_RE.test(v) ? v : undefined);

/**
 * Builds a Principal from a verified JWT payload. Strict: unknown kind, unknown role, non-uuid ids,
 * non-array lists, or claims that do not belong to the kind (e.g. `role` on a customer token) all
 * throw AuthError('INVALID_CLAIMS'). Ids are normalized to lower case; list duplicates are dropped.
 */
export function principalFromClaims(payload: unknown): Principal {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) invalid('payload');
  const claims = payload as Record<string, unknown>;

  const sub = uuidClaim(claims.sub, 'sub');
  const orgId = uuidClaim(claims.org, 'org');
  const has = (name: string) => Object.prototype.hasOwnProperty.call(claims, name) && claims[name] !== undefined;

  switch (claims.kind) {
    case 'staff': {
      if (!isStaffRole(claims.role)) invalid('role');
      if (has('scopes')) invalid('scopes');
      return {
        kind: 'STAFF',
        orgId,
        staffId: sub,
        role: claims.role,
        storeIds: listClaim(claims.stores, 'stores', uuidItem),
      };
    }
    case 'customer': {
      if (has('role')) invalid('role');
      if (has('stores')) invalid('stores');
      if (has('scopes')) invalid('scopes');
      return { kind: 'CUSTOMER', orgId, customerId: sub };
    }
    case 'api_client': {
      if (has('role')) invalid('role');
      return {
        kind: 'API_CLIENT',
        orgId,
        clientId: sub,
        scopes: listClaim(claims.scopes, 'scopes', scopeItem),
        storeIds: listClaim(claims.stores, 'stores', uuidItem),
      };
    }
    default:
      invalid('kind');
  }
}

/** The inverse of principalFromClaims (used by the token minter). Does not validate. */
export function principalToClaims(principal: Principal): PrincipalClaims {
  switch (principal.kind) {
    case 'STAFF':
      return {
        sub: principal.staffId,
        org: principal.orgId,
        kind: 'staff',
        role: principal.role,
        stores: [...principal.storeIds],
      };
    case 'CUSTOMER':
      return { sub: principal.customerId, org: principal.orgId, kind: 'customer' };
    case 'API_CLIENT':
      return {
        sub: principal.clientId,
        org: principal.orgId,
        kind: 'api_client',
        scopes: [...principal.scopes],
        stores: [...principal.storeIds],
      };
    default:
      throw new AuthError('INVALID_CLAIMS', 'kind');
  }
}

/**
 * Validates an untrusted Principal-shaped value (e.g. from demo-principals.json or a CLI flag) with
 * the same rules as token claims. Throws AuthError('INVALID_CLAIMS').
 */
export function parsePrincipal(value: unknown): Principal {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid('principal');
  const p = value as Record<string, unknown>;
  switch (p.kind) {
    case 'STAFF':
      return principalFromClaims({ sub: p.staffId, org: p.orgId, kind: 'staff', role: p.role, stores: p.storeIds });
    case 'CUSTOMER':
      return principalFromClaims({ sub: p.customerId, org: p.orgId, kind: 'customer' });
    case 'API_CLIENT':
      return principalFromClaims({
        sub: p.clientId,
        org: p.orgId,
        kind: 'api_client',
        scopes: p.scopes,
        stores: p.storeIds,
      });
    default:
      invalid('kind');
  }
}
