/**
 * Deterministic bench data, written with set-based SQL (generate_series) through one superuser connection.
 *
 * One organization (so an owner-role server such as PostGraphile sees exactly the rows the API's tenant sees):
 * stores, customers (80% members with a points account and a tier), completed/cancelled/no-show visits over the two
 * years before a fixed anchor date, a points ledger, and a pool of CHECKED_IN visits (each with its booked service
 * line) for the POS workload.
 * Every id and value is a function of the row number (md5 / hashtext), so two runs produce identical data.
 *
 * Left out on purpose (not read by any workload): visit lines of historic visits, points lots of historic
 * ledger entries, referral codes, consents, skin profiles. Triggers are skipped while loading
 * (session_replication_role = replica); balances and customer facts are then computed from the rows.
 */
import pg from 'pg';

export interface BenchSize {
  stores: number;
  customers: number;
  visits: number;
  ledger: number;
  /** CHECKED_IN visits the POS workload completes (shared out between the servers). */
  posVisits: number;
}

export const SIZES = {
  default: { stores: 50, customers: 20_000, visits: 500_000, ledger: 2_000_000, posVisits: 60_000 },
  small: { stores: 5, customers: 2_000, visits: 50_000, ledger: 200_000, posVisits: 30_000 },
  tiny: { stores: 2, customers: 100, visits: 400, ledger: 1_000, posVisits: 12_000 },
} satisfies Record<string, BenchSize>;

export const ANCHOR = '2026-11-01T00:00:00Z';
export const ORG_ID = '00000000-0000-4000-8000-00000000b001';
export const OWNER_STAFF_ID = '00000000-0000-4000-8000-00000000b002';
export const SERVICE_ID = '00000000-0000-4000-8000-00000000b003';
export const SERVICE_PRICE_MINOR = 68_000;
export const TIERS = [
  { id: '00000000-0000-4000-8000-0000000071e1', code: 'SILVER', name: 'Silver 银卡', rank: 1, multiplier: 100 },
  { id: '00000000-0000-4000-8000-0000000071e2', code: 'GOLD', name: 'Gold 金卡', rank: 2, multiplier: 110 },
  { id: '00000000-0000-4000-8000-0000000071e3', code: 'PLATINUM', name: 'Platinum 铂金', rank: 3, multiplier: 125 },
  { id: '00000000-0000-4000-8000-0000000071e4', code: 'DIAMOND', name: 'Diamond 钻石', rank: 4, multiplier: 150 },
];

const REBUILT_INDEXES = [
  ['visit_customer_id_scheduled_start_idx', 'visit (customer_id, scheduled_start DESC)'],
  ['visit_store_id_scheduled_start_idx', 'visit (store_id, scheduled_start)'],
  ['visit_org_id_scheduled_start_idx', 'visit (org_id, scheduled_start)'],
  ['points_entry_account_id_created_at_id_idx', 'points_entry (account_id, created_at DESC, id DESC)'],
  ['points_entry_org_id_created_at_idx', 'points_entry (org_id, created_at)'],
] as const;

/** uuid of row `i` of kind `kind`, the same in SQL (md5(kind || i)::uuid) and here. */
export const CUSTOMER_UUID_SQL = (i: string) => `md5('c' || ${i})::uuid`;

export interface GeneratedData {
  size: BenchSize;
  orgId: string;
  ownerStaffId: string;
  customerIds: string[];
  /** Members: customers with a points account. */
  memberIds: string[];
  posVisitIds: string[];
  seconds: number;
}

