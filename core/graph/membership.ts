import { principalKey } from '../auth/policy.ts';
import type { Builder } from '../graphql/builder.ts';
import type { Context } from '../graphql/context.ts';
import { conflict, fieldPath, notFound, validationError } from '../graphql/errors.ts';
import { defineMutation } from '../graphql/mutation.ts';
import { inTransaction } from '../events/outbox.ts';
import { assertStoreInScope, customerWhere, membershipWhere, orgWhere, requireCapability } from './access.ts';
import { localDate } from './local-time.ts';

const MEMBER_NUMBER_PREFIX = 'M';

export function formatMemberNumber(sequence: bigint | number): string {
  return `${MEMBER_NUMBER_PREFIX}${sequence.toString().padStart(8, '0')}`;
}

export function registerMembership(builder: Builder) {
  const MembershipStatus = builder.enumType('MembershipStatus', { values: ['ACTIVE', 'SUSPENDED', 'CANCELLED'] as const });

  builder.prismaNode('Membership', {
    description: 'Loyalty membership (会员). Plugins add tiers and points to it.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [membershipWhere(ctx)] }),
    fields: (t) => ({
      memberNumber: t.exposeString('memberNumber', { description: 'Unique in the organization, e.g. M00000123.' }),
      joinedOn: t.expose('joinedOn', { type: 'Date', description: 'In the home store\'s time zone.' }),
      status: t.expose('status', { type: MembershipStatus }),
      homeStore: t.relation('homeStore'),
      customer: t.relation('customer'),
    }),
  });

  defineMutation(builder, 'enrollMembership', {
    description: 'Enrols a customer as a member; the member number is the organization\'s next one. A customer has one membership.',
    input: (t) => ({
      customerId: t.globalID({ required: true }),
      homeStoreId: t.globalID({ description: 'Defaults to the customer\'s home store.' }),
    }),
    payload: (t) => ({
      membership: t.prismaField({
        type: 'Membership',
        nullable: true,
        resolve: (query: object, payload: { membershipId?: string }, _args: unknown, ctx: Context) =>
          payload.membershipId ? ctx.db.membership.findFirst({ ...query, where: { id: payload.membershipId, ...membershipWhere(ctx) } }) : null,
      }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'memberships:write');
      const customerId = input.customerId.id;
      const membershipId = await inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const customer = await tx.customer.findFirst({
          where: { id: customerId, ...customerWhere(ctx) },
          select: { id: true, homeStoreId: true, membership: { select: { id: true } } },
        });
        if (!customer) throw notFound(fieldPath('customerId'), 'Customer');
        if (customer.membership) throw conflict('ALREADY_MEMBER', 'The customer is already a member', fieldPath('customerId'));
        const homeStoreId = input.homeStoreId?.id ?? customer.homeStoreId;
        if (!homeStoreId) throw validationError([{ field: fieldPath('homeStoreId'), message: 'The customer has no home store: give one' }]);
        assertStoreInScope(principal, homeStoreId, fieldPath('homeStoreId'));
        const store = await tx.store.findFirst({ where: { id: homeStoreId, ...orgWhere(ctx) }, select: { id: true, timezone: true } });
        if (!store) throw notFound(fieldPath('homeStoreId'), 'Store');
        const [counter] = await tx.$queryRaw<{ value: bigint }[]>`
          INSERT INTO org_counter (org_id, name, value) VALUES (${principal.orgId}::uuid, 'member_number', 1)
          ON CONFLICT (org_id, name) DO UPDATE SET value = org_counter.value + 1
          RETURNING value`;
        let membership;
        try {
          membership = await tx.membership.create({
            data: {
              orgId: principal.orgId,
              customerId,
              homeStoreId,
              memberNumber: formatMemberNumber(counter.value),
              joinedOn: new Date(`${localDate(store.timezone)}T00:00:00Z`),
            },
            select: { id: true, memberNumber: true },
          });
        } catch (error) {
          // Two enrolments of one customer at once: the loser sees the unique constraint.
          if ((error as { code?: string }).code === 'P2002') throw conflict('ALREADY_MEMBER', 'The customer is already a member', fieldPath('customerId'));
          throw error;
        }
        await emit({
          type: 'membership.enrolled',
          aggregateType: 'Membership',
          aggregateId: membership.id,
          streamKey: customerId,
          payload: { membershipId: membership.id, customerId, homeStoreId, memberNumber: membership.memberNumber },
        });
        return membership.id;
      });
      return { membershipId };
    },
  });
}
