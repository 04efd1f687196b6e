import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PLUGINS_DIR } from '../bootstrap.ts';
import { buildSchema } from '../graphql/schema.ts';
import { gid, startTestPlatform, type TestPlatform } from '../testing/platform.ts';
import { availablePlugins, loadPlugins, PluginConfigurationError } from './loader.ts';

const contract = fileURLToPath(new URL('./contract.ts', import.meta.url));
let fixtures: string;

/** Plugins written to a temporary plugins folder, to exercise the loader's rules. */
async function fixturePlugin(name: string, body: string) {
  await mkdir(join(fixtures, name), { recursive: true });
  await writeFile(
    join(fixtures, name, 'plugin.ts'),
    `import { definePlugin } from ${JSON.stringify(contract)};\nimport { z } from 'zod';\nexport default definePlugin(${body});\n`,
  );
}

beforeAll(async () => {
  fixtures = await mkdtemp(join(tmpdir(), 'crm-plugins-'));
  await fixturePlugin('base', `{ name: 'base', description: 'base', config: z.object({ limit: z.number().int().min(1).default(5) }).strict() }`);
  await fixturePlugin('needs-base', `{ name: 'needs-base', description: 'x', dependsOn: ['base'] }`);
  await fixturePlugin('cycle-a', `{ name: 'cycle-a', description: 'x', dependsOn: ['cycle-b'] }`);
  await fixturePlugin('cycle-b', `{ name: 'cycle-b', description: 'x', dependsOn: ['cycle-a'] }`);
  await fixturePlugin('misnamed', `{ name: 'other', description: 'x' }`);
});
afterAll(() => rm(fixtures, { recursive: true, force: true }));

describe('loading plugins', () => {
  test('orders plugins after their dependencies and applies config defaults', async () => {
    const loaded = await loadPlugins(fixtures, ['needs-base', 'base']);
    expect(loaded.map((p) => p.definition.name)).toEqual(['base', 'needs-base']);
    expect(loaded[0]!.config).toEqual({ limit: 5 });
  });

  test('a missing dependency fails with a message naming it and how to fix it', async () => {
    await expect(loadPlugins(fixtures, ['needs-base'])).rejects.toThrow(
      /Plugin "needs-base" depends on "base", which is not enabled\. Enable both \(CRM_PLUGINS=needs-base,base\)/,
    );
  });

  test('bad configuration fails with the path and the rule', async () => {
    const failure = loadPlugins(fixtures, ['base'], { base: { limit: 0 } });
    await expect(failure).rejects.toBeInstanceOf(PluginConfigurationError);
    await expect(failure).rejects.toThrow(/Invalid configuration for plugin "base": limit: Too small/);
    await expect(loadPlugins(fixtures, ['base'], { base: { limt: 3 } })).rejects.toThrow(/Unrecognized key/);
    await expect(loadPlugins(PLUGINS_DIR, ['points'], { points: { lotLifetimeMonths: 0 } })).rejects.toThrow(
      /Invalid configuration for plugin "points": lotLifetimeMonths/,
    );
  });

  test('unknown plugins, cycles, misnamed declarations and config for disabled plugins are refused', async () => {
    await expect(loadPlugins(fixtures, ['nope'])).rejects.toThrow(/Unknown plugin "nope".*Available: base, cycle-a/);
    await expect(loadPlugins(fixtures, ['cycle-a', 'cycle-b'])).rejects.toThrow(/dependency cycle: cycle-a -> cycle-b -> cycle-a/);
    await expect(loadPlugins(fixtures, ['misnamed'])).rejects.toThrow(/must default-export definePlugin\(\{ name: "misnamed"/);
    await expect(loadPlugins(fixtures, ['base'], { 'needs-base': {} })).rejects.toThrow(/not enabled/);
  });

  test('the default set is every folder with a plugin.ts', () => {
    expect(availablePlugins(PLUGINS_DIR)).toContain('points');
  });
});

describe('the schema follows the enabled plugins', () => {
  test('without points there is no points type or field; with it, Customer.points and its mutations exist', async () => {
    const without = buildSchema([]);
    const withPoints = buildSchema(await loadPlugins(PLUGINS_DIR, ['points']));
    const customerFields = (schema: typeof without) => Object.keys((schema.getType('Customer') as any).getFields());
    expect(without.getType('PointsAccount')).toBeUndefined();
    expect(customerFields(without)).not.toContain('points');
    expect(Object.keys(without.getMutationType()!.getFields())).not.toContain('redeemReward');
    expect(withPoints.getType('PointsAccount')).toBeDefined();
    expect(customerFields(withPoints)).toContain('points');
    expect(Object.keys(withPoints.getMutationType()!.getFields())).toContain('redeemReward');
    expect(Object.keys(withPoints.getSubscriptionType()!.getFields())).toContain('pointsChanged');
  });
});

describe('a disabled plugin handles no events', () => {
  let api: TestPlatform;
  beforeAll(async () => {
    api = await startTestPlatform({ plugins: [] });
  });
  afterAll(() => api?.close());

  test('completing a visit with points off awards nothing, and the API has no points field', async () => {
    const customer = await api.owner.customer.findUniqueOrThrow({
      where: { id: (api.principals.CUSTOMER as { customerId: string }).customerId },
    });
    const store = await api.owner.store.findFirstOrThrow({ where: { orgId: customer.orgId, code: 'SH-01' } });
    const service = await api.owner.service.findFirstOrThrow({ where: { orgId: customer.orgId, active: true } });
    const booked = await api.gql(
      `mutation($input: BookVisitInput!) { bookVisit(input: $input) { visit { id } userErrors { code } } }`,
      { input: { customerId: gid('Customer', customer.id), storeId: gid('Store', store.id), serviceIds: [gid('Service', service.id)], startsAt: new Date(Date.now() + 3_600_000).toISOString() } },
      'FRONT_DESK',
    );
    const visitId = booked.data.bookVisit.visit.id;
    await api.gql(`mutation($input: CheckInVisitInput!) { checkInVisit(input: $input) { userErrors { code } } }`, { input: { visitId, idempotencyKey: 'plugin-off-checkin' } }, 'FRONT_DESK');
    const completed = await api.gql(
      `mutation($input: CompleteVisitInput!) { completeVisit(input: $input) { visit { status } userErrors { code } } }`,
      { input: { visitId, idempotencyKey: 'plugin-off-complete', lineItems: [{ serviceId: gid('Service', service.id) }] } },
      'FRONT_DESK',
    );
    expect(completed.data.completeVisit.visit.status).toBe('COMPLETED');
    await api.drainJobs();
    expect(await api.owner.domainEvent.count({ where: { type: 'visit.completed' } })).toBe(1);
    expect(await api.owner.processedEvent.count()).toBe(0);
    expect(await api.owner.pointsEntry.count()).toBe(0);
    const probe = await api.gql('{ viewer { customer { points { balance } } } }', {}, 'CUSTOMER');
    expect(probe.errors?.[0]?.message).toMatch(/Cannot query field "points" on type "Customer"/);
  });
});
