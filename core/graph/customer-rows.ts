import DataLoader from 'dataloader';
import { Prisma } from '../db/generated/client.ts';
import { loader, type Context } from '../graphql/context.ts';

/**
 * A row a plugin keeps per customer (a points account, a member's tier state), as one JSON value computed by a
 * scalar subquery of the customer `c.id`. What a request asks of every source in the same tick comes back in one
 * statement for all the customers asked about, so a storefront's balance and tier cost one statement, not one per
 * plugin. The core runs the statement; it does not know which plugins add sources.
 */
export interface CustomerRowSource<T> {
  /** Unique among sources, e.g. `points.account`. */
  name: string;
  /** Returns json or null for the customer `c.id` (uuid), confined to the caller's organization. */
  subquery(ctx: Context): Prisma.Sql;
  /** From the JSON value to the row (e.g. timestamps back to Dates). */
  parse(value: Record<string, unknown>): T;
}

interface Key {
  source: CustomerRowSource<unknown>;
  customerId: string;
}

export function loadCustomerRow<T>(ctx: Context, source: CustomerRowSource<T>, customerId: string): Promise<T | null> {
  return customerRows(ctx).load({ source, customerId }) as Promise<T | null>;
}

function customerRows(ctx: Context) {
  return loader(ctx, 'core:customerRows', () =>
    new DataLoader<Key, unknown, string>(
      async (keys) => {
        const sources = [...new Map(keys.map((key) => [key.source.name, key.source])).values()];
        const column = new Map(sources.map((source, index) => [source.name, `s${index}`]));
        const customerIds = [...new Set(keys.map((key) => key.customerId))];
        const columns = sources.map((source) => Prisma.sql`(${source.subquery(ctx)}) AS ${Prisma.raw(`"${column.get(source.name)}"`)}`);
        const rows = await ctx.db.$queryRaw<Record<string, unknown>[]>`
          SELECT c.id::text AS "customerId", ${Prisma.join(columns)} FROM unnest(${customerIds}::uuid[]) AS c(id)`;
        const byCustomer = new Map(rows.map((row) => [row.customerId as string, row]));
        return keys.map((key) => {
          const value = byCustomer.get(key.customerId)?.[column.get(key.source.name)!];
          return value == null ? null : key.source.parse(value as Record<string, unknown>);
        });
      },
      { cacheKeyFn: (key) => `${key.source.name}:${key.customerId}` },
    ),
  );
}
