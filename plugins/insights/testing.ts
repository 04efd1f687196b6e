/**
 * Shared arrangements for the insights plugin's tests (not a test file itself). Everything talks to the real test
 * database: a fresh chain is written through the owner client (visits with exact completion instants, which the API
 * cannot backdate), and read back through the API as its staff.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { Principal, StaffRole } from '../../core/auth/principal.ts';
import { instantOfWallClock } from '../../core/graph/local-time.ts';
import type { TestPlatform } from '../../core/testing/platform.ts';

export type Owner = TestPlatform['owner'];
export type As = Parameters<TestPlatform['gql']>[2];

export const STORES = [
  { code: 'SH', timezone: 'Asia/Shanghai' },
  { code: 'CD', timezone: 'Asia/Chongqing' },
  { code: 'UR', timezone: 'Asia/Urumqi' },
] as const;
export type StoreCode = (typeof STORES)[number]['code'];

export interface Chain {
  orgId: string;
  stores: Record<StoreCode, string>;
  owner: Principal;
  staff(role: StaffRole, store: StoreCode): Promise<Principal>;
  customer(options?: { home?: StoreCode; birthday?: string; tags?: string[]; consultantId?: string | null; name?: string }): Promise<string>;
  visit(customerId: string, store: StoreCode, completedAt: Date | string, totalMinor: number, status?: 'COMPLETED' | 'REFUNDED' | 'CANCELLED'): Promise<string>;
  /** Recomputes customer_fact from the visits (as completing and refunding keep it). */
  refreshFacts(): Promise<void>;
}

let phones = 0;
const phone = () => `+8613${String(Date.now() % 1_000_000).padStart(6, '0')}${String(phones++ % 1000).padStart(3, '0')}`;

/** A new chain of its own (stores in Shanghai, Chongqing and Ürümqi time), so its figures are exactly known. */
export async function newChain(owner: Owner, name = `Insights test ${randomUUID().slice(0, 8)}`): Promise<Chain> {
  const org = await owner.organization.create({ data: { kind: 'CHAIN', name, timezone: 'Asia/Shanghai', currency: 'CNY' }, select: { id: true } });
  const stores = {} as Record<StoreCode, string>;
  for (const store of STORES) {
    stores[store.code] = (await owner.store.create({ data: { orgId: org.id, code: store.code, name: `${store.code} store`, timezone: store.timezone }, select: { id: true } })).id;
  }
  const ownerStaff = await owner.staff.create({ data: { orgId: org.id, name: 'Owner', role: 'OWNER' }, select: { id: true } });
  const chain: Chain = {
    orgId: org.id,
    stores,
    owner: { kind: 'STAFF', orgId: org.id, staffId: ownerStaff.id, role: 'OWNER', storeIds: [] },
    async staff(role, store) {
      const staff = await owner.staff.create({ data: { orgId: org.id, name: `${role} ${store}`, role }, select: { id: true } });
      await owner.staffStore.create({ data: { staffId: staff.id, storeId: stores[store], orgId: org.id } });
      return { kind: 'STAFF', orgId: org.id, staffId: staff.id, role, storeIds: role === 'OWNER' || role === 'HQ_ANALYST' ? [] : [stores[store]] };
    },
    async customer(options = {}) {
      const customer = await owner.customer.create({
        data: {
          orgId: org.id,
          name: options.name ?? `Customer ${phones}`,
          phone: phone(),
          homeStoreId: options.home === undefined ? stores.SH : stores[options.home],
          birthday: options.birthday ? new Date(`${options.birthday}T00:00:00Z`) : null,
          tags: options.tags ?? [],
          consultantId: options.consultantId ?? null,
        },
        select: { id: true },
      });
      await owner.customerFact.create({ data: { customerId: customer.id, orgId: org.id } });
      return customer.id;
    },
    async visit(customerId, store, completedAt, totalMinor, status = 'COMPLETED') {
      const at = new Date(completedAt);
      const visit = await owner.visit.create({
        data: {
          orgId: org.id,
          storeId: stores[store],
          customerId,
          status,
          scheduledStart: new Date(at.getTime() - 3_600_000),
          scheduledEnd: at,
          checkedInAt: status === 'CANCELLED' ? null : new Date(at.getTime() - 3_600_000),
          completedAt: status === 'CANCELLED' ? null : at,
          cancelledAt: status === 'CANCELLED' ? at : null,
          refundedAt: status === 'REFUNDED' ? new Date(at.getTime() + 3_600_000) : null,
          totalMinor,
        },
        select: { id: true },
      });
      return visit.id;
    },
    async refreshFacts() {
      await owner.$executeRaw`
        UPDATE customer_fact f SET visit_count = s.visits, total_spend_minor = s.spend, first_visit_at = s.first_at, last_visit_at = s.last_at
        FROM (SELECT c.id, count(v.id)::int AS visits, coalesce(sum(v.total_minor), 0)::bigint AS spend,
                     min(v.completed_at) AS first_at, max(v.completed_at) AS last_at
              FROM customer c LEFT JOIN visit v ON v.customer_id = c.id AND v.status = 'COMPLETED'
              WHERE c.org_id = ${org.id}::uuid GROUP BY c.id) s
        WHERE f.customer_id = s.id`;
    },
  };
  return chain;
}

/** The instant of a wall-clock time in a time zone, e.g. local('2026-01-31T23:30', 'Asia/Urumqi'). */
export function local(wallClock: string, timezone: string): Date {
  return instantOfWallClock(timezone, Date.parse(`${wallClock}Z`));
}

export async function call(api: TestPlatform, document: string, variables: Record<string, unknown> = {}, as: As = 'OWNER') {
  const result = await api.gql(document, variables, as);
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data;
}

/** Statements the application role sent while `work` ran (tenant settings excluded), with their SQL. */
export async function traced<T>(api: TestPlatform, work: () => Promise<T>): Promise<{ result: T; statements: string[] }> {
  const stats = api.running.platform.dbs.stats;
  stats.trace = [];
  try {
    const result = await work();
    return { result, statements: stats.trace.map((s) => s.sql).filter((sql) => !sql.includes("set_config('app.org_id'")) };
  } finally {
    stats.trace = null;
  }
}

/** Every row of the plugin's tables and the outbox, hashed: equal fingerprints mean nothing changed. */
export async function fingerprint(owner: Owner): Promise<Record<string, string>> {
  const tables = ['insights_settings', 'insights_segment', 'insights_care_task', 'insights_care_task_log', 'domain_event', 'processed_event'];
  const rows = await owner.$queryRawUnsafe<{ t: string; h: string }[]>(
    tables
      .map((t) => `SELECT '${t}' AS t, count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM ${t} x`)
      .join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [r.t, r.h]));
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
