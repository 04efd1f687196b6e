import { encodeGlobalID } from '@pothos/plugin-relay';
import type { Builder } from '../graphql/builder.ts';
import { can, isOrgWide } from '../auth/policy.ts';
import { requirePrincipal } from '../graphql/context.ts';
import { orgWhere } from './access.ts';

export function registerOrganization(builder: Builder) {
  builder.prismaNode('Organization', {
    description: 'A chain (brand) or a clinic: the tenancy boundary. Nothing crosses it except by explicit partnership.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [{ id: requirePrincipal(ctx).orgId }] }),
    fields: (t) => ({
      name: t.exposeString('name'),
      kind: t.expose('kind', { type: builder.enumType('OrganizationKind', { values: ['CHAIN', 'CLINIC'] as const }) }),
      timezone: t.exposeString('timezone', { description: 'IANA time zone of head office, e.g. Asia/Shanghai.' }),
      currencyCode: t.exposeString('currency'),
      stores: t.relation('stores', { query: { orderBy: { code: 'asc' } } }),
    }),
  });

  builder.prismaNode('Store', {
    description: 'A store of the organization, with its own time zone (member days and "today" are local to it).',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [orgWhere(ctx)] }),
    fields: (t) => ({
      code: t.exposeString('code'),
      name: t.exposeString('name'),
      timezone: t.exposeString('timezone'),
      address: t.exposeString('address', { nullable: true }),
      phone: t.exposeString('phone', { nullable: true }),
    }),
  });

  const StaffRole = builder.enumType('StaffRole', {
    values: ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN', 'FRONT_DESK'] as const,
  });

  builder.prismaNode('Staff', {
    description: 'A staff member. Customers see only the name and role (to choose a beautician).',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [orgWhere(ctx)] }),
    fields: (t) => ({
      name: t.exposeString('name'),
      role: t.expose('role', { type: StaffRole }),
      active: t.exposeBoolean('active'),
      phone: t.string({
        nullable: true,
        resolve: (staff, _args, ctx) => (can(ctx.principal, 'staff:read') ? staff.phone : null),
      }),
      stores: t.field({
        type: ['Store' as never],
        select: { stores: { select: { store: true } } },
        resolve: (staff) => staff.stores.map((link) => link.store) as never,
      }),
    }),
  });

  builder.queryFields((t) => ({
    stores: t.prismaField({
      type: ['Store'],
      description: 'Stores of the caller\'s organization, by code.',
      resolve: (query, _root, _args, ctx) =>
        ctx.db.store.findMany({ ...query, where: orgWhere(ctx), orderBy: { code: 'asc' } }),
    }),
    staffMembers: t.prismaField({
      type: ['Staff'],
      description: 'Active staff; store-bound callers see the staff of their stores, and may narrow to one store.',
      args: { storeId: t.arg.globalID({ required: false }) },
      resolve: (query, _root, args, ctx) => {
        const principal = requirePrincipal(ctx);
        const storeIds =
          principal.kind === 'CUSTOMER' || isOrgWide(principal) ? null : principal.storeIds;
        const wanted = args.storeId ? [args.storeId.id] : storeIds;
        const inScope = wanted && storeIds ? wanted.filter((id) => storeIds.includes(id)) : wanted;
        return ctx.db.staff.findMany({
          ...query,
          where: {
            ...orgWhere(ctx),
            active: true,
            ...(inScope ? { stores: { some: { storeId: { in: inScope } } } } : {}),
          },
          orderBy: [{ role: 'asc' }, { name: 'asc' }],
        });
      },
    }),
  }));

  const PrincipalKind = builder.enumType('PrincipalKind', { values: ['STAFF', 'CUSTOMER', 'API_CLIENT'] as const });

  builder.queryField('viewer', (t) =>
    t.field({
      type: builder.objectRef<{ kind: 'STAFF' | 'CUSTOMER' | 'API_CLIENT'; orgId: string; staffId?: string; customerId?: string; scopes: string[]; storeIds: string[] }>('Viewer').implement({
        description: 'Who the token belongs to.',
        fields: (v) => ({
          kind: v.expose('kind', { type: PrincipalKind }),
          organization: v.prismaField({
            type: 'Organization',
            resolve: (query, viewer, _args, ctx) => ctx.db.organization.findUniqueOrThrow({ ...query, where: { id: viewer.orgId } }),
          }),
          staff: v.prismaField({
            type: 'Staff',
            nullable: true,
            resolve: (query, viewer, _args, ctx) =>
              viewer.staffId ? ctx.db.staff.findFirst({ ...query, where: { id: viewer.staffId, ...orgWhere(ctx) } }) : null,
          }),
          customer: v.prismaField({
            type: 'Customer',
            nullable: true,
            description: 'For a customer token: the customer themself.',
            resolve: (query, viewer, _args, ctx) =>
              viewer.customerId ? ctx.db.customer.findFirst({ ...query, where: { id: viewer.customerId, orgId: viewer.orgId } }) : null,
          }),
          scopes: v.exposeStringList('scopes', { description: 'API client scopes (empty for people).' }),
          storeIds: v.idList({
            description: 'Global ids of the stores the caller is bound to (empty when it sees the whole organization).',
            resolve: (viewer) => viewer.storeIds.map((id) => encodeGlobalID('Store', id)),
          }),
        }),
      }),
      resolve: (_root, _args, ctx) => {
        const principal = requirePrincipal(ctx);
        return {
          kind: principal.kind,
          orgId: principal.orgId,
          staffId: principal.kind === 'STAFF' ? principal.staffId : undefined,
          customerId: principal.kind === 'CUSTOMER' ? principal.customerId : undefined,
          scopes: principal.kind === 'API_CLIENT' ? principal.scopes : [],
          storeIds: principal.kind === 'CUSTOMER' || isOrgWide(principal) ? [] : principal.storeIds,
        };
      },
    }),
  );
}
