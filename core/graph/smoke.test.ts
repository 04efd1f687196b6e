import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../testing/platform.ts';

let api: TestPlatform;
beforeAll(async () => {
  api = await startTestPlatform();
});
afterAll(() => api?.close());

test('owner lists customers', async () => {
  const result = await api.gql('{ customers(first: 2) { totalCount edges { node { name } } } }');
  expect(result.errors).toBeUndefined();
  expect(result.data.customers.totalCount).toBe(260);
});
