import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { z } from 'zod';
import { can, principalKey, storeScope } from '../../core/auth/policy.ts';
import type { Prisma } from '../../core/db/generated/client.ts';
import type { DomainEvent } from '../../core/events/outbox.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { assertStoreInScope, customerWhere, orgWhere, requireCapability, visitWhere } from '../../core/graph/access.ts';
import { organizationEvents } from '../../core/graph/subscriptions.ts';
import { pageCost, type Builder } from '../../core/graphql/builder.ts';
import { loader, requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { conflict, fieldPath, forbidden, notFound, parseInput, pgErrorCode, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import type { SchemaContext } from '../../core/plugin/contract.ts';
import { complaintWhere, idOf, invitationWhere, loadCoreRow, responseWhere, storeInScope, templateWhere } from './access.ts';
import {
  COMPLAINT_STATUSES,
  NEXT_STATUS,
  complaintEventPayload,
  lockComplaint,
  openComplaint,
  recordBreach,
  statusEvent,
  type ComplaintRow,
  type ComplaintStatus,
} from './complaints.ts';
import { COMPLAINT_CATEGORIES, COMPLAINT_SEVERITIES, customerSeverity, type SurveysConfig } from './config.ts';
import { invalidTransition, registerSurveyErrors, reopenWindowClosed } from './errors.ts';
import { hashLinkToken, invitationState, isWellFormedToken, newLinkToken } from './invitations.ts';
import { registerSurveyMetrics } from './metrics.ts';
import { QUESTION_KINDS, SCORE_RANGE, questionsSchema, storedQuestions, type Answer, type Question } from './questions.ts';
import { assertAnswerable, lockInvitation, submitResponse } from './responses.ts';

const DAY_MS = 86_400_000;
const INVITATION_STATES = ['SCHEDULED', 'OPEN', 'ANSWERED', 'EXPIRED', 'WITHDRAWN'] as const;

/** Each event of a subscription is resolved against the database as it is now (request loaders dropped). */
function fresh(event: DomainEvent, _args: unknown, ctx: Context): DomainEvent {
  ctx.loaders.clear();
  return event;
}

function subscriptionDenied(message: string, code = 'NOT_FOUND'): never {
  throw new GraphQLError(message, { extensions: { code } });
}

/** Where-clause for an invitation state at `now`. */
function stateWhere(state: (typeof INVITATION_STATES)[number], now: Date): Prisma.SurveyInvitationWhereInput {
  switch (state) {
    case 'ANSWERED':
      return { respondedAt: { not: null } };
    case 'WITHDRAWN':
      return { withdrawnAt: { not: null } };
    case 'EXPIRED':
      return { respondedAt: null, withdrawnAt: null, expiresAt: { lte: now } };
    case 'SCHEDULED':
      return { respondedAt: null, withdrawnAt: null, availableAt: { gt: now }, expiresAt: { gt: now } };
    case 'OPEN':
      return { respondedAt: null, withdrawnAt: null, availableAt: { lte: now }, expiresAt: { gt: now } };
  }
}

export function registerSurveysSchema(builder: Builder, { config }: SchemaContext<SurveysConfig>) {
  registerSurveyErrors(builder);

  const Purpose = builder.enumType('SurveyPurpose', {
    values: ['POST_VISIT', 'PERIODIC'] as const,
    description: 'POST_VISIT: sent after each completed visit. PERIODIC: a satisfaction survey to active customers once per period.',
  });
  const Channel = builder.enumType('SurveyChannel', {
    values: ['CUSTOMER_APP', 'INVITATION_LINK'] as const,
    description: 'CUSTOMER_APP: answered with the customer\'s own token. INVITATION_LINK: with the one-time token of an SMS link.',
  });
  const QuestionKind = builder.enumType('SurveyQuestionKind', {
    values: QUESTION_KINDS,
    description: 'NPS: a 0–10 score (9–10 promoters, 7–8 passives, 0–6 detractors). CSAT: a 1–5 score (4–5 satisfied). Choices, or free text.',
  });
  const InvitationStatus = builder.enumType('SurveyInvitationStatus', {
    values: INVITATION_STATES,
    description: 'SCHEDULED (before availableAt), OPEN (answerable), ANSWERED, EXPIRED (at expiresAt), WITHDRAWN (its visit was refunded).',
  });
  const Category = builder.enumType('ComplaintCategory', { values: COMPLAINT_CATEGORIES });
  const Severity = builder.enumType('ComplaintSeverity', { values: COMPLAINT_SEVERITIES });
  const Status = builder.enumType('ComplaintStatus', {
    values: COMPLAINT_STATUSES,
    description: 'OPEN → ACKNOWLEDGED → IN_PROGRESS → RESOLVED → CLOSED, one step at a time; a RESOLVED or CLOSED case can be reopened (→ IN_PROGRESS) within the reopen window.',
  });
  const Source = builder.enumType('ComplaintSource', { values: ['CUSTOMER', 'STAFF', 'SURVEY'] as const });
  const EntryKind = builder.enumType('ComplaintTimelineEntryKind', {
    values: ['OPENED', 'STATUS_CHANGED', 'REOPENED', 'ASSIGNED', 'COMMENTED', 'SLA_BREACHED'] as const,
  });

  // --- Questions and answers ---------------------------------------------------------------------------------

  const SurveyChoice = builder.objectRef<{ value: string; label: string }>('SurveyChoice').implement({
    fields: (t) => ({ value: t.exposeString('value'), label: t.exposeString('label') }),
  });

  const SurveyQuestion = builder.objectRef<Question>('SurveyQuestion').implement({
    description: 'A question of a survey version.',
    fields: (t) => ({
      key: t.exposeString('key', { description: 'Answers name their question by this key.' }),
      kind: t.field({ type: QuestionKind, resolve: (q) => q.kind }),
      prompt: t.exposeString('prompt'),
      required: t.exposeBoolean('required'),
      options: t.field({ type: [SurveyChoice], description: 'For choice questions.', resolve: (q) => q.options }),
      maxSelections: t.int({ nullable: true, description: 'MULTIPLE_CHOICE: most options one answer may pick (null: any number).', resolve: (q) => q.maxSelections }),
      maxLength: t.int({ nullable: true, description: 'FREE_TEXT: longest answer, in characters.', resolve: (q) => q.maxLength }),
      minScore: t.int({ nullable: true, resolve: (q) => (q.kind === 'NPS' || q.kind === 'CSAT' ? SCORE_RANGE[q.kind][0] : null) }),
      maxScore: t.int({ nullable: true, resolve: (q) => (q.kind === 'NPS' || q.kind === 'CSAT' ? SCORE_RANGE[q.kind][1] : null) }),
    }),
  });

  const SurveyAnswer = builder.objectRef<Answer & { prompt: string | null }>('SurveyAnswer').implement({
    fields: (t) => ({
      questionKey: t.exposeString('questionKey'),
      kind: t.field({ type: QuestionKind, resolve: (a) => a.kind }),
      prompt: t.string({ nullable: true, resolve: (a) => a.prompt }),
      score: t.int({ nullable: true, resolve: (a) => a.score ?? null }),
      choices: t.stringList({ nullable: true, resolve: (a) => a.choices ?? null }),
      text: t.string({ nullable: true, resolve: (a) => a.text ?? null }),
    }),
  });

  const QuestionInput = builder.inputType('SurveyQuestionInput', {
    fields: (t) => ({
      key: t.string({ required: true, description: 'Lower-case letters, digits and _, starting with a letter; unique in the survey.' }),
      kind: t.field({ type: QuestionKind, required: true }),
      prompt: t.string({ required: true }),
      required: t.boolean({ defaultValue: true }),
      options: t.field({ type: [builder.inputType('SurveyChoiceInput', { fields: (c) => ({ value: c.string({ required: true }), label: c.string({ required: true }) }) })] }),
      maxSelections: t.int(),
      maxLength: t.int(),
    }),
  });

  const AnswerInput = builder.inputType('SurveyAnswerInput', {
    description: 'An answer to one question: `score` for NPS and CSAT, `choices` for choice questions, `text` for free text.',
    fields: (t) => ({
      questionKey: t.string({ required: true }),
      score: t.int(),
      choices: t.stringList(),
      text: t.string(),
    }),
  });

  // --- Templates -----------------------------------------------------------------------------------------------

  builder.prismaObject('SurveyTemplateVersion', {
    description: 'An immutable version of a survey. Invitations keep the version they were sent with.',
    fields: (t) => ({
      version: t.exposeInt('version'),
      questions: t.field({ type: [SurveyQuestion], resolve: (v) => storedQuestions(v.questions) }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
    }),
  });

  builder.prismaNode('SurveyTemplate', {
    description: 'A survey of the organization, versioned. One active template per purpose is what new invitations use.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [templateWhere(ctx)] }),
    fields: (t) => ({
      key: t.exposeString('key'),
      name: t.exposeString('name'),
      purpose: t.expose('purpose', { type: Purpose }),
      active: t.exposeBoolean('active'),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
      currentVersion: t.field({
        type: 'SurveyTemplateVersion' as never,
        description: 'The newest version.',
        select: { versions: { orderBy: { version: 'desc' }, take: 1 } },
        resolve: (template) => template.versions[0] as never,
      }),
      versions: t.relation('versions', { query: { orderBy: { version: 'desc' } } }),
    }),
  });

  // --- Invitations and responses -------------------------------------------------------------------------------

  const coreField = (model: 'customer' | 'store' | 'visit' | 'staff' | 'service', type: string, column: string, where: (ctx: Context) => object, description?: string) =>
    (t: any) =>
      t.prismaField({
        type,
        nullable: true,
        description,
        resolve: (query: object, row: Record<string, string | null>, _args: unknown, ctx: Context) => loadCoreRow(ctx, model, query, row[column] ?? null, where(ctx)),
      });

  builder.prismaNode('SurveyInvitation', {
    description: 'An invitation to answer a survey: one per completed visit, or one per customer and period for periodic surveys.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [invitationWhere(ctx)] }),
    fields: (t) => ({
      kind: t.expose('kind', { type: Purpose }),
      status: t.field({ type: InvitationStatus, resolve: (i) => invitationState(i) }),
      periodKey: t.exposeString('periodKey', { nullable: true, description: 'PERIODIC: the period, e.g. 2026-Q4 (organization calendar).' }),
      availableAt: t.expose('availableAt', { type: 'DateTime', description: 'Answerable from this instant (the configured delay after the visit).' }),
      expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'Answerable until just before this instant.' }),
      linkIssuedAt: t.expose('linkIssuedAt', { type: 'DateTime', nullable: true, description: 'When the current one-time link token was issued.' }),
      respondedAt: t.expose('respondedAt', { type: 'DateTime', nullable: true }),
      customer: coreField('customer', 'Customer', 'customerId', customerWhere)(t),
      store: coreField('store', 'Store', 'storeId', orgWhere)(t),
      visit: coreField('visit', 'Visit', 'visitId', visitWhere)(t),
      templateVersion: t.relation('templateVersion'),
      questions: t.field({
        type: [SurveyQuestion],
        select: { templateVersion: { select: { questions: true } } },
        resolve: (i) => storedQuestions(i.templateVersion.questions),
      }),
      response: t.relation('response', { nullable: true }),
    }),
  });

  builder.prismaNode('SurveyResponse', {
    description: 'The one response to an invitation. Never changed once stored.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [responseWhere(ctx)] }),
    fields: (t) => ({
      channel: t.expose('channel', { type: Channel }),
      npsScore: t.exposeInt('npsScore', { nullable: true }),
      csatScore: t.exposeInt('csatScore', { nullable: true }),
      submittedAt: t.expose('submittedAt', { type: 'DateTime' }),
      answers: t.field({
        type: [SurveyAnswer],
        select: { answers: true, templateVersion: { select: { questions: true } } },
        resolve: (r) => {
          const prompts = new Map(storedQuestions(r.templateVersion.questions).map((q) => [q.key, q.prompt]));
          return (r.answers as unknown as Answer[]).map((a) => ({ ...a, prompt: prompts.get(a.questionKey) ?? null }));
        },
      }),
      invitation: t.relation('invitation'),
      customer: coreField('customer', 'Customer', 'customerId', customerWhere)(t),
      store: coreField('store', 'Store', 'storeId', orgWhere)(t),
      visit: coreField('visit', 'Visit', 'visitId', visitWhere)(t),
      complaint: t.relation('complaint', {
        nullable: true,
        description: 'The case a low score opened.',
        query: (_args, ctx) => ({ where: complaintWhere(ctx) }),
      }),
    }),
  });

  // --- Complaints ----------------------------------------------------------------------------------------------

  builder.prismaObject('ComplaintEntry', {
    name: 'ComplaintTimelineEntry',
    description: 'One action on a complaint. The timeline is append-only: entries are never changed or removed.',
    fields: (t) => ({
      kind: t.expose('kind', { type: EntryKind }),
      fromStatus: t.expose('fromStatus', { type: Status, nullable: true }),
      toStatus: t.expose('toStatus', { type: Status, nullable: true }),
      note: t.exposeString('note', { nullable: true }),
      internal: t.exposeBoolean('internal', { description: 'Staff-only (customers never see these entries).' }),
      actor: t.exposeString('actor', { description: 'staff:<id>, customer:<id>, survey-link:<invitation id>, plugin:surveys.' }),
      assignee: coreField('staff', 'Staff', 'assigneeId', orgWhere)(t),
      occurredAt: t.expose('occurredAt', { type: 'DateTime' }),
    }),
  });

  builder.prismaNode('Complaint', {
    description:
      'A complaint case (投诉). SLA due times are set when it opens, in business hours: each store\'s opening hours on ' +
      'its own clock (its time zone), on its open weekdays — by default 10:00–21:00 every day. Time outside them does ' +
      'not count (a 4-hour target opened at 19:00 is due at 12:00 the next day); public holidays are not modelled. ' +
      'A target is breached when its due time passes without a first response (the case leaving OPEN) or a resolution.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [complaintWhere(ctx)] }),
    fields: (t) => ({
      number: t.exposeInt('number', { description: 'Sequential in the organization.' }),
      category: t.expose('category', { type: Category }),
      severity: t.expose('severity', { type: Severity }),
      status: t.expose('status', { type: Status }),
      source: t.expose('source', { type: Source }),
      subject: t.exposeString('subject'),
      description: t.exposeString('description', { nullable: true }),
      customer: coreField('customer', 'Customer', 'customerId', customerWhere, 'Who complained (null for a case without a customer).')(t),
      store: coreField('store', 'Store', 'storeId', orgWhere)(t),
      visit: coreField('visit', 'Visit', 'visitId', visitWhere)(t),
      staff: coreField('staff', 'Staff', 'staffId', orgWhere, 'The staff member the complaint is about.')(t),
      assignee: coreField('staff', 'Staff', 'assigneeId', orgWhere, 'Who handles it (the store manager by default).')(t),
      surveyResponse: t.relation('surveyResponse', { nullable: true, query: (_args, ctx) => ({ where: responseWhere(ctx) }) }),
      openedAt: t.expose('openedAt', { type: 'DateTime' }),
      firstResponseDueAt: t.expose('firstResponseDueAt', { type: 'DateTime' }),
      resolutionDueAt: t.expose('resolutionDueAt', { type: 'DateTime' }),
      firstRespondedAt: t.expose('firstRespondedAt', { type: 'DateTime', nullable: true }),
      resolvedAt: t.expose('resolvedAt', { type: 'DateTime', nullable: true }),
      closedAt: t.expose('closedAt', { type: 'DateTime', nullable: true }),
      firstResponseBreached: t.boolean({
        description: 'The first response came (or is still missing) after its due time.',
        resolve: (c) => (c.firstRespondedAt ?? new Date()).getTime() > c.firstResponseDueAt.getTime(),
      }),
      resolutionBreached: t.boolean({
        description: 'The resolution came (or is still missing) after its due time.',
        resolve: (c) => (c.resolvedAt ?? new Date()).getTime() > c.resolutionDueAt.getTime(),
      }),
      reopenCount: t.exposeInt('reopenCount'),
      reopenableUntil: t.field({
        type: 'DateTime',
        nullable: true,
        description: `A resolved or closed case can be reopened until ${config.reopenWindowDays} days after its resolution.`,
        resolve: (c) => (c.resolvedAt ? new Date(c.resolvedAt.getTime() + config.reopenWindowDays * DAY_MS) : null),
      }),
      updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
      timeline: t.relation('entries', {
        description: 'Every action, oldest first. Customers see the entries that are not internal.',
        query: (_args, ctx) => ({
          where: ctx.principal?.kind === 'CUSTOMER' ? { internal: false } : {},
          orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }],
        }),
      }),
    }),
  });

  // --- Fields on core types --------------------------------------------------------------------------------------

  builder.prismaObjectField('Customer', 'openSurveyInvitations', (t) =>
    t.prismaField({
      type: ['SurveyInvitation'],
      description: 'Surveys the customer can answer now (for staff: those of their stores).',
      resolve: (query, customer, _args, ctx) =>
        loader(ctx, `Customer.openSurveyInvitations:${JSON.stringify(query)}`, () =>
          new DataLoader<string, unknown[]>(async (customerIds) => {
            const rows = await ctx.db.surveyInvitation.findMany({
              ...(query as object),
              where: { AND: [{ customerId: { in: [...customerIds] } }, stateWhere('OPEN', new Date()), invitationWhere(ctx)] },
              orderBy: [{ expiresAt: 'asc' }, { id: 'asc' }],
            });
            return customerIds.map((id) => rows.filter((row) => row.customerId === id));
          }),
        ).load(customer.id) as never,
    }),
  );

  builder.prismaObjectField('Visit', 'surveyInvitation', (t) =>
    t.prismaField({
      type: 'SurveyInvitation',
      nullable: true,
      description: 'The post-visit survey invitation of a completed visit.',
      resolve: (query, visit, _args, ctx) =>
        loader(ctx, `Visit.surveyInvitation:${JSON.stringify(query)}`, () =>
          new DataLoader<string, unknown>(async (visitIds) => {
            const rows = await ctx.db.surveyInvitation.findMany({
              ...(query as object),
              where: { AND: [{ visitId: { in: [...visitIds] } }, invitationWhere(ctx)] },
            });
            const byVisit = new Map(rows.map((row) => [row.visitId, row]));
            return visitIds.map((id) => byVisit.get(id) ?? null);
          }),
        ).load(visit.id) as never,
    }),
  );

  // --- Queries -------------------------------------------------------------------------------------------------

  const InvitationFilter = builder.inputType('SurveyInvitationFilter', {
    fields: (t) => ({
      storeId: t.globalID(),
      customerId: t.globalID(),
      kind: t.field({ type: Purpose }),
      status: t.field({ type: [InvitationStatus] }),
    }),
  });
  const ResponseFilter = builder.inputType('SurveyResponseFilter', {
    fields: (t) => ({
      storeId: t.globalID(),
      customerId: t.globalID(),
      from: t.field({ type: 'DateTime', description: 'Submitted at or after.' }),
      to: t.field({ type: 'DateTime', description: 'Submitted before.' }),
      lowScoreOnly: t.boolean({ description: 'Only responses at or below the low-score thresholds.' }),
    }),
  });
  const ComplaintFilter = builder.inputType('ComplaintFilter', {
    fields: (t) => ({
      storeId: t.globalID(),
      customerId: t.globalID(),
      assigneeId: t.globalID(),
      status: t.field({ type: [Status] }),
      category: t.field({ type: [Category] }),
      severity: t.field({ type: [Severity] }),
      breached: t.boolean({ description: 'Only cases with an SLA breach (true) or without (false).' }),
    }),
  });

  const uuidOr = (value: { id: string } | null | undefined) => (value ? value.id : undefined);

  builder.queryFields((t) => ({
    surveyTemplates: t.prismaField({
      type: ['SurveyTemplate'],
      description: 'The organization\'s surveys (staff who read or manage surveys).',
      args: { purpose: t.arg({ type: Purpose, required: false }), includeInactive: t.arg.boolean({ required: false, defaultValue: true }) },
      resolve: (query, _root, args, ctx) =>
        ctx.db.surveyTemplate.findMany({
          ...query,
          where: { AND: [templateWhere(ctx), args.purpose ? { purpose: args.purpose } : {}, args.includeInactive === false ? { active: true } : {}] },
          orderBy: [{ purpose: 'asc' }, { key: 'asc' }],
        }),
    }),
    surveyInvitations: t.prismaConnection(
      {
        type: 'SurveyInvitation',
        cursor: 'id',
        description: 'Invitations the caller can see (a customer: their own; staff with surveys:read: their stores\'), newest first.',
        args: { filter: t.arg({ type: InvitationFilter, required: false }) },
        complexity: (args) => pageCost(args),
        resolve: (query, _root, args, ctx) => {
          const now = new Date();
          const filter = args.filter;
          return ctx.db.surveyInvitation.findMany({
            ...query,
            where: {
              AND: [
                invitationWhere(ctx),
                filter?.storeId ? { storeId: uuidOr(filter.storeId) } : {},
                filter?.customerId ? { customerId: uuidOr(filter.customerId) } : {},
                filter?.kind ? { kind: filter.kind } : {},
                filter?.status?.length ? { OR: filter.status.map((s) => stateWhere(s, now)) } : {},
              ],
            },
            orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
          });
        },
      },
      { name: 'SurveyInvitationConnection' },
      { name: 'SurveyInvitationEdge' },
    ),
    surveyResponses: t.prismaConnection(
      {
        type: 'SurveyResponse',
        cursor: 'id',
        description: 'Responses the caller can see, newest first.',
        args: { filter: t.arg({ type: ResponseFilter, required: false }) },
        complexity: (args) => pageCost(args),
        resolve: (query, _root, args, ctx) => {
          const filter = args.filter;
          const { npsAtMost, csatAtMost } = config.lowScore;
          const low: Prisma.SurveyResponseWhereInput[] = [
            ...(npsAtMost !== null ? [{ npsScore: { lte: npsAtMost } }] : []),
            ...(csatAtMost !== null ? [{ csatScore: { lte: csatAtMost } }] : []),
          ];
          return ctx.db.surveyResponse.findMany({
            ...query,
            where: {
              AND: [
                responseWhere(ctx),
                filter?.storeId ? { storeId: uuidOr(filter.storeId) } : {},
                filter?.customerId ? { customerId: uuidOr(filter.customerId) } : {},
                filter?.from ? { submittedAt: { gte: filter.from } } : {},
                filter?.to ? { submittedAt: { lt: filter.to } } : {},
                filter?.lowScoreOnly ? (low.length ? { OR: low } : { id: { in: [] } }) : {},
              ],
            },
            orderBy: [{ submittedAt: 'desc' }, { id: 'desc' }],
          });
        },
      },
      { name: 'SurveyResponseConnection' },
      { name: 'SurveyResponseEdge' },
    ),
    complaints: t.prismaConnection(
      {
        type: 'Complaint',
        cursor: 'id',
        description: 'Complaints the caller can see (a customer: their own; staff with complaints:read: their stores\'), newest first.',
        args: { filter: t.arg({ type: ComplaintFilter, required: false }) },
        complexity: (args) => pageCost(args),
        resolve: (query, _root, args, ctx) => {
          const filter = args.filter;
          const now = new Date();
          const breached: Prisma.ComplaintWhereInput = {
            OR: [
              { firstResponseBreachedAt: { not: null } },
              { resolutionBreachedAt: { not: null } },
              { firstRespondedAt: null, firstResponseDueAt: { lt: now } },
              { resolvedAt: null, resolutionDueAt: { lt: now } },
            ],
          };
          return ctx.db.complaint.findMany({
            ...query,
            where: {
              AND: [
                complaintWhere(ctx),
                filter?.storeId ? { storeId: uuidOr(filter.storeId) } : {},
                filter?.customerId ? { customerId: uuidOr(filter.customerId) } : {},
                filter?.assigneeId ? { assigneeId: uuidOr(filter.assigneeId) } : {},
                filter?.status?.length ? { status: { in: filter.status } } : {},
                filter?.category?.length ? { category: { in: filter.category } } : {},
                filter?.severity?.length ? { severity: { in: filter.severity } } : {},
                filter?.breached === true ? breached : filter?.breached === false ? { NOT: breached } : {},
              ],
            },
            orderBy: [{ openedAt: 'desc' }, { id: 'desc' }],
          });
        },
      },
      { name: 'ComplaintConnection' },
      { name: 'ComplaintEdge' },
    ),
  }));

  registerSurveyMetrics(builder);

  // --- Template mutations --------------------------------------------------------------------------------------

  const templatePayload = (t: any) => ({
    template: t.prismaField({
      type: 'SurveyTemplate',
      nullable: true,
      resolve: (query: object, p: { templateId?: string }, _a: unknown, ctx: Context) =>
        p.templateId ? ctx.db.surveyTemplate.findFirst({ ...query, where: { id: p.templateId, ...templateWhere(ctx) } }) : null,
    }),
  });
  const parseQuestions = (questions: unknown) => parseInput(z.object({ questions: questionsSchema }), { questions }).questions;

  defineMutation(builder, 'createSurveyTemplate', {
    description: 'Creates a survey (version 1). With `activate`, it replaces the active survey of its purpose (surveys:manage).',
    input: (t) => ({
      key: t.string({ required: true, description: 'Unique in the organization, e.g. post-visit-2027.' }),
      name: t.string({ required: true }),
      purpose: t.field({ type: Purpose, required: true }),
      questions: t.field({ type: [QuestionInput], required: true }),
      activate: t.boolean({ defaultValue: false }),
    }),
    payload: templatePayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'surveys:manage');
      const data = parseInput(
        z.object({
          key: z.string().trim().regex(/^[a-z][a-z0-9_-]{0,59}$/, 'Keys are 1–60 lower-case letters, digits, _ or -, starting with a letter'),
          name: z.string().trim().min(1).max(120),
        }),
        { key: input.key, name: input.name },
      );
      const questions = parseQuestions(input.questions);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx) => {
        if (input.activate) await tx.surveyTemplate.updateMany({ where: { orgId: principal.orgId, purpose: input.purpose, active: true }, data: { active: false } });
        try {
          const template = await tx.surveyTemplate.create({
            data: {
              orgId: principal.orgId,
              key: data.key,
              name: data.name,
              purpose: input.purpose,
              active: input.activate ?? false,
              createdBy: principalKey(principal),
              versions: { create: { orgId: principal.orgId, version: 1, questions: questions as object[], createdBy: principalKey(principal) } },
            },
            select: { id: true },
          });
          return { templateId: template.id };
        } catch (error) {
          if (pgErrorCode(error) === '23505') throw conflict('DUPLICATE_KEY', 'A survey with this key exists', fieldPath('key'));
          throw error;
        }
      });
    },
  });

  defineMutation(builder, 'reviseSurveyTemplate', {
    description: 'Publishes new questions as the next version. Invitations already sent keep their version (surveys:manage).',
    input: (t) => ({
      templateId: t.globalID({ required: true }),
      questions: t.field({ type: [QuestionInput], required: true }),
      name: t.string(),
    }),
    payload: templatePayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'surveys:manage');
      const templateId = idOf(input.templateId, 'SurveyTemplate', fieldPath('templateId'), 'Survey template');
      const name = input.name == null ? null : parseInput(z.object({ name: z.string().trim().min(1).max(120) }), { name: input.name }).name;
      const questions = parseQuestions(input.questions);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx) => {
        const [template] = await tx.$queryRaw<{ id: string }[]>`
          SELECT id FROM survey_template WHERE id = ${templateId}::uuid AND org_id = ${principal.orgId}::uuid FOR UPDATE`;
        if (!template) throw notFound(fieldPath('templateId'), 'Survey template');
        const latest = await tx.surveyTemplateVersion.findFirst({ where: { templateId }, orderBy: { version: 'desc' }, select: { version: true } });
        await tx.surveyTemplateVersion.create({
          data: { orgId: principal.orgId, templateId, version: (latest?.version ?? 0) + 1, questions: questions as object[], createdBy: principalKey(principal) },
        });
        if (name) await tx.surveyTemplate.update({ where: { id: templateId }, data: { name } });
        return { templateId };
      });
    },
  });

  defineMutation(builder, 'setSurveyTemplateActive', {
    description: 'Activates a survey (the previously active one of its purpose is deactivated) or deactivates it (surveys:manage).',
    input: (t) => ({ templateId: t.globalID({ required: true }), active: t.boolean({ required: true }) }),
    payload: templatePayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'surveys:manage');
      const templateId = idOf(input.templateId, 'SurveyTemplate', fieldPath('templateId'), 'Survey template');
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx) => {
        const template = await tx.surveyTemplate.findFirst({ where: { id: templateId, orgId: principal.orgId }, select: { id: true, purpose: true } });
        if (!template) throw notFound(fieldPath('templateId'), 'Survey template');
        if (input.active) {
          await tx.surveyTemplate.updateMany({ where: { orgId: principal.orgId, purpose: template.purpose, active: true, id: { not: templateId } }, data: { active: false } });
        }
        await tx.surveyTemplate.update({ where: { id: templateId }, data: { active: input.active } });
        return { templateId };
      });
    },
  });

  // --- Answering ---------------------------------------------------------------------------------------------------

  const answersOf = (answers: readonly { questionKey: string; score?: number | null; choices?: readonly string[] | null; text?: string | null }[]) => {
    if (answers.length > 60) throw validationError([{ field: fieldPath('answers'), message: 'At most 60 answers' }]);
    return answers;
  };

  defineMutation(builder, 'submitSurveyResponse', {
    description:
      'The customer answers one of their invitations with their own token. Typed errors, each storing nothing: ' +
      'InvalidSurveyAnswerError, SurveyAlreadyAnsweredError, SurveyInvitationExpiredError, SurveyInvitationNotOpenError, ' +
      'NotFoundError (including another customer\'s invitation). A low score opens a complaint case.',
    input: (t) => ({
      invitationId: t.globalID({ required: true }),
      answers: t.field({ type: [AnswerInput], required: true }),
    }),
    payload: (t) => ({
      response: t.prismaField({
        type: 'SurveyResponse',
        nullable: true,
        resolve: (query: object, p: { responseId?: string }, _a: unknown, ctx: Context) =>
          p.responseId ? ctx.db.surveyResponse.findFirst({ ...query, where: { id: p.responseId, ...responseWhere(ctx) } }) : null,
      }),
      complaint: t.prismaField({
        type: 'Complaint',
        nullable: true,
        description: 'The case a low score opened.',
        resolve: (query: object, p: { complaintId?: string | null }, _a: unknown, ctx: Context) =>
          p.complaintId ? ctx.db.complaint.findFirst({ ...query, where: { id: p.complaintId, ...complaintWhere(ctx) } }) : null,
      }),
    }),
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      if (principal.kind !== 'CUSTOMER') throw forbidden('Only the customer answers their survey (or anyone holding its invitation link)');
      const invitationId = idOf(input.invitationId, 'SurveyInvitation', fieldPath('invitationId'), 'Survey invitation');
      const answers = answersOf(input.answers);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const invitation = await lockInvitation(tx, principal.orgId, invitationId);
        if (!invitation || invitation.customerId !== principal.customerId) throw notFound(fieldPath('invitationId'), 'Survey invitation');
        const done = await submitResponse(tx, emit, config, invitation, answers, { channel: 'CUSTOMER_APP', actor: principalKey(principal) });
        return { responseId: done.responseId, complaintId: done.complaintId };
      });
    },
  });

  const SurveyForm = builder
    .objectRef<{ kind: string; storeName: string; availableAt: Date; expiresAt: Date; questions: Question[] }>('SurveyForm')
    .implement({
      description: 'What a survey link shows: the questions of the invitation\'s version, and where it is from.',
      fields: (t) => ({
        kind: t.field({ type: Purpose, resolve: (f) => f.kind as never }),
        storeName: t.exposeString('storeName'),
        availableAt: t.field({ type: 'DateTime', resolve: (f) => f.availableAt }),
        expiresAt: t.field({ type: 'DateTime', resolve: (f) => f.expiresAt }),
        questions: t.field({ type: [SurveyQuestion], resolve: (f) => f.questions }),
      }),
    });
  const SurveySubmission = builder
    .objectRef<{ submittedAt: Date; npsScore: number | null; csatScore: number | null }>('SurveySubmission')
    .implement({
      description: 'The stored response, as the link\'s page may show it back.',
      fields: (t) => ({
        submittedAt: t.field({ type: 'DateTime', resolve: (s) => s.submittedAt }),
        npsScore: t.int({ nullable: true, resolve: (s) => s.npsScore }),
        csatScore: t.int({ nullable: true, resolve: (s) => s.csatScore }),
      }),
    });

  defineMutation(builder, 'submitSurveyResponseByToken', {
    description:
      'Public (no JWT needed): answers a survey with the one-time token of its invitation link (sent by SMS). ' +
      'Without `answers` it stores nothing and returns the form to show. Typed errors as for submitSurveyResponse; ' +
      'an unknown token is a NotFoundError.',
    input: (t) => ({
      token: t.string({ required: true }),
      answers: t.field({ type: [AnswerInput], description: 'Omit to fetch the form.' }),
    }),
    payload: (t) => ({
      form: t.field({ type: SurveyForm, nullable: true, resolve: (p: { form?: unknown }) => (p.form ?? null) as never }),
      submission: t.field({ type: SurveySubmission, nullable: true, resolve: (p: { submission?: unknown }) => (p.submission ?? null) as never }),
    }),
    // The token is the only credential: this resolver never reads the caller's principal or ctx.db (which refuses
    // an anonymous caller). The invitation's organization is found by the token's hash, and everything after runs
    // under that organization's row-level security.
    resolve: async (input, ctx) => {
      const tokenField = fieldPath('token');
      if (!isWellFormedToken(input.token)) throw notFound(tokenField, 'Survey invitation');
      const [found] = await ctx.platform.dbs.system.$queryRaw<{ id: string; orgId: string }[]>`
        SELECT id, org_id AS "orgId" FROM survey_invitation WHERE token_hash = ${hashLinkToken(input.token)}`;
      if (!found) throw notFound(tokenField, 'Survey invitation');
      const db = ctx.platform.dbs.forOrg(found.orgId);
      if (input.answers == null) {
        const invitation = await db.surveyInvitation.findFirstOrThrow({
          where: { id: found.id, orgId: found.orgId },
          select: { kind: true, storeId: true, availableAt: true, expiresAt: true, respondedAt: true, withdrawnAt: true, templateVersion: { select: { questions: true } } },
        });
        assertAnswerable(invitation, new Date());
        const store = await db.store.findFirstOrThrow({ where: { id: invitation.storeId, orgId: found.orgId }, select: { name: true } });
        return {
          form: { kind: invitation.kind, storeName: store.name, availableAt: invitation.availableAt, expiresAt: invitation.expiresAt, questions: storedQuestions(invitation.templateVersion.questions) },
        };
      }
      const answers = answersOf(input.answers);
      const actor = `survey-link:${found.id}`;
      const done = await inTransaction(ctx.platform, db, found.orgId, actor, async (tx, emit) => {
        const invitation = await lockInvitation(tx, found.orgId, found.id);
        if (!invitation) throw notFound(tokenField, 'Survey invitation');
        return submitResponse(tx, emit, config, invitation, answers, { channel: 'INVITATION_LINK', actor });
      });
      return { submission: { submittedAt: done.submittedAt, npsScore: done.npsScore, csatScore: done.csatScore } };
    },
  });

  defineMutation(builder, 'issueSurveyInvitationLink', {
    description:
      'Issues the one-time token for an invitation\'s link (to send by SMS). Only its hash is kept, so the token is ' +
      'shown this once; issuing again replaces it (the earlier link stops working). surveys:send, at the caller\'s stores.',
    input: (t) => ({ invitationId: t.globalID({ required: true }) }),
    payload: (t) => ({
      token: t.string({ nullable: true, resolve: (p: { token?: string }) => p.token ?? null }),
      link: t.string({ nullable: true, description: 'The configured link base with the token appended (null when none is configured).', resolve: (p: { token?: string }) => (p.token && config.linkBaseUrl ? `${config.linkBaseUrl}${p.token}` : null) }),
      invitation: t.prismaField({
        type: 'SurveyInvitation',
        nullable: true,
        resolve: (query: object, p: { invitationId?: string }, _a: unknown, ctx: Context) =>
          p.invitationId ? ctx.db.surveyInvitation.findFirst({ ...query, where: { id: p.invitationId, ...invitationWhere(ctx) } }) : null,
      }),
    }),
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'surveys:send');
      const invitationId = idOf(input.invitationId, 'SurveyInvitation', fieldPath('invitationId'), 'Survey invitation');
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx) => {
        const invitation = await lockInvitation(tx, principal.orgId, invitationId);
        if (!invitation || !storeInScope(ctx, invitation.storeId)) throw notFound(fieldPath('invitationId'), 'Survey invitation');
        // A link may be sent before the invitation opens, never for one that can no longer be answered.
        if (invitationState(invitation) !== 'SCHEDULED') assertAnswerable(invitation, new Date());
        const token = newLinkToken();
        await tx.surveyInvitation.update({ where: { id: invitationId }, data: { tokenHash: hashLinkToken(token), linkIssuedAt: new Date() } });
        return { token, invitationId };
      });
    },
  });

  // --- Complaint mutations ------------------------------------------------------------------------------------------

  const complaintPayload = (t: any) => ({
    complaint: t.prismaField({
      type: 'Complaint',
      nullable: true,
      resolve: (query: object, p: { complaintId?: string }, _a: unknown, ctx: Context) =>
        p.complaintId ? ctx.db.complaint.findFirst({ ...query, where: { id: p.complaintId, ...complaintWhere(ctx) } }) : null,
    }),
  });

  /** The complaint, locked, if the caller may act on it (customers: their own; staff: their stores'); else NotFound. */
  async function actionable(tx: Parameters<Parameters<typeof inTransaction>[4]>[0], ctx: Context, complaintId: string, customerMayAct: boolean): Promise<ComplaintRow> {
    const principal = requirePrincipal(ctx);
    const complaint = await lockComplaint(tx, principal.orgId, complaintId);
    const visible =
      complaint &&
      (principal.kind === 'CUSTOMER' ? customerMayAct && complaint.customerId === principal.customerId : storeInScope(ctx, complaint.storeId));
    if (!visible) throw notFound(fieldPath('complaintId'), 'Complaint');
    return complaint;
  }

  defineMutation(builder, 'fileComplaint', {
    description:
      'Files a complaint about a visit, a store or a staff member. A customer files for themself (severity follows ' +
      'the category); staff (complaints:file) for a customer they can see, at their stores. The case is assigned to ' +
      'the store manager and gets its SLA due times.',
    input: (t) => ({
      category: t.field({ type: Category, required: true }),
      subject: t.string({ required: true }),
      description: t.string(),
      severity: t.field({ type: Severity, description: 'Staff only; defaults to MEDIUM.' }),
      customerId: t.globalID({ description: 'Staff: who complains (defaults to the visit\'s customer). A customer: themself.' }),
      visitId: t.globalID(),
      storeId: t.globalID({ description: 'Required unless a visit is named (then it is the visit\'s store).' }),
      staffId: t.globalID({ description: 'The staff member it is about (must work at the store).' }),
    }),
    payload: complaintPayload,
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      const isCustomer = principal.kind === 'CUSTOMER';
      if (!isCustomer) requireCapability(ctx, 'complaints:file');
      const text = parseInput(
        z.object({ subject: z.string().trim().min(3).max(200), description: z.string().trim().max(4000).nullish() }),
        { subject: input.subject, description: input.description },
      );
      if (isCustomer && input.severity) throw validationError([{ field: fieldPath('severity'), message: 'Severity is set by staff' }]);
      const visitId = input.visitId ? idOf(input.visitId, 'Visit', fieldPath('visitId'), 'Visit') : null;
      const storeId = input.storeId ? idOf(input.storeId, 'Store', fieldPath('storeId'), 'Store') : null;
      const staffId = input.staffId ? idOf(input.staffId, 'Staff', fieldPath('staffId'), 'Staff member') : null;
      const namedCustomer = input.customerId ? idOf(input.customerId, 'Customer', fieldPath('customerId'), 'Customer') : null;
      const complaintId = await inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const visit = visitId ? await tx.visit.findFirst({ where: { AND: [{ id: visitId }, visitWhere(ctx)] }, select: { storeId: true, customerId: true } }) : null;
        if (visitId && !visit) throw notFound(fieldPath('visitId'), 'Visit');
        let customerId: string | null;
        if (isCustomer) {
          if (namedCustomer && namedCustomer !== principal.customerId) throw notFound(fieldPath('customerId'), 'Customer');
          customerId = principal.customerId;
        } else if (namedCustomer) {
          const customer = await tx.customer.findFirst({ where: { AND: [{ id: namedCustomer }, customerWhere(ctx)] }, select: { id: true } });
          if (!customer) throw notFound(fieldPath('customerId'), 'Customer');
          customerId = customer.id;
        } else {
          customerId = visit?.customerId ?? null;
        }
        if (visit && customerId && visit.customerId !== customerId) {
          throw validationError([{ field: fieldPath('visitId'), message: 'The visit is not this customer\'s' }]);
        }
        if (storeId) {
          const store = await tx.store.findFirst({ where: { id: storeId, ...orgWhere(ctx) }, select: { id: true } });
          if (!store) throw notFound(fieldPath('storeId'), 'Store');
          if (!isCustomer) assertStoreInScope(principal, storeId, fieldPath('storeId'));
        }
        if (visit && storeId && visit.storeId !== storeId) throw validationError([{ field: fieldPath('storeId'), message: 'The visit was at another store' }]);
        const atStore = storeId ?? visit?.storeId;
        if (!atStore) throw validationError([{ field: fieldPath('storeId'), message: 'Name the store (or the visit) the complaint is about' }]);
        if (staffId) {
          const staff = await tx.staff.findFirst({ where: { id: staffId, orgId: principal.orgId, stores: { some: { storeId: atStore } } }, select: { id: true } });
          if (!staff) throw notFound(fieldPath('staffId'), 'Staff member');
        }
        const opened = await openComplaint(tx, emit, config, {
          orgId: principal.orgId,
          customerId,
          storeId: atStore,
          visitId,
          staffId,
          category: input.category,
          severity: isCustomer ? customerSeverity(config, input.category) : (input.severity ?? 'MEDIUM'),
          source: isCustomer ? 'CUSTOMER' : 'STAFF',
          subject: text.subject,
          description: text.description ?? null,
          surveyResponseId: null,
          actor: principalKey(principal),
        });
        return opened.id;
      });
      return { complaintId };
    },
  });

  defineMutation(builder, 'updateComplaintStatus', {
    description:
      'Moves a case one step along OPEN → ACKNOWLEDGED → IN_PROGRESS → RESOLVED → CLOSED (complaints:handle, at the ' +
      'caller\'s stores). Leaving OPEN is the first response; RESOLVED needs a note. A step past a due time records ' +
      'the breach. Typed error: ComplaintTransitionError.',
    input: (t) => ({
      complaintId: t.globalID({ required: true }),
      status: t.field({ type: Status, required: true }),
      note: t.string(),
    }),
    payload: complaintPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'complaints:handle');
      const complaintId = idOf(input.complaintId, 'Complaint', fieldPath('complaintId'), 'Complaint');
      const note = input.note == null ? null : parseInput(z.object({ note: z.string().trim().min(1).max(4000) }), { note: input.note }).note;
      const to = input.status as ComplaintStatus;
      if (to === 'RESOLVED' && !note) throw validationError([{ field: fieldPath('note'), message: 'Say how it was resolved' }]);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const complaint = await actionable(tx, ctx, complaintId, false);
        const from = complaint.status;
        if (NEXT_STATUS[from] !== to) {
          const hint = (from === 'RESOLVED' || from === 'CLOSED') && to === 'IN_PROGRESS' ? 'Use reopenComplaint to reopen a case' : undefined;
          throw invalidTransition(from, to, hint);
        }
        const now = new Date();
        await tx.complaint.update({
          where: { id: complaintId },
          data: {
            status: to,
            updatedAt: now,
            ...(from === 'OPEN' ? { firstRespondedAt: now } : {}),
            ...(to === 'RESOLVED' ? { resolvedAt: now } : {}),
            ...(to === 'CLOSED' ? { closedAt: now } : {}),
          },
        });
        await tx.complaintEntry.create({
          data: { orgId: principal.orgId, complaintId, kind: 'STATUS_CHANGED', fromStatus: from, toStatus: to, note, actor: principalKey(principal), occurredAt: now },
        });
        await emit({
          type: statusEvent(to),
          aggregateType: 'Complaint',
          aggregateId: complaintId,
          streamKey: complaint.customerId,
          payload: complaintEventPayload({ ...complaint, status: to }, { from }),
        });
        // A late step is a breach even if the watch job has not run since the due time.
        if (from === 'OPEN' && now > complaint.firstResponseDueAt && !complaint.firstResponseBreachedAt) {
          await recordBreach(tx, emit, complaint, 'FIRST_RESPONSE', now, principalKey(principal));
        }
        if (to === 'RESOLVED' && now > complaint.resolutionDueAt && !complaint.resolutionBreachedAt) {
          await recordBreach(tx, emit, complaint, 'RESOLUTION', now, principalKey(principal));
        }
        return { complaintId };
      });
    },
  });

  defineMutation(builder, 'reopenComplaint', {
    description:
      `Reopens a RESOLVED or CLOSED case (→ IN_PROGRESS) within ${config.reopenWindowDays} days of its resolution: the ` +
      'customer their own, or staff with complaints:handle. Typed errors: ReopenWindowClosedError, ComplaintTransitionError.',
    input: (t) => ({ complaintId: t.globalID({ required: true }), reason: t.string({ required: true }) }),
    payload: complaintPayload,
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      if (principal.kind !== 'CUSTOMER') requireCapability(ctx, 'complaints:handle');
      const complaintId = idOf(input.complaintId, 'Complaint', fieldPath('complaintId'), 'Complaint');
      const { reason } = parseInput(z.object({ reason: z.string().trim().min(3).max(4000) }), { reason: input.reason });
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const complaint = await actionable(tx, ctx, complaintId, true);
        if (complaint.status !== 'RESOLVED' && complaint.status !== 'CLOSED') {
          throw invalidTransition(complaint.status, 'IN_PROGRESS', 'Only a resolved or closed complaint can be reopened');
        }
        const now = new Date();
        const until = new Date(complaint.resolvedAt!.getTime() + config.reopenWindowDays * DAY_MS);
        if (now > until) throw reopenWindowClosed(until);
        await tx.complaint.update({
          where: { id: complaintId },
          data: { status: 'IN_PROGRESS', resolvedAt: null, closedAt: null, reopenCount: { increment: 1 }, updatedAt: now },
        });
        await tx.complaintEntry.create({
          data: { orgId: principal.orgId, complaintId, kind: 'REOPENED', fromStatus: complaint.status, toStatus: 'IN_PROGRESS', note: reason, actor: principalKey(principal), occurredAt: now },
        });
        await emit({
          type: 'complaint.reopened',
          aggregateType: 'Complaint',
          aggregateId: complaintId,
          streamKey: complaint.customerId,
          payload: complaintEventPayload({ ...complaint, status: 'IN_PROGRESS' }, { from: complaint.status }),
        });
        return { complaintId };
      });
    },
  });

  defineMutation(builder, 'assignComplaint', {
    description: 'Assigns a case to a staff member who works at its store, or to an owner or HQ analyst (complaints:assign).',
    input: (t) => ({ complaintId: t.globalID({ required: true }), assigneeId: t.globalID({ required: true }) }),
    payload: complaintPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'complaints:assign');
      const complaintId = idOf(input.complaintId, 'Complaint', fieldPath('complaintId'), 'Complaint');
      const assigneeId = idOf(input.assigneeId, 'Staff', fieldPath('assigneeId'), 'Staff member');
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const complaint = await actionable(tx, ctx, complaintId, false);
        const assignee = await tx.staff.findFirst({
          where: {
            id: assigneeId,
            orgId: principal.orgId,
            active: true,
            OR: [{ role: { in: ['OWNER', 'HQ_ANALYST'] } }, { stores: { some: { storeId: complaint.storeId } } }],
          },
          select: { id: true },
        });
        if (!assignee) throw notFound(fieldPath('assigneeId'), 'Staff member');
        if (complaint.assigneeId === assigneeId) return { complaintId };
        const now = new Date();
        await tx.complaint.update({ where: { id: complaintId }, data: { assigneeId, updatedAt: now } });
        await tx.complaintEntry.create({
          data: { orgId: principal.orgId, complaintId, kind: 'ASSIGNED', assigneeId, actor: principalKey(principal), occurredAt: now, internal: true, data: { previousAssigneeId: complaint.assigneeId } },
        });
        await emit({
          type: 'complaint.assigned',
          aggregateType: 'Complaint',
          aggregateId: complaintId,
          streamKey: complaint.customerId,
          payload: complaintEventPayload(complaint, { assigneeId }, true),
        });
        return { complaintId };
      });
    },
  });

  defineMutation(builder, 'commentOnComplaint', {
    description: 'Adds a note to the timeline: staff (complaints:handle), optionally internal; or the customer on their own case.',
    input: (t) => ({
      complaintId: t.globalID({ required: true }),
      note: t.string({ required: true }),
      internal: t.boolean({ defaultValue: false, description: 'Staff only: hidden from the customer.' }),
    }),
    payload: complaintPayload,
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      const isCustomer = principal.kind === 'CUSTOMER';
      if (!isCustomer) requireCapability(ctx, 'complaints:handle');
      const complaintId = idOf(input.complaintId, 'Complaint', fieldPath('complaintId'), 'Complaint');
      const { note } = parseInput(z.object({ note: z.string().trim().min(1).max(4000) }), { note: input.note });
      const internal = input.internal ?? false;
      if (isCustomer && internal) throw validationError([{ field: fieldPath('internal'), message: 'Internal notes are for staff' }]);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const complaint = await actionable(tx, ctx, complaintId, true);
        const now = new Date();
        await tx.complaint.update({ where: { id: complaintId }, data: { updatedAt: now } });
        await tx.complaintEntry.create({ data: { orgId: principal.orgId, complaintId, kind: 'COMMENTED', note, internal, actor: principalKey(principal), occurredAt: now } });
        await emit({
          type: 'complaint.commented',
          aggregateType: 'Complaint',
          aggregateId: complaintId,
          streamKey: complaint.customerId,
          payload: complaintEventPayload(complaint, {}, internal),
        });
        return { complaintId };
      });
    },
  });

  // --- Live ----------------------------------------------------------------------------------------------------------

  const ComplaintUpdate = builder.objectRef<DomainEvent>('ComplaintUpdate').implement({
    description: 'Something happened to a complaint.',
    fields: (t) => ({
      type: t.exposeString('type', { description: 'complaint.opened, .acknowledged, .workStarted, .resolved, .closed, .reopened, .assigned, .commented, .slaBreached' }),
      occurredAt: t.field({ type: 'DateTime', resolve: (e) => new Date(e.occurredAt) }),
      complaint: t.prismaField({
        type: 'Complaint',
        nullable: true,
        resolve: (query, event, _args, ctx) => ctx.db.complaint.findFirst({ ...query, where: { id: event.aggregateId, ...complaintWhere(ctx) } }),
      }),
    }),
  });

  builder.subscriptionField('complaintUpdated', (t) =>
    t.field({
      type: ComplaintUpdate,
      description:
        'Complaint changes: for staff with complaints:read, those of their stores (or of `storeId`); HQ and owners, the ' +
        'whole organization; a customer, their own complaints (internal events left out).',
      args: { storeId: t.arg.globalID({ required: false }) },
      subscribe: async (_root, args, ctx) => {
        const principal = requirePrincipal(ctx);
        const isComplaint = (event: DomainEvent) => event.aggregateType === 'Complaint';
        if (principal.kind === 'CUSTOMER') {
          if (args.storeId) subscriptionDenied('Customers follow their own complaints: give no storeId', 'BAD_USER_INPUT');
          return organizationEvents(ctx, (event) => isComplaint(event) && !event.payload.internal && event.payload.customerId === principal.customerId);
        }
        if (!can(principal, 'complaints:read')) subscriptionDenied('Requires the complaints:read permission', 'FORBIDDEN');
        let only: string | null = null;
        if (args.storeId) {
          const storeId = args.storeId.typename === 'Store' ? args.storeId.id : '';
          const store = /^[0-9a-f-]{36}$/i.test(storeId) ? await ctx.db.store.findFirst({ where: { id: storeId, ...orgWhere(ctx) }, select: { id: true } }) : null;
          if (!store || !storeInScope(ctx, store.id)) subscriptionDenied('Store not found');
          only = store.id;
        }
        const stores = storeScope(principal);
        return organizationEvents(ctx, (event) => {
          if (!isComplaint(event)) return false;
          const storeId = event.payload.storeId as string;
          return only ? storeId === only : !stores || stores.includes(storeId);
        });
      },
      resolve: fresh,
    }),
  );
}
