import DataLoader from 'dataloader';
import { can } from '../../core/auth/policy.ts';
import { Prisma } from '../../core/db/generated/client.ts';
import { orgWhere, requireCapability } from '../../core/graph/access.ts';
import { moneyFor } from '../../core/graph/money.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import { loader, requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { asQuery, byId, CAPABILITIES, storesInScope } from './access.ts';
import type { InsightsThresholds } from './config.ts';
import { VALUE_SEGMENTS, type ValueSegment } from './rules.ts';

/**
 * The thresholds as a one-row CTE (`cfg`): the organization's settings, else the defaults. Read inside the statement
 * that uses them, so no separate query is needed.
 */
export function cfgCte(orgId: string, defaults: InsightsThresholds): Prisma.Sql {
  return Prisma.sql`cfg AS (
    SELECT coalesce(s.churn_days, ${defaults.churnDays}::int) AS churn,
           coalesce(s.segment_window_days, ${defaults.segmentWindowDays}::int) AS window_days,
           coalesce(s.high_frequency_visits, ${defaults.highFrequencyVisits}::int) AS high_frequency,
           coalesce(s.high_ticket_minor, ${defaults.highTicketMinor}::bigint) AS high_ticket
    FROM (SELECT 1) one LEFT JOIN insights_settings s ON s.org_id = ${orgId}::uuid
  )`;
}

/** Completed visits of the trailing window per customer (`w`), with value segment and RFM scores (`scored`). */
function scoredCtes(orgId: string, at: Date, defaults: InsightsThresholds): Prisma.Sql {
  return Prisma.sql`${cfgCte(orgId, defaults)},
  w AS (
    SELECT v.customer_id, count(*)::int AS visits, sum(v.total_minor)::bigint AS spend, max(v.completed_at) AS last_at
    FROM visit v, cfg
    WHERE v.org_id = ${orgId}::uuid AND v.status = 'COMPLETED'
      AND v.completed_at > ${at}::timestamptz - make_interval(days => cfg.window_days) AND v.completed_at <= ${at}::timestamptz
    GROUP BY v.customer_id
  ),
  scored AS (
    SELECT w.*,
           insights_value_segment(w.visits, w.spend, w.last_at, ${at}::timestamptz, cfg.churn, cfg.high_frequency, cfg.high_ticket) AS segment,
           ntile(5) OVER (ORDER BY w.last_at, w.customer_id)::int AS r,
           ntile(5) OVER (ORDER BY w.visits, w.customer_id)::int AS f,
           ntile(5) OVER (ORDER BY w.spend, w.customer_id)::int AS m
    FROM w, cfg
  )`;
}

interface InsightsRow {
  customerId: string;
  visits: number | null;
  spend: bigint | null;
  lastAt: Date | null;
  segment: ValueSegment | null;
  r: number | null;
  f: number | null;
  m: number | null;
  lastVisitAt: Date | null;
  churnDays: number;
  windowDays: number;
}

