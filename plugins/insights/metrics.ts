import { requireCapability, orgWhere } from '../../core/graph/access.ts';
import { moneyFor } from '../../core/graph/money.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import type { Context } from '../../core/graphql/context.ts';
import { validationError } from '../../core/graphql/errors.ts';
import type { Tx } from '../../core/db/clients.ts';
import { asQuery, byId, CAPABILITIES, storesInScope } from './access.ts';
import type { InsightsConfig } from './config.ts';
import { periodsCovering } from './dates.ts';
import type { ContributedMetric, StoreMetricsContribution } from './extension.ts';
import { metricsSql, PERIOD_SQL, PERIODS, TRAILING_DAYS, type MetricsRow, type Period } from './metrics-sql.ts';

/** Most periods one request may cover (about 400 days, 5 years of weeks, 10 of months…). */
const MAX_PERIODS: Record<Period, number> = { DAY: 400, WEEK: 260, MONTH: 120, QUARTER: 40, YEAR: 20 };

interface MetricsRequest {
  orgId: string;
  from: string;
  to: string;
  period: Period;
  storeIds: string[] | null;
  extras?: Promise<Map<string, ContributedMetric[]>>;
}

type Row = MetricsRow & { period: Period; request: MetricsRequest };

/** Rounded half up: an exact integer quotient of minor units. */
function divideMinor(total: bigint, count: number): bigint | null {
  if (count === 0) return null;
  const n = BigInt(count);
  return (total * 2n + n) / (2n * n);
}

const ratio = (part: number, whole: number) => (whole > 0 ? part / whole : null);

