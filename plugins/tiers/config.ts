import { z } from 'zod';

/**
 * Events from other modules that can count as behaviour tasks. Which task (if any) an event counts as is data:
 * each organization maps an event type to one of its tasks (`tier_task.event_type`). The handlers are declared
 * for this list because a plugin's handlers are fixed when it is loaded; adding an event type here is the only
 * code change a new kind of task needs.
 */
export const TASK_EVENT_TYPES = [
  'survey.completed',
  'careDiary.shared',
  'referral.qualified',
  'brandResearch.joined',
  'skinCheckIn.recorded',
  'customer.profileCompleted',
] as const;
export type TaskEventType = (typeof TASK_EVENT_TYPES)[number];

export const tiersConfigSchema = z
  .object({
    /** Qualification looks at spend and tasks in this many months up to today (in the store's calendar). */
    windowMonths: z.number().int().min(1).max(36).default(12),
    downgrade: z
      .object({
        /** Days a member may stay below their tier's requirements before the scheduled re-evaluation lowers it. */
        graceDays: z.number().int().min(0).max(730).default(30),
        /** Levels one downgrade may take away; a further step waits for another grace period. */
        levelsPerStep: z.number().int().min(1).max(20).default(1),
      })
      .strict()
      .prefault({}),
    override: z
      .object({
        /** Longest a manual override may last. */
        maxDays: z.number().int().min(1).max(1096).default(366),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type TiersConfig = z.output<typeof tiersConfigSchema>;
