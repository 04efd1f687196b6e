import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { databaseUrl, ensureDatabase, isProcessAlive, startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

// initdb takes over a second (copying a cluster about as long): the tests share one, each leaving it stopped.
// Its parent is a mkdtemp (0700) folder, which the server must still be able to use.
let cluster: string;
beforeAll(async () => {
  const parent = await mkdtemp(path.join(tmpdir(), 'embedded-pg-'));
  cluster = path.join(parent, 'data');
  await (await startEmbeddedPostgres({ dataDir: cluster, persistent: true })).stop();
  return () => rm(parent, { recursive: true, force: true });
});

async function start(dataDir: string): Promise<EmbeddedPostgres> {
  const server = await startEmbeddedPostgres({ dataDir, persistent: true });
  cleanups.push(() => server.stop());
  return server;
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

type ChildMode = 'keep' | 'exit' | 'stop-then-exit-code-3';

/**
 * A separate node process (tsx) that starts the server on `dataDir`; then keeps it (as `npm start` would), calls
 * process.exit() without stopping it, or stops it and ends with process.exitCode = 3.
 */
async function startInChild(dataDir: string, mode: ChildMode = 'keep') {
  const script = path.join(path.dirname(dataDir), 'child.mts');
  const embedded = pathToFileURL(fileURLToPath(new URL('./embedded.ts', import.meta.url))).href;
  await writeFile(
    script,
    `import { startEmbeddedPostgres } from ${JSON.stringify(embedded)};
     const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, persistent: true });
     console.log('READY ' + server.adminUrl);
     if (process.argv[2] === 'keep') setInterval(() => {}, 60_000);
     if (process.argv[2] === 'exit') setTimeout(() => process.exit(0), 200);
     if (process.argv[2] === 'stop-then-exit-code-3') { await server.stop(); process.exitCode = 3; }`,
  );
  // `node --import tsx` rather than the tsx CLI: the CLI runs the script in a grandchild, which a SIGKILL would miss.
  const child = spawn(process.execPath, ['--import', 'tsx', script, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(async () => {
    child.kill('SIGTERM'); // lets the child stop its server; a no-op once it has exited
    await exited(child);
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  const adminUrl = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const ready = /READY (\S+)/.exec(output);
      if (ready) resolve(ready[1]!);
    });
    child.once('close', (code) => reject(new Error(`child exited (${code}) before the server was ready:\n${output}`)));
  });
  return { child, adminUrl, output: () => output };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

const exists = (file: string) => stat(file).then(() => true, () => false);

const postmasterPid = async (dataDir: string) =>
  Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);

describe('startEmbeddedPostgres', () => {
  it('initialises a new data dir once and keeps its data across stop and start', async () => {
    // beforeAll ran initdb and stopped the server.
    const initialisedAt = (await stat(path.join(cluster, 'PG_VERSION'))).mtimeMs;
    const first = await startEmbeddedPostgres({ dataDir: cluster, persistent: true });
    await query(first.adminUrl, `CREATE TABLE kept (body text); INSERT INTO kept VALUES ('survives')`);
    await first.stop();

    const second = await start(cluster);

    expect(second.adminUrl).toMatch(/^postgres:\/\/postgres:postgres@127\.0\.0\.1:\d+\/postgres$/);
    expect(await query(second.adminUrl, 'SELECT body FROM kept')).toEqual([{ body: 'survives' }]);
    expect((await stat(path.join(cluster, 'PG_VERSION'))).mtimeMs).toBe(initialisedAt);
    expect(await query(second.adminUrl, `SELECT current_setting('shared_preload_libraries') AS libs`)).toEqual([
      { libs: 'pg_stat_statements' },
    ]);
  });

  it('recovers from a SIGKILLed owner: stops the orphaned server and starts again with the data intact', async () => {
    const { child, adminUrl } = await startInChild(cluster);
    await query(adminUrl, `CREATE TABLE note (body text); INSERT INTO note VALUES ('before the crash')`);
    const orphanPid = await postmasterPid(cluster);

    child.kill('SIGKILL');
    await exited(child);
    expect(isProcessAlive(orphanPid)).toBe(true); // the orphan still serves on the old port
    expect(await query(adminUrl, 'SELECT 1 AS up')).toEqual([{ up: 1 }]);

    const server = await start(cluster);

    await expect(query(adminUrl, 'SELECT 1')).rejects.toThrow(); // the orphan is gone…
    expect(await postmasterPid(cluster)).not.toBe(orphanPid); // …and the new server owns the dir
    expect(await query(server.adminUrl, 'SELECT body FROM note')).toEqual([{ body: 'before the crash' }]);
  });

  // After a reboot or a SIGKILLed postmaster the pid is dead, or by now belongs to an unrelated process (pid 1 here).
  it.each([['dead', 2 ** 22 + 1], ['reused', 1]])('removes a stale postmaster.pid whose pid is %s', async (_, pid) => {
    await writeFile(path.join(cluster, 'postmaster.pid'), `${pid}\n${cluster}\n`);

    const server = await start(cluster);

    expect(await query(server.adminUrl, 'SELECT 1 AS up')).toEqual([{ up: 1 }]);
  });

  it('refuses to take over a data dir whose server belongs to a live process', async () => {
    await startInChild(cluster);

    await expect(startEmbeddedPostgres({ dataDir: cluster, persistent: true })).rejects.toThrow(/is in use by PostgreSQL/);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('stops the server when the owning process gets %s', async (signal) => {
    const { child } = await startInChild(cluster);
    const pid = await postmasterPid(cluster);

    child.kill(signal);
    await exited(child);

    expect(isProcessAlive(pid)).toBe(false);
    expect(await exists(path.join(cluster, 'postmaster.pid'))).toBe(false);
  });

  it('stops the server when the owning process calls process.exit() without stopping it', async () => {
    const { child } = await startInChild(cluster, 'exit');

    await exited(child);

    // Asked synchronously on exit; the postmaster finishes shutting down (and removes its pid file) a moment later.
    await expect.poll(() => exists(path.join(cluster, 'postmaster.pid')), { timeout: 10_000 }).toBe(false);
  });

  it("keeps the process's exit code (the package's own hooks would exit 0)", async () => {
    const { child, output } = await startInChild(cluster, 'stop-then-exit-code-3');
    await exited(child);

    expect(child.exitCode).toBe(3);
    expect(output()).not.toMatch(/Error/);
  });
});

describe('ensureDatabase', () => {
  it('creates a database once even when asked concurrently', async () => {
    const adminUrl = inject('adminUrl');
    const name = `ensure_${Date.now()}`;
    cleanups.push(() => query(adminUrl, `DROP DATABASE ${name} WITH (FORCE)`));

    const urls = await Promise.all([1, 2, 3, 4].map(() => ensureDatabase(adminUrl, name)));

    expect(new Set(urls)).toEqual(new Set([databaseUrl(adminUrl, name)]));
    expect(await query(adminUrl, `SELECT count(*)::int AS n FROM pg_database WHERE datname = '${name}'`)).toEqual([{ n: 1 }]);
  });
});
