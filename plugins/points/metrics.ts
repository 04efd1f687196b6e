import { GraphQLError } from 'graphql';
import { storeScope } from '../../core/auth/policy.ts';
import { requireCapability } from '../../core/graph/access.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import { fieldPath, validationError, DomainError } from '../../core/graphql/errors.ts';

interface MetricsRow {
  storeId: string | null;
  periodStart: string;
  issued: number;
  redeemed: number;
  expired: number;
  donated: number;
  adjusted: number;
}

/**
 * Points KPIs per store and period, computed in PostgreSQL. Periods are calendar days, weeks (Monday) or
 * months in each store's time zone (the organization's for entries without a store).
 * issued = earned − earnings reversed by refunds; redeemed = redeemed − redemptions cancelled;
 * usage rate = redeemed ÷ issued.
 */
export function pointsMetrics(builder: Builder) {
  const Period = builder.enumType('MetricsPeriod', { values: ['DAY', 'WEEK', 'MONTH'] as const });
  const Row = builder.objectRef<MetricsRow>('PointsMetrics').implement({
    description: 'Points issued and used at one store in one period.',
    fields: (t) => ({
      store: t.prismaField({
        type: 'Store',
        nullable: true,
        description: 'Null for points not tied to a store (e.g. online interactions).',
        resolve: (query, row, _args, ctx) => (row.storeId ? ctx.db.store.findFirst({ ...query, where: { id: row.storeId } }) : null),
      }),
      periodStart: t.field({ type: 'Date', resolve: (row) => row.periodStart }),
      issued: t.exposeInt('issued'),
      redeemed: t.exposeInt('redeemed'),
      expired: t.exposeInt('expired'),
      donated: t.exposeInt('donated'),
      adjusted: t.exposeInt('adjusted', { description: 'Net manual adjustments.' }),
      usageRate: t.float({
        nullable: true,
        description: 'redeemed ÷ issued (null when nothing was issued).',
        resolve: (row) => (row.issued > 0 ? row.redeemed / row.issued : null),
      }),
    }),
  });

  builder.queryField('pointsMetrics', (t) =>
    t.field({
      type: [Row],
      description: 'Points KPIs per store and period (dates inclusive, local to each store). Store managers see their stores.',
      args: {
        from: t.arg({ type: 'Date', required: true }),
        to: t.arg({ type: 'Date', required: true }),
        period: t.arg({ type: Period, required: false, defaultValue: 'MONTH' }),
        storeIds: t.arg.globalIDList({ required: false }),
      },
      resolve: async (_root, args, ctx) => {
        try {
          const principal = requireCapability(ctx, 'points:metrics');
          if (args.to < args.from) throw validationError([{ field: fieldPath('to'), message: 'to is before from' }]);
          const scope = storeScope(principal);
          const wanted = args.storeIds?.map((id) => id.id) ?? null;
          const stores = scope ? (wanted ?? scope).filter((id) => scope.includes(id)) : wanted;
          const { timezone } = await ctx.platform.orgSettings(principal.orgId);
          const grain = (args.period ?? 'MONTH').toLowerCase();
          return await ctx.db.$queryRaw<MetricsRow[]>`
            SELECT e.store_id AS "storeId",
                   to_char(date_trunc(${grain}, e.created_at AT TIME ZONE coalesce(s.timezone, ${timezone})), 'YYYY-MM-DD') AS "periodStart",
                   coalesce(sum(e.amount) FILTER (WHERE e.kind = 'EARN' OR (e.kind = 'REVERSAL' AND e.source = 'VISIT')), 0)::int AS issued,
                   coalesce(-sum(e.amount) FILTER (WHERE e.kind = 'REDEEM' OR (e.kind = 'REVERSAL' AND e.source = 'REWARD')), 0)::int AS redeemed,
                   coalesce(-sum(e.amount) FILTER (WHERE e.kind = 'EXPIRE'), 0)::int AS expired,
                   coalesce(-sum(e.amount) FILTER (WHERE e.kind = 'DONATE'), 0)::int AS donated,
                   coalesce(sum(e.amount) FILTER (WHERE e.kind = 'ADJUST'), 0)::int AS adjusted
            FROM points_entry e LEFT JOIN store s ON s.id = e.store_id
            WHERE e.org_id = ${principal.orgId}::uuid
              -- A day's margin either side keeps the index usable; the exact local bounds follow.
              AND e.created_at >= ${args.from}::date - 1 AND e.created_at < ${args.to}::date + 2
              AND (e.created_at AT TIME ZONE coalesce(s.timezone, ${timezone}))::date BETWEEN ${args.from}::date AND ${args.to}::date
              AND (${stores}::uuid[] IS NULL OR e.store_id = ANY(${stores}::uuid[]))
            GROUP BY 1, 2
            ORDER BY 2, 1 NULLS LAST`;
        } catch (error) {
          // A query has no userErrors: the refusal travels as a GraphQL error with its code (a plain Error would be
          // masked as an internal one, "Unexpected error.", and tell the caller nothing).
          if (error instanceof DomainError) throw new GraphQLError(error.message, { extensions: { code: error.userErrors[0]?.code ?? 'BAD_REQUEST' } });
          throw error;
        }
      },
    }),
  );
}
