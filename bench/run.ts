/**
 * `npm run bench [-- --small] [--seconds N] [--connections N] [--only a,b50,b200,c,d,e,floor] [--subscribers N] [--tiny]`
 *
 * Workloads: a (storefront read), b50 / b200 (customer lists; `b` selects both), c (POS), d (HQ), e (subscriptions);
 * floor: each layer of the fixed stack alone (node:http, Yoga, pg, Prisma).
 * Prints the markdown report and writes it to bench/report.md. Exits 1 when an invariant is violated.
 * BENCH_NODE_ARGS adds Node flags to every server child, e.g. `BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'`.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runBench, WORKLOADS, type Workload } from './harness.ts';

const { values } = parseArgs({
  options: {
    small: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    only: { type: 'string' },
    subscribers: { type: 'string', default: '1000' },
  },
});
const only = values.only
  ?.split(',')
  .map((w) => w.trim())
  .flatMap((w) => (w === 'b' ? ['b50', 'b200'] : [w])) as Workload[] | undefined;
for (const w of only ?? []) if (!WORKLOADS.includes(w)) throw new Error(`--only: unknown workload ${w} (one of b, ${WORKLOADS.join(', ')})`);

const result = await runBench({
  size: values.tiny ? 'tiny' : values.small ? 'small' : 'default',
  seconds: Number(values.seconds),
  connections: Number(values.connections),
  subscribers: Number(values.subscribers),
  only,
});
console.log(`\n${result.markdown}`);
const path = fileURLToPath(new URL('./report.md', import.meta.url));
await writeFile(path, result.markdown);
console.log(`Written to ${path}`);
const violated = result.ledger.mismatched + result.ledger.negative + result.pos.reduce((sum, p) => sum + p.missingAwards, 0);
if (violated) process.exitCode = 1;
