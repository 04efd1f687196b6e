import { GraphQLError } from 'graphql';
import { can, storeScope } from '../../core/auth/policy.ts';
import { orgWhere } from '../../core/graph/access.ts';
import { Prisma } from '../../core/db/generated/client.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import { requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { loadCoreRow } from './access.ts';
import { COMPLAINT_CATEGORIES } from './config.ts';

/**
 * Satisfaction and complaint KPIs, computed in PostgreSQL. Periods are calendar days, weeks (from Monday), months,
 * quarters or years on each store's clock; `from`/`to` are local dates, inclusive.
 *
 * NPS = % promoters (9–10) − % detractors (0–6) of the NPS answers; CSAT = % of CSAT answers that are 4 or 5.
 * By staff, a response counts for every staff member who served its visit (the visit's beautician and the staff
 * on its service lines); by service, for every service on the visit. Periodic surveys (no visit) count only by
 * organization and store.
 */
const PERIODS = ['DAY', 'WEEK', 'MONTH', 'QUARTER', 'YEAR'] as const;

interface SurveyRow {
  keyId: string | null;
  periodStart: string;
  responses: number;
  npsResponses: number;
  promoters: number;
  passives: number;
  detractors: number;
  nps: number | null;
  csatResponses: number;
  csatSatisfied: number;
  csat: number | null;
  csatAverage: number | null;
  group: string;
}

interface ComplaintRow {
  keyId: string | null;
  periodStart: string;
  opened: number;
  resolved: number;
  firstResponseBreaches: number;
  resolutionBreaches: number;
  breached: number;
  slaBreachRate: number;
  medianFirstResponseSeconds: number | null;
  medianResolutionSeconds: number | null;
  categories: Record<string, number>;
  group: string;
}

