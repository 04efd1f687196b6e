/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
export type BookVisitInput = {
  /** Required for staff; a customer books for themself. */
  customerId?: string | null | undefined;
  notes?: string | null | undefined;
  serviceIds: Array<string>;
  staffId?: string | null | undefined;
  startsAt: string;
  storeId: string;
};

export type CheckInVisitInput = {
  /** Chosen by the client, unique per attempt (e.g. a UUID); 8–128 characters. */
  idempotencyKey: string;
  visitId: string;
};

export type CompleteVisitInput = {
  idempotencyKey: string;
  lineItems: Array<VisitLineItemInput>;
  notes?: string | null | undefined;
  readings?: Array<ServiceReadingInput> | null | undefined;
  signature?: SignatureInput | null | undefined;
  visitId: string;
};

export type ServiceReadingInput = {
  after?: string | null | undefined;
  before?: string | null | undefined;
  metric: string;
  unit?: string | null | undefined;
};

export type SignatureInput = {
  imageDataUrl: string;
  signedAt: string;
  signerName: string;
};

/** Exactly one of serviceId and productId. unitPrice defaults to the catalogue price. */
export type VisitLineItemInput = {
  discount?: string | null | undefined;
  productId?: string | null | undefined;
  quantity?: number | null | undefined;
  serviceId?: string | null | undefined;
  /** Who performed or sold it; defaults to the visit's staff. */
  staffId?: string | null | undefined;
  unitPrice?: string | null | undefined;
};

/** BOOKED → CHECKED_IN → COMPLETED (→ REFUNDED), or CANCELLED / NO_SHOW. */
export type VisitStatus =
  | 'BOOKED'
  | 'CANCELLED'
  | 'CHECKED_IN'
  | 'COMPLETED'
  | 'NO_SHOW'
  | 'REFUNDED';

export type FindCustomerQueryVariables = Exact<{
  search: string;
}>;


export type FindCustomerQuery = { customers: { edges: Array<{ node: { id: string, name: string, phone: string, membership: { memberNumber: string } | null, points: { balance: number } | null } }> }, viewer: { storeIds: Array<string> }, services: Array<{ id: string, name: string, price: { amount: string } }> };

export type BookWalkInMutationVariables = Exact<{
  input: BookVisitInput;
}>;


