/* eslint-disable */
import * as types from './graphql.js';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query FindCustomer($search: String!) {\n    customers(first: 1, filter: { search: $search }) {\n      edges { node { id name phone membership { memberNumber } points { balance } } }\n    }\n    viewer { storeIds }\n    services(category: FACIAL) { id name price { amount } }\n  }\n": typeof types.FindCustomerDocument,
    "\n  mutation BookWalkIn($input: BookVisitInput!) {\n    bookVisit(input: $input) { visit { id status } userErrors { __typename code message field } }\n  }\n": typeof types.BookWalkInDocument,
    "\n  mutation CheckIn($input: CheckInVisitInput!) {\n    checkInVisit(input: $input) { visit { id status checkedInAt } replayed userErrors { __typename code message } }\n  }\n": typeof types.CheckInDocument,
    "\n  mutation Complete($input: CompleteVisitInput!) {\n    completeVisit(input: $input) {\n      visit { id status total { amount currencyCode } lineItems { description amount { amount } } }\n      replayed\n      userErrors { __typename code message field }\n    }\n  }\n": typeof types.CompleteDocument,
};
const documents: Documents = {
    "\n  query FindCustomer($search: String!) {\n    customers(first: 1, filter: { search: $search }) {\n      edges { node { id name phone membership { memberNumber } points { balance } } }\n    }\n    viewer { storeIds }\n    services(category: FACIAL) { id name price { amount } }\n  }\n": types.FindCustomerDocument,
    "\n  mutation BookWalkIn($input: BookVisitInput!) {\n    bookVisit(input: $input) { visit { id status } userErrors { __typename code message field } }\n  }\n": types.BookWalkInDocument,
    "\n  mutation CheckIn($input: CheckInVisitInput!) {\n    checkInVisit(input: $input) { visit { id status checkedInAt } replayed userErrors { __typename code message } }\n  }\n": types.CheckInDocument,
    "\n  mutation Complete($input: CompleteVisitInput!) {\n    completeVisit(input: $input) {\n      visit { id status total { amount currencyCode } lineItems { description amount { amount } } }\n      replayed\n      userErrors { __typename code message field }\n    }\n  }\n": types.CompleteDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query FindCustomer($search: String!) {\n    customers(first: 1, filter: { search: $search }) {\n      edges { node { id name phone membership { memberNumber } points { balance } } }\n    }\n    viewer { storeIds }\n    services(category: FACIAL) { id name price { amount } }\n  }\n"): (typeof documents)["\n  query FindCustomer($search: String!) {\n    customers(first: 1, filter: { search: $search }) {\n      edges { node { id name phone membership { memberNumber } points { balance } } }\n    }\n    viewer { storeIds }\n    services(category: FACIAL) { id name price { amount } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation BookWalkIn($input: BookVisitInput!) {\n    bookVisit(input: $input) { visit { id status } userErrors { __typename code message field } }\n  }\n"): (typeof documents)["\n  mutation BookWalkIn($input: BookVisitInput!) {\n    bookVisit(input: $input) { visit { id status } userErrors { __typename code message field } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CheckIn($input: CheckInVisitInput!) {\n    checkInVisit(input: $input) { visit { id status checkedInAt } replayed userErrors { __typename code message } }\n  }\n"): (typeof documents)["\n  mutation CheckIn($input: CheckInVisitInput!) {\n    checkInVisit(input: $input) { visit { id status checkedInAt } replayed userErrors { __typename code message } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Complete($input: CompleteVisitInput!) {\n    completeVisit(input: $input) {\n      visit { id status total { amount currencyCode } lineItems { description amount { amount } } }\n      replayed\n      userErrors { __typename code message field }\n    }\n  }\n"): (typeof documents)["\n  mutation Complete($input: CompleteVisitInput!) {\n    completeVisit(input: $input) {\n      visit { id status total { amount currencyCode } lineItems { description amount { amount } } }\n      replayed\n      userErrors { __typename code message field }\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;