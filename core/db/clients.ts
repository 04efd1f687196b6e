import { createHash } from 'node:crypto';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client.ts';

export type Db = InstanceType<typeof PrismaClient>;
/** A Prisma transaction client. */
export type Tx = Parameters<Parameters<Db['$transaction']>[0]>[0];

/** Statements and rows the application role sent and received; tests and benchmarks read these. */
export interface QueryStats {
  statements: number;
  rows: number;
  /** When set, every statement's text and row count is appended (tests use it to see what was read). */
  trace: { sql: string; rows: number }[] | null;
}

type TenantClient = pg.PoolClient & { tenantOrgId?: string };

/**
 * Columns Prisma leaves out unless a query selects them: a visit's signature image can be 300 kB, and lists never
 * show it.
 */
export const OMITTED_COLUMNS = { visit: { signature: true } } as const;

/** Statements with more parameters than this (long IN lists, whose length varies) are not kept prepared. */
const MAX_PREPARED_PARAMETERS = 32;

/**
 * Names by statement text (digesting each statement's text again cost 1.6% of a storefront read's CPU). Every pooled
 * connection keeps each named statement it ran for its lifetime, and Prisma's text follows what a query selects, so
 * the names are bounded: texts beyond the bound (a client that keeps varying its selections) run unnamed.
 */
const preparedNames = new Map<string, string>();
const MAX_PREPARED_NAMES = 2_000;

/**
 * Names a tenant statement, so each pooled connection parses and plans it once and then only binds and executes
 * it (bench: PostgreSQL CPU per storefront read down by a third). The name is a digest of the text, the same in
 * every process. Statements with long parameter lists stay unnamed: each list length is another text, and every
 * connection would keep each of them for its lifetime.
 */
function preparedName(query: { sql: string; args: unknown[] }): string {
  // '' is the protocol's unnamed statement: parsed for this execution only.
  if (query.args.length > MAX_PREPARED_PARAMETERS) return '';
  let name = preparedNames.get(query.sql);
  if (name === undefined) {
    if (preparedNames.size >= MAX_PREPARED_NAMES) return '';
    name = `s${createHash('sha1').update(query.sql).digest('base64url').slice(0, 24)}`;
    preparedNames.set(query.sql, name);
  }
  return name;
}

/**
 * A pg.Pool facade for one organization over the shared application pool. Every connection it hands out
 * carries `app.org_id` for that organization, which the row-level security policies read. The setting is
 * only sent when a pooled connection last served another tenant, so a busy tenant pays nothing extra.
 *
 * One Prisma client per organization (rather than one client and a per-query setting) keeps Prisma's
 * same-tick batching of findUnique calls inside one tenant: a batch never mixes two organizations' ids.
 */
class TenantPool extends pg.Pool {
  readonly #shared: pg.Pool;
  readonly #orgId: string;

  constructor(shared: pg.Pool, orgId: string) {
    super({ max: 1 });
    this.#shared = shared;
    this.#orgId = orgId;
  }

  override async connect(): Promise<pg.PoolClient> {
    const client = (await this.#shared.connect()) as TenantClient;
    if (client.tenantOrgId !== this.#orgId) {
      try {
        await client.query("SELECT set_config('app.org_id', $1, false)", [this.#orgId]);
      } catch (error) {
        client.release(error as Error);
        throw error;
      }
      client.tenantOrgId = this.#orgId;
    }
    return client;
  }

  // @ts-expect-error: only the promise form with a config object is used by the Prisma adapter.
  override async query(config: pg.QueryConfig): Promise<pg.QueryResult> {
    const client = await this.connect();
    try {
      return await client.query(config);
    } finally {
      client.release();
    }
  }

  override async end(): Promise<void> {
    // The shared pool belongs to Databases.
  }
}

export interface DatabasesOptions {
  /** URL of the database owner (runs migrations, the job queue and cross-tenant system work). */
  ownerUrl: string;
  /** Connections in the application pool. */
  poolSize?: number;
  /** Most organizations that keep a Prisma client in memory at once. */
  maxTenantClients?: number;
}

/**
 * The two ways into the database: `forOrg(orgId)` for everything done on behalf of a tenant (runs as the
 * crm_app role under row-level security), and `system` for work that is not a tenant's (reading the outbox
 * across organizations, seeding, migrations).
 */
export class Databases {
  readonly stats: QueryStats = { statements: 0, rows: 0, trace: null };
  readonly appPool: pg.Pool;
  readonly system: Db;
  readonly #systemPool: pg.Pool;
  readonly #tenants = new Map<string, Db>();
  readonly #maxTenantClients: number;

  constructor(options: DatabasesOptions) {
    this.#maxTenantClients = options.maxTenantClients ?? 200;
    this.appPool = new pg.Pool({
      connectionString: options.ownerUrl,
      max: options.poolSize ?? 16,
      options: '-c role=crm_app',
    });
    this.appPool.on('connect', (client) => this.#count(client));
    this.appPool.on('error', () => {
      // An idle connection dropped by the server is replaced on next use.
    });
    this.#systemPool = new pg.Pool({ connectionString: options.ownerUrl, max: 4 });
    this.#systemPool.on('error', () => {});
    this.system = new PrismaClient({ adapter: new PrismaPg(this.#systemPool), omit: OMITTED_COLUMNS });
  }

  forOrg(orgId: string): Db {
    let db = this.#tenants.get(orgId);
    if (db) {
      // Re-insert to keep the map in least-recently-used order.
      this.#tenants.delete(orgId);
    } else {
      db = new PrismaClient({
        adapter: new PrismaPg(new TenantPool(this.appPool, orgId) as unknown as pg.Pool, { statementNameGenerator: preparedName }),
        omit: OMITTED_COLUMNS,
      });
      if (this.#tenants.size >= this.#maxTenantClients) {
        const [oldest, client] = this.#tenants.entries().next().value!;
        this.#tenants.delete(oldest);
        void client.$disconnect();
      }
    }
    this.#tenants.set(orgId, db);
    return db;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#tenants.values()].map((db) => db.$disconnect()));
    this.#tenants.clear();
    await this.system.$disconnect();
    await Promise.all([this.appPool.end(), this.#systemPool.end()]);
  }

  #count(client: pg.PoolClient) {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    const stats = this.stats;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      stats.statements += 1;
      const result = query(...args);
      if (result instanceof Promise) {
        return result.then((r: pg.QueryResult) => {
          stats.rows += r?.rowCount ?? 0;
          const sql = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string })?.text;
          stats.trace?.push({ sql: sql ?? '', rows: r?.rowCount ?? 0 });
          return r;
        });
      }
      return result;
    };
  }
}
