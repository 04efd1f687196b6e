import { z } from 'zod';

/**
 * The insights plugin's configuration. `defaults` are the thresholds of an organization that has not set its own
 * (`updateInsightsSettings` stores them per organization); `care` shapes the generated care tasks.
 */
export const insightsConfigSchema = z
  .object({
    defaults: z
      .object({
        /** A customer with no completed visit in this many days is at churn risk. */
        churnDays: z.number().int().min(7).max(730).default(90),
        /** …and counted as lost, no longer "at risk", after this many days without a visit. */
        lostDays: z.number().int().min(8).max(3650).default(365),
        /** Trailing window of value segments and RFM scores. */
        segmentWindowDays: z.number().int().min(30).max(1095).default(365),
        /** Value segments: "high frequency" is at least this many completed visits in the window… */
        highFrequencyVisits: z.number().int().min(1).max(1000).default(6),
        /** …and "high ticket" an average ticket of at least this much, in minor units (80000 = ¥800.00). */
        highTicketMinor: z.number().int().min(1).max(100_000_000_000).default(80_000),
        /** Revenue share of the top this-many percent of customers. */
        topCustomerPercent: z.number().int().min(1).max(99).default(15),
      })
      .prefault({})
      .refine((d) => d.lostDays > d.churnDays, { message: 'lostDays must be greater than churnDays', path: ['lostDays'] }),
    care: z
      .object({
        /** Win-back task for a customer who reaches churnDays without a visit: due this many hours later. */
        winBackDueHours: z.number().int().min(1).max(24 * 30).default(72),
        /** Feedback after a completed visit: due this many hours after it. */
        feedbackDueHours: z.number().int().min(1).max(24 * 7).default(24),
        /** Follow-up of a completed visit: created this many days after it, due `followUpDueDays` after it. */
        followUpAfterDays: z.number().int().min(0).max(30).default(3),
        followUpDueDays: z.number().int().min(1).max(60).default(7),
        /** Repurchase reminder: created this many days before the service's cycle comes round. */
        repurchaseLeadDays: z.number().int().min(0).max(60).default(3),
        /** Kinds of task to generate (all by default). */
        kinds: z
          .array(z.enum(['WIN_BACK', 'BIRTHDAY', 'REPURCHASE', 'FEEDBACK', 'FOLLOW_UP']))
          .default(['WIN_BACK', 'BIRTHDAY', 'REPURCHASE', 'FEEDBACK', 'FOLLOW_UP']),
      })
      .prefault({})
      .refine((c) => c.followUpDueDays > c.followUpAfterDays, { message: 'followUpDueDays must be after followUpAfterDays', path: ['followUpDueDays'] }),
  })
  .strict();

export type InsightsConfig = z.output<typeof insightsConfigSchema>;
export type InsightsThresholds = InsightsConfig['defaults'];
export type CareKind = InsightsConfig['care']['kinds'][number];
