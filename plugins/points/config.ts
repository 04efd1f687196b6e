import { z } from 'zod';

const CATEGORY_KEYS = ['FACIAL', 'BODY', 'NAIL', 'HAIR_REMOVAL', 'ANTI_AGEING', 'MEDICAL_AESTHETIC', 'PRODUCT'] as const;

/** Events from other modules that earn interaction points, and how many (0 turns one off). */
export const INTERACTION_EVENTS = {
  'survey.completed': { source: 'SURVEY', points: 50 },
  'careDiary.shared': { source: 'CARE_DIARY', points: 30 },
  'customer.profileCompleted': { source: 'PROFILE', points: 20 },
  'skinCheckIn.recorded': { source: 'HEALTH_CHECK_IN', points: 20 },
} as const;
export type InteractionEvent = keyof typeof INTERACTION_EVENTS;

export const pointsConfigSchema = z
  .object({
    earning: z
      .object({
        /** Points per unit of currency (per ¥1) spent on a completed visit. */
        pointsPerCurrencyUnit: z.number().min(0).max(100).default(1),
        /** Overrides by service category (and PRODUCT for retail), e.g. { MEDICAL_AESTHETIC: 0.5 }. */
        categoryRates: z.partialRecord(z.enum(CATEGORY_KEYS), z.number().min(0).max(100)).default({}),
        /** Member day: a day of each month, in the store's time zone, with a multiplier. */
        memberDay: z
          .object({ dayOfMonth: z.number().int().min(1).max(31), multiplier: z.number().min(1).max(10) })
          .nullable()
          .default({ dayOfMonth: 18, multiplier: 2 }),
        welcomePoints: z.number().int().min(0).max(100_000).default(100),
        interactions: z
          .partialRecord(z.enum(Object.keys(INTERACTION_EVENTS) as [InteractionEvent, ...InteractionEvent[]]), z.number().int().min(0).max(100_000))
          .default({}),
      })
      .prefault({}),
    /** Earned points expire this many months after they are earned (rolling). */
    lotLifetimeMonths: z.number().int().min(1).max(120).default(12),
    /** Redeemed points' value in a calendar month may not exceed this share of that month's spend. */
    monthlyRedemptionCap: z
      .object({
        percentOfMonthlySpend: z.number().int().min(1).max(100),
        /** What one point is worth, in minor units of the currency (10 = ¥0.10). */
        pointValueMinor: z.number().int().min(1).max(100_000),
      })
      .nullable()
      .default({ percentOfMonthlySpend: 50, pointValueMinor: 10 }),
    expiringSoonDays: z.number().int().min(1).max(365).default(30),
  })
  .strict();

export type PointsConfig = z.output<typeof pointsConfigSchema>;
