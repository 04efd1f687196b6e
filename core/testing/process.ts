import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TestPlatform } from './platform.ts';

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = fileURLToPath(new URL('./api-process.ts', import.meta.url));
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export interface ApiProcess {
  /** HTTP GraphQL endpoint of the child process. */
  url: string;
  /** The same endpoint for graphql-ws. */
  wsUrl: string;
  pid: number;
  /** SIGTERM, then waits for the process to exit (SIGKILL after 15 s); resolves with how it ended. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * A second API server as a real OS process (`node --import tsx core/testing/api-process.ts`) on the test
 * platform's database, with its token keys and its plugins. `env` adds or overrides variables, e.g.
 * `{ REDIS_URL: 'redis://127.0.0.1:6379' }`. The child stops by itself if this process dies.
 */
export async function startApiProcess(api: TestPlatform, env: Record<string, string | undefined> = {}): Promise<ApiProcess> {
  const loaded = api.running.platform.plugins;
  const childEnv: Record<string, string | undefined> = { ...process.env };
  // Nothing from the parent's environment decides how the child verifies tokens or publishes events.
  for (const name of ['REDIS_URL', 'JWT_PUBLIC_KEY', 'JWT_PUBLIC_KEY_ALG', 'JWT_JWKS_FILE', 'JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE', 'JWT_ALGORITHMS', 'CRM_PLUGIN_CONFIG']) {
    delete childEnv[name];
  }
  Object.assign(childEnv, {
    DATABASE_URL: api.database.url,
    CRM_JWKS_FILE: api.signingKey.jwksPath,
    CRM_PLUGINS: loaded.map((plugin) => plugin.definition.name).join(','),
    CRM_PLUGIN_CONFIG: loaded.length ? JSON.stringify(Object.fromEntries(loaded.map((p) => [p.definition.name, p.config]))) : undefined,
    CRM_WORKER_CONCURRENCY: '0',
    CRM_STOP_WITH_PARENT: '1',
    ...env,
  });
  for (const [name, value] of Object.entries(childEnv)) if (value === undefined) delete childEnv[name];

  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    cwd: PROJECT_ROOT,
    env: childEnv as NodeJS.ProcessEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr.push(line);
    if (stderr.length > 200) stderr.shift();
    process.stderr.write(`[api-process ${child.pid}] ${line}\n`);
  });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return exited;
  };

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`API process did not print READY within ${READY_TIMEOUT_MS} ms\n${stderr.join('\n')}`));
    }, READY_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`API process exited before READY (code ${code}, signal ${signal})\n${stderr.join('\n')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^READY (\S+)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
  }).catch(async (error) => {
    await stop();
    throw error;
  });

  return { url, wsUrl: url.replace(/^http/, 'ws'), pid: child.pid!, stop };
}
