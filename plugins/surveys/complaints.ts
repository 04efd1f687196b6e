import type { Tx } from '../../core/db/clients.ts';
import { inTransaction, type Emit } from '../../core/events/outbox.ts';
import type { Platform } from '../../core/platform.ts';
import type { ComplaintCategory, ComplaintSeverity, SurveysConfig } from './config.ts';
import { ACTOR } from './invitations.ts';

export const COMPLAINT_STATUSES = ['OPEN', 'ACKNOWLEDGED', 'IN_PROGRESS', 'RESOLVED', 'CLOSED'] as const;
export type ComplaintStatus = (typeof COMPLAINT_STATUSES)[number];

/** The workflow, one step at a time. Reopening (RESOLVED/CLOSED → IN_PROGRESS) is its own action. */
export const NEXT_STATUS: Record<ComplaintStatus, ComplaintStatus | null> = {
  OPEN: 'ACKNOWLEDGED',
  ACKNOWLEDGED: 'IN_PROGRESS',
  IN_PROGRESS: 'RESOLVED',
  RESOLVED: 'CLOSED',
  CLOSED: null,
};

const EVENT_FOR_STATUS: Record<ComplaintStatus, string> = {
  OPEN: 'complaint.opened',
  ACKNOWLEDGED: 'complaint.acknowledged',
  IN_PROGRESS: 'complaint.workStarted',
  RESOLVED: 'complaint.resolved',
  CLOSED: 'complaint.closed',
};
export const statusEvent = (status: ComplaintStatus) => EVENT_FOR_STATUS[status];

export interface ComplaintRow {
  id: string;
  orgId: string;
  number: number;
  customerId: string | null;
  storeId: string;
  status: ComplaintStatus;
  severity: ComplaintSeverity;
  openedAt: Date;
  firstResponseDueAt: Date;
  resolutionDueAt: Date;
  firstRespondedAt: Date | null;
  resolvedAt: Date | null;
  firstResponseBreachedAt: Date | null;
  resolutionBreachedAt: Date | null;
  assigneeId: string | null;
}

/** Locks a complaint for the rest of the transaction (changes to one case happen one at a time). */
export async function lockComplaint(tx: Tx, orgId: string, complaintId: string): Promise<ComplaintRow | null> {
  const [row] = await tx.$queryRaw<ComplaintRow[]>`
    SELECT id, org_id AS "orgId", number, customer_id AS "customerId", store_id AS "storeId", status::text AS status,
           severity::text AS severity, opened_at AS "openedAt", first_response_due_at AS "firstResponseDueAt",
           resolution_due_at AS "resolutionDueAt", first_responded_at AS "firstRespondedAt", resolved_at AS "resolvedAt",
           first_response_breached_at AS "firstResponseBreachedAt", resolution_breached_at AS "resolutionBreachedAt",
           assignee_id AS "assigneeId"
    FROM complaint WHERE id = ${complaintId}::uuid AND org_id = ${orgId}::uuid FOR UPDATE`;
  return row ?? null;
}

/** SLA due times of a complaint opened at `openedAt` at a store, in the store's business hours (SQL: complaint_business_due). */
export async function slaDueTimes(tx: Tx, config: SurveysConfig, storeTimezone: string, severity: ComplaintSeverity, openedAt: Date) {
  const target = config.sla[severity];
  const { opensAt, closesAt, days } = config.businessHours;
  const [due] = await tx.$queryRaw<{ firstResponse: Date; resolution: Date }[]>`
    SELECT complaint_business_due(${openedAt}::timestamptz, ${Math.round(target.firstResponseHours * 60)}::int, ${storeTimezone}, ${opensAt}::int, ${closesAt}::int, ${days}::int[]) AS "firstResponse",
           complaint_business_due(${openedAt}::timestamptz, ${Math.round(target.resolutionHours * 60)}::int, ${storeTimezone}, ${opensAt}::int, ${closesAt}::int, ${days}::int[]) AS resolution`;
  return due!;
}

/** The store's manager (the longest-serving active one), who is assigned new cases; null when the store has none. */
export async function storeManager(tx: Tx, storeId: string): Promise<string | null> {
  const manager = await tx.staff.findFirst({
    where: { role: 'STORE_MANAGER', active: true, stores: { some: { storeId } } },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    select: { id: true },
  });
  return manager?.id ?? null;
}

export interface NewComplaint {
  orgId: string;
  customerId: string | null;
  storeId: string;
  visitId: string | null;
  staffId: string | null;
  category: ComplaintCategory;
  severity: ComplaintSeverity;
  source: 'CUSTOMER' | 'STAFF' | 'SURVEY';
  subject: string;
  description: string | null;
  surveyResponseId: string | null;
  actor: string;
  openedAt?: Date;
}

/**
 * What complaint events carry: ids only (subscribers load what they may see). Internal events (an SLA breach, an
 * internal note) leave the customer id out, so nothing that follows a customer's events relays them to the customer.
 */
export function complaintEventPayload(
  c: { id: string; customerId: string | null; storeId: string; status: string; number: number },
  extra: Record<string, unknown> = {},
  internal = false,
) {
  return { complaintId: c.id, number: c.number, ...(internal ? { internal: true } : { customerId: c.customerId }), storeId: c.storeId, status: c.status, ...extra };
}

/**
 * Opens a case: numbered per organization, assigned to the store's manager, with its SLA due times computed in
 * the store's business hours, an OPENED entry on its timeline and a complaint.opened event.
 */
