import { filter, pipe, map } from 'graphql-yoga';
import type { Builder } from '../graphql/builder.ts';
import { requirePrincipal, type Context } from '../graphql/context.ts';
import type { DomainEvent } from '../events/outbox.ts';
import { can } from '../auth/policy.ts';
import { assertStoreInScope, customerWhere, orgWhere, visitWhere } from './access.ts';
import { GraphQLError } from 'graphql';

/**
 * Live events of the caller's organization that match `accept`. Payloads carry ids only: each subscriber
 * loads what it may see, with its own permissions, when the event arrives.
 */
export function organizationEvents(ctx: Context, accept: (event: DomainEvent) => boolean) {
  const principal = requirePrincipal(ctx);
  return pipe(
    ctx.platform.subscribe(principal.orgId),
    filter((event: DomainEvent) => accept(event)),
    map((event: DomainEvent) => event),
  );
}

/**
 * The subscription field's resolver, which runs first each time an event is executed. One context serves every
 * event of a subscription, so its request-scoped DataLoaders are dropped here: each event is resolved against the
 * database as it is now, not as it was for the first event. (Not in `organizationEvents`: its operators run
 * ahead, while the previous event may still be executing.)
 */
function eachEventFresh(event: DomainEvent, _args: unknown, ctx: Context): DomainEvent {
  ctx.loaders.clear();
  return event;
}

function denied(error: unknown): never {
  // Errors at subscribe time surface as GraphQL errors; a missing object must look like any other.
  const message = error instanceof Error ? error.message : 'Not found';
  throw new GraphQLError(message, { extensions: { code: 'NOT_FOUND' } });
}

export function registerSubscriptions(builder: Builder) {
  const eventFields = <T extends { type: string; occurredAt: string }>(t: any) => ({
    type: t.exposeString('type', { description: 'The domain event, e.g. visit.checkedIn.' }),
    occurredAt: t.field({ type: 'DateTime', resolve: (event: T) => new Date(event.occurredAt) }),
  });

  const VisitChange = builder.objectRef<DomainEvent>('VisitChange').implement({
    description: 'A visit was booked, rescheduled, checked in, completed, cancelled or marked no-show.',
    fields: (t) => ({
      ...eventFields(t),
      visit: t.prismaField({
        type: 'Visit',
        nullable: true,
        resolve: (query, event, _args, ctx) =>
          ctx.db.visit.findFirst({ ...query, where: { id: event.aggregateId, ...visitWhere(ctx) } }),
      }),
    }),
  });

  const CustomerChange = builder.objectRef<DomainEvent>('CustomerChange').implement({
    description: 'Something happened to a customer: profile, consents, visits, membership, or a plugin\'s events (points, tiers, …).',
    fields: (t) => ({
      ...eventFields(t),
      customer: t.prismaField({
        type: 'Customer',
        nullable: true,
        resolve: (query, event, _args, ctx) =>
          ctx.db.customer.findFirst({ ...query, where: { id: String(event.payload.customerId), ...customerWhere(ctx) } }),
      }),
    }),
  });

  builder.subscriptionFields((t) => ({
    storeVisitsChanged: t.field({
      type: VisitChange,
      description: 'The front-desk board: every change to visits at a store the caller works at.',
      args: { storeId: t.arg.globalID({ required: true }) },
      subscribe: async (_root, args, ctx) => {
        const principal = requirePrincipal(ctx);
        if (!can(principal, 'visits:read')) throw new GraphQLError('Requires the visits:read permission', { extensions: { code: 'FORBIDDEN' } });
        try {
          assertStoreInScope(principal, args.storeId.id, ['storeId']);
        } catch (error) {
          denied(error);
        }
        // An unknown store, or another organization's, is refused alike instead of waiting forever for nothing.
        const store = await ctx.db.store.findFirst({ where: { id: args.storeId.id, ...orgWhere(ctx) }, select: { id: true } });
        if (!store) denied(new Error('Store not found'));
        return organizationEvents(ctx, (event) => event.aggregateType === 'Visit' && event.payload.storeId === args.storeId.id);
      },
      resolve: eachEventFresh,
    }),
    customerChanged: t.field({
      type: CustomerChange,
      description: 'Changes to one customer. A customer token may follow only itself.',
      args: { customerId: t.arg.globalID({ required: true }) },
      subscribe: async (_root, args, ctx) => {
        const customerId = args.customerId.id;
        const visible = await ctx.db.customer.findFirst({ where: { id: customerId, ...customerWhere(ctx) }, select: { id: true } });
        if (!visible) denied(new Error('Customer not found'));
        return organizationEvents(ctx, (event) => event.payload.customerId === customerId);
      },
      resolve: eachEventFresh,
    }),
  }));
}
