import { z } from 'zod';

/**
 * What a level gives, as data. There is no cash kind: referral rewards are points or services, never money
 * (commercial-bribery rules).
 */
export const BENEFIT_KINDS = ['SERVICE', 'PRODUCT_GIFT', 'PRIORITY_BOOKING', 'DEDICATED_CONSULTANT', 'EVENT_INVITATION', 'OTHER'] as const;
export type BenefitKind = (typeof BENEFIT_KINDS)[number];

export const benefitSchema = z
  .object({
    kind: z.enum(BENEFIT_KINDS),
    description: z.string().trim().min(1).max(200),
    /** For SERVICE: the catalogue service given (validated against the organization when set through the API). */
    serviceId: z.uuid().nullish(),
  })
  .strict();
export type Benefit = z.output<typeof benefitSchema>;

export const levelSchema = z
  .object({
    code: z.string().regex(/^[A-Z][A-Z0-9_]{1,29}$/, 'Codes are 2–30 of A–Z, 0–9 and _, starting with a letter'),
    name: z.string().trim().min(1).max(60),
    /** Converted (qualified or rewarded) referrals needed. */
    minConvertedReferrals: z.number().int().min(0).max(100_000),
    /** The referrer's own spend on completed visits over the last 12 months, in minor units. */
    minSpend12mMinor: z.number().int().min(0).max(1e12),
    /** Extra referrer points at this level, as a percentage of the base reward. */
    referralBonusPercent: z.number().int().min(0).max(200).default(0),
    benefits: z.array(benefitSchema).max(20).default([]),
  })
  .strict();
export type LevelInput = z.input<typeof levelSchema>;

/** Lowest first; a referrer holds the highest level whose both thresholds they meet. */
export const levelsSchema = z
  .array(levelSchema)
  .min(1)
  .max(10)
  .superRefine((levels, ctx) => {
    const codes = new Set<string>();
    levels.forEach((level, index) => {
      if (codes.has(level.code)) ctx.addIssue({ code: 'custom', path: [index, 'code'], message: `Level code ${level.code} is used twice` });
      codes.add(level.code);
      const below = levels[index - 1];
      if (below && (level.minConvertedReferrals < below.minConvertedReferrals || level.minSpend12mMinor < below.minSpend12mMinor)) {
        ctx.addIssue({ code: 'custom', path: [index], message: 'Each level needs at least the thresholds of the level below it' });
      }
      if (below && level.minConvertedReferrals === below.minConvertedReferrals && level.minSpend12mMinor === below.minSpend12mMinor) {
        ctx.addIssue({ code: 'custom', path: [index], message: 'Each level needs higher thresholds than the level below it' });
      }
    });
  });

export const DEFAULT_LEVELS: LevelInput[] = [
  {
    code: 'APPRENTICE',
    name: '见习美丽合伙人 Apprentice partner',
    minConvertedReferrals: 1,
    minSpend12mMinor: 0,
    referralBonusPercent: 0,
    benefits: [{ kind: 'OTHER', description: 'Partner badge in the member app' }],
  },
  {
    code: 'OFFICIAL',
    name: '正式美丽合伙人 Official partner',
    minConvertedReferrals: 3,
    minSpend12mMinor: 300_000,
    referralBonusPercent: 10,
    benefits: [
      { kind: 'PRIORITY_BOOKING', description: 'Priority booking for weekend appointments' },
      { kind: 'SERVICE', description: 'One complimentary skin analysis per quarter' },
    ],
  },
  {
    code: 'GOLD',
    name: '金牌美丽合伙人 Gold partner',
    minConvertedReferrals: 10,
    minSpend12mMinor: 1_000_000,
    referralBonusPercent: 20,
    benefits: [
      { kind: 'DEDICATED_CONSULTANT', description: 'A dedicated beauty consultant' },
      { kind: 'SERVICE', description: 'A complimentary hydrating facial each birthday month' },
      { kind: 'EVENT_INVITATION', description: 'Invitations to brand research sessions and new-treatment previews' },
    ],
  },
];

export const referralsConfigSchema = z
  .object({
    /** A newcomer may claim a code up to this many days after they were registered. */
    claimWindowDays: z.number().int().min(1).max(365).default(30),
    /** A claimed referral must qualify within this many days, or it expires. */
    qualifyWithinDays: z.number().int().min(1).max(730).default(90),
    /** The first paid visit must total at least this much (minor units, e.g. 10000 = ¥100). */
    minimumFirstVisitMinor: z.number().int().min(1).max(2_000_000_000).default(10_000),
    rewards: z
      .object({
        referrerPoints: z.number().int().min(1).max(1_000_000).default(500),
        /** Null: the same as the referrer's base reward (equal points on both sides). */
        refereePoints: z.number().int().min(1).max(1_000_000).nullable().default(null),
      })
      .strict()
      .prefault({}),
    /** Claims of one referrer's code per calendar month (organization's time zone); null: no cap. */
    monthlyCapPerReferrer: z.number().int().min(1).max(10_000).nullable().default(10),
    /** Partner levels for organizations that have not set their own (setReferralPartnerLevels). */
    partnerLevels: levelsSchema.prefault(DEFAULT_LEVELS),
  })
  .strict();

export type ReferralsConfig = z.output<typeof referralsConfigSchema>;
export type Level = z.output<typeof levelSchema>;
