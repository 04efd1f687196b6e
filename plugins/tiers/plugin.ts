import { definePlugin } from '../../core/plugin/contract.ts';
import { TASK_EVENT_TYPES, tiersConfigSchema, type TiersConfig } from './config.ts';
import { seedTiersDemo } from './demo.ts';
import { currentTier, reevaluateAll, tierHeldAt } from './evaluate.ts';
import { registerTiersSchema } from './schema.ts';
import { reevaluateOnEvent, taskEventHandler } from './tasks.ts';
import type { Tx } from '../../core/db/clients.ts';

/**
 * Membership tiers (会员等级): a ladder per organization qualified by rolling spend and behaviour tasks, immediate
 * upgrades, graceful downgrades, overrides, history and benefits. Works with or without the points plugin: when
 * points is on, it reads the tier's multiplier and code through the extension points below (named as strings,
 * so neither plugin imports the other).
 */
export default definePlugin<TiersConfig>({
  name: 'tiers',
  description: 'Membership tiers (会员等级): spend plus engagement, downgrades with grace, overrides, benefits.',
  config: tiersConfigSchema,
  capabilities: {
    'tiers:override': ['OWNER', 'STORE_MANAGER'],
    'tiers:tasks': ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK'],
    'tiers:manage': ['OWNER'],
  },
  schema: registerTiersSchema,
  seedDemo: seedTiersDemo,
  handlers: {
    'visit.completed': reevaluateOnEvent,
    'visit.refunded': reevaluateOnEvent,
    'membership.enrolled': reevaluateOnEvent,
    ...Object.fromEntries(TASK_EVENT_TYPES.map((type) => [type, taskEventHandler(type)])),
  },
  jobs: {
    // Downgrades after the grace period, expired overrides, and upgrades a ladder change made possible.
    reevaluate: { schedule: '23 * * * *', run: ({ platform, config }) => reevaluateAll(platform, config) },
  },
  contributes: () => ({
    'points.earnMultiplier': async ({ tx, orgId, customerId, at }: { tx: Tx; orgId: string; customerId: string; at: Date }) => {
      const tier = await tierHeldAt(tx, orgId, customerId, at);
      return tier ? tier.pointsMultiplierPct / 100 : 1;
    },
    'points.customerTier': async ({ tx, orgId, customerId }: { tx: Tx; orgId: string; customerId: string }) =>
      (await currentTier(tx, orgId, customerId))?.code ?? null,
  }),
});
