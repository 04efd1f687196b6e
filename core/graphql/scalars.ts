import { GraphQLError, Kind } from 'graphql';
import type { Builder } from './builder.ts';

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const DECIMAL = /^-?\d{1,15}(\.\d{1,6})?$/;

function parseDateTime(value: unknown): Date {
  if (typeof value !== 'string' || !ISO_DATE_TIME.test(value)) {
    throw new GraphQLError('DateTime must be an ISO 8601 string with a time zone offset, e.g. 2026-03-01T10:00:00+08:00');
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new GraphQLError(`Invalid DateTime: ${value}`);
  return date;
}

function parseDate(value: unknown): string {
  if (typeof value !== 'string' || !ISO_DATE.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
    throw new GraphQLError('Date must be a calendar date, YYYY-MM-DD');
  }
  // Reject dates that Date.parse silently rolls over (2026-02-30).
  if (new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) !== value) throw new GraphQLError(`Invalid Date: ${value}`);
  return value;
}

function parseDecimal(value: unknown): string {
  if (typeof value !== 'string' || !DECIMAL.test(value)) {
    throw new GraphQLError('Decimal must be a string such as "680.00" (never a float)');
  }
  return value;
}

function literal<T>(parse: (v: unknown) => T) {
  return (ast: { kind: string; value?: unknown }) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('Expected a string literal');
    return parse(ast.value);
  };
}

export function registerScalars(builder: Builder) {
  builder.scalarType('DateTime', {
    description: 'An instant, as an ISO 8601 string with offset (output is always UTC, e.g. 2026-03-01T02:00:00.000Z).',
    serialize: (value) => (value instanceof Date ? value.toISOString() : String(value)),
    parseValue: parseDateTime,
    parseLiteral: literal(parseDateTime),
  });
  builder.scalarType('Date', {
    description: 'A calendar date without time zone, YYYY-MM-DD.',
    serialize: (value) => (value instanceof Date ? value.toISOString().slice(0, 10) : String(value)),
    parseValue: parseDate,
    parseLiteral: literal(parseDate),
  });
  builder.scalarType('Decimal', {
    description: 'An exact decimal number as a string, e.g. "680.00". Money is never a float.',
    serialize: (value) => String(value),
    parseValue: parseDecimal,
    parseLiteral: literal(parseDecimal),
  });
}
