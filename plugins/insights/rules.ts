import { z } from 'zod';
import { Prisma } from '../../core/db/generated/client.ts';
import type { InsightsThresholds } from './config.ts';

export const VALUE_SEGMENTS = ['CORE_VALUE', 'POTENTIAL', 'BASIC_MAINTENANCE', 'AT_RISK'] as const;
export type ValueSegment = (typeof VALUE_SEGMENTS)[number];
const GENDERS = ['FEMALE', 'MALE', 'OTHER', 'UNDISCLOSED'] as const;
const SOURCES = ['WALK_IN', 'REFERRAL', 'ONLINE', 'PARTNER', 'OTHER'] as const;

const days = z.number().int().min(1, 'At least 1 day').max(3650, 'At most 3650 days');
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'Not an id');
const tag = z.string().trim().toLowerCase().min(1).max(40);
const tagList = z.array(tag).max(30);
const nonEmpty = <T extends z.ZodType>(item: T, max = 50) => z.array(item).min(1, 'Give at least one').max(max);
const range = (bound: z.ZodNumber) =>
  z
    .object({ withinDays: days.nullable(), min: bound.nullable(), max: bound.nullable() })
    .strict()
    .refine((r) => r.min !== null || r.max !== null, { message: 'Give min, max or both' })
    .refine((r) => r.min === null || r.max === null || r.min <= r.max, { message: 'min is above max', path: ['max'] });

/**
 * A segment rule in its stored (canonical) form: exactly one key per node. Amounts are integer minor units; "within
 * N days" counts back from the moment the segment is evaluated; customer_fact supplies lifetime figures.
 */
export type Rule =
  | { all: Rule[] }
  | { any: Rule[] }
  | { not: Rule }
  | { spend: { withinDays: number | null; min: number | null; max: number | null } }
  | { visits: { withinDays: number | null; min: number | null; max: number | null } }
  | { lastVisit: { moreThanDaysAgo: number | null; withinDays: number | null } }
  | { neverVisited: true }
  | { tags: { all: string[]; any: string[]; none: string[] } }
  | { homeStores: string[] }
  | { birthdayMonths: number[] }
  | { member: boolean }
  | { valueSegments: ValueSegment[] }
  | { genders: (typeof GENDERS)[number][] }
  | { sources: (typeof SOURCES)[number][] };

// One object with every key optional and a check that exactly one is set (rather than a union of one-key objects), so
// that an issue's path names the field at fault.
export const ruleSchema: z.ZodType<Rule> = z.lazy(() =>
  z
    .object({
      all: nonEmpty(ruleSchema),
      any: nonEmpty(ruleSchema),
      not: ruleSchema,
      spend: range(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)),
      visits: range(z.number().int().min(0).max(100_000)),
      lastVisit: z
        .object({ moreThanDaysAgo: days.nullable(), withinDays: days.nullable() })
        .strict()
        .refine((r) => r.moreThanDaysAgo !== null || r.withinDays !== null, { message: 'Give moreThanDaysAgo, withinDays or both' })
        .refine((r) => r.moreThanDaysAgo === null || r.withinDays === null || r.moreThanDaysAgo < r.withinDays, {
          message: 'withinDays must be more than moreThanDaysAgo',
          path: ['withinDays'],
        }),
      neverVisited: z.literal(true),
      tags: z
        .object({ all: tagList, any: tagList, none: tagList })
        .strict()
        .refine((t) => t.all.length + t.any.length + t.none.length > 0, { message: 'Give at least one tag' }),
      homeStores: nonEmpty(uuid),
      birthdayMonths: nonEmpty(z.number().int().min(1).max(12), 12),
      member: z.boolean(),
      valueSegments: nonEmpty(z.enum(VALUE_SEGMENTS), 4),
      genders: nonEmpty(z.enum(GENDERS), 4),
      sources: nonEmpty(z.enum(SOURCES), 5),
    })
    .partial()
    .strict()
    .refine((node) => Object.values(node).filter((value) => value !== undefined).length === 1, { message: 'Each rule sets exactly one field' }),
) as unknown as z.ZodType<Rule>;

export const MAX_RULE_DEPTH = 5;
export const MAX_RULE_CONDITIONS = 40;

/** Problems beyond the shape: nesting and size limits. */
export function ruleLimits(rule: Rule): string | null {
  let conditions = 0;
  const walk = (node: Rule, depth: number): string | null => {
    if (depth > MAX_RULE_DEPTH) return `Rules nest at most ${MAX_RULE_DEPTH} levels deep`;
    if ('all' in node || 'any' in node) {
      for (const child of 'all' in node ? node.all : node.any) {
        const problem = walk(child, depth + 1);
        if (problem) return problem;
      }
      return null;
    }
    if ('not' in node) return walk(node.not, depth + 1);
    conditions += 1;
    return conditions > MAX_RULE_CONDITIONS ? `At most ${MAX_RULE_CONDITIONS} conditions` : null;
  };
  return walk(rule, 1);
}

