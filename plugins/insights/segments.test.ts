/**
 * Saved segments (rules stored as validated JSON, compiled to a parameterized WHERE), value segments and RFM scores,
 * and the organization's thresholds — on a chain whose customers were made to sit on either side of each condition.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import { gid, startTestPlatform, type TestPlatform } from '../../core/testing/platform.ts';
import { seedInsightsDemo } from './demo.ts';
import type { InsightsConfig } from './config.ts';
import { call, fingerprint, newChain, traced, type Chain, type StoreCode } from './testing.ts';

const DAY = 86_400_000;
let api: TestPlatform;
let chain: Chain;
let manager: Principal; // store manager at CD
let analyst: Principal;
const ids: Record<string, string> = {};
const base = Date.now();

interface Model {
  name: string;
  home?: StoreCode | null;
  tags?: string[];
  visits?: [daysAgo: number, amountMinor: number, status?: 'REFUNDED'][];
  member?: boolean;
  gender?: 'MALE' | 'FEMALE';
  source?: 'REFERRAL';
  birthday?: string;
}

// Each customer sits just inside or just outside the conditions the tests use.
const MODEL: Model[] = [
  { name: 'Hua', home: 'SH', tags: ['sensitive-skin'], visits: [[100, 300_000], [200, 250_000]], gender: 'FEMALE', birthday: '1990-03-15' },
  { name: 'Li', home: 'SH', tags: ['sensitive-skin'], visits: [[100, 499_999], [50, 900_000, 'REFUNDED']] },
  { name: 'Mei', home: 'CD', tags: ['sensitive-skin'], visits: [[25, 600_000]] },
  { name: 'Na', home: 'CD', tags: ['anti-ageing'], visits: [[100, 600_000]] },
  { name: 'Ou', home: 'UR', tags: ['sensitive-skin', 'vip'], visits: [[400, 900_000], [100, 100_000]] },
  { name: 'Pei', home: 'UR', tags: ['sensitive-skin'], visits: [[70, 250_000], [80, 250_000]] },
  { name: 'Qin', home: null, tags: ['sensitive-skin'] },
  { name: 'Rui', home: 'SH', visits: [10, 30, 50, 70, 90, 110, 130, 150].map((d) => [d, 100_000] as [number, number]), member: true, gender: 'MALE' },
  { name: 'Shu', home: 'SH', visits: [5, 25, 45, 65, 85, 105, 125, 145].map((d) => [d, 20_000] as [number, number]), birthday: '1985-11-02' },
  { name: 'Tao', home: 'CD', visits: [[20, 150_000], [120, 150_000]], member: true, source: 'REFERRAL' },
  { name: 'Wen', home: 'CD', visits: [[15, 20_000], [35, 20_000]] },
  { name: 'Xia', home: 'UR', visits: [[120, 200_000], [150, 200_000], [180, 200_000]] },
];

beforeAll(async () => {
  api = await startTestPlatform({ plugins: ['insights'] });
  chain = await newChain(api.owner, 'Segments chain');
  for (const customer of MODEL) {
    const id = await chain.customer({ name: customer.name, home: customer.home === null ? undefined : customer.home, tags: customer.tags, birthday: customer.birthday });
    if (customer.home === null) await api.owner.customer.update({ where: { id }, data: { homeStoreId: null } });
    if (customer.gender || customer.source) await api.owner.customer.update({ where: { id }, data: { gender: customer.gender, source: customer.source } });
    for (const [daysAgo, amount, status] of customer.visits ?? []) {
      await chain.visit(id, customer.home ?? 'SH', new Date(base - daysAgo * DAY), amount, status ?? 'COMPLETED');
    }
    if (customer.member) {
      await api.owner.membership.create({
        data: { orgId: chain.orgId, customerId: id, memberNumber: `M-${customer.name}`, joinedOn: new Date('2025-01-01'), homeStoreId: chain.stores[customer.home ?? 'SH'] },
      });
    }
    ids[customer.name] = id;
  }
  await chain.refreshFacts();
  manager = await chain.staff('STORE_MANAGER', 'CD');
  analyst = await chain.staff('HQ_ANALYST', 'SH');
}, 120_000);
afterAll(() => api?.close());

const CREATE = `mutation($input: CreateSegmentInput!) { createSegment(input: $input) {
  segment { id name rulesJson customerCount countByStore { store { code } customers } }
  userErrors { __typename code message field }
} }`;
const MEMBERS = `query($id: ID!, $first: Int, $after: String) { node(id: $id) { ... on Segment {
  customers(first: $first, after: $after) { edges { cursor node { name } } pageInfo { hasNextPage endCursor } }
} } }`;

let counter = 0;
async function segmentOf(rules: unknown, as: Principal = chain.owner) {
  const { createSegment } = await call(api, CREATE, { input: { name: `rule ${counter++}`, rules } }, as);
  expect(createSegment.userErrors).toEqual([]);
  return createSegment.segment;
}

async function membersOf(segmentId: string, as: Principal = chain.owner): Promise<string[]> {
  const names: string[] = [];
  let after: string | null = null;
  for (;;) {
    const data: any = await call(api, MEMBERS, { id: segmentId, first: 3, after }, as);
    names.push(...data.node.customers.edges.map((e: any) => e.node.name));
    if (!data.node.customers.pageInfo.hasNextPage) return names;
    after = data.node.customers.pageInfo.endCursor;
  }
}

describe('rules select exactly the customers they describe', () => {
  const cases: [string, unknown, string[]][] = [
    [
      'the brief\'s example: ≥ ¥5,000 in 12 months, no visit in 60 days, tag sensitive-skin',
      { all: [{ spend: { withinDays: 365, min: '5000.00' } }, { lastVisit: { moreThanDaysAgo: 60 } }, { tags: { all: ['sensitive-skin'] } }] },
      ['Hua', 'Pei'], // Li spent ¥4,999.99 (a refunded ¥9,000 does not count), Mei came 25 days ago, Ou's big spend is 400 days old
    ],
    ['lifetime spend of at least ¥9,000', { spend: { min: '9000' } }, ['Ou']],
    ['spend between ¥5,000 and ¥6,000 within a year', { spend: { withinDays: 365, min: '5000', max: '6000' } }, ['Hua', 'Mei', 'Na', 'Pei', 'Xia']],
    ['six or more visits in 180 days', { visits: { withinDays: 180, min: 6 } }, ['Rui', 'Shu']],
    ['at most one visit ever, having visited', { all: [{ visits: { max: 1 } }, { not: { neverVisited: true } }] }, ['Li', 'Mei', 'Na']],
    ['last visit within 30 days', { lastVisit: { withinDays: 30 } }, ['Mei', 'Rui', 'Shu', 'Tao', 'Wen']],
    ['last visit 90 to 130 days ago', { lastVisit: { moreThanDaysAgo: 90, withinDays: 130 } }, ['Hua', 'Li', 'Na', 'Ou', 'Xia']],
    ['never visited', { neverVisited: true }, ['Qin']],
    ['tags: vip or anti-ageing, not sensitive-skin', { tags: { any: ['vip', 'anti-ageing'], none: ['sensitive-skin'] } }, ['Na']],
    ['home store UR', { homeStoreIds: ['UR'] }, ['Ou', 'Pei', 'Xia']],
    ['birthday in March or November', { birthdayMonths: [3, 11] }, ['Hua', 'Shu']],
    ['members', { member: true }, ['Rui', 'Tao']],
    ['value segment core value or potential', { valueSegments: ['CORE_VALUE', 'POTENTIAL'] }, ['Mei', 'Pei', 'Rui', 'Tao']],
    ['men', { genders: ['MALE'] }, ['Rui']],
    ['referred', { sources: ['REFERRAL'] }, ['Tao']],
    ['not tagged sensitive-skin', { not: { tags: { any: ['sensitive-skin'] } } }, ['Na', 'Rui', 'Shu', 'Tao', 'Wen', 'Xia']],
    ['never visited, or at home in CD', { any: [{ neverVisited: true }, { homeStoreIds: ['CD'] }] }, ['Mei', 'Na', 'Qin', 'Tao', 'Wen']],
  ];
  test.each(cases)('%s', async (_name, rules, expected) => {
    const withStores = JSON.parse(JSON.stringify(rules), (key, value) =>
      key === 'homeStoreIds' ? (value as StoreCode[]).map((code) => gid('Store', chain.stores[code])) : value,
    );
    const segment = await segmentOf(withStores);
    expect(await membersOf(segment.id)).toEqual(expected);
    expect(segment.customerCount).toBe(expected.length);
    expect(segment.countByStore.reduce((sum: number, row: any) => sum + row.customers, 0)).toBe(expected.length);
    const homes = Object.fromEntries(MODEL.map((m) => [m.name, m.home ?? null]));
    const byStore: Record<string, number> = {};
    for (const name of expected) byStore[homes[name] ?? 'none'] = (byStore[homes[name] ?? 'none'] ?? 0) + 1;
    expect(Object.fromEntries(segment.countByStore.map((row: any) => [row.store?.code ?? 'none', row.customers]))).toEqual(byStore);
  });

  test('the stored rule reads back, structured and as JSON (amounts in minor units)', async () => {
    const segment = await segmentOf({ all: [{ spend: { withinDays: 365, min: '5000.5' } }, { homeStoreIds: [gid('Store', chain.stores.UR)] }, { not: { member: true } }] });
    expect(JSON.parse(segment.rulesJson)).toEqual({
      all: [{ spend: { withinDays: 365, min: 500_050, max: null } }, { homeStores: [chain.stores.UR] }, { not: { member: true } }],
    });
    const { node } = await call(api, `query($id: ID!) { node(id: $id) { ... on Segment { rules {
      all { spend { withinDays min max } homeStores { code } not { member } member }
    } } } }`, { id: segment.id }, chain.owner);
    expect(node.rules.all).toEqual([
      { spend: { withinDays: 365, min: '5000.50', max: null }, homeStores: null, not: null, member: null },
      { spend: null, homeStores: [{ code: 'UR' }], not: null, member: null },
      { spend: null, homeStores: null, not: { member: true }, member: null },
    ]);
  });

  test('user text is a parameter, never SQL', async () => {
    const segment = await segmentOf({ tags: { any: ["x') OR true; DROP TABLE customer; --"] } });
    expect(await membersOf(segment.id)).toEqual([]);
    expect(await api.owner.customer.count({ where: { orgId: chain.orgId } })).toBe(MODEL.length);
  });
});

describe('paging, statements and who sees what', () => {
  test('pages follow name order, and a page costs the same statements at 2 and at 10', async () => {
    const segment = await segmentOf({ not: { neverVisited: true } });
    const all = MODEL.filter((m) => m.visits?.length).map((m) => m.name);
    expect(await membersOf(segment.id)).toEqual(all);
    const PAGE = `query($id: ID!, $first: Int) { node(id: $id) { ... on Segment {
      customers(first: $first) { edges { node { name facts { visitCount } membership { memberNumber } homeStore { code } } } }
    } } }`;
    const measure = async (first: number) => {
      await call(api, PAGE, { id: segment.id, first }, chain.owner);
      const { result, statements } = await traced(api, () => call(api, PAGE, { id: segment.id, first }, chain.owner));
      return { rows: result.node.customers.edges.length, statements: statements.length };
    };
    const small = await measure(2);
    const large = await measure(10);
    expect([small.rows, large.rows]).toEqual([2, 10]);
    expect(large.statements).toBe(small.statements);
    expect(small.statements).toBeLessThanOrEqual(7);
  });

  test('a store manager sees the segment\'s customers of their store only', async () => {
    const segment = await segmentOf({ tags: { any: ['sensitive-skin', 'anti-ageing'] } });
    expect(await membersOf(segment.id, manager)).toEqual(['Mei', 'Na']);
    const { node } = await call(api, `query($id: ID!) { node(id: $id) { ... on Segment { customerCount countByStore { store { code } customers } } } }`, { id: segment.id }, manager);
    expect(node).toEqual({ customerCount: 2, countByStore: [{ store: { code: 'CD' }, customers: 2 }] });
  });

  test('another chain finds nothing, exactly as for a random id', async () => {
    const segment = await segmentOf({ member: true });
    const random = gid('Segment', '0c0c0c0c-0000-4000-8000-000000000000');
    const read = `query($id: ID!) { node(id: $id) { id } }`;
    expect(await call(api, read, { id: segment.id }, 'OTHER_CHAIN_OWNER')).toEqual({ node: null });
    expect(await call(api, read, { id: random }, 'OTHER_CHAIN_OWNER')).toEqual({ node: null });
    const list = await call(api, `{ segments { id } }`, {}, 'OTHER_CHAIN_OWNER');
    expect(list.segments.map((s: any) => s.id)).not.toContain(segment.id);
    const before = await fingerprint(api.owner);
    for (const id of [segment.id, random]) {
      const update = await call(api, `mutation($input: UpdateSegmentInput!) { updateSegment(input: $input) { segment { id } userErrors { __typename code field } } }`,
        { input: { segmentId: id, name: 'Taken over' } }, 'OTHER_CHAIN_OWNER');
      expect(update.updateSegment).toEqual({ segment: null, userErrors: [{ __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'segmentId'] }] });
      const archive = await call(api, `mutation($input: ArchiveSegmentInput!) { archiveSegment(input: $input) { userErrors { __typename code field } } }`,
        { input: { segmentId: id } }, 'OTHER_CHAIN_OWNER');
      expect(archive.archiveSegment.userErrors).toEqual([{ __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'segmentId'] }]);
    }
    expect(await fingerprint(api.owner)).toEqual(before);
  });

  test('customers and roles without insights:read see no segments', async () => {
    const segment = await segmentOf({ member: true });
    for (const as of ['CUSTOMER', 'BEAUTICIAN'] as const) {
      expect((await api.gql(`{ segments { id } }`, {}, as)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    const consultant = await chain.staff('CONSULTANT', 'SH');
    expect(await call(api, `query($id: ID!) { node(id: $id) { id } }`, { id: segment.id }, consultant)).toEqual({ node: null });
  });
});

describe('saving segments', () => {
  const attempt = async (input: Record<string, unknown>, as: Principal = chain.owner) => {
    const before = await fingerprint(api.owner);
    const { createSegment } = await call(api, CREATE, { input: { name: `bad ${counter++}`, ...input } }, as);
    expect(createSegment.segment).toBeNull();
    expect(await fingerprint(api.owner)).toEqual(before);
    return createSegment.userErrors;
  };

  test('malformed rules are refused at the field at fault, and nothing is saved', async () => {
    expect(await attempt({ rules: { tags: { any: ['a'] }, member: true } })).toEqual([
      { __typename: 'ValidationError', code: 'INVALID', message: 'Each rule sets exactly one field', field: ['input', 'rules'] },
    ]);
    expect((await attempt({ rules: { all: [{ member: true }, {}] } }))[0].field).toEqual(['input', 'rules', 'all', '1']);
    expect((await attempt({ rules: { all: [] } }))[0]).toMatchObject({ code: 'INVALID', field: ['input', 'rules', 'all'] });
    expect((await attempt({ rules: { spend: { min: '12.345' } } }))[0].field).toEqual(['input', 'rules', 'spend', 'min']);
    expect((await attempt({ rules: { spend: { min: '-5' } } }))[0].field).toEqual(['input', 'rules', 'spend', 'min']);
    expect((await attempt({ rules: { spend: { min: '60', max: '50' } } }))[0].field).toEqual(['input', 'rules', 'spend', 'max']);
    expect((await attempt({ rules: { visits: { withinDays: 0, min: 1 } } }))[0].field).toEqual(['input', 'rules', 'visits', 'withinDays']);
    expect((await attempt({ rules: { lastVisit: {} } }))[0].field).toEqual(['input', 'rules', 'lastVisit']);
    expect((await attempt({ rules: { birthdayMonths: [13] } }))[0].field).toEqual(['input', 'rules', 'birthdayMonths', '0']);
    expect((await attempt({ rules: { neverVisited: false } }))[0].field).toEqual(['input', 'rules', 'neverVisited']);
    expect((await attempt({ rules: { tags: { any: ['x'.repeat(41)] } } }))[0].field).toEqual(['input', 'rules', 'tags', 'any', '0']);
    const deep = { not: { not: { not: { not: { not: { member: true } } } } } };
    expect((await attempt({ rules: deep }))[0].message).toMatch(/nest at most/);
    expect((await attempt({ name: '   ', rules: { member: true } }))[0].field).toEqual(['input', 'name']);
  });

  test('stores of another chain or of nothing are not found', async () => {
    const otherStore = (await api.owner.store.findFirstOrThrow({ where: { orgId: api.principals.OTHER_CHAIN_OWNER!.orgId } })).id;
    for (const storeId of [otherStore, '0d0d0d0d-0000-4000-8000-000000000000']) {
      expect(await attempt({ rules: { homeStoreIds: [gid('Store', storeId)] } })).toEqual([
        { __typename: 'NotFoundError', code: 'NOT_FOUND', message: 'Store not found', field: ['input', 'rules'] },
      ]);
    }
  });

  test('only HQ defines segments; names are unique among live ones; archiving frees the name', async () => {
    expect((await attempt({ rules: { member: true } }, manager))[0]).toMatchObject({ __typename: 'ForbiddenError' });
    const { createSegment } = await call(api, CREATE, { input: { name: 'VIP winback', rules: { member: true } } }, analyst);
    expect(createSegment.userErrors).toEqual([]);
    expect((await attempt({ name: 'vip WINBACK', rules: { member: false } }))[0]).toMatchObject({ __typename: 'ConflictError', code: 'DUPLICATE_NAME' });
    const archive = await call(api, `mutation($input: ArchiveSegmentInput!) { archiveSegment(input: $input) { segment { archivedAt } userErrors { code } } }`,
      { input: { segmentId: createSegment.segment.id } }, analyst);
    expect(archive.archiveSegment.segment.archivedAt).not.toBeNull();
    const listed = await call(api, `{ segments { name } }`, {}, analyst);
    expect(listed.segments.map((s: any) => s.name)).not.toContain('VIP winback');
    const again = await call(api, CREATE, { input: { name: 'VIP winback', rules: { member: true } } }, analyst);
    expect(again.createSegment.userErrors).toEqual([]);
  });

  test('updating replaces rules and name, and is validated the same way', async () => {
    const segment = await segmentOf({ member: true });
    const UPDATE = `mutation($input: UpdateSegmentInput!) { updateSegment(input: $input) { segment { name customerCount } userErrors { code field } } }`;
    const changed = await call(api, UPDATE, { input: { segmentId: segment.id, name: 'Never came', rules: { neverVisited: true } } }, chain.owner);
    expect(changed.updateSegment).toEqual({ segment: { name: 'Never came', customerCount: 1 }, userErrors: [] });
    const before = await fingerprint(api.owner);
    const bad = await call(api, UPDATE, { input: { segmentId: segment.id, rules: { visits: { min: -1 } } } }, chain.owner);
    expect(bad.updateSegment.userErrors).toEqual([{ code: 'INVALID', field: ['input', 'rules', 'visits', 'min'] }]);
    expect(await fingerprint(api.owner)).toEqual(before);
  });
});

// --- Value segments and RFM ---------------------------------------------------------------------------------------

/** PostgreSQL's ntile: the first n mod k buckets hold one more. */
function ntile<T>(sorted: T[], buckets: number): Map<T, number> {
  const result = new Map<T, number>();
  const size = Math.floor(sorted.length / buckets);
  const extra = sorted.length % buckets;
  let index = 0;
  for (let bucket = 1; bucket <= buckets; bucket++) {
    for (let i = 0; i < size + (bucket <= extra ? 1 : 0); i++) result.set(sorted[index++]!, bucket);
  }
  return result;
}

