/**
 * The practical limit: a minimal `node:http` + `pg` server with named prepared statements, answering the bench
 * workloads with the same JSON as our API's GraphQL responses (`{"data":{…}}`, global ids, Money, ISO dates).
 * No authentication, no GraphQL, no tenancy wall (it connects as the database owner and filters by org itself).
 *
 *   GET  /customer/<uuid>        (a) a customer with tier, points balance and last 10 visits
 *   GET  /customers?first=N      (b) the first N customers by name, each with tier and last 10 visits
 *   POST /pos/complete           (c) {"visitId","idempotencyKey"}: completes a CHECKED_IN visit and awards its points,
 *                                    in ONE transaction (idempotency record, lock, lines, facts, outbox event, ledger, lot)
 *   GET  /hq                     (d) per-store repurchase and churn-risk figures: one statement given by the harness
 *   WS   /graphql                 (e) the graphql-transport-ws protocol, pointsChanged only: each points event heard on
 *                                    the API's LISTEN/NOTIFY channel is sent to the subscribers of its customer
 *
 * Env: DATABASE_URL (owner), BENCH_ORG_ID, BENCH_POOL_SIZE, BENCH_SERVICE_ID, BENCH_HQ_SQL (JSON {text, values}).
 * Prints `READY <url>`; stops when stdin closes or on SIGTERM.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';
import { WebSocketServer, type WebSocket } from 'ws';

const env = process.env;
const ORG = env.BENCH_ORG_ID!;
const SERVICE = env.BENCH_SERVICE_ID!;
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: Number(env.BENCH_POOL_SIZE ?? 16) });

const gid = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');
const money = (minor: number) => ({ amount: (minor / 100).toFixed(2), currencyCode: 'CNY' });

const CUSTOMER_COLUMNS = `
  c.id, c.name, m.id IS NOT NULL AS member, tl.code AS tier_code, tl.name AS tier_name,
  v.id AS visit_id, v.status, v.scheduled_start, v.total_minor`;
const CUSTOMER_JOINS = `
  LEFT JOIN membership m ON m.customer_id = c.id
  LEFT JOIN tier_state ts ON ts.customer_id = c.id
  LEFT JOIN tier_level tl ON tl.id = CASE WHEN m.status = 'ACTIVE' THEN
    CASE WHEN ts.override_until > now() THEN ts.override_tier_id ELSE ts.earned_tier_id END END
  LEFT JOIN LATERAL (
    SELECT id, status, scheduled_start, total_minor FROM visit
    WHERE customer_id = c.id AND org_id = $1 ORDER BY scheduled_start DESC, id DESC LIMIT 10
  ) v ON true`;

const ONE_CUSTOMER = {
  name: 'one_customer',
  text: `SELECT ${CUSTOMER_COLUMNS}, pa.balance FROM customer c ${CUSTOMER_JOINS}
         LEFT JOIN points_account pa ON pa.customer_id = c.id
         WHERE c.id = $2 AND c.org_id = $1 ORDER BY v.scheduled_start DESC, v.id DESC`,
};
const CUSTOMER_LIST = {
  name: 'customer_list',
  text: `SELECT ${CUSTOMER_COLUMNS} FROM (SELECT id, name FROM customer WHERE org_id = $1 ORDER BY name, id LIMIT $2) c ${CUSTOMER_JOINS}
         ORDER BY c.name, c.id, v.scheduled_start DESC, v.id DESC`,
};

type Row = { id: string; name: string; member: boolean; tier_code: string | null; tier_name: string | null; visit_id: string | null; status: string; scheduled_start: Date; total_minor: number; balance?: number | null };

function customerJson(rows: Row[], withPoints: boolean) {
  const first = rows[0]!;
  const node: Record<string, unknown> = {
    id: gid('Customer', first.id),
    name: first.name,
    membership: first.member ? { tier: first.tier_code ? { code: first.tier_code, name: first.tier_name } : null } : null,
  };
  if (withPoints) node.points = first.balance == null ? null : { balance: first.balance };
  node.visits = {
    edges: rows.filter((r) => r.visit_id).map((r) => ({
      node: { id: gid('Visit', r.visit_id!), status: r.status, scheduledStart: r.scheduled_start.toISOString(), total: money(r.total_minor) },
    })),
  };
  return node;
}

function send(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function completeVisit(visitId: string, key: string) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const claimed = await client.query({
      name: 'pos_idempotency',
      text: `INSERT INTO idempotency_record (org_id, principal_key, key, operation, request_hash, result)
             VALUES ($1, 'raw-server', $2, 'completeVisit', $3, '{}') ON CONFLICT DO NOTHING`,
      values: [ORG, key, visitId],
    });
    if (!claimed.rowCount) throw Object.assign(new Error('replayed'), { code: 'REPLAYED' });
    const { rows: [visit] } = await client.query({
      name: 'pos_lock_visit',
      text: `SELECT v.customer_id, v.store_id, v.status, pa.membership_id, coalesce(tl.points_multiplier_pct, 100) AS multiplier, s.price_minor
             FROM visit v JOIN service s ON s.id = $3
             LEFT JOIN points_account pa ON pa.customer_id = v.customer_id
             LEFT JOIN tier_state ts ON ts.customer_id = v.customer_id
             LEFT JOIN tier_level tl ON tl.id = CASE WHEN ts.override_until > now() THEN ts.override_tier_id ELSE ts.earned_tier_id END
             WHERE v.id = $1 AND v.org_id = $2 FOR UPDATE OF v`,
      values: [visitId, ORG, SERVICE],
    });
    if (!visit || visit.status !== 'CHECKED_IN') throw Object.assign(new Error('visit is not CHECKED_IN'), { code: 'INVALID_STATE' });
    const total: number = visit.price_minor;
    await client.query({
      name: 'pos_line',
      text: `WITH surplus AS (DELETE FROM visit_line WHERE visit_id = $2 AND position > 0)
             INSERT INTO visit_line (org_id, visit_id, position, kind, service_id, description, quantity, unit_price_minor, amount_minor)
             VALUES ($1, $2, 0, 'SERVICE', $3, 'Hydrating facial 补水护理', 1, $4, $4)
             ON CONFLICT (visit_id, position) DO UPDATE SET kind = EXCLUDED.kind, service_id = EXCLUDED.service_id,
               product_id = NULL, description = EXCLUDED.description, quantity = 1,
               unit_price_minor = EXCLUDED.unit_price_minor, discount_minor = 0, amount_minor = EXCLUDED.amount_minor`,
      values: [ORG, visitId, SERVICE, total],
    });
    const { rows: [updated] } = await client.query({
      name: 'pos_complete',
      text: `UPDATE visit SET status = 'COMPLETED', completed_at = now(), total_minor = $2, updated_at = now() WHERE id = $1 RETURNING completed_at`,
      values: [visitId, total],
    });
    await client.query({
      name: 'pos_fact',
      text: `INSERT INTO customer_fact (customer_id, org_id, visit_count, first_visit_at, last_visit_at, total_spend_minor)
             VALUES ($1, $2, 1, $3, $3, $4)
             ON CONFLICT (customer_id) DO UPDATE SET visit_count = customer_fact.visit_count + 1,
               first_visit_at = LEAST(customer_fact.first_visit_at, EXCLUDED.first_visit_at),
               last_visit_at = GREATEST(customer_fact.last_visit_at, EXCLUDED.last_visit_at),
               total_spend_minor = customer_fact.total_spend_minor + EXCLUDED.total_spend_minor`,
      values: [visit.customer_id, ORG, updated.completed_at, total],
    });
    // The outbox event other consumers read; type bench.* so no plugin handler of the API awards it a second time.
    await client.query({
      name: 'pos_event',
      text: `INSERT INTO domain_event (org_id, type, aggregate_type, aggregate_id, stream_key, payload, actor)
             VALUES ($1, 'bench.visit.completed', 'Visit', $2, $3, $4, 'raw-server')`,
      values: [ORG, visitId, visit.customer_id, JSON.stringify({ visitId, customerId: visit.customer_id, totalMinor: total })],
    });
    if (visit.membership_id) {
      const points = Math.floor((total / 100) * (visit.multiplier / 100));
      await client.query({
        name: 'pos_earn',
        text: `WITH e AS (
                 INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, source_ref, dedupe_key, store_id, actor, reason)
                 VALUES ($1, $2, $3, 'EARN', $4, 'VISIT', $5, 'visit:' || $5 || ':earn', $6, 'raw-server', 'visit spend')
                 RETURNING id, created_at, amount)
               INSERT INTO points_lot (org_id, account_id, earn_entry_id, earned_at, expires_at, original, remaining)
               SELECT $1, $2, id, created_at, created_at + interval '12 months', amount, amount FROM e`,
        values: [ORG, visit.membership_id, visit.customer_id, points, visitId, visit.store_id],
      });
    }
    await client.query('COMMIT');
    return { data: { completeVisit: { visit: { id: gid('Visit', visitId), status: 'COMPLETED', total: money(total) }, userErrors: [] } } };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    const code = (error as { code?: string }).code;
    if (code === 'INVALID_STATE' || code === 'REPLAYED') return { data: { completeVisit: { visit: null, userErrors: [{ code }] } } };
    throw error;
  } finally {
    client.release();
  }
}

// (d): one statement chosen by the harness (the insights plugin's, or the bench's own), as {text, values}.
const hq = env.BENCH_HQ_SQL ? { name: 'hq_metrics', ...(JSON.parse(env.BENCH_HQ_SQL) as { text: string; values: unknown[] }) } : null;

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const handle = async () => {
    if (req.method === 'GET' && url.startsWith('/customer/')) {
      const { rows } = await pool.query<Row>({ ...ONE_CUSTOMER, values: [ORG, url.slice('/customer/'.length)] });
      return send(res, 200, { data: { node: rows.length ? customerJson(rows, true) : null } });
    }
    if (req.method === 'GET' && url.startsWith('/customers')) {
      const first = Math.min(500, Number(new URL(url, 'http://x').searchParams.get('first') ?? 50));
      const { rows } = await pool.query<Row>({ ...CUSTOMER_LIST, values: [ORG, first] });
      const groups: Row[][] = [];
      for (const row of rows) {
        if (groups.at(-1)?.[0]!.id === row.id) groups.at(-1)!.push(row);
        else groups.push([row]);
      }
      return send(res, 200, { data: { customers: { edges: groups.map((g) => ({ node: customerJson(g, false) })) } } });
    }
    if (req.method === 'POST' && url === '/pos/complete') {
      const body = (await readBody(req)) as { visitId: string; idempotencyKey: string };
      return send(res, 200, await completeVisit(body.visitId, body.idempotencyKey));
    }
    if (req.method === 'GET' && url === '/hq' && hq) {
      const { rows } = await pool.query(hq);
      return send(res, 200, { data: { storeMetrics: rows } });
    }
    send(res, 404, { errors: [{ message: 'not found' }] });
  };
  handle().catch((error) => send(res, 500, { errors: [{ message: (error as Error).message }] }));
});
server.keepAliveTimeout = 60_000;

// (e): the least a server must do to deliver an event: parse the notification, filter, serialise, write each socket.
// No authentication and no GraphQL: a subscription's customer id is the one variable of the bench's document.
const subscribers = new Map<WebSocket, Map<string, string>>(); // socket → subscription id → customer (global id)
const sockets = new WebSocketServer({ server, path: '/graphql' });
sockets.on('connection', (socket) => {
  const subscriptions = new Map<string, string>();
  subscribers.set(socket, subscriptions);
  socket.on('close', () => subscribers.delete(socket));
  socket.on('message', (raw) => {
    const message = JSON.parse(String(raw)) as { type: string; id?: string; payload?: { variables?: { id?: string } } };
    if (message.type === 'connection_init') socket.send(JSON.stringify({ type: 'connection_ack' }));
    else if (message.type === 'ping') socket.send(JSON.stringify({ type: 'pong' }));
    else if (message.type === 'subscribe') subscriptions.set(message.id!, message.payload?.variables?.id ?? '');
    else if (message.type === 'complete') subscriptions.delete(message.id!);
  });
});
const listener = new pg.Client({ connectionString: env.DATABASE_URL });
listener.on('notification', ({ payload }) => {
  const { data: event } = JSON.parse(payload!) as { data: { type: string; aggregateType: string; payload: { customerId: string; delta: number; balance: number } } };
  if (event.aggregateType !== 'PointsAccount') return;
  const customer = gid('Customer', event.payload.customerId);
  const data = { pointsChanged: { type: event.type, delta: event.payload.delta, balance: event.payload.balance } };
  for (const [socket, subscriptions] of subscribers) {
    for (const [id, subscribed] of subscriptions) if (subscribed === customer) socket.send(JSON.stringify({ id, type: 'next', payload: { data } }));
  }
});
await listener.connect();
await listener.query('LISTEN crm_live_events');
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`READY http://127.0.0.1:${port}\n`);
});
const stop = () => {
  for (const socket of subscribers.keys()) socket.terminate();
  server.close(() => void Promise.all([pool.end(), listener.end()]).then(() => process.exit(0)));
};
process.once('SIGTERM', stop);
// The harness reads idle memory after a full GC (children run with --expose-gc).
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  process.stdout.write(`MEMORY ${JSON.stringify(process.memoryUsage())}\n`);
});
process.stdin.on('close', stop);
process.stdin.resume();
