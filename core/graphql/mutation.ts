import type { InputFieldBuilder, InputFieldMap, InputShapeFromFields, FieldMap, ObjectFieldBuilder } from '@pothos/core';
import type { Builder } from './builder.ts';
import type { Context } from './context.ts';
import { DomainError, type UserErrorValue } from './errors.ts';

type Types = Builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

/** The error types every mutation may return; plugins add theirs with `userErrorType`. */
export function registerUserErrors(builder: Builder) {
  builder.interfaceRef<UserErrorValue>('UserError').implement({
    description:
      'Something about the request the caller can fix. `code` is stable for programs, `message` is for people, ' +
      '`field` is the path of the input field at fault.',
    fields: (t) => ({
      code: t.string({ resolve: (error) => error.code }),
      message: t.string({ resolve: (error) => error.message }),
      field: t.stringList({ nullable: true, resolve: (error) => error.field ?? null }),
    }),
    resolveType: (error) => error.__typename,
  });
  userErrorType(builder, 'ValidationError', 'The input is malformed or breaks a rule; nothing was changed.');
  userErrorType(builder, 'NotFoundError', 'An id names nothing the caller can see (including another organization\'s objects).');
  userErrorType(
    builder,
    'ConflictError',
    'The request conflicts with the current state, e.g. STAFF_DOUBLE_BOOKED, DUPLICATE_PHONE, INVALID_STATE, IDEMPOTENCY_KEY_REUSED.',
  );
  userErrorType(builder, 'ForbiddenError', 'The caller may not do this.');
}

export function userErrorType<T extends UserErrorValue>(
  builder: Builder,
  name: string,
  description: string,
  fields?: (t: ObjectFieldBuilder<Types, T>) => FieldMap,
) {
  return builder.objectRef<T>(name).implement({
    description,
    interfaces: ['UserError' as never],
    isTypeOf: (value) => (value as UserErrorValue).__typename === name,
    fields: fields ?? (() => ({})),
  });
}

/**
 * A mutation in the house style: one `input` argument, a payload with the changed objects and
 * `userErrors`. Domain errors thrown by `resolve` become user errors (the transaction has rolled back, so
 * nothing changed); anything else is an internal error, masked for the caller.
 */
export function defineMutation<Fields extends InputFieldMap, Result extends object>(
  builder: Builder,
  name: string,
  options: {
    description: string;
    input: (t: InputFieldBuilder<Types, 'InputObject'>) => Fields;
    payload: (t: ObjectFieldBuilder<Types, Partial<Result>>) => FieldMap;
    resolve: (input: InputShapeFromFields<Fields>, ctx: Context) => Promise<Result>;
  },
) {
  const pascal = name[0].toUpperCase() + name.slice(1);
  const input = builder.inputType(`${pascal}Input`, { fields: options.input });
  type Payload = Partial<Result> & { userErrors: UserErrorValue[] };
  const payload = builder.objectRef<Payload>(`${pascal}Payload`).implement({
    fields: (t) => ({
      ...options.payload(t as never),
      userErrors: t.field({
        type: ['UserError' as never],
        description: 'Empty when the mutation succeeded.',
        resolve: (result) => result.userErrors as never,
      }),
    }),
  });
  builder.mutationField(name, (t) =>
    t.field({
      type: payload,
      description: options.description,
      args: { input: t.arg({ type: input, required: true }) },
      resolve: (async (_root: unknown, args: { input: unknown }, ctx: Context): Promise<Payload> => {
        try {
          return { ...(await options.resolve(args.input as InputShapeFromFields<Fields>, ctx)), userErrors: [] };
        } catch (error) {
          if (error instanceof DomainError) return { userErrors: error.userErrors } as Payload;
          throw error;
        }
      }) as never,
    }),
  );
}
