import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ensureDatabase } from './embedded.ts';
import { migrate, prepareDatabase } from './migrate.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An empty database (not the migrated template) and a migrations folder to fill. */
async function fixture() {
  const adminUrl = inject('adminUrl');
  const name = `migrate_test_${randomBytes(4).toString('hex')}`;
  const url = await ensureDatabase(adminUrl, name);
  cleanups.push(() => query(adminUrl, `DROP DATABASE ${pg.escapeIdentifier(name)} WITH (FORCE)`));
  const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const add = async (name: string, sql: string) => {
    await mkdir(path.join(dir, name), { recursive: true });
    await writeFile(path.join(dir, name, 'migration.sql'), sql);
  };
  return { url, dir, add };
}

async function query<R extends pg.QueryResultRow = Record<string, unknown>>(url: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

const history = (url: string) =>
  query(
    url,
    `SELECT migration_name, checksum, finished_at, logs, rolled_back_at, applied_steps_count
       FROM _prisma_migrations ORDER BY started_at, migration_name`,
  );

describe('migrate', () => {
  it('applies migrations in folder-name order and records them as Prisma does', async () => {
    const { url, dir, add } = await fixture();
    // Created out of order: 2 depends on 1, so a wrong order fails.
    await add('20240102000000_add_b', 'ALTER TABLE t ADD COLUMN b int;\n');
    await add('20240101000000_create_t', 'CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n');

    expect(await migrate(url, { migrationsDir: dir })).toEqual(['20240101000000_create_t', '20240102000000_add_b']);

    expect(await query(url, 'SELECT a, b FROM t')).toEqual([{ a: 1, b: null }]);
    const rows = await history(url);
    expect(rows.map((r) => r.migration_name)).toEqual(['20240101000000_create_t', '20240102000000_add_b']);
    expect(rows[0]).toMatchObject({
      checksum: createHash('sha256').update('CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n').digest('hex'),
      logs: null,
      rolled_back_at: null,
      applied_steps_count: 1,
    });
    expect(rows[0]!.finished_at).toBeInstanceOf(Date);
    const columns = await query(
      url,
      `SELECT column_name, data_type, character_maximum_length AS len, is_nullable, column_default
         FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    expect(columns).toEqual([
      { column_name: 'id', data_type: 'character varying', len: 36, is_nullable: 'NO', column_default: null },
      { column_name: 'checksum', data_type: 'character varying', len: 64, is_nullable: 'NO', column_default: null },
      { column_name: 'finished_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'YES', column_default: null },
      { column_name: 'migration_name', data_type: 'character varying', len: 255, is_nullable: 'NO', column_default: null },
      { column_name: 'logs', data_type: 'text', len: null, is_nullable: 'YES', column_default: null },
      { column_name: 'rolled_back_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'YES', column_default: null },
      { column_name: 'started_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'NO', column_default: 'now()' },
      { column_name: 'applied_steps_count', data_type: 'integer', len: null, is_nullable: 'NO', column_default: '0' },
    ]);
  });

  it('does nothing on a second run and applies only what was added since', async () => {
    const { url, dir, add } = await fixture();
    await add('1_one', 'CREATE TABLE one ();');
    await migrate(url, { migrationsDir: dir });

    expect(await migrate(url, { migrationsDir: dir })).toEqual([]);
    await add('2_two', 'CREATE TABLE two ();');
    expect(await migrate(url, { migrationsDir: dir })).toEqual(['2_two']);
    expect(await history(url)).toHaveLength(2);
  });

  it('rejects an applied migration whose file changed', async () => {
    const { url, dir, add } = await fixture();
    await add('1_one', 'CREATE TABLE one ();');
    await migrate(url, { migrationsDir: dir });
    await add('1_one', 'CREATE TABLE one (x int);');
    await add('2_two', 'CREATE TABLE two ();');

    await expect(migrate(url, { migrationsDir: dir })).rejects.toThrow(/Migration 1_one was modified after it was applied/);
    expect(await query(url, `SELECT to_regclass('two') AS two`)).toEqual([{ two: null }]);
  });

  it('accepts the same file checked out with CRLF line endings', async () => {
    const { url, dir, add } = await fixture();
    await add('1_one', 'CREATE TABLE one ();\nCREATE TABLE uno ();\n');
    await migrate(url, { migrationsDir: dir });
    await add('1_one', 'CREATE TABLE one ();\r\nCREATE TABLE uno ();\r\n');

    expect(await migrate(url, { migrationsDir: dir })).toEqual([]);
  });

  it('rolls a failing migration back entirely and names it in the error', async () => {
    const { url, dir, add } = await fixture();
    await add('1_ok', 'CREATE TABLE ok ();');
    await add('2_bad', 'CREATE TABLE half_done ();\nINSERT INTO ok DEFAULT VALUES;\nSELECT missing FROM ok;\n');
    await add('3_later', 'CREATE TABLE later ();');

    const error = await migrate(url, { migrationsDir: dir }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /Migration 2_bad failed \(.*2_bad\/migration\.sql, line 3\): column "missing" does not exist/,
    );

    expect((await history(url)).map((r) => r.migration_name)).toEqual(['1_ok']);
    expect(
      await query(url, `SELECT to_regclass('half_done') AS half, to_regclass('later') AS later, (SELECT count(*)::int FROM ok) AS ok_rows`),
    ).toEqual([{ half: null, later: null, ok_rows: 0 }]);
  });

  it('lets concurrent runs on a fresh database apply each migration exactly once', async () => {
    const { url, dir, add } = await fixture();
    // The sleep keeps the first run inside the lock while the others arrive.
    await add('1_slow', 'CREATE TABLE counter (n int); INSERT INTO counter VALUES (1); SELECT pg_sleep(0.3);');
    await add('2_bump', 'UPDATE counter SET n = n + 1;');

    const results = await Promise.all([1, 2, 3].map(() => migrate(url, { migrationsDir: dir })));

    expect(results.flat().sort()).toEqual(['1_slow', '2_bump']);
    expect(results.filter((r) => r.length === 0)).toHaveLength(2);
    expect(await query(url, 'SELECT n FROM counter')).toEqual([{ n: 2 }]);
    expect(await history(url)).toHaveLength(2);
  });

  it('prepareDatabase runs our migrations, then graphile-worker, then the hook, all under the lock', async () => {
    const { url, dir, add } = await fixture();
    await add('1_one', 'CREATE TABLE one ();');
    let lockHeldDuringHook: unknown;

    const applied = await prepareDatabase(url, {
      migrationsDir: dir,
      afterMigrations: async (client) => {
        const { rows } = await client.query(
          `SELECT count(*)::int AS n FROM pg_locks
            WHERE locktype = 'advisory' AND objid = 72707369 AND pid = pg_backend_pid() AND granted`,
        );
        lockHeldDuringHook = rows[0].n;
      },
    });

    expect(applied).toEqual(['1_one']);
    expect(lockHeldDuringHook).toBe(1);
    expect(await query(url, `SELECT to_regclass('graphile_worker.migrations') IS NOT NULL AS worker`)).toEqual([{ worker: true }]);
    expect(await prepareDatabase(url, { migrationsDir: dir })).toEqual([]);
  });
});
