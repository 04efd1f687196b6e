import { inTransaction } from '../../core/events/outbox.ts';
import { definePlugin } from '../../core/plugin/contract.ts';
import { referralsConfigSchema, type ReferralsConfig } from './config.ts';
import { seedReferralsDemo } from './demo.ts';
import { ACTOR, expireDue, payOnEnrolment, qualifyOnVisit, rejectOnRefund } from './lifecycle.ts';
import { registerReferralsSchema } from './schema.ts';

/** Referrals (推荐): shareable codes, qualification on a first paid visit, points for both sides, fraud checks, partner levels. */
export default definePlugin<ReferralsConfig>({
  name: 'referrals',
  description: 'Referrals (推荐): codes, qualification, two-sided points rewards, fraud checks, "aesthetic partner" levels.',
  dependsOn: ['points'],
  config: referralsConfigSchema,
  capabilities: {
    // Registering a newcomer's code at the front desk (a customer can claim for themself without it).
    'referrals:write': ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK'],
    'referrals:reject': ['OWNER', 'STORE_MANAGER'],
    'referrals:manage': ['OWNER'],
    'referrals:metrics': ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER'],
  },
  schema: registerReferralsSchema,
  seedDemo: seedReferralsDemo,
  handlers: {
    'visit.completed': qualifyOnVisit,
    'visit.refunded': rejectOnRefund,
    'membership.enrolled': payOnEnrolment,
  },
  jobs: {
    'expire-referrals': {
      schedule: '5 * * * *',
      // Each organization in its own transaction, under its tenant; batches until none is due.
      run: async ({ platform, config }) => {
        const now = new Date();
        const orgs = await platform.dbs.system.$queryRaw<{ orgId: string }[]>`
          SELECT DISTINCT org_id AS "orgId" FROM referral WHERE status = 'PENDING' AND qualify_by <= ${now}`;
        for (const { orgId } of orgs) {
          for (;;) {
            const expired = await inTransaction(platform, platform.dbs.forOrg(orgId), orgId, ACTOR, (tx, emit) =>
              expireDue({ tx, emit, actor: ACTOR, config, platform }, orgId, now),
            );
            if (expired === 0) break;
          }
        }
      },
    },
  },
});