function expectedInsights(thresholds: { churnDays: number; windowDays: number; highFrequency: number; highTicket: number }): Record<string, { valueSegment: string | null; rfm: string | null; windowVisits: number }> {
  const population = MODEL.flatMap((m) => {
    const visits = (m.visits ?? []).filter(([daysAgo, , status]) => !status && daysAgo < thresholds.windowDays);
    if (!visits.length) return [];
    const spend = visits.reduce((sum, [, amount]) => sum + amount, 0);
    const lastDaysAgo = Math.min(...visits.map(([d]) => d));
    return [{ name: m.name, id: ids[m.name]!, visits: visits.length, spend, lastAt: base - lastDaysAgo * DAY, lastDaysAgo }];
  });
  const by = (key: (p: (typeof population)[number]) => number) =>
    ntile([...population].sort((a, b) => key(a) - key(b) || (a.id < b.id ? -1 : 1)).map((p) => p.name), 5);
  const r = by((p) => p.lastAt);
  const f = by((p) => p.visits);
  const m = by((p) => p.spend);
  return Object.fromEntries(
    MODEL.map(({ name }) => {
      const p = population.find((x) => x.name === name);
      if (!p) return [name, { valueSegment: null, rfm: null, windowVisits: 0 }];
      const highTicket = p.spend >= thresholds.highTicket * p.visits;
      const frequent = p.visits >= thresholds.highFrequency;
      const valueSegment = p.lastDaysAgo >= thresholds.churnDays ? 'AT_RISK' : frequent && highTicket ? 'CORE_VALUE' : highTicket ? 'POTENTIAL' : frequent ? 'BASIC_MAINTENANCE' : 'AT_RISK';
      return [name, { valueSegment, rfm: `${r.get(name)}${f.get(name)}${m.get(name)}`, windowVisits: p.visits }];
    }),
  );
}

