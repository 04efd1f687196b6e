/**
 * `npm start`: serves the API. Without DATABASE_URL it runs PostgreSQL embedded in the project (data in
 * .data/postgres, kept across restarts), applies migrations, seeds a demo chain on first start and prints
 * a token for each demo role.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { ensureLocalSigningKey } from './auth/keys.ts';
import { mintToken } from './auth/mint.ts';
import type { Principal } from './auth/principal.ts';
import { authConfigFromEnv, createTokenVerifier } from './auth/verify.ts';
import { PLUGINS_DIR, pluginSettingsFromEnv, startPlatform } from './bootstrap.ts';
import { loadPlugins } from './plugin/loader.ts';
import { ensureDatabase, PROJECT_DATA_DIR, startEmbeddedPostgres } from './db/embedded.ts';
import { PrismaClient } from './db/generated/client.ts';
import { prepareDatabase } from './db/migrate.ts';
import { isSeeded, seedDemo } from './seed/demo.ts';

const dataDir = process.env.CRM_DATA_DIR ?? PROJECT_DATA_DIR;
const principalsFile = join(dataDir, 'demo-principals.json');
const log = (message: string) => console.log(`[crm] ${message}`);

async function main() {
  const startedAt = performance.now();
  const { plugins, pluginConfig } = pluginSettingsFromEnv();
  // Fails on an unknown plugin, a missing dependency or bad configuration before anything starts.
  const loadedPlugins = await loadPlugins(PLUGINS_DIR, plugins, pluginConfig);
  await mkdir(dataDir, { recursive: true });

  let ownerUrl = process.env.DATABASE_URL;
  let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
  if (!ownerUrl) {
    embedded = await startEmbeddedPostgres({ dataDir: join(dataDir, 'postgres'), persistent: true });
    ownerUrl = await ensureDatabase(embedded.adminUrl, 'crm');
    log('embedded PostgreSQL running (data in .data/postgres)');
  }

  const seedDemoData = process.env.CRM_SEED_DEMO !== 'false';
  const applied = await prepareDatabase(ownerUrl, {
    log,
    // Under the migration lock, so several processes starting at once seed once.
    afterMigrations: async () => {
      if (!seedDemoData) return;
      const db = new PrismaClient({ adapter: new PrismaPg({ connectionString: ownerUrl }) });
      try {
        if (await isSeeded(db)) return;
        log('seeding the demo chain (first start)…');
        const { principals, counts } = await seedDemo(db);
        const chains = await db.organization.findMany({ where: { kind: 'CHAIN' }, select: { id: true } });
        for (const { definition, config } of loadedPlugins) {
          if (!definition.seedDemo) continue;
          for (const chain of chains) {
            await db.$transaction((tx) => definition.seedDemo!({ tx, orgId: chain.id, config }), { timeout: 120_000 });
          }
        }
        await writeFile(principalsFile, JSON.stringify(principals, null, 2));
        log(`seeded ${Object.entries(counts).map(([table, n]) => `${n} ${table}`).join(', ')}`);
      } finally {
        await db.$disconnect();
      }
    },
  });
  if (applied.length) log(`applied migrations: ${applied.join(', ')}`);

  const localKey = await ensureLocalSigningKey(join(dataDir, 'keys'));
  const authConfig = authConfigFromEnv(process.env, { keySource: { kind: 'jwksFile', path: localKey.jwksPath } });
  const production = process.env.NODE_ENV === 'production';
  const running = await startPlatform({
    ownerUrl,
    plugins,
    pluginConfig,
    redisUrl: process.env.REDIS_URL,
    verifier: createTokenVerifier(authConfig),
    production,
    port: Number(process.env.PORT ?? 4000),
    workerConcurrency: Number(process.env.CRM_WORKER_CONCURRENCY ?? 4),
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    await running.close().catch((error) => console.error(error));
    await embedded?.stop().catch((error) => console.error(error));
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));

  log(`plugins: ${plugins.join(', ') || '(none)'}`);
  log(`GraphQL:  ${running.url}  (HTTP and graphql-ws)`);
  if (!production) log(`GraphiQL: ${running.url}  (open in a browser; add an Authorization header)`);
  if (!authConfig.keySourceFromEnv && existsSync(principalsFile)) {
    const principals = JSON.parse(await readFile(principalsFile, 'utf8')) as Record<string, Principal>;
    log('demo tokens (valid 12 h; `npm run token -- <ROLE>` mints more):');
    for (const [label, principal] of Object.entries(principals)) {
      const token = await mintToken(localKey, principal, { issuer: authConfig.issuer, audience: authConfig.audience });
      console.log(`\n  ${label}\n  Authorization: Bearer ${token}`);
    }
    console.log('');
  }
  log(`ready in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
}

main().catch((error) => {
  console.error(error instanceof Error ? `[crm] failed to start: ${error.message}` : error);
  if (process.env.CRM_DEBUG) console.error(error);
  process.exit(1);
});
