/**
 * Smoke test of the benchmark harness (`npm run bench`): a tiny data set, 1 s per workload, 50 subscribers, one
 * process per server. Asserts only that every workload produced figures and that the invariants hold — no speed.
 */
import { describe, expect, it } from 'vitest';
import { runBench } from './harness.ts';

describe('benchmark harness (smoke)', () => {
  it('runs every workload on every server at a tiny size, and the ledger invariants hold', async () => {
    const result = await runBench({
      size: { stores: 2, customers: 60, visits: 300, ledger: 600, posVisits: 6000 },
      seconds: 1,
      connections: 4,
      subscribers: 50,
      events: 2,
      warmupRequests: 10,
      reuseServers: true,
      log: () => {},
    });
    const servers = new Set(result.figures.map((f) => f.server));
    const pgSkipped = result.skipped.some((s) => s.startsWith('PostGraphile 4.14 could not be installed'));
    for (const workload of ['a', 'b50', 'b200', 'c'] as const) {
      for (const server of servers) {
        const f = result.figures.find((x) => x.workload === workload && x.server === server);
        expect(f, `${workload} on ${server}`).toBeDefined();
        expect(f!.requests).toBeGreaterThan(0);
        expect(f!.failures).toBe(0);
        expect(f!.statementsPerRequest).toBeGreaterThan(0);
        expect(Number.isFinite(f!.cpuMsPerRequest)).toBe(true);
      }
    }
    expect(servers.has('our API') && servers.has('raw node:http + pg')).toBe(true);
    if (!pgSkipped) expect(servers.has('PostGraphile 4.14')).toBe(true);
    expect(result.figures.find((f) => f.workload === 'd')?.requests).toBeGreaterThan(0);
    expect(result.hq?.psqlMs.length).toBeGreaterThan(0);
    expect(result.sameJson).toMatchObject({ a: 'identical', b50: 'identical', b200: 'identical' });
    expect(result.subscriptions.length).toBeGreaterThanOrEqual(3); // the raw baseline, one process, two over NOTIFY (+ Redis when it runs)
    for (const s of result.subscriptions) expect(s.deliveries).toBe(s.expected);
    expect(result.ledger).toMatchObject({ mismatched: 0, negative: 0 });
    for (const p of result.pos) {
      expect(p.completed).toBeGreaterThan(0);
      expect(p.missingAwards).toBe(0);
    }
    expect(result.floor.map((f) => f.layer)).toEqual(['reference', 'http', 'yoga', 'pg', 'prisma', 'yogaPrisma']);
    for (const f of result.floor) expect(f.requests > 0 && f.failures === 0, f.label).toBe(true);
    expect(result.markdown).toContain('(e) live events');
    expect(result.markdown).toContain("The fixed stack's floor");
  }, 300_000);
});
