/**
 * Redemption throughput: `npx tsx plugins/points/bench.ts [--seconds 10] [--connections 16]`.
 *
 * Redeems a 1-point reward for random members, through the API (redeemReward over HTTP, production mode)
 * and through a plain-SQL baseline doing the same ledger work in one transaction with `pg` — side by side,
 * same database, same run — then checks that every balance still equals its ledger. Prints a markdown table.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { ensureLocalSigningKey } from '../../core/auth/keys.ts';
import { mintToken } from '../../core/auth/mint.ts';
import { createTokenVerifier, DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../../core/auth/verify.ts';
import { startPlatform } from '../../core/bootstrap.ts';
import { ensureDatabase, startEmbeddedPostgres } from '../../core/db/embedded.ts';
import { PrismaClient } from '../../core/db/generated/client.ts';
import { prepareDatabase } from '../../core/db/migrate.ts';
import { seedDemo } from '../../core/seed/demo.ts';
import { ACCOUNT_LOCK_CLASS } from './ledger.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '16' } } });
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const MEMBERS = 200;

function percentile(sorted: number[], p: number) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'crm-bench-'));
  const server = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), persistent: false });
  const url = await ensureDatabase(server.adminUrl, 'bench');
  await prepareDatabase(url);
  const owner = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
  const { principals } = await seedDemo(owner);
  const orgId = principals.OWNER!.orgId;
  // Members with a large balance, and a reward that costs one point.
  await owner.$executeRaw`INSERT INTO points_account (membership_id, org_id, customer_id) SELECT id, org_id, customer_id FROM membership WHERE org_id = ${orgId}::uuid`;
  const members = (await owner.$queryRaw<{ membershipId: string; customerId: string }[]>`
    SELECT membership_id AS "membershipId", customer_id AS "customerId" FROM points_account WHERE org_id = ${orgId}::uuid LIMIT ${MEMBERS}`);
  await owner.$executeRaw`
    WITH e AS (
      INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, actor, reason)
      SELECT ${orgId}::uuid, membership_id, customer_id, 'EARN', 1000000, 'MANUAL', 'bench', 'bench'
      FROM points_account WHERE org_id = ${orgId}::uuid RETURNING id, account_id, created_at, amount)
    INSERT INTO points_lot (org_id, account_id, earn_entry_id, earned_at, expires_at, original, remaining)
    SELECT ${orgId}::uuid, account_id, id, created_at, created_at + interval '1 year', amount, amount FROM e`;
  const [reward] = await owner.$queryRaw<{ id: string }[]>`
    INSERT INTO points_reward (org_id, kind, name, points_price) VALUES (${orgId}::uuid, 'CONSULTATION', 'bench', 1) RETURNING id`;

  const rows: string[] = [];
  const figures: Record<string, { rps: number; p50: number; p99: number; count: number }> = {};

  // Plain SQL: the same ledger work (idempotency claim, account lock, reward read, entry, FIFO allocation,
  // redemption, outbox event) in one transaction per redemption.
  const pool = new pg.Pool({ connectionString: url, max: connections });
  const latencies: number[] = [];
  let done = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = await pool.connect();
      try {
        while (Date.now() < until) {
          const member = members[Math.floor(Math.random() * members.length)]!;
          const started = performance.now();
          await client.query('BEGIN');
          await client.query(
            `INSERT INTO idempotency_record (org_id, principal_key, key, operation, request_hash, result) VALUES ($1, 'bench', $2, 'redeem', 'x', '{}')`,
            [orgId, randomUUID()],
          );
          // The same locking as the API: the member's account (an advisory lock), then a plain read of the reward.
          await client.query('SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))', [ACCOUNT_LOCK_CLASS, member.membershipId]);
          const { rows: [account] } = await client.query('SELECT balance FROM points_account WHERE membership_id = $1', [member.membershipId]);
          await client.query('SELECT points_price, stock FROM points_reward WHERE id = $1', [reward!.id]);
          if (account.balance < 1) throw new Error('balance');
          const { rows: [entry] } = await client.query(
            `INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, actor) VALUES ($1, $2, $3, 'REDEEM', -1, 'REWARD', 'bench') RETURNING id`,
            [orgId, member.membershipId, member.customerId],
          );
          await client.query(
            `WITH lot AS (SELECT id FROM points_lot WHERE account_id = $1 AND remaining > 0 ORDER BY expires_at, id LIMIT 1),
                  taken AS (UPDATE points_lot l SET remaining = remaining - 1 FROM lot WHERE l.id = lot.id RETURNING l.id)
             INSERT INTO points_allocation (debit_entry_id, lot_id, org_id, amount) SELECT $2, id, $3, 1 FROM taken`,
            [member.membershipId, entry.id, orgId],
          );
          await client.query(
            `INSERT INTO points_redemption (org_id, account_id, customer_id, reward_id, quantity, points, debit_entry_id) VALUES ($1, $2, $3, $4, 1, 1, $5)`,
            [orgId, member.membershipId, member.customerId, reward!.id, entry.id],
          );
          await client.query(
            `INSERT INTO domain_event (org_id, type, aggregate_type, aggregate_id, stream_key, payload, actor) VALUES ($1, 'points.redeemed', 'PointsAccount', $2, $3, '{}', 'bench')`,
            [orgId, member.membershipId, member.customerId],
          );
          await client.query('COMMIT');
          latencies.push(performance.now() - started);
          done += 1;
        }
      } finally {
        client.release();
      }
    }),
  );
  await pool.end();
  latencies.sort((a, b) => a - b);
  figures['plain SQL (pg, one transaction)'] = { rps: done / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), count: done };

  // The API: redeemReward over HTTP in production mode.
  const keys = await ensureLocalSigningKey(join(dir, 'keys'));
  const running = await startPlatform({
    ownerUrl: url,
    plugins: ['points'],
    pluginConfig: { points: { monthlyRedemptionCap: null } },
    verifier: createTokenVerifier({ issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, keySource: { kind: 'jwksFile', path: keys.jwksPath } }),
    production: true,
    host: '127.0.0.1',
    workerConcurrency: 0,
    poolSize: connections,
  });
  const token = await mintToken(keys, principals.OWNER!, { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE });
  const rewardId = Buffer.from(`PointsReward:${reward!.id}`).toString('base64');
  const customerIds = members.map((m) => Buffer.from(`Customer:${m.customerId}`).toString('base64'));
  const query = 'mutation($input: RedeemRewardInput!) { redeemReward(input: $input) { balance userErrors { code } } }';
  const result = await autocannon({
    url: running.url,
    connections,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({
            query,
            variables: { input: { rewardId, customerId: customerIds[Math.floor(Math.random() * customerIds.length)], idempotencyKey: randomUUID() } },
          }),
        }),
      },
    ],
  });
  figures['API: redeemReward over HTTP'] = {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    count: result.requests.total,
  };
  await running.close();

  const [{ mismatched, negative }] = await owner.$queryRaw<{ mismatched: number; negative: number }[]>`
    SELECT count(*) FILTER (WHERE a.balance <> coalesce(e.total, 0))::int AS mismatched, count(*) FILTER (WHERE a.balance < 0)::int AS negative
    FROM points_account a LEFT JOIN (SELECT account_id, sum(amount) AS total FROM points_entry GROUP BY account_id) e ON e.account_id = a.membership_id`;
  const [{ redemptions }] = await owner.$queryRaw<{ redemptions: number }[]>`SELECT count(*)::int AS redemptions FROM points_redemption`;
  await owner.$disconnect();
  await server.stop();
  await rm(dir, { recursive: true, force: true });

  const baseline = figures['plain SQL (pg, one transaction)']!.rps;
  rows.push(`| path | redemptions | req/s | vs plain SQL | p50 ms | p99 ms |`, `|---|---|---|---|---|---|`);
  for (const [name, f] of Object.entries(figures)) {
    rows.push(`| ${name} | ${f.count} | ${f.rps.toFixed(0)} | ${(f.rps / baseline).toFixed(2)}× | ${f.p50.toFixed(1)} | ${f.p99.toFixed(1)} |`);
  }
  console.log(`\nRedemptions of a 1-point reward, ${connections} concurrent clients, ${seconds} s each, ${MEMBERS} members, same database:\n`);
  console.log(rows.join('\n'));
  console.log(`\nAfter the run: ${redemptions} redemptions; accounts whose balance differs from the ledger: ${mismatched}; negative balances: ${negative}.`);
  if (mismatched || negative) process.exitCode = 1;
}

await main();
