import type { Builder } from '../../core/graphql/builder.ts';
import { DomainError, type UserErrorValue } from '../../core/graphql/errors.ts';
import { userErrorType } from '../../core/graphql/mutation.ts';

export function tierError(typename: string, code: string, message: string, field?: string[], extra: Record<string, unknown> = {}) {
  return new DomainError([{ __typename: typename, code, message, field, ...extra }]);
}

export function registerTierErrors(builder: Builder) {
  userErrorType<UserErrorValue & { holders: number }>(
    builder,
    'TierInUseError',
    'A tier cannot leave the ladder while members hold it or their tier history names it (code TIER_IN_USE).',
    (t) => ({ holders: t.int({ description: 'Members who hold the tier now (earned or by an active override).', resolve: (e) => e.holders }) }),
  );
}
