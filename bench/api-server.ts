/**
 * Our API as a child process of the bench (so its CPU and memory can be measured alone), in production mode.
 *
 *   DATABASE_URL (owner URL), BENCH_JWKS_FILE, BENCH_PLUGINS (comma list), BENCH_POOL_SIZE,
 *   BENCH_WORKER_CONCURRENCY (0: no job worker), REDIS_URL (optional: live events through Redis)
 *
 * Prints `READY <url>` once it serves; SIGTERM closes it. Stops when stdin closes (the bench died).
 */
import { createTokenVerifier, DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../core/auth/verify.ts';
import { startPlatform } from '../core/bootstrap.ts';

const env = process.env;
const running = await startPlatform({
  ownerUrl: env.DATABASE_URL!,
  plugins: (env.BENCH_PLUGINS ?? 'points,tiers').split(',').filter(Boolean),
  verifier: createTokenVerifier({ issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, keySource: { kind: 'jwksFile', path: env.BENCH_JWKS_FILE! } }),
  production: true,
  host: '127.0.0.1',
  port: 0,
  redisUrl: env.REDIS_URL || undefined,
  workerConcurrency: Number(env.BENCH_WORKER_CONCURRENCY ?? 0),
  poolSize: Number(env.BENCH_POOL_SIZE ?? 16),
});
let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  await running.close().catch((error) => console.error(error));
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
// The harness reads idle memory after a full GC (children run with --expose-gc).
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  process.stdout.write(`MEMORY ${JSON.stringify(process.memoryUsage())}\n`);
});
process.stdin.on('close', () => void stop());
process.stdin.resume();
process.stdout.write(`READY ${running.url}\n`);