export function registerValue(builder: Builder, defaults: InsightsThresholds) {
  const Segment = builder.enumType('ValueSegment', {
    values: VALUE_SEGMENTS,
    description:
      'From completed visits in the trailing window (segmentWindowDays): AT_RISK when the last one is churnDays or more ' +
      'ago; otherwise by frequency (visits ≥ highFrequencyVisits) × average ticket (≥ highTicket): CORE_VALUE both high, ' +
      'POTENTIAL high ticket only, BASIC_MAINTENANCE high frequency only, AT_RISK both low.',
  });

  const CustomerInsights = builder.objectRef<InsightsRow>('CustomerInsights').implement({
    description:
      'A customer\'s value segment and RFM scores over the trailing window, now. RFM: each 1–5, the quintile (ntile) among the ' +
      'organization\'s customers with a completed visit in the window — recency by last visit, frequency by visits, ' +
      'monetary by spend; 5 is best. Null scores and segment for a customer without visits in the window.',
    fields: (t) => ({
      valueSegment: t.field({ type: Segment, nullable: true, resolve: (row) => row.segment }),
      recencyScore: t.int({ nullable: true, resolve: (row) => row.r }),
      frequencyScore: t.int({ nullable: true, resolve: (row) => row.f }),
      monetaryScore: t.int({ nullable: true, resolve: (row) => row.m }),
      rfm: t.string({ nullable: true, description: 'The three scores together, e.g. "545".', resolve: (row) => (row.r ? `${row.r}${row.f}${row.m}` : null) }),
      windowDays: t.int({ resolve: (row) => row.windowDays }),
      windowVisits: t.int({ resolve: (row) => row.visits ?? 0 }),
      windowSpend: t.field({ type: 'Money', resolve: (row, _a, ctx) => moneyFor(ctx, row.spend ?? 0n) }),
      windowAverageTicket: t.field({
        type: 'Money',
        nullable: true,
        resolve: (row, _a, ctx) => (row.visits ? moneyFor(ctx, (row.spend! * 2n + BigInt(row.visits)) / (2n * BigInt(row.visits))) : null),
      }),
      lastVisitAt: t.field({ type: 'DateTime', nullable: true, description: 'Last completed visit, ever.', resolve: (row) => row.lastVisitAt }),
      atChurnRisk: t.boolean({
        description: 'The last completed visit was churnDays or more ago (false for a customer who never came).',
        resolve: (row) => row.lastVisitAt !== null && row.lastVisitAt.getTime() <= Date.now() - row.churnDays * 86_400_000,
      }),
    }),
  });

  builder.prismaObjectField('Customer', 'insights', (t) =>
    t.field({
      type: CustomerInsights,
      nullable: true,
      description: 'Value segment and RFM scores (null for callers without insights:read). Loaded for a whole page at once.',
      select: { id: true },
      resolve: (customer, _args, ctx) => {
        if (!can(ctx.principal, CAPABILITIES.read)) return null;
        const principal = requirePrincipal(ctx);
        return loader(ctx, 'insights:customer', () =>
          new DataLoader<string, InsightsRow>(async (ids) => {
            const at = new Date();
            const rows = await ctx.db.$queryRaw<InsightsRow[]>`
              WITH ${scoredCtes(principal.orgId, at, defaults)}
              SELECT c.id AS "customerId", s.visits, s.spend, s.last_at AS "lastAt", s.segment, s.r, s.f, s.m,
                     f.last_visit_at AS "lastVisitAt", cfg.churn AS "churnDays", cfg.window_days AS "windowDays"
              FROM unnest(${[...ids]}::uuid[]) AS c(id) CROSS JOIN cfg
              LEFT JOIN scored s ON s.customer_id = c.id
              LEFT JOIN customer_fact f ON f.customer_id = c.id`;
            const byId = new Map(rows.map((row) => [row.customerId, row]));
            return ids.map((id) => byId.get(id)!);
          }),
        ).load(customer.id);
      },
    }),
  );

  const SegmentCount = builder
    .objectRef<{ storeId: string | null; segment: ValueSegment; customers: number; revenue: bigint }>('ValueSegmentCount')
    .implement({
      description: 'Customers of a value segment, by home store (store null: the request\'s stores combined).',
      fields: (t) => ({
        store: t.prismaField({
          type: 'Store',
          nullable: true,
          resolve: (query, row, _a, ctx) => (row.storeId ? byId(ctx, 'store', query, orgWhere(ctx), row.storeId) : null) as never,
        }),
        segment: t.field({ type: Segment, resolve: (row) => row.segment }),
        customers: t.int({ resolve: (row) => row.customers }),
        windowRevenue: t.field({ type: 'Money', description: 'Their spend in the window.', resolve: (row, _a, ctx) => moneyFor(ctx, row.revenue) }),
      }),
    });

  builder.queryField('valueSegments', (t) =>
    t.field({
      type: [SegmentCount],
      description:
        'Customers per value segment now, per home store and for the stores combined (one statement). Store managers see ' +
        'their stores\' customers; HQ the chain (the combined row also holds customers without a home store).',
      args: { storeIds: t.arg.globalIDList({ required: false }) },
      resolve: (_root, args, ctx) =>
        asQuery(async () => {
          const principal = requireCapability(ctx, CAPABILITIES.read);
          const stores = storesInScope(principal, args.storeIds?.map((id) => id.id));
          if (stores?.length === 0) return [];
          const rows = await ctx.db.$queryRaw<{ storeId: string | null; segment: ValueSegment; customers: number; revenue: bigint; total: boolean }[]>`
            WITH ${scoredCtes(principal.orgId, new Date(), defaults)}
            SELECT c.home_store_id AS "storeId", s.segment, count(*)::int AS customers, sum(s.spend)::bigint AS revenue,
                   GROUPING(c.home_store_id) = 1 AS total
            FROM scored s JOIN customer c ON c.id = s.customer_id
            WHERE c.org_id = ${principal.orgId}::uuid AND (${stores}::uuid[] IS NULL OR c.home_store_id = ANY(${stores}::uuid[]))
            GROUP BY GROUPING SETS ((c.home_store_id, s.segment), (s.segment))
            ORDER BY GROUPING(c.home_store_id), c.home_store_id, s.segment`;
          // Per-store rows of customers without a home store are only part of the combined row.
          return rows.filter((row) => row.total || row.storeId !== null).map((row) => ({ ...row, storeId: row.total ? null : row.storeId }));
        }),
    }),
  );
}
