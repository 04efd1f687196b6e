import { definePlugin } from '../../core/plugin/contract.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { INTERACTION_EVENTS, pointsConfigSchema, type PointsConfig } from './config.ts';
import { awardInteraction, awardVisit, reverseVisit, welcomeMember } from './earning.ts';
import { accountsWithDueLots, expireAccount } from './ledger.ts';
import { registerPointsSchema } from './schema.ts';
import { seedPointsDemo } from './demo.ts';
import { pointsStoreMetrics } from './insights.ts';

/** Loyalty points: an append-only ledger with expiring lots, earn rules, a rewards catalogue, caps and donations. */
export default definePlugin<PointsConfig>({
  name: 'points',
  description: 'Loyalty points (积分): earn, expire, redeem, donate.',
  config: pointsConfigSchema,
  capabilities: {
    'points:redeem': ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK'],
    'points:adjust': ['OWNER', 'STORE_MANAGER'],
    'points:manage': ['OWNER'],
    'points:metrics': ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER'],
  },
  schema: registerPointsSchema,
  seedDemo: seedPointsDemo,
  // Figures for the insights plugin's store metrics, when it is on (points never imports insights).
  contributes: () => ({ 'insights.storeMetrics': pointsStoreMetrics }),
  handlers: {
    'membership.enrolled': welcomeMember,
    'visit.completed': awardVisit,
    'visit.refunded': reverseVisit,
    ...Object.fromEntries(
      Object.entries(INTERACTION_EVENTS).map(([type, { source, points }]) => [type, awardInteraction(source, points, type)]),
    ),
  },
  jobs: {
    'expire-lots': {
      schedule: '*/15 * * * *',
      // Each account in its own transaction, under its tenant: a failure affects one account and is retried.
      run: async ({ platform }) => {
        const now = new Date();
        for (;;) {
          const due = await accountsWithDueLots(platform.dbs.system, now);
          if (due.length === 0) return;
          for (const account of due) {
            await inTransaction(platform, platform.dbs.forOrg(account.orgId), account.orgId, 'plugin:points', (tx, emit) =>
              expireAccount({ tx, emit, actor: 'plugin:points' }, account, now),
            );
          }
        }
      },
    },
  },
});
