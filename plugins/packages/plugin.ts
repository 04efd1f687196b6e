import type { StaffRole } from '../../core/auth/principal.ts';
import { definePlugin } from '../../core/plugin/contract.ts';
import { CAPABILITIES } from './access.ts';
import { packagesConfigSchema, type PackagesConfig } from './config.ts';
import { flagRiskyBooking, refuseUnacknowledgedContraindications } from './contraindications.ts';
import { BOOKING_CHECK } from '../../core/graph/visit.ts';
import { seedPackagesDemo } from './demo.ts';
import { completeLinkedSteps, unlinkSteps } from './plans.ts';
import { registerPackagesSchema } from './schema.ts';

/**
 * Medical-aesthetic packages and partner clinics: course packages (sold, consumed, refunded pro rata, frozen,
 * extended), partnerships agreed by a chain and a clinic, joint treatment plans the clinic sees only with the
 * customer's consent naming it, follow-up schedules, contraindication checks, and package metrics.
 */
export default definePlugin<PackagesConfig>({
  name: 'packages',
  description: 'Medical-aesthetic packages (疗程卡), partner clinics, joint treatment plans with consent, follow-ups.',
  config: packagesConfigSchema,
  capabilities: Object.fromEntries(Object.entries(CAPABILITIES).map(([name, roles]) => [name, [...roles] as StaffRole[]])),
  schema: registerPackagesSchema,
  seedDemo: seedPackagesDemo,
  handlers: {
    'visit.booked': flagRiskyBooking,
    'visit.completed': completeLinkedSteps,
    'visit.cancelled': unlinkSteps,
    'visit.noShow': unlinkSteps,
  },
  contributes: () => ({ [BOOKING_CHECK]: refuseUnacknowledgedContraindications }),
});
