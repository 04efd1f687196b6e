/**
 * Demo data: a beauty-salon chain with four stores in three Chinese timezones, a year of visits, memberships,
 * skin profiles and consents; a partner clinic; a second small chain for cross-tenant demos; a POS API client.
 *
 * Deterministic: every choice comes from one seeded PRNG (mulberry32), so two runs with the same `now` produce the
 * same names, phones, visits and amounts. Row ids are random UUIDs (they are not part of the story).
 * Everything is written in one transaction through an owner connection (no row-level security).
 * No domain events are written: the outbox trigger would enqueue a job per row.
 */
import { randomUUID } from 'node:crypto';
import type { PrismaClient, Prisma } from '../db/generated/client.ts';
import type { Principal, StaffRole } from '../auth/principal.ts';
import { instantOfWallClock, localParts } from '../graph/local-time.ts';
import { formatMemberNumber } from '../graph/membership.ts';

export interface DemoPrincipals {
  [label: string]: Principal;
}

export interface SeedDemoOptions {
  /** A source of uniform numbers in [0, 1). Defaults to mulberry32 with a fixed seed. */
  random?: () => number;
  /** The present moment of the story: visits run up to it, bookings follow it. Defaults to the current time. */
  now?: Date;
}

export interface SeedDemoResult {
  principals: DemoPrincipals;
  /** Rows per table after seeding (the whole table, not only the rows written by this call). */
  counts: Record<string, number>;
}

type Tx = Prisma.TransactionClient;

export const DEMO_SEED = 0x5eed_1a2b;
export const DEMO_CHAIN_NAME = 'Lumière Beauty 丽美连锁';
export const DEMO_CLINIC_NAME = 'Harmony Aesthetic Clinic 和美医美诊所';
export const DEMO_OTHER_CHAIN_NAME = 'Glow Studio 光彩美学';
export const DEMO_CUSTOMER_COUNT = 260;
export const MEMBER_NUMBER_COUNTER = 'member_number';
export const POS_SCOPES = [
  'customers:read',
  'customers:write',
  'customers:contact',
  'visits:read',
  'visits:write',
  'memberships:write',
  'points:redeem',
  'packages:consume',
];

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
const OPEN_MINUTE = 10 * 60;
const CLOSE_MINUTE = 21 * 60;
const SLOT_MINUTES = 30;

// ---------------------------------------------------------------------------------------------------------------
// Randomness

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

