import { storeScope } from '../../core/auth/policy.ts';
import { requireCapability } from '../../core/graph/access.ts';
import { moneyFor } from '../../core/graph/money.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import type { Context } from '../../core/graphql/context.ts';
import { validationError } from '../../core/graphql/errors.ts';
import { asQueryError } from './access.ts';

interface MetricsRow {
  storeId: string;
  packagesSold: number;
  sessionsSold: number;
  soldValueMinor: bigint;
  sessionsConsumed: number;
  consumedValueMinor: bigint;
  sessionsRefunded: number;
  refundedValueMinor: bigint;
  sessionsOutstanding: number;
  liabilityMinor: bigint;
  sessionsExpired: number;
  expiredValueMinor: bigint;
}

/**
 * Package KPIs per store, computed in PostgreSQL. Flows (sold, consumed, refunded) count in [from, to], dates local to
 * each store: sales at the store that sold, consumptions where the session was used. Outstanding is as of now, at the
 * store that sold: sessions still owed on active or frozen packages and what they are worth (the liability);
 * sessions left on expired packages are no longer owed and are reported apart.
 */
export function registerPackageMetrics(builder: Builder) {
  const money = (field: keyof MetricsRow, description: string) => (t: any) =>
    t.field({ type: 'Money', description, resolve: (row: MetricsRow, _a: unknown, ctx: Context) => moneyFor(ctx, row[field] as bigint) });

  const Row = builder.objectRef<MetricsRow>('PackageMetrics').implement({
    description: 'Package sessions sold, consumed, refunded and still owed at one store.',
    fields: (t) => ({
      store: t.prismaField({
        type: 'Store',
        resolve: (query, row, _args, ctx) => ctx.db.store.findFirstOrThrow({ ...query, where: { id: row.storeId } }),
      }),
      packagesSold: t.exposeInt('packagesSold'),
      sessionsSold: t.exposeInt('sessionsSold'),
      soldValue: money('soldValueMinor', 'Paid for the packages sold.')(t),
      sessionsConsumed: t.exposeInt('sessionsConsumed'),
      consumedValue: money('consumedValueMinor', 'The value of the sessions used (revenue earned from packages).')(t),
      sessionsRefunded: t.exposeInt('sessionsRefunded'),
      refundedValue: money('refundedValueMinor', 'Paid back for unused sessions.')(t),
      sessionsOutstanding: t.exposeInt('sessionsOutstanding', { description: 'Still owed now, on active or frozen packages sold here.' }),
      liability: money('liabilityMinor', 'What the outstanding sessions are worth: the liability still owed to customers.')(t),
      sessionsExpired: t.exposeInt('sessionsExpired', { description: 'Left unused on packages that expired (no longer owed).' }),
      expiredValue: money('expiredValueMinor', 'What the expired sessions were worth.')(t),
    }),
  });

  builder.queryField('packageMetrics', (t) =>
    t.field({
      type: [Row],
      description:
        'Package KPIs per store (packages:metrics; store managers see their stores): sessions sold, consumed and refunded between ' +
        'from and to (inclusive, local dates), and sessions outstanding now with the liability in money.',
      args: {
        from: t.arg({ type: 'Date', required: true }),
        to: t.arg({ type: 'Date', required: true }),
        storeIds: t.arg.globalIDList({ required: false }),
      },
      resolve: (_root, args, ctx) =>
        asQueryError(async () => {
          const principal = requireCapability(ctx, 'packages:metrics');
          if (args.to < args.from) throw validationError([{ field: ['to'], message: 'to is before from' }]);
          const scope = storeScope(principal);
          const wanted = args.storeIds?.map((id) => id.id) ?? null;
          const stores = scope ? (wanted ?? scope).filter((id) => scope.includes(id)) : wanted;
          return ctx.db.$queryRaw<MetricsRow[]>`
            WITH stores AS (
              SELECT id, code, timezone FROM store
               WHERE org_id = ${principal.orgId}::uuid AND (${stores}::uuid[] IS NULL OR id = ANY(${stores}::uuid[]))
            ),
            sold AS (
              SELECT p.store_id, count(*)::int AS packages, sum(p.price_minor)::bigint AS value,
                     sum((SELECT sum(l.sessions_total) FROM customer_package_service l WHERE l.customer_package_id = p.id))::int AS sessions
                FROM customer_package p JOIN stores s ON s.id = p.store_id
               WHERE p.purchased_at >= ${args.from}::date - 1 AND p.purchased_at < ${args.to}::date + 2
                 AND (p.purchased_at AT TIME ZONE s.timezone)::date BETWEEN ${args.from}::date AND ${args.to}::date
               GROUP BY p.store_id
            ),
            used AS (
              SELECT e.store_id,
                     coalesce(sum(e.sessions) FILTER (WHERE e.kind = 'CONSUME'), 0)::int AS consumed,
                     coalesce(sum(e.value_minor) FILTER (WHERE e.kind = 'CONSUME'), 0)::bigint AS consumed_value,
                     coalesce(sum(e.sessions) FILTER (WHERE e.kind = 'REFUND'), 0)::int AS refunded,
                     coalesce(sum(e.value_minor) FILTER (WHERE e.kind = 'REFUND'), 0)::bigint AS refunded_value
                FROM package_session_entry e JOIN stores s ON s.id = e.store_id
               WHERE e.org_id = ${principal.orgId}::uuid
                 AND e.created_at >= ${args.from}::date - 1 AND e.created_at < ${args.to}::date + 2
                 AND (e.created_at AT TIME ZONE s.timezone)::date BETWEEN ${args.from}::date AND ${args.to}::date
               GROUP BY e.store_id
            ),
            owed AS (
              SELECT p.store_id,
                     (p.status = 'FROZEN' OR p.expires_at > now()) AS owed,
                     sum(l.sessions_remaining)::int AS sessions,
                     sum(l.value_minor - (l.value_minor::bigint * (l.sessions_total - l.sessions_remaining)) / l.sessions_total)::bigint AS value
                FROM customer_package p
                JOIN customer_package_service l ON l.customer_package_id = p.id
                JOIN stores s ON s.id = p.store_id
               WHERE p.status IN ('ACTIVE', 'FROZEN') AND l.sessions_remaining > 0
               GROUP BY 1, 2
            )
            SELECT s.id AS "storeId",
                   coalesce(sold.packages, 0) AS "packagesSold",
                   coalesce(sold.sessions, 0) AS "sessionsSold",
                   coalesce(sold.value, 0)::bigint AS "soldValueMinor",
                   coalesce(used.consumed, 0) AS "sessionsConsumed",
                   coalesce(used.consumed_value, 0)::bigint AS "consumedValueMinor",
                   coalesce(used.refunded, 0) AS "sessionsRefunded",
                   coalesce(used.refunded_value, 0)::bigint AS "refundedValueMinor",
                   coalesce(owed.sessions, 0) AS "sessionsOutstanding",
                   coalesce(owed.value, 0)::bigint AS "liabilityMinor",
                   coalesce(lapsed.sessions, 0) AS "sessionsExpired",
                   coalesce(lapsed.value, 0)::bigint AS "expiredValueMinor"
              FROM stores s
              LEFT JOIN sold ON sold.store_id = s.id
              LEFT JOIN used ON used.store_id = s.id
              LEFT JOIN owed ON owed.store_id = s.id AND owed.owed
              LEFT JOIN owed lapsed ON lapsed.store_id = s.id AND NOT lapsed.owed
             ORDER BY s.code`;
        }),
    }),
  );
}