/** Store ids a rule names (checked to belong to the organization when the segment is saved). */
export function ruleStoreIds(rule: Rule): string[] {
  if ('all' in rule) return rule.all.flatMap(ruleStoreIds);
  if ('any' in rule) return rule.any.flatMap(ruleStoreIds);
  if ('not' in rule) return ruleStoreIds(rule.not);
  return 'homeStores' in rule ? rule.homeStores : [];
}

/** Whether a rule needs the organization's thresholds (only value segments do). */
export function usesValueSegments(rule: Rule): boolean {
  if ('all' in rule) return rule.all.some(usesValueSegments);
  if ('any' in rule) return rule.any.some(usesValueSegments);
  if ('not' in rule) return usesValueSegments(rule.not);
  return 'valueSegments' in rule;
}

export interface RuleEnv {
  orgId: string;
  /** The moment "within N days" counts back from. */
  at: Date;
  thresholds: Pick<InsightsThresholds, 'churnDays' | 'segmentWindowDays' | 'highFrequencyVisits' | 'highTicketMinor'>;
}

/**
 * The rule as a boolean SQL expression over `c` (customer) and `f` (its customer_fact row, LEFT JOINed). Every value
 * from the rule is a bound parameter; only column names and operators, chosen here, are SQL text. Each condition is
 * NULL-safe (coalesced to false), so NOT means "does not match".
 */
export function compileRule(rule: Rule, env: RuleEnv): Prisma.Sql {
  const bool = (sql: Prisma.Sql) => Prisma.sql`coalesce((${sql}), false)`;
  const since = (withinDays: number) => Prisma.sql`${env.at}::timestamptz - make_interval(days => ${withinDays}::int)`;
  const completed = (withinDays: number, select: Prisma.Sql) => Prisma.sql`(
    SELECT ${select} FROM visit v
    WHERE v.org_id = c.org_id AND v.customer_id = c.id AND v.status = 'COMPLETED'
      AND v.completed_at > ${since(withinDays)} AND v.completed_at <= ${env.at}::timestamptz)`;
  const bounds = (value: Prisma.Sql, min: number | null, max: number | null) =>
    Prisma.join(
      [...(min !== null ? [Prisma.sql`${value} >= ${min}::bigint`] : []), ...(max !== null ? [Prisma.sql`${value} <= ${max}::bigint`] : [])],
      ' AND ',
    );
  if ('all' in rule) return Prisma.sql`(${Prisma.join(rule.all.map((r) => compileRule(r, env)), ' AND ')})`;
  if ('any' in rule) return Prisma.sql`(${Prisma.join(rule.any.map((r) => compileRule(r, env)), ' OR ')})`;
  if ('not' in rule) return Prisma.sql`(NOT ${compileRule(rule.not, env)})`;
  if ('spend' in rule) {
    const { withinDays, min, max } = rule.spend;
    const value = withinDays === null ? Prisma.sql`coalesce(f.total_spend_minor, 0)` : completed(withinDays, Prisma.sql`coalesce(sum(v.total_minor), 0)`);
    return bool(bounds(value, min, max));
  }
  if ('visits' in rule) {
    const { withinDays, min, max } = rule.visits;
    const value = withinDays === null ? Prisma.sql`coalesce(f.visit_count, 0)` : completed(withinDays, Prisma.sql`count(*)`);
    return bool(bounds(value, min, max));
  }
  if ('lastVisit' in rule) {
    const { moreThanDaysAgo, withinDays } = rule.lastVisit;
    return bool(
      Prisma.join(
        [
          Prisma.sql`f.last_visit_at IS NOT NULL`,
          ...(moreThanDaysAgo !== null ? [Prisma.sql`f.last_visit_at <= ${since(moreThanDaysAgo)}`] : []),
          ...(withinDays !== null ? [Prisma.sql`f.last_visit_at > ${since(withinDays)}`] : []),
        ],
        ' AND ',
      ),
    );
  }
  if ('neverVisited' in rule) return Prisma.sql`(f.last_visit_at IS NULL)`;
  if ('tags' in rule) {
    const { all, any, none } = rule.tags;
    return bool(
      Prisma.join(
        [
          ...(all.length ? [Prisma.sql`c.tags @> ${all}::text[]`] : []),
          ...(any.length ? [Prisma.sql`c.tags && ${any}::text[]`] : []),
          ...(none.length ? [Prisma.sql`NOT (c.tags && ${none}::text[])`] : []),
        ],
        ' AND ',
      ),
    );
  }
  if ('homeStores' in rule) return bool(Prisma.sql`c.home_store_id = ANY(${rule.homeStores}::uuid[])`);
  if ('birthdayMonths' in rule) return bool(Prisma.sql`c.birthday_month = ANY(${rule.birthdayMonths}::int[])`);
  if ('member' in rule) {
    const exists = Prisma.sql`EXISTS (SELECT 1 FROM membership m WHERE m.customer_id = c.id AND m.status = 'ACTIVE')`;
    return rule.member ? exists : Prisma.sql`(NOT ${exists})`;
  }
  if ('valueSegments' in rule) {
    const t = env.thresholds;
    return bool(Prisma.sql`${completed(
      t.segmentWindowDays,
      Prisma.sql`insights_value_segment(count(*), sum(v.total_minor)::bigint, max(v.completed_at), ${env.at}::timestamptz,
        ${t.churnDays}::int, ${t.highFrequencyVisits}::int, ${t.highTicketMinor}::bigint)`,
    )} = ANY(${rule.valueSegments}::text[])`);
  }
  if ('genders' in rule) return bool(Prisma.sql`c.gender::text = ANY(${rule.genders}::text[])`);
  if ('sources' in rule) return bool(Prisma.sql`c.source::text = ANY(${rule.sources}::text[])`);
  const unknown: never = rule;
  throw new Error(`Unknown rule ${JSON.stringify(unknown)}`);
}

