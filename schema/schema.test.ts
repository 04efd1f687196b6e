import { readFile } from 'node:fs/promises';
import { expect, test } from 'vitest';
import { printFullSchema, SCHEMA_FILE } from './print-schema.ts';

test('schema/schema.graphql is the schema the code builds (run `npm run schema:print` after a change)', async () => {
  const committed = await readFile(SCHEMA_FILE, 'utf8');
  expect(committed === (await printFullSchema()), 'schema/schema.graphql is stale: run npm run schema:print').toBe(true);
});
