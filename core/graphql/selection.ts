/**
 * Whether a Pothos query of a Prisma model asks for its columns only (`scalarFields`: the model's
 * `Prisma.<Model>ScalarFieldEnum`). Then a row already at hand, or read by other means, answers it; relations
 * (Pothos asks for them in `include`, or in `select` beside columns) need Prisma's read.
 */
export function selectsColumnsOnly(query: { include?: object; select?: object }, scalarFields: Record<string, string>): boolean {
  if (query.include && Object.keys(query.include).length) return false;
  return Object.keys(query.select ?? {}).every((key) => key in scalarFields);
}
