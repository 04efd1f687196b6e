import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { can, storeScope } from '../../core/auth/policy.ts';
import type { Principal } from '../../core/auth/principal.ts';
import type { Prisma } from '../../core/db/generated/client.ts';
import { loader, requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { DomainError } from '../../core/graphql/errors.ts';

export const CAPABILITIES = {
  /** Metrics, value segments, saved segments and their customers (store managers: their stores). */
  read: 'insights:read',
  /** Define, change and archive saved segments. */
  segments: 'insights:segments',
  /** The organization's thresholds. */
  settings: 'insights:settings',
  /** See care tasks (store-bound staff: their stores' tasks and the ones assigned to them). */
  careRead: 'care:read',
  /** Complete, snooze and dismiss care tasks. */
  careWork: 'care:work',
} as const;

/**
 * A query's refusal travels as a GraphQL error with its code (a query has no userErrors; a plain Error would be
 * masked as "Unexpected error." and tell the caller nothing).
 */
export async function asQuery<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof DomainError) {
      const first = error.userErrors[0];
      throw new GraphQLError(error.message, { extensions: { code: first?.code ?? 'BAD_REQUEST', ...(first?.field ? { field: first.field } : {}) } });
    }
    throw error;
  }
}

/**
 * The stores a request covers: those asked for (all when none) within the caller's scope. Ids outside the scope, of
 * another organization or of nothing at all are simply not there (SQL filters by organization too), so each looks
 * like a random id. Null means every store of the organization.
 */
export function storesInScope(principal: Principal, wanted: string[] | null | undefined): string[] | null {
  const scope = storeScope(principal);
  const asked = wanted?.map((id) => id.toLowerCase()) ?? null;
  if (!scope) return asked;
  return (asked ?? scope).filter((id) => scope.includes(id));
}

/**
 * Care tasks a caller may see: org-wide roles every task of the organization; store-bound staff the tasks of their
 * stores and those assigned to them; API clients their stores'; customers none.
 */
export function careTaskWhere(ctx: Context): Prisma.InsightsCareTaskWhereInput {
  const principal = requirePrincipal(ctx);
  if (!can(principal, CAPABILITIES.careRead)) return { id: { in: [] } };
  const stores = storeScope(principal);
  if (!stores) return { orgId: principal.orgId };
  const mine = principal.kind === 'STAFF' ? [{ assigneeId: principal.staffId }] : [];
  return { orgId: principal.orgId, OR: [{ storeId: { in: stores } }, ...mine] };
}

/**
 * Rows of a core model by id, for fields on plugin objects (CareTask.customer, …): one findMany per request and
 * selection, however many objects ask (no N+1). `where` confines what the caller may see.
 */
export function byId<T>(ctx: Context, model: 'customer' | 'store' | 'staff' | 'visit' | 'service', query: object, where: object, id: string): Promise<T | null> {
  const key = `insights:${model}:${JSON.stringify([query, where])}`;
  return loader(ctx, key, () =>
    new DataLoader<string, unknown>(async (ids) => {
      const delegate = ctx.db[model] as unknown as { findMany(args: object): Promise<{ id: string }[]> };
      // Rows are matched to ids by id, so a selection must include it.
      const selection = 'select' in query ? { ...query, select: { ...(query.select as object), id: true } } : query;
      const rows = await delegate.findMany({ ...selection, where: { AND: [{ id: { in: [...ids] } }, where] } });
      const byKey = new Map(rows.map((row) => [row.id, row]));
      return ids.map((rowId) => byKey.get(rowId) ?? null);
    }),
  ).load(id) as Promise<T | null>;
}
