import { createHash, randomBytes } from 'node:crypto';
import type { Tx } from '../../core/db/clients.ts';
import { inTransaction, type DomainEvent, type Emit } from '../../core/events/outbox.ts';
import { localParts } from '../../core/graph/local-time.ts';
import type { Platform } from '../../core/platform.ts';
import type { HandlerContext } from '../../core/plugin/contract.ts';
import type { SurveysConfig } from './config.ts';

export const ACTOR = 'plugin:surveys';
const HOUR_MS = 3_600_000;

/** The newest version of the organization's active template for a purpose, or null when there is none. */
export async function activeVersion(tx: Tx, orgId: string, purpose: 'POST_VISIT' | 'PERIODIC'): Promise<{ id: string } | null> {
  const [version] = await tx.$queryRaw<{ id: string }[]>`
    SELECT v.id FROM survey_template t JOIN survey_template_version v ON v.template_id = t.id
    WHERE t.org_id = ${orgId}::uuid AND t.purpose = ${purpose}::survey_purpose AND t.active
    ORDER BY v.version DESC LIMIT 1`;
  return version ?? null;
}

async function announceInvitation(emit: Emit, invitation: { id: string; customerId: string; storeId: string; visitId: string | null; kind: string; availableAt: Date; expiresAt: Date }) {
  await emit({
    type: 'survey.invited',
    aggregateType: 'SurveyInvitation',
    aggregateId: invitation.id,
    streamKey: invitation.customerId,
    payload: {
      invitationId: invitation.id,
      customerId: invitation.customerId,
      storeId: invitation.storeId,
      visitId: invitation.visitId,
      kind: invitation.kind,
      availableAt: invitation.availableAt.toISOString(),
      expiresAt: invitation.expiresAt.toISOString(),
    },
  });
}

/**
 * visit.completed → one invitation to the active post-visit survey, opening `delayMinutes` after completion.
 * Exactly one per visit: the handler's claim stops a redelivered event, and the unique visit_id stops a second
 * event announcing the same visit (ON CONFLICT DO NOTHING: the later one inserts nothing and announces nothing).
 */
export async function inviteAfterVisit(event: DomainEvent, ctx: HandlerContext<SurveysConfig>) {
  const { postVisit } = ctx.config;
  if (!postVisit.enabled) return;
  const visitId = event.payload.visitId as string;
  const visit = await ctx.tx.visit.findFirst({
    where: { id: visitId, orgId: event.orgId, status: 'COMPLETED' },
    select: { id: true, customerId: true, storeId: true, completedAt: true },
  });
  if (!visit?.completedAt) return;
  const version = await activeVersion(ctx.tx, event.orgId, 'POST_VISIT');
  if (!version) return;
  const availableAt = new Date(visit.completedAt.getTime() + postVisit.delayMinutes * 60_000);
  const expiresAt = new Date(availableAt.getTime() + postVisit.validForHours * HOUR_MS);
  const [created] = await ctx.tx.$queryRaw<{ id: string }[]>`
    INSERT INTO survey_invitation (org_id, customer_id, store_id, visit_id, kind, template_version_id, available_at, expires_at)
    VALUES (${event.orgId}::uuid, ${visit.customerId}::uuid, ${visit.storeId}::uuid, ${visit.id}::uuid, 'POST_VISIT',
            ${version.id}::uuid, ${availableAt}, ${expiresAt})
    ON CONFLICT (visit_id) DO NOTHING
    RETURNING id`;
  if (!created) return;
  await announceInvitation(ctx.emit, { id: created.id, customerId: visit.customerId, storeId: visit.storeId, visitId: visit.id, kind: 'POST_VISIT', availableAt, expiresAt });
}

/** visit.refunded → an unanswered invitation for that visit is withdrawn (a refunded visit is not rated). */
export async function withdrawAfterRefund(event: DomainEvent, ctx: HandlerContext<SurveysConfig>) {
  await ctx.tx.surveyInvitation.updateMany({
    where: { visitId: event.payload.visitId as string, orgId: event.orgId, respondedAt: null, withdrawnAt: null },
    data: { withdrawnAt: new Date() },
  });
}

