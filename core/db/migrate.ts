import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import pg from 'pg';

export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

// The key `prisma migrate deploy` locks, so this runner and the Prisma CLI also exclude each other.
const PRISMA_MIGRATE_LOCK = 72707369;

export interface MigrateOptions {
  /** Folder holding `<name>/migration.sql`; defaults to `prisma/migrations`. */
  migrationsDir?: string;
  log?: (msg: string) => void;
}

export interface PrepareOptions extends MigrateOptions {
  /** Runs after all migrations, still under the lock (e.g. seed-if-empty); `client` is the lock's session. */
  afterMigrations?: (client: pg.Client) => Promise<void>;
}

/**
 * Runs `fn` while holding the session-level migration advisory lock on `databaseUrl`: concurrent callers (several
 * API processes starting at once) wait for one another. The lock goes with the session, so it is released even
 * when the process dies.
 */
export async function withMigrationLock<T>(
  databaseUrl: string,
  fn: (client: pg.Client) => Promise<T>,
  log: (msg: string) => void = () => {},
): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
      PRISMA_MIGRATE_LOCK,
    ]);
    if (!rows[0]!.locked) {
      log('waiting for another process to finish migrating');
      await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
    }
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Applies the pending SQL migrations under the migration lock; returns the names applied, in order. */
export function migrate(databaseUrl: string, opts: MigrateOptions = {}): Promise<string[]> {
  return withMigrationLock(databaseUrl, (client) => applyMigrations(client, opts), opts.log);
}

/**
 * Everything a database needs before the application uses it, under one lock: our SQL migrations, then
 * graphile-worker's schema, then `afterMigrations`. Returns the names of our migrations applied.
 */
export function prepareDatabase(databaseUrl: string, opts: PrepareOptions = {}): Promise<string[]> {
  return withMigrationLock(
    databaseUrl,
    async (client) => {
      const applied = await applyMigrations(client, opts);
      await runWorkerMigrations({ connectionString: databaseUrl });
      await opts.afterMigrations?.(client);
      return applied;
    },
    opts.log,
  );
}

interface Migration {
  name: string;
  file: string;
  sql: string;
  checksum: string;
}

/**
 * Applies pending migrations in `_prisma_migrations`' exact format, so `prisma migrate deploy` on a machine with
 * the Prisma engine sees the same state. The caller must hold the migration lock.
 */
async function applyMigrations(client: pg.Client, opts: MigrateOptions): Promise<string[]> {
  const log = opts.log ?? (() => {});
  const migrations = await readMigrations(opts.migrationsDir ?? DEFAULT_MIGRATIONS_DIR);
  await client.query(`
    CREATE TABLE IF NOT EXISTS _prisma_migrations (
      id                  VARCHAR(36) PRIMARY KEY NOT NULL,
      checksum            VARCHAR(64) NOT NULL,
      finished_at         TIMESTAMPTZ,
      migration_name      VARCHAR(255) NOT NULL,
      logs                TEXT,
      rolled_back_at      TIMESTAMPTZ,
      started_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
      applied_steps_count INTEGER NOT NULL DEFAULT 0
    )`);
  // Rows marked rolled back (`prisma migrate resolve --rolled-back`) are to be applied again, as Prisma does.
  const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
    'SELECT migration_name, checksum, finished_at FROM _prisma_migrations WHERE rolled_back_at IS NULL',
  );
  // Only the Prisma CLI records failures (we roll back instead); it refuses to go on until they are resolved.
  const failed = rows.find((row) => row.finished_at === null);
  if (failed) {
    throw new Error(
      `Migration ${failed.migration_name} failed earlier and is recorded as unfinished in _prisma_migrations; ` +
        'fix the database, then mark it with `prisma migrate resolve` (or delete that row)',
    );
  }
  const applied = new Map(rows.map((row) => [row.migration_name, row.checksum]));
  for (const migration of migrations) {
    const checksum = applied.get(migration.name);
    if (checksum !== undefined && !matchesChecksum(migration.sql, checksum)) {
      throw new Error(
        `Migration ${migration.name} was modified after it was applied (checksum in database ${checksum}, ` +
          `${migration.file} now ${migration.checksum}); restore the file and put changes in a new migration`,
      );
    }
  }

  const done: string[] = [];
  for (const migration of migrations.filter((m) => !applied.has(m.name))) {
    log(`applying migration ${migration.name}`);
    // One transaction per migration: a failure leaves neither its changes nor its row behind.
    await client.query('BEGIN');
    try {
      await client.query(migration.sql);
      await client.query(
        `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
         VALUES ($1, $2, $3, now(), clock_timestamp(), 1)`,
        [randomUUID(), migration.checksum, migration.name],
      );
      await client.query('COMMIT');
    } catch (error) {
      // Swallowed so that the migration's own error is the one reported.
      await client.query('ROLLBACK').catch(() => {});
      const where = `${migration.file}${errorLine(migration.sql, error)}`;
      throw new Error(`Migration ${migration.name} failed (${where}): ${(error as Error).message}`, { cause: error });
    }
    done.push(migration.name);
  }
  return done;
}

/** `<dir>/<name>/migration.sql`, sorted by folder name as Prisma does. */
async function readMigrations(dir: string): Promise<Migration[]> {
  const folders = (await readdir(dir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return Promise.all(
    folders.map(async (name) => {
      const file = path.join(dir, name, 'migration.sql');
      const sql = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new Error(`Migration folder ${path.join(dir, name)} has no readable migration.sql: ${error.message}`);
      });
      return { name, file, sql, checksum: sha256(sql) };
    }),
  );
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Like Prisma, accept the file with either line ending style: git may check it out with CRLF on Windows. */
function matchesChecksum(sql: string, checksum: string): boolean {
  return [sql, sql.replaceAll('\r\n', '\n'), sql.replaceAll('\n', '\r\n')].some((text) => sha256(text) === checksum);
}

/** `, line N` from the character position postgres reports for a syntax or semantic error. */
function errorLine(sql: string, error: unknown): string {
  const position = Number((error as { position?: string }).position);
  return position > 0 ? `, line ${sql.slice(0, position - 1).split('\n').length}` : '';
}
