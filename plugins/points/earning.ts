import type { Tx } from '../../core/db/clients.ts';
import type { DomainEvent } from '../../core/events/outbox.ts';
import { localParts } from '../../core/graph/local-time.ts';
import { currencyExponent } from '../../core/graph/money.ts';
import type { HandlerContext } from '../../core/plugin/contract.ts';
import { isDomainError } from './errors.ts';
import type { PointsConfig } from './config.ts';
import { credit, debit, ensureAccount, type LedgerWrite } from './ledger.ts';

/**
 * Extension point offered to other plugins: a multiplier on points earned from spending (tiers offer
 * their members' multiplier through it). Points never imports the plugins that contribute.
 */
export const EARN_MULTIPLIER = 'points.earnMultiplier';
export type EarnMultiplier = (args: { tx: Tx; orgId: string; customerId: string; at: Date }) => Promise<number>;

const ACTOR = 'plugin:points';

interface CompletedLine {
  kind: 'SERVICE' | 'PRODUCT';
  category: string | null;
  amountMinor: number;
}

/** Points for a completed visit's lines: per currency unit, by category, times member-day and contributed multipliers. */
export async function pointsForVisit(
  config: PointsConfig,
  ctx: Pick<HandlerContext<PointsConfig>, 'platform' | 'tx'>,
  visit: { orgId: string; customerId: string; completedAt: Date; timezone: string; currency: string; lines: CompletedLine[] },
): Promise<{ points: number; reason: string }> {
  const { earning } = config;
  const unit = 10 ** currencyExponent(visit.currency);
  const base = visit.lines.reduce((sum, line) => {
    const key = (line.kind === 'PRODUCT' ? 'PRODUCT' : line.category) as keyof typeof earning.categoryRates;
    return sum + (line.amountMinor / unit) * (earning.categoryRates[key] ?? earning.pointsPerCurrencyUnit);
  }, 0);
  const factors: string[] = [];
  let multiplier = 1;
  if (earning.memberDay && localParts(visit.timezone, visit.completedAt).day === earning.memberDay.dayOfMonth) {
    multiplier *= earning.memberDay.multiplier;
    factors.push(`member day ×${earning.memberDay.multiplier}`);
  }
  for (const contribute of ctx.platform.contributions<EarnMultiplier>(EARN_MULTIPLIER)) {
    const factor = await contribute({ tx: ctx.tx, orgId: visit.orgId, customerId: visit.customerId, at: visit.completedAt });
    if (factor !== 1) {
      multiplier *= factor;
      factors.push(`×${factor}`);
    }
  }
  // Rounded to 6 places before flooring so that 680 × 1.1 is 748, not 747.999….
  const points = Math.floor(Math.round(base * multiplier * 1e6) / 1e6);
  return { points, reason: ['visit spend', ...factors].join(', ') };
}

export async function awardVisit(event: DomainEvent, ctx: HandlerContext<PointsConfig>) {
  const payload = event.payload as {
    visitId: string;
    customerId: string;
    storeId: string;
    completedAt: string;
    currency: string;
    lines: CompletedLine[];
  };
  const account = await ensureAccount(ctx.tx, event.orgId, payload.customerId);
  if (!account) return;
  const store = await ctx.tx.store.findUniqueOrThrow({ where: { id: payload.storeId }, select: { timezone: true } });
  const completedAt = new Date(payload.completedAt);
  const { points, reason } = await pointsForVisit(ctx.config, ctx, {
    orgId: event.orgId,
    customerId: payload.customerId,
    completedAt,
    timezone: store.timezone,
    currency: payload.currency,
    lines: payload.lines,
  });
  if (points <= 0) return;
  await credit(writer(ctx), account, 'EARN', points, {
    source: 'VISIT',
    sourceRef: payload.visitId,
    dedupeKey: `visit:${payload.visitId}:earn`,
    storeId: payload.storeId,
    reason,
    lifetimeMonths: ctx.config.lotLifetimeMonths,
    timezone: store.timezone,
    earnedAt: completedAt,
  });
}

/**
 * A refunded visit takes back exactly what it earned, from its own lot first. Points the customer already
 * spent cannot be taken back below zero: the reversal is then partial, and its reason says so.
 */
export async function reverseVisit(event: DomainEvent, ctx: HandlerContext<PointsConfig>) {
  const { visitId, customerId, storeId } = event.payload as { visitId: string; customerId: string; storeId: string };
  const earned = await ctx.tx.pointsEntry.findUnique({
    where: { orgId_dedupeKey: { orgId: event.orgId, dedupeKey: `visit:${visitId}:earn` } },
    select: { id: true, amount: true },
  });
  if (!earned) return;
  const account = await ensureAccount(ctx.tx, event.orgId, customerId);
  const lot = await ctx.tx.pointsLot.findUnique({ where: { earnEntryId: earned.id }, select: { id: true } });
  const reverse = (amount: number, reason: string) =>
    debit(writer(ctx), account!, 'REVERSAL', amount, {
      source: 'VISIT',
      sourceRef: visitId,
      dedupeKey: `visit:${visitId}:reversal`,
      storeId,
      reason,
      reversesEntryId: earned.id,
      preferLotId: lot?.id ?? null,
    }, 'points.reversed');
  try {
    await reverse(earned.amount, 'Visit refunded');
  } catch (error) {
    const shortfall = isDomainError(error, 'INSUFFICIENT_POINTS');
    if (!shortfall) throw error;
    const available = shortfall.available as number;
    if (available > 0) await reverse(available, `Visit refunded; ${earned.amount - available} points had already been spent`);
  }
}

export async function welcomeMember(event: DomainEvent, ctx: HandlerContext<PointsConfig>) {
  const { customerId, membershipId, homeStoreId } = event.payload as { customerId: string; membershipId: string; homeStoreId: string };
  const account = await ensureAccount(ctx.tx, event.orgId, customerId);
  if (!account || ctx.config.earning.welcomePoints <= 0) return;
  const store = await ctx.tx.store.findUniqueOrThrow({ where: { id: homeStoreId }, select: { timezone: true } });
  await credit(writer(ctx), account, 'EARN', ctx.config.earning.welcomePoints, {
    source: 'WELCOME',
    sourceRef: membershipId,
    dedupeKey: `welcome:${membershipId}`,
    storeId: homeStoreId,
    reason: 'Welcome points',
    lifetimeMonths: ctx.config.lotLifetimeMonths,
    timezone: store.timezone,
  });
}

/** Points for an interaction another module reports (a survey answered, a care diary shared, …), once per source object. */
export function awardInteraction(source: string, defaultPoints: number, eventType: string) {
  return async (event: DomainEvent, ctx: HandlerContext<PointsConfig>) => {
    const configured = ctx.config.earning.interactions[eventType as keyof PointsConfig['earning']['interactions']];
    const points = configured ?? defaultPoints;
    const customerId = event.payload.customerId as string | undefined;
    if (!customerId || points <= 0) return;
    const account = await ensureAccount(ctx.tx, event.orgId, customerId);
    if (!account) return;
    const { timezone } = await ctx.platform.orgSettings(event.orgId);
    await credit(writer(ctx), account, 'EARN', points, {
      source,
      sourceRef: event.aggregateId,
      dedupeKey: `${eventType}:${event.aggregateId}`,
      storeId: (event.payload.storeId as string | undefined) ?? null,
      reason: eventType,
      lifetimeMonths: ctx.config.lotLifetimeMonths,
      timezone,
    });
  };
}

function writer(ctx: HandlerContext<PointsConfig>): LedgerWrite {
  return { tx: ctx.tx, emit: ctx.emit, actor: ACTOR };
}
