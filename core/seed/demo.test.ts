import { PrismaPg } from '@prisma/adapter-pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrismaClient } from '../db/generated/client.ts';
import { createTestDatabase, type TestDatabase } from '../testing/database.ts';
import { isSeeded, seedDemo, type SeedDemoResult } from './demo.ts';
import { formatMemberNumber } from '../graph/membership.ts';

const NOW = new Date('2026-11-20T03:30:00.000Z');
const DAY_MS = 86_400_000;

const connect = (url: string) => new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });

describe('seedDemo', () => {
  let database: TestDatabase;
  let db: PrismaClient;
  let seeded: SeedDemoResult;
  let chainId: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = connect(database.url);
    expect(await isSeeded(db)).toBe(false);
    seeded = await seedDemo(db, { now: NOW });
    chainId = seeded.principals.OWNER!.orgId;
  });

  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  it('reports the database as seeded afterwards', async () => {
    expect(await isSeeded(db)).toBe(true);
  });

  it('returns row counts that match the tables', async () => {
    const tables = Object.keys(seeded.counts);
    expect(tables).toEqual(expect.arrayContaining(['customer', 'visit', 'visit_line', 'membership', 'customer_fact']));
    for (const table of tables) {
      const [row] = await db.$queryRawUnsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM "${table}"`);
      expect(row!.n, table).toBe(seeded.counts[table]);
    }
  });

  it('meets the minimums: stores, staff of every role, customers, a year of visits, a clinic', async () => {
    const chain = await db.organization.findUniqueOrThrow({ where: { id: chainId }, include: { stores: true } });
    expect(chain.kind).toBe('CHAIN');
    expect(chain.stores.length).toBeGreaterThanOrEqual(3);
    expect(new Set(chain.stores.map((s) => s.timezone))).toContain('Asia/Urumqi');

    const roles = await db.staff.groupBy({ by: ['role'], where: { orgId: chainId }, _count: true });
    expect(roles.map((r) => r.role).sort()).toEqual(
      ['BEAUTICIAN', 'CONSULTANT', 'FRONT_DESK', 'HQ_ANALYST', 'OWNER', 'STORE_MANAGER'].sort(),
    );
    // Every store has its own manager, consultants, beauticians and front desk.
    for (const store of chain.stores) {
      const storeRoles = await db.staff.findMany({ where: { stores: { some: { storeId: store.id } } }, select: { role: true } });
      expect(new Set(storeRoles.map((s) => s.role)), store.code).toEqual(
        new Set(['STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN', 'FRONT_DESK']),
      );
    }
    // Org-wide roles have no store rows.
    expect(await db.staffStore.count({ where: { staff: { role: { in: ['OWNER', 'HQ_ANALYST'] } } } })).toBe(0);

    expect(await db.customer.count({ where: { orgId: chainId } })).toBeGreaterThanOrEqual(240);

    const [months] = await db.$queryRaw<{ n: number }[]>`
      SELECT count(DISTINCT date_trunc('month', v.completed_at AT TIME ZONE s.timezone))::int AS n
      FROM visit v JOIN store s ON s.id = v.store_id
      WHERE v.org_id = ${chainId}::uuid AND v.status = 'COMPLETED'`;
    expect(months!.n).toBeGreaterThanOrEqual(12);

    const clinic = await db.organization.findFirstOrThrow({ where: { kind: 'CLINIC' }, include: { stores: true, staff: true } });
    expect(clinic.stores).toHaveLength(1);
    expect(clinic.staff.map((s) => s.role).sort()).toEqual(['CONSULTANT', 'OWNER']);
    expect(await db.organization.count({ where: { kind: 'CHAIN' } })).toBe(2);
  });

  it('gives every customer a unique E.164 mobile number within the organization', async () => {
    const customers = await db.customer.findMany({ where: { orgId: chainId }, select: { phone: true } });
    const phones = customers.map((c) => c.phone);
    expect(new Set(phones).size).toBe(phones.length);
    for (const phone of phones) expect(phone).toMatch(/^\+861[3-9]\d{9}$/);
  });

  it('keeps customer_fact equal to an aggregate of the completed visits', async () => {
    const customers = await db.customer.findMany({ select: { id: true, orgId: true } });
    const visits = await db.visit.findMany({
      where: { status: 'COMPLETED' },
      select: { customerId: true, completedAt: true, totalMinor: true },
    });
    const expected = new Map(
      customers.map((c) => [c.id, { orgId: c.orgId, visitCount: 0, first: null as number | null, last: null as number | null, spend: 0 }]),
    );
    for (const v of visits) {
      const e = expected.get(v.customerId)!;
      const at = v.completedAt!.getTime();
      e.visitCount += 1;
      e.first = e.first === null ? at : Math.min(e.first, at);
      e.last = e.last === null ? at : Math.max(e.last, at);
      e.spend += v.totalMinor;
    }
    const facts = await db.customerFact.findMany();
    expect(facts).toHaveLength(customers.length);
    for (const f of facts) {
      const e = expected.get(f.customerId)!;
      expect({
        orgId: f.orgId,
        visitCount: f.visitCount,
        first: f.firstVisitAt?.getTime() ?? null,
        last: f.lastVisitAt?.getTime() ?? null,
        spend: Number(f.totalSpendMinor),
      }).toEqual(e);
    }
    // The data has the shapes the lifecycle features look for: loyal, lapsed (no visit for 90+ days) and new customers.
    const chainFacts = facts.filter((f) => f.orgId === chainId);
    expect(chainFacts.filter((f) => f.visitCount >= 12).length).toBeGreaterThan(10);
    expect(chainFacts.filter((f) => f.lastVisitAt && f.lastVisitAt.getTime() < NOW.getTime() - 90 * DAY_MS).length).toBeGreaterThan(10);
    expect(chainFacts.filter((f) => f.firstVisitAt && f.firstVisitAt.getTime() > NOW.getTime() - 60 * DAY_MS).length).toBeGreaterThan(5);
  });

  it('never double-books a staff member: open visits do not overlap', async () => {
    const [overlaps] = await db.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM visit a JOIN visit b
        ON a.staff_id = b.staff_id AND a.id < b.id
       AND tstzrange(a.scheduled_start, a.scheduled_end) && tstzrange(b.scheduled_start, b.scheduled_end)
      WHERE a.status IN ('BOOKED', 'CHECKED_IN') AND b.status IN ('BOOKED', 'CHECKED_IN')`;
    expect(overlaps!.n).toBe(0);
    const booked = await db.visit.findMany({ where: { status: 'BOOKED' }, select: { scheduledStart: true } });
    expect(booked.length).toBeGreaterThan(10);
    for (const v of booked) {
      expect(v.scheduledStart.getTime()).toBeGreaterThan(NOW.getTime());
      expect(v.scheduledStart.getTime()).toBeLessThan(NOW.getTime() + 8 * DAY_MS);
    }
    const past = await db.visit.count({ where: { status: { not: 'BOOKED' }, scheduledEnd: { gt: NOW } } });
    expect(past).toBe(0);
  });

  it('adds up: line amounts are quantity × price − discount and sum to the visit total', async () => {
    const visits = await db.visit.findMany({ include: { lines: { orderBy: { position: 'asc' } } } });
    expect(visits.length).toBeGreaterThan(1000);
    for (const v of visits) {
      expect(v.lines.length).toBeGreaterThanOrEqual(1);
      expect(v.lines.length).toBeLessThanOrEqual(3);
      expect(v.lines.map((l) => l.position)).toEqual(v.lines.map((_, i) => i));
      for (const l of v.lines) expect(l.amountMinor).toBe(l.quantity * l.unitPriceMinor - l.discountMinor);
      expect(v.lines.reduce((sum, l) => sum + l.amountMinor, 0)).toBe(v.totalMinor);
    }
  });

  it('schedules visits within opening hours in the store timezone, as long as their services', async () => {
    const [outside] = await db.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM visit v JOIN store s ON s.id = v.store_id
      WHERE (v.scheduled_start AT TIME ZONE s.timezone)::time < time '10:00'
         OR (v.scheduled_end AT TIME ZONE s.timezone)::time > time '21:00'
         OR (v.scheduled_start AT TIME ZONE s.timezone)::date <> (v.scheduled_end AT TIME ZONE s.timezone)::date`;
    expect(outside!.n).toBe(0);
    // Ürümqi is UTC+6: its opening hours are 04:00–15:00 UTC.
    const [urumqi] = await db.$queryRaw<{ min: number; max: number }[]>`
      SELECT min(extract(hour FROM v.scheduled_start AT TIME ZONE 'UTC'))::int AS min,
             max(extract(hour FROM v.scheduled_end AT TIME ZONE 'UTC') + extract(minute FROM v.scheduled_end) / 60.0)::float AS max
      FROM visit v JOIN store s ON s.id = v.store_id WHERE s.timezone = 'Asia/Urumqi'`;
    expect(urumqi!.min).toBeGreaterThanOrEqual(4);
    expect(urumqi!.max).toBeLessThanOrEqual(15);
    const [wrongLength] = await db.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM visit v
      WHERE v.scheduled_end - v.scheduled_start <> (
        SELECT make_interval(mins => sum(sv.duration_minutes)::int)
        FROM visit_line l JOIN service sv ON sv.id = l.service_id WHERE l.visit_id = v.id)`;
    expect(wrongLength!.n).toBe(0);
  });

  it('keeps bookings with a beautician of the store and away from contraindicated services', async () => {
    const [wrongStaff] = await db.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM visit v JOIN staff st ON st.id = v.staff_id
      WHERE v.org_id = ${chainId}::uuid
        AND (st.role <> 'BEAUTICIAN' OR NOT EXISTS (
          SELECT 1 FROM staff_store ss WHERE ss.staff_id = v.staff_id AND ss.store_id = v.store_id))`;
    expect(wrongStaff!.n).toBe(0);
    const [contraindicated] = await db.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM visit_line l
      JOIN service sv ON sv.id = l.service_id
      JOIN visit v ON v.id = l.visit_id
      JOIN customer c ON c.id = v.customer_id
      LEFT JOIN skin_profile sp ON sp.customer_id = c.id
      WHERE sv.contraindication_tags && (c.tags || coalesce(sp.allergies, '{}') || coalesce(sp.sensitivities, '{}'))`;
    expect(contraindicated!.n).toBe(0);
  });

  it('numbers memberships in sequence and leaves the counter at the highest number', async () => {
    const members = await db.membership.findMany({ where: { orgId: chainId }, orderBy: { memberNumber: 'asc' } });
    const customers = await db.customer.count({ where: { orgId: chainId } });
    expect(members.length / customers).toBeGreaterThan(0.6);
    expect(members.length / customers).toBeLessThan(0.8);
    expect(members.map((m) => m.memberNumber)).toEqual(members.map((_, i) => formatMemberNumber(i + 1)));
    const counter = await db.orgCounter.findUniqueOrThrow({ where: { orgId_name: { orgId: chainId, name: 'member_number' } } });
    expect(counter.value).toBe(BigInt(members.length));
  });

  it('records health-data consent for every skin profile', async () => {
    const profiles = await db.skinProfile.findMany({ select: { customerId: true } });
    expect(profiles.length).toBeGreaterThan(150);
    const granted = await db.consent.findMany({
      where: { purpose: 'HEALTH_DATA', granted: true, recordedBy: 'seed' },
      select: { customerId: true },
    });
    const withConsent = new Set(granted.map((c) => c.customerId));
    expect(profiles.filter((p) => !withConsent.has(p.customerId))).toEqual([]);
  });

  it('returns principals that match the stored rows', async () => {
    const p = seeded.principals;
    expect(Object.keys(p).sort()).toEqual(
      ['BEAUTICIAN', 'CLINIC_STAFF', 'CONSULTANT', 'CUSTOMER', 'FRONT_DESK', 'HQ_ANALYST', 'OTHER_CHAIN_OWNER', 'OWNER', 'POS_CLIENT', 'STORE_MANAGER'].sort(),
    );
    const firstStore = await db.store.findFirstOrThrow({ where: { orgId: chainId, code: 'SH-01' } });
    for (const label of ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN', 'FRONT_DESK', 'CLINIC_STAFF', 'OTHER_CHAIN_OWNER']) {
      const principal = p[label]!;
      if (principal.kind !== 'STAFF') throw new Error(`${label} is not staff`);
      const staff = await db.staff.findUniqueOrThrow({ where: { id: principal.staffId }, include: { stores: true } });
      expect(staff.orgId, label).toBe(principal.orgId);
      expect(staff.role, label).toBe(principal.role);
      expect(staff.active, label).toBe(true);
      expect(staff.stores.map((s) => s.storeId).sort(), label).toEqual([...principal.storeIds].sort());
      if (label in { STORE_MANAGER: 1, CONSULTANT: 1, BEAUTICIAN: 1, FRONT_DESK: 1 }) {
        expect(principal.role).toBe(label);
        expect(principal.storeIds).toEqual([firstStore.id]);
      }
    }
    expect(p.CLINIC_STAFF!.orgId).not.toBe(chainId);
    expect(p.OTHER_CHAIN_OWNER!.orgId).not.toBe(chainId);
    expect(p.OTHER_CHAIN_OWNER!.orgId).not.toBe(p.CLINIC_STAFF!.orgId);

    const customer = p.CUSTOMER!;
    if (customer.kind !== 'CUSTOMER') throw new Error('CUSTOMER is not a customer');
    const row = await db.customer.findUniqueOrThrow({
      where: { id: customer.customerId },
      include: { membership: true, skinProfile: true, facts: true },
    });
    expect(row.orgId).toBe(chainId);
    expect(row.membership?.status).toBe('ACTIVE');
    expect(row.skinProfile).not.toBeNull();
    expect(row.facts!.visitCount).toBeGreaterThan(5);

    const pos = p.POS_CLIENT!;
    if (pos.kind !== 'API_CLIENT') throw new Error('POS_CLIENT is not an API client');
    const client = await db.apiClient.findUniqueOrThrow({ where: { id: pos.clientId } });
    expect(client.orgId).toBe(chainId);
    expect(client.storeIds).toEqual([firstStore.id]);
    expect(client.scopes).toEqual(pos.scopes);
    expect(pos.scopes).toEqual(expect.arrayContaining(['customers:read', 'visits:write', 'points:redeem']));
  });

  it('is deterministic: a second database seeded with the same clock holds the same customers', async () => {
    const other = await createTestDatabase();
    const otherDb = connect(other.url);
    try {
      await seedDemo(otherDb, { now: NOW });
      const snapshot = async (client: PrismaClient) => {
        const chain = await client.organization.findFirstOrThrow({ where: { kind: 'CHAIN' }, orderBy: { createdAt: 'asc' } });
        const customers = await client.customer.findMany({
          where: { orgId: chain.id },
          orderBy: [{ createdAt: 'asc' }, { phone: 'asc' }],
          select: { name: true, phone: true, birthday: true, gender: true, tags: true },
        });
        const visits = await client.$queryRaw<{ phone: string; start: Date; status: string; total: number }[]>`
          SELECT c.phone, v.scheduled_start AS start, v.status::text AS status, v.total_minor AS total
          FROM visit v JOIN customer c ON c.id = v.customer_id
          ORDER BY c.phone, v.scheduled_start, v.status`;
        const members = await client.membership.findMany({
          orderBy: { memberNumber: 'asc' },
          select: { memberNumber: true, joinedOn: true, customer: { select: { phone: true } } },
        });
        return { customers, visits, members };
      };
      const [first, second] = [await snapshot(db), await snapshot(otherDb)];
      expect(first.customers.length).toBeGreaterThanOrEqual(240);
      expect(second.customers).toEqual(first.customers);
      expect(second.visits).toEqual(first.visits);
      expect(second.members).toEqual(first.members);
    } finally {
      await otherDb.$disconnect();
      await other.drop();
    }
  });
});
