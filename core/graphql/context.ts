import DataLoader from 'dataloader';
import type { Principal } from '../auth/principal.ts';
import type { Db } from '../db/clients.ts';
import type { Platform } from '../platform.ts';
import { GraphQLError } from 'graphql';

/** Per-request state. `db` is the caller's tenant client: everything it reads is confined by RLS too. */
export interface Context {
  principal: Principal | null;
  platform: Platform;
  /** Per-request DataLoaders, keyed by name (and query shape where it matters). */
  loaders: Map<string, DataLoader<unknown, unknown>>;
  readonly db: Db;
}

/**
 * The `db` of a request without a principal: anything a resolver asks of it fails with UNAUTHENTICATED, at that
 * field. (A getter that throws would not do: Yoga merges the context with Object.assign, which reads every
 * property, so the whole request failed before any field ran.)
 */
const anonymousDb = new Proxy({} as Db, {
  get(_target, property) {
    if (typeof property === 'symbol' || property === 'then') return undefined;
    throw unauthenticated();
  },
  has(_target, property) {
    if (typeof property === 'symbol') return false;
    throw unauthenticated();
  },
});

export function createContext(platform: Platform, principal: Principal | null): Context {
  let db: Db | undefined;
  return {
    principal,
    platform,
    loaders: new Map(),
    get db() {
      if (!principal) return anonymousDb;
      db ??= platform.dbs.forOrg(principal.orgId);
      return db;
    },
  };
}

export function unauthenticated(message = 'Authentication required'): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

export function requirePrincipal(ctx: Context): Principal {
  if (!ctx.principal) throw unauthenticated();
  return ctx.principal;
}

/** A loader cached for the request, created on first use. */
export function loader<K, V>(ctx: Context, key: string, create: () => DataLoader<K, V>): DataLoader<K, V> {
  let existing = ctx.loaders.get(key) as DataLoader<K, V> | undefined;
  if (!existing) {
    existing = create();
    ctx.loaders.set(key, existing as DataLoader<unknown, unknown>);
  }
  return existing;
}
