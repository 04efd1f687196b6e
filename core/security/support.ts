/**
 * Helpers shared by the security tests: a fingerprint of every tenant row (to prove a refused request changed
 * nothing), global-id decoding, and a graphql-ws "first answer" probe.
 */
import pg from 'pg';
import type { Client, SubscribePayload } from 'graphql-ws';

/** Tables that carry an org_id column (read from the catalogue, so new tables are included). */
export async function tenantTables(db: pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ table_name: string }>(
    `SELECT c.table_name FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
      WHERE c.table_schema = 'public' AND c.column_name = 'org_id' AND t.table_type = 'BASE TABLE'
      ORDER BY c.table_name`,
  );
  return rows.map((row) => row.table_name);
}

/** One hash per tenant table (and organization) over every row: equal fingerprints mean no row changed. */
export async function fingerprint(db: pg.Client): Promise<Record<string, string>> {
  const tables = ['organization', ...(await tenantTables(db))];
  const sql = tables
    .map(
      (table) =>
        // An order-independent sum of row hashes: no sort, and any inserted, deleted or changed row moves it.
        `SELECT ${pg.escapeLiteral(table)} AS name, count(*)::int AS n, ` +
        `coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text AS hash FROM ${pg.escapeIdentifier(table)} t`,
    )
    .join(' UNION ALL ');
  const { rows } = await db.query<{ name: string; n: number; hash: string }>(sql);
  return Object.fromEntries(rows.map((row) => [row.name, `${row.n}:${row.hash}`]));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `Type:uuid` of an opaque global id, or null when the string is not one. */
export function decodeGid(value: string): { type: string; id: string } | null {
  if (!/^[A-Za-z0-9+/]+=*$/.test(value) || value.length < 40) return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const match = /^([A-Za-z]+):(.+)$/.exec(decoded);
  return match && UUID.test(match[2]!) ? { type: match[1]!, id: match[2]!.toLowerCase() } : null;
}

/** Every global id anywhere in a JSON value, grouped by type. */
export function collectGlobalIds(value: unknown, into = new Map<string, Set<string>>()): Map<string, Set<string>> {
  if (typeof value === 'string') {
    const decoded = decodeGid(value);
    if (decoded) {
      const set = into.get(decoded.type) ?? new Set<string>();
      set.add(decoded.id);
      into.set(decoded.type, set);
    }
  } else if (Array.isArray(value)) {
    for (const item of value) collectGlobalIds(item, into);
  } else if (value && typeof value === 'object') {
    for (const item of Object.values(value)) collectGlobalIds(item, into);
  }
  return into;
}

export type WsOutcome =
  | { kind: 'next'; value: unknown }
  | { kind: 'error'; errors: unknown }
  | { kind: 'complete' }
  | { kind: 'pending' };

/**
 * Subscribes and reports what the server answers first within `ms`: data, an error, completion, or nothing
 * (a subscription that started and is waiting for events). Always unsubscribes.
 */
export function wsFirst(client: Client, payload: SubscribePayload, ms = 3_000): Promise<WsOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let unsubscribe: () => void = () => {};
    const done = (outcome: WsOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      resolve(outcome);
    };
    const timer = setTimeout(() => done({ kind: 'pending' }), ms);
    unsubscribe = client.subscribe(payload, {
      next: (value) => done({ kind: 'next', value }),
      error: (errors) => done({ kind: 'error', errors: errors instanceof Error ? { message: errors.message } : errors }),
      complete: () => done({ kind: 'complete' }),
    });
  });
}

/** Collects every message of a subscription until `stop()`. */
export function wsCollect(client: Client, payload: SubscribePayload) {
  const messages: unknown[] = [];
  const errors: unknown[] = [];
  const unsubscribe = client.subscribe(payload, {
    next: (value) => messages.push(value),
    error: (error) => errors.push(error),
    complete: () => {},
  });
  return { messages, errors, stop: unsubscribe };
}

export async function waitFor(check: () => boolean, ms: number, step = 25): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, step));
  }
  return check();
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
