/**
 * The second wall: PostgreSQL row-level security for the application role, tested through raw connections as
 * `crm_app` (no resolver in the way) and through a tenant Prisma client with no filter of its own. Tenant tables
 * are read from the catalogue (every table with an org_id column), so a new table is covered as soon as it exists.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { gid, startTestPlatform, type TestPlatform } from '../testing/platform.ts';
import { tenantTables } from './support.ts';

/** Tables of the core migration: each must hold rows of more than one organization here, or a test proves nothing. */
const CORE_TENANT_TABLES = [
  'api_client', 'consent', 'customer', 'customer_fact', 'domain_event', 'idempotency_record', 'membership', 'org_counter',
  'processed_event', 'product', 'service', 'skin_profile', 'staff', 'staff_store', 'store', 'visit', 'visit_line',
];

let api: TestPlatform;
let owner: pg.Client;
let tables: string[];
let orgs: { lumiere: string; glow: string; clinic: string };

/** A fresh connection as the application role, with no tenant set. */
async function appConnection(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: api.database.url });
  await client.connect();
  await client.query('SET ROLE crm_app');
  return client;
}

async function asApp<T>(orgId: string | null, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await appConnection();
  try {
    if (orgId !== null) await client.query("SELECT set_config('app.org_id', $1, false)", [orgId]);
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The SQLSTATE of a failed statement, run inside a transaction that is always rolled back. */
async function failure(client: pg.Client, sql: string, params: unknown[] = []): Promise<{ code?: string; message?: string }> {
  await client.query('BEGIN');
  try {
    await client.query(sql, params);
    return {};
  } catch (error) {
    return { code: (error as { code?: string }).code, message: (error as Error).message };
  } finally {
    await client.query('ROLLBACK');
  }
}

async function ownerCount(table: string, where = 'true', params: unknown[] = []): Promise<number> {
  const { rows } = await owner.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(table)} WHERE ${where}`, params);
  return rows[0]!.n;
}

beforeAll(async () => {
  api = await startTestPlatform();
  owner = new pg.Client({ connectionString: api.database.url });
  await owner.connect();
  orgs = { lumiere: api.principals.OWNER!.orgId, glow: api.principals.OTHER_CHAIN_OWNER!.orgId, clinic: api.principals.CLINIC_STAFF!.orgId };

  // The demo data writes no events or idempotency records: make some, through the API, in two organizations.
  for (const [label, orgId] of [['OWNER', orgs.lumiere], ['OTHER_CHAIN_OWNER', orgs.glow]] as const) {
    const { rows } = await owner.query<{ id: string }>(
      `SELECT c.id FROM customer c WHERE c.org_id = $1 ORDER BY c.name LIMIT 1`,
      [orgId],
    );
    const recorded = await api.gql(
      'mutation($input: RecordConsentInput!) { recordConsent(input: $input) { userErrors { code message } } }',
      { input: { customerId: gid('Customer', rows[0]!.id), purpose: 'RESEARCH', granted: true } },
      label,
    );
    expect(recorded.data.recordConsent.userErrors).toEqual([]);
    const { rows: visits } = await owner.query<{ id: string }>(
      `INSERT INTO visit (org_id, store_id, customer_id, status, scheduled_start, scheduled_end)
       SELECT $1, s.id, $2, 'BOOKED', now() + interval '1 day', now() + interval '25 hours' FROM store s WHERE s.org_id = $1 LIMIT 1
       RETURNING id`,
      [orgId, rows[0]!.id],
    );
    const checkedIn = await api.gql(
      'mutation($input: CheckInVisitInput!) { checkInVisit(input: $input) { userErrors { code message } } }',
      { input: { visitId: gid('Visit', visits[0]!.id), idempotencyKey: `rls-${randomUUID()}` } },
      label,
    );
    expect(checkedIn.data.checkInVisit.userErrors).toEqual([]);
    await owner.query(
      `INSERT INTO processed_event (handler, event_id, org_id) SELECT 'rls-test', id, org_id FROM domain_event WHERE org_id = $1`,
      [orgId],
    );
  }
  tables = await tenantTables(owner);
});

afterAll(async () => {
  await owner?.end();
  await api?.close();
});

describe('the tenant tables', () => {
  test('are found in the catalogue, and include every core table', () => {
    expect(tables).toEqual(expect.arrayContaining(CORE_TENANT_TABLES));
  });

  test('each has row-level security on, with a policy for crm_app', async () => {
    const { rows } = await owner.query<{ relname: string; relrowsecurity: boolean; policies: number }>(
      `SELECT c.relname, c.relrowsecurity,
              (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid
                 AND (p.polroles = '{0}' OR 'crm_app'::regrole::oid = ANY (p.polroles))) AS policies
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname = ANY($1::text[])`,
      [[...tables, 'organization']],
    );
    expect(rows).toHaveLength(tables.length + 1);
    for (const row of rows) expect({ table: row.relname, rls: row.relrowsecurity, policy: row.policies > 0 }).toEqual({ table: row.relname, rls: true, policy: true });
  });

  test('each core table holds Lumière rows, which the other tenants must not see (so the checks below can fail)', async () => {
    for (const table of CORE_TENANT_TABLES) {
      expect({ table, lumiere: (await ownerCount(table, 'org_id = $1', [orgs.lumiere])) > 0 }).toEqual({ table, lumiere: true });
    }
  });
});

describe('as crm_app', () => {
  test('without app.org_id every tenant table (and organization) returns no rows', async () => {
    await asApp(null, async (app) => {
      for (const table of [...tables, 'organization']) {
        const { rows } = await app.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(table)}`);
        expect({ table, rows: rows[0]!.n }).toEqual({ table, rows: 0 });
      }
      // An empty setting (what RESET leaves behind) is no tenant either.
      await app.query("SELECT set_config('app.org_id', '', false)");
      for (const table of tables) {
        const { rows } = await app.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(table)}`);
        expect({ table, rows: rows[0]!.n }).toEqual({ table, rows: 0 });
      }
    });
    for (const table of CORE_TENANT_TABLES) expect(await ownerCount(table), table).toBeGreaterThan(0);
  });

  test.each(['lumiere', 'glow', 'clinic'] as const)('with %s\'s id, exactly its own rows are visible in every table', async (name) => {
    const orgId = orgs[name];
    await asApp(orgId, async (app) => {
      for (const table of tables) {
        const { rows } = await app.query<{ others: number; total: number }>(
          `SELECT count(*) FILTER (WHERE org_id IS DISTINCT FROM $1)::int AS others, count(*)::int AS total FROM ${pg.escapeIdentifier(table)}`,
          [orgId],
        );
        const own = await ownerCount(table, 'org_id = $1', [orgId]);
        expect({ table, others: rows[0]!.others, total: rows[0]!.total }).toEqual({ table, others: 0, total: own });
      }
      const { rows } = await app.query<{ id: string }>('SELECT id FROM organization');
      expect(rows).toEqual([{ id: orgId }]);
    });
    // Rows of other organizations exist, so "others: 0" means hidden, not absent.
    for (const table of CORE_TENANT_TABLES) {
      if (name !== 'lumiere') expect(await ownerCount(table, 'org_id <> $1', [orgId]), table).toBeGreaterThan(0);
    }
  });

  test('a random tenant id sees nothing', async () => {
    await asApp(randomUUID(), async (app) => {
      for (const table of tables) {
        const { rows } = await app.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(table)}`);
        expect({ table, rows: rows[0]!.n }).toEqual({ table, rows: 0 });
      }
    });
  });

  test('inserting a row with another organization\'s org_id is refused in every table', async () => {
    await asApp(orgs.glow, async (app) => {
      for (const table of tables) {
        const { rows: sample } = await owner.query(`SELECT row_to_json(t) AS row FROM ${pg.escapeIdentifier(table)} t WHERE org_id = $1 LIMIT 1`, [orgs.lumiere]);
        if (!sample[0]) {
          expect(CORE_TENANT_TABLES, `no Lumière row in ${table} to copy`).not.toContain(table);
          continue;
        }
        const { rows: columns } = await owner.query<{ column_name: string }>(
          `SELECT column_name FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = $1 AND is_generated = 'NEVER' AND identity_generation IS NULL
            ORDER BY ordinal_position`,
          [table],
        );
        const list = columns.map((c) => pg.escapeIdentifier(c.column_name)).join(', ');
        const result = await failure(
          app,
          `INSERT INTO ${pg.escapeIdentifier(table)} (${list}) SELECT ${list} FROM json_populate_record(NULL::${pg.escapeIdentifier(table)}, $1::json)`,
          [JSON.stringify(sample[0].row)],
        );
        const { rows: privilege } = await owner.query<{ insert: boolean }>("SELECT has_table_privilege('crm_app', $1, 'INSERT') AS insert", [table]);
        // Refused by the policy where the role may insert at all (not merely by a missing grant).
        expect({ table, code: result.code, byPolicy: privilege[0]!.insert ? /row-level security/.test(result.message ?? '') : true }).toEqual({ table, code: '42501', byPolicy: true });
      }
    });
  });

  test('own rows can be written, but not moved to another organization, and other rows cannot be touched', async () => {
    await asApp(orgs.glow, async (app) => {
      // Control: the role can write its own tenant's rows.
      expect(
        await failure(app, `INSERT INTO customer (org_id, name, phone) VALUES ($1, 'RLS control', '+8613000000001')`, [orgs.glow]),
      ).toEqual({});
      const moved = await failure(app, 'UPDATE customer SET org_id = $1 WHERE org_id = $2', [orgs.lumiere, orgs.glow]);
      expect(moved.code).toBe('42501');
      expect(moved.message).toMatch(/row-level security/);

      await app.query('BEGIN');
      try {
        const updated = await app.query(`UPDATE customer SET name = 'hijacked' WHERE org_id = $1`, [orgs.lumiere]);
        const deleted = await app.query('DELETE FROM visit_line WHERE org_id = $1', [orgs.lumiere]);
        expect([updated.rowCount, deleted.rowCount]).toEqual([0, 0]);
      } finally {
        await app.query('ROLLBACK');
      }
    });
    expect(await ownerCount('customer', `org_id = $1 AND name = 'hijacked'`, [orgs.lumiere])).toBe(0);
  });

  // KNOWN GAP in the second wall: foreign keys are checked without row-level security, so the role can attach its
  // own row to another organization's row (and tell from the foreign-key error whether an id exists there). The
  // resolvers check every id they write (tenancy.test.ts), so this is reachable only past them. Fix: composite
  // foreign keys (org_id, x_id) → parent (org_id, id), which also needs the Prisma schema to declare them.
  // `test.fails` keeps this executable: it turns red once closed — then make it a `test`.
  test.fails('KNOWN GAP: a row cannot reference another organization\'s row', async () => {
    const { rows: [lumiereCustomer] } = await owner.query<{ id: string }>('SELECT id FROM customer WHERE org_id = $1 LIMIT 1', [orgs.lumiere]);
    const { rows: [glowStore] } = await owner.query<{ id: string }>('SELECT id FROM store WHERE org_id = $1 LIMIT 1', [orgs.glow]);
    await asApp(orgs.glow, async (app) => {
      const result = await failure(
        app,
        `INSERT INTO visit (org_id, store_id, customer_id, scheduled_start, scheduled_end) VALUES ($1, $2, $3, now(), now() + interval '1 hour')`,
        [orgs.glow, glowStore!.id, lumiereCustomer!.id],
      );
      expect(result.code).toBeDefined();
    });
  });

  test.each(['domain_event', 'processed_event', 'consent'])('%s is append-only: UPDATE and DELETE are refused', async (table) => {
    const before = await ownerCount(table, 'org_id = $1', [orgs.lumiere]);
    expect(before).toBeGreaterThan(0);
    await asApp(orgs.lumiere, async (app) => {
      const column = { domain_event: 'type', processed_event: 'handler', consent: 'recorded_by' }[table]!;
      const updated = await failure(app, `UPDATE ${table} SET ${column} = ${column} || '' WHERE org_id = $1`, [orgs.lumiere]);
      const deleted = await failure(app, `DELETE FROM ${table} WHERE org_id = $1`, [orgs.lumiere]);
      expect([updated.code, deleted.code]).toEqual(['42501', '42501']);
      expect(updated.message).toMatch(/permission denied/);
      // Reading them is allowed.
      const { rows } = await app.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
      expect(rows[0]!.n).toBe(before);
    });
    expect(await ownerCount(table, 'org_id = $1', [orgs.lumiere])).toBe(before);
  });
});

