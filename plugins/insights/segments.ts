import { queryFromInfo } from '@pothos/plugin-prisma';
import { z } from 'zod';
import { can, principalKey } from '../../core/auth/policy.ts';
import type { Principal } from '../../core/auth/principal.ts';
import { Prisma } from '../../core/db/generated/client.ts';
import type { Tx } from '../../core/db/clients.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { orgWhere, requireCapability } from '../../core/graph/access.ts';
import { formatMinorUnits, toMinorUnits } from '../../core/graph/money.ts';
import { pageCost, MAX_PAGE_SIZE, type Builder } from '../../core/graphql/builder.ts';
import { requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { conflict, fieldPath, notFound, parseInput, pgErrorCode, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import { asQuery, byId, CAPABILITIES, storesInScope } from './access.ts';
import type { InsightsThresholds } from './config.ts';
import {
  compileRule,
  inputPath,
  ruleFromInput,
  RuleInputError,
  ruleLimits,
  ruleSchema,
  ruleStoreIds,
  type Rule,
  type RuleInput,
  usesValueSegments,
} from './rules.ts';
import { thresholdsFor } from './settings.ts';

type SegmentRow = { id: string; orgId: string; name: string; description: string | null; rules: unknown; createdBy: string; createdAt: Date; updatedAt: Date; archivedAt: Date | null };

function encodeCursor(name: string, id: string): string {
  return Buffer.from(JSON.stringify([name, id])).toString('base64url');
}

function decodeCursor(cursor: string): { name: string; id: string } | null {
  try {
    const [name, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [unknown, unknown];
    return typeof name === 'string' && typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id) ? { name, id } : null;
  } catch {
    return null;
  }
}

const thresholdsOfRequest = new WeakMap<Context, ReturnType<typeof thresholdsFor>>();

/** The organization's thresholds, read once per request. */
function requestThresholds(ctx: Context, defaults: InsightsThresholds) {
  let thresholds = thresholdsOfRequest.get(ctx);
  if (!thresholds) {
    thresholds = thresholdsFor(ctx.db, requirePrincipal(ctx).orgId, defaults);
    thresholdsOfRequest.set(ctx, thresholds);
  }
  return thresholds;
}

/**
 * The WHERE clause of a segment for a caller: the organization, the caller's stores (store-bound staff see the
 * customers whose home store is one of theirs), and the compiled rule.
 */
async function segmentWhere(ctx: Context, segment: SegmentRow, defaults: InsightsThresholds, at: Date): Promise<Prisma.Sql> {
  const principal = requirePrincipal(ctx);
  const stores = storesInScope(principal, null);
  const rules = segment.rules as Rule;
  // The thresholds are read (once per request) only when a rule needs them.
  const thresholds = usesValueSegments(rules) ? await requestThresholds(ctx, defaults) : defaults;
  const rule = compileRule(rules, { orgId: principal.orgId, at, thresholds });
  return Prisma.sql`c.org_id = ${principal.orgId}::uuid AND (${stores}::uuid[] IS NULL OR c.home_store_id = ANY(${stores}::uuid[])) AND ${rule}`;
}

/** Validates a rule from the API: shape, limits, and that named stores are the organization's. */
async function parseRules(tx: Tx, ctx: Context, principal: Principal, input: RuleInput): Promise<Rule> {
  const { currency } = await ctx.platform.orgSettings(principal.orgId);
  let raw: unknown;
  try {
    raw = ruleFromInput(input, (amount) => {
      const minor = /^\d+(\.\d+)?$/.test(amount) ? toMinorUnits(amount, currency) : null;
      return minor !== null && minor >= 0 ? minor : null;
    });
  } catch (error) {
    if (error instanceof RuleInputError) throw validationError([{ field: fieldPath('rules', ...error.path), message: error.message }]);
    throw error;
  }
  const parsed = ruleSchema.safeParse(raw);
  if (!parsed.success) {
    throw validationError(parsed.error.issues.map((issue) => ({ field: fieldPath('rules', ...inputPath(issue.path)), message: issue.message })));
  }
  const limit = ruleLimits(parsed.data);
  if (limit) throw validationError([{ field: fieldPath('rules'), message: limit }]);
  const storeIds = [...new Set(ruleStoreIds(parsed.data))];
  if (storeIds.length) {
    const found = await tx.store.count({ where: { id: { in: storeIds }, orgId: principal.orgId } });
    if (found !== storeIds.length) throw notFound(fieldPath('rules'), 'Store');
  }
  return parsed.data;
}

export function registerSegments(builder: Builder, defaults: InsightsThresholds) {
  const ValueSegment = 'ValueSegment' as never;

  // --- Rules: the same tree as input and output, one field set per node. --------------------------------------
  const SpendRuleInput = builder.inputType('SpendRuleInput', {
    description: 'Completed visits\' spend within the last withinDays days (lifetime when omitted), between min and max (inclusive).',
    fields: (t) => ({ withinDays: t.int(), min: t.field({ type: 'Decimal' }), max: t.field({ type: 'Decimal' }) }),
  });
  const VisitCountRuleInput = builder.inputType('VisitCountRuleInput', {
    description: 'Completed visits within the last withinDays days (lifetime when omitted), between min and max (inclusive).',
    fields: (t) => ({ withinDays: t.int(), min: t.int(), max: t.int() }),
  });
  const LastVisitRuleInput = builder.inputType('LastVisitRuleInput', {
    description: 'The last completed visit was at least moreThanDaysAgo days ago and/or within the last withinDays days. Never-visited customers do not match.',
    fields: (t) => ({ moreThanDaysAgo: t.int(), withinDays: t.int() }),
  });
  const TagRuleInput = builder.inputType('TagRuleInput', {
    description: 'Has all of `all`, at least one of `any`, and none of `none`.',
    fields: (t) => ({ all: t.stringList(), any: t.stringList(), none: t.stringList() }),
  });
  const SegmentRuleInput = builder.inputRef<RuleInput>('SegmentRuleInput').implement({
    description:
      'One node of a segment rule: set exactly one field. all / any combine rules, not negates one; the others are ' +
      'conditions on derived facts (spend, visits, last visit, value segment), tags and profile.',
    fields: (t) => ({
      all: t.field({ type: [SegmentRuleInput] }),
      any: t.field({ type: [SegmentRuleInput] }),
      not: t.field({ type: SegmentRuleInput }),
      spend: t.field({ type: SpendRuleInput }),
      visits: t.field({ type: VisitCountRuleInput }),
      lastVisit: t.field({ type: LastVisitRuleInput }),
      neverVisited: t.boolean(),
      tags: t.field({ type: TagRuleInput }),
      homeStoreIds: t.globalIDList(),
      birthdayMonths: t.intList(),
      member: t.boolean({ description: 'Has an active membership (true) or not (false).' }),
      valueSegments: t.field({ type: [ValueSegment] }),
      genders: t.field({ type: ['Gender' as never] }),
      sources: t.field({ type: ['CustomerSource' as never] }),
    }),
  }) as never;

  type Out = { rule: Rule; currency: string };
  const SpendRule = builder.objectRef<Out>('SpendRule').implement({
    fields: (t) => ({
      withinDays: t.int({ nullable: true, resolve: ({ rule }) => ('spend' in rule ? rule.spend.withinDays : null) }),
      min: t.field({ type: 'Decimal', nullable: true, resolve: ({ rule, currency }) => ('spend' in rule && rule.spend.min !== null ? formatMinorUnits(rule.spend.min, currency) : null) }),
      max: t.field({ type: 'Decimal', nullable: true, resolve: ({ rule, currency }) => ('spend' in rule && rule.spend.max !== null ? formatMinorUnits(rule.spend.max, currency) : null) }),
    }),
  });
  const VisitCountRule = builder.objectRef<{ withinDays: number | null; min: number | null; max: number | null }>('VisitCountRule').implement({
    fields: (t) => ({
      withinDays: t.int({ nullable: true, resolve: (r) => r.withinDays }),
      min: t.int({ nullable: true, resolve: (r) => r.min }),
      max: t.int({ nullable: true, resolve: (r) => r.max }),
    }),
  });
  const LastVisitRule = builder.objectRef<{ moreThanDaysAgo: number | null; withinDays: number | null }>('LastVisitRule').implement({
    fields: (t) => ({
      moreThanDaysAgo: t.int({ nullable: true, resolve: (r) => r.moreThanDaysAgo }),
      withinDays: t.int({ nullable: true, resolve: (r) => r.withinDays }),
    }),
  });
  const TagRule = builder.objectRef<{ all: string[]; any: string[]; none: string[] }>('TagRule').implement({
    fields: (t) => ({ all: t.exposeStringList('all'), any: t.exposeStringList('any'), none: t.exposeStringList('none') }),
  });
  const SegmentRule = builder.objectRef<Out>('SegmentRule');
  SegmentRule.implement({
    description: 'A stored segment rule node: exactly one field is set, as in SegmentRuleInput.',
    fields: (t) => {
      const child = (rule: Rule, currency: string) => ({ rule, currency });
      return {
        all: t.field({ type: [SegmentRule], nullable: true, resolve: ({ rule, currency }) => ('all' in rule ? rule.all.map((r) => child(r, currency)) : null) }),
        any: t.field({ type: [SegmentRule], nullable: true, resolve: ({ rule, currency }) => ('any' in rule ? rule.any.map((r) => child(r, currency)) : null) }),
        not: t.field({ type: SegmentRule, nullable: true, resolve: ({ rule, currency }) => ('not' in rule ? child(rule.not, currency) : null) }),
        spend: t.field({ type: SpendRule, nullable: true, resolve: (out) => ('spend' in out.rule ? out : null) }),
        visits: t.field({ type: VisitCountRule, nullable: true, resolve: ({ rule }) => ('visits' in rule ? rule.visits : null) }),
        lastVisit: t.field({ type: LastVisitRule, nullable: true, resolve: ({ rule }) => ('lastVisit' in rule ? rule.lastVisit : null) }),
        neverVisited: t.boolean({ nullable: true, resolve: ({ rule }) => ('neverVisited' in rule ? true : null) }),
        tags: t.field({ type: TagRule, nullable: true, resolve: ({ rule }) => ('tags' in rule ? rule.tags : null) }),
        homeStores: t.prismaField({
          type: ['Store'],
          nullable: true,
          resolve: async (query, { rule }, _a, ctx) =>
            ('homeStores' in rule ? Promise.all(rule.homeStores.map((id) => byId(ctx, 'store', query, orgWhere(ctx), id))).then((s) => s.filter(Boolean)) : null) as never,
        }),
        birthdayMonths: t.intList({ nullable: true, resolve: ({ rule }) => ('birthdayMonths' in rule ? rule.birthdayMonths : null) }),
        member: t.boolean({ nullable: true, resolve: ({ rule }) => ('member' in rule ? rule.member : null) }),
        valueSegments: t.field({ type: [ValueSegment], nullable: true, resolve: ({ rule }) => ('valueSegments' in rule ? (rule.valueSegments as never) : null) }),
        genders: t.field({ type: ['Gender' as never], nullable: true, resolve: ({ rule }) => ('genders' in rule ? (rule.genders as never) : null) }),
        sources: t.field({ type: ['CustomerSource' as never], nullable: true, resolve: ({ rule }) => ('sources' in rule ? (rule.sources as never) : null) }),
      };
    },
  });

  const StoreCount = builder.objectRef<{ storeId: string | null; customers: number }>('SegmentStoreCount').implement({
    description: 'Customers of a segment whose home store is this one (store null: customers without a home store).',
    fields: (t) => ({
      store: t.prismaField({
        type: 'Store',
        nullable: true,
        resolve: (query, row, _a, ctx) => (row.storeId ? byId(ctx, 'store', query, orgWhere(ctx), row.storeId) : null) as never,
      }),
      customers: t.int({ resolve: (row) => row.customers }),
    }),
  });

  const CustomerConnection = builder.connectionObject(
    { type: 'Customer' as never, name: 'SegmentCustomerConnection' },
    { name: 'SegmentCustomerEdge' },
  );

  builder.prismaNode('InsightsSegment', {
    name: 'Segment',
    description:
      'A saved customer segment: rules over derived facts and tags, evaluated when read (at that moment). Store ' +
      'managers see the segment\'s customers whose home store is one of theirs.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [segmentVisibility(ctx)] }),
    fields: (t) => ({
      name: t.exposeString('name'),
      description: t.exposeString('description', { nullable: true }),
      rules: t.field({
        type: SegmentRule,
        resolve: async (segment, _a, ctx) => ({ rule: segment.rules as Rule, currency: (await ctx.platform.orgSettings(segment.orgId)).currency }),
      }),
      rulesJson: t.string({ description: 'The stored rule as JSON (amounts in minor units).', resolve: (segment) => JSON.stringify(segment.rules) }),
      createdBy: t.exposeString('createdBy'),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
      updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
      archivedAt: t.expose('archivedAt', { type: 'DateTime', nullable: true }),
      customers: t.connection(
        {
          type: 'Customer' as never,
          description: 'Customers in the segment now, by name (keyset-paged in SQL): the same statements for any page size.',
          complexity: (args) => pageCost(args),
          resolve: async (segment, args, ctx, info) => {
            if (args.last != null || args.before != null) throw new Error('Segment.customers pages forward only: use first/after');
            const first = Math.min(Math.max(args.first ?? 20, 0), MAX_PAGE_SIZE);
            const after = args.after ? decodeCursor(args.after) : null;
            if (args.after && !after) throw new Error('Invalid cursor');
            const where = await segmentWhere(ctx, segment as SegmentRow, defaults, new Date());
            const page = await ctx.db.$queryRaw<{ id: string; name: string }[]>`
              SELECT c.id, c.name FROM customer c LEFT JOIN customer_fact f ON f.customer_id = c.id
              WHERE ${where} AND (${after?.name ?? null}::text IS NULL OR (c.name, c.id) > (${after?.name ?? null}::text, ${after?.id ?? null}::uuid))
              ORDER BY c.name, c.id LIMIT ${first + 1}`;
            const ids = page.slice(0, first).map((row) => row.id);
            const query = queryFromInfo({ context: ctx, info, path: ['edges', 'node'], typeName: 'Customer' }) as object;
            const customers = ids.length ? await ctx.db.customer.findMany({ ...query, where: { id: { in: ids } } } as Prisma.CustomerFindManyArgs) : [];
            const byKey = new Map(customers.map((c) => [c.id, c]));
            const edges = page.slice(0, first).map((row) => ({ cursor: encodeCursor(row.name, row.id), node: byKey.get(row.id)! }));
            return {
              edges,
              pageInfo: { hasNextPage: page.length > first, hasPreviousPage: after !== null, startCursor: edges[0]?.cursor ?? null, endCursor: edges.at(-1)?.cursor ?? null },
            } as never;
          },
        },
        CustomerConnection as never,
      ),
      customerCount: t.int({
        description: 'Customers in the segment now (within the caller\'s stores).',
        resolve: async (segment, _a, ctx) => {
          const where = await segmentWhere(ctx, segment as SegmentRow, defaults, new Date());
          const [row] = await ctx.db.$queryRaw<{ count: number }[]>`
            SELECT count(*)::int AS count FROM customer c LEFT JOIN customer_fact f ON f.customer_id = c.id WHERE ${where}`;
          return row!.count;
        },
      }),
      countByStore: t.field({
        type: [StoreCount],
        description: 'Customers in the segment now, per home store (one statement).',
        resolve: async (segment, _a, ctx) => {
          const where = await segmentWhere(ctx, segment as SegmentRow, defaults, new Date());
          return ctx.db.$queryRaw<{ storeId: string | null; customers: number }[]>`
            SELECT c.home_store_id AS "storeId", count(*)::int AS customers
            FROM customer c LEFT JOIN customer_fact f ON f.customer_id = c.id LEFT JOIN store s ON s.id = c.home_store_id
            WHERE ${where} GROUP BY c.home_store_id, s.code ORDER BY s.code NULLS LAST`;
        },
      }),
    }),
  });

  /** Segments are the organization's, for callers with insights:read; anyone else finds none. */
  function segmentVisibility(ctx: Context): Prisma.InsightsSegmentWhereInput {
    const principal = requirePrincipal(ctx);
    return can(principal, CAPABILITIES.read) ? { orgId: principal.orgId } : { id: { in: [] } };
  }

  builder.queryField('segments', (t) =>
    t.prismaField({
      type: ['InsightsSegment'],
      description: 'Saved segments of the organization, by name.',
      args: { includeArchived: t.arg.boolean({ required: false, defaultValue: false }) },
      resolve: (query, _root, args, ctx) =>
        asQuery(async () => {
          requireCapability(ctx, CAPABILITIES.read);
          return ctx.db.insightsSegment.findMany({
            ...query,
            where: { ...segmentVisibility(ctx), ...(args.includeArchived ? {} : { archivedAt: null }) },
            orderBy: [{ name: 'asc' }, { id: 'asc' }],
          });
        }),
    }),
  );

  const segmentPayload = (t: any) => ({
    segment: t.prismaField({
      type: 'InsightsSegment',
      nullable: true,
      resolve: (query: object, payload: { segmentId?: string }, _a: unknown, ctx: Context) =>
        payload.segmentId ? ctx.db.insightsSegment.findFirst({ ...query, where: { id: payload.segmentId, ...segmentVisibility(ctx) } }) : null,
    }),
  });

  const text = z.object({
    name: z.string().trim().min(1, 'Name is required').max(100),
    description: z.string().trim().max(1000).nullish(),
  });

  async function save(tx: Tx, write: () => Promise<{ id: string }>) {
    try {
      return await write();
    } catch (error) {
      if (pgErrorCode(error) === '23505' || (error as { code?: string }).code === 'P2002') {
        throw conflict('DUPLICATE_NAME', 'A segment with this name already exists', fieldPath('name'));
      }
      throw error;
    }
  }

  defineMutation(builder, 'createSegment', {
    description: 'Saves a segment (insights:segments). Rules are validated and stored as JSON; names are unique among live segments.',
    input: (t) => ({
      name: t.string({ required: true }),
      description: t.string(),
      rules: t.field({ type: SegmentRuleInput, required: true }),
    }),
    payload: segmentPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, CAPABILITIES.segments);
      const fields = parseInput(text, input);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const rules = await parseRules(tx, ctx, principal, input.rules as RuleInput);
        const created = await save(tx, () =>
          tx.insightsSegment.create({
            data: { orgId: principal.orgId, name: fields.name, description: fields.description ?? null, rules: rules as object, createdBy: principalKey(principal) },
            select: { id: true },
          }),
        );
        await emit({ type: 'segment.created', aggregateType: 'Segment', aggregateId: created.id, payload: { segmentId: created.id } });
        return { segmentId: created.id };
      });
    },
  });

  defineMutation(builder, 'updateSegment', {
    description: 'Renames a segment or replaces its description or rules (omitted fields stay).',
    input: (t) => ({
      segmentId: t.globalID({ required: true }),
      name: t.string(),
      description: t.string(),
      rules: t.field({ type: SegmentRuleInput }),
    }),
    payload: segmentPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, CAPABILITIES.segments);
      const fields = parseInput(text.partial(), { name: input.name ?? undefined, description: input.description });
      if (input.name === null) throw validationError([{ field: fieldPath('name'), message: 'Name is required' }]);
      const segmentId = input.segmentId.id;
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const existing = await tx.insightsSegment.findFirst({ where: { id: segmentId, orgId: principal.orgId, archivedAt: null }, select: { id: true } });
        if (!existing) throw notFound(fieldPath('segmentId'), 'Segment');
        const rules = input.rules ? await parseRules(tx, ctx, principal, input.rules as RuleInput) : undefined;
        await save(tx, () =>
          tx.insightsSegment.update({
            where: { id: segmentId },
            data: {
              ...(fields.name !== undefined ? { name: fields.name } : {}),
              ...(input.description !== undefined ? { description: fields.description ?? null } : {}),
              ...(rules ? { rules: rules as object } : {}),
              updatedAt: new Date(),
            },
            select: { id: true },
          }),
        );
        await emit({ type: 'segment.updated', aggregateType: 'Segment', aggregateId: segmentId, payload: { segmentId } });
        return { segmentId };
      });
    },
  });

  defineMutation(builder, 'archiveSegment', {
    description: 'Archives a segment: it leaves the list (its name is free again) but stays readable by id.',
    input: (t) => ({ segmentId: t.globalID({ required: true }) }),
    payload: segmentPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, CAPABILITIES.segments);
      const segmentId = input.segmentId.id;
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const archived = await tx.insightsSegment.updateMany({
          where: { id: segmentId, orgId: principal.orgId, archivedAt: null },
          data: { archivedAt: new Date(), updatedAt: new Date() },
        });
        if (archived.count === 0) throw notFound(fieldPath('segmentId'), 'Segment');
        await emit({ type: 'segment.archived', aggregateType: 'Segment', aggregateId: segmentId, payload: { segmentId } });
        return { segmentId };
      });
    },
  });
}
