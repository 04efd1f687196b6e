import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { ensureLocalSigningKey } from '../core/auth/keys.ts';
import { mintToken } from '../core/auth/mint.ts';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../core/auth/verify.ts';
import { prepareDatabase } from '../core/db/migrate.ts';
import { generate, SERVICE_ID, SIZES } from './generate.ts';

const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
await admin.connect();
await admin.query('DROP DATABASE IF EXISTS scratchc WITH (FORCE)');
await admin.query('CREATE DATABASE scratchc');
await admin.end();
const url = 'postgres://postgres@127.0.0.1:5432/scratchc';
await prepareDatabase(url);
const data = await generate(url, SIZES.small);
const keys = await ensureLocalSigningKey('/tmp/scratch-keys');
const token = await mintToken(keys, { kind: 'STAFF', orgId: data.orgId, staffId: data.ownerStaffId, role: 'OWNER', storeIds: [] } as never, { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, expiresIn: '1h' });
const child = spawn(process.execPath, ['--import', 'tsx', 'bench/api-server.ts'], { env: { ...process.env, NODE_ENV: 'production', DATABASE_URL: url, BENCH_JWKS_FILE: keys.jwksPath, BENCH_PLUGINS: 'points,tiers,insights', BENCH_WORKER_CONCURRENCY: '0' }, stdio: ['pipe', 'pipe', 'inherit'] });
const base = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).on('line', (l) => { const m = /^READY (\S+)/.exec(l); if (m) resolve(m[1]!); }));
const c = new pg.Client({ connectionString: url });
await c.connect();
const snap = async () => new Map((await c.query('SELECT relname, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch FROM pg_stat_user_tables')).rows.map((r) => [r.relname, r]));
const POS = `mutation Pos($input: CompleteVisitInput!) { completeVisit(input: $input) { visit { id status total { amount currencyCode } } userErrors { code } } }`;
const gid = (t: string, id: string) => Buffer.from(`${t}:${id}`).toString('base64');
const run = async (ids: string[]) => { for (const id of ids) {
  const r = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query: POS, variables: { input: { visitId: gid('Visit', id), idempotencyKey: randomUUID(), lineItems: [{ serviceId: gid('Service', SERVICE_ID) }] } } }) });
  const j = await r.json(); if (j.errors) console.log(JSON.stringify(j).slice(0, 300)); } };
await run(data.posVisitIds.slice(0, 50));
await new Promise((r) => setTimeout(r, 1500));
await c.query('SELECT pg_stat_clear_snapshot()');
const before = await snap();
await run(data.posVisitIds.slice(50, 350));
child.kill('SIGTERM');
await new Promise((r) => setTimeout(r, 2500));
await c.query('SELECT pg_stat_clear_snapshot()');
const after = await snap();
for (const [name, a] of after) {
  const b = before.get(name)!;
  const d = ['seq_scan', 'seq_tup_read', 'idx_scan', 'idx_tup_fetch'].map((k) => (Number(a[k] ?? 0) - Number(b[k] ?? 0)) / 300);
  if (d.some((x) => x > 0)) console.log(name.padEnd(24), d.map((x) => x.toFixed(2).padStart(9)).join(' '));
}
await c.end();
process.exit(0);