describe('value segments and RFM', () => {
  const INSIGHTS = `query($id: ID!, $first: Int) { node(id: $id) { ... on Segment { customers(first: $first) { edges { node {
    name insights { valueSegment recencyScore frequencyScore monetaryScore rfm windowVisits windowSpend { minorUnits } atChurnRisk }
  } } } } } }`;

  test('Customer.insights matches the definitions, for a whole page in one statement', async () => {
    const everyone = await segmentOf({ any: [{ neverVisited: true }, { not: { neverVisited: true } }] });
    const { node } = await call(api, INSIGHTS, { id: everyone.id, first: 20 }, chain.owner);
    const actual = Object.fromEntries(node.customers.edges.map((e: any) => [e.node.name, { valueSegment: e.node.insights.valueSegment, rfm: e.node.insights.rfm, windowVisits: e.node.insights.windowVisits }]));
    expect(actual).toEqual(expectedInsights({ churnDays: 90, windowDays: 365, highFrequency: 6, highTicket: 80_000 }));
    const rui = node.customers.edges.find((e: any) => e.node.name === 'Rui').node.insights;
    expect(rui).toMatchObject({ valueSegment: 'CORE_VALUE', windowSpend: { minorUnits: '800000' }, atChurnRisk: false });
    expect(node.customers.edges.find((e: any) => e.node.name === 'Xia').node.insights.atChurnRisk).toBe(true);
    const page = async (first: number) => (await traced(api, () => call(api, INSIGHTS, { id: everyone.id, first }, chain.owner))).statements.length;
    expect(await page(3)).toBe(await page(12));
  });

  test('valueSegments counts per home store and combined, for HQ and for a store manager', async () => {
    const QUERY = `{ valueSegments { store { code } segment customers windowRevenue { minorUnits } } }`;
    const expected = expectedInsights({ churnDays: 90, windowDays: 365, highFrequency: 6, highTicket: 80_000 });
    const { valueSegments } = await call(api, QUERY, {}, chain.owner);
    const count = (rows: any[], code: string | null, segment: string) => rows.find((r) => (r.store?.code ?? null) === code && r.segment === segment)?.customers ?? 0;
    for (const segment of ['CORE_VALUE', 'POTENTIAL', 'BASIC_MAINTENANCE', 'AT_RISK']) {
      const members = MODEL.filter((m) => expected[m.name]!.valueSegment === segment);
      expect(count(valueSegments, null, segment), segment).toBe(members.length);
      for (const code of ['SH', 'CD', 'UR']) expect(count(valueSegments, code, segment), `${code} ${segment}`).toBe(members.filter((m) => m.home === code).length);
    }
    const mine = await call(api, QUERY, {}, manager);
    expect(new Set(mine.valueSegments.map((r: any) => r.store?.code ?? null))).toEqual(new Set(['CD', null]));
    expect(count(mine.valueSegments, null, 'POTENTIAL')).toBe(2); // Mei and Tao, both at home in CD
  });

  test('the organization\'s thresholds change the segments; only the owner may set them, within bounds', async () => {
    const SET = `mutation($input: UpdateInsightsSettingsInput!) { updateInsightsSettings(input: $input) {
      settings { churnDays lostDays highFrequencyVisits highTicket { amount } isDefault } userErrors { __typename code field } } }`;
    expect((await call(api, `{ insightsSettings { churnDays highTicket { amount } isDefault } }`, {}, chain.owner)).insightsSettings)
      .toEqual({ churnDays: 90, highTicket: { amount: '800.00' }, isDefault: true });
    const before = await fingerprint(api.owner);
    expect((await call(api, SET, { input: { churnDays: 400 } }, chain.owner)).updateInsightsSettings.userErrors)
      .toEqual([{ __typename: 'ValidationError', code: 'INVALID', field: ['input', 'churnDays'] }]);
    expect((await call(api, SET, { input: { highTicket: '0.001' } }, chain.owner)).updateInsightsSettings.userErrors[0].field).toEqual(['input', 'highTicket']);
    expect((await call(api, SET, { input: { churnDays: 6 } }, chain.owner)).updateInsightsSettings.userErrors[0].field).toEqual(['input', 'churnDays']);
    expect((await call(api, SET, { input: { churnDays: 60 } }, analyst)).updateInsightsSettings.userErrors[0].__typename).toBe('ForbiddenError');
    expect(await fingerprint(api.owner)).toEqual(before);

    const done = await call(api, SET, { input: { churnDays: 60, highTicket: '1000.00' } }, chain.owner);
    expect(done.updateInsightsSettings).toEqual({ settings: { churnDays: 60, lostDays: 365, highFrequencyVisits: 6, highTicket: { amount: '1000.00' }, isDefault: false }, userErrors: [] });
    const everyone = await segmentOf({ not: { neverVisited: true } });
    const { node } = await call(api, INSIGHTS, { id: everyone.id, first: 20 }, chain.owner);
    const actual = Object.fromEntries(node.customers.edges.map((e: any) => [e.node.name, e.node.insights.valueSegment]));
    const expected = expectedInsights({ churnDays: 60, windowDays: 365, highFrequency: 6, highTicket: 100_000 });
    expect(actual).toEqual(Object.fromEntries(Object.entries(expected).filter(([name]) => name !== 'Qin').map(([name, e]) => [name, e.valueSegment])));
    expect(actual.Pei).toBe('AT_RISK'); // 70 days quiet is now past the 60-day threshold
    // The other chain's settings are untouched.
    expect((await call(api, `{ insightsSettings { churnDays isDefault } }`, {}, 'OTHER_CHAIN_OWNER')).insightsSettings).toEqual({ churnDays: 90, isDefault: true });
    // And the metrics read the organization's threshold in the same statement.
    const metrics = await call(api, `{ storeMetrics(from: "2026-01-01", to: "2026-01-31", includeTotal: false) { churnDays } }`, {}, chain.owner);
    expect(metrics.storeMetrics[0].churnDays).toBe(60);
  });
});

