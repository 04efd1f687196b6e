import { z } from 'zod';

export const COMPLAINT_CATEGORIES = ['SERVICE_QUALITY', 'STAFF_ATTITUDE', 'HYGIENE', 'PRICE', 'ADVERSE_REACTION', 'BOOKING', 'OTHER'] as const;
export const COMPLAINT_SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type ComplaintCategory = (typeof COMPLAINT_CATEGORIES)[number];
export type ComplaintSeverity = (typeof COMPLAINT_SEVERITIES)[number];

const clock = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'Use HH:MM (00:00–24:00)')
  .transform((value) => Number(value.slice(0, 2)) * 60 + Number(value.slice(3)));

const slaTarget = z.object({
  /** Business hours from opening to the first response (the case leaving OPEN). */
  firstResponseHours: z.number().positive().max(2_000),
  /** Business hours from opening to RESOLVED. */
  resolutionHours: z.number().positive().max(10_000),
}).refine((t) => t.resolutionHours >= t.firstResponseHours, { message: 'resolutionHours must be at least firstResponseHours' });

export const surveysConfigSchema = z
  .object({
    postVisit: z
      .object({
        enabled: z.boolean().default(true),
        /** The invitation opens this long after the visit is completed (the chains want feedback within 24 hours). */
        delayMinutes: z.number().int().min(0).max(24 * 60).default(120),
        /** …and can be answered for this long after it opens. */
        validForHours: z.number().int().min(1).max(24 * 90).default(7 * 24),
      })
      .prefault({}),
    /** Periodic satisfaction surveys to recently active customers, once per period (null turns them off). */
    periodic: z
      .object({
        /** Length of a period in months: 1, 2, 3 (quarterly), 4, 6 or 12, counted in the organization's calendar. */
        everyMonths: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4), z.literal(6), z.literal(12)]).default(3),
        /** Customers with a completed visit within this many days are invited. */
        activeWithinDays: z.number().int().min(1).max(3_650).default(180),
        validForDays: z.number().int().min(1).max(90).default(14),
      })
      .nullable()
      .prefault({}),
    /** A response at or below a threshold opens a complaint case (null turns that score's rule off). */
    lowScore: z
      .object({
        npsAtMost: z.number().int().min(0).max(10).nullable().default(6),
        csatAtMost: z.number().int().min(1).max(5).nullable().default(2),
        category: z.enum(COMPLAINT_CATEGORIES).default('SERVICE_QUALITY'),
        severity: z.enum(COMPLAINT_SEVERITIES).default('MEDIUM'),
      })
      .prefault({}),
    /**
     * Business hours, on each store's own clock (its time zone): from `opensAt` to `closesAt` on the ISO weekdays
     * listed (1 = Monday … 7 = Sunday). SLA due times count only these hours. Salons open every day by default.
     */
    businessHours: z
      .object({
        opensAt: clock.default(10 * 60),
        closesAt: clock.default(21 * 60),
        days: z.array(z.number().int().min(1).max(7)).min(1).max(7).default([1, 2, 3, 4, 5, 6, 7]),
      })
      .refine((h) => h.opensAt < h.closesAt, { message: 'opensAt must be before closesAt' })
      .prefault({}),
    /** SLA targets per severity, in business hours. */
    sla: z
      .object({
        CRITICAL: slaTarget.default({ firstResponseHours: 1, resolutionHours: 8 }),
        HIGH: slaTarget.default({ firstResponseHours: 2, resolutionHours: 22 }),
        MEDIUM: slaTarget.default({ firstResponseHours: 4, resolutionHours: 33 }),
        LOW: slaTarget.default({ firstResponseHours: 8, resolutionHours: 55 }),
      })
      .prefault({}),
    /** Severity of a complaint a customer files, by category (staff choose their own). */
    customerSeverity: z
      .partialRecord(z.enum(COMPLAINT_CATEGORIES), z.enum(COMPLAINT_SEVERITIES))
      .default({ ADVERSE_REACTION: 'HIGH', HYGIENE: 'HIGH' }),
    /** A resolved or closed complaint can be reopened for this many days after it was resolved. */
    reopenWindowDays: z.number().int().min(0).max(365).default(14),
    /** Prefix of the answer link handed out with an invitation token (the token is appended), e.g. https://s.example/f/. */
    linkBaseUrl: z.url().nullable().default(null),
  })
  .strict();

export type SurveysConfig = z.output<typeof surveysConfigSchema>;

/** Severity of a customer-filed complaint of this category. */
export function customerSeverity(config: SurveysConfig, category: ComplaintCategory): ComplaintSeverity {
  return config.customerSeverity[category] ?? 'MEDIUM';
}