/** GraphQL input (one field set per node) → the canonical rule, or the path of the first node that is not exactly one. */
export type RuleInput = {
  all?: RuleInput[] | null;
  any?: RuleInput[] | null;
  not?: RuleInput | null;
  spend?: { withinDays?: number | null; min?: string | null; max?: string | null } | null;
  visits?: { withinDays?: number | null; min?: number | null; max?: number | null } | null;
  lastVisit?: { moreThanDaysAgo?: number | null; withinDays?: number | null } | null;
  neverVisited?: boolean | null;
  tags?: { all?: string[] | null; any?: string[] | null; none?: string[] | null } | null;
  homeStoreIds?: { id: string }[] | null;
  birthdayMonths?: number[] | null;
  member?: boolean | null;
  valueSegments?: string[] | null;
  genders?: string[] | null;
  sources?: string[] | null;
};

export class RuleInputError extends Error {
  constructor(readonly path: (string | number)[], message: string) {
    super(message);
  }
}

export function ruleFromInput(input: RuleInput, toMinor: (amount: string) => number | null, path: (string | number)[] = []): unknown {
  const set = Object.entries(input).filter(([, value]) => value !== null && value !== undefined);
  if (set.length !== 1) throw new RuleInputError(path, 'Each rule sets exactly one field');
  const [key, value] = set[0]! as [keyof RuleInput, any];
  switch (key) {
    case 'all':
    case 'any':
      return { [key]: (value as RuleInput[]).map((child, i) => ruleFromInput(child, toMinor, [...path, key, i])) };
    case 'not':
      return { not: ruleFromInput(value, toMinor, [...path, 'not']) };
    case 'spend': {
      const amount = (name: 'min' | 'max') => {
        if (value[name] == null) return null;
        const minor = toMinor(value[name]);
        if (minor === null) throw new RuleInputError([...path, 'spend', name], 'Not an amount in the organization\'s currency');
        return minor;
      };
      return { spend: { withinDays: value.withinDays ?? null, min: amount('min'), max: amount('max') } };
    }
    case 'visits':
      return { visits: { withinDays: value.withinDays ?? null, min: value.min ?? null, max: value.max ?? null } };
    case 'lastVisit':
      return { lastVisit: { moreThanDaysAgo: value.moreThanDaysAgo ?? null, withinDays: value.withinDays ?? null } };
    case 'neverVisited':
      if (value !== true) throw new RuleInputError([...path, 'neverVisited'], 'neverVisited can only be true (use not)');
      return { neverVisited: true };
    case 'tags':
      return { tags: { all: value.all ?? [], any: value.any ?? [], none: value.none ?? [] } };
    case 'homeStoreIds':
      return { homeStores: [...new Set((value as { id: string }[]).map((id) => id.id.toLowerCase()))] };
    case 'birthdayMonths':
      return { birthdayMonths: [...new Set(value as number[])] };
    case 'member':
      return { member: value };
    case 'valueSegments':
    case 'genders':
    case 'sources':
      return { [key]: [...new Set(value as string[])] };
  }
}

/** Maps a zod issue path on the canonical rule back to the GraphQL input's field names. */
export function inputPath(path: PropertyKey[]): (string | number)[] {
  return path.map((segment) => (segment === 'homeStores' ? 'homeStoreIds' : typeof segment === 'symbol' ? String(segment) : segment));
}
