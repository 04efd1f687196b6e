import type { z } from 'zod';

/**
 * Errors a caller can act on. They travel in a mutation payload's `userErrors` (never as GraphQL errors),
 * each as a concrete GraphQL type implementing `UserError`. Plugins add their own kinds (e.g.
 * InsufficientPointsError) with `userErrorType`.
 */
export interface UserErrorValue {
  __typename: string;
  code: string;
  message: string;
  /** Path to the input field at fault, e.g. ['input', 'phone']. */
  field?: string[];
  [extra: string]: unknown;
}

export class DomainError extends Error {
  constructor(readonly userErrors: UserErrorValue[]) {
    super(userErrors.map((e) => e.message).join('; '));
    this.name = 'DomainError';
  }
}

export function fieldPath(...path: (string | number)[]): string[] {
  return ['input', ...path.map(String)];
}

export function validationError(issues: { field: string[]; message: string }[]): DomainError {
  return new DomainError(
    issues.map((issue) => ({ __typename: 'ValidationError', code: 'INVALID', message: issue.message, field: issue.field })),
  );
}

/** Another tenant's object answers exactly like one that does not exist. */
export function notFound(field: string[], what: string): DomainError {
  return new DomainError([{ __typename: 'NotFoundError', code: 'NOT_FOUND', message: `${what} not found`, field }]);
}

export function conflict(code: string, message: string, field?: string[]): DomainError {
  return new DomainError([{ __typename: 'ConflictError', code, message, field }]);
}

export function forbidden(message = 'Not permitted'): DomainError {
  return new DomainError([{ __typename: 'ForbiddenError', code: 'FORBIDDEN', message }]);
}

/** Parses mutation input with a zod schema; every issue becomes a ValidationError at its input path. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw validationError(
    result.error.issues.map((issue) => ({
      field: fieldPath(...(issue.path as (string | number)[])),
      message: issue.message,
    })),
  );
}

/** PostgreSQL error codes that mean "your request conflicts with existing data". */
export function pgErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const candidate = current as { code?: unknown; cause?: unknown; meta?: { driverAdapterError?: unknown } };
    const code = (candidate as { originalCode?: unknown }).originalCode ?? candidate.code;
    // Prisma's own codes (P2039 "database error", …) have the same shape as SQLSTATEs: look past them to the driver's.
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^P[1-9]\d{3}$/.test(code)) return code;
    current = candidate.meta?.driverAdapterError ?? candidate.cause;
  }
  return undefined;
}
