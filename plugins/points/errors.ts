import type { Builder } from '../../core/graphql/builder.ts';
import { DomainError, type UserErrorValue } from '../../core/graphql/errors.ts';
import { userErrorType } from '../../core/graphql/mutation.ts';

/** The user error with this code, when `error` is a domain error carrying one. */
export function isDomainError(error: unknown, code: string): UserErrorValue | undefined {
  return error instanceof DomainError ? error.userErrors.find((e) => e.code === code) : undefined;
}

export function pointsError(typename: string, code: string, message: string, extra: Record<string, unknown> = {}, field?: string[]) {
  return new DomainError([{ __typename: typename, code, message, field, ...extra }]);
}

export function registerPointsErrors(builder: Builder) {
  userErrorType<UserErrorValue & { available: number; requested: number }>(
    builder,
    'InsufficientPointsError',
    'The balance (after expiring lapsed points) is below what was asked for.',
    (t) => ({ available: t.int({ resolve: (e) => e.available }), requested: t.int({ resolve: (e) => e.requested }) }),
  );
  userErrorType<UserErrorValue & { remainingPoints: number }>(
    builder,
    'RedemptionCapExceededError',
    'Points redeemed in a calendar month may not exceed the configured share of that month\'s spend.',
    (t) => ({ remainingPoints: t.int({ description: 'Points still redeemable this month.', resolve: (e) => e.remainingPoints }) }),
  );
  userErrorType<UserErrorValue & { available: number }>(builder, 'OutOfStockError', 'Not enough of the reward is left.', (t) => ({
    available: t.int({ resolve: (e) => e.available }),
  }));
  userErrorType(
    builder,
    'RewardNotAvailableError',
    'The reward is inactive, outside its validity window, not for the customer\'s tier, or over its per-customer limit (code says which).',
  );
}
