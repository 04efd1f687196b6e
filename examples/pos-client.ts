/**
 * A front-desk POS integration, as an integrator would write it: typed documents from GraphQL Code
 * Generator, a bearer token, and retries that are safe because check-in and completion carry an
 * idempotency key (a retried request returns the first answer and changes nothing twice).
 *
 *   API_URL=http://localhost:4000/graphql TOKEN=$(npm run -s token -- POS_CLIENT) npx tsx examples/pos-client.ts
 */
import { randomUUID } from 'node:crypto';
import { print } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { graphql } from './generated/gql.ts';

export const FindCustomer = graphql(`
  query FindCustomer($search: String!) {
    customers(first: 1, filter: { search: $search }) {
      edges { node { id name phone membership { memberNumber } points { balance } } }
    }
    viewer { storeIds }
    services(category: FACIAL) { id name price { amount } }
  }
`);

export const BookWalkIn = graphql(`
  mutation BookWalkIn($input: BookVisitInput!) {
    bookVisit(input: $input) { visit { id status } userErrors { __typename code message field } }
  }
`);

export const CheckIn = graphql(`
  mutation CheckIn($input: CheckInVisitInput!) {
    checkInVisit(input: $input) { visit { id status checkedInAt } replayed userErrors { __typename code message } }
  }
`);

export const Complete = graphql(`
  mutation Complete($input: CompleteVisitInput!) {
    completeVisit(input: $input) {
      visit { id status total { amount currencyCode } lineItems { description amount { amount } } }
      replayed
      userErrors { __typename code message field }
    }
  }
`);

export interface PosOptions {
  url: string;
  token: string;
  /**
   * Simulates a flaky network: the first answer to each idempotent mutation (one with an idempotency
   * key) is "lost" after the server handled it, and the request is sent again with the same key.
   */
  dropFirstResponse?: boolean;
}

export class PosClient {
  constructor(private readonly options: PosOptions) {}

  async request<R, V>(document: TypedDocumentNode<R, V>, variables: V, attempt = 0): Promise<R> {
    const response = await fetch(this.options.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.options.token}` },
      body: JSON.stringify({ query: print(document), variables }),
    });
    const body = (await response.json()) as { data?: R; errors?: { message: string }[] };
    if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
    // The request reached the server, but pretend its answer was lost on the way back.
    const idempotent = Boolean((variables as { input?: { idempotencyKey?: string } })?.input?.idempotencyKey);
    if (this.options.dropFirstResponse && attempt === 0 && idempotent) {
      return this.request(document, variables, attempt + 1);
    }
    return body.data!;
  }
}

/** Finds a customer by phone, checks them in for a walk-in facial and records the service. */
export async function serveWalkIn(client: PosClient, phone: string) {
  const found = await client.request(FindCustomer, { search: phone });
  const customer = found.customers?.edges[0]?.node;
  if (!customer) throw new Error(`No customer with phone ${phone}`);
  const storeId = found.viewer?.storeIds[0];
  const service = found.services?.[0];
  if (!storeId || !service) throw new Error('This POS has no store or no facial on the menu');

  const booked = await client.request(BookWalkIn, {
    input: { customerId: customer.id, storeId, serviceIds: [service.id], startsAt: new Date().toISOString() },
  });
  if (booked.bookVisit?.userErrors.length) throw new Error(booked.bookVisit.userErrors[0]!.message);
  const visitId = booked.bookVisit!.visit!.id;

  const checkIn = await client.request(CheckIn, { input: { visitId, idempotencyKey: `checkin-${randomUUID()}` } });
  const completeKey = `complete-${randomUUID()}`;
  const completed = await client.request(Complete, {
    input: {
      visitId,
      idempotencyKey: completeKey,
      lineItems: [{ serviceId: service.id, quantity: 1 }],
      readings: [{ metric: 'skin moisture', before: '41', after: '55', unit: '%' }],
      notes: 'Walk-in; prefers jasmine tea.',
    },
  });
  return { customer, checkIn: checkIn.checkInVisit!, completed: completed.completeVisit! };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.API_URL ?? 'http://localhost:4000/graphql';
  const token = process.env.TOKEN;
  if (!token) throw new Error('Set TOKEN (npm run -s token -- POS_CLIENT)');
  const phone = process.argv[2] ?? '';
  const result = await serveWalkIn(new PosClient({ url, token }), phone);
  console.log(JSON.stringify(result, null, 2));
}