/** The period an instant falls in, in a time zone: 2026-Q4 (3 months), 2026-H2 (6), 2026 (12), 2026-M11 (1), … */
export function periodKey(at: Date, timezone: string, everyMonths: 1 | 2 | 3 | 4 | 6 | 12): string {
  const { year, month } = localParts(timezone, at);
  const index = Math.floor((month - 1) / everyMonths) + 1;
  const letter = { 1: 'M', 2: 'B', 3: 'Q', 4: 'T', 6: 'H', 12: '' }[everyMonths];
  return everyMonths === 12 ? String(year) : `${year}-${letter}${index}`;
}

/**
 * Periodic satisfaction surveys: for every organization with an active PERIODIC template, one invitation per
 * customer with a completed visit in the last `activeWithinDays`, per period (unique per customer and period, so
 * running the job again in the same period invites nobody twice). Each organization in its own transaction.
 */
export async function invitePeriodic(platform: Platform, config: SurveysConfig, now = new Date()): Promise<number> {
  const periodic = config.periodic;
  if (!periodic) return 0;
  const orgs = await platform.dbs.system.$queryRaw<{ orgId: string }[]>`
    SELECT DISTINCT org_id AS "orgId" FROM survey_template WHERE purpose = 'PERIODIC' AND active`;
  let invited = 0;
  for (const { orgId } of orgs) {
    const { timezone } = await platform.orgSettings(orgId);
    const key = periodKey(now, timezone, periodic.everyMonths);
    const expiresAt = new Date(now.getTime() + periodic.validForDays * 24 * HOUR_MS);
    const activeSince = new Date(now.getTime() - periodic.activeWithinDays * 24 * HOUR_MS);
    invited += await inTransaction(platform, platform.dbs.forOrg(orgId), orgId, ACTOR, async (tx, emit) => {
      const version = await activeVersion(tx, orgId, 'PERIODIC');
      if (!version) return 0;
      const rows = await tx.$queryRaw<{ id: string; customerId: string; storeId: string }[]>`
        INSERT INTO survey_invitation (org_id, customer_id, store_id, kind, period_key, template_version_id, available_at, expires_at)
        SELECT c.org_id, c.id, last.store_id, 'PERIODIC', ${key}, ${version.id}::uuid, ${now}, ${expiresAt}
        FROM customer c
        JOIN customer_fact f ON f.customer_id = c.id
        CROSS JOIN LATERAL (
          SELECT store_id FROM visit
          WHERE customer_id = c.id AND status = 'COMPLETED'
          ORDER BY completed_at DESC LIMIT 1
        ) last
        WHERE c.org_id = ${orgId}::uuid AND f.last_visit_at >= ${activeSince} AND f.last_visit_at <= ${now}
        ORDER BY c.id
        ON CONFLICT (org_id, customer_id, period_key) DO NOTHING
        RETURNING id, customer_id AS "customerId", store_id AS "storeId"`;
      for (const row of rows) {
        await announceInvitation(emit, { ...row, visitId: null, kind: 'PERIODIC', availableAt: now, expiresAt });
      }
      return rows.length;
    });
  }
  return invited;
}

// --- One-time link tokens --------------------------------------------------------------------------------------

/** 32 random bytes, URL-safe: what goes into the SMS link. Only its hash is stored. */
export function newLinkToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashLinkToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A token is 43 base64url characters; anything else names no invitation. */
export function isWellFormedToken(token: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(token);
}

export type InvitationState = 'SCHEDULED' | 'OPEN' | 'ANSWERED' | 'EXPIRED' | 'WITHDRAWN';

export function invitationState(
  invitation: { availableAt: Date; expiresAt: Date; respondedAt: Date | null; withdrawnAt: Date | null },
  now = new Date(),
): InvitationState {
  if (invitation.respondedAt) return 'ANSWERED';
  if (invitation.withdrawnAt) return 'WITHDRAWN';
  if (now.getTime() >= invitation.expiresAt.getTime()) return 'EXPIRED';
  if (now.getTime() < invitation.availableAt.getTime()) return 'SCHEDULED';
  return 'OPEN';
}
