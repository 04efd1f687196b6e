import { z } from 'zod';

const offsets = z
  .array(z.number().int().min(0).max(730))
  .max(20)
  .refine((days) => days.every((day, i) => i === 0 || day > days[i - 1]!), 'Offsets must be distinct and ascending');

export const packagesConfigSchema = z
  .object({
    /** Follow-up offsets (days after the procedure) for a clinic step that names no template of its own. */
    defaultClinicFollowUpDays: offsets.default([1, 7, 30, 90]),
    /** How long a staff acknowledgement of a contraindication covers bookings of that service for that customer. */
    acknowledgementValidDays: z.number().int().min(1).max(365).default(30),
    /** How far back a step's outcome may be dated (performedAt). */
    outcomeBackdateDays: z.number().int().min(0).max(365).default(90),
  })
  .strict();

export type PackagesConfig = z.output<typeof packagesConfigSchema>;
