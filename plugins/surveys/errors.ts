import type { Builder } from '../../core/graphql/builder.ts';
import { DomainError, type UserErrorValue } from '../../core/graphql/errors.ts';
import { userErrorType } from '../../core/graphql/mutation.ts';

export function surveyError(typename: string, code: string, message: string, extra: Record<string, unknown> = {}, field?: string[]) {
  return new DomainError([{ __typename: typename, code, message, field, ...extra }]);
}

export interface AnswerIssue {
  code: string;
  message: string;
  questionKey: string | null;
  field: string[];
}

/** Every problem with the answers at once, each as an InvalidSurveyAnswerError. */
export function invalidAnswers(issues: AnswerIssue[]): DomainError {
  return new DomainError(issues.map((issue) => ({ __typename: 'InvalidSurveyAnswerError', ...issue })));
}

export function alreadyAnswered(respondedAt: Date): DomainError {
  return surveyError('SurveyAlreadyAnsweredError', 'ALREADY_ANSWERED', 'This survey has already been answered', { respondedAt });
}

export function invitationExpired(expiredAt: Date): DomainError {
  return surveyError('SurveyInvitationExpiredError', 'INVITATION_EXPIRED', 'This survey invitation has expired', { expiredAt });
}

export function invitationNotOpen(code: 'NOT_YET_OPEN' | 'WITHDRAWN', availableAt: Date): DomainError {
  const message = code === 'WITHDRAWN' ? 'This survey invitation was withdrawn (the visit was refunded)' : 'This survey cannot be answered yet';
  return surveyError('SurveyInvitationNotOpenError', code, message, { availableAt });
}

export function invalidTransition(from: string, to: string, message?: string): DomainError {
  return surveyError(
    'ComplaintTransitionError',
    'INVALID_TRANSITION',
    message ?? `A complaint cannot go from ${from} to ${to}`,
    { from, to },
    ['input', 'status'],
  );
}

export function reopenWindowClosed(reopenableUntil: Date | null): DomainError {
  return surveyError('ReopenWindowClosedError', 'REOPEN_WINDOW_CLOSED', 'The complaint can no longer be reopened', { reopenableUntil }, ['input', 'complaintId']);
}

export function registerSurveyErrors(builder: Builder) {
  userErrorType<UserErrorValue & { questionKey: string | null }>(
    builder,
    'InvalidSurveyAnswerError',
    'An answer does not fit the survey version it answers (code: UNKNOWN_QUESTION, DUPLICATE_ANSWER, MISSING_ANSWER, ' +
      'WRONG_ANSWER_TYPE, SCORE_OUT_OF_RANGE, UNKNOWN_CHOICE, TOO_MANY_CHOICES, EMPTY_TEXT, TEXT_TOO_LONG). Nothing was stored.',
    (t) => ({ questionKey: t.string({ nullable: true, resolve: (e) => e.questionKey }) }),
  );
  userErrorType<UserErrorValue & { respondedAt: Date }>(
    builder,
    'SurveyAlreadyAnsweredError',
    'The invitation already has its one response. Nothing was stored.',
    (t) => ({ respondedAt: t.field({ type: 'DateTime', resolve: (e) => e.respondedAt }) }),
  );
  userErrorType<UserErrorValue & { expiredAt: Date }>(
    builder,
    'SurveyInvitationExpiredError',
    'The invitation expired before it was answered. Nothing was stored.',
    (t) => ({ expiredAt: t.field({ type: 'DateTime', resolve: (e) => e.expiredAt }) }),
  );
  userErrorType<UserErrorValue & { availableAt: Date }>(
    builder,
    'SurveyInvitationNotOpenError',
    'The invitation cannot be answered: NOT_YET_OPEN (before its availableAt) or WITHDRAWN (its visit was refunded).',
    (t) => ({ availableAt: t.field({ type: 'DateTime', resolve: (e) => e.availableAt }) }),
  );
  userErrorType<UserErrorValue & { from: string; to: string }>(
    builder,
    'ComplaintTransitionError',
    'The workflow does not allow this step (OPEN → ACKNOWLEDGED → IN_PROGRESS → RESOLVED → CLOSED, one step at a time).',
    (t) => ({ from: t.string({ resolve: (e) => e.from }), to: t.string({ resolve: (e) => e.to }) }),
  );
  userErrorType<UserErrorValue & { reopenableUntil: Date | null }>(
    builder,
    'ReopenWindowClosedError',
    'The complaint was resolved longer ago than the reopen window allows.',
    (t) => ({ reopenableUntil: t.field({ type: 'DateTime', nullable: true, resolve: (e) => e.reopenableUntil }) }),
  );
}
