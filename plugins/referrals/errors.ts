import type { Builder } from '../../core/graphql/builder.ts';
import { DomainError, fieldPath, type UserErrorValue } from '../../core/graphql/errors.ts';
import { userErrorType } from '../../core/graphql/mutation.ts';

/**
 * Typed errors of the referral checks. Each is refused before anything is written: a claim that returns one of
 * these changed nothing and moved no points.
 */
function referralError(typename: string, code: string, message: string, extra: Record<string, unknown> = {}, field = fieldPath('code')) {
  return new DomainError([{ __typename: typename, code, message, field, ...extra }]);
}

export const selfReferral = () =>
  referralError('SelfReferralError', 'SELF_REFERRAL', 'A customer cannot claim their own referral code');

export const samePhone = () =>
  referralError('SamePhoneReferralError', 'SAME_PHONE', 'The referrer and the newcomer have used the same phone number');

export type ExistingCustomerBasis = 'COMPLETED_VISITS' | 'REGISTERED_BEFORE_REFERRER';
export const existingCustomer = (basis: ExistingCustomerBasis) =>
  referralError(
    'ExistingCustomerReferralError',
    'EXISTING_CUSTOMER',
    basis === 'COMPLETED_VISITS'
      ? 'The customer already has completed visits: only newcomers can be referred'
      : 'The customer was registered before the referrer: only newcomers can be referred',
    { basis },
    fieldPath('customerId'),
  );

export const referralLoop = (chainLength: number) =>
  referralError('ReferralLoopError', 'REFERRAL_LOOP', `This referral would close a loop of ${chainLength} customers referring each other`, {
    chainLength,
  });

export const monthlyCapReached = (limit: number, resetsAt: Date) =>
  referralError('ReferralCapReachedError', 'REFERRAL_MONTHLY_CAP', `This code has been claimed ${limit} times this month, the most allowed`, {
    limit,
    resetsAt,
  });

export const claimWindowClosed = (closedAt: Date) =>
  referralError(
    'ReferralClaimWindowClosedError',
    'CLAIM_WINDOW_CLOSED',
    'A referral code can only be claimed in the first days after registering',
    { closedAt },
    fieldPath('customerId'),
  );

export function registerReferralErrors(builder: Builder) {
  const Basis = builder.enumType('ExistingCustomerBasis', {
    values: ['COMPLETED_VISITS', 'REGISTERED_BEFORE_REFERRER'] as const,
    description: 'Why a customer counts as existing: visits completed before the claim, or registered before the referrer.',
  });
  userErrorType(builder, 'SelfReferralError', 'The code claimed is the customer\'s own.');
  userErrorType(builder, 'SamePhoneReferralError', 'The referrer and the newcomer have had the same phone number (a number moved from one account to the other).');
  userErrorType<UserErrorValue & { basis: ExistingCustomerBasis }>(
    builder,
    'ExistingCustomerReferralError',
    'Only newcomers can be referred: this customer already had completed visits, or was registered before the referrer.',
    (t) => ({ basis: t.field({ type: Basis, resolve: (e) => e.basis }) }),
  );
  userErrorType<UserErrorValue & { chainLength: number }>(
    builder,
    'ReferralLoopError',
    'The referral would close a loop (A refers B and B refers A, or a longer chain back to the newcomer).',
    (t) => ({ chainLength: t.int({ description: 'Customers in the loop.', resolve: (e) => e.chainLength }) }),
  );
  userErrorType<UserErrorValue & { limit: number; resetsAt: Date }>(
    builder,
    'ReferralCapReachedError',
    'The referrer\'s code has been claimed as often as allowed this calendar month (organization\'s time zone).',
    (t) => ({
      limit: t.int({ resolve: (e) => e.limit }),
      resetsAt: t.field({ type: 'DateTime', description: 'Start of the next month.', resolve: (e) => e.resetsAt }),
    }),
  );
  userErrorType<UserErrorValue & { closedAt: Date }>(
    builder,
    'ReferralClaimWindowClosedError',
    'The customer registered too long ago to claim a referral code.',
    (t) => ({ closedAt: t.field({ type: 'DateTime', resolve: (e) => e.closedAt }) }),
  );
}
