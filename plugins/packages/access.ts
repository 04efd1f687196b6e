import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { can, storeScope } from '../../core/auth/policy.ts';
import type { Principal } from '../../core/auth/principal.ts';
import type { Prisma } from '../../core/db/generated/client.ts';
import { loader, requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { DomainError, forbidden } from '../../core/graphql/errors.ts';
import { customerWhere, visitWhere } from '../../core/graph/access.ts';

/**
 * Which of this plugin's rows a caller may see. Every read goes through one of these; row-level security checks the
 * organization again underneath — and, for a partner clinic, the partnership and the customer's consent, which
 * only the database can see. A row outside these filters answers exactly like a row that does not exist.
 */
const NOTHING = { in: [] as string[] };

export const CAPABILITIES = {
  'packages:sell': ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK'],
  'packages:consume': ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN', 'FRONT_DESK'],
  // Freeze, unfreeze, extend.
  'packages:manage': ['OWNER', 'STORE_MANAGER'],
  'packages:refund': ['OWNER', 'STORE_MANAGER'],
  // Package and follow-up templates.
  'packages:catalog': ['OWNER'],
  'packages:metrics': ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER'],
  'treatmentPlans:read': ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN'],
  'treatmentPlans:write': ['OWNER', 'STORE_MANAGER', 'CONSULTANT'],
  // Scheduling and recording the outcome of the steps at the caller's own place (salon or clinic).
  'treatmentPlans:outcome': ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN'],
  'followUps:write': ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN', 'FRONT_DESK'],
  'contraindications:acknowledge': ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN'],
  'partnerships:manage': ['OWNER'],
} as const;

function storeFilter(principal: Principal): { in: string[] } | undefined {
  const stores = storeScope(principal);
  return stores ? { in: stores } : undefined;
}

/** Templates are the organization's catalogue; a customer sees the active ones. */
export function templateWhere(ctx: Context): Prisma.PackageTemplateWhereInput {
  const principal = requirePrincipal(ctx);
  return principal.kind === 'CUSTOMER' ? { orgId: principal.orgId, active: true } : { orgId: principal.orgId };
}

/** Customer packages are usable at every store of the chain, so staff who read customers read them all. */
export function packageWhere(ctx: Context): Prisma.CustomerPackageWhereInput {
  const principal = requirePrincipal(ctx);
  if (principal.kind === 'CUSTOMER') return { orgId: principal.orgId, customerId: principal.customerId };
  return can(principal, 'customers:read') ? { orgId: principal.orgId } : { id: NOTHING };
}

/**
 * Plans of the caller's chain (store-bound staff: their stores' plans; a customer: their own), or — for a partner
 * clinic — the plans naming it; the database then shows those only under an active partnership with consent.
 */
export function planWhere(ctx: Context): Prisma.TreatmentPlanWhereInput {
  const principal = requirePrincipal(ctx);
  if (principal.kind === 'CUSTOMER') return { orgId: principal.orgId, customerId: principal.customerId };
  if (!can(principal, 'treatmentPlans:read')) return { id: NOTHING };
  const stores = storeFilter(principal);
  return { OR: [{ orgId: principal.orgId, ...(stores ? { storeId: stores } : {}) }, { clinicOrgId: principal.orgId }] };
}

export function stepWhere(ctx: Context): Prisma.TreatmentPlanStepWhereInput {
  return { plan: planWhere(ctx) };
}

/** Follow-up tasks are the salon's work: staff of the task's store, and the customer themself. */
export function followUpWhere(ctx: Context): Prisma.FollowUpTaskWhereInput {
  const principal = requirePrincipal(ctx);
  if (principal.kind === 'CUSTOMER') return { orgId: principal.orgId, customerId: principal.customerId };
  if (!can(principal, 'treatmentPlans:read') && !can(principal, 'followUps:write')) return { id: NOTHING };
  const stores = storeFilter(principal);
  return { orgId: principal.orgId, ...(stores ? { storeId: stores } : {}) };
}

export function flagWhere(ctx: Context): Prisma.ContraindicationFlagWhereInput {
  const principal = requirePrincipal(ctx);
  if (principal.kind === 'CUSTOMER' || !can(principal, 'visits:read')) return { id: NOTHING };
  const stores = storeFilter(principal);
  return { orgId: principal.orgId, ...(stores ? { storeId: stores } : {}) };
}

/** Both parties' staff see their partnerships (and the other party's name); customers and API clients do not. */
export function partnershipWhere(ctx: Context): Prisma.ClinicPartnershipWhereInput {
  const principal = requirePrincipal(ctx);
  if (principal.kind !== 'STAFF') return { id: NOTHING };
  return { OR: [{ orgId: principal.orgId }, { clinicOrgId: principal.orgId }] };
}

/** Names of organizations the caller is in partnership with, read past RLS (which hides other organizations). */
export function organizationLoader(ctx: Context) {
  return loader(ctx, 'packages:organization', () =>
    new DataLoader<string, { id: string; name: string; kind: 'CHAIN' | 'CLINIC' } | null>(async (ids) => {
      const rows = await ctx.platform.dbs.system.organization.findMany({
        where: { id: { in: [...ids] } },
        select: { id: true, name: true, kind: true },
      });
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  );
}

/** Rows by id for a request, in one statement per batch; ids the caller may not see load as null. */
function rowsById<T extends { id: string }>(ctx: Context, name: string, fetch: (ids: string[]) => Promise<T[]>) {
  return loader(ctx, `packages:${name}`, () =>
    new DataLoader<string, T | null>(async (ids) => {
      const rows = await fetch([...ids]);
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  );
}

/** Services as the caller's tenant sees them: another organization's (the other party's) load as null. */
export function serviceLoader(ctx: Context) {
  return rowsById(ctx, 'service', (ids) => ctx.db.service.findMany({ where: { id: { in: ids }, orgId: requirePrincipal(ctx).orgId } }));
}

export function storeLoader(ctx: Context) {
  return rowsById(ctx, 'store', (ids) => ctx.db.store.findMany({ where: { id: { in: ids }, orgId: requirePrincipal(ctx).orgId } }));
}

export function visitLoader(ctx: Context) {
  return rowsById(ctx, 'visit', (ids) => ctx.db.visit.findMany({ where: { AND: [{ id: { in: ids } }, visitWhere(ctx)] } }));
}

export function customerLoader(ctx: Context) {
  return rowsById(ctx, 'customer', (ids) => ctx.db.customer.findMany({ where: { AND: [{ id: { in: ids } }, customerWhere(ctx)] } }));
}

export async function orgKind(ctx: Context, orgId = requirePrincipal(ctx).orgId): Promise<'CHAIN' | 'CLINIC' | null> {
  return (await ctx.platform.orgSettings(orgId).catch(() => null))?.kind ?? null;
}

/** Chain-only operations (packages, plans, follow-ups) refuse a clinic's staff. */
export async function requireChain(ctx: Context): Promise<void> {
  if ((await orgKind(ctx)) !== 'CHAIN') throw forbidden('Only a chain can do this');
}

/** A query has no userErrors: a refusal travels as a GraphQL error with its code. */
export async function asQueryError<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof DomainError) {
      throw new GraphQLError(error.message, { extensions: { code: error.userErrors[0]?.code ?? 'BAD_REQUEST' } });
    }
    throw error;
  }
}