describe('a tenant Prisma client', () => {
  test('returns only its organization\'s rows from queries with no filter of their own', async () => {
    const dbs = api.running.platform.dbs;
    for (const orgId of Object.values(orgs)) {
      const tenant = dbs.forOrg(orgId);
      const customers = await tenant.customer.findMany({ select: { id: true, orgId: true } });
      const visits = await tenant.visit.findMany({ select: { orgId: true } });
      const stores = await tenant.store.findMany({ select: { orgId: true } });
      expect(new Set([...customers, ...visits, ...stores].map((row) => row.orgId))).toEqual(new Set(customers.length + visits.length + stores.length ? [orgId] : []));
      expect(customers).toHaveLength(await ownerCount('customer', 'org_id = $1', [orgId]));
      expect(visits).toHaveLength(await ownerCount('visit', 'org_id = $1', [orgId]));
      const [raw] = await tenant.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM customer`;
      expect(raw!.n).toBe(customers.length);
    }
    const foreign = await owner.query<{ id: string }>('SELECT id FROM customer WHERE org_id = $1 LIMIT 1', [orgs.lumiere]);
    expect(await dbs.forOrg(orgs.glow).customer.findUnique({ where: { id: foreign.rows[0]!.id } })).toBeNull();
    expect(await dbs.forOrg(orgs.lumiere).customer.findUnique({ where: { id: foreign.rows[0]!.id }, select: { id: true } })).not.toBeNull();
  });

  test('tenants sharing pooled connections at once never see each other\'s rows', async () => {
    const dbs = api.running.platform.dbs;
    const expected = {
      [orgs.lumiere]: await ownerCount('customer', 'org_id = $1', [orgs.lumiere]),
      [orgs.glow]: await ownerCount('customer', 'org_id = $1', [orgs.glow]),
      [orgs.clinic]: await ownerCount('customer', 'org_id = $1', [orgs.clinic]),
    };
    const ids = Object.values(orgs);
    const results = await Promise.all(
      Array.from({ length: 90 }, async (_, i) => {
        const orgId = ids[i % ids.length]!;
        const rows = await dbs.forOrg(orgId).customer.findMany({ select: { orgId: true } });
        return { orgId, count: rows.length, foreign: rows.filter((row) => row.orgId !== orgId).length };
      }),
    );
    for (const result of results) expect(result).toEqual({ orgId: result.orgId, count: expected[result.orgId], foreign: 0 });
  });
});
