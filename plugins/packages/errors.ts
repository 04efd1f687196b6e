import { encodeGlobalID } from '@pothos/plugin-relay';
import type { Builder } from '../../core/graphql/builder.ts';
import { DomainError, type UserErrorValue } from '../../core/graphql/errors.ts';
import { userErrorType } from '../../core/graphql/mutation.ts';

export function packagesError(typename: string, code: string, message: string, extra: Record<string, unknown> = {}, field?: string[]) {
  return new DomainError([{ __typename: typename, code, message, field, ...extra }]);
}

export function registerPackagesErrors(builder: Builder) {
  userErrorType<UserErrorValue & { expiresAt: Date }>(
    builder,
    'PackageExpiredError',
    'The package\'s validity ended (PACKAGE_EXPIRED): its sessions can no longer be used, frozen or refunded; a manager may extend it.',
    (t) => ({ expiresAt: t.field({ type: 'DateTime', resolve: (e) => e.expiresAt }) }),
  );
  userErrorType<UserErrorValue & { frozenAt: Date }>(
    builder,
    'PackageFrozenError',
    'The package is frozen (PACKAGE_FROZEN): unfreeze it before using a session.',
    (t) => ({ frozenAt: t.field({ type: 'DateTime', resolve: (e) => e.frozenAt }) }),
  );
  userErrorType<UserErrorValue & { remainingSessions: number }>(
    builder,
    'PackageExhaustedError',
    'No session of this service is left in the package (SESSIONS_EXHAUSTED).',
    (t) => ({ remainingSessions: t.int({ resolve: (e) => e.remainingSessions }) }),
  );
  userErrorType<UserErrorValue & { serviceId: string; tags: string[] | null }>(
    builder,
    'ContraindicationWarningError',
    'A booked service matches the customer\'s allergies or sensitivities (CONTRAINDICATION_UNACKNOWLEDGED): a consultant ' +
      'must record acknowledgeContraindications before it can be booked. tags is null for roles that may not read health data.',
    (t) => ({
      serviceId: t.id({ resolve: (e) => encodeGlobalID('Service', e.serviceId) }),
      tags: t.stringList({ nullable: true, resolve: (e) => e.tags }),
    }),
  );
}
