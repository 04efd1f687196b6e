import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../core/testing/platform.ts';
import { PosClient, serveWalkIn } from './pos-client.ts';

let api: TestPlatform;
beforeAll(async () => {
  api = await startTestPlatform({ plugins: ['points'] });
});
afterAll(() => api?.close());

test('the POS example serves a walk-in over a flaky network: every retry is answered once, nothing happens twice', async () => {
  const customerId = (api.principals.CUSTOMER as { customerId: string }).customerId;
  const customer = await api.owner.customer.findUniqueOrThrow({ where: { id: customerId } });
  const client = new PosClient({ url: api.url, token: await api.token('POS_CLIENT'), dropFirstResponse: true });

  const result = await serveWalkIn(client, customer.phone.slice(-8));

  expect(result.customer.name).toBe(customer.name);
  expect(result.checkIn.replayed).toBe(true);
  expect(result.completed.replayed).toBe(true);
  expect(result.completed.userErrors).toEqual([]);
  expect(result.completed.visit?.status).toBe('COMPLETED');
  const visitId = Buffer.from(result.completed.visit!.id, 'base64').toString().split(':')[1]!;
  expect(await api.owner.domainEvent.count({ where: { aggregateId: visitId, type: 'visit.checkedIn' } })).toBe(1);
  expect(await api.owner.domainEvent.count({ where: { aggregateId: visitId, type: 'visit.completed' } })).toBe(1);

  // The visit earns points once the worker handles visit.completed.
  await api.drainJobs();
  const earned = await api.owner.pointsEntry.findMany({ where: { sourceRef: visitId, kind: 'EARN' } });
  expect(earned).toHaveLength(1);
});

test('the typed documents in examples/generated match schema/schema.graphql (npm run codegen)', async () => {
  const run = promisify(execFile);
  await expect(run('npx', ['graphql-codegen', '--config', 'codegen.ts', '--check'], { cwd: process.cwd() })).resolves.toBeDefined();
}, 120_000);
