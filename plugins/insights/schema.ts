import { z } from 'zod';
import { principalKey } from '../../core/auth/policy.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { requireCapability } from '../../core/graph/access.ts';
import { moneyFor, toMinorUnits } from '../../core/graph/money.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import type { Context } from '../../core/graphql/context.ts';
import { fieldPath, parseInput, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import type { SchemaContext } from '../../core/plugin/contract.ts';
import { asQuery, CAPABILITIES } from './access.ts';
import { registerCare } from './care-schema.ts';
import type { InsightsConfig } from './config.ts';
import { STORE_METRICS, type StoreMetricsContribution } from './extension.ts';
import { registerMetrics } from './metrics.ts';
import { registerSegments } from './segments.ts';
import { thresholdsFor, type Thresholds } from './settings.ts';
import { registerValue } from './value.ts';

export function registerInsightsSchema(builder: Builder, { config, contributions }: SchemaContext<InsightsConfig>) {
  registerMetrics(builder, config, contributions<StoreMetricsContribution>(STORE_METRICS));
  registerValue(builder, config.defaults);
  registerSegments(builder, config.defaults);
  registerCare(builder);
  registerSettings(builder, config);
}

function registerSettings(builder: Builder, config: InsightsConfig) {
  const Settings = builder.objectRef<Thresholds>('InsightsSettings').implement({
    description: 'The organization\'s insight thresholds (the configured defaults until it sets its own).',
    fields: (t) => ({
      churnDays: t.exposeInt('churnDays', { description: 'No completed visit in this many days: at churn risk (and a win-back task).' }),
      lostDays: t.exposeInt('lostDays', { description: 'No visit in this many days: lost, no longer counted at risk.' }),
      segmentWindowDays: t.exposeInt('segmentWindowDays', { description: 'Trailing window of value segments and RFM scores.' }),
      highFrequencyVisits: t.exposeInt('highFrequencyVisits'),
      highTicket: t.field({ type: 'Money', resolve: (s, _a, ctx) => moneyFor(ctx, s.highTicketMinor) }),
      topCustomerPercent: t.exposeInt('topCustomerPercent'),
      isDefault: t.exposeBoolean('isDefault'),
    }),
  });

  builder.queryField('insightsSettings', (t) =>
    t.field({
      type: Settings,
      resolve: (_root, _args, ctx) =>
        asQuery(async () => {
          const principal = requireCapability(ctx, CAPABILITIES.read);
          return thresholdsFor(ctx.db, principal.orgId, config.defaults);
        }),
    }),
  );

  defineMutation(builder, 'updateInsightsSettings', {
    description: 'Sets the organization\'s thresholds (insights:settings); omitted fields keep their current value.',
    input: (t) => ({
      churnDays: t.int(),
      lostDays: t.int(),
      segmentWindowDays: t.int(),
      highFrequencyVisits: t.int(),
      highTicket: t.field({ type: 'Decimal' }),
      topCustomerPercent: t.int(),
    }),
    payload: (t) => ({
      settings: t.field({
        type: Settings,
        nullable: true,
        resolve: (p: { settings?: Thresholds }) => p.settings ?? null,
      }),
    }),
    resolve: async (input, ctx: Context) => {
      const principal = requireCapability(ctx, CAPABILITIES.settings);
      const { currency } = await ctx.platform.orgSettings(principal.orgId);
      const highTicketMinor = input.highTicket == null ? undefined : toMinorUnits(input.highTicket, currency);
      if (highTicketMinor === null || (highTicketMinor !== undefined && highTicketMinor < 1)) {
        throw validationError([{ field: fieldPath('highTicket'), message: `A positive amount in ${currency}` }]);
      }
      const changes = parseInput(
        z.object({
          churnDays: z.number().int().min(7).max(730).nullish(),
          lostDays: z.number().int().min(8).max(3650).nullish(),
          segmentWindowDays: z.number().int().min(30).max(1095).nullish(),
          highFrequencyVisits: z.number().int().min(1).max(1000).nullish(),
          topCustomerPercent: z.number().int().min(1).max(99).nullish(),
        }),
        input,
      );
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        // One change at a time per organization: each reads what the previous one wrote.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('insights_settings:' || ${principal.orgId}))`;
        const current = await thresholdsFor(tx, principal.orgId, config.defaults);
        const next = {
          churnDays: changes.churnDays ?? current.churnDays,
          lostDays: changes.lostDays ?? current.lostDays,
          segmentWindowDays: changes.segmentWindowDays ?? current.segmentWindowDays,
          highFrequencyVisits: changes.highFrequencyVisits ?? current.highFrequencyVisits,
          highTicketMinor: highTicketMinor ?? current.highTicketMinor,
          topCustomerPercent: changes.topCustomerPercent ?? current.topCustomerPercent,
        };
        if (next.lostDays <= next.churnDays) {
          throw validationError([{ field: fieldPath(changes.lostDays != null ? 'lostDays' : 'churnDays'), message: 'lostDays must be greater than churnDays' }]);
        }
        const data = { ...next, highTicketMinor: BigInt(next.highTicketMinor), updatedAt: new Date(), updatedBy: principalKey(principal) };
        await tx.insightsSettings.upsert({ where: { orgId: principal.orgId }, create: { orgId: principal.orgId, ...data }, update: data });
        await emit({ type: 'insights.settingsChanged', aggregateType: 'Organization', aggregateId: principal.orgId, payload: { ...next } });
        return { settings: { ...next, isDefault: false } };
      });
    },
  });
}
