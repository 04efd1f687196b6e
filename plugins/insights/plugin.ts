import { definePlugin } from '../../core/plugin/contract.ts';
import { CAPABILITIES } from './access.ts';
import { generateCareTasks, onVisitCompleted } from './care.ts';
import { insightsConfigSchema, type InsightsConfig } from './config.ts';
import { seedInsightsDemo } from './demo.ts';
import { registerInsightsSchema } from './schema.ts';

/**
 * HQ insights and lifecycle care: store and chain metrics computed in PostgreSQL (one statement per request, in each
 * store's time zone), value segments and RFM scores, saved segments as validated rules, and care tasks generated
 * exactly once by a scheduled job and on visit.completed. Other plugins add their figures to the store metrics through
 * the extension point `insights.storeMetrics` (see extension.ts).
 */
export default definePlugin<InsightsConfig>({
  name: 'insights',
  description: 'HQ insights (metrics, value segments, RFM, saved segments) and lifecycle care tasks.',
  config: insightsConfigSchema,
  capabilities: {
    [CAPABILITIES.read]: ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER'],
    [CAPABILITIES.segments]: ['OWNER', 'HQ_ANALYST'],
    [CAPABILITIES.settings]: ['OWNER'],
    [CAPABILITIES.careRead]: ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK'],
    [CAPABILITIES.careWork]: ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK'],
  },
  schema: registerInsightsSchema,
  seedDemo: seedInsightsDemo,
  handlers: {
    'visit.completed': onVisitCompleted,
  },
  jobs: {
    // Hourly: a birthday month or a lapse starts at local midnight somewhere; each task is created once whenever it runs.
    'care-tasks': {
      schedule: '7 * * * *',
      run: async ({ platform, config }) => {
        await generateCareTasks(platform, config);
      },
    },
  },
});
