import { definePlugin } from '../../core/plugin/contract.ts';
import { flagSlaBreaches } from './complaints.ts';
import { surveysConfigSchema, type SurveysConfig } from './config.ts';
import { seedSurveysDemo } from './demo.ts';
import { invitePeriodic, inviteAfterVisit, withdrawAfterRefund } from './invitations.ts';
import { registerSurveysSchema } from './schema.ts';

/**
 * Surveys and complaints: versioned surveys (NPS, CSAT, choices, free text), one invitation per completed visit
 * and periodic satisfaction surveys, answers by the customer's token or a one-time link, low scores opening a
 * complaint case, complaint workflow with business-hour SLAs and an append-only timeline, and metrics.
 * Emits survey.completed (points and tiers reward it when they are on; this plugin imports neither).
 */
export default definePlugin<SurveysConfig>({
  name: 'surveys',
  description: 'Post-visit and periodic surveys (满意度调查), low-score follow-up, complaint cases (投诉) with SLAs.',
  config: surveysConfigSchema,
  capabilities: {
    'surveys:read': ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK'],
    'surveys:manage': ['OWNER', 'HQ_ANALYST'],
    'surveys:send': ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK'],
    'surveys:metrics': ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER'],
    'complaints:read': ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK'],
    'complaints:file': ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN', 'FRONT_DESK'],
    'complaints:handle': ['OWNER', 'STORE_MANAGER', 'CONSULTANT'],
    'complaints:assign': ['OWNER', 'STORE_MANAGER'],
  },
  schema: registerSurveysSchema,
  seedDemo: seedSurveysDemo,
  handlers: {
    'visit.completed': inviteAfterVisit,
    'visit.refunded': withdrawAfterRefund,
  },
  jobs: {
    // Flags due times that passed without a response / resolution, and emits complaint.slaBreached once each.
    'sla-watch': { schedule: '* * * * *', run: async ({ platform }) => void (await flagSlaBreaches(platform)) },
    // Once a day (10:30 in China); invites each active customer once per period.
    'periodic-surveys': { schedule: '30 2 * * *', run: async ({ platform, config }) => void (await invitePeriodic(platform, config)) },
  },
});
