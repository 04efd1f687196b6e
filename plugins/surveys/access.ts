import DataLoader from 'dataloader';
import { can, storeScope } from '../../core/auth/policy.ts';
import type { Prisma } from '../../core/db/generated/client.ts';
import { loader, requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { notFound } from '../../core/graphql/errors.ts';

/**
 * Who sees which survey and complaint rows. A customer sees their own; staff (and API clients) with the
 * capability see those of their stores (org-wide roles: all). Anything else is reported as missing.
 */
const NOTHING = { in: [] as string[] };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The uuid of a global id of the expected type; anything else names nothing (a NotFoundError at `field`). */
export function idOf(globalId: { typename: string; id: string }, typename: string, field: string[], what: string): string {
  if (globalId.typename !== typename || !UUID.test(globalId.id)) throw notFound(field, what);
  return globalId.id.toLowerCase();
}

function scoped(ctx: Context, capability: string) {
  const principal = requirePrincipal(ctx);
  if (principal.kind === 'CUSTOMER') return { orgId: principal.orgId, customerId: principal.customerId };
  if (!can(principal, capability)) return { id: NOTHING };
  const stores = storeScope(principal);
  return stores ? { orgId: principal.orgId, storeId: { in: stores } } : { orgId: principal.orgId };
}

export const invitationWhere = (ctx: Context): Prisma.SurveyInvitationWhereInput => scoped(ctx, 'surveys:read');
export const responseWhere = (ctx: Context): Prisma.SurveyResponseWhereInput => scoped(ctx, 'surveys:read');
export const complaintWhere = (ctx: Context): Prisma.ComplaintWhereInput => scoped(ctx, 'complaints:read');

/** Templates are for staff who read or manage surveys; customers see the questions through their invitations. */
export function templateWhere(ctx: Context): Prisma.SurveyTemplateWhereInput {
  const principal = requirePrincipal(ctx);
  return can(principal, 'surveys:read') || can(principal, 'surveys:manage') ? { orgId: principal.orgId } : { id: NOTHING };
}

/** A staff caller's stores include this one (org-wide roles include every store). */
export function storeInScope(ctx: Context, storeId: string): boolean {
  const stores = storeScope(requirePrincipal(ctx));
  return !stores || stores.includes(storeId);
}

type CoreModel = 'customer' | 'store' | 'visit' | 'staff' | 'service';

/**
 * A core row referenced by id (no Prisma relation crosses into core), loaded for the whole page at once with the
 * caller's visibility filter: one statement per field and query shape, whatever the page size.
 */
export function loadCoreRow(ctx: Context, model: CoreModel, query: object, id: string | null, where: object): Promise<unknown> {
  if (!id) return Promise.resolve(null);
  const key = `surveys:${model}:${JSON.stringify(query)}:${JSON.stringify(where)}`;
  return loader(ctx, key, () =>
    new DataLoader<string, unknown>(async (ids) => {
      const delegate = ctx.db[model] as unknown as { findMany(args: object): Promise<{ id: string }[]> };
      const select = (query as { select?: object }).select;
      const shape = select ? { ...query, select: { ...select, id: true } } : query;
      const rows = await delegate.findMany({ ...shape, where: { AND: [{ id: { in: [...ids] } }, where] } });
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((rowId) => byId.get(rowId) ?? null);
    }),
  ).load(id);
}