class Rng {
  constructor(readonly next: () => number) {}
  /** Integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  weighted<T>(entries: readonly (readonly [T, number])[]): T {
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let r = this.next() * total;
    for (const [value, w] of entries) {
      r -= w;
      if (r < 0) return value;
    }
    return entries[entries.length - 1]![0];
  }
  /** Up to n distinct items, in list order. */
  some<T>(items: readonly T[], n: number): T[] {
    const chosen = new Set<number>();
    while (chosen.size < Math.min(n, items.length)) chosen.add(Math.floor(this.next() * items.length));
    return [...chosen].sort((a, b) => a - b).map((i) => items[i]!);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Local days in a store's timezone

/** The local calendar day of an instant, as days since 1970-01-01. */
function localDayNumber(timeZone: string, ms: number): number {
  const p = localParts(timeZone, ms);
  return Date.UTC(p.year, p.month - 1, p.day) / DAY_MS;
}

/** The instant of a local wall-clock time (day number + minutes after local midnight) in a timezone. */
const instants = new Map<string, number>();

export function zonedTimeToUtc(timeZone: string, dayNumber: number, minuteOfDay: number): Date {
  const key = `${timeZone} ${dayNumber} ${minuteOfDay}`;
  let utc = instants.get(key);
  if (utc === undefined) {
    utc = instantOfWallClock(timeZone, dayNumber * DAY_MS + minuteOfDay * MINUTE_MS).getTime();
    instants.set(key, utc);
  }
  return new Date(utc);
}

/** A DATE column value: midnight UTC of the local calendar day. */
function dateOfDay(dayNumber: number): Date {
  return new Date(dayNumber * DAY_MS);
}

// ---------------------------------------------------------------------------------------------------------------
// Reference data

const SURNAMES = [
  '王', '李', '张', '刘', '陈', '杨', '黄', '赵', '吴', '周', '徐', '孙', '马', '朱', '胡', '郭', '何', '林', '罗',
  '高', '郑', '梁', '谢', '宋', '唐', '许', '韩', '冯', '邓', '曹', '彭', '曾', '肖', '田', '董', '潘', '袁', '蔡',
  '蒋', '余', '于', '杜', '叶', '程', '苏', '魏', '吕', '丁', '沈', '姚',
] as const;
const RARE_SURNAMES = ['欧阳', '上官', '司马', '诸葛'] as const;
const GIVEN_YOUNG = [
  '思雨', '雨涵', '欣怡', '梓涵', '诗琪', '一诺', '若曦', '可馨', '紫萱', '语嫣', '梦瑶', '子涵', '佳琪', '心怡',
  '嘉欣', '雨桐', '诗涵', '悦', '彤', '萱',
] as const;
const GIVEN_MIDDLE = [
  '静怡', '丽', '婷婷', '晓雯', '敏', '婉婷', '慧敏', '佳怡', '雅琪', '美玲', '静', '颖', '琳', '洁', '雪', '娜',
  '倩', '晓燕', '丹', '璐', '蕾', '薇', '芳', '艳',
] as const;
const GIVEN_OLDER = ['秀英', '桂芳', '淑华', '丽华', '海燕', '红梅', '玉兰', '凤英', '秀兰', '建华', '春梅', '美华'] as const;
const GIVEN_MALE = ['伟', '强', '磊', '浩然', '子轩', '俊杰', '宇航', '志明', '文博', '昊天'] as const;
const UYGHUR_NAMES = ['古丽娜扎', '迪丽热巴', '阿依古丽·买买提', '热依拉·艾力', '帕提古丽', '努尔古丽·吐尔逊'] as const;
const ENGLISH_FIRST = [
  'Emma', 'Sophie', 'Olivia', 'Grace', 'Chloe', 'Lily', 'Amy', 'Vivian', 'Cindy', 'Coco', 'Jessica', 'Tiffany',
  'Nicole', 'Angela', 'Michelle', 'Zoe', 'Hannah', 'Iris',
] as const;
const ENGLISH_LAST = ['Chen', 'Wang', 'Li', 'Zhang', 'Liu', 'Lin', 'Huang', 'Zhou', 'Wu', 'Xu', 'Smith', 'Müller'] as const;
const MOBILE_PREFIXES = ['138', '139', '136', '137', '135', '150', '151', '152', '158', '159', '186', '187', '188', '177', '189'];

interface StoreSeed {
  code: string;
  name: string;
  timezone: string;
  address: string;
  phone: string;
  openedMonthsAgo: number;
  share: number;
  consultants: number;
  beauticians: number;
  frontDesk: number;
}

const CHAIN_STORES: StoreSeed[] = [
  {
    code: 'SH-01',
    name: '丽美·上海静安店 Lumière Shanghai Jing’an',
    timezone: 'Asia/Shanghai',
    address: '上海市静安区南京西路1266号 3F',
    phone: '+862162881266',
    openedMonthsAgo: 48,
    share: 35,
    consultants: 3,
    beauticians: 4,
    frontDesk: 2,
  },
  {
    code: 'BJ-01',
    name: '丽美·北京三里屯店 Lumière Beijing Sanlitun',
    timezone: 'Asia/Shanghai',
    address: '北京市朝阳区三里屯路19号院 4号楼 2F',
    phone: '+861065081919',
    openedMonthsAgo: 36,
    share: 30,
    consultants: 3,
    beauticians: 4,
    frontDesk: 1,
  },
  {
    code: 'CD-01',
    name: '丽美·成都太古里店 Lumière Chengdu Taikoo Li',
    timezone: 'Asia/Chongqing',
    address: '成都市锦江区中纱帽街8号',
    phone: '+862886080808',
    openedMonthsAgo: 26,
    share: 20,
    consultants: 2,
    beauticians: 3,
    frontDesk: 1,
  },
  {
    code: 'UR-01',
    name: '丽美·乌鲁木齐友好店 Lumière Ürümqi Youhao',
    timezone: 'Asia/Urumqi',
    address: '乌鲁木齐市沙依巴克区友好南路668号',
    phone: '+869914516688',
    openedMonthsAgo: 18,
    share: 15,
    consultants: 2,
    beauticians: 3,
    frontDesk: 1,
  },
];

type Tier = 'basic' | 'mid' | 'premium';

interface ServiceSeed {
  key: string;
  category: 'FACIAL' | 'BODY' | 'NAIL' | 'HAIR_REMOVAL' | 'ANTI_AGEING' | 'MEDICAL_AESTHETIC';
  name: string;
  durationMinutes: number;
  priceMinor: number;
  repurchaseCycleDays: number | null;
  contraindicationTags: string[];
  tier: Tier;
  addOn?: boolean;
  active?: boolean;
  readings?: boolean;
}

const CHAIN_SERVICES: ServiceSeed[] = [
  { key: 'hydrating', category: 'FACIAL', name: '补水焕颜护理 Hydrating facial', durationMinutes: 60, priceMinor: 68000, repurchaseCycleDays: 28, contraindicationTags: [], tier: 'mid', readings: true },
  { key: 'cleansing', category: 'FACIAL', name: '深层清洁护理 Deep-cleansing facial', durationMinutes: 75, priceMinor: 48000, repurchaseCycleDays: 28, contraindicationTags: [], tier: 'basic', readings: true },
  { key: 'peel', category: 'FACIAL', name: '果酸焕肤 Glycolic chemical peel', durationMinutes: 45, priceMinor: 88000, repurchaseCycleDays: 28, contraindicationTags: ['retinol', 'sensitive-skin', 'rosacea'], tier: 'mid', readings: true },
  { key: 'soothing', category: 'FACIAL', name: '舒敏修护护理 Soothing repair facial', durationMinutes: 60, priceMinor: 72000, repurchaseCycleDays: 21, contraindicationTags: [], tier: 'mid', readings: true },
  { key: 'neck', category: 'BODY', name: '肩颈舒缓按摩 Neck & shoulder massage', durationMinutes: 45, priceMinor: 36800, repurchaseCycleDays: 14, contraindicationTags: [], tier: 'basic', addOn: true },
  { key: 'spa', category: 'BODY', name: '精油全身SPA Aromatherapy body spa', durationMinutes: 90, priceMinor: 98000, repurchaseCycleDays: 30, contraindicationTags: ['fragrance', 'pregnancy'], tier: 'mid' },
  { key: 'manicure', category: 'NAIL', name: '基础美甲 Classic manicure', durationMinutes: 45, priceMinor: 18800, repurchaseCycleDays: 21, contraindicationTags: [], tier: 'basic' },
  { key: 'gel', category: 'NAIL', name: '凝胶美甲 Gel manicure', durationMinutes: 75, priceMinor: 32800, repurchaseCycleDays: 21, contraindicationTags: [], tier: 'basic' },
  { key: 'underarm', category: 'HAIR_REMOVAL', name: '冰点脱毛·腋下 Ice-point hair removal, underarm', durationMinutes: 30, priceMinor: 38000, repurchaseCycleDays: 42, contraindicationTags: ['photosensitivity'], tier: 'basic' },
  { key: 'legs', category: 'HAIR_REMOVAL', name: '冰点脱毛·全腿 Ice-point hair removal, full legs', durationMinutes: 60, priceMinor: 128000, repurchaseCycleDays: 42, contraindicationTags: ['photosensitivity'], tier: 'mid' },
  { key: 'rf', category: 'ANTI_AGEING', name: '射频紧致提拉 RF firming lift', durationMinutes: 90, priceMinor: 168000, repurchaseCycleDays: 30, contraindicationTags: ['pacemaker', 'pregnancy'], tier: 'premium', readings: true },
  { key: 'eye', category: 'ANTI_AGEING', name: '胶原眼部护理 Collagen eye treatment', durationMinutes: 30, priceMinor: 58000, repurchaseCycleDays: 28, contraindicationTags: [], tier: 'mid', addOn: true },
  { key: 'ipl', category: 'MEDICAL_AESTHETIC', name: '光子嫩肤 IPL photo-rejuvenation', durationMinutes: 45, priceMinor: 128000, repurchaseCycleDays: 30, contraindicationTags: ['photosensitivity', 'retinol', 'pregnancy'], tier: 'premium', readings: true },
  { key: 'filler', category: 'MEDICAL_AESTHETIC', name: '玻尿酸填充 Hyaluronic-acid filler', durationMinutes: 60, priceMinor: 380000, repurchaseCycleDays: 180, contraindicationTags: ['hyaluronic-acid', 'pregnancy'], tier: 'premium' },
  { key: 'hifu', category: 'MEDICAL_AESTHETIC', name: '超声刀提拉 HIFU ultrasound lifting', durationMinutes: 120, priceMinor: 880000, repurchaseCycleDays: 365, contraindicationTags: ['pregnancy', 'pacemaker'], tier: 'premium' },
  { key: 'repair', category: 'FACIAL', name: '术后修复护理 Post-procedure repair care', durationMinutes: 60, priceMinor: 52000, repurchaseCycleDays: 14, contraindicationTags: [], tier: 'premium', readings: true },
  // Retired from the menu five months ago; older visits still name it.
  { key: 'guasha', category: 'BODY', name: '经典刮痧 Traditional gua sha', durationMinutes: 45, priceMinor: 26800, repurchaseCycleDays: 30, contraindicationTags: [], tier: 'basic', active: false },
];

interface ProductSeed {
  sku: string;
  name: string;
  priceMinor: number;
  allergen?: string;
}

const CHAIN_PRODUCTS: ProductSeed[] = [
  { sku: 'LM-SER-001', name: '玻尿酸保湿精华 Hyaluronic serum 30ml', priceMinor: 38000, allergen: 'hyaluronic-acid' },
  { sku: 'LM-CRM-002', name: '神经酰胺修护面霜 Ceramide repair cream 50ml', priceMinor: 42000 },
  { sku: 'LM-SUN-003', name: '轻薄防晒乳 SPF50+ sunscreen 50ml', priceMinor: 19800 },
  { sku: 'LM-MSK-004', name: '补水面膜 Hydrating sheet masks ×10', priceMinor: 16800 },
  { sku: 'LM-CLN-005', name: '氨基酸洁面 Amino-acid cleanser 120ml', priceMinor: 12800 },
  { sku: 'LM-OIL-006', name: '玫瑰身体精油 Rose body oil 100ml', priceMinor: 26800, allergen: 'fragrance' },
];

const SERVICE_POOLS: Record<Tier, string[]> = {
  basic: ['manicure', 'gel', 'cleansing', 'neck', 'underarm', 'guasha'],
  mid: ['hydrating', 'soothing', 'peel', 'spa', 'legs', 'eye', 'cleansing', 'gel'],
  premium: ['rf', 'ipl', 'hydrating', 'repair', 'filler', 'hifu', 'eye', 'soothing'],
};

type Archetype = 'core' | 'maintenance' | 'regular' | 'potential' | 'lapsed' | 'new' | 'prospect';

const ARCHETYPES: (readonly [Archetype, number])[] = [
  ['core', 15],
  ['maintenance', 22],
  ['regular', 18],
  ['potential', 15],
  ['lapsed', 15],
  ['new', 10],
  ['prospect', 5],
];

const MEMBERSHIP_RATE: Record<Archetype, number> = {
  core: 1,
  maintenance: 0.85,
  regular: 0.8,
  potential: 0.65,
  lapsed: 0.6,
  new: 0.4,
  prospect: 0.1,
};

const BOOKING_RATE: Record<Archetype, number> = {
  core: 0.5,
  maintenance: 0.35,
  regular: 0.2,
  potential: 0.1,
  lapsed: 0,
  new: 0.3,
  prospect: 0.4,
};

const TEAS = ['jasmine', 'longjing', 'pu-erh', 'chrysanthemum', 'rose', 'red-date ginger', 'warm water'];
const MUSIC = ['soft piano', 'white noise', 'guzheng', 'nature sounds', 'jazz', 'silence'];
const CARE_PREFERENCES = ['light-pressure', 'firm-pressure', 'fragrance-free-products', 'warm-towels', 'quiet-session', 'no-steam', 'female-beautician'];
const CANCEL_REASONS = ['客户临时有事 Customer had a conflict', '身体不适 Unwell', '改期 Rescheduled', '天气原因 Bad weather'];
const VISIT_NOTES = [
  '客户反馈肤感很好 Customer happy with the result',
  '建议本周加强防晒 Advised extra sun protection this week',
  '下次可尝试眼部护理 Suggested the eye treatment next time',
  '轻微泛红，已冰敷 Slight redness, cooled down',
  '客户希望下次预约周末 Prefers weekend appointments',
];

// ---------------------------------------------------------------------------------------------------------------
// In-memory model

interface StaffRow {
  id: string;
  orgId: string;
  name: string;
  role: StaffRole;
  phone: string;
  email: string;
  active: boolean;
  createdAt: Date;
  storeIds: string[];
  /** Last local day (day number) this person worked, for staff who left. */
  leftOnDay?: number;
}

interface StoreRow {
  id: string;
  seed: StoreSeed;
  createdAt: Date;
  openedDay: number;
  todayDay: number;
}

interface VisitRow {
  id: string;
  orgId: string;
  storeId: string;
  customerId: string;
  staffId: string;
  status: 'BOOKED' | 'COMPLETED' | 'CANCELLED' | 'NO_SHOW';
  scheduledStart: Date;
  scheduledEnd: Date;
  checkedInAt: Date | null;
  completedAt: Date | null;
  cancelledAt: Date | null;
  cancelReason: string | null;
  notes: string | null;
  readings: Prisma.InputJsonValue;
  totalMinor: number;
  createdAt: Date;
  updatedAt: Date;
}

interface LineRow {
  id: string;
  orgId: string;
  visitId: string;
  position: number;
  kind: 'SERVICE' | 'PRODUCT';
  serviceId: string | null;
  productId: string | null;
  staffId: string | null;
  description: string;
  quantity: number;
  unitPriceMinor: number;
  discountMinor: number;
  amountMinor: number;
}

/** Busy intervals per staff member, so that no one is ever double-booked (the database only forbids it for open visits). */
class Diary {
  readonly #busy = new Map<string, [number, number][]>();
  isFree(staffId: string, start: number, end: number): boolean {
    return !(this.#busy.get(staffId) ?? []).some(([s, e]) => s < end && start < e);
  }
  book(staffId: string, start: number, end: number): void {
    const list = this.#busy.get(staffId) ?? [];
    list.push([start, end]);
    this.#busy.set(staffId, list);
  }
}

// ---------------------------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------------------------
// Bulk insert: one statement per table, the rows passed as a single JSON parameter (Prisma's createMany spends
// most of its time building the statement when there are thousands of rows).

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

async function bulkInsert(tx: Tx, table: string, rows: Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  const keys = Object.keys(rows[0]!);
  for (const row of rows) {
    if (Object.keys(row).length !== keys.length) throw new Error(`seed: rows for ${table} have different columns`);
  }
  const columns = keys.map(snake).map((c) => `"${c}"`).join(', ');
  const json = JSON.stringify(rows.map((row) => Object.fromEntries(keys.map((k) => [snake(k), row[k]]))));
  await tx.$executeRawUnsafe(
    `INSERT INTO "${table}" (${columns}) SELECT ${columns} FROM jsonb_populate_recordset(NULL::"${table}", $1::jsonb)`,
    json,
  );
}

/** A DATE column value as text, so that JSON carries no time or zone. */
const isoDate = (date: Date | null) => (date ? date.toISOString().slice(0, 10) : null);

export async function isSeeded(db: PrismaClient | Tx): Promise<boolean> {
  return (await db.organization.findFirst({ select: { id: true } })) !== null;
}

export async function seedDemo(db: PrismaClient, options: SeedDemoOptions = {}): Promise<SeedDemoResult> {
  return db.$transaction((tx) => seedInTransaction(tx, options), { timeout: 120_000, maxWait: 20_000 });
}

async function seedInTransaction(tx: Tx, options: SeedDemoOptions): Promise<SeedDemoResult> {
  const rng = new Rng(options.random ?? mulberry32(DEMO_SEED));
  const now = options.now ?? new Date();
  const nowMs = now.getTime();
  const ago = (days: number) => new Date(nowMs - days * DAY_MS);

  const phones = new Set<string>();
  const newPhone = (prefixes: readonly string[] = MOBILE_PREFIXES): string => {
    for (;;) {
      const phone = `+86${rng.pick(prefixes)}${String(rng.int(0, 99_999_999)).padStart(8, '0')}`;
      if (!phones.has(phone)) {
        phones.add(phone);
        return phone;
      }
    }
  };

  // --- Organizations and stores -------------------------------------------------------------------------------
  const chainId = randomUUID();
  const clinicId = randomUUID();
  const otherChainId = randomUUID();
  await tx.organization.createMany({
    data: [
      { id: chainId, kind: 'CHAIN', name: DEMO_CHAIN_NAME, timezone: 'Asia/Shanghai', currency: 'CNY', createdAt: ago(4 * 365 + 30) },
      { id: clinicId, kind: 'CLINIC', name: DEMO_CLINIC_NAME, timezone: 'Asia/Shanghai', currency: 'CNY', createdAt: ago(3 * 365) },
      { id: otherChainId, kind: 'CHAIN', name: DEMO_OTHER_CHAIN_NAME, timezone: 'Asia/Shanghai', currency: 'CNY', createdAt: ago(2 * 365) },
    ],
  });

  const stores: StoreRow[] = CHAIN_STORES.map((seed) => {
    const createdAt = ago(seed.openedMonthsAgo * 30);
    return {
      id: randomUUID(),
      seed,
      createdAt,
      openedDay: localDayNumber(seed.timezone, createdAt.getTime()),
      todayDay: localDayNumber(seed.timezone, nowMs),
    };
  });
  const clinicStoreId = randomUUID();
  const otherStoreId = randomUUID();
  await tx.store.createMany({
    data: [
      ...stores.map((s) => ({
        id: s.id,
        orgId: chainId,
        code: s.seed.code,
        name: s.seed.name,
        timezone: s.seed.timezone,
        address: s.seed.address,
        phone: s.seed.phone,
        createdAt: s.createdAt,
      })),
      {
        id: clinicStoreId,
        orgId: clinicId,
        code: 'HM-01',
        name: '和美医美·上海徐汇诊所 Harmony Xuhui Clinic',
        timezone: 'Asia/Shanghai',
        address: '上海市徐汇区衡山路10号',
        phone: '+862164371010',
        createdAt: ago(3 * 365),
      },
      {
        id: otherStoreId,
        orgId: otherChainId,
        code: 'HZ-01',
        name: '光彩美学·杭州西湖店 Glow Hangzhou West Lake',
        timezone: 'Asia/Shanghai',
        address: '杭州市西湖区湖滨路28号',
        phone: '+8657187062828',
        createdAt: ago(2 * 365),
      },
    ],
  });

  // --- Staff --------------------------------------------------------------------------------------------------
  const staff: StaffRow[] = [];
  const usedStaffNames = new Set<string>();
  const staffName = (male = false): string => {
    for (;;) {
      const name = rng.pick(SURNAMES) + (male ? rng.pick(GIVEN_MALE) : rng.pick([...GIVEN_MIDDLE, ...GIVEN_YOUNG]));
      if (!usedStaffNames.has(name)) {
        usedStaffNames.add(name);
        return name;
      }
    }
  };
  const addStaff = (orgId: string, domain: string, role: StaffRole, storeIds: string[], createdAt: Date, extra: Partial<StaffRow> = {}) => {
    const row: StaffRow = {
      id: randomUUID(),
      orgId,
      name: extra.name ?? staffName(role === 'OWNER' && rng.chance(0.3)),
      role,
      phone: newPhone(['139', '186']),
      email: '',
      active: true,
      createdAt,
      storeIds,
      ...extra,
    };
    row.email = `${role.toLowerCase().replace('_', '-')}.${staff.filter((s) => s.orgId === orgId && s.role === role).length + 1}@${domain}`;
    staff.push(row);
    return row;
  };

  const chainDomain = 'lumiere-beauty.example';
  const owner = addStaff(chainId, chainDomain, 'OWNER', [], ago(4 * 365 + 30));
  const hqAnalyst = addStaff(chainId, chainDomain, 'HQ_ANALYST', [], ago(700));
  addStaff(chainId, chainDomain, 'HQ_ANALYST', [], ago(300));
  const byStore = new Map<string, { manager: StaffRow; consultants: StaffRow[]; beauticians: StaffRow[]; frontDesk: StaffRow[] }>();
  for (const store of stores) {
    const hired = () => new Date(store.createdAt.getTime() + rng.int(0, 120) * DAY_MS);
    const manager = addStaff(chainId, chainDomain, 'STORE_MANAGER', [store.id], store.createdAt);
    const consultants = Array.from({ length: store.seed.consultants }, () => addStaff(chainId, chainDomain, 'CONSULTANT', [store.id], hired()));
    const beauticians = Array.from({ length: store.seed.beauticians }, () => addStaff(chainId, chainDomain, 'BEAUTICIAN', [store.id], hired()));
    const frontDesk = Array.from({ length: store.seed.frontDesk }, () => addStaff(chainId, chainDomain, 'FRONT_DESK', [store.id], hired()));
    byStore.set(store.id, { manager, consultants, beauticians, frontDesk });
  }
  const [sh, bj, cd] = stores as [StoreRow, StoreRow, StoreRow, StoreRow];
  // A senior beautician covering two stores, and one who left the first store four months ago.
  const roaming = addStaff(chainId, chainDomain, 'BEAUTICIAN', [bj.id, cd.id], ago(500));
  byStore.get(bj.id)!.beauticians.push(roaming);
  byStore.get(cd.id)!.beauticians.push(roaming);
  const leaver = addStaff(chainId, chainDomain, 'BEAUTICIAN', [sh.id], ago(900), { active: false, leftOnDay: sh.todayDay - 120 });
  byStore.get(sh.id)!.beauticians.push(leaver);

  addStaff(clinicId, 'harmony-clinic.example', 'OWNER', [], ago(3 * 365));
  const clinicConsultant = addStaff(clinicId, 'harmony-clinic.example', 'CONSULTANT', [clinicStoreId], ago(2 * 365));
  const otherOwner = addStaff(otherChainId, 'glow-studio.example', 'OWNER', [], ago(2 * 365));

  await tx.staff.createMany({
    data: staff.map(({ id, orgId, name, role, phone, email, active, createdAt }) => ({ id, orgId, name, role, phone, email, active, createdAt })),
  });
  await tx.staffStore.createMany({
    data: staff.flatMap((s) => s.storeIds.map((storeId) => ({ staffId: s.id, storeId, orgId: s.orgId }))),
  });

  // --- Catalogue ----------------------------------------------------------------------------------------------
  const serviceIds = new Map<string, string>();
  const serviceByKey = new Map(CHAIN_SERVICES.map((s) => [s.key, s]));
  for (const s of CHAIN_SERVICES) serviceIds.set(s.key, randomUUID());
  const clinicServices = [
    { category: 'MEDICAL_AESTHETIC' as const, name: '超声炮紧致提升 Ultraformer lifting', durationMinutes: 120, priceMinor: 1280000, repurchaseCycleDays: 365, contraindicationTags: ['pregnancy', 'pacemaker'] },
    { category: 'MEDICAL_AESTHETIC' as const, name: '水光针 Skin-booster injection', durationMinutes: 45, priceMinor: 298000, repurchaseCycleDays: 30, contraindicationTags: ['hyaluronic-acid', 'pregnancy'] },
  ];
  const otherServiceId = randomUUID();
  await tx.service.createMany({
    data: [
      ...CHAIN_SERVICES.map((s) => ({
        id: serviceIds.get(s.key)!,
        orgId: chainId,
        category: s.category,
        name: s.name,
        durationMinutes: s.durationMinutes,
        priceMinor: s.priceMinor,
        repurchaseCycleDays: s.repurchaseCycleDays,
        contraindicationTags: s.contraindicationTags,
        active: s.active ?? true,
      })),
      ...clinicServices.map((s) => ({ ...s, orgId: clinicId })),
      { id: otherServiceId, orgId: otherChainId, category: 'FACIAL' as const, name: '基础补水 Basic hydration facial', durationMinutes: 60, priceMinor: 39800, repurchaseCycleDays: 28 },
    ],
  });
  const productIds = new Map(CHAIN_PRODUCTS.map((p) => [p.sku, randomUUID()]));
  await tx.product.createMany({
    data: CHAIN_PRODUCTS.map((p) => ({ id: productIds.get(p.sku)!, orgId: chainId, sku: p.sku, name: p.name, priceMinor: p.priceMinor })),
  });

  // --- Customers ----------------------------------------------------------------------------------------------
  interface CustomerPlan {
    id: string;
    index: number;
    store: StoreRow;
    archetype: Archetype;
    name: string;
    phone: string;
    birthday: Date | null;
    gender: 'FEMALE' | 'MALE' | 'OTHER' | 'UNDISCLOSED';
    source: 'WALK_IN' | 'REFERRAL' | 'ONLINE' | 'PARTNER' | 'OTHER';
    consultantId: string | null;
    preferences: Record<string, string>;
    tags: string[];
    skin: { skinType: 'NORMAL' | 'DRY' | 'OILY' | 'COMBINATION' | 'SENSITIVE'; allergies: string[]; sensitivities: string[]; carePreferences: string[] } | null;
    blocked: Set<string>;
    tier: Tier;
    favourites: string[];
    visitDays: number[];
    createdAt: Date;
    lastDayOf: Map<string, number>;
  }

  const customers: CustomerPlan[] = [];
  const storeShares = stores.map((s) => [s, s.seed.share] as const);
  for (let index = 0; index < DEMO_CUSTOMER_COUNT; index++) {
    const showcase = index === 0;
    const store = showcase ? sh : rng.weighted(storeShares);
    const archetype: Archetype = showcase ? 'core' : rng.weighted(ARCHETYPES);
    const gender = showcase ? 'FEMALE' : rng.weighted([['FEMALE', 90], ['MALE', 6], ['OTHER', 1], ['UNDISCLOSED', 3]] as const);

    // Age: mostly 25–45; a few older and younger customers.
    const age = rng.weighted([[rng.int(19, 24), 12], [rng.int(25, 34), 40], [rng.int(35, 45), 30], [rng.int(46, 62), 18]] as const);
    const birthYear = new Date(nowMs).getUTCFullYear() - age;
    const birthMonth = rng.int(0, 11);
    const daysInMonth = new Date(Date.UTC(birthYear, birthMonth + 1, 0)).getUTCDate();
    let birthday: Date | null = showcase || rng.chance(0.93) ? new Date(Date.UTC(birthYear, birthMonth, rng.int(1, daysInMonth))) : null;
    if (index === 7) birthday = new Date(Date.UTC(1996, 1, 29)); // A leap-day birthday.

    let name: string;
    if (showcase) name = '林晚晴';
    else if (store.seed.code === 'UR-01' && gender === 'FEMALE' && rng.chance(0.2)) name = rng.pick(UYGHUR_NAMES);
    else if (rng.chance(0.1)) name = `${rng.pick(ENGLISH_FIRST)} ${rng.pick(ENGLISH_LAST)}`;
    else {
      const surname = rng.chance(0.03) ? rng.pick(RARE_SURNAMES) : rng.pick(SURNAMES);
      const given =
        gender === 'MALE'
          ? rng.pick(GIVEN_MALE)
          : age >= 46
            ? rng.pick(GIVEN_OLDER)
            : age <= 30
              ? rng.pick(GIVEN_YOUNG)
              : rng.pick(GIVEN_MIDDLE);
      name = surname + given;
    }

    const source = rng.weighted([['WALK_IN', 35], ['REFERRAL', 30], ['ONLINE', 25], ['PARTNER', 5], ['OTHER', 5]] as const);
    const team = byStore.get(store.id)!;
    const consultantId = archetype === 'prospect' && source === 'ONLINE' ? null : rng.pick(team.consultants).id;

    // Preferences: string values only.
    const preferences: Record<string, string> = {};
    if (showcase) Object.assign(preferences, { favouriteTea: 'jasmine', music: 'soft piano', lowSugarDrinks: 'true' });
    else if (rng.chance(0.88)) {
      if (rng.chance(0.8)) preferences.favouriteTea = rng.pick(TEAS);
      if (rng.chance(0.7)) preferences.music = rng.pick(MUSIC);
      if (rng.chance(0.5)) preferences.lowSugarDrinks = rng.chance(0.7) ? 'true' : 'false';
      if (rng.chance(0.3)) preferences.roomTemperature = rng.pick(['warm', 'cool']);
      if (rng.chance(0.3)) preferences.pressure = rng.pick(['light', 'medium', 'firm']);
    }

    // Skin profile (health data) for most.
    let skin: CustomerPlan['skin'] = null;
    if (showcase) skin = { skinType: 'COMBINATION', allergies: ['fragrance'], sensitivities: ['sun'], carePreferences: ['warm-towels', 'quiet-session'] };
    else if (rng.chance(0.8)) {
      const skinType = rng.weighted([['NORMAL', 20], ['DRY', 25], ['OILY', 15], ['COMBINATION', 25], ['SENSITIVE', 15]] as const);
      const allergies: string[] = [];
      if (rng.chance(0.08)) allergies.push('fragrance');
      if (rng.chance(0.05)) allergies.push('alcohol');
      if (rng.chance(0.04)) allergies.push('retinol');
      if (rng.chance(0.015)) allergies.push('hyaluronic-acid');
      if (rng.chance(0.02)) allergies.push('lanolin');
      const sensitivities: string[] = [];
      if (skinType === 'SENSITIVE') sensitivities.push('sensitive-skin');
      if (rng.chance(0.1)) sensitivities.push('sun');
      if (rng.chance(0.06)) sensitivities.push('heat');
      if (rng.chance(0.03)) sensitivities.push('rosacea');
      if (rng.chance(0.02)) sensitivities.push('photosensitivity');
      skin = { skinType, allergies, sensitivities, carePreferences: rng.some(CARE_PREFERENCES, rng.int(0, 3)) };
    }

    // Tags: needs.
    const tags = new Set<string>();
    if (archetype === 'core') tags.add('vip');
    if (skin?.skinType === 'SENSITIVE') tags.add('sensitive-skin');
    if (age >= 35 && rng.chance(0.6)) tags.add('anti-ageing');
    if (age <= 28 && skin?.skinType === 'OILY' && rng.chance(0.6)) tags.add('acne');
    if (rng.chance(0.2)) tags.add('whitening');
    if (rng.chance(0.15)) tags.add('hydration');
    if (showcase) ['vip', 'anti-ageing', 'hydration'].forEach((t) => tags.add(t));

    const blocked = new Set([...(skin?.allergies ?? []), ...(skin?.sensitivities ?? []), ...tags]);
    if (gender === 'FEMALE' && age <= 40 && rng.chance(0.02)) blocked.add('pregnancy');

    const tier: Tier =
      archetype === 'core'
        ? rng.chance(0.75) ? 'premium' : 'mid'
        : archetype === 'maintenance'
          ? 'basic'
          : archetype === 'potential'
            ? rng.chance(0.35) ? 'premium' : 'mid'
            : rng.weighted([['basic', 45], ['mid', 45], ['premium', 10]] as const);
    const allowed = (key: string) => !serviceByKey.get(key)!.contraindicationTags.some((t) => blocked.has(t));
    let favourites = rng.some(SERVICE_POOLS[tier].filter(allowed), rng.int(2, 3));
    if (showcase) favourites = ['hydrating', 'rf', 'eye'];

    // Visit days (relative to the store's local today; negative = past).
    const windowStart = Math.max(-365, store.openedDay - store.todayDay + 1);
    const visitDays: number[] = [];
    const series = (start: number, stop: number, min: number, max: number, growth = 1) => {
      let day = start;
      let gapMin = min;
      let gapMax = max;
      while (day <= stop) {
        visitDays.push(day);
        day += rng.int(gapMin, gapMax);
        gapMin = Math.round(gapMin * growth);
        gapMax = Math.round(gapMax * growth);
      }
    };
    const firstDay = (maxGap: number) => windowStart + rng.int(0, maxGap);
    switch (archetype) {
      case 'core':
        series(showcase ? -364 : firstDay(30), -1, 12, 24);
        break;
      case 'maintenance':
        series(firstDay(40), -1, 14, 30);
        break;
      case 'regular':
        series(firstDay(60), -1, 28, 50);
        break;
      case 'potential':
        series(firstDay(90), -1, 50, 100);
        break;
      case 'lapsed':
        // Visits thin out (the gap grows) and stop 3–9 months ago.
        series(firstDay(40), -rng.int(95, 270), 21, 35, 1.35);
        break;
      case 'new': {
        const first = -rng.int(2, 60);
        visitDays.push(first);
        if (first < -20 && rng.chance(0.5)) visitDays.push(first + rng.int(14, -first - 1));
        break;
      }
      case 'prospect':
        break;
    }

    // Registration: before the first visit (long-standing customers registered before the window).
    const registeredDay =
      visitDays.length > 0
        ? Math.max(store.openedDay - store.todayDay, visitDays[0]! - (rng.chance(0.6) ? rng.int(0, 700) : 0))
        : -rng.int(1, 45);
    const createdAt = new Date(
      zonedTimeToUtc(store.seed.timezone, store.todayDay + registeredDay, OPEN_MINUTE).getTime() - index * 1000 - 3 * 60 * MINUTE_MS,
    );

    customers.push({
      id: randomUUID(),
      index,
      store,
      archetype,
      name,
      phone: newPhone(showcase ? ['138'] : MOBILE_PREFIXES),
      birthday,
      gender,
      source,
      consultantId,
      preferences,
      tags: [...tags],
      skin,
      blocked,
      tier,
      favourites,
      visitDays,
      createdAt,
      lastDayOf: new Map(),
    });
  }

  // The small chain: five customers, one of whom is also a customer of the big chain (same phone, another tenant).
  const otherCustomers = ['周晓彤', '吴佳怡', 'Amy Lin', '郑雅琪', customers[0]!.name].map((name, i) => ({
    id: randomUUID(),
    orgId: otherChainId,
    homeStoreId: otherStoreId,
    consultantId: null,
    name,
    phone: i === 4 ? customers[0]!.phone : newPhone(),
    gender: 'FEMALE' as const,
    source: 'WALK_IN' as const,
    createdAt: ago(200 - i * 30),
    updatedAt: ago(200 - i * 30),
  }));

  await bulkInsert(tx, 'customer', [
      ...customers.map((c) => ({
        id: c.id,
        orgId: chainId,
        homeStoreId: c.store.id,
        consultantId: c.consultantId,
        name: c.name,
        phone: c.phone,
        birthday: isoDate(c.birthday),
        gender: c.gender,
        source: c.source,
        preferences: c.preferences,
        tags: c.tags,
        createdAt: c.createdAt,
        updatedAt: c.createdAt,
      })),
      ...otherCustomers.map((oc) => ({ ...oc, birthday: null, preferences: {}, tags: [] })),
  ]);

  await bulkInsert(
    tx,
    'skin_profile',
    customers.filter((c) => c.skin).map((c) => ({ customerId: c.id, orgId: chainId, ...c.skin!, updatedAt: c.createdAt })),
  );

  // --- Consents (append-only history) -------------------------------------------------------------------------
  const consents: Record<string, unknown>[] = [];
  for (const c of customers) {
    const at = (extraDays = 0) => new Date(Math.min(nowMs - MINUTE_MS, c.createdAt.getTime() + extraDays * DAY_MS));
    const consent = (purpose: 'MARKETING' | 'HEALTH_DATA' | 'PARTNER_SHARING' | 'RESEARCH', granted: boolean, recordedAt: Date, partnerOrgId: string | null = null) =>
      consents.push({ orgId: chainId, customerId: c.id, purpose, granted, recordedAt, partnerOrgId, recordedBy: 'seed' });
    if (c.skin) consent('HEALTH_DATA', true, at());
    if (c.index === 0 || rng.chance(0.68)) {
      consent('MARKETING', true, at());
      if (c.index !== 0 && rng.chance(0.05)) consent('MARKETING', false, at(rng.int(30, 300)));
    } else if (rng.chance(0.4)) consent('MARKETING', false, at());
    if (c.skin && (c.tier === 'premium' || c.index === 0) && (c.index === 0 || rng.chance(0.4))) {
      consent('PARTNER_SHARING', true, at(rng.int(0, 60)), clinicId);
    }
    if (rng.chance(0.1)) consent('RESEARCH', true, at(rng.int(0, 90)));
  }
  await bulkInsert(tx, 'consent', consents);

  // --- Visits -------------------------------------------------------------------------------------------------
  const diary = new Diary();
  const visits: VisitRow[] = [];
  const lines: LineRow[] = [];
  const productList = CHAIN_PRODUCTS;
  const addOns = CHAIN_SERVICES.filter((s) => s.addOn).map((s) => s.key);
  const slotWeights = Array.from({ length: (CLOSE_MINUTE - OPEN_MINUTE) / SLOT_MINUTES }, (_, k) => {
    const minute = OPEN_MINUTE + k * SLOT_MINUTES;
    return [minute, minute >= 14 * 60 && minute < 20 * 60 ? 3 : minute < 12 * 60 ? 1 : 2] as const;
  });

  const planVisit = (c: CustomerPlan, day: number, status: VisitRow['status'], isMember: (day: number) => boolean) => {
    const store = rng.chance(0.88) ? c.store : rng.pick(stores);
    const localDay = store.todayDay + day;
    if (localDay < store.openedDay) return;

    // Services: mostly a favourite, sometimes something new from the tier; retired services only long ago.
    const canUse = (key: string) => {
      const s = serviceByKey.get(key)!;
      if (s.contraindicationTags.some((t) => c.blocked.has(t))) return false;
      // Procedures with a long cycle (filler, HIFU) are not repeated within most of that cycle.
      const last = c.lastDayOf.get(key);
      if (last !== undefined && s.repurchaseCycleDays && s.repurchaseCycleDays >= 90 && day - last < s.repurchaseCycleDays * 0.8) return false;
      return s.active !== false || day < -150;
    };
    const choices = (rng.chance(0.75) ? c.favourites : SERVICE_POOLS[c.tier]).filter(canUse);
    const fallback = SERVICE_POOLS[c.tier].filter(canUse);
    const main = choices.length > 0 ? rng.pick(choices) : fallback.length > 0 ? rng.pick(fallback) : 'cleansing';
    const serviceKeys = [main];
    // High-value customers add a second treatment and take products home more often.
    const upsell = c.tier === 'premium' ? 2 : c.tier === 'basic' ? 0.5 : 1;
    if (rng.chance(0.25 * upsell)) {
      const addOn = rng.pick(addOns.filter((k) => k !== main && canUse(k)));
      if (addOn) serviceKeys.push(addOn);
    }
    const duration = serviceKeys.reduce((sum, k) => sum + serviceByKey.get(k)!.durationMinutes, 0);
    const product = rng.chance(0.2 * upsell) ? rng.pick(productList.filter((p) => !p.allergen || !c.blocked.has(p.allergen))) : null;

    // A slot and a beautician who works that day and is free.
    const team = byStore.get(store.id)!.beauticians.filter((b) => (b.leftOnDay === undefined || localDay <= b.leftOnDay) && b.createdAt.getTime() <= zonedTimeToUtc(store.seed.timezone, localDay, 0).getTime());
    if (team.length === 0) return;
    const latestStart = CLOSE_MINUTE - duration;
    let chosen: { staff: StaffRow; start: number; end: number } | null = null;
    for (let attempt = 0; attempt < 12 && !chosen; attempt++) {
      let minute = rng.weighted(slotWeights);
      if (minute > latestStart) minute = OPEN_MINUTE + Math.floor((latestStart - OPEN_MINUTE) / SLOT_MINUTES) * SLOT_MINUTES - rng.int(0, 2) * SLOT_MINUTES;
      minute = Math.max(OPEN_MINUTE, minute);
      const start = zonedTimeToUtc(store.seed.timezone, localDay, minute).getTime();
      const end = start + duration * MINUTE_MS;
      if (status === 'BOOKED' && start < nowMs + 30 * MINUTE_MS) continue;
      const staffMember = rng.pick(team);
      if (diary.isFree(staffMember.id, start, end)) chosen = { staff: staffMember, start, end };
    }
    if (!chosen) return;
    diary.book(chosen.staff.id, chosen.start, chosen.end);

    for (const key of serviceKeys) c.lastDayOf.set(key, day);
    const visitId = randomUUID();
    const member = isMember(day);
    let position = 0;
    let total = 0;
    for (const key of serviceKeys) {
      const s = serviceByKey.get(key)!;
      const discount = member && rng.chance(0.2) ? Math.round((s.priceMinor * 0.1) / 100) * 100 : 0;
      const amount = s.priceMinor - discount;
      total += amount;
      lines.push({
        id: randomUUID(),
        orgId: chainId,
        visitId,
        position: position++,
        kind: 'SERVICE',
        serviceId: serviceIds.get(key)!,
        productId: null,
        staffId: chosen.staff.id,
        description: s.name,
        quantity: 1,
        unitPriceMinor: s.priceMinor,
        discountMinor: discount,
        amountMinor: amount,
      });
    }
    if (product && status !== 'BOOKED') {
      const quantity = rng.chance(0.2) ? 2 : 1;
      const discount = quantity === 2 ? Math.round((product.priceMinor * 0.15) / 100) * 100 : 0;
      const amount = quantity * product.priceMinor - discount;
      total += amount;
      lines.push({
        id: randomUUID(),
        orgId: chainId,
        visitId,
        position: position++,
        kind: 'PRODUCT',
        serviceId: null,
        productId: productIds.get(product.sku)!,
        staffId: chosen.staff.id,
        description: product.name,
        quantity,
        unitPriceMinor: product.priceMinor,
        discountMinor: discount,
        amountMinor: amount,
      });
    }

    const start = new Date(chosen.start);
    const end = new Date(chosen.end);
    const bookedAt = new Date(Math.max(c.createdAt.getTime(), Math.min(nowMs, chosen.start) - rng.int(1, 14 * 24) * 60 * MINUTE_MS));
    const visit: VisitRow = {
      id: visitId,
      orgId: chainId,
      storeId: store.id,
      customerId: c.id,
      staffId: chosen.staff.id,
      status,
      scheduledStart: start,
      scheduledEnd: end,
      checkedInAt: null,
      completedAt: null,
      cancelledAt: null,
      cancelReason: null,
      notes: null,
      readings: [],
      totalMinor: total,
      createdAt: bookedAt,
      updatedAt: bookedAt,
    };
    if (status === 'COMPLETED') {
      visit.checkedInAt = new Date(chosen.start - rng.int(0, 12) * MINUTE_MS);
      visit.completedAt = new Date(Math.min(nowMs - MINUTE_MS, chosen.end + rng.int(-5, 15) * MINUTE_MS));
      visit.updatedAt = visit.completedAt;
      if (rng.chance(0.3)) visit.notes = rng.pick(VISIT_NOTES);
      if (serviceByKey.get(main)!.readings && rng.chance(0.5)) {
        const before = rng.int(28, 42);
        visit.readings = [
          { metric: 'moisture', unit: '%', before, after: Math.round(before * (1 + rng.int(10, 35) / 100)) },
          { metric: 'elasticity', unit: 'score', before: rng.int(50, 70), after: rng.int(60, 80) },
        ];
      }
    } else if (status === 'CANCELLED') {
      visit.cancelledAt = new Date(Math.max(bookedAt.getTime() + MINUTE_MS, chosen.start - rng.int(2, 48) * 60 * MINUTE_MS));
      visit.cancelReason = rng.pick(CANCEL_REASONS);
      visit.updatedAt = visit.cancelledAt;
    } else if (status === 'NO_SHOW') {
      visit.updatedAt = new Date(chosen.end);
    }
    visits.push(visit);
  };

  // Memberships are decided first so that member discounts appear only after joining.
  interface MembershipPlan {
    customer: CustomerPlan;
    joinedDay: number;
    status: 'ACTIVE' | 'SUSPENDED' | 'CANCELLED';
  }
  const memberships: MembershipPlan[] = [];
  const joinedDayOf = new Map<string, number>();
  for (const c of customers) {
    if (!(c.index === 0 || rng.chance(MEMBERSHIP_RATE[c.archetype]))) continue;
    const registered = localDayNumber(c.store.seed.timezone, c.createdAt.getTime()) - c.store.todayDay;
    const firstVisit = c.visitDays[0] ?? 0;
    const joinedDay = Math.min(0, c.index === 0 ? registered : rng.chance(0.5) ? registered : Math.max(registered, firstVisit + rng.int(0, 30)));
    const status = c.archetype === 'lapsed' && rng.chance(0.15) ? rng.pick(['SUSPENDED', 'CANCELLED'] as const) : 'ACTIVE';
    memberships.push({ customer: c, joinedDay, status });
    joinedDayOf.set(c.id, joinedDay);
  }

  for (const c of customers) {
    const isMember = (day: number) => joinedDayOf.has(c.id) && day >= joinedDayOf.get(c.id)!;
    for (const day of c.visitDays) {
      const status = rng.weighted([['COMPLETED', 94], ['CANCELLED', 4], ['NO_SHOW', 2]] as const);
      planVisit(c, day, status, isMember);
    }
    if (c.index === 0 || rng.chance(BOOKING_RATE[c.archetype])) {
      const before = visits.length;
      for (let attempt = 0; attempt < 5 && visits.length === before; attempt++) planVisit(c, rng.int(0, 7), 'BOOKED', isMember);
    }
  }

  // The small chain: one completed visit per customer, served by the owner.
  for (const [i, oc] of otherCustomers.entries()) {
    const day = localDayNumber('Asia/Shanghai', nowMs) - 10 - i * 7;
    const start = zonedTimeToUtc('Asia/Shanghai', day, 14 * 60);
    const end = new Date(start.getTime() + 60 * MINUTE_MS);
    const visitId = randomUUID();
    visits.push({
      id: visitId,
      orgId: otherChainId,
      storeId: otherStoreId,
      customerId: oc.id,
      staffId: otherOwner.id,
      status: 'COMPLETED',
      scheduledStart: start,
      scheduledEnd: end,
      checkedInAt: start,
      completedAt: end,
      cancelledAt: null,
      cancelReason: null,
      notes: null,
      readings: [],
      totalMinor: 39800,
      createdAt: new Date(start.getTime() - DAY_MS),
      updatedAt: end,
    });
    lines.push({
      id: randomUUID(),
      orgId: otherChainId,
      visitId,
      position: 0,
      kind: 'SERVICE',
      serviceId: otherServiceId,
      productId: null,
      staffId: otherOwner.id,
      description: '基础补水 Basic hydration facial',
      quantity: 1,
      unitPriceMinor: 39800,
      discountMinor: 0,
      amountMinor: 39800,
    });
  }

  await bulkInsert(tx, 'visit', visits as unknown as Record<string, unknown>[]);
  await bulkInsert(tx, 'visit_line', lines as unknown as Record<string, unknown>[]);

  // --- Memberships: numbers in order of joining -----------------------------------------------------------------
  memberships.sort((a, b) => a.joinedDay - b.joinedDay || a.customer.index - b.customer.index);
  await bulkInsert(
    tx,
    'membership',
    memberships.map((m, i) => ({
      orgId: chainId,
      customerId: m.customer.id,
      memberNumber: formatMemberNumber(i + 1),
      joinedOn: isoDate(dateOfDay(m.customer.store.todayDay + m.joinedDay)),
      homeStoreId: m.customer.store.id,
      status: m.status,
      createdAt: new Date(Math.min(nowMs, zonedTimeToUtc(m.customer.store.seed.timezone, m.customer.store.todayDay + m.joinedDay, 12 * 60).getTime())),
    })),
  );
  await tx.orgCounter.create({ data: { orgId: chainId, name: MEMBER_NUMBER_COUNTER, value: BigInt(memberships.length) } });

  // --- Derived facts, from the visits as stored ---------------------------------------------------------------
  await tx.$executeRaw`
    INSERT INTO customer_fact (customer_id, org_id, visit_count, first_visit_at, last_visit_at, total_spend_minor)
    SELECT c.id, c.org_id, count(v.id)::int, min(v.completed_at), max(v.completed_at), coalesce(sum(v.total_minor), 0)
    FROM customer c
    LEFT JOIN visit v ON v.customer_id = c.id AND v.status = 'COMPLETED'
    WHERE c.org_id IN (${chainId}::uuid, ${clinicId}::uuid, ${otherChainId}::uuid)
    GROUP BY c.id, c.org_id`;

  // --- API client ---------------------------------------------------------------------------------------------
  const posClient = await tx.apiClient.create({
    data: { orgId: chainId, name: `POS 收银系统 · ${sh.seed.code}`, scopes: POS_SCOPES, storeIds: [sh.id], createdAt: ago(90) },
  });

  // --- Principals ---------------------------------------------------------------------------------------------
  const shTeam = byStore.get(sh.id)!;
  const firstSingleStore = (list: StaffRow[]) => list.find((s) => s.active && s.storeIds.length === 1)!;
  const staffPrincipal = (s: StaffRow): Principal => ({ kind: 'STAFF', orgId: s.orgId, staffId: s.id, role: s.role, storeIds: [...s.storeIds] });
  const showcase = customers[0]!;
  const principals: DemoPrincipals = {
    OWNER: staffPrincipal(owner),
    HQ_ANALYST: staffPrincipal(hqAnalyst),
    STORE_MANAGER: staffPrincipal(shTeam.manager),
    CONSULTANT: staffPrincipal(showcase.consultantId ? staff.find((s) => s.id === showcase.consultantId)! : shTeam.consultants[0]!),
    BEAUTICIAN: staffPrincipal(firstSingleStore(shTeam.beauticians)),
    FRONT_DESK: staffPrincipal(shTeam.frontDesk[0]!),
    CUSTOMER: { kind: 'CUSTOMER', orgId: chainId, customerId: showcase.id },
    CLINIC_STAFF: staffPrincipal(clinicConsultant),
    POS_CLIENT: { kind: 'API_CLIENT', orgId: chainId, clientId: posClient.id, scopes: [...POS_SCOPES], storeIds: [sh.id] },
    OTHER_CHAIN_OWNER: staffPrincipal(otherOwner),
  };

  return { principals, counts: await countRows(tx) };
}

const COUNTED_TABLES = [
  'organization',
  'store',
  'staff',
  'staff_store',
  'customer',
  'skin_profile',
  'consent',
  'service',
  'product',
  'visit',
  'visit_line',
  'membership',
  'customer_fact',
  'org_counter',
  'api_client',
] as const;

async function countRows(tx: Tx): Promise<Record<string, number>> {
  const sql = COUNTED_TABLES.map((t) => `SELECT '${t}' AS name, count(*)::int AS n FROM ${t}`).join(' UNION ALL ');
  const rows = await tx.$queryRawUnsafe<{ name: string; n: number }[]>(sql);
  return Object.fromEntries(COUNTED_TABLES.map((t) => [t, rows.find((r) => r.name === t)?.n ?? 0]));
}
