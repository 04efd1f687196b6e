/**
 * Prints the schema as served with every plugin in plugins/ enabled (default configuration) to
 * schema/schema.graphql: `npm run schema:print`. schema/schema.test.ts fails when the file is stale.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { PLUGINS_DIR } from '../core/bootstrap.ts';
import { buildSchema } from '../core/graphql/schema.ts';
import { availablePlugins, loadPlugins } from '../core/plugin/loader.ts';

export const SCHEMA_FILE = fileURLToPath(new URL('./schema.graphql', import.meta.url));

export async function printFullSchema(): Promise<string> {
  const plugins = await loadPlugins(PLUGINS_DIR, availablePlugins(PLUGINS_DIR));
  return `${printSchema(lexicographicSortSchema(buildSchema(plugins)))}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(SCHEMA_FILE, await printFullSchema());
  console.log(`wrote ${SCHEMA_FILE}`);
}
