/**
 * Shared arrangements and checks for the surveys plugin's tests (not a test file itself). Everything talks to the
 * real test database: visits are completed through the API, handlers run as the worker runs them, and checks read
 * the tables through the owner client (or a raw connection as the application role).
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { expect } from 'vitest';
import type { Principal } from '../../core/auth/principal.ts';
import { inTransaction, type DomainEvent, type Emit } from '../../core/events/outbox.ts';
import type { Tx } from '../../core/db/clients.ts';
import { fingerprint as tenantFingerprint } from '../../core/security/support.ts';
import { gid, recordOutboxEvent, startTestPlatform, type TestPlatform } from '../../core/testing/platform.ts';
import type { SurveysConfig } from './config.ts';
import { DEFAULT_POST_VISIT_QUESTIONS } from './questions.ts';

export { gid };
export type As = Parameters<TestPlatform['gql']>[2];

export interface SurveysWorld {
  api: TestPlatform;
  config: SurveysConfig;
  chainId: string;
  otherChainId: string;
  stores: { SH: string; BJ: string; CD: string; UR: string };
  otherStore: string;
  /** The store manager of each chain store (who new cases are assigned to). */
  managers: { SH: string; BJ: string };
  /** An active service of the chain, for visits. */
  serviceId: string;
  owner: pg.Client;
}