export async function openComplaint(tx: Tx, emit: Emit, config: SurveysConfig, input: NewComplaint): Promise<{ id: string; number: number }> {
  const store = await tx.store.findFirstOrThrow({ where: { id: input.storeId, orgId: input.orgId }, select: { timezone: true } });
  const openedAt = input.openedAt ?? new Date();
  const due = await slaDueTimes(tx, config, store.timezone, input.severity, openedAt);
  const assigneeId = await storeManager(tx, input.storeId);
  const [counter] = await tx.$queryRaw<{ value: bigint }[]>`
    INSERT INTO org_counter (org_id, name, value) VALUES (${input.orgId}::uuid, 'complaint_number', 1)
    ON CONFLICT (org_id, name) DO UPDATE SET value = org_counter.value + 1
    RETURNING value`;
  const number = Number(counter!.value);
  const complaint = await tx.complaint.create({
    data: {
      orgId: input.orgId,
      number,
      customerId: input.customerId,
      storeId: input.storeId,
      visitId: input.visitId,
      staffId: input.staffId,
      category: input.category,
      severity: input.severity,
      source: input.source,
      subject: input.subject,
      description: input.description,
      surveyResponseId: input.surveyResponseId,
      assigneeId,
      openedAt,
      firstResponseDueAt: due.firstResponse,
      resolutionDueAt: due.resolution,
      createdBy: input.actor,
      updatedAt: openedAt,
    },
    select: { id: true },
  });
  await tx.complaintEntry.create({
    data: {
      orgId: input.orgId,
      complaintId: complaint.id,
      kind: 'OPENED',
      toStatus: 'OPEN',
      assigneeId,
      note: input.subject,
      actor: input.actor,
      occurredAt: openedAt,
      data: { category: input.category, severity: input.severity, source: input.source, firstResponseDueAt: due.firstResponse, resolutionDueAt: due.resolution },
    },
  });
  await emit({
    type: 'complaint.opened',
    aggregateType: 'Complaint',
    aggregateId: complaint.id,
    streamKey: input.customerId,
    payload: complaintEventPayload(
      { id: complaint.id, customerId: input.customerId, storeId: input.storeId, status: 'OPEN', number },
      { category: input.category, severity: input.severity, source: input.source, assigneeId, surveyResponseId: input.surveyResponseId },
    ),
  });
  return { id: complaint.id, number };
}

export type SlaKind = 'FIRST_RESPONSE' | 'RESOLUTION';

/**
 * Records a breach once (the flag column is set only while empty) with a timeline entry and a
 * complaint.slaBreached event. Returns whether this call recorded it.
 */
export async function recordBreach(tx: Tx, emit: Emit, complaint: ComplaintRow, kind: SlaKind, at: Date, actor = ACTOR): Promise<boolean> {
  const column = kind === 'FIRST_RESPONSE' ? 'firstResponseBreachedAt' : 'resolutionBreachedAt';
  const dueAt = kind === 'FIRST_RESPONSE' ? complaint.firstResponseDueAt : complaint.resolutionDueAt;
  const flagged = await tx.complaint.updateMany({ where: { id: complaint.id, [column]: null }, data: { [column]: at } });
  if (flagged.count === 0) return false;
  await tx.complaintEntry.create({
    data: { orgId: complaint.orgId, complaintId: complaint.id, kind: 'SLA_BREACHED', actor, internal: true, occurredAt: at, data: { sla: kind, dueAt } },
  });
  await emit({
    type: 'complaint.slaBreached',
    aggregateType: 'Complaint',
    aggregateId: complaint.id,
    streamKey: complaint.customerId,
    payload: complaintEventPayload(complaint, { sla: kind, dueAt: dueAt.toISOString(), severity: complaint.severity, assigneeId: complaint.assigneeId }, true),
  });
  return true;
}

/**
 * The SLA watch: a target is breached once its due time has passed (a response at the due time itself is on
 * time) without the case having been responded to / resolved. Candidates are found across organizations, then
 * each case is re-checked and flagged under its own organization, in its own transaction.
 */
export async function flagSlaBreaches(platform: Platform, now = new Date()): Promise<number> {
  const due = await platform.dbs.system.$queryRaw<{ id: string; orgId: string }[]>`
    SELECT id, org_id AS "orgId" FROM complaint
    WHERE (first_responded_at IS NULL AND first_response_breached_at IS NULL AND first_response_due_at < ${now})
       OR (resolved_at IS NULL AND resolution_breached_at IS NULL AND resolution_due_at < ${now})
    ORDER BY org_id, id`;
  let flagged = 0;
  for (const { id, orgId } of due) {
    flagged += await inTransaction(platform, platform.dbs.forOrg(orgId), orgId, ACTOR, async (tx, emit) => {
      const complaint = await lockComplaint(tx, orgId, id);
      if (!complaint) return 0;
      let count = 0;
      if (!complaint.firstRespondedAt && !complaint.firstResponseBreachedAt && complaint.firstResponseDueAt < now) {
        count += Number(await recordBreach(tx, emit, complaint, 'FIRST_RESPONSE', now));
      }
      if (!complaint.resolvedAt && !complaint.resolutionBreachedAt && complaint.resolutionDueAt < now) {
        count += Number(await recordBreach(tx, emit, complaint, 'RESOLUTION', now));
      }
      return count;
    });
  }
  return flagged;
}
