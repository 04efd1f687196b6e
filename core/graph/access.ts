import type { Prisma } from '../db/generated/client.ts';
import { can, storeScope } from '../auth/policy.ts';
import type { Principal } from '../auth/principal.ts';
import { forbidden, notFound } from '../graphql/errors.ts';
import { requirePrincipal, type Context } from '../graphql/context.ts';

/**
 * Which rows of each core model a caller may see. Every read (lists, node(id:), relations loaded on their
 * own) goes through one of these, and row-level security checks the organization again underneath.
 * A row outside these filters is reported exactly like a row that does not exist.
 */
const NOTHING = { in: [] as string[] };

export function customerWhere(ctx: Context): Prisma.CustomerWhereInput {
  const principal = requirePrincipal(ctx);
  // Under AND, not as a top-level `id`: callers write `{ id: wanted, ...customerWhere(ctx) }`, and a spread `id`
  // would replace the one asked for — a customer asking for another customer would get themself back (and pass
  // visibility checks made that way, e.g. before subscribing to that other customer's events).
  if (principal.kind === 'CUSTOMER') return { orgId: principal.orgId, AND: [{ id: principal.customerId }] };
  // Customers are shared by all stores of an organization, so store-bound staff can serve any of them.
  return can(principal, 'customers:read') ? { orgId: principal.orgId } : { id: NOTHING };
}

export function visitWhere(ctx: Context): Prisma.VisitWhereInput {
  const principal = requirePrincipal(ctx);
  if (principal.kind === 'CUSTOMER') return { orgId: principal.orgId, customerId: principal.customerId };
  if (!can(principal, 'visits:read')) return { id: NOTHING };
  const stores = storeScope(principal);
  return stores ? { orgId: principal.orgId, storeId: { in: stores } } : { orgId: principal.orgId };
}

/** Stores, staff names and the catalogue are reference data every principal of the organization may read. */
export function orgWhere(ctx: Context): { orgId: string } {
  return { orgId: requirePrincipal(ctx).orgId };
}

export function membershipWhere(ctx: Context): Prisma.MembershipWhereInput {
  return { customer: customerWhere(ctx) };
}

export function requireCapability(ctx: Context, capability: string): Principal {
  const principal = requirePrincipal(ctx);
  if (!can(principal, capability)) throw forbidden(`Requires the ${capability} permission`);
  return principal;
}

/** Writes at a store need the store to be one of the caller's (org-wide roles have them all). */
export function assertStoreInScope(principal: Principal, storeId: string, field: string[]): void {
  const stores = storeScope(principal);
  if (stores && !stores.includes(storeId)) throw notFound(field, 'Store');
}
