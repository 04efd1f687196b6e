import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { databaseUrl } from '../db/embedded.ts';

export interface TestDatabase {
  url: string;
  name: string;
  /** Drops the database, closing any connection a test left open. */
  drop(): Promise<void>;
}

/** A fresh, fully migrated database copied from the run's template (see global-setup.ts). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject('adminUrl');
  const templateDb = inject('templateDb');
  // Prefixed with the template's name so global teardown can find copies a test did not drop.
  const name = `${templateDb}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminUrl, async (client) => {
    const sql = `CREATE DATABASE ${client.escapeIdentifier(name)} TEMPLATE ${client.escapeIdentifier(templateDb)}`;
    // Nobody can connect to the template, but a backend that has just disconnected may still be exiting.
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(sql);
        return;
      } catch (error) {
        const inUse = (error as { code?: string }).code === '55006'; // "being accessed by other users"
        if (!inUse || attempt === 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });
  return {
    url: databaseUrl(adminUrl, name),
    name,
    drop: () =>
      withAdmin(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`)),
  };
}

async function withAdmin(adminUrl: string, fn: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await fn(client);
  } finally {
    await client.end();
  }
}
