/**
 * One API process on an existing, migrated database: what a second server of a deployment is. Tests start it as a
 * real child process (see `startApiProcess` in ./process.ts) to prove that events cross process boundaries.
 *
 *   DATABASE_URL            owner URL of the database (required; migrations must already be applied)
 *   CRM_JWKS_FILE           JWKS file that verifies tokens (required unless JWT_PUBLIC_KEY / JWT_JWKS_FILE / JWT_JWKS_URL)
 *   REDIS_URL               live events through Redis instead of PostgreSQL LISTEN/NOTIFY (optional)
 *   CRM_PLUGINS             comma list of plugins (optional; default all), CRM_PLUGIN_CONFIG as for `npm start`
 *   CRM_WORKER_CONCURRENCY  job worker concurrency (default 0: no worker, so tests decide when jobs run)
 *   CRM_STOP_WITH_PARENT    when "1", stop as soon as stdin closes (the parent died or let go of us)
 *
 * Listens on a free port of 127.0.0.1 and prints exactly one line `READY <url>` to stdout once it serves requests.
 * SIGTERM or SIGINT closes the server, the worker, the live-event connections and the pools, then exits 0.
 */
import { authConfigFromEnv, createTokenVerifier } from '../auth/verify.ts';
import { pluginSettingsFromEnv, startPlatform, type RunningPlatform } from '../bootstrap.ts';

async function main(): Promise<void> {
  const ownerUrl = process.env.DATABASE_URL;
  if (!ownerUrl) throw new Error('DATABASE_URL is required');
  const jwksFile = process.env.CRM_JWKS_FILE;
  const authConfig = authConfigFromEnv(process.env, jwksFile ? { keySource: { kind: 'jwksFile', path: jwksFile } } : {});
  const { plugins, pluginConfig } = pluginSettingsFromEnv(process.env);
  const workerConcurrency = Number(process.env.CRM_WORKER_CONCURRENCY ?? 0);
  if (!Number.isInteger(workerConcurrency) || workerConcurrency < 0) throw new Error('CRM_WORKER_CONCURRENCY must be a whole number');

  let running: RunningPlatform | null = null;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    if (!running) return; // still starting: closed as soon as the start completes
    try {
      await running.close();
      process.exit(0);
    } catch (error) {
      console.error('api-process: error while stopping:', error);
      process.exit(1);
    }
  };
  // Registered before starting, so a stop requested while starting still waits for a clean start, then closes.
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  if (process.env.CRM_STOP_WITH_PARENT === '1') {
    process.stdin.on('close', () => void stop());
    process.stdin.on('end', () => void stop());
    process.stdin.resume();
  }

  running = await startPlatform({
    ownerUrl,
    plugins,
    pluginConfig,
    redisUrl: process.env.REDIS_URL || undefined,
    verifier: createTokenVerifier(authConfig),
    production: process.env.NODE_ENV === 'production',
    host: '127.0.0.1',
    port: 0,
    workerConcurrency,
    poolSize: 8,
  });
  if (stopping) {
    await running.close();
    process.exit(0);
  }
  process.stdout.write(`READY ${running.url}\n`);
}

main().catch((error) => {
  console.error('api-process: failed to start:', error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
