import { useGraphQlJit } from '@envelop/graphql-jit';
import {
  getNamedType,
  getOperationAST,
  isInputObjectType,
  typeFromAST,
  type ExecutionArgs,
  type GraphQLInputObjectType,
  type GraphQLSchema,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** Input object types that can contain themselves (a segment's nested rules, say). */
function recursiveInputTypes(schema: GraphQLSchema): Set<string> {
  const reaches = (from: GraphQLInputObjectType, target: string, seen: Set<string>): boolean =>
    Object.values(from.getFields()).some((field) => {
      const type = getNamedType(field.type);
      if (!isInputObjectType(type)) return false;
      if (type.name === target) return true;
      if (seen.has(type.name)) return false;
      seen.add(type.name);
      return reaches(type, target, seen);
    });
  const names = new Set<string>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (isInputObjectType(type) && reaches(type, type.name, new Set())) names.add(type.name);
  }
  return names;
}

/**
 * Queries run compiled by graphql-jit: each operation is compiled once into plain JavaScript, which executes wide lists
 * at a fraction of the reference executor's cost (bench/report.md, workload b). Left to the reference executor:
 * mutations and subscriptions (little to gain, and under graphql-jit a subscription's `subscribe` saw its global-id
 * arguments undecoded), and operations with a variable of a recursive input type (graphql-jit's variable compiler
 * recurses without end on them).
 */
export function compiledQueries(schema: GraphQLSchema): Plugin {
  const recursive = recursiveInputTypes(schema);
  const compilable = (args: ExecutionArgs) => {
    const operation = getOperationAST(args.document, args.operationName);
    if (operation?.operation !== 'query') return false;
    return !(operation.variableDefinitions ?? []).some((definition) => {
      const type = typeFromAST(args.schema, definition.type as never);
      return type !== undefined && recursive.has(getNamedType(type).name);
    });
  };
  return useGraphQlJit({}, { enableIf: compilable }) as Plugin;
}
