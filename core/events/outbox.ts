import { GraphQLError } from 'graphql';
import type { Db, Tx } from '../db/clients.ts';
import { Prisma } from '../db/generated/client.ts';
import type { Platform } from '../platform.ts';

/** What a change announces; recorded in the change's own transaction (transactional outbox). */
export interface DomainEventInput {
  /** `aggregate.pastTense`, e.g. `visit.completed`. */
  type: string;
  aggregateType: string;
  aggregateId: string;
  /** Events sharing a stream key are handled in order; use the customer id for customer-facing streams. */
  streamKey?: string | null;
  payload: Record<string, unknown>;
}

/** An event as handlers and subscribers see it. */
export interface DomainEvent extends DomainEventInput {
  id: string;
  orgId: string;
  actor: string;
  occurredAt: string;
}

export type Emit = (event: DomainEventInput) => Promise<DomainEvent>;

export async function recordEvent(tx: Tx, orgId: string, actor: string, input: DomainEventInput): Promise<DomainEvent> {
  const row = await tx.domainEvent.create({
    data: {
      orgId,
      actor,
      type: input.type,
      aggregateType: input.aggregateType,
      aggregateId: input.aggregateId,
      streamKey: input.streamKey ?? null,
      payload: input.payload as object,
    },
    select: { id: true, occurredAt: true },
  });
  return { ...input, id: row.id.toString(), orgId, actor, occurredAt: row.occurredAt.toISOString() };
}

export interface DomainEventRow {
  id: bigint;
  orgId: string;
  type: string;
  aggregateType: string;
  aggregateId: string;
  streamKey: string | null;
  payload: unknown;
  actor: string;
  occurredAt: Date;
}

/** domain_event's columns as a `DomainEventRow`, for raw SQL that reads or returns events. */
export const DOMAIN_EVENT_COLUMNS = Prisma.raw(
  'id, org_id AS "orgId", type, aggregate_type AS "aggregateType", aggregate_id AS "aggregateId", ' +
    'stream_key AS "streamKey", payload, actor, occurred_at AS "occurredAt"',
);

export function toDomainEvent(row: DomainEventRow): DomainEvent {
  return {
    id: row.id.toString(),
    orgId: row.orgId,
    type: row.type,
    aggregateType: row.aggregateType,
    aggregateId: row.aggregateId,
    streamKey: row.streamKey,
    payload: row.payload as Record<string, unknown>,
    actor: row.actor,
    occurredAt: row.occurredAt.toISOString(),
  };
}

/**
 * Runs `work` in one transaction; events it emits are written in that transaction and, once it commits,
 * published to live subscribers (durable handling goes through the job the outbox trigger enqueued).
 */
export async function inTransaction<T>(
  platform: Platform,
  db: Db,
  orgId: string,
  actor: string,
  work: (tx: Tx, emit: Emit) => Promise<T>,
): Promise<T> {
  const emitted: DomainEvent[] = [];
  let result: T;
  try {
    result = await db.$transaction(
      (tx) => work(tx, async (input) => {
        const event = await recordEvent(tx, orgId, actor, input);
        emitted.push(event);
        return event;
      }),
      { timeout: 15_000, maxWait: 10_000 },
    );
  } catch (error) {
    // No connection within maxWait: nothing was done, so the caller may safely retry (with the same key).
    const code = (error as { code?: string }).code;
    if (code === 'P2024' || (code === 'P2028' && /unable to start a transaction/i.test((error as Error).message))) {
      throw new GraphQLError('The service is busy; nothing was changed. Retry shortly.', {
        extensions: { code: 'SERVICE_UNAVAILABLE', http: { status: 503, headers: { 'retry-after': '1' } } },
      });
    }
    throw error;
  }
  for (const event of emitted) platform.publish(event);
  return result;
}
