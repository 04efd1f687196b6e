/**
 * The benchmark harness (`npm run bench`, see bench/run.ts for the flags): one embedded PostgreSQL, one generated
 * data set, our API (production mode), a raw node:http + pg server and PostGraphile 4.14 each in a child process,
 * autocannon at fixed concurrency, and per workload: req/s and its ratio to the raw server, p50/p99, SQL statements
 * per request (pg_stat_statements), rows read (pg_stat_user_tables) vs rows returned (pg_stat_statements), peak RSS
 * and CPU per request of the server process (/proc). Plus live events: graphql-ws subscribers on one and two processes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { createClient, type Client } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { ensureLocalSigningKey } from '../core/auth/keys.ts';
import { mintToken } from '../core/auth/mint.ts';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../core/auth/verify.ts';
import { ensureDatabase, startEmbeddedPostgres } from '../core/db/embedded.ts';
import { prepareDatabase } from '../core/db/migrate.ts';
import { mulberry32 } from '../core/seed/demo.ts';
import { insightsConfigSchema } from '../plugins/insights/config.ts';
import { metricsSql } from '../plugins/insights/metrics-sql.ts';
import { generate, SERVICE_ID, SIZES, type BenchSize, type GeneratedData } from './generate.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH = fileURLToPath(new URL('.', import.meta.url));
const PG4_DIR = join(BENCH, 'postgraphile4');

export const WORKLOADS = ['a', 'b50', 'b200', 'c', 'd', 'e', 'floor'] as const;
export type Workload = (typeof WORKLOADS)[number];
type ServerKind = 'api' | 'raw' | 'postgraphile';

export interface BenchOptions {
  size: keyof typeof SIZES | BenchSize;
  seconds: number;
  connections: number;
  only?: Workload[];
  subscribers: number;
  /** Events sent to the subscribers per setting (after one probe event). */
  events?: number;
  warmupRequests?: number;
  /**
   * Keep one process per server across workloads (the smoke test: fewer start-ups). Rows read then come from table
   * counters a live backend may not have flushed yet, so they can be low; the full run restarts every server.
   */
  reuseServers?: boolean;
  log?: (line: string) => void;
}

export interface Figures {
  workload: Workload;
  server: string;
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  failures: number;
  statementsPerRequest: number;
  queriesPerRequest: number;
  rowsReadPerRequest: number;
  rowsReturnedPerRequest: number;
  peakRssMb: number;
  cpuMsPerRequest: number;
  note?: string;
}

export interface SubscriptionFigures {
  setting: string;
  subscribers: number;
  deliveries: number;
  expected: number;
  /** From sending the mutation. */
  p50: number;
  p99: number;
  max: number;
  /** From the event's appearance on the bus (NOTIFY or Redis), heard by the bench itself. */
  publishedP50: number;
  publishedP99: number;
  publishedMax: number;
  mutationP50: number;
  /**
   * Growth per idle subscriber, both readings after a full GC: resident memory, the V8 heap, and memory outside it
   * (buffers). Apart, because the external memory the warm-up leaves can go between the readings and hide the heap's
   * growth: summed, they showed 3.1–3.9 KB where the heap alone grew 11.6 KB.
   */
  kbPerSubscriber: number;
  heapKbPerSubscriber: number;
  externalKbPerSubscriber: number;
}

/** One layer of the fixed stack alone (bench/floor-server.ts). */
export interface FloorFigures {
  layer: FloorLayer;
  label: string;
  requests: number;
  rps: number;
  p50: number;
  cpuMsPerRequest: number;
  failures: number;
}

const FLOOR_LAYERS = {
  reference: 'raw node:http + pg: the storefront read (a) again, as this table\'s reference',
  http: 'node:http, a constant JSON answer',
  yoga: 'graphql-yoga, one field resolving to a constant',
  pg: 'node:http + pg: one customer by id (named prepared statement)',
  prisma: 'node:http + Prisma: the same customer by findUnique (named statement)',
  yogaPrisma: 'graphql-yoga + Prisma: `customer(id)` resolved by that findUnique',
} as const;
type FloorLayer = keyof typeof FLOOR_LAYERS;

export interface PosInvariants {
  server: string;
  completed: number;
  awarded: number;
  missingAwards: number;
  drainSeconds?: number;
  endToEndPerSecond?: number;
}

export interface BenchResult {
  data: GeneratedData;
  figures: Figures[];
  subscriptions: SubscriptionFigures[];
  floor: FloorFigures[];
  pos: PosInvariants[];
  ledger: { mismatched: number; negative: number; accounts: number };
  hq: { psqlMs: number[]; rawServerMs: number | null; statement: boolean; note: string } | null;
  sameJson: Record<string, string>;
  skipped: string[];
  loadBefore: number[];
  loadAfter: number[];
  markdown: string;
}

// ------------------------------------------------------------------------------------------------------------------
// Processes and /proc

interface Child {
  url: string;
  pid: number;
  /** process.memoryUsage() of the child right after a full GC, in MB. */
  settledMemory(): Promise<{ rss: number; heap: number; external: number }>;
  stop(): Promise<void>;
}

async function startChild(script: string, env: Record<string, string | undefined>, log: (line: string) => void): Promise<Child> {
  const child: ChildProcess = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), '--expose-gc', '--import', 'tsx', join(BENCH, script)], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', ...env } as NodeJS.ProcessEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stopping = false;
  const stderr: string[] = [];
  const memoryWaiters: ((usage: NodeJS.MemoryUsage) => void)[] = [];
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      // A server dying mid-workload shows up as failed requests; its last words say why.
      if (!stopping) log(`  [${script}] exited (${signal ?? code}):\n${stderr.join('\n')}`);
      resolve();
    }),
  );
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr.push(line);
    if (stderr.length > 50) stderr.shift();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 120 s\n${stderr.join('\n')}`)), 120_000);
    void exited.then(() => reject(new Error(`${script} exited before READY\n${stderr.join('\n')}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^READY (\S+)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      } else if (line.startsWith('MEMORY ')) {
        memoryWaiters.shift()?.(JSON.parse(line.slice('MEMORY '.length)) as NodeJS.MemoryUsage);
      } else log(`  [${script}] ${line}`);
    });
  });
  return {
    url,
    pid: child.pid!,
    settledMemory: async () => {
      const usage = new Promise<NodeJS.MemoryUsage>((resolve) => memoryWaiters.push(resolve));
      child.kill('SIGUSR2');
      const { rss, heapUsed, external } = await usage;
      return { rss: rss / 2 ** 20, heap: heapUsed / 2 ** 20, external: external / 2 ** 20 };
    },
    stop: async () => {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime, stime
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

function sampleRss(pid: number) {
  let peak = 0;
  const tick = () => void rssMb(pid).then((mb) => (peak = Math.max(peak, mb)));
  tick();
  const timer = setInterval(tick, 100);
  return async () => {
    clearInterval(timer);
    peak = Math.max(peak, await rssMb(pid));
    return peak;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const gid = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');

// ------------------------------------------------------------------------------------------------------------------
// Database statistics

class Stats {
  constructor(readonly admin: pg.Client) {}
  async reset() {
    await this.admin.query('SELECT pg_stat_statements_reset()');
    await this.admin.query('SELECT pg_stat_reset()');
  }
  /** Call after the server process has exited: a backend flushes its table counters when it ends. */
  async read() {
    await this.admin.query('SELECT pg_stat_clear_snapshot()');
    const { rows: [s] } = await this.admin.query(`
      SELECT coalesce(sum(calls), 0)::float8 AS calls,
             coalesce(sum(calls) FILTER (WHERE query ~* '^\\s*(BEGIN|COMMIT|ROLLBACK|START|SET|RESET|SHOW|LISTEN|UNLISTEN|DISCARD|DEALLOCATE|SAVEPOINT|RELEASE|SELECT set_config)'), 0)::float8 AS utility,
             coalesce(sum(rows) FILTER (WHERE query ~* '^\\s*(SELECT|WITH)'), 0)::float8 AS returned
      FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query !~* 'pg_stat'`);
    const { rows: [t] } = await this.admin.query(`SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)::float8 AS read FROM pg_stat_user_tables`);
    return { calls: s.calls as number, utility: s.utility as number, returned: s.returned as number, read: t.read as number };
  }
}

// ------------------------------------------------------------------------------------------------------------------
// Requests per server and workload

const CUSTOMER_FIELDS = `id name membership { tier { code name } }`;
const VISIT_FIELDS = `visits(first: 10) { edges { node { id status scheduledStart total { amount currencyCode } } } }`;
const API_ONE = `query Storefront($id: ID!) { node(id: $id) { ... on Customer { ${CUSTOMER_FIELDS} points { balance } ${VISIT_FIELDS} } } }`;
const API_LIST = `query List($first: Int!) { customers(first: $first, orderBy: { field: NAME, direction: ASC }) { edges { node { ${CUSTOMER_FIELDS} ${VISIT_FIELDS} } } } }`;
/** (d): a year of every store, as HQ asks for it; the raw server runs the statement the insights plugin builds for it. */
const HQ = { from: '2025-11-01', to: '2026-10-31', period: 'YEAR', churnDays: 90, includeTotal: false } as const;
const API_HQ = `query Hq($from: Date!, $to: Date!, $period: InsightsPeriod, $churnDays: Int, $includeTotal: Boolean) {
  storeMetrics(from: $from, to: $to, period: $period, churnDays: $churnDays, includeTotal: $includeTotal) {
    storeCode periodStart repurchaseRate atRiskCustomers churnedCustomers } }`;
const API_POS = `mutation Pos($input: CompleteVisitInput!) { completeVisit(input: $input) { visit { id status total { amount currencyCode } } userErrors { code } } }`;

const PG_VISITS = `visitsByCustomerId(first: 10, orderBy: [SCHEDULED_START_DESC, ID_DESC]) { nodes { id status scheduledStart totalMinor } }`;
const PG_TIER = `membershipByCustomerId { status } tierStateByCustomerId { tierLevelByOrgIdAndEarnedTierId { code name } }`;
const PG_ONE = `query Storefront($id: UUID!) { customerById(id: $id) { id name ${PG_TIER} pointsAccountByCustomerId { balance } ${PG_VISITS} } }`;
const PG_LIST = `query List($first: Int!) { allCustomers(first: $first, orderBy: [NAME_ASC, ID_ASC]) { nodes { id name ${PG_TIER} ${PG_VISITS} } } }`;
const PG_POS = `mutation Pos($input: BenchCompleteVisitInput!) { benchCompleteVisit(input: $input) { visit { id status totalMinor } } }`;

interface RequestPlan {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
}

type Planner = () => RequestPlan;

function gql(query: string, variables: Record<string, unknown>): RequestPlan {
  return { method: 'POST', path: '/graphql', body: JSON.stringify({ query, variables }) };
}

function planner(server: ServerKind, workload: Workload, data: GeneratedData, pos: { next: () => string | null }): Planner | null {
  const random = mulberry32(0xbe7c4 + workload.length);
  const customer = () => data.customerIds[Math.floor(random() * data.customerIds.length)]!;
  const posVisit = () => pos.next() ?? data.posVisitIds[0]!; // exhausted: fails with a user error, counted
  switch (workload) {
    case 'a':
      if (server === 'api') return () => gql(API_ONE, { id: gid('Customer', customer()) });
      if (server === 'raw') return () => ({ method: 'GET', path: `/customer/${customer()}` });
      return () => gql(PG_ONE, { id: customer() });
    case 'b50':
    case 'b200': {
      const first = workload === 'b50' ? 50 : 200;
      if (server === 'api') return () => gql(API_LIST, { first });
      if (server === 'raw') return () => ({ method: 'GET', path: `/customers?first=${first}` });
      return () => gql(PG_LIST, { first });
    }
    case 'c':
      if (server === 'api') {
        return () => gql(API_POS, { input: { visitId: gid('Visit', posVisit()), idempotencyKey: randomUUID(), lineItems: [{ serviceId: gid('Service', SERVICE_ID) }] } });
      }
      if (server === 'raw') return () => ({ method: 'POST', path: '/pos/complete', body: JSON.stringify({ visitId: posVisit(), idempotencyKey: randomUUID() }) });
      return () => gql(PG_POS, { input: { pVisitId: posVisit(), pIdempotencyKey: randomUUID() } });
    case 'd':
      if (server === 'api') return () => gql(API_HQ, HQ);
      if (server === 'raw') return () => ({ method: 'GET', path: '/hq' });
      return null;
    default:
      return null;
  }
}

/** The JSON a server answers to one request (for the same-JSON check and for failing fast on a broken query). */
async function fetchOne(baseUrl: string, plan: RequestPlan, token: string | null): Promise<unknown> {
  const url = new URL(plan.path, baseUrl);
  const res = await fetch(url, {
    method: plan.method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: plan.body,
  });
  return res.json();
}

function failed(body: unknown): string | null {
  const text = JSON.stringify(body);
  if (/"errors":\[/.test(text)) return text.slice(0, 400);
  if (/"userErrors":\[\{/.test(text)) return text.slice(0, 400);
  return null;
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));
}

async function load(url: string, plan: Planner, token: string | null, opts: { connections: number; seconds?: number; amount?: number }) {
  let failures = 0;
  const result = await autocannon({
    url,
    connections: opts.connections,
    ...(opts.amount ? { amount: opts.amount } : { duration: opts.seconds }),
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    requests: [
      {
        setupRequest: (request) => {
          const next = plan();
          return { ...request, method: next.method, path: next.path, body: next.body } as never;
        },
        onResponse: (status, body) => {
          if (status !== 200 || /"errors":\[|"userErrors":\[\{/.test(body)) failures += 1;
        },
      },
    ],
  });
  return { result, failures };
}

// ------------------------------------------------------------------------------------------------------------------

const BENCH_COMPLETE_VISIT_SQL = `
CREATE OR REPLACE FUNCTION bench_complete_visit(p_visit_id uuid, p_idempotency_key text) RETURNS visit
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v record;
  done visit;
  pts integer;
BEGIN
  SELECT vv.customer_id, vv.store_id, vv.org_id, vv.status, pa.membership_id,
         coalesce(tl.points_multiplier_pct, 100) AS multiplier, s.price_minor
    INTO v
    FROM visit vv JOIN service s ON s.id = '${SERVICE_ID}'
    LEFT JOIN points_account pa ON pa.customer_id = vv.customer_id
    LEFT JOIN tier_state ts ON ts.customer_id = vv.customer_id
    LEFT JOIN tier_level tl ON tl.id = CASE WHEN ts.override_until > now() THEN ts.override_tier_id ELSE ts.earned_tier_id END
   WHERE vv.id = p_visit_id FOR UPDATE OF vv;
  IF v.status IS DISTINCT FROM 'CHECKED_IN' THEN RAISE EXCEPTION 'visit is not CHECKED_IN' USING ERRCODE = 'P0001'; END IF;
  INSERT INTO idempotency_record (org_id, principal_key, key, operation, request_hash, result)
    VALUES (v.org_id, 'postgraphile', p_idempotency_key, 'completeVisit', p_visit_id::text, '{}');
  DELETE FROM visit_line WHERE visit_id = p_visit_id AND position > 0;
  INSERT INTO visit_line (org_id, visit_id, position, kind, service_id, description, quantity, unit_price_minor, amount_minor)
    VALUES (v.org_id, p_visit_id, 0, 'SERVICE', '${SERVICE_ID}', 'Hydrating facial 补水护理', 1, v.price_minor, v.price_minor)
    ON CONFLICT (visit_id, position) DO UPDATE SET kind = EXCLUDED.kind, service_id = EXCLUDED.service_id,
      product_id = NULL, description = EXCLUDED.description, quantity = 1,
      unit_price_minor = EXCLUDED.unit_price_minor, discount_minor = 0, amount_minor = EXCLUDED.amount_minor;
  UPDATE visit SET status = 'COMPLETED', completed_at = now(), total_minor = v.price_minor, updated_at = now()
   WHERE id = p_visit_id RETURNING * INTO done;
  INSERT INTO customer_fact (customer_id, org_id, visit_count, first_visit_at, last_visit_at, total_spend_minor)
    VALUES (v.customer_id, v.org_id, 1, done.completed_at, done.completed_at, v.price_minor)
    ON CONFLICT (customer_id) DO UPDATE SET visit_count = customer_fact.visit_count + 1,
      first_visit_at = LEAST(customer_fact.first_visit_at, EXCLUDED.first_visit_at),
      last_visit_at = GREATEST(customer_fact.last_visit_at, EXCLUDED.last_visit_at),
      total_spend_minor = customer_fact.total_spend_minor + EXCLUDED.total_spend_minor;
  INSERT INTO domain_event (org_id, type, aggregate_type, aggregate_id, stream_key, payload, actor)
    VALUES (v.org_id, 'bench.visit.completed', 'Visit', p_visit_id, v.customer_id::text,
            jsonb_build_object('visitId', p_visit_id, 'customerId', v.customer_id, 'totalMinor', v.price_minor), 'postgraphile');
  IF v.membership_id IS NOT NULL THEN
    pts := floor((v.price_minor / 100.0) * (v.multiplier / 100.0));
    WITH e AS (
      INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, source_ref, dedupe_key, store_id, actor, reason)
      VALUES (v.org_id, v.membership_id, v.customer_id, 'EARN', pts, 'VISIT', p_visit_id::text, 'visit:' || p_visit_id || ':earn', v.store_id, 'postgraphile', 'visit spend')
      RETURNING id, created_at, amount)
    INSERT INTO points_lot (org_id, account_id, earn_entry_id, earned_at, expires_at, original, remaining)
    SELECT v.org_id, v.membership_id, id, created_at, created_at + interval '12 months', amount, amount FROM e;
  END IF;
  RETURN done;
END $$;`;

async function ensurePostgraphileInstalled(log: (line: string) => void): Promise<string | null> {
  if (existsSync(join(PG4_DIR, 'node_modules', 'postgraphile', 'package.json'))) return null;
  log('Installing PostGraphile 4.14 into bench/postgraphile4 (first run only)…');
  try {
    await promisify(execFile)('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: PG4_DIR, timeout: 300_000 });
    return null;
  } catch (error) {
    return `PostGraphile 4.14 could not be installed: ${(error as Error).message.split('\n')[0]}`;
  }
}

async function redisReachable(): Promise<boolean> {
  const { Redis } = await import('ioredis');
  const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const only = new Set<Workload>(options.only?.length ? options.only : WORKLOADS);
  const size = typeof options.size === 'string' ? SIZES[options.size] : options.size;
  const loadBefore = loadavg();
  const skipped: string[] = [];
  const figures: Figures[] = [];
  const subscriptions: SubscriptionFigures[] = [];
  const floor: FloorFigures[] = [];
  const posChecks: PosInvariants[] = [];
  const sameJson: Record<string, string> = {};
  let hq: BenchResult['hq'] = null;

  const dir = await mkdtemp(join(tmpdir(), 'crm-bench-'));
  const server = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), persistent: false });
  let admin: pg.Client | null = null;
  try {
    const url = await ensureDatabase(server.adminUrl, 'bench');
    await prepareDatabase(url);
    log(`Generating ${JSON.stringify(size)}…`);
    const data = await generate(url, size, log);
    log(`Generated in ${data.seconds.toFixed(0)} s.`);
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await admin.query(BENCH_COMPLETE_VISIT_SQL);
    const stats = new Stats(admin);

    const keys = await ensureLocalSigningKey(join(dir, 'keys'));
    const owner = { kind: 'STAFF' as const, orgId: data.orgId, staffId: data.ownerStaffId, role: 'OWNER' as const, storeIds: [] };
    const token = await mintToken(keys, owner, { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, expiresIn: '24h' });
    const plugins = ['points', 'tiers', 'insights'];
    const apiEnv = { DATABASE_URL: url, BENCH_JWKS_FILE: keys.jwksPath, BENCH_PLUGINS: plugins.join(','), BENCH_POOL_SIZE: String(options.connections), BENCH_WORKER_CONCURRENCY: '0' };
    const hqStatement = only.has('d') ? hqSql(data.orgId) : null;
    const rawEnv = { DATABASE_URL: url, BENCH_ORG_ID: data.orgId, BENCH_SERVICE_ID: SERVICE_ID, BENCH_POOL_SIZE: String(options.connections), BENCH_HQ_SQL: hqStatement ? JSON.stringify({ text: hqStatement.text, values: hqStatement.values }) : '' };
    const pgEnv = { DATABASE_URL: url, BENCH_POOL_SIZE: String(options.connections) };

    let servers: ServerKind[] = ['api', 'raw', 'postgraphile'];
    const pgProblem = await ensurePostgraphileInstalled(log);
    if (pgProblem) {
      skipped.push(pgProblem);
      servers = servers.filter((s) => s !== 'postgraphile');
    }
    const start = (kind: ServerKind, extra: Record<string, string> = {}) =>
      kind === 'api' ? startChild('api-server.ts', { ...apiEnv, ...extra }, log)
        : kind === 'raw' ? startChild('raw-server.ts', { ...rawEnv, ...extra }, log)
          : startChild('postgraphile.ts', { ...pgEnv, ...extra }, log);
    const baseOf = (kind: ServerKind, child: Child) => (kind === 'raw' ? child.url : new URL(child.url).origin);
    const tokenOf = (kind: ServerKind) => (kind === 'api' ? token : null);

    // POS visits: a disjoint slice per server.
    const posSlices = new Map<ServerKind, string[]>();
    const third = Math.floor(data.posVisitIds.length / 3);
    (['api', 'raw', 'postgraphile'] as const).forEach((kind, i) => posSlices.set(kind, data.posVisitIds.slice(i * third, (i + 1) * third)));
    const posUsed = new Map<ServerKind, number>();

    const kept = new Map<ServerKind, Child>();
    const samples: Partial<Record<Workload, Partial<Record<ServerKind, unknown>>>> = {};
    for (const workload of (['a', 'b50', 'b200', 'c', 'd'] as const).filter((w) => only.has(w))) {
      for (const kind of servers) {
        const slice = posSlices.get(kind)!;
        let cursor = posUsed.get(kind) ?? 0;
        const pos = { next: () => (cursor < slice.length ? slice[cursor++]! : null) };
        const plan = planner(kind, workload, data, pos);
        if (!plan) continue;
        const name = kind === 'api' ? 'our API' : kind === 'raw' ? 'raw node:http + pg' : 'PostGraphile 4.14';
        log(`(${workload}) ${name}…`);
        const reused = options.reuseServers ? kept.get(kind) : undefined;
        const child = reused ?? await start(kind).catch((error: Error) => {
          skipped.push(`${name} did not start for (${workload}): ${error.message.split('\n').slice(0, 3).join(' ')}`);
          return null;
        });
        if (!child) continue;
        if (options.reuseServers) kept.set(kind, child);
        try {
          const base = baseOf(kind, child);
          // One request first: its JSON is compared across servers, and a failing query stops this server here.
          const sample = await fetchOne(base, plan(), tokenOf(kind));
          const problem = failed(sample);
          if (problem) {
            skipped.push(`${name} (${workload}): the request fails: ${problem}`);
            continue;
          }
          (samples[workload] ??= {})[kind] = sample;
          // (d) sends one request at a time, as psql runs the statement it is compared with: two at once on two cores
          // made its time depend on the other's (our API at 0.86×, 0.94× and 1.17× psql in three runs).
          await load(base, plan, tokenOf(kind), { connections: workload === 'd' ? 1 : Math.min(16, options.connections), amount: workload === 'd' ? 2 : workload === 'c' ? Math.min(50, options.warmupRequests ?? 200) : (options.warmupRequests ?? 200) });
          await stats.reset();
          const cpu0 = await cpuSeconds(child.pid);
          const peak = sampleRss(child.pid);
          const seconds = workload === 'd' ? Math.max(2 * options.seconds, 2) : options.seconds;
          const { result, failures } = await load(base, plan, tokenOf(kind), { connections: workload === 'd' ? 1 : options.connections, seconds });
          // autocannon stops with requests in flight; the server still runs them. Their statements and CPU are
          // counted once they finish, so they are counted as requests too (at 200 customers, ~100 requests in a
          // run, counting only completed ones added 0.8 statements per request).
          await sleep(Math.min(10_000, 500 + 2 * result.latency.p99));
          const cpu1 = await cpuSeconds(child.pid);
          const peakRssMb = await peak();
          if (!options.reuseServers) await child.stop();
          await sleep(500);
          const s = await stats.read();
          const n = Math.max(1, (result.requests as { sent?: number }).sent ?? result.requests.total);
          figures.push({
            workload, server: name, requests: result.requests.total, seconds: result.duration, rps: result.requests.total / result.duration,
            p50: result.latency.p50, p99: result.latency.p99, failures: failures + result.errors + result.timeouts,
            statementsPerRequest: s.calls / n, queriesPerRequest: (s.calls - s.utility) / n,
            rowsReadPerRequest: s.read / n, rowsReturnedPerRequest: s.returned / n, peakRssMb, cpuMsPerRequest: ((cpu1 - cpu0) * 1000) / n,
            note: workload === 'c' && cursor >= slice.length ? 'ran out of CHECKED_IN visits: later requests failed' : undefined,
          });
          posUsed.set(kind, cursor);
          if (workload === 'c') posChecks.push(await posCheck(admin, name, slice.slice(0, cursor)));
        } finally {
          if (!options.reuseServers) await child.stop();
        }
        // The API awards points in a job after completeVisit commits: drain the jobs with the API's worker.
        if (workload === 'c' && kind === 'api' && posChecks.at(-1)?.server === 'our API') {
          await kept.get('api')?.stop();
          kept.delete('api');
          const check = posChecks.at(-1)!;
          log('  draining the points jobs with the API worker (concurrency 4)…');
          const t0 = performance.now();
          const worker = await start('api', { BENCH_WORKER_CONCURRENCY: '4' });
          try {
            for (;;) {
              const { rows: [{ pending }] } = await admin.query(`SELECT count(*)::int AS pending FROM graphile_worker.jobs`);
              if (pending === 0) break;
              if (performance.now() - t0 > 600_000) throw new Error(`jobs not drained after 600 s (${pending} left)`);
              await sleep(200);
            }
          } finally {
            await worker.stop();
          }
          const drained = (performance.now() - t0) / 1000;
          const after = await posCheck(admin, 'our API', posSlices.get('api')!.slice(0, posUsed.get('api') ?? 0));
          const f = figures.find((x) => x.workload === 'c' && x.server === 'our API')!;
          Object.assign(check, after, { drainSeconds: drained, endToEndPerSecond: after.awarded / (f.seconds + drained) });
        }
      }
    }
    for (const child of kept.values()) await child.stop();
    for (const [workload, byServer] of Object.entries(samples)) {
      if (workload === 'c' || workload === 'd' || !byServer.api || !byServer.raw) continue;
      sameJson[workload] = canonical(byServer.api) === canonical(byServer.raw) ? 'identical' : `DIFFERENT: api ${JSON.stringify(byServer.api).slice(0, 300)} … raw ${JSON.stringify(byServer.raw).slice(0, 300)}`;
    }

    if (hqStatement) hq = await hqReference(url, hqStatement, figures, log);
    if (only.has('floor')) {
      const reference = { start: () => start('raw'), plan: planner('raw', 'a', data, { next: () => null })! };
      floor.push(...(await floorRun(data, pgEnv, reference, options, log)));
    }
    if (only.has('e')) {
      const notify: EventBus = { kind: 'notify', url };
      const redis: EventBus = { kind: 'redis', url: 'redis://127.0.0.1:6379', orgId: data.orgId };
      const startApi = (bus: EventBus) => () => start('api', bus.kind === 'redis' ? { REDIS_URL: bus.url } : {});
      const settings: { name: string; reader: 'same' | ServerKind; bus: EventBus }[] = [
        { name: 'raw `ws` server delivers (baseline)', reader: 'raw', bus: notify },
        { name: 'our API, one process', reader: 'same', bus: notify },
        { name: 'our API, two processes, PostgreSQL NOTIFY', reader: 'api', bus: notify },
      ];
      if (await redisReachable()) settings.push({ name: 'our API, two processes, Redis', reader: 'api', bus: redis });
      else skipped.push('Redis at 127.0.0.1:6379 is not reachable: the Redis setting of (e) was not run');
      for (const setting of settings) {
        log(`(e) ${setting.name}: ${options.subscribers} subscribers…`);
        const reader = setting.reader === 'same' ? null : setting.reader === 'raw' ? () => start('raw') : startApi(setting.bus);
        subscriptions.push(await subscriptionRun(setting.name, startApi(setting.bus), reader, setting.bus, data, token, options.subscribers, options.events ?? 5, log));
      }
    }

    const ledger = (await admin.query(`
      SELECT count(*) FILTER (WHERE a.balance <> coalesce(e.total, 0))::int AS mismatched, count(*) FILTER (WHERE a.balance < 0)::int AS negative, count(*)::int AS accounts
      FROM points_account a LEFT JOIN (SELECT account_id, sum(amount) AS total FROM points_entry GROUP BY account_id) e ON e.account_id = a.membership_id`)).rows[0];
    const loadAfter = loadavg();
    const result: BenchResult = { data, figures, subscriptions, floor, pos: posChecks, ledger, hq, sameJson, skipped, loadBefore, loadAfter, markdown: '' };
    result.markdown = report(result, options);
    return result;
  } finally {
    await admin?.end().catch(() => {});
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Each layer of the fixed stack alone, loaded like the workloads (same connections and seconds), after the raw
 * server's storefront read again: the machine's speed drifts over a run, so the layers are compared with a
 * reference measured next to them.
 */
async function floorRun(
  data: GeneratedData, env: Record<string, string>, reference: { start: () => Promise<Child>; plan: Planner }, options: BenchOptions, log: (line: string) => void,
): Promise<FloorFigures[]> {
  const out: FloorFigures[] = [];
  const random = mulberry32(0xf1004);
  for (const layer of Object.keys(FLOOR_LAYERS) as FloorLayer[]) {
    log(`(floor) ${FLOOR_LAYERS[layer]}…`);
    const child = layer === 'reference' ? await reference.start() : await startChild('floor-server.ts', { ...env, FLOOR_LAYER: layer }, log);
    try {
      const customer = () => data.customerIds[Math.floor(random() * data.customerIds.length)]!;
      const plan: Planner = layer === 'reference' ? reference.plan
        : layer === 'http' || layer === 'yoga' ? () => gql('{ ping }', {})
          : layer === 'yogaPrisma' ? () => gql('query($id: ID!) { customer(id: $id) { id name phone } }', { id: customer() })
            : () => ({ method: 'GET', path: `/customer/${customer()}` });
      await load(child.url, plan, null, { connections: options.connections, amount: options.warmupRequests ?? 200 });
      const cpu0 = await cpuSeconds(child.pid);
      const { result, failures } = await load(child.url, plan, null, { connections: options.connections, seconds: options.seconds });
      await sleep(500);
      const n = Math.max(1, result.requests.total);
      out.push({
        layer, label: FLOOR_LAYERS[layer], requests: result.requests.total, rps: result.requests.total / result.duration, p50: result.latency.p50,
        cpuMsPerRequest: ((await cpuSeconds(child.pid)) - cpu0) * 1000 / n, failures: failures + result.errors + result.timeouts,
      });
    } finally {
      await child.stop();
    }
  }
  return out;
}

async function posCheck(admin: pg.Client, server: string, visitIds: string[]): Promise<PosInvariants> {
  const { rows: [r] } = await admin.query(`
    SELECT count(*) FILTER (WHERE v.status = 'COMPLETED')::int AS completed,
           count(e.id)::int AS awarded,
           count(*) FILTER (WHERE v.status = 'COMPLETED' AND pa.membership_id IS NOT NULL AND e.id IS NULL)::int AS missing
    FROM visit v LEFT JOIN points_account pa ON pa.customer_id = v.customer_id
    LEFT JOIN points_entry e ON e.org_id = v.org_id AND e.dedupe_key = 'visit:' || v.id || ':earn'
    WHERE v.id = ANY($1::uuid[])`, [visitIds]);
  return { server, completed: r.completed, awarded: r.awarded, missingAwards: r.missing };
}

interface HqStatement { text: string; values: unknown[]; note: string }

/** The statement the insights plugin's `storeMetrics` sends for HQ, with the plugin's default thresholds as the API has them. */
function hqSql(orgId: string): HqStatement {
  const sql = metricsSql({ orgId, storeIds: null, ...HQ, defaults: insightsConfigSchema.parse({}).defaults });
  return { text: sql.text, values: sql.values, note: `the insights plugin's metricsSql (plugins/insights/metrics-sql.ts), period ${HQ.period} ${HQ.from}…${HQ.to}, all stores` };
}

/** (d): the same statement through psql (the reference), next to the raw server's figures. */
async function hqReference(url: string, sql: HqStatement, figures: Figures[], log: (line: string) => void): Promise<BenchResult['hq']> {
  const literal = (v: unknown) => (v === null ? 'NULL' : typeof v === 'number' || typeof v === 'boolean' ? String(v) : `'${String(v).replace(/'/g, "''")}'`);
  const inlined = sql.text.replace(/\$(\d+)/g, (_m, n) => literal(sql.values[Number(n) - 1]));
  const file = join(tmpdir(), `bench-hq-${process.pid}.sql`);
  const runs = 5;
  await writeFile(file, `\\timing on\n\\o /dev/null\n${Array.from({ length: runs }, () => `${inlined};`).join('\n')}\n`);
  const psqlMs: number[] = [];
  try {
    const { stdout } = await promisify(execFile)('psql', ['-X', '-q', '-f', file, url], { maxBuffer: 10_000_000 });
    for (const match of stdout.matchAll(/Time: ([\d.]+) ms/g)) psqlMs.push(Number(match[1]));
  } catch (error) {
    log(`  psql failed: ${(error as Error).message.split('\n')[0]}`);
  } finally {
    await rm(file, { force: true });
  }
  const raw = figures.find((f) => f.workload === 'd' && f.server.startsWith('raw'));
  return { psqlMs, rawServerMs: raw ? raw.p50 : null, statement: true, note: sql.note };
}

/** Where (e)'s events travel between processes, so the bench can hear each one as it is published. */
type EventBus = { kind: 'notify'; url: string } | { kind: 'redis'; url: string; orgId: string };

/** Calls `heard` with the time each points event appears on the bus: the moment from which delivery is measured. */
async function listenToBus(bus: EventBus, heard: (at: number) => void): Promise<() => Promise<void>> {
  const onMessage = (message: string) => {
    const { data } = (bus.kind === 'notify' ? JSON.parse(message) : { data: JSON.parse(message) }) as { data: { aggregateType: string } };
    if (data.aggregateType === 'PointsAccount') heard(performance.now());
  };
  if (bus.kind === 'notify') {
    const client = new pg.Client({ connectionString: bus.url });
    client.on('notification', (n) => onMessage(n.payload ?? '{}'));
    client.on('error', () => {}); // the database stopping under it when the bench fails: that failure is reported
    await client.connect();
    await client.query('LISTEN crm_live_events');
    return () => client.end();
  }
  const { Redis } = await import('ioredis');
  const redis = new Redis(bus.url);
  redis.on('message', (_channel: string, message: string) => onMessage(message));
  await redis.subscribe(`domainEvent:${bus.orgId}`);
  return async () => void redis.disconnect();
}

/**
 * (e): `subscribers` graphql-ws clients, each on its own connection, on pointsChanged of one member; adjustPoints on
 * the writer (our API); the reader (our API, the same process or another, or the raw server) delivers.
 */
async function subscriptionRun(
  name: string, startWriter: () => Promise<Child>, startReader: (() => Promise<Child>) | null, bus: EventBus, data: GeneratedData, token: string,
  subscribers: number, events: number, log: (line: string) => void,
): Promise<SubscriptionFigures> {
  const writer = await startWriter();
  const reader = startReader ? await startReader() : writer;
  const clients: Client[] = [];
  const published = new Map<number, number>();
  let round = 0;
  const stopListening = await listenToBus(bus, (at) => void (published.has(round) || published.set(round, at)));
  try {
    const customerId = gid('Customer', data.memberIds[0]!);
    const wsUrl = new URL(reader.url);
    wsUrl.protocol = 'ws:';
    wsUrl.pathname = '/graphql';
    const mutate = async () => {
      const res = await fetch(writer.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({
          query: 'mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { balance userErrors { code } } }',
          variables: { input: { customerId, points: 1, reason: 'bench', idempotencyKey: randomUUID() } },
        }),
      });
      const body = await res.text();
      if (failed(JSON.parse(body))) throw new Error(`adjustPoints failed: ${body.slice(0, 300)}`);
    };
    const subscribe = (client: Client, next: () => void) =>
      client.subscribe(
        { query: `subscription($id: ID!) { pointsChanged(customerId: $id) { type delta balance } }`, variables: { id: customerId } },
        { next, error: (e) => log(`  subscriber error: ${JSON.stringify(e).slice(0, 200)}`), complete: () => {} },
      );
    const connect = () => createClient({ url: wsUrl.toString(), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0, lazy: false });
    const received = new Map<number, number[]>();
    // Warm-up: a few subscribers and one event, then gone, so the baseline RSS holds the code paths' warm-up.
    {
      const warm = Array.from({ length: Math.min(20, subscribers) }, connect);
      let got = 0;
      for (const c of warm) subscribe(c, () => void (got += 1));
      for (let i = 0; i < 10 && got < warm.length; i++) {
        await sleep(500);
        await mutate();
        await sleep(1000);
      }
      await Promise.all(warm.map((c) => c.dispose()));
      await sleep(500);
    }
    const before = await reader.settledMemory();
    for (let i = 0; i < subscribers; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, subscribers - i) }, async () => {
        const client = connect();
        clients.push(client);
        subscribe(client, () => void (received.get(round) ?? received.set(round, []).get(round)!).push(performance.now()));
      }));
    }
    // A probe event until every subscriber has it: they are all subscribed (graphql-ws does not acknowledge subscribe).
    const waitAll = async (r: number, timeoutMs: number) => {
      const deadline = performance.now() + timeoutMs;
      while ((received.get(r)?.length ?? 0) < subscribers && performance.now() < deadline) await sleep(20);
    };
    for (let probe = 0; probe < 10; probe++) {
      round = -1 - probe;
      await mutate();
      await waitAll(round, 3000);
      if ((received.get(round)?.length ?? 0) >= subscribers) break;
    }
    await sleep(1000);
    const idle = await reader.settledMemory();
    const fromSend: number[] = [];
    const fromPublish: number[] = [];
    const mutationMs: number[] = [];
    let delivered = 0;
    for (round = 1; round <= events; round++) {
      await sleep(300);
      const t0 = performance.now();
      await mutate();
      mutationMs.push(performance.now() - t0);
      await waitAll(round, 10_000);
      const times = received.get(round) ?? [];
      delivered += times.length;
      fromSend.push(...times.map((t) => t - t0));
      const at = published.get(round);
      if (at !== undefined) fromPublish.push(...times.map((t) => t - at));
    }
    for (const list of [fromSend, fromPublish, mutationMs]) list.sort((a, b) => a - b);
    return {
      setting: name, subscribers, deliveries: delivered, expected: subscribers * events,
      p50: percentile(fromSend, 50), p99: percentile(fromSend, 99), max: fromSend.at(-1) ?? NaN,
      publishedP50: percentile(fromPublish, 50), publishedP99: percentile(fromPublish, 99), publishedMax: fromPublish.at(-1) ?? NaN,
      mutationP50: percentile(mutationMs, 50),
      kbPerSubscriber: ((idle.rss - before.rss) * 1024) / subscribers,
      heapKbPerSubscriber: ((idle.heap - before.heap) * 1024) / subscribers,
      externalKbPerSubscriber: ((idle.external - before.external) * 1024) / subscribers,
    };
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await stopListening();
    await writer.stop();
    if (reader !== writer) await reader.stop();
  }
}

// ------------------------------------------------------------------------------------------------------------------
// The report

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '–');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–');

export function report(r: BenchResult, o: BenchOptions): string {
  const lines: string[] = [];
  const sz = r.data.size;
  lines.push(`# Benchmark: our API, a raw node:http + pg server and PostGraphile 4.14 on one database`, '');
  lines.push(`- Data: ${sz.stores} stores, ${sz.customers} customers (80% members with points and a tier), ${sz.visits} visits, ${sz.ledger} ledger rows, ${sz.posVisits} CHECKED_IN visits for POS; generated in ${f0(r.data.seconds)} s (deterministic).`);
  lines.push(`- Load: autocannon, ${o.connections} connections, ${o.seconds} s per server and workload (HQ: one connection for twice as long, one request at a time as psql runs its statement), after a warm-up; each server a fresh child process with a pool of ${o.connections}.`);
  lines.push(`- Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}; load average before ${r.loadBefore.map(f2).join(' / ')}, after ${r.loadAfter.map(f2).join(' / ')} (shared with other test runs: compare within this run).`);
  lines.push(`- Our API: production mode, plugins points + tiers + insights, OWNER token, worker off while measuring. Raw server: no auth, no GraphQL, named prepared statements. PostGraphile: owner role, default options.`);
  lines.push(`- PostGraphile builds each response's JSON in PostgreSQL (one row per statement), so its rows returned are ~1 and its read ÷ returned is not comparable.`);
  lines.push(`- Statements per request: every statement pg_stat_statements counts (BEGIN/COMMIT/SET included); "queries" leaves those out. Rows read: tuples fetched by scans (pg_stat_user_tables); rows returned: rows of SELECT/WITH statements (pg_stat_statements). CPU and peak RSS: the server process (/proc).`, '');
  const names: Record<string, string> = { a: '(a) storefront: one customer, tier, balance, last 10 visits', b50: '(b) 50 customers × last 10 visits + tier', b200: '(b) 200 customers × last 10 visits + tier', c: '(c) POS: complete a visit and award points', d: '(d) HQ: per-store repurchase and churn risk (one statement)' };
  for (const w of ['a', 'b50', 'b200', 'c', 'd'] as const) {
    const rows = r.figures.filter((f) => f.workload === w);
    if (!rows.length) continue;
    const raw = rows.find((f) => f.server.startsWith('raw'))?.rps ?? NaN;
    lines.push(`## ${names[w]}`, '');
    lines.push('| server | req/s | × raw | p50 ms | p99 ms | stmts/req | queries/req | rows read/req | rows returned/req | read ÷ returned | peak RSS MB | CPU ms/req | failed |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const f of rows) {
      lines.push(`| ${f.server} | ${f0(f.rps)} | ${f2(f.rps / raw)} | ${f1(f.p50)} | ${f1(f.p99)} | ${f2(f.statementsPerRequest)} | ${f2(f.queriesPerRequest)} | ${f1(f.rowsReadPerRequest)} | ${f1(f.rowsReturnedPerRequest)} | ${f2(f.rowsReadPerRequest / f.rowsReturnedPerRequest)} | ${f0(f.peakRssMb)} | ${f2(f.cpuMsPerRequest)} | ${f.failures}${f.note ? ` (${f.note})` : ''} |`);
    }
    if (r.sameJson[w]) lines.push('', `Same JSON from our API and the raw server: ${r.sameJson[w]}.`);
    if (w === 'c') {
      lines.push('', 'What "one transaction" means here: the raw server and PostGraphile (a PL/pgSQL function) complete the visit and write the points entry and lot in ONE transaction. Our API is event-driven: completeVisit commits the visit, facts and the outbox event in one transaction; the points plugin awards in its own transaction when the job runs. req/s above is completeVisit alone (worker off); the drain below ran the points jobs afterwards with the API\'s worker (concurrency 4).', '');
      lines.push('| server | visits completed | points awarded | completed members\' visits without an award | drain s | completed and awarded per s |', '|---|---|---|---|---|---|');
      for (const p of r.pos) lines.push(`| ${p.server} | ${p.completed} | ${p.awarded} | ${p.missingAwards} | ${p.drainSeconds ? f1(p.drainSeconds) : '–'} | ${p.endToEndPerSecond ? f0(p.endToEndPerSecond) : '–'} |`);
    }
    if (w === 'd' && r.hq) {
      const sorted = [...r.hq.psqlMs].sort((a, b) => a - b);
      const psqlMedian = percentile(sorted, 50);
      const api = r.figures.find((f) => f.workload === 'd' && f.server === 'our API');
      lines.push('', `Statement: ${r.hq.note}. psql (\\timing, ${sorted.length} runs): median ${f1(psqlMedian)} ms, min ${f1(sorted[0] ?? NaN)} ms; raw server p50 ${f1(r.hq.rawServerMs ?? NaN)} ms → ${f2((r.hq.rawServerMs ?? NaN) / psqlMedian)}× psql; our API (\`storeMetrics\`) p50 ${f1(api?.p50 ?? NaN)} ms → ${f2((api?.p50 ?? NaN) / psqlMedian)}× psql. PostGraphile: not measured (it would need the statement as a SQL function).`);
    }
    lines.push('');
  }
  if (r.subscriptions.length) {
    lines.push('## (e) live events: graphql-ws subscribers of pointsChanged, one adjustPoints mutation per round', '');
    lines.push('Each subscriber has its own connection. Latency to each subscriber\'s receipt, in the bench process that holds every client: from the event\'s appearance on the bus (NOTIFY or Redis: the bench listens too, so this starts just after the commit), and from sending the mutation (which adds the mutation\'s own work and round trip, shown). The baseline: our API commits and publishes, and a raw `ws` server (no auth, no GraphQL) delivers from the same NOTIFY channel. Memory: growth of the delivering process per idle subscription, both readings after a full GC: resident memory (RSS: what the target is about, but the allocator keeps or returns whole pages, so it moves by a few MB either way), the V8 heap (what the objects of 1000 idle subscriptions take), and external memory (buffers outside the heap; what the warm-up left can go between the readings, so it may fall).', '');
    lines.push('| setting | subscribers | delivered / expected | from publish p50 ms | p99 ms | max ms | from mutation p50 ms | p99 ms | mutation round trip p50 ms | KB RSS per idle subscriber | KB V8 heap per idle subscriber | KB external per idle subscriber |', '|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const s of r.subscriptions) lines.push(`| ${s.setting} | ${s.subscribers} | ${s.deliveries} / ${s.expected} | ${f1(s.publishedP50)} | ${f1(s.publishedP99)} | ${f1(s.publishedMax)} | ${f1(s.p50)} | ${f1(s.p99)} | ${f1(s.mutationP50)} | ${f1(s.kbPerSubscriber)} | ${f1(s.heapKbPerSubscriber)} | ${f1(s.externalKbPerSubscriber)} |`);
    lines.push('');
  }
  if (r.floor.length) {
    const cpu = (layer: FloorLayer) => r.floor.find((f) => f.layer === layer)?.cpuMsPerRequest ?? NaN;
    const reference = r.floor.find((f) => f.layer === 'reference');
    const yogaPrisma = r.floor.find((f) => f.layer === 'yogaPrisma');
    const rawA = r.figures.find((f) => f.workload === 'a' && f.server.startsWith('raw'));
    const apiA = r.figures.find((f) => f.workload === 'a' && f.server === 'our API');
    lines.push('## The fixed stack\'s floor: each layer alone, with no schema or resolver of ours', '');
    lines.push('Same load as the workloads, right after the raw server\'s storefront read again (the reference). What a layer adds is its CPU per request over the layer it is built on (Yoga over node:http; Prisma over pg, per statement; Yoga + Prisma over node:http + Prisma).', '');
    lines.push('| layer | req/s | × reference | p50 ms | CPU ms/req | adds | failed |', '|---|---|---|---|---|---|---|');
    for (const f of r.floor) {
      const base = { reference: NaN, http: NaN, yoga: cpu('http'), pg: NaN, prisma: cpu('pg'), yogaPrisma: cpu('prisma') }[f.layer];
      lines.push(`| ${f.label} | ${f0(f.rps)} | ${f2(f.rps / (reference?.rps ?? NaN))} | ${f1(f.p50)} | ${f2(f.cpuMsPerRequest)} | ${Number.isFinite(base) ? `${f2(f.cpuMsPerRequest - base)} ms` : '–'} | ${f.failures} |`);
    }
    if (reference && yogaPrisma) {
      lines.push('', `One Prisma statement behind one Yoga field, with no auth, tenancy or schema of ours, serves ${f2(yogaPrisma.rps / reference.rps)}× the raw server's storefront reads at ${f2(yogaPrisma.cpuMsPerRequest / reference.cpuMsPerRequest)}× its CPU per request${rawA && apiA ? `; our API's storefront read, in (a) above, ${f2(apiA.rps / rawA.rps)}× at ${f2(apiA.cpuMsPerRequest / rawA.cpuMsPerRequest)}×` : ''}.`);
    }
    lines.push('');
  }
  lines.push('## Invariants', '');
  lines.push(`- Points accounts whose balance differs from the ledger: ${r.ledger.mismatched} of ${r.ledger.accounts}; negative balances: ${r.ledger.negative}.`);
  for (const p of r.pos) lines.push(`- ${p.server}: ${p.completed} POS visits completed, ${p.missingAwards} completed members' visits without a points award.`);
  if (r.skipped.length) lines.push('', '## Not measured', '', ...r.skipped.map((s) => `- ${s}`));
  return lines.join('\n') + '\n';
}