export function registerMetrics(builder: Builder, config: InsightsConfig, contributions: StoreMetricsContribution[]) {
  const Period = builder.enumType('InsightsPeriod', {
    values: PERIODS,
    description: 'Calendar periods in each store\'s own time zone: days, weeks from Monday, months, quarters, years.',
  });

  const NamedMetric = builder.objectRef<ContributedMetric>('NamedMetric').implement({
    description: 'A figure another plugin contributes to the store metrics (e.g. points.usageRate), by name.',
    fields: (t) => ({
      name: t.exposeString('name', { description: 'Namespaced by the plugin, e.g. points.issued.' }),
      value: t.float({ nullable: true, description: 'Null when undefined (e.g. a rate over nothing).', resolve: (m) => m.value }),
    }),
  });

  const money = (value: (row: Row) => bigint | null) => (row: Row, _args: unknown, ctx: Context) => {
    const minor = value(row);
    return minor === null ? null : moneyFor(ctx, minor);
  };

  const StoreMetrics = builder.objectRef<Row>('StoreMetrics').implement({
    description:
      'Figures of one store — or of the request\'s stores combined (store null) — over one period. Source: completed ' +
      'visits (refunded ones excluded), each counted on its completion day in its store\'s time zone. A store\'s row uses ' +
      'only that store\'s visits (a customer seen at two stores is a customer of each); the combined row uses all of ' +
      'them (such a customer counts once). "Customers" are those with a completed visit in the scope.',
    fields: (t) => ({
      store: t.prismaField({
        type: 'Store',
        nullable: true,
        description: 'Null for the row of the request\'s stores combined (the whole chain for HQ).',
        resolve: (query, row, _args, ctx) => (row.storeId ? byId(ctx, 'store', query, orgWhere(ctx), row.storeId) : null) as never,
      }),
      storeCode: t.string({ nullable: true, resolve: (row) => row.storeCode }),
      timeZone: t.string({ nullable: true, description: 'The store\'s time zone, which its periods follow.', resolve: (row) => row.timezone }),
      period: t.field({ type: Period, resolve: (row) => row.period }),
      periodStart: t.field({ type: 'Date', resolve: (row) => row.periodStart }),
      periodEnd: t.field({ type: 'Date', description: 'The period\'s last day (inclusive).', resolve: (row) => row.periodEnd }),
      revenue: t.field({ type: 'Money', description: 'Total of the visits completed in the period.', resolve: money((r) => r.revenue) as never }),
      visits: t.int({ description: 'Visits completed in the period.', resolve: (row) => row.visits }),
      uniqueCustomers: t.int({ description: 'Distinct customers with a visit completed in the period.', resolve: (row) => row.customers }),
      averageTicket: t.field({
        type: 'Money',
        nullable: true,
        description: 'revenue ÷ visits, rounded half up to the minor unit (null without visits).',
        resolve: money((r) => divideMinor(r.revenue, r.visits)) as never,
      }),
      newCustomers: t.int({
        description: 'Customers of the period whose first completed visit in the scope (ever) falls in the period.',
        resolve: (row) => row.newCustomers,
      }),
      returningCustomers: t.int({ description: 'uniqueCustomers − newCustomers.', resolve: (row) => row.customers - row.newCustomers }),
      repurchaseCustomers: t.int({
        description:
          `Customers of the period with at least two completed visits in the scope in the ${TRAILING_DAYS} days ending on the ` +
          'period\'s last day (or in the period itself, when it is longer: a leap year).',
        resolve: (row) => row.repurchasers,
      }),
      repurchaseRate: t.float({
        nullable: true,
        description:
          `Repurchase rate: repurchaseCustomers ÷ uniqueCustomers — the share of the period's customers who bought at least twice ` +
          `in the trailing ${TRAILING_DAYS} days (the period's own visits included; a repeat within 12 months). Null without customers.`,
        resolve: (row) => ratio(row.repurchasers, row.customers),
      }),
      activeCustomersAtStart: t.int({
        description: 'Customers with a completed visit in the churnDays days before the period\'s first day.',
        resolve: (row) => row.activeAtStart,
      }),
      churnedCustomers: t.int({
        description:
          'Of activeCustomersAtStart, those whose churnDays-th day without a visit falls in the period (no visit came before it): ' +
          'the customers the period lost.',
        resolve: (row) => row.churned,
      }),
      churnRate: t.float({
        nullable: true,
        description: 'churnedCustomers ÷ activeCustomersAtStart (null when nobody was active).',
        resolve: (row) => ratio(row.churned, row.activeAtStart),
      }),
      atRiskCustomers: t.int({
        description:
          'Customers at churn risk on the period\'s last day: their last completed visit in the scope was churnDays or more ' +
          'days before it, but fewer than lostDays (longer ago counts as lost, not at risk).',
        resolve: (row) => row.atRisk,
      }),
      customersToDate: t.int({ description: 'Customers with a completed visit in the scope on or before the period\'s last day.', resolve: (row) => row.customersToDate }),
      lifetimeValue: t.field({
        type: 'Money',
        nullable: true,
        description: 'LTV, lifetime: revenue of all completed visits up to the period\'s last day ÷ customersToDate.',
        resolve: money((r) => divideMinor(r.revenueToDate, r.customersToDate)) as never,
      }),
      trailing12MonthCustomers: t.int({
        description: `Customers with a completed visit in the ${TRAILING_DAYS} days ending on the period's last day.`,
        resolve: (row) => row.trailingCustomers,
      }),
      trailing12MonthValue: t.field({
        type: 'Money',
        nullable: true,
        description: `LTV, trailing 12 months: revenue of the ${TRAILING_DAYS} days ending on the period's last day ÷ trailing12MonthCustomers.`,
        resolve: money((r) => divideMinor(r.trailingRevenue, r.trailingCustomers)) as never,
      }),
      topCustomers: t.int({
        description: 'The top topCustomerPercent% of the period\'s customers: ⌈percent × uniqueCustomers⌉, ranked by spend in the period.',
        resolve: (row) => row.topCustomers,
      }),
      topCustomersRevenueShare: t.float({
        nullable: true,
        description: 'Share of the period\'s revenue that the topCustomers brought (null without revenue).',
        resolve: (row) => (row.revenue > 0n ? Number(row.topRevenue) / Number(row.revenue) : null),
      }),
      churnDays: t.int({ description: 'The churn threshold used (the organization\'s, or the request\'s).', resolve: (row) => row.churnDays }),
      lostDays: t.int({ resolve: (row) => row.lostDays }),
      topCustomerPercent: t.int({ resolve: (row) => row.topPercent }),
      extra: t.field({
        type: [NamedMetric],
        description: 'Figures from other enabled plugins (points, surveys, referrals, …) for the same store and period.',
        resolve: async (row, _args, ctx) => {
          row.request.extras ??= contributed(ctx, row.request);
          return (await row.request.extras).get(`${row.storeId ?? ''}|${row.periodStart}`) ?? [];
        },
      }),
    }),
  });

  async function contributed(ctx: Context, request: MetricsRequest): Promise<Map<string, ContributedMetric[]>> {
    const { timezone } = await ctx.platform.orgSettings(request.orgId);
    const results = await Promise.all(
      contributions.map((contribute) =>
        contribute({
          tx: ctx.db as unknown as Tx,
          orgId: request.orgId,
          from: request.from,
          to: request.to,
          period: PERIOD_SQL[request.period].field as never,
          storeIds: request.storeIds,
          timezone,
        }),
      ),
    );
    const byKey = new Map<string, ContributedMetric[]>();
    for (const metric of results.flat()) {
      const key = `${metric.storeId ?? ''}|${metric.periodStart}`;
      byKey.set(key, [...(byKey.get(key) ?? []), metric]);
    }
    for (const list of byKey.values()) list.sort((a, b) => a.name.localeCompare(b.name));
    return byKey;
  }

  builder.queryField('storeMetrics', (t) =>
    t.field({
      type: [StoreMetrics],
      description:
        'Store metrics per period, computed in PostgreSQL in one statement: a row per store and period, then (includeTotal) ' +
        'a row of the stores combined. Every whole period overlapping [from, to] is reported. Store managers see their ' +
        'stores (the combined row is theirs combined); HQ sees the chain.',
      args: {
        from: t.arg({ type: 'Date', required: true }),
        to: t.arg({ type: 'Date', required: true }),
        period: t.arg({ type: Period, required: false, defaultValue: 'MONTH' }),
        storeIds: t.arg.globalIDList({ required: false, description: 'Only these stores (default: every store the caller sees).' }),
        includeTotal: t.arg.boolean({ required: false, defaultValue: true }),
        churnDays: t.arg.int({ required: false, description: 'Churn threshold for this request (default: the organization\'s).' }),
      },
      resolve: (_root, args, ctx) =>
        asQuery(async () => {
          const principal = requireCapability(ctx, CAPABILITIES.read);
          const period = (args.period ?? 'MONTH') as Period;
          if (args.to < args.from) throw validationError([{ field: ['to'], message: 'to is before from' }]);
          const covered = periodsCovering(args.from, args.to, period);
          if (covered.count > MAX_PERIODS[period]) {
            throw validationError([{ field: ['to'], message: `At most ${MAX_PERIODS[period]} ${period.toLowerCase()} periods per request` }]);
          }
          if (args.churnDays != null && (args.churnDays < 7 || args.churnDays > 730)) {
            throw validationError([{ field: ['churnDays'], message: 'churnDays must be 7 to 730' }]);
          }
          const storeIds = storesInScope(principal, args.storeIds?.map((id) => id.id));
          if (storeIds?.length === 0) return [];
          const rows = await ctx.db.$queryRaw<MetricsRow[]>(
            metricsSql({
              orgId: principal.orgId,
              storeIds,
              from: args.from,
              to: args.to,
              period,
              churnDays: args.churnDays ?? null,
              defaults: config.defaults,
              includeTotal: args.includeTotal ?? true,
            }),
          );
          const request: MetricsRequest = { orgId: principal.orgId, from: covered.first, to: covered.last, period, storeIds };
          return rows.map((row) => ({ ...row, period, request }));
        }),
    }),
  );
}