/** A test platform with the surveys plugin (and `plugins` besides), the default post-visit survey active. */
export async function startSurveysWorld(config: Record<string, unknown> = {}, plugins: string[] = []): Promise<SurveysWorld> {
  const api = await startTestPlatform({ plugins: ['surveys', ...plugins], pluginConfig: { surveys: config } });
  const chainId = api.principals.OWNER!.orgId;
  const otherChainId = api.principals.OTHER_CHAIN_OWNER!.orgId;
  const store = async (code: string) => (await api.owner.store.findFirstOrThrow({ where: { orgId: chainId, code } })).id;
  const stores = { SH: await store('SH-01'), BJ: await store('BJ-01'), CD: await store('CD-01'), UR: await store('UR-01') };
  const manager = async (storeId: string) =>
    (await api.owner.staff.findFirstOrThrow({ where: { role: 'STORE_MANAGER', active: true, stores: { some: { storeId } } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).id;
  const owner = new pg.Client({ connectionString: api.database.url });
  await owner.connect();
  const world: SurveysWorld = {
    api,
    config: api.running.platform.plugins.find((p) => p.definition.name === 'surveys')!.config as SurveysConfig,
    chainId,
    otherChainId,
    stores,
    otherStore: (await api.owner.store.findFirstOrThrow({ where: { orgId: otherChainId } })).id,
    managers: { SH: await manager(stores.SH), BJ: await manager(stores.BJ) },
    serviceId: (await api.owner.service.findFirstOrThrow({ where: { orgId: chainId, active: true, category: 'FACIAL' }, orderBy: { name: 'asc' } })).id,
    owner,
  };
  for (const orgId of [chainId, otherChainId]) await createPostVisitSurvey(world, orgId);
  return world;
}

export async function closeWorld(world: SurveysWorld | undefined) {
  await world?.owner.end();
  await world?.api.close();
}

/** The default post-visit survey, active, written as the owner would through createSurveyTemplate. */
export async function createPostVisitSurvey(world: SurveysWorld, orgId: string): Promise<{ templateId: string; versionId: string }> {
  const template = await world.api.owner.surveyTemplate.create({
    data: {
      orgId,
      key: `post-visit-${randomUUID().slice(0, 8)}`,
      name: 'Post-visit',
      purpose: 'POST_VISIT',
      active: true,
      createdBy: 'test:arrange',
      versions: { create: { orgId, version: 1, questions: DEFAULT_POST_VISIT_QUESTIONS as object[], createdBy: 'test:arrange' } },
    },
    include: { versions: true },
  });
  return { templateId: template.id, versionId: template.versions[0]!.id };
}

// --- Arrangements --------------------------------------------------------------------------------------------

let phoneSequence = 0;

/** A fresh customer of the chain (or `orgId`), with a home store. */
export async function newCustomer(world: SurveysWorld, options: { orgId?: string; storeId?: string } = {}): Promise<string> {
  const orgId = options.orgId ?? world.chainId;
  phoneSequence += 1;
  const suffix = `${process.pid % 1000}`.padStart(3, '0') + String(phoneSequence).padStart(5, '0');
  const customer = await world.api.owner.customer.create({
    data: { orgId, name: `Survey test ${randomUUID().slice(0, 8)}`, phone: `+86197${suffix}`, homeStoreId: options.storeId ?? world.stores.SH },
  });
  await world.api.owner.customerFact.create({ data: { customerId: customer.id, orgId } });
  return customer.id;
}

export const customerPrincipal = (world: SurveysWorld, customerId: string, orgId = world.chainId): Principal => ({ kind: 'CUSTOMER', orgId, customerId });

/** A staff principal bound to one store (a front desk by default). */
export function staffAt(world: SurveysWorld, storeId: string, role: 'FRONT_DESK' | 'STORE_MANAGER' | 'BEAUTICIAN' | 'CONSULTANT' = 'FRONT_DESK', staffId: string = randomUUID()): Principal {
  return { kind: 'STAFF', orgId: world.chainId, staffId, role, storeIds: [storeId] };
}

const VISIT_MUTATION = (name: string) =>
  `mutation($input: ${name[0]!.toUpperCase()}${name.slice(1)}Input!) { ${name}(input: $input) { visit { id status completedAt } userErrors { __typename code message field } } }`;

/**
 * Books, checks in and completes a visit through the API (as the chain owner, or `as`), with the given services
 * performed by `staffId` (on the line items, so no diary can clash); returns its uuid and completion time. The visit.completed job is left queued.
 */
export async function completeVisit(
  world: SurveysWorld,
  customerId: string,
  options: { storeId?: string; staffId?: string; serviceIds?: string[]; as?: As } = {},
): Promise<{ visitId: string; completedAt: Date }> {
  const as = options.as ?? 'OWNER';
  const serviceIds = options.serviceIds ?? [world.serviceId];
  const booked = await call(world.api, VISIT_MUTATION('bookVisit'), {
    input: {
      customerId: gid('Customer', customerId),
      storeId: gid('Store', options.storeId ?? world.stores.SH),
      serviceIds: serviceIds.map((id) => gid('Service', id)),
      startsAt: new Date(Date.now() - 60_000).toISOString(),
    },
  }, as);
  expect(booked.userErrors).toEqual([]);
  const visitId = booked.visit.id as string;
  expect((await call(world.api, VISIT_MUTATION('checkInVisit'), { input: { visitId, idempotencyKey: key('checkin') } }, as)).userErrors).toEqual([]);
  const completed = await call(world.api, VISIT_MUTATION('completeVisit'), {
    input: {
      visitId,
      idempotencyKey: key('complete'),
      lineItems: serviceIds.map((id) => ({ serviceId: gid('Service', id), ...(options.staffId ? { staffId: gid('Staff', options.staffId) } : {}) })),
    },
  }, as);
  expect(completed.userErrors).toEqual([]);
  return { visitId: uuidOf(visitId), completedAt: new Date(completed.visit.completedAt) };
}

/** A completed visit with its invitation created (jobs drained) and opened now (availableAt moved to the past). */
export async function openInvitation(world: SurveysWorld, customerId: string, options: Parameters<typeof completeVisit>[2] = {}) {
  const visit = await completeVisit(world, customerId, options);
  await world.api.drainJobs();
  const invitation = await world.api.owner.surveyInvitation.findUniqueOrThrow({ where: { visitId: visit.visitId } });
  const opened = await world.api.owner.surveyInvitation.update({ where: { id: invitation.id }, data: { availableAt: new Date(Date.now() - 60_000) } });
  return { ...visit, invitationId: opened.id, invitation: opened };
}

/** Records a domain event as a change would (its job is queued by the outbox trigger). */
export function recordDomainEvent(
  world: SurveysWorld,
  event: { type: string; aggregateType: string; aggregateId: string; payload: Record<string, unknown>; orgId?: string },
): Promise<DomainEvent> {
  return recordOutboxEvent(world.api, event.orgId ?? world.chainId, event);
}

/** Plugin work in one transaction as the application role, the way handlers and mutations do it. */
export function asApp<T>(world: SurveysWorld, work: (tx: Tx, emit: Emit) => Promise<T>, orgId = world.chainId, actor = 'test:arrange'): Promise<T> {
  const platform = world.api.running.platform;
  return inTransaction(platform, platform.dbs.forOrg(orgId), orgId, actor, work);
}

/** A raw connection as the application role, under one organization's row-level security. */
export async function appRoleClient(world: SurveysWorld, orgId = world.chainId): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: world.api.database.url });
  await client.connect();
  await client.query('SET ROLE crm_app');
  await client.query("SELECT set_config('app.org_id', $1, false)", [orgId]);
  return client;
}

