import SchemaBuilder, { PothosValidationError } from '@pothos/core';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin, { decodeGlobalID } from '@pothos/plugin-relay';
import ComplexityPlugin from '@pothos/plugin-complexity';
import type PrismaTypes from '../db/generated/pothos-types.ts';
import { getDatamodel } from '../db/generated/pothos-types.ts';
import type { Context } from './context.ts';
import { registerScalars } from './scalars.ts';
import type { MoneyValue } from '../graph/money.ts';
import type { UserErrorValue } from './errors.ts';

export type Scalars = {
  DateTime: { Input: Date; Output: Date | string };
  Date: { Input: string; Output: Date | string };
  Decimal: { Input: string; Output: string };
};

export interface BuilderTypes {
  Context: Context;
  Objects: { Money: MoneyValue };
  Interfaces: { UserError: UserErrorValue };
  PrismaTypes: PrismaTypes;
  Scalars: Scalars;
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const COMPLEXITY_LIMITS = { complexity: 25_000, depth: 12, breadth: 300 };

/** The largest page a connection serves (Shopify's limit: a chain's HQ pulls 200-customer pages); larger `first` is clamped. */
export const MAX_PAGE_SIZE = 250;

/** A connection's cost: its fields count once per item of the page it asks for. */
export function pageCost(args: { first?: number | null; last?: number | null }, defaultSize = 20, maxSize = MAX_PAGE_SIZE) {
  return { field: 1, multiplier: Math.min(args.first ?? args.last ?? defaultSize, maxSize) };
}

/**
 * A fresh builder per schema: the set of plugins decides what is registered on it, so tests can build
 * schemas with different plugins in one process.
 */
export function createBuilder() {
  const builder = new SchemaBuilder<BuilderTypes>({
    plugins: [PrismaPlugin, RelayPlugin, ComplexityPlugin],
    // Non-null unless a field says otherwise, so typed clients need not guard what is always there.
    defaultFieldNullability: false,
    prisma: {
      client: (ctx) => ctx.db,
      dmmf: getDatamodel(),
      filterConnectionTotalCount: true,
      defaultConnectionSize: 20,
      maxConnectionSize: MAX_PAGE_SIZE,
      onUnusedQuery: null,
    },
    relay: {
      clientMutationId: 'omit',
      cursorType: 'String',
      edgesFieldOptions: { nullable: false },
      nodeFieldOptions: { nullable: false },
      // Every node is keyed by a uuid: anything else is refused as malformed before it reaches a query.
      decodeGlobalID: (globalID) => {
        const decoded = decodeGlobalID(globalID);
        if (!UUID.test(decoded.id)) throw new PothosValidationError(`Invalid global ID: ${globalID}`);
        return decoded;
      },
    },
    complexity: {
      defaultComplexity: 1,
      // Lists here are short (stores, line items); connections multiply by their page size instead.
      defaultListMultiplier: 1,
      limit: COMPLEXITY_LIMITS,
    },
  });
  // node(id:) / nodes(ids:) of a missing object — or of one the caller may not see, which findUnique filters
  // out — answers null, never an internal error: every node type, including plugins', loads nullably.
  const prismaNode = builder.prismaNode.bind(builder);
  builder.prismaNode = ((type: never, options: { nullable?: boolean }) =>
    prismaNode(type, { nullable: true, ...options } as never)) as unknown as typeof builder.prismaNode;
  builder.queryType({});
  builder.mutationType({});
  builder.subscriptionType({});
  registerScalars(builder);
  return builder;
}

export type Builder = ReturnType<typeof createBuilder>;
