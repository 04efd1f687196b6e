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

test('a global id that does not hold a uuid is refused as malformed, not as an internal error', async () => {
  const id = Buffer.from('Customer:x').toString('base64');
  const read = await api.gql('query($id: ID!) { node(id: $id) { id } }', { id });
  expect(read.errors?.[0]?.message).toBe(`Invalid global ID: ${id}`);
  const write = await api.gql('mutation($id: ID!) { updateCustomer(input: { customerId: $id, name: "x" }) { userErrors { code } } }', { id });
  expect(write.errors?.[0]?.message).toBe(`Invalid global ID: ${id}`);
});