function badInput(message: string): never {
  throw new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

/** The stores the metrics may cover for this caller: those asked for, cut to the caller's own. */
function metricsScope(ctx: Context, storeIds: { id: string }[] | null | undefined): string[] | null {
  const principal = requirePrincipal(ctx);
  if (!can(principal, 'surveys:metrics')) throw new GraphQLError('Requires the surveys:metrics permission', { extensions: { code: 'FORBIDDEN' } });
  const scope = storeScope(principal);
  const wanted = storeIds?.map((id) => id.id) ?? null;
  return scope ? (wanted ?? scope).filter((id) => scope.includes(id)) : wanted;
}

export function registerSurveyMetrics(builder: Builder) {
  const Period = builder.enumType('FeedbackMetricsPeriod', { values: PERIODS, description: 'Calendar periods on each store\'s clock; weeks start on Monday.' });
  const SurveyGroup = builder.enumType('SurveyMetricsGroup', { values: ['ORGANIZATION', 'STORE', 'STAFF', 'SERVICE'] as const });
  const ComplaintGroup = builder.enumType('ComplaintMetricsGroup', { values: ['ORGANIZATION', 'STORE', 'STAFF'] as const });
  const CategoryEnum = 'ComplaintCategory' as never;

  const keyed = <T extends { keyId: string | null; group: string }>(t: any) => ({
    store: t.prismaField({
      type: 'Store',
      nullable: true,
      description: 'Set when grouped by store.',
      resolve: (query: object, row: T, _a: unknown, ctx: Context) => (row.group === 'STORE' ? loadCoreRow(ctx, 'store', query, row.keyId, orgWhere(ctx)) : null),
    }),
    staff: t.prismaField({
      type: 'Staff',
      nullable: true,
      description: 'Set when grouped by staff.',
      resolve: (query: object, row: T, _a: unknown, ctx: Context) => (row.group === 'STAFF' ? loadCoreRow(ctx, 'staff', query, row.keyId, orgWhere(ctx)) : null),
    }),
    periodStart: t.field({ type: 'Date', resolve: (row: T & { periodStart: string }) => row.periodStart }),
  });

  const SurveyMetrics = builder.objectRef<SurveyRow>('SurveyMetrics').implement({
    description: 'NPS and CSAT of one group (organization, store, staff member or service) in one period.',
    fields: (t) => ({
      ...keyed<SurveyRow>(t),
      service: t.prismaField({
        type: 'Service',
        nullable: true,
        description: 'Set when grouped by service.',
        resolve: (query, row, _a, ctx) => (row.group === 'SERVICE' ? loadCoreRow(ctx, 'service', query, row.keyId, orgWhere(ctx)) : null) as never,
      }),
      responses: t.exposeInt('responses'),
      npsResponses: t.exposeInt('npsResponses'),
      promoters: t.exposeInt('promoters', { description: 'NPS 9–10.' }),
      passives: t.exposeInt('passives', { description: 'NPS 7–8.' }),
      detractors: t.exposeInt('detractors', { description: 'NPS 0–6.' }),
      nps: t.float({ nullable: true, description: '% promoters − % detractors, −100 to 100, one decimal (null without NPS answers).', resolve: (r) => r.nps }),
      csatResponses: t.exposeInt('csatResponses'),
      csatSatisfied: t.exposeInt('csatSatisfied', { description: 'CSAT 4–5.' }),
      csat: t.float({ nullable: true, description: '% of CSAT answers that are 4 or 5, one decimal.', resolve: (r) => r.csat }),
      csatAverage: t.float({ nullable: true, description: 'Mean CSAT score, two decimals.', resolve: (r) => r.csatAverage }),
    }),
  });

  const CategoryCount = builder.objectRef<{ category: string; count: number }>('ComplaintCategoryCount').implement({
    fields: (t) => ({ category: t.field({ type: CategoryEnum, resolve: (c) => c.category as never }), count: t.exposeInt('count') }),
  });

  const ComplaintMetrics = builder.objectRef<ComplaintRow>('ComplaintMetrics').implement({
    description:
      'Complaints opened in one period, for one group. A target counts as breached when its response or resolution came ' +
      'after its due time, or has not come and the due time has passed. Durations are wall-clock seconds.',
    fields: (t) => ({
      ...keyed<ComplaintRow>(t),
      opened: t.exposeInt('opened'),
      resolved: t.exposeInt('resolved', { description: 'Of those opened, how many are RESOLVED or CLOSED now.' }),
      byCategory: t.field({
        type: [CategoryCount],
        resolve: (row) => COMPLAINT_CATEGORIES.map((category) => ({ category, count: row.categories[category] ?? 0 })).filter((c) => c.count > 0),
      }),
      firstResponseBreaches: t.exposeInt('firstResponseBreaches'),
      resolutionBreaches: t.exposeInt('resolutionBreaches'),
      breached: t.exposeInt('breached', { description: 'Complaints with at least one SLA breach.' }),
      slaBreachRate: t.float({ description: 'breached ÷ opened.', resolve: (r) => r.slaBreachRate }),
      medianTimeToFirstResponseSeconds: t.int({ nullable: true, resolve: (r) => (r.medianFirstResponseSeconds === null ? null : Math.round(r.medianFirstResponseSeconds)) }),
      medianTimeToResolutionSeconds: t.int({ nullable: true, resolve: (r) => (r.medianResolutionSeconds === null ? null : Math.round(r.medianResolutionSeconds)) }),
    }),
  });

  const window = (column: Prisma.Sql, from: string, to: string) => Prisma.sql`
    ${column} >= ${from}::date - 1 AND ${column} < ${to}::date + 2
    AND (${column} AT TIME ZONE s.timezone)::date BETWEEN ${from}::date AND ${to}::date`;


  builder.queryField('surveyMetrics', (t) =>
    t.field({
      type: [SurveyMetrics],
      description:
        'NPS and CSAT per organization, store, staff member or service, and period (surveys:metrics; store-bound roles ' +
        'see their stores). By staff: everyone who served the visit; by service: every service of the visit.',
      args: {
        from: t.arg({ type: 'Date', required: true }),
        to: t.arg({ type: 'Date', required: true }),
        period: t.arg({ type: Period, required: false, defaultValue: 'MONTH' }),
        storeIds: t.arg.globalIDList({ required: false }),
        groupBy: t.arg({ type: SurveyGroup, required: false, defaultValue: 'STORE' }),
      },
      resolve: async (_root, args, ctx) => {
        const stores = metricsScope(ctx, args.storeIds);
        if (args.to < args.from) badInput('to is before from');
        const principal = requirePrincipal(ctx);
        const grain = (args.period ?? 'MONTH').toLowerCase();
        const group = args.groupBy ?? 'STORE';
        const keyedSql = {
          ORGANIZATION: Prisma.sql`SELECT NULL::uuid AS key_id, sc.* FROM scoped sc`,
          STORE: Prisma.sql`SELECT sc.store_id AS key_id, sc.* FROM scoped sc`,
          STAFF: Prisma.sql`
            SELECT x.staff_id AS key_id, sc.* FROM scoped sc JOIN visit v ON v.id = sc.visit_id
            CROSS JOIN LATERAL (
              SELECT v.staff_id UNION SELECT vl.staff_id FROM visit_line vl WHERE vl.visit_id = v.id AND vl.kind = 'SERVICE'
            ) x(staff_id)
            WHERE x.staff_id IS NOT NULL`,
          SERVICE: Prisma.sql`
            SELECT x.service_id AS key_id, sc.* FROM scoped sc
            CROSS JOIN LATERAL (
              SELECT DISTINCT vl.service_id FROM visit_line vl WHERE vl.visit_id = sc.visit_id AND vl.kind = 'SERVICE'
            ) x(service_id)`,
        }[group];
        const rows = await ctx.db.$queryRaw<Omit<SurveyRow, 'group'>[]>`
          WITH scoped AS (
            SELECT r.id, r.store_id, r.visit_id, r.nps_score, r.csat_score,
                   date_trunc(${grain}, r.submitted_at AT TIME ZONE s.timezone)::date AS period
            FROM survey_response r JOIN store s ON s.id = r.store_id
            WHERE r.org_id = ${principal.orgId}::uuid AND ${window(Prisma.sql`r.submitted_at`, args.from as string, args.to as string)}
              AND (${stores}::uuid[] IS NULL OR r.store_id = ANY(${stores}::uuid[]))
          ), keyed AS (${keyedSql})
          SELECT key_id AS "keyId", to_char(period, 'YYYY-MM-DD') AS "periodStart",
                 count(*)::int AS responses,
                 count(nps_score)::int AS "npsResponses",
                 count(*) FILTER (WHERE nps_score >= 9)::int AS promoters,
                 count(*) FILTER (WHERE nps_score BETWEEN 7 AND 8)::int AS passives,
                 count(*) FILTER (WHERE nps_score <= 6)::int AS detractors,
                 round(100.0 * (count(*) FILTER (WHERE nps_score >= 9) - count(*) FILTER (WHERE nps_score <= 6))
                       / nullif(count(nps_score), 0), 1)::float8 AS nps,
                 count(csat_score)::int AS "csatResponses",
                 count(*) FILTER (WHERE csat_score >= 4)::int AS "csatSatisfied",
                 round(100.0 * count(*) FILTER (WHERE csat_score >= 4) / nullif(count(csat_score), 0), 1)::float8 AS csat,
                 round(avg(csat_score), 2)::float8 AS "csatAverage"
          FROM keyed
          GROUP BY key_id, period
          ORDER BY period, key_id NULLS FIRST`;
        return rows.map((row) => ({ ...row, group }));
      },
    }),
  );

  builder.queryField('complaintMetrics', (t) =>
    t.field({
      type: [ComplaintMetrics],
      description:
        'Complaints opened per organization, store or staff member (the one complained about) and period: by category, ' +
        'SLA breaches and breach rate, median time to first response and to resolution (surveys:metrics).',
      args: {
        from: t.arg({ type: 'Date', required: true }),
        to: t.arg({ type: 'Date', required: true }),
        period: t.arg({ type: Period, required: false, defaultValue: 'MONTH' }),
        storeIds: t.arg.globalIDList({ required: false }),
        groupBy: t.arg({ type: ComplaintGroup, required: false, defaultValue: 'STORE' }),
      },
      resolve: async (_root, args, ctx) => {
        const stores = metricsScope(ctx, args.storeIds);
        if (args.to < args.from) badInput('to is before from');
        const principal = requirePrincipal(ctx);
        const grain = (args.period ?? 'MONTH').toLowerCase();
        const group = args.groupBy ?? 'STORE';
        const key = { ORGANIZATION: Prisma.sql`NULL::uuid`, STORE: Prisma.sql`c.store_id`, STAFF: Prisma.sql`c.staff_id` }[group];
        const categories = Prisma.join(
          COMPLAINT_CATEGORIES.map((category) => Prisma.sql`${category}::text, count(*) FILTER (WHERE category = ${category}::complaint_category)`),
        );
        const rows = await ctx.db.$queryRaw<(Omit<ComplaintRow, 'group'>)[]>`
          WITH scoped AS (
            SELECT ${key} AS key_id, c.category, c.status, c.opened_at, c.first_responded_at, c.resolved_at,
                   date_trunc(${grain}, c.opened_at AT TIME ZONE s.timezone)::date AS period,
                   coalesce(c.first_responded_at, now()) > c.first_response_due_at AS first_late,
                   coalesce(c.resolved_at, now()) > c.resolution_due_at AS resolution_late
            FROM complaint c JOIN store s ON s.id = c.store_id
            WHERE c.org_id = ${principal.orgId}::uuid AND ${window(Prisma.sql`c.opened_at`, args.from as string, args.to as string)}
              AND (${stores}::uuid[] IS NULL OR c.store_id = ANY(${stores}::uuid[]))
              AND (${group} <> 'STAFF' OR c.staff_id IS NOT NULL)
          )
          SELECT key_id AS "keyId", to_char(period, 'YYYY-MM-DD') AS "periodStart",
                 count(*)::int AS opened,
                 count(*) FILTER (WHERE status IN ('RESOLVED', 'CLOSED'))::int AS resolved,
                 count(*) FILTER (WHERE first_late)::int AS "firstResponseBreaches",
                 count(*) FILTER (WHERE resolution_late)::int AS "resolutionBreaches",
                 count(*) FILTER (WHERE first_late OR resolution_late)::int AS breached,
                 round(count(*) FILTER (WHERE first_late OR resolution_late)::numeric / count(*), 4)::float8 AS "slaBreachRate",
                 percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_responded_at - opened_at))
                   FILTER (WHERE first_responded_at IS NOT NULL) AS "medianFirstResponseSeconds",
                 percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - opened_at))
                   FILTER (WHERE resolved_at IS NOT NULL) AS "medianResolutionSeconds",
                 json_build_object(${categories}) AS categories
          FROM scoped
          GROUP BY key_id, period
          ORDER BY period, key_id NULLS FIRST`;
        return rows.map((row) => ({ ...row, group }));
      },
    }),
  );
}