export async function generate(url: string, size: BenchSize, log: (line: string) => void = () => {}): Promise<GeneratedData> {
  const started = performance.now();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const step = async (label: string, sql: string, values: unknown[] = []) => {
    const t = performance.now();
    const result = await client.query(sql, values);
    log(`  ${label}: ${result.rowCount ?? 0} rows, ${((performance.now() - t) / 1000).toFixed(1)} s`);
  };
  const { stores: S, customers: C, visits: V, ledger: L, posVisits: P } = size;
  const M = C - Math.floor(C / 5); // customers i with i % 5 <> 0 are members
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL session_replication_role = replica`);
    await client.query(`SET LOCAL work_mem = '256MB'`);
    // Uniform [0, 1) from a label and a row number.
    await client.query(`CREATE FUNCTION pg_temp.r(label text, n bigint) RETURNS float8 LANGUAGE sql IMMUTABLE
      AS $$ SELECT (hashtext(label || ':' || n)::bigint + 2147483648) / 4294967296.0 $$`);
    // The m-th member (1-based) is customer m + floor((m-1)/4): customers 5, 10, 15, … are not members.
    await client.query(`CREATE FUNCTION pg_temp.member(m bigint) RETURNS bigint LANGUAGE sql IMMUTABLE
      AS $$ SELECT m + (m - 1) / 4 $$`);
    // Secondary indexes are built once after loading (faster than row by row), with their migration definitions.
    await client.query(`DROP INDEX ${REBUILT_INDEXES.map(([name]) => name).join(', ')}`);
    await step('organization', `INSERT INTO organization (id, kind, name, timezone, currency, created_at)
      VALUES ($1, 'CHAIN', 'Bench Beauty 基准连锁', 'Asia/Shanghai', 'CNY', $2::timestamptz - interval '5 years')`, [ORG_ID, ANCHOR]);
    await step('stores', `INSERT INTO store (id, org_id, code, name, timezone, created_at)
      SELECT md5('s' || i)::uuid, $1, 'S' || lpad(i::text, 3, '0'), 'Store ' || i,
             CASE WHEN i % 7 = 0 THEN 'Asia/Urumqi' ELSE 'Asia/Shanghai' END, $2::timestamptz - interval '4 years'
      FROM generate_series(1, $3::int) i`, [ORG_ID, ANCHOR, S]);
    await step('staff', `INSERT INTO staff (id, org_id, name, role, email) VALUES ($1, $2, 'Bench Owner', 'OWNER', 'owner@bench.example')`, [OWNER_STAFF_ID, ORG_ID]);
    await step('service', `INSERT INTO service (id, org_id, category, name, duration_minutes, price_minor)
      VALUES ($1, $2, 'FACIAL', 'Hydrating facial 补水护理', 60, $3)`, [SERVICE_ID, ORG_ID, SERVICE_PRICE_MINOR]);
    await step('customers', `INSERT INTO customer (id, org_id, home_store_id, name, phone, gender, source, created_at, updated_at)
      SELECT md5('c' || i)::uuid, $1, md5('s' || (1 + i % $2::int))::uuid,
             (ARRAY['Wang','Li','Zhang','Liu','Chen','Yang','Huang','Zhao','Wu','Zhou'])[1 + i % 10] || ' ' ||
             (ARRAY['Fang','Min','Jing','Li','Xue','Yan','Hui','Ting','Na','Lei'])[1 + (i / 10) % 10] || ' ' || i,
             '+8613' || lpad(i::text, 9, '0'), CASE WHEN i % 9 = 0 THEN 'MALE' ELSE 'FEMALE' END::gender, 'WALK_IN',
             $3::timestamptz - interval '3 years', $3::timestamptz - interval '3 years'
      FROM generate_series(1, $4::int) i`, [ORG_ID, S, ANCHOR, C]);
    await step('memberships', `INSERT INTO membership (id, org_id, customer_id, member_number, joined_on, home_store_id)
      SELECT md5('m' || i)::uuid, $1, md5('c' || i)::uuid, 'M' || lpad(i::text, 8, '0'), ($2::timestamptz - interval '2 years')::date,
             md5('s' || (1 + i % $3::int))::uuid
      FROM generate_series(1, $4::int) i WHERE i % 5 <> 0`, [ORG_ID, ANCHOR, S, C]);
    await client.query(`INSERT INTO org_counter (org_id, name, value) VALUES ($1, 'member_number', $2)`, [ORG_ID, C]);
    await step('tier levels', `INSERT INTO tier_level (id, org_id, code, name, rank, points_multiplier_pct)
      SELECT (t->>'id')::uuid, $1, t->>'code', t->>'name', (t->>'rank')::int, (t->>'multiplier')::int FROM jsonb_array_elements($2::jsonb) t`,
      [ORG_ID, JSON.stringify(TIERS)]);
    await step('tier states', `INSERT INTO tier_state (customer_id, org_id, earned_tier_id, earned_since, updated_at)
      SELECT md5('c' || i)::uuid, $1, ($2::uuid[])[1 + i % 4], $3::timestamptz - interval '100 days', $3::timestamptz - interval '100 days'
      FROM generate_series(1, $4::int) i WHERE i % 5 <> 0`, [ORG_ID, TIERS.map((t) => t.id), ANCHOR, C]);
    // Visits: customer uniform at random, 85% at the home store, scheduled on 30-minute slots over two years.
    await step('visits', `INSERT INTO visit (id, org_id, store_id, customer_id, status, scheduled_start, scheduled_end,
                                     checked_in_at, completed_at, cancelled_at, total_minor, created_at, updated_at)
      SELECT md5('v' || j)::uuid, $1, md5('s' || store_no)::uuid, md5('c' || cust)::uuid, status::visit_status,
             at, at + interval '1 hour',
             CASE WHEN status = 'COMPLETED' THEN at END, CASE WHEN status = 'COMPLETED' THEN at + interval '1 hour' END,
             CASE WHEN status = 'CANCELLED' THEN at - interval '1 day' END,
             CASE WHEN status = 'COMPLETED' THEN (ARRAY[38000, 68000, 98000, 128000, 26800])[1 + j % 5] ELSE 0 END, at, at
      FROM (
        SELECT j, cust,
               CASE WHEN pg_temp.r('vs', j) < 0.85 THEN 1 + cust % $2::int ELSE 1 + floor(pg_temp.r('vx', j) * $2::int)::int END AS store_no,
               CASE WHEN pg_temp.r('vk', j) < 0.9 THEN 'COMPLETED' WHEN pg_temp.r('vk', j) < 0.95 THEN 'CANCELLED' ELSE 'NO_SHOW' END AS status,
               $3::timestamptz - make_interval(mins => 30 * floor(pg_temp.r('vt', j) * 730 * 48)::int) AS at
        FROM (SELECT j, 1 + floor(pg_temp.r('vc', j) * $4::int)::int AS cust FROM generate_series(1, $5::int) j) x
      ) y`, [ORG_ID, S, ANCHOR, C, V]);
    await step('customer facts', `INSERT INTO customer_fact (customer_id, org_id, visit_count, first_visit_at, last_visit_at, total_spend_minor)
      SELECT c.id, $1, count(v.id), min(v.completed_at), max(v.completed_at), coalesce(sum(v.total_minor), 0)
      FROM customer c LEFT JOIN visit v ON v.customer_id = c.id AND v.status = 'COMPLETED'
      WHERE c.org_id = $1 GROUP BY c.id`, [ORG_ID]);
    // POS pool: CHECKED_IN visits of members (no staff, so no double-booking constraint), after the anchor.
    await step('POS visits', `INSERT INTO visit (id, org_id, store_id, customer_id, status, scheduled_start, scheduled_end, checked_in_at, created_at, updated_at)
      SELECT md5('pos' || n)::uuid, $1, md5('s' || (1 + cust % $2::int))::uuid, md5('c' || cust)::uuid, 'CHECKED_IN',
             $3::timestamptz + make_interval(mins => n), $3::timestamptz + make_interval(mins => n + 60),
             $3::timestamptz, $3::timestamptz, $3::timestamptz
      FROM (SELECT n, pg_temp.member(1 + floor(pg_temp.r('pc', n) * $4::int)::int) AS cust FROM generate_series(1, $5::int) n) x`,
      [ORG_ID, S, ANCHOR, M, P]);
    // Each with the line of its booked service, which completion replaces.
    await step('POS visit lines', `INSERT INTO visit_line (org_id, visit_id, position, kind, service_id, description, quantity, unit_price_minor, amount_minor)
      SELECT $1, md5('pos' || n)::uuid, 0, 'SERVICE', $2, 'Hydrating facial 补水护理', 1, $3, $3 FROM generate_series(1, $4::int) n`,
      [ORG_ID, SERVICE_ID, SERVICE_PRICE_MINOR, P]);
    await step('points accounts', `INSERT INTO points_account (membership_id, org_id, customer_id, balance, created_at, updated_at)
      SELECT md5('m' || i)::uuid, $1, md5('c' || i)::uuid, 0, $2::timestamptz - interval '2 years', $2::timestamptz
      FROM generate_series(1, $3::int) i WHERE i % 5 <> 0`, [ORG_ID, ANCHOR, C]);
    // Ledger: each account's first entry is a 1000-point EARN; then 80% earns of 10–499 and 20% redemptions of 5–49.
    await step('points ledger', `INSERT INTO points_entry (org_id, account_id, customer_id, kind, amount, source, actor, reason, created_at)
      SELECT $1, md5('m' || cust)::uuid, md5('c' || cust)::uuid, kind::points_entry_kind,
             CASE WHEN n <= $3::int THEN 1000 WHEN kind = 'EARN' THEN 10 + floor(pg_temp.r('pa', n) * 490)::int ELSE -(5 + floor(pg_temp.r('pa', n) * 45)::int) END,
             CASE WHEN kind = 'EARN' THEN 'VISIT' ELSE 'REWARD' END, 'bench', NULL,
             $2::timestamptz - make_interval(secs => floor(pg_temp.r('pt', n) * 730 * 86400))
      FROM (
        SELECT n, pg_temp.member(CASE WHEN n <= $3::int THEN n ELSE 1 + floor(pg_temp.r('pm', n) * $3::int)::int END) AS cust,
               CASE WHEN n <= $3::int OR pg_temp.r('pk', n) < 0.8 THEN 'EARN' ELSE 'REDEEM' END AS kind
        FROM generate_series(1, $4::int) n
      ) x`, [ORG_ID, ANCHOR, M, L]);
    await step('balances', `UPDATE points_account a SET balance = e.total FROM (
        SELECT account_id, sum(amount)::int AS total FROM points_entry WHERE org_id = $1 GROUP BY account_id) e
      WHERE e.account_id = a.membership_id`, [ORG_ID]);
    for (const [name, definition] of REBUILT_INDEXES) await step(`index ${name}`, `CREATE INDEX ${name} ON ${definition}`);
    await client.query('COMMIT');
    const t = performance.now();
    await client.query('VACUUM ANALYZE');
    log(`  vacuum analyze: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const ids = async (sql: string, values: unknown[]) => (await client.query<{ id: string }>(sql, values)).rows.map((row) => row.id);
    const customerIds = await ids(`SELECT md5('c' || i)::uuid::text AS id FROM generate_series(1, $1::int) i`, [C]);
    const memberIds = customerIds.filter((_, index) => (index + 1) % 5 !== 0);
    const posVisitIds = await ids(`SELECT md5('pos' || n)::uuid::text AS id FROM generate_series(1, $1::int) n`, [P]);
    return { size, orgId: ORG_ID, ownerStaffId: OWNER_STAFF_ID, customerIds, memberIds, posVisitIds, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    await client.end();
  }
}