export type BookWalkInMutation = { bookVisit: { visit: { id: string, status: VisitStatus } | null, userErrors: Array<
      | { __typename: 'ComplaintTransitionError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ConflictError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ContraindicationWarningError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ExistingCustomerReferralError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ForbiddenError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'InsufficientPointsError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'InvalidSurveyAnswerError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'NotFoundError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'OutOfStockError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'PackageExhaustedError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'PackageExpiredError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'PackageFrozenError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'RedemptionCapExceededError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ReferralCapReachedError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ReferralClaimWindowClosedError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ReferralLoopError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ReopenWindowClosedError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'RewardNotAvailableError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'SamePhoneReferralError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'SelfReferralError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'SurveyAlreadyAnsweredError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'SurveyInvitationExpiredError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'SurveyInvitationNotOpenError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'TierInUseError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ValidationError', code: string, message: string, field: Array<string> | null }
    > } };

export type CheckInMutationVariables = Exact<{
  input: CheckInVisitInput;
}>;


export type CheckInMutation = { checkInVisit: { replayed: boolean | null, visit: { id: string, status: VisitStatus, checkedInAt: string | null } | null, userErrors: Array<
      | { __typename: 'ComplaintTransitionError', code: string, message: string }
      | { __typename: 'ConflictError', code: string, message: string }
      | { __typename: 'ContraindicationWarningError', code: string, message: string }
      | { __typename: 'ExistingCustomerReferralError', code: string, message: string }
      | { __typename: 'ForbiddenError', code: string, message: string }
      | { __typename: 'InsufficientPointsError', code: string, message: string }
      | { __typename: 'InvalidSurveyAnswerError', code: string, message: string }
      | { __typename: 'NotFoundError', code: string, message: string }
      | { __typename: 'OutOfStockError', code: string, message: string }
      | { __typename: 'PackageExhaustedError', code: string, message: string }
      | { __typename: 'PackageExpiredError', code: string, message: string }
      | { __typename: 'PackageFrozenError', code: string, message: string }
      | { __typename: 'RedemptionCapExceededError', code: string, message: string }
      | { __typename: 'ReferralCapReachedError', code: string, message: string }
      | { __typename: 'ReferralClaimWindowClosedError', code: string, message: string }
      | { __typename: 'ReferralLoopError', code: string, message: string }
      | { __typename: 'ReopenWindowClosedError', code: string, message: string }
      | { __typename: 'RewardNotAvailableError', code: string, message: string }
      | { __typename: 'SamePhoneReferralError', code: string, message: string }
      | { __typename: 'SelfReferralError', code: string, message: string }
      | { __typename: 'SurveyAlreadyAnsweredError', code: string, message: string }
      | { __typename: 'SurveyInvitationExpiredError', code: string, message: string }
      | { __typename: 'SurveyInvitationNotOpenError', code: string, message: string }
      | { __typename: 'TierInUseError', code: string, message: string }
      | { __typename: 'ValidationError', code: string, message: string }
    > } };

export type CompleteMutationVariables = Exact<{
  input: CompleteVisitInput;
}>;


export type CompleteMutation = { completeVisit: { replayed: boolean | null, visit: { id: string, status: VisitStatus, total: { amount: string, currencyCode: string }, lineItems: Array<{ description: string, amount: { amount: string } }> } | null, userErrors: Array<
      | { __typename: 'ComplaintTransitionError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ConflictError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ContraindicationWarningError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ExistingCustomerReferralError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ForbiddenError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'InsufficientPointsError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'InvalidSurveyAnswerError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'NotFoundError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'OutOfStockError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'PackageExhaustedError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'PackageExpiredError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'PackageFrozenError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'RedemptionCapExceededError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ReferralCapReachedError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ReferralClaimWindowClosedError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ReferralLoopError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ReopenWindowClosedError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'RewardNotAvailableError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'SamePhoneReferralError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'SelfReferralError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'SurveyAlreadyAnsweredError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'SurveyInvitationExpiredError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'SurveyInvitationNotOpenError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'TierInUseError', code: string, message: string, field: Array<string> | null }
      | { __typename: 'ValidationError', code: string, message: string, field: Array<string> | null }
    > } };


export const FindCustomerDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"FindCustomer"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"search"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"String"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"customers"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"first"},"value":{"kind":"IntValue","value":"1"}},{"kind":"Argument","name":{"kind":"Name","value":"filter"},"value":{"kind":"ObjectValue","fields":[{"kind":"ObjectField","name":{"kind":"Name","value":"search"},"value":{"kind":"Variable","name":{"kind":"Name","value":"search"}}}]}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"edges"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"node"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"phone"}},{"kind":"Field","name":{"kind":"Name","value":"membership"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"memberNumber"}}]}},{"kind":"Field","name":{"kind":"Name","value":"points"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"balance"}}]}}]}}]}}]}},{"kind":"Field","name":{"kind":"Name","value":"viewer"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"storeIds"}}]}},{"kind":"Field","name":{"kind":"Name","value":"services"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"category"},"value":{"kind":"EnumValue","value":"FACIAL"}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"price"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"amount"}}]}}]}}]}}]} as unknown as DocumentNode<FindCustomerQuery, FindCustomerQueryVariables>;
export const BookWalkInDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"BookWalkIn"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"BookVisitInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"bookVisit"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"visit"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}}]}},{"kind":"Field","name":{"kind":"Name","value":"userErrors"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}},{"kind":"Field","name":{"kind":"Name","value":"field"}}]}}]}}]}}]} as unknown as DocumentNode<BookWalkInMutation, BookWalkInMutationVariables>;
export const CheckInDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"CheckIn"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"CheckInVisitInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"checkInVisit"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"visit"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"checkedInAt"}}]}},{"kind":"Field","name":{"kind":"Name","value":"replayed"}},{"kind":"Field","name":{"kind":"Name","value":"userErrors"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}}]}}]}}]} as unknown as DocumentNode<CheckInMutation, CheckInMutationVariables>;
export const CompleteDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"Complete"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"CompleteVisitInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"completeVisit"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"visit"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"total"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"amount"}},{"kind":"Field","name":{"kind":"Name","value":"currencyCode"}}]}},{"kind":"Field","name":{"kind":"Name","value":"lineItems"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"description"}},{"kind":"Field","name":{"kind":"Name","value":"amount"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"amount"}}]}}]}}]}},{"kind":"Field","name":{"kind":"Name","value":"replayed"}},{"kind":"Field","name":{"kind":"Name","value":"userErrors"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}},{"kind":"Field","name":{"kind":"Name","value":"field"}}]}}]}}]}}]} as unknown as DocumentNode<CompleteMutation, CompleteMutationVariables>;