/**
 * Benchmark of the store metrics query: `npx tsx plugins/insights/bench.ts [--visits 500000] [--small] [--runs 5]`.
 *
 * Generates a chain's history into a throw-away database (an embedded PostgreSQL in a temporary folder, or a new
 * database on BENCH_ADMIN_URL, a superuser URL; dropped at the end): the demo chain (four stores in Shanghai, Beijing,
 * Chengdu and Ürümqi time) plus `visits` visits (3% refunded) of `visits / 10` new customers over three years, some
 * customers far more frequent than others. Then, in the same run, times `storeMetrics` through the API (HTTP, JWT,
 * GraphQL, the application role under row-level security) next to the very statement the API sent, run directly with
 * `pg` as the same role — the ratio is the API's overhead — and lists the SQL statements the request issued.
 * `--small` is 20 000 visits, for a quick run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { ensureLocalSigningKey } from '../../core/auth/keys.ts';
import { mintToken } from '../../core/auth/mint.ts';
import { createTokenVerifier, DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../../core/auth/verify.ts';
import { startPlatform } from '../../core/bootstrap.ts';
import { databaseUrl, ensureDatabase, startEmbeddedPostgres, type EmbeddedPostgres } from '../../core/db/embedded.ts';
import { PrismaClient } from '../../core/db/generated/client.ts';
import { prepareDatabase } from '../../core/db/migrate.ts';
import { seedDemo } from '../../core/seed/demo.ts';
import type { InsightsConfig } from './config.ts';
import { periodsCovering } from './dates.ts';
import { metricsSql, type Period } from './metrics-sql.ts';

const { values: args } = parseArgs({
  options: {
    visits: { type: 'string', default: '500000' },
    small: { type: 'boolean', default: false },
    runs: { type: 'string', default: '5' },
  },
});
const VISITS = args.small ? 20_000 : Number(args.visits);
const CUSTOMERS = Math.max(100, Math.round(VISITS / 10));
const RUNS = Math.max(1, Number(args.runs));
if (!Number.isInteger(VISITS) || VISITS < 1000) throw new Error('--visits must be an integer of at least 1000');

const log = (message: string) => console.error(`[bench] ${message}`);
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  let server: EmbeddedPostgres | undefined;
  let dataDir: string | undefined;
  let adminUrl = process.env.BENCH_ADMIN_URL;
  if (!adminUrl) {
    dataDir = await mkdtemp(join(tmpdir(), 'insights-bench-pg-'));
    log(`starting an embedded PostgreSQL in ${dataDir}`);
    server = await startEmbeddedPostgres({ dataDir, persistent: false });
    adminUrl = server.adminUrl;
  }
  const dbName = `insights_bench_${process.pid}`;
  const keysDir = await mkdtemp(join(tmpdir(), 'insights-bench-keys-'));
  const cleanup = async () => {
    if (server) await server.stop();
    else await dropDatabase(adminUrl!, dbName);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    await rm(keysDir, { recursive: true, force: true });
  };
  try {
    const url = await ensureDatabase(adminUrl, dbName);
    await prepareDatabase(url);
    const owner = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
    const { principals } = await seedDemo(owner, { now: new Date() });
    await owner.$disconnect();
    const orgId = principals.OWNER!.orgId;
    const generation = await generate(url, orgId);

    const signingKey = await ensureLocalSigningKey(keysDir);
    const verifier = createTokenVerifier({ issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, keySource: { kind: 'jwksFile', path: signingKey.jwksPath } });
    const running = await startPlatform({ ownerUrl: url, plugins: ['insights'], verifier, workerConcurrency: 0, host: '127.0.0.1', poolSize: 4 });
    try {
      const token = await mintToken(signingKey, principals.OWNER!, { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, expiresIn: '2h' });
      const config = running.platform.plugins.find((p) => p.definition.name === 'insights')!.config as InsightsConfig;
      const direct = new pg.Client({ connectionString: url, options: '-c role=crm_app' });
      await direct.connect();
      await direct.query("SELECT set_config('app.org_id', $1, false)", [orgId]);

      const today = new Date().toISOString().slice(0, 10);
      const monthsAgo = (n: number) => {
        const d = new Date(`${today.slice(0, 7)}-01T00:00:00Z`);
        d.setUTCMonth(d.getUTCMonth() - n);
        return d.toISOString().slice(0, 10);
      };
      const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
      const shapes: { label: string; period: Period; from: string; to: string }[] = [
        { label: 'MONTH, last 12 months', period: 'MONTH', from: monthsAgo(11), to: today },
        { label: 'WEEK, last 26 weeks', period: 'WEEK', from: daysAgo(7 * 25), to: today },
        { label: 'DAY, last 31 days', period: 'DAY', from: daysAgo(30), to: today },
      ];
      const results = [];
      for (const shape of shapes) {
        const query = `query($from: Date!, $to: Date!, $period: InsightsPeriod) { storeMetrics(from: $from, to: $to, period: $period) {
          storeCode timeZone periodStart periodEnd revenue { minorUnits } visits uniqueCustomers averageTicket { minorUnits }
          newCustomers returningCustomers repurchaseCustomers repurchaseRate activeCustomersAtStart churnedCustomers churnRate
          atRiskCustomers customersToDate lifetimeValue { minorUnits } trailing12MonthCustomers trailing12MonthValue { minorUnits }
          topCustomers topCustomersRevenueShare } }`;
        const variables = { from: shape.from, to: shape.to, period: shape.period };
        const viaApi = async () => {
          const start = process.hrtime.bigint();
          const response = await fetch(running.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify({ query, variables }),
          });
          const body = (await response.json()) as { data?: { storeMetrics: unknown[] }; errors?: unknown };
          if (body.errors) throw new Error(JSON.stringify(body.errors));
          return { ms: ms(start), rows: body.data!.storeMetrics.length };
        };
        // The statement exactly as the resolver builds it, run as the same role, on a connection of its own.
        const sql = metricsSql({
          orgId, storeIds: null, from: shape.from, to: shape.to, period: shape.period, churnDays: null, defaults: config.defaults, includeTotal: true,
        });
        const viaPg = async () => {
          const start = process.hrtime.bigint();
          const result = await direct.query(sql.text, sql.values as unknown[]);
          return { ms: ms(start), rows: result.rowCount ?? 0 };
        };
        await viaApi();
        await viaPg(); // warm: plans, caches, the tenant setting on pooled connections
        const stats = running.platform.dbs.stats;
        stats.trace = [];
        const traced = await viaApi();
        const statements = stats.trace.filter((s) => !s.sql.includes("set_config('app.org_id'"));
        stats.trace = null;
        const api: number[] = [traced.ms];
        const raw: number[] = [];
        for (let run = 0; run < RUNS; run++) {
          raw.push((await viaPg()).ms);
          if (run > 0) api.push((await viaApi()).ms);
        }
        const sameSql = statements.length === 1 && statements[0]!.sql === sql.text;
        results.push({ ...shape, periods: periodsCovering(shape.from, shape.to, shape.period).count, rows: traced.rows, api, raw, statements, sameSql });
        log(`${shape.label}: API ${median(api).toFixed(0)} ms, SQL ${median(raw).toFixed(0)} ms`);
      }
      await direct.end();

      const rss = (process.memoryUsage().rss / 1024 / 1024).toFixed(0);
      console.log(`\n## storeMetrics over ${generation.visits.toLocaleString('en')} visits\n`);
      console.log(`Data: ${generation.visits.toLocaleString('en')} visits (${generation.completed.toLocaleString('en')} completed, the rest refunded, cancelled or booked) ` +
        `of ${generation.customers.toLocaleString('en')} customers at 4 stores in 3 time zones over 3 years; generated in ${(generation.ms / 1000).toFixed(0)} s. ` +
        `Median of ${RUNS} runs each, API and direct SQL alternating, same process and database. Node RSS ${rss} MB.\n`);
      console.log('| query | periods | rows | API (HTTP + GraphQL), ms | same SQL via pg, ms | API ÷ SQL | SQL statements per request |');
      console.log('|---|---:|---:|---:|---:|---:|---:|');
      for (const r of results) {
        console.log(`| ${r.label} | ${r.periods} | ${r.rows} | ${median(r.api).toFixed(0)} | ${median(r.raw).toFixed(0)} | ${(median(r.api) / median(r.raw)).toFixed(2)} | ${r.statements.length}${r.sameSql ? ' (the SQL timed directly)' : ''} |`);
      }
      console.log('\nStatements the API issued for the monthly request (the tenant setting, sent only when a pooled connection last served another organization, excluded):\n');
      for (const [i, statement] of results[0]!.statements.entries()) {
        console.log(`${i + 1}. \`${statement.sql.replace(/\s+/g, ' ').trim().slice(0, 160)}…\` (${statement.sql.length} characters, ${statement.rows} rows)`);
      }
      console.log('\n```sql');
      console.log(results[0]!.statements[0]?.sql.trim());
      console.log('```');
    } finally {
      await running.close();
    }
  } finally {
    await cleanup();
  }
}

/** The chain's history, written in SQL by the database owner (no events: this is history, not activity). */
async function generate(url: string, orgId: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const start = process.hrtime.bigint();
  try {
    await client.query('SELECT setseed(0.42)');
    log(`generating ${CUSTOMERS.toLocaleString('en')} customers`);
    await client.query(`
      INSERT INTO customer (org_id, home_store_id, name, phone, birthday, tags, created_at, updated_at)
      SELECT $1, s.ids[1 + i % array_length(s.ids, 1)], 'Bench customer ' || i, '+8619' || lpad(i::text, 9, '0'),
             date '1965-01-01' + (i * 7919) % 14000,
             CASE WHEN i % 7 = 0 THEN ARRAY['sensitive-skin'] WHEN i % 5 = 0 THEN ARRAY['anti-ageing'] ELSE '{}' END,
             now() - interval '3 years', now() - interval '3 years'
      FROM (SELECT array_agg(id ORDER BY code) AS ids FROM store WHERE org_id = $1) s, generate_series(1, $2::int) i`, [orgId, CUSTOMERS]);
    await client.query(`
      CREATE TEMP TABLE bench_customer AS
      SELECT row_number() OVER (ORDER BY phone)::int AS k, id, home_store_id FROM customer WHERE org_id = $1 AND name LIKE 'Bench customer %'`, [orgId]);
    await client.query('ALTER TABLE bench_customer ADD PRIMARY KEY (k)');
    log(`generating ${VISITS.toLocaleString('en')} visits`);
    // Customer k is drawn with a skewed distribution (a few come very often); 85% of visits at the home store; a
    // completion time between 10:00 and 22:00 local on a day of the last three years.
    await client.query(`
      INSERT INTO visit (org_id, store_id, customer_id, status, scheduled_start, scheduled_end, checked_in_at, completed_at, total_minor, refunded_at, refund_reason)
      SELECT $1, x.store_id, x.customer_id, x.status, x.at - interval '1 hour', x.at, x.at - interval '1 hour', x.at, x.total,
             CASE WHEN x.status = 'REFUNDED' THEN x.at + interval '1 day' END, CASE WHEN x.status = 'REFUNDED' THEN 'bench' END
      FROM (
        SELECT y.*, (date_trunc('day', now() - y.r4 * interval '1095 days') + interval '10 hours' + y.r5 * interval '12 hours')::timestamp
                    AT TIME ZONE st.timezone AS at
        FROM (
          SELECT c.id AS customer_id, r.r4, r.r5,
                 CASE WHEN r.r < 0.85 THEN c.home_store_id ELSE s.ids[1 + floor(r.r2 * array_length(s.ids, 1))::int] END AS store_id,
                 CASE WHEN r.r3 < 0.03 THEN 'REFUNDED'::visit_status ELSE 'COMPLETED'::visit_status END AS status,
                 (20000 + floor(r.r6 * r.r6 * 400000))::int AS total
          FROM (SELECT 1 + floor(power(random(), 1.6) * $3::int)::int AS k, random() AS r, random() AS r2, random() AS r3,
                       random() AS r4, random() AS r5, random() AS r6
                FROM generate_series(1, $2::int)) r
          JOIN bench_customer c ON c.k = r.k
          CROSS JOIN (SELECT array_agg(id ORDER BY code) AS ids FROM store WHERE org_id = $1) s
        ) y JOIN store st ON st.id = y.store_id
      ) x`, [orgId, VISITS, CUSTOMERS]);
    log('customer facts, statistics, visibility map');
    await client.query(`
      UPDATE customer_fact f SET visit_count = s.visits, total_spend_minor = s.spend, first_visit_at = s.first_at, last_visit_at = s.last_at
      FROM (SELECT customer_id, count(*)::int AS visits, sum(total_minor)::bigint AS spend, min(completed_at) AS first_at, max(completed_at) AS last_at
            FROM visit WHERE org_id = $1 AND status = 'COMPLETED' GROUP BY customer_id) s
      WHERE f.customer_id = s.customer_id`, [orgId]);
    await client.query(`
      INSERT INTO customer_fact (customer_id, org_id, visit_count, first_visit_at, last_visit_at, total_spend_minor)
      SELECT c.id, c.org_id, count(v.id), min(v.completed_at), max(v.completed_at), coalesce(sum(v.total_minor), 0)
      FROM customer c LEFT JOIN visit v ON v.customer_id = c.id AND v.status = 'COMPLETED'
      WHERE c.org_id = $1 AND NOT EXISTS (SELECT 1 FROM customer_fact f WHERE f.customer_id = c.id)
      GROUP BY c.id, c.org_id`, [orgId]);
    await client.query('VACUUM ANALYZE visit');
    await client.query('VACUUM ANALYZE customer');
    await client.query('VACUUM ANALYZE customer_fact');
    const { rows } = await client.query<{ visits: number; completed: number; customers: number }>(`
      SELECT count(*)::int AS visits, count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
             (SELECT count(*)::int FROM customer WHERE org_id = $1) AS customers
      FROM visit WHERE org_id = $1`, [orgId]);
    return { ...rows[0]!, ms: ms(start) };
  } finally {
    await client.end();
  }
}

async function dropDatabase(adminUrl: string, name: string) {
  const client = new pg.Client({ connectionString: databaseUrl(adminUrl, 'postgres') });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

await main();