/** Every tenant row hashed: equal fingerprints mean nothing changed (no row, no event, no idempotency key). */
export const fingerprint = (world: SurveysWorld) => tenantFingerprint(world.owner);

// --- GraphQL -------------------------------------------------------------------------------------------------

export const ERRORS = `userErrors { __typename code message field
  ... on InvalidSurveyAnswerError { questionKey }
  ... on SurveyAlreadyAnsweredError { respondedAt }
  ... on SurveyInvitationExpiredError { expiredAt }
  ... on SurveyInvitationNotOpenError { availableAt }
  ... on ComplaintTransitionError { from to }
  ... on ReopenWindowClosedError { reopenableUntil } }`;

export const SUBMIT = `mutation($input: SubmitSurveyResponseInput!) {
  submitSurveyResponse(input: $input) { response { id npsScore csatScore channel answers { questionKey score choices text } } complaint { id status source } ${ERRORS} } }`;
export const SUBMIT_BY_TOKEN = `mutation($input: SubmitSurveyResponseByTokenInput!) {
  submitSurveyResponseByToken(input: $input) { form { kind storeName expiresAt questions { key kind required options { value } } } submission { submittedAt npsScore csatScore } ${ERRORS} } }`;
export const ISSUE_LINK = `mutation($input: IssueSurveyInvitationLinkInput!) {
  issueSurveyInvitationLink(input: $input) { token link invitation { id status linkIssuedAt } ${ERRORS} } }`;
export const COMPLAINT_FIELDS = `id number status category severity source subject assignee { id } store { id } customer { id } visit { id }
  openedAt firstResponseDueAt resolutionDueAt firstRespondedAt resolvedAt closedAt reopenCount reopenableUntil firstResponseBreached resolutionBreached
  timeline { kind fromStatus toStatus note internal actor }`;
export const FILE = `mutation($input: FileComplaintInput!) { fileComplaint(input: $input) { complaint { ${COMPLAINT_FIELDS} } ${ERRORS} } }`;
export const UPDATE_STATUS = `mutation($input: UpdateComplaintStatusInput!) { updateComplaintStatus(input: $input) { complaint { ${COMPLAINT_FIELDS} } ${ERRORS} } }`;
export const REOPEN = `mutation($input: ReopenComplaintInput!) { reopenComplaint(input: $input) { complaint { ${COMPLAINT_FIELDS} } ${ERRORS} } }`;
export const ASSIGN = `mutation($input: AssignComplaintInput!) { assignComplaint(input: $input) { complaint { id assignee { id } timeline { kind internal } } ${ERRORS} } }`;
export const COMMENT = `mutation($input: CommentOnComplaintInput!) { commentOnComplaint(input: $input) { complaint { id timeline { kind note internal } } ${ERRORS} } }`;

/** The answers the default post-visit survey needs, with these scores. */
export const scores = (nps: number, csat: number, extra: Record<string, unknown>[] = []) => [
  { questionKey: 'recommend', score: nps },
  { questionKey: 'satisfaction', score: csat },
  ...extra,
];

/** Runs a document and returns its single root field; GraphQL-level errors fail the test. */
export async function call(api: TestPlatform, document: string, variables: Record<string, unknown> = {}, as: As = 'OWNER') {
  const response = await api.gql(document, variables, as);
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return Object.values(response.data!)[0] as any;
}

/** Sends a mutation that must fail with typed user errors, and checks that no row of any tenant table changed. */
export async function expectRejected(
  world: SurveysWorld,
  document: string,
  input: Record<string, unknown>,
  as: As,
  expected: { __typename: string; code?: string; [field: string]: unknown },
) {
  const before = await fingerprint(world);
  const payload = await call(world.api, document, { input }, as);
  expect(payload.userErrors.length, JSON.stringify(payload.userErrors)).toBeGreaterThanOrEqual(1);
  expect(payload.userErrors[0]).toMatchObject(expected);
  for (const [field, value] of Object.entries(payload)) if (field !== 'userErrors') expect(value, field).toBeNull();
  expect(await fingerprint(world)).toEqual(before);
  return payload.userErrors;
}

export const uuidOf = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;
export const key = (label = 'k') => `${label}-${randomUUID()}`;
