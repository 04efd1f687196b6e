import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import {
  ensureDatabase,
  isProcessAlive,
  PROJECT_DATA_DIR,
  startEmbeddedPostgres,
  stopStalePostgres,
  type EmbeddedPostgres,
} from '../db/embedded.ts';
import { prepareDatabase } from '../db/migrate.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test server's `postgres` database. */
    adminUrl: string;
    /** Migrated database that `createTestDatabase()` copies; nothing may connect to it. */
    templateDb: string;
  }
}

/**
 * Test server: TEST_DATABASE_URL (a superuser URL) when set, else a throw-away embedded PostgreSQL. Either way one
 * template database per run is migrated here, so each test database is a cheap copy instead of a migration run.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let server: EmbeddedPostgres | undefined;
  let dataDir: string | undefined;
  let adminUrl = process.env.TEST_DATABASE_URL;
  const templateDb = `crm_tmpl_${process.pid}_${randomBytes(3).toString('hex')}`;

  const teardown = async () => {
    if (server) {
      await server.stop();
      await rm(dataDir!, { recursive: true, force: true });
    } else if (adminUrl) {
      await dropRunDatabases(adminUrl, templateDb);
    }
  };

  try {
    if (!adminUrl) {
      await removeAbandonedTestDirs();
      dataDir = path.join(PROJECT_DATA_DIR, `test-${process.pid}-${randomBytes(4).toString('hex')}`);
      server = await startEmbeddedPostgres({ dataDir, persistent: false });
      adminUrl = server.adminUrl;
    }
    await prepareDatabase(await ensureDatabase(adminUrl, templateDb));
    // CREATE DATABASE … TEMPLATE fails while any session is connected to the template: forbid connections for the run.
    await adminQuery(adminUrl, `ALTER DATABASE ${pg.escapeIdentifier(templateDb)} ALLOW_CONNECTIONS false`);
  } catch (error) {
    await teardown();
    throw error;
  }

  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', templateDb);
  return teardown;
}

/** Drops the template and every test database copied from it (their names start with the template's). */
async function dropRunDatabases(adminUrl: string, templateDb: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname = $1',
      [templateDb],
    );
    for (const { datname } of rows) {
      await client.query(`DROP DATABASE ${client.escapeIdentifier(datname)} WITH (FORCE)`);
    }
  } finally {
    await client.end();
  }
}

/** Test dirs of runs that were killed (their pid is gone): stop any orphaned server, then delete. */
async function removeAbandonedTestDirs(): Promise<void> {
  const entries = await readdir(PROJECT_DATA_DIR).catch(() => []);
  for (const entry of entries) {
    const pid = Number(/^test-(\d+)-/.exec(entry)?.[1]);
    if (!pid || isProcessAlive(pid)) continue;
    const dir = path.join(PROJECT_DATA_DIR, entry);
    await stopStalePostgres(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
