/**
 * Invitations and responses: one invitation per completed visit however often the event arrives; answering with
 * the customer's token or a one-time link (the only thing an anonymous caller can reach); every way an answer can
 * be refused gives a typed error and stores nothing; a low score opens exactly one case; survey.completed reaches
 * the points plugin; templates are versioned; periodic surveys invite once per period.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dispatchEvent, runHandler } from '../../core/events/worker.ts';
import type { EventHandler } from '../../core/plugin/contract.ts';
import { hashLinkToken, invitePeriodic, periodKey } from './invitations.ts';
import surveysPlugin from './plugin.ts';
import {
  appRoleClient,
  call,
  closeWorld,
  completeVisit,
  customerPrincipal,
  expectRejected,
  fingerprint,
  gid,
  ISSUE_LINK,
  key,
  newCustomer,
  openInvitation,
  recordDomainEvent,
  scores,
  staffAt,
  startSurveysWorld,
  SUBMIT,
  SUBMIT_BY_TOKEN,
  type SurveysWorld,
} from './testing.ts';

let world: SurveysWorld;
beforeAll(async () => {
  // With the points plugin on: survey.completed earns interaction points (and nothing here imports points).
  world = await startSurveysWorld({}, ['points']);
});
afterAll(() => closeWorld(world));

const platform = () => world.api.running.platform;
const handler = (type: string) => surveysPlugin.handlers![type] as EventHandler<unknown>;
const invitationsOf = (visitId: string) => world.api.owner.surveyInvitation.findMany({ where: { visitId } });
const eventsOf = (type: string, aggregateId: string) => world.api.owner.domainEvent.findMany({ where: { type, aggregateId } });

describe('a completed visit produces exactly one invitation', () => {
  test('through the API: one invitation, opening after the configured delay, announced once', async () => {
    const customerId = await newCustomer(world);
    const { visitId, completedAt } = await completeVisit(world, customerId);
    expect(await invitationsOf(visitId)).toHaveLength(0);
    await world.api.drainJobs();
    const [invitation, ...more] = await invitationsOf(visitId);
    expect(more).toEqual([]);
    const { delayMinutes, validForHours } = world.config.postVisit;
    expect(invitation).toMatchObject({ customerId, storeId: world.stores.SH, kind: 'POST_VISIT', respondedAt: null, tokenHash: null });
    expect(invitation!.availableAt.getTime()).toBe(completedAt.getTime() + delayMinutes * 60_000);
    expect(invitation!.expiresAt.getTime()).toBe(invitation!.availableAt.getTime() + validForHours * 3_600_000);
    const invited = await eventsOf('survey.invited', invitation!.id);
    expect(invited).toHaveLength(1);
    expect(invited[0]).toMatchObject({ streamKey: customerId, payload: { invitationId: invitation!.id, customerId, visitId } });
  });

  test('the same event delivered again, a second event for the same visit, and both at once: still one', async () => {
    const customerId = await newCustomer(world);
    const { visitId } = await completeVisit(world, customerId);
    const [event] = await world.api.owner.domainEvent.findMany({ where: { type: 'visit.completed', aggregateId: visitId } });
    const delivered = { ...event!, id: event!.id.toString(), occurredAt: event!.occurredAt.toISOString() } as never;
    expect(await runHandler(platform(), 'surveys', world.config, handler('visit.completed'), delivered)).toBe(true);
    expect(await runHandler(platform(), 'surveys', world.config, handler('visit.completed'), delivered)).toBe(false);
    // A second announcement of the visit (another event id): the handler runs, and the unique visit_id holds.
    const again = await recordDomainEvent(world, { type: 'visit.completed', aggregateType: 'Visit', aggregateId: visitId, payload: event!.payload as never });
    expect(await runHandler(platform(), 'surveys', world.config, handler('visit.completed'), again)).toBe(true);
    await world.api.drainJobs();
    expect(await invitationsOf(visitId)).toHaveLength(1);
    expect(await eventsOf('survey.invited', (await invitationsOf(visitId))[0]!.id)).toHaveLength(1);

    // Two announcements of another visit handled at the same moment.
    const other = await completeVisit(world, customerId);
    const [first] = await world.api.owner.domainEvent.findMany({ where: { type: 'visit.completed', aggregateId: other.visitId } });
    const second = await recordDomainEvent(world, { type: 'visit.completed', aggregateType: 'Visit', aggregateId: other.visitId, payload: first!.payload as never });
    const results = await Promise.allSettled([dispatchEvent(platform(), first!.id.toString()), dispatchEvent(platform(), second.id), dispatchEvent(platform(), first!.id.toString())]);
    for (const result of results) if (result.status === 'rejected') expect(String(result.reason)).toMatch(/unique|duplicate|P2002|23505/i);
    await world.api.drainJobs();
    const invitations = await invitationsOf(other.visitId);
    expect(invitations).toHaveLength(1);
    expect(await eventsOf('survey.invited', invitations[0]!.id)).toHaveLength(1);
  });

  test('a refund withdraws an unanswered invitation; it then refuses answers', async () => {
    const customerId = await newCustomer(world);
    const { invitationId, visitId } = await openInvitation(world, customerId);
    const refunded = await call(world.api, `mutation($input: RefundVisitInput!) { refundVisit(input: $input) { userErrors { code } } }`, {
      input: { visitId: gid('Visit', visitId), idempotencyKey: key('refund'), reason: 'Customer unhappy' },
    });
    expect(refunded.userErrors).toEqual([]);
    await world.api.drainJobs();
    expect((await world.api.owner.surveyInvitation.findUniqueOrThrow({ where: { id: invitationId } })).withdrawnAt).not.toBeNull();
    await expectRejected(world, SUBMIT, { invitationId: gid('SurveyInvitation', invitationId), answers: scores(9, 5) }, customerPrincipal(world, customerId), {
      __typename: 'SurveyInvitationNotOpenError',
      code: 'WITHDRAWN',
    });
  });
});

describe('answering with the customer\'s token', () => {
  let invalidTarget: { customerId: string; invitationId: string } | undefined;
  test('stores the response and its scores, emits survey.completed (points award it), and shows it back', async () => {
    const customerId = await newCustomer(world);
    await world.api.owner.membership.create({ data: { orgId: world.chainId, customerId, homeStoreId: world.stores.SH, memberNumber: `S${randomUUID().slice(0, 10)}`, joinedOn: new Date() } });
    const { invitationId, visitId } = await openInvitation(world, customerId);
    const as = customerPrincipal(world, customerId);
    const listed = await call(world.api, `{ viewer { customer { openSurveyInvitations { id status questions { key kind required } } } } }`, {}, as);
    expect(listed.customer.openSurveyInvitations).toEqual([expect.objectContaining({ id: gid('SurveyInvitation', invitationId), status: 'OPEN' })]);
    expect(listed.customer.openSurveyInvitations[0].questions.map((q: { key: string }) => q.key)).toEqual(['recommend', 'satisfaction', 'highlights', 'rebook', 'comment']);

    const payload = await call(world.api, SUBMIT, {
      input: {
        invitationId: gid('SurveyInvitation', invitationId),
        answers: scores(10, 5, [{ questionKey: 'highlights', choices: ['value', 'technique'] }, { questionKey: 'comment', text: '  Wonderful  ' }]),
      },
    }, as);
    expect(payload.userErrors).toEqual([]);
    expect(payload.complaint).toBeNull();
    expect(payload.response).toMatchObject({ npsScore: 10, csatScore: 5, channel: 'CUSTOMER_APP' });
    // Normalized: choices in the question's order, text trimmed.
    expect(payload.response.answers).toEqual([
      { questionKey: 'recommend', score: 10, choices: null, text: null },
      { questionKey: 'satisfaction', score: 5, choices: null, text: null },
      { questionKey: 'highlights', score: null, choices: ['technique', 'value'], text: null },
      { questionKey: 'comment', score: null, choices: null, text: 'Wonderful' },
    ]);
    const responseId = (await world.api.owner.surveyResponse.findUniqueOrThrow({ where: { invitationId } })).id;
    const [completed, ...others] = await eventsOf('survey.completed', responseId);
    expect(others).toEqual([]);
    expect(completed).toMatchObject({
      aggregateType: 'SurveyResponse',
      streamKey: customerId,
      payload: { customerId, storeId: world.stores.SH, visitId, responseId, invitationId },
    });
    expect((await world.api.owner.surveyInvitation.findUniqueOrThrow({ where: { id: invitationId } })).respondedAt).not.toBeNull();

    await world.api.drainJobs();
    const earned = await world.api.owner.pointsEntry.findMany({ where: { customerId, source: 'SURVEY' } });
    expect(earned.map((e) => [e.amount, e.sourceRef])).toEqual([[50, responseId]]);
    const status = await call(world.api, `query($id: ID!) { node(id: $id) { ... on SurveyInvitation { status response { npsScore } } } }`, { id: gid('SurveyInvitation', invitationId) }, as);
    expect(status).toEqual({ status: 'ANSWERED', response: { npsScore: 10 } });
  });

  test.each([
    ['an unknown question', scores(9, 5, [{ questionKey: 'mood', text: 'fine' }]), 'UNKNOWN_QUESTION', ['input', 'answers', '2', 'questionKey']],
    ['a required question left out', [{ questionKey: 'recommend', score: 9 }], 'MISSING_ANSWER', ['input', 'answers']],
    ['an NPS of 11', scores(11, 5), 'SCORE_OUT_OF_RANGE', ['input', 'answers', '0', 'score']],
    ['an NPS below 0', scores(-1, 5), 'SCORE_OUT_OF_RANGE', ['input', 'answers', '0', 'score']],
    ['a CSAT of 0', scores(9, 0), 'SCORE_OUT_OF_RANGE', ['input', 'answers', '1', 'score']],
    ['text for a score', [{ questionKey: 'recommend', text: '9' }, { questionKey: 'satisfaction', score: 4 }], 'WRONG_ANSWER_TYPE', ['input', 'answers', '0']],
    ['a choice that is not an option', scores(9, 5, [{ questionKey: 'rebook', choices: ['never'] }]), 'UNKNOWN_CHOICE', ['input', 'answers', '2', 'choices']],
    ['two choices for a single choice', scores(9, 5, [{ questionKey: 'rebook', choices: ['yes', 'maybe'] }]), 'TOO_MANY_CHOICES', ['input', 'answers', '2', 'choices']],
    ['no choice at all', scores(9, 5, [{ questionKey: 'highlights', choices: [] }]), 'MISSING_ANSWER', ['input', 'answers', '2', 'choices']],
    ['an answer given twice', [...scores(9, 5), { questionKey: 'recommend', score: 8 }], 'DUPLICATE_ANSWER', ['input', 'answers', '2']],
    ['text over the limit', scores(9, 5, [{ questionKey: 'comment', text: 'x'.repeat(1001) }]), 'TEXT_TOO_LONG', ['input', 'answers', '2', 'text']],
    ['empty text', scores(9, 5, [{ questionKey: 'comment', text: '   ' }]), 'EMPTY_TEXT', ['input', 'answers', '2', 'text']],
  ])('%s: InvalidSurveyAnswerError, nothing stored', async (_label, answers, code, field) => {
    // One invitation serves every case: a refused answer leaves it as it was.
    if (!invalidTarget) {
      const owner = await newCustomer(world);
      invalidTarget = { customerId: owner, invitationId: (await openInvitation(world, owner)).invitationId };
    }
    const { customerId, invitationId } = invalidTarget;
    const errors = await expectRejected(world, SUBMIT, { invitationId: gid('SurveyInvitation', invitationId), answers }, customerPrincipal(world, customerId), {
      __typename: 'InvalidSurveyAnswerError',
      code,
      field,
    });
    expect(errors).toHaveLength(1);
  });

  test('several problems at once are all reported', async () => {
    const customerId = await newCustomer(world);
    const { invitationId } = await openInvitation(world, customerId);
    const errors = await expectRejected(world, SUBMIT, { invitationId: gid('SurveyInvitation', invitationId), answers: [{ questionKey: 'recommend', score: 12 }, { questionKey: 'nope', score: 1 }] }, customerPrincipal(world, customerId), {
      __typename: 'InvalidSurveyAnswerError',
      code: 'SCORE_OUT_OF_RANGE',
    });
    expect(errors.map((e: { code: string; questionKey: string }) => [e.code, e.questionKey])).toEqual([
      ['SCORE_OUT_OF_RANGE', 'recommend'],
      ['UNKNOWN_QUESTION', 'nope'],
      ['MISSING_ANSWER', 'satisfaction'],
    ]);
  });

  test('a second response, an expired invitation, one not yet open: typed errors, nothing stored', async () => {
    const customerId = await newCustomer(world);
    const as = customerPrincipal(world, customerId);
    const { invitationId } = await openInvitation(world, customerId);
    const input = { invitationId: gid('SurveyInvitation', invitationId), answers: scores(9, 4) };
    expect((await call(world.api, SUBMIT, { input }, as)).userErrors).toEqual([]);
    const [again] = await expectRejected(world, SUBMIT, { ...input, answers: scores(3, 1) }, as, { __typename: 'SurveyAlreadyAnsweredError', code: 'ALREADY_ANSWERED' });
    expect(new Date(again.respondedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(await world.api.owner.surveyResponse.count({ where: { invitationId } })).toBe(1);

    const expired = await openInvitation(world, customerId);
    const expiredAt = new Date(Date.now() - 1_000);
    await world.api.owner.surveyInvitation.update({ where: { id: expired.invitationId }, data: { availableAt: new Date(Date.now() - 3_600_000), expiresAt: expiredAt } });
    const [error] = await expectRejected(world, SUBMIT, { invitationId: gid('SurveyInvitation', expired.invitationId), answers: scores(9, 4) }, as, {
      __typename: 'SurveyInvitationExpiredError',
      code: 'INVITATION_EXPIRED',
    });
    expect(error.expiredAt).toBe(expiredAt.toISOString());

    const scheduled = await completeVisit(world, customerId);
    await world.api.drainJobs();
    const pending = (await invitationsOf(scheduled.visitId))[0]!;
    expect(pending.availableAt.getTime()).toBeGreaterThan(Date.now());
    await expectRejected(world, SUBMIT, { invitationId: gid('SurveyInvitation', pending.id), answers: scores(9, 4) }, as, {
      __typename: 'SurveyInvitationNotOpenError',
      code: 'NOT_YET_OPEN',
      availableAt: pending.availableAt.toISOString(),
    });
  });

  test('another customer\'s invitation, another chain\'s, a random id: the same NotFoundError, nothing stored', async () => {
    const owner = await newCustomer(world);
    const { invitationId } = await openInvitation(world, owner);
    const intruder = customerPrincipal(world, await newCustomer(world));
    const notFound = { __typename: 'NotFoundError', code: 'NOT_FOUND', message: 'Survey invitation not found', field: ['input', 'invitationId'] };
    await expectRejected(world, SUBMIT, { invitationId: gid('SurveyInvitation', invitationId), answers: scores(0, 1) }, intruder, notFound);
    await expectRejected(world, SUBMIT, { invitationId: gid('SurveyInvitation', randomUUID()), answers: scores(0, 1) }, intruder, notFound);
    await expectRejected(world, SUBMIT, { invitationId: gid('Customer', owner), answers: scores(0, 1) }, intruder, notFound);
    // A customer of the other chain, naming this chain's invitation.
    const foreign = customerPrincipal(world, await newCustomer(world, { orgId: world.otherChainId, storeId: world.otherStore }), world.otherChainId);
    await expectRejected(world, SUBMIT, { invitationId: gid('SurveyInvitation', invitationId), answers: scores(0, 1) }, foreign, notFound);
    // Staff do not answer for a customer.
    await expectRejected(world, SUBMIT, { invitationId: gid('SurveyInvitation', invitationId), answers: scores(0, 1) }, 'FRONT_DESK', { __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    // …and the owner's invitation is untouched and still answerable.
    const as = customerPrincipal(world, owner);
    expect((await call(world.api, SUBMIT, { input: { invitationId: gid('SurveyInvitation', invitationId), answers: scores(9, 5) } }, as)).userErrors).toEqual([]);
  });
});

describe('a low score opens exactly one complaint case', () => {
  test('NPS at the threshold opens a SURVEY case assigned to the store manager; above it, none', async () => {
    const customerId = await newCustomer(world);
    const as = customerPrincipal(world, customerId);
    const high = await openInvitation(world, customerId);
    const seven = await call(world.api, SUBMIT, { input: { invitationId: gid('SurveyInvitation', high.invitationId), answers: scores(7, 3) } }, as);
    expect(seven.complaint).toBeNull();
    expect(await world.api.owner.complaint.count({ where: { customerId } })).toBe(0);

    const low = await openInvitation(world, customerId);
    const six = await call(world.api, SUBMIT, { input: { invitationId: gid('SurveyInvitation', low.invitationId), answers: scores(6, 3, [{ questionKey: 'comment', text: 'Rushed' }]) } }, as);
    expect(six.userErrors).toEqual([]);
    expect(six.complaint).toMatchObject({ status: 'OPEN', source: 'SURVEY' });
    const cases = await world.api.owner.complaint.findMany({ where: { customerId } });
    expect(cases).toHaveLength(1);
    expect(cases[0]).toMatchObject({
      storeId: world.stores.SH,
      visitId: low.visitId,
      assigneeId: world.managers.SH,
      category: 'SERVICE_QUALITY',
      severity: 'MEDIUM',
      description: 'Rushed',
      surveyResponseId: (await world.api.owner.surveyResponse.findUniqueOrThrow({ where: { invitationId: low.invitationId } })).id,
    });
    expect(await eventsOf('complaint.opened', cases[0]!.id)).toHaveLength(1);

    // CSAT alone can open one too.
    const csat = await openInvitation(world, customerId);
    expect((await call(world.api, SUBMIT, { input: { invitationId: gid('SurveyInvitation', csat.invitationId), answers: scores(8, 2) } }, as)).complaint).not.toBeNull();
    expect(await world.api.owner.complaint.count({ where: { customerId } })).toBe(2);
  });

  test('the same invitation answered twice at once (app and link): one response, one case, one ALREADY_ANSWERED', async () => {
    const customerId = await newCustomer(world);
    const { invitationId } = await openInvitation(world, customerId);
    const { token } = await call(world.api, ISSUE_LINK, { input: { invitationId: gid('SurveyInvitation', invitationId) } }, 'FRONT_DESK');
    const results = await Promise.all([
      world.api.gql(SUBMIT, { input: { invitationId: gid('SurveyInvitation', invitationId), answers: scores(2, 1) } }, customerPrincipal(world, customerId)),
      world.api.gql(SUBMIT_BY_TOKEN, { input: { token, answers: scores(1, 1) } }, null),
      world.api.gql(SUBMIT_BY_TOKEN, { input: { token, answers: scores(0, 1) } }, null),
    ]);
    const errors = results.map((r) => Object.values(r.data!)[0] as { userErrors: { code: string }[] }).map((p) => p.userErrors.map((e) => e.code));
    expect(errors.filter((e) => e.length === 0)).toHaveLength(1);
    expect(errors.filter((e) => e.join() === 'ALREADY_ANSWERED')).toHaveLength(2);
    expect(await world.api.owner.surveyResponse.count({ where: { invitationId } })).toBe(1);
    expect(await world.api.owner.complaint.count({ where: { customerId } })).toBe(1);
  });

  test('the database refuses a second case for one response, and a second response for one invitation', async () => {
    const customerId = await newCustomer(world);
    const { invitationId } = await openInvitation(world, customerId);
    await call(world.api, SUBMIT, { input: { invitationId: gid('SurveyInvitation', invitationId), answers: scores(0, 1) } }, customerPrincipal(world, customerId));
    const response = await world.api.owner.surveyResponse.findUniqueOrThrow({ where: { invitationId } });
    const app = await appRoleClient(world);
    try {
      const failure = async (sql: string, params: unknown[]) => {
        try {
          await app.query(sql, params);
          return 'stored';
        } catch (error) {
          return (error as { code: string }).code;
        }
      };
      expect(await failure(
        `INSERT INTO complaint (org_id, number, store_id, category, severity, source, subject, survey_response_id, opened_at, first_response_due_at, resolution_due_at, created_by)
         VALUES ($1, 999999, $2, 'OTHER', 'LOW', 'SURVEY', 'Again', $3, now(), now(), now(), 'test')`,
        [world.chainId, world.stores.SH, response.id],
      )).toBe('23505');
      expect(await failure(
        `INSERT INTO survey_response (org_id, invitation_id, customer_id, store_id, template_version_id, channel, answers)
         VALUES ($1, $2, $3, $4, $5, 'CUSTOMER_APP', '[]')`,
        [world.chainId, invitationId, customerId, world.stores.SH, response.templateVersionId],
      )).toBe('23505');
      // Responses are history: the application role cannot rewrite them.
      expect(await failure(`UPDATE survey_response SET nps_score = 10 WHERE id = $1`, [response.id])).toBe('42501');
      expect(await failure(`DELETE FROM survey_response WHERE id = $1`, [response.id])).toBe('42501');
    } finally {
      await app.end();
    }
  });
});

describe('the one-time invitation link', () => {
  test('staff issue it (only its hash is kept); anyone with it sees the form and answers once, without a JWT', async () => {
    const customerId = await newCustomer(world);
    const { invitationId } = await openInvitation(world, customerId);
    const issued = await call(world.api, ISSUE_LINK, { input: { invitationId: gid('SurveyInvitation', invitationId) } }, 'FRONT_DESK');
    expect(issued.userErrors).toEqual([]);
    const token = issued.token as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = await world.api.owner.surveyInvitation.findUniqueOrThrow({ where: { id: invitationId } });
    expect(stored.tokenHash).toBe(hashLinkToken(token));
    // The token itself is nowhere in the database.
    const [{ hits }] = await world.api.owner.$queryRawUnsafe<{ hits: number }[]>(
      `SELECT (SELECT count(*) FROM survey_invitation x WHERE x::text LIKE '%' || $1 || '%') + (SELECT count(*) FROM domain_event x WHERE x::text LIKE '%' || $1 || '%')::int AS hits`,
      token,
    );
    expect(Number(hits)).toBe(0);

    const before = await fingerprint(world);
    const form = await call(world.api, SUBMIT_BY_TOKEN, { input: { token } }, null);
    expect(form.userErrors).toEqual([]);
    const store = await world.api.owner.store.findUniqueOrThrow({ where: { id: world.stores.SH } });
    expect(form.form).toMatchObject({ kind: 'POST_VISIT', storeName: store.name, expiresAt: stored.expiresAt.toISOString() });
    expect(form.form.questions.map((q: { key: string }) => q.key)).toEqual(['recommend', 'satisfaction', 'highlights', 'rebook', 'comment']);
    expect(await fingerprint(world)).toEqual(before);

    const answered = await call(world.api, SUBMIT_BY_TOKEN, { input: { token, answers: scores(9, 4) } }, null);
    expect(answered).toMatchObject({ userErrors: [], form: null, submission: { npsScore: 9, csatScore: 4 } });
    const response = await world.api.owner.surveyResponse.findUniqueOrThrow({ where: { invitationId } });
    expect(response).toMatchObject({ channel: 'INVITATION_LINK', customerId, npsScore: 9 });
    expect(await eventsOf('survey.completed', response.id)).toEqual([expect.objectContaining({ actor: `survey-link:${invitationId}`, streamKey: customerId })]);

    await expectRejected(world, SUBMIT_BY_TOKEN, { token, answers: scores(1, 1) }, null, { __typename: 'SurveyAlreadyAnsweredError', code: 'ALREADY_ANSWERED' });
    await expectRejected(world, SUBMIT_BY_TOKEN, { token }, null, { __typename: 'SurveyAlreadyAnsweredError', code: 'ALREADY_ANSWERED' });
  });

  test('unknown, malformed, replaced and expired tokens; invalid answers by link store nothing', async () => {
    const customerId = await newCustomer(world);
    const { invitationId } = await openInvitation(world, customerId);
    const notFound = { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'token'] };
    await expectRejected(world, SUBMIT_BY_TOKEN, { token: 'A'.repeat(43), answers: scores(9, 5) }, null, notFound);
    await expectRejected(world, SUBMIT_BY_TOKEN, { token: "x' OR 1=1 --", answers: scores(9, 5) }, null, notFound);
    const first = (await call(world.api, ISSUE_LINK, { input: { invitationId: gid('SurveyInvitation', invitationId) } }, 'STORE_MANAGER')).token;
    const second = (await call(world.api, ISSUE_LINK, { input: { invitationId: gid('SurveyInvitation', invitationId) } }, 'STORE_MANAGER')).token;
    expect(second).not.toBe(first);
    await expectRejected(world, SUBMIT_BY_TOKEN, { token: first, answers: scores(9, 5) }, null, notFound);
    await expectRejected(world, SUBMIT_BY_TOKEN, { token: second, answers: scores(12, 5) }, null, { __typename: 'InvalidSurveyAnswerError', code: 'SCORE_OUT_OF_RANGE' });
    // A customer's JWT changes nothing: the token decides.
    await expectRejected(world, SUBMIT_BY_TOKEN, { token: first }, 'CUSTOMER', notFound);
    await world.api.owner.surveyInvitation.update({ where: { id: invitationId }, data: { availableAt: new Date(Date.now() - 7_200_000), expiresAt: new Date(Date.now() - 1_000) } });
    await expectRejected(world, SUBMIT_BY_TOKEN, { token: second, answers: scores(9, 5) }, null, { __typename: 'SurveyInvitationExpiredError', code: 'INVITATION_EXPIRED' });
    await expectRejected(world, SUBMIT_BY_TOKEN, { token: second }, null, { __typename: 'SurveyInvitationExpiredError', code: 'INVITATION_EXPIRED' });
    // No link for an invitation that can no longer be answered.
    await expectRejected(world, ISSUE_LINK, { invitationId: gid('SurveyInvitation', invitationId) }, 'FRONT_DESK', { __typename: 'SurveyInvitationExpiredError' });
  });

  test('without a token, the link mutation is the only thing that answers: every other survey field is UNAUTHENTICATED', async () => {
    const before = await fingerprint(world);
    const probes: [string, string, Record<string, unknown>][] = [
      ['surveyTemplates', '{ surveyTemplates { id } }', {}],
      ['surveyInvitations', '{ surveyInvitations(first: 1) { edges { cursor } } }', {}],
      ['surveyResponses', '{ surveyResponses(first: 1) { edges { cursor } } }', {}],
      ['complaints', '{ complaints(first: 1) { edges { cursor } } }', {}],
      ['surveyMetrics', '{ surveyMetrics(from: "2026-01-01", to: "2026-12-31") { responses } }', {}],
      ['complaintMetrics', '{ complaintMetrics(from: "2026-01-01", to: "2026-12-31") { opened } }', {}],
      ['submitSurveyResponse', `mutation($id: ID!) { submitSurveyResponse(input: { invitationId: $id, answers: [] }) { userErrors { code } } }`, { id: gid('SurveyInvitation', randomUUID()) }],
      ['issueSurveyInvitationLink', `mutation($id: ID!) { issueSurveyInvitationLink(input: { invitationId: $id }) { token } }`, { id: gid('SurveyInvitation', randomUUID()) }],
      ['fileComplaint', `mutation($id: ID!) { fileComplaint(input: { storeId: $id, category: OTHER, subject: "Anonymous" }) { userErrors { code } } }`, { id: gid('Store', world.stores.SH) }],
      ['createSurveyTemplate', `mutation { createSurveyTemplate(input: { key: "anon", name: "Anon", purpose: POST_VISIT, questions: [{ key: "q", kind: NPS, prompt: "?" }] }) { userErrors { code } } }`, {}],
    ];
    for (const [field, query, variables] of probes) {
      const response = await world.api.gql(query, variables, null);
      expect({ field, codes: response.errors?.map((e) => e.extensions?.code) }).toEqual({ field, codes: ['UNAUTHENTICATED'] });
    }
    expect(await fingerprint(world)).toEqual(before);
  });
});

describe('visibility', () => {
  test('store-bound staff reach their stores\' invitations only; other chains\' look like random ids', async () => {
    const customerId = await newCustomer(world);
    const atBeijing = await openInvitation(world, customerId, { storeId: world.stores.BJ });
    const atShanghai = await openInvitation(world, customerId);
    const notFound = { __typename: 'NotFoundError', code: 'NOT_FOUND', field: ['input', 'invitationId'] };
    await expectRejected(world, ISSUE_LINK, { invitationId: gid('SurveyInvitation', atBeijing.invitationId) }, 'FRONT_DESK', notFound);
    await expectRejected(world, ISSUE_LINK, { invitationId: gid('SurveyInvitation', atBeijing.invitationId) }, 'OTHER_CHAIN_OWNER', notFound);
    await expectRejected(world, ISSUE_LINK, { invitationId: gid('SurveyInvitation', randomUUID()) }, 'FRONT_DESK', notFound);
    await expectRejected(world, ISSUE_LINK, { invitationId: gid('SurveyInvitation', atShanghai.invitationId) }, 'BEAUTICIAN', { __typename: 'ForbiddenError' });

    const NODE = `query($id: ID!) { node(id: $id) { id } }`;
    const node = async (id: string, as: Parameters<typeof call>[3]) => (await world.api.gql(NODE, { id }, as)).data?.node ?? null;
    const bj = gid('SurveyInvitation', atBeijing.invitationId);
    expect(await node(bj, 'OWNER')).toEqual({ id: bj });
    expect(await node(bj, 'FRONT_DESK')).toBeNull();
    expect(await node(bj, 'OTHER_CHAIN_OWNER')).toBeNull();
    expect(await node(bj, 'CUSTOMER')).toBeNull();
    expect(await node(bj, customerPrincipal(world, customerId))).toEqual({ id: bj });

    const LIST = `query($filter: SurveyInvitationFilter) { surveyInvitations(first: 100, filter: $filter) { edges { node { id store { id } } } } }`;
    const ids = async (as: Parameters<typeof call>[3]) =>
      (await call(world.api, LIST, { filter: { customerId: gid('Customer', customerId) } }, as)).edges.map((e: { node: { id: string } }) => e.node.id);
    expect(new Set(await ids('OWNER'))).toEqual(new Set([bj, gid('SurveyInvitation', atShanghai.invitationId)]));
    expect(await ids('FRONT_DESK')).toEqual([gid('SurveyInvitation', atShanghai.invitationId)]);
    expect(await ids(staffAt(world, world.stores.BJ))).toEqual([bj]);
    expect(await ids('OTHER_CHAIN_OWNER')).toEqual([]);
    expect(await ids('BEAUTICIAN')).toEqual([]);
  });

  test('Customer.openSurveyInvitations and Visit.surveyInvitation load a page in constant statements', async () => {
    for (let i = 0; i < 6; i++) {
      const customerId = await newCustomer(world);
      await world.api.owner.customer.update({ where: { id: customerId }, data: { name: `N+1 probe ${i}` } });
      await openInvitation(world, customerId, { storeId: i % 2 ? world.stores.SH : world.stores.BJ });
    }
    const QUERY = `query($n: Int!) { customers(first: $n, filter: { search: "N+1 probe" }) { edges { node { id openSurveyInvitations { id status store { code } visit { id } } visits(first: 2) { edges { node { surveyInvitation { id status } } } } } } } }`;
    const stats = platform().dbs.stats;
    // Statements the request sent, leaving out the pool's tenant switches (which depend on the connection it got).
    const count = async (n: number) => {
      stats.trace = [];
      await call(world.api, QUERY, { n }, 'OWNER');
      const trace = stats.trace;
      stats.trace = null;
      return trace.filter((t) => !t.sql.startsWith("SELECT set_config('app.org_id'")).length;
    };
    const small = await count(2);
    expect(small).toBeGreaterThan(0);
    expect(await count(6)).toBe(small);
    const page = await call(world.api, QUERY, { n: 6 }, 'OWNER');
    expect(page.edges.map((e: { node: { openSurveyInvitations: unknown[] } }) => e.node.openSurveyInvitations.length)).toEqual([1, 1, 1, 1, 1, 1]);
  });
});

describe('templates and periodic surveys', () => {
  test('a revision is a new version; an invitation answers the version it was sent with', async () => {
    const created = await call(world.api, `mutation($input: CreateSurveyTemplateInput!) { createSurveyTemplate(input: $input) { template { id active currentVersion { version } } ${'userErrors { code field message }'} } }`, {
      input: { key: key('pv').toLowerCase(), name: 'Short post-visit', purpose: 'POST_VISIT', activate: true, questions: [{ key: 'recommend', kind: 'NPS', prompt: 'Recommend us?' }] },
    }, 'HQ_ANALYST');
    expect(created.userErrors).toEqual([]);
    expect(created.template).toMatchObject({ active: true, currentVersion: { version: 1 } });
    const templateId = created.template.id as string;
    const customerId = await newCustomer(world);
    const { invitationId } = await openInvitation(world, customerId);

    const revised = await call(world.api, `mutation($input: ReviseSurveyTemplateInput!) { reviseSurveyTemplate(input: $input) { template { currentVersion { version questions { key } } versions { version } } userErrors { code } } }`, {
      input: { templateId, questions: [{ key: 'recommend', kind: 'NPS', prompt: 'Recommend us?' }, { key: 'satisfaction', kind: 'CSAT', prompt: 'Happy?' }] },
    }, 'OWNER');
    expect(revised.template).toEqual({ currentVersion: { version: 2, questions: [{ key: 'recommend' }, { key: 'satisfaction' }] }, versions: [{ version: 2 }, { version: 1 }] });
    await expectRejected(world, SUBMIT, { invitationId: gid('SurveyInvitation', invitationId), answers: scores(9, 5) }, customerPrincipal(world, customerId), {
      __typename: 'InvalidSurveyAnswerError',
      code: 'UNKNOWN_QUESTION',
      questionKey: 'satisfaction',
    });
    expect((await call(world.api, SUBMIT, { input: { invitationId: gid('SurveyInvitation', invitationId), answers: [{ questionKey: 'recommend', score: 9 }] } }, customerPrincipal(world, customerId))).userErrors).toEqual([]);
    // The next visit's invitation uses version 2.
    const next = await openInvitation(world, customerId);
    expect((await world.api.owner.surveyTemplateVersion.findUniqueOrThrow({ where: { id: next.invitation.templateVersionId } })).version).toBe(2);

    // Bad templates are refused, and only surveys:manage may write them.
    const CREATE = `mutation($input: CreateSurveyTemplateInput!) { createSurveyTemplate(input: $input) { template { id } userErrors { __typename code field message } } }`;
    const bad = { key: 'bad-one', name: 'Bad', purpose: 'POST_VISIT' };
    await expectRejected(world, CREATE, { ...bad, questions: [{ key: 'a', kind: 'NPS', prompt: 'x' }, { key: 'b', kind: 'NPS', prompt: 'y' }] }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'questions'] });
    await expectRejected(world, CREATE, { ...bad, questions: [{ key: 'a', kind: 'SINGLE_CHOICE', prompt: 'x', options: [{ value: 'one', label: 'One' }] }] }, 'OWNER', { __typename: 'ValidationError', field: ['input', 'questions', '0', 'options'] });
    await expectRejected(world, CREATE, { ...bad, questions: [] }, 'OWNER', { __typename: 'ValidationError' });
    await expectRejected(world, CREATE, { ...bad, questions: [{ key: 'a', kind: 'NPS', prompt: 'x' }] }, 'STORE_MANAGER', { __typename: 'ForbiddenError' });
    await expectRejected(world, `mutation($input: ReviseSurveyTemplateInput!) { reviseSurveyTemplate(input: $input) { template { id } userErrors { __typename code } } }`, {
      templateId, questions: [{ key: 'a', kind: 'NPS', prompt: 'x' }],
    }, 'OTHER_CHAIN_OWNER', { __typename: 'NotFoundError' });
  });

  test('the periodic job invites each recently active customer once per period', async () => {
    const version = await world.api.owner.surveyTemplate.create({
      data: { orgId: world.chainId, key: 'quarterly-test', name: 'Quarterly', purpose: 'PERIODIC', active: true, createdBy: 'test', versions: { create: { orgId: world.chainId, version: 1, questions: [{ key: 'recommend', kind: 'NPS', prompt: '?', required: true, options: [], maxSelections: null, maxLength: null }], createdBy: 'test' } } },
    });
    const now = new Date();
    const active = await world.api.owner.customerFact.count({ where: { orgId: world.chainId, lastVisitAt: { gte: new Date(now.getTime() - world.config.periodic!.activeWithinDays * 86_400_000), lte: now } } });
    expect(active).toBeGreaterThan(50);
    expect(await invitePeriodic(platform(), world.config, now)).toBe(active);
    expect(await invitePeriodic(platform(), world.config, new Date(now.getTime() + 60_000))).toBe(0);
    const key = periodKey(now, 'Asia/Shanghai', 3);
    expect(key).toMatch(/^\d{4}-Q[1-4]$/);
    expect(await world.api.owner.surveyInvitation.count({ where: { orgId: world.chainId, kind: 'PERIODIC', periodKey: key } })).toBe(active);
    expect(await world.api.owner.domainEvent.count({ where: { type: 'survey.invited', payload: { path: ['kind'], equals: 'PERIODIC' } } })).toBe(active);
    // The other chain has no periodic survey: nobody there is invited.
    expect(await world.api.owner.surveyInvitation.count({ where: { orgId: world.otherChainId, kind: 'PERIODIC' } })).toBe(0);
    await world.api.owner.surveyTemplate.update({ where: { id: version.id }, data: { active: false } });
  });

  test('period keys follow the organization\'s calendar', () => {
    // 2026-12-31T17:00Z is already 2027-01-01 in Shanghai.
    expect(periodKey(new Date('2026-12-31T17:00:00Z'), 'Asia/Shanghai', 3)).toBe('2027-Q1');
    expect(periodKey(new Date('2026-12-31T17:00:00Z'), 'Asia/Urumqi', 3)).toBe('2026-Q4');
    expect(periodKey(new Date('2026-07-01T00:00:00Z'), 'Asia/Shanghai', 6)).toBe('2026-H2');
    expect(periodKey(new Date('2026-07-01T00:00:00Z'), 'Asia/Shanghai', 1)).toBe('2026-M7');
    expect(periodKey(new Date('2026-07-01T00:00:00Z'), 'Asia/Shanghai', 12)).toBe('2026');
  });
});
