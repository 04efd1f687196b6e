import { isUuid } from '../../core/auth/principal.ts';
import type { DomainEvent } from '../../core/events/outbox.ts';
import type { HandlerContext } from '../../core/plugin/contract.ts';
import type { TiersConfig } from './config.ts';
import { ACTOR, evaluateMember, type TierWrite } from './evaluate.ts';

export interface CompletionInput {
  taskId: string;
  occurredAt: Date;
  source: 'EVENT' | 'STAFF';
  sourceRef: string | null;
  /** One completion per key, however often it is announced. */
  dedupeKey: string;
  recordedBy: string;
  note?: string | null;
}

/** Records a completed task once per dedupe key; `created` is false when it was already recorded. */
export async function recordCompletion(write: Pick<TierWrite, 'tx'>, orgId: string, customerId: string, input: CompletionInput) {
  const created = await write.tx.tierTaskCompletion.createMany({
    data: [{ orgId, customerId, ...input, note: input.note ?? null }],
    skipDuplicates: true,
  });
  const row = await write.tx.tierTaskCompletion.findUniqueOrThrow({
    where: { orgId_dedupeKey: { orgId, dedupeKey: input.dedupeKey } },
    select: { id: true },
  });
  return { completionId: row.id, created: created.count === 1 };
}

/**
 * A handler for an event another module emits (a survey answered, a care diary shared, a referral that converted,
 * …): when the organization maps that event type to one of its active tasks, the customer named by the task's
 * `customer_field` in the payload completes it — once per (event type, aggregate, customer) — and a member is
 * upgraded at once if that makes them qualify.
 */
export function taskEventHandler(eventType: string) {
  return async (event: DomainEvent, ctx: HandlerContext<TiersConfig>) => {
    const task = await ctx.tx.tierTask.findFirst({ where: { orgId: event.orgId, eventType, active: true } });
    if (!task) return;
    const customerId = event.payload[task.customerField];
    if (!isUuid(customerId)) return;
    // Only a customer of the event's organization (row-level security confines this read too).
    const customer = await ctx.tx.customer.findFirst({ where: { id: customerId, orgId: event.orgId }, select: { id: true } });
    if (!customer) return;
    const claimed = typeof event.payload.occurredAt === 'string' ? new Date(event.payload.occurredAt) : null;
    const occurredAt = claimed && !Number.isNaN(claimed.getTime()) && claimed <= new Date() ? claimed : new Date(event.occurredAt);
    const { created } = await recordCompletion(ctx, event.orgId, customerId, {
      taskId: task.id,
      occurredAt,
      source: 'EVENT',
      sourceRef: `${event.type}:${event.aggregateId}`,
      dedupeKey: `${event.type}:${event.aggregateId}:${customerId}`,
      recordedBy: event.actor,
    });
    if (!created) return;
    await evaluateMember(writer(ctx), event.orgId, customerId, { trigger: { type: event.type, ref: event.id, at: occurredAt } });
  };
}

/** visit.completed, visit.refunded, membership.enrolled: re-evaluate the member (upgrades are immediate). */
export async function reevaluateOnEvent(event: DomainEvent, ctx: HandlerContext<TiersConfig>) {
  const customerId = event.payload.customerId;
  if (!isUuid(customerId)) return;
  const completedAt = event.type === 'visit.completed' && typeof event.payload.completedAt === 'string' ? new Date(event.payload.completedAt) : undefined;
  await evaluateMember(writer(ctx), event.orgId, customerId, {
    trigger: { type: event.type, ref: String(event.payload.visitId ?? event.payload.membershipId ?? event.id), at: completedAt },
  });
}

function writer(ctx: HandlerContext<TiersConfig>): TierWrite {
  return { tx: ctx.tx, emit: ctx.emit, actor: ACTOR, config: ctx.config, platform: ctx.platform };
}
