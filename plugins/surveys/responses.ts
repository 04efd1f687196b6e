import type { Tx } from '../../core/db/clients.ts';
import type { Emit } from '../../core/events/outbox.ts';
import { pgErrorCode } from '../../core/graphql/errors.ts';
import { openComplaint } from './complaints.ts';
import type { SurveysConfig } from './config.ts';
import { alreadyAnswered, invitationExpired, invitationNotOpen } from './errors.ts';
import { storedQuestions, validateAnswers, type AnswerInput } from './questions.ts';

interface LockedInvitation {
  id: string;
  orgId: string;
  customerId: string;
  storeId: string;
  visitId: string | null;
  kind: 'POST_VISIT' | 'PERIODIC';
  templateVersionId: string;
  availableAt: Date;
  expiresAt: Date;
  respondedAt: Date | null;
  withdrawnAt: Date | null;
}

/** Locks an invitation for the transaction: a second submission waits, then finds it answered. */
export async function lockInvitation(tx: Tx, orgId: string, invitationId: string): Promise<LockedInvitation | null> {
  const [row] = await tx.$queryRaw<LockedInvitation[]>`
    SELECT id, org_id AS "orgId", customer_id AS "customerId", store_id AS "storeId", visit_id AS "visitId", kind::text AS kind,
           template_version_id AS "templateVersionId", available_at AS "availableAt", expires_at AS "expiresAt",
           responded_at AS "respondedAt", withdrawn_at AS "withdrawnAt"
    FROM survey_invitation WHERE id = ${invitationId}::uuid AND org_id = ${orgId}::uuid FOR UPDATE`;
  return row ?? null;
}

/** Why an invitation cannot take a response now (answered first: a used invitation says so even once expired). */
export function assertAnswerable(invitation: Pick<LockedInvitation, 'availableAt' | 'expiresAt' | 'respondedAt' | 'withdrawnAt'>, now: Date) {
  if (invitation.respondedAt) throw alreadyAnswered(invitation.respondedAt);
  if (invitation.withdrawnAt) throw invitationNotOpen('WITHDRAWN', invitation.availableAt);
  if (now.getTime() >= invitation.expiresAt.getTime()) throw invitationExpired(invitation.expiresAt);
  if (now.getTime() < invitation.availableAt.getTime()) throw invitationNotOpen('NOT_YET_OPEN', invitation.availableAt);
}

export interface Submitted {
  responseId: string;
  complaintId: string | null;
  npsScore: number | null;
  csatScore: number | null;
  submittedAt: Date;
}

/** Whether a response's scores are low enough to open a complaint case (configurable thresholds). */
export function isLowScore(config: SurveysConfig, nps: number | null, csat: number | null): boolean {
  const { npsAtMost, csatAtMost } = config.lowScore;
  return (nps !== null && npsAtMost !== null && nps <= npsAtMost) || (csat !== null && csatAtMost !== null && csat <= csatAtMost);
}

/**
 * Stores the one response of a locked invitation: answers validated against the invitation's template version,
 * the invitation marked answered, `survey.completed` emitted (points for the interaction, a tier task), and a low
 * score opens exactly one complaint case (complaint.survey_response_id is unique) — all in the caller's
 * transaction, so any typed error leaves nothing behind.
 */
export async function submitResponse(
  tx: Tx,
  emit: Emit,
  config: SurveysConfig,
  invitation: LockedInvitation,
  answers: readonly AnswerInput[],
  options: { channel: 'CUSTOMER_APP' | 'INVITATION_LINK'; actor: string; now?: Date },
): Promise<Submitted> {
  const now = options.now ?? new Date();
  assertAnswerable(invitation, now);
  const version = await tx.surveyTemplateVersion.findUniqueOrThrow({ where: { id: invitation.templateVersionId }, select: { questions: true } });
  const valid = validateAnswers(storedQuestions(version.questions), answers);
  let responseId: string;
  try {
    const response = await tx.surveyResponse.create({
      data: {
        orgId: invitation.orgId,
        invitationId: invitation.id,
        customerId: invitation.customerId,
        storeId: invitation.storeId,
        visitId: invitation.visitId,
        templateVersionId: invitation.templateVersionId,
        channel: options.channel,
        npsScore: valid.nps,
        csatScore: valid.csat,
        answers: valid.answers as object[],
        submittedAt: now,
      },
      select: { id: true },
    });
    responseId = response.id;
  } catch (error) {
    // The invitation row is locked, so this is a last wall: one response per invitation.
    if (pgErrorCode(error) === '23505') throw alreadyAnswered(now);
    throw error;
  }
  await tx.surveyInvitation.update({ where: { id: invitation.id }, data: { respondedAt: now } });
  await emit({
    type: 'survey.completed',
    aggregateType: 'SurveyResponse',
    aggregateId: responseId,
    streamKey: invitation.customerId,
    payload: {
      responseId,
      invitationId: invitation.id,
      customerId: invitation.customerId,
      storeId: invitation.storeId,
      visitId: invitation.visitId,
      kind: invitation.kind,
      channel: options.channel,
      npsScore: valid.nps,
      csatScore: valid.csat,
    },
  });
  let complaintId: string | null = null;
  if (isLowScore(config, valid.nps, valid.csat)) {
    const scores = [valid.nps !== null ? `NPS ${valid.nps}` : null, valid.csat !== null ? `CSAT ${valid.csat}` : null].filter(Boolean).join(', ');
    const comment = valid.answers.find((a) => a.kind === 'FREE_TEXT')?.text ?? null;
    const complaint = await openComplaint(tx, emit, config, {
      orgId: invitation.orgId,
      customerId: invitation.customerId,
      storeId: invitation.storeId,
      visitId: invitation.visitId,
      staffId: null,
      category: config.lowScore.category,
      severity: config.lowScore.severity,
      source: 'SURVEY',
      subject: `Low survey score (${scores})`,
      description: comment,
      surveyResponseId: responseId,
      actor: options.actor,
      openedAt: now,
    });
    complaintId = complaint.id;
  }
  return { responseId, complaintId, npsScore: valid.nps, csatScore: valid.csat, submittedAt: now };
}