describe('demo data', () => {
  test('the demo chain gets three working segments and a fortnight of feedback tasks', async () => {
    const orgId = api.principals.OWNER!.orgId;
    const config = api.running.platform.plugins.find((p) => p.definition.name === 'insights')!.config as InsightsConfig;
    await api.owner.$transaction((tx) => seedInsightsDemo({ tx, orgId, config }));
    const { segments } = await call(api, `{ segments { name customerCount countByStore { customers } rules { all { tags { all any none } } } } }`, {}, 'OWNER');
    expect(segments).toHaveLength(3);
    for (const segment of segments) expect(segment.countByStore.reduce((s: number, r: any) => s + r.customers, 0)).toBe(segment.customerCount);
    expect(segments.some((s: any) => s.customerCount > 0)).toBe(true);
    const tasks = await call(api, `{ careTasks(first: 100, filter: { statuses: [OPEN, DONE, DISMISSED] }) { edges { node { kind status } } } }`, {}, 'OWNER');
    const statuses = new Set(tasks.careTasks.edges.map((e: any) => e.node.status));
    expect(statuses).toEqual(new Set(['OPEN', 'DONE', 'DISMISSED']));
    // The front desk of SH-01 sees its store's share.
    const frontDesk = await call(api, `{ careTasks(first: 100, filter: { statuses: [OPEN, DONE, DISMISSED] }) { edges { node { store { code } } } } }`, {}, 'FRONT_DESK');
    expect(frontDesk.careTasks.edges.length).toBeGreaterThan(0);
    expect(frontDesk.careTasks.edges.every((e: any) => e.node.store.code === 'SH-01')).toBe(true);
  });
});
