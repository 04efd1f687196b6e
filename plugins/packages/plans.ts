import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { filter, pipe, Repeater } from 'graphql-yoga';
import { z } from 'zod';
import { can, principalKey } from '../../core/auth/policy.ts';
import type { Principal } from '../../core/auth/principal.ts';
import type { Tx } from '../../core/db/clients.ts';
import type { DomainEvent, Emit } from '../../core/events/outbox.ts';
import { inTransaction } from '../../core/events/outbox.ts';
import { assertStoreInScope, customerWhere, orgWhere, requireCapability, visitWhere } from '../../core/graph/access.ts';
import { pageCost, type Builder } from '../../core/graphql/builder.ts';
import { loader, requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { conflict, fieldPath, forbidden, notFound, parseInput, pgErrorCode, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import type { HandlerContext } from '../../core/plugin/contract.ts';
import type { SchemaContext } from '../../core/plugin/contract.ts';
import {
  customerLoader,
  followUpWhere,
  organizationLoader,
  partnershipWhere,
  planWhere,
  requireChain,
  serviceLoader,
  stepWhere,
  storeLoader,
  visitLoader,
} from './access.ts';
import type { PackagesConfig } from './config.ts';
import { offsetsSchema } from './templates.ts';

interface SharedProfile {
  planId: string;
  customerName: string;
  skinType: string | null;
  allergies: string[];
  sensitivities: string[];
}

type PlanRow = { id: string; orgId: string; customerId: string; clinicOrgId: string | null; status: string };
type StepRow = { id: string; planId: string; location: 'SALON' | 'CLINIC'; status: string };

/**
 * The customer fields a plan shares with its clinic, loaded by the database function that checks the partnership
 * and the consent itself (the clinic has no rights on the customer tables): one statement per batch of plans.
 */
function sharedProfileLoader(ctx: Context) {
  return loader(ctx, 'packages:sharedProfile', () =>
    new DataLoader<string, SharedProfile | null>(async (planIds) => {
      const rows = await ctx.db.$queryRaw<{ plan_id: string; customer_name: string; skin_type: string | null; allergies: string[]; sensitivities: string[] }[]>`
        SELECT plan_id, customer_name, skin_type, allergies, sensitivities FROM packages_shared_profiles(${[...planIds]}::uuid[])`;
      const byPlan = new Map(rows.map((r) => [r.plan_id, r]));
      return planIds.map((id) => {
        const r = byPlan.get(id);
        return r ? { planId: id, customerName: r.customer_name, skinType: r.skin_type, allergies: r.allergies, sensitivities: r.sensitivities } : null;
      });
    }),
  );
}

/** Whether the plan's clinic may see it now (partnership active and the customer's consent in force). */
function clinicAccessLoader(ctx: Context) {
  return loader(ctx, 'packages:clinicAccess', () =>
    new DataLoader<string, boolean>(async (planIds) => {
      const rows = await ctx.db.$queryRaw<{ id: string; shared: boolean }[]>`
        SELECT id, packages_clinic_access(org_id, clinic_org_id, customer_id) AS shared
          FROM treatment_plan WHERE id = ANY(${[...planIds]}::uuid[])`;
      const byPlan = new Map(rows.map((r) => [r.id, r.shared]));
      return planIds.map((id) => byPlan.get(id) ?? false);
    }),
  );
}

/**
 * A plan event, recorded in the acting organization's outbox. Subscribers of both parties listen to both
 * organizations' streams (see treatmentPlanUpdated), so it reaches the other party too. Only the chain's own
 * events name the customer (for its customer streams); the clinic's outbox never holds the chain's customer id.
 */
export async function emitPlanEvent(emit: Emit, actorOrgId: string, type: string, plan: PlanRow, extra: Record<string, unknown> = {}) {
  const mine = actorOrgId === plan.orgId;
  return emit({
    type,
    aggregateType: 'TreatmentPlan',
    aggregateId: plan.id,
    streamKey: mine ? plan.customerId : plan.id,
    payload: { planId: plan.id, chainOrgId: plan.orgId, clinicOrgId: plan.clinicOrgId, ...(mine ? { customerId: plan.customerId } : {}), ...extra },
  });
}

/** The party that performs a step: the chain at the salon, the plan's clinic at the clinic. */
function assertStepParty(principal: Principal, plan: PlanRow, step: StepRow) {
  const party = step.location === 'SALON' ? plan.orgId : plan.clinicOrgId;
  if (party !== principal.orgId) {
    throw forbidden(step.location === 'SALON' ? 'Steps at the salon are recorded by the salon' : 'Steps at the clinic are recorded by the clinic');
  }
}

function assertPlanActive(plan: PlanRow) {
  if (plan.status !== 'ACTIVE') throw conflict('INVALID_STATE', 'The plan is closed', fieldPath('planId'));
}

const stepInputSchema = z.object({
  location: z.enum(['SALON', 'CLINIC']),
  title: z.string().trim().min(1, 'Give the step a title').max(200),
  serviceId: z.string().nullish(),
  scheduledAt: z.date().nullish(),
  followUpTemplateId: z.string().nullish(),
  followUpDays: offsetsSchema.nullish(),
});
type StepInput = z.infer<typeof stepInputSchema>;

/** Validates steps and resolves their services and follow-up schedules (as the chain sees them). */
async function prepareSteps(tx: Tx, ctx: Context, config: PackagesConfig, steps: StepInput[], clinicOrgId: string | null, field = 'steps') {
  const now = Date.now();
  const issues: { field: string[]; message: string }[] = [];
  steps.forEach((step, i) => {
    if (step.location === 'CLINIC' && !clinicOrgId) issues.push({ field: fieldPath(field, i, 'location'), message: 'A plan without a clinic has salon steps only' });
    if (step.location === 'CLINIC' && step.serviceId) issues.push({ field: fieldPath(field, i, 'serviceId'), message: 'The clinic chooses the service of its own steps' });
    if (step.followUpDays?.length && step.followUpTemplateId) issues.push({ field: fieldPath(field, i, 'followUpDays'), message: 'Give followUpDays or followUpTemplateId, not both' });
    if (step.scheduledAt && (step.scheduledAt.getTime() < now - 86_400_000 || step.scheduledAt.getTime() > now + 2 * 366 * 86_400_000)) {
      issues.push({ field: fieldPath(field, i, 'scheduledAt'), message: 'Schedule within the next two years' });
    }
  });
  if (issues.length) throw validationError(issues);
  const serviceIds = steps.flatMap((s) => (s.serviceId ? [s.serviceId] : []));
  const services = serviceIds.length ? await tx.service.findMany({ where: { id: { in: serviceIds }, ...orgWhere(ctx) }, select: { id: true } }) : [];
  const templateIds = steps.flatMap((s) => (s.followUpTemplateId ? [s.followUpTemplateId] : []));
  const templates = templateIds.length
    ? await tx.followUpTemplate.findMany({ where: { id: { in: templateIds }, ...orgWhere(ctx), active: true } })
    : [];
  return steps.map((step, i) => {
    if (step.serviceId && !services.some((s) => s.id === step.serviceId)) throw notFound(fieldPath(field, i, 'serviceId'), 'Service');
    let followUpDays = step.followUpDays ?? (step.location === 'CLINIC' ? config.defaultClinicFollowUpDays : []);
    if (step.followUpTemplateId) {
      const template = templates.find((t) => t.id === step.followUpTemplateId);
      if (!template) throw notFound(fieldPath(field, i, 'followUpTemplateId'), 'Follow-up template');
      followUpDays = template.offsetsDays;
    }
    return {
      location: step.location,
      title: step.title,
      serviceId: step.serviceId ?? null,
      scheduledAt: step.scheduledAt ?? null,
      status: step.scheduledAt ? ('SCHEDULED' as const) : ('PLANNED' as const),
      followUpDays,
    };
  });
}

async function insertSteps(tx: Tx, plan: PlanRow, steps: Awaited<ReturnType<typeof prepareSteps>>, firstPosition: number) {
  await tx.treatmentPlanStep.createMany({
    data: steps.map((step, i) => ({
      ...step,
      orgId: plan.orgId,
      planId: plan.id,
      // The database copies both from the plan; given here because the model requires them.
      customerId: plan.customerId,
      clinicOrgId: plan.clinicOrgId,
      position: firstPosition + i,
    })),
  });
}

/** Reads a step and its plan as the caller sees them (a clinic without access sees neither). */
async function visibleStep(tx: Tx, ctx: Context, stepId: string) {
  const step = await tx.treatmentPlanStep.findFirst({ where: { AND: [{ id: stepId }, stepWhere(ctx)] }, include: { plan: true } });
  if (!step) throw notFound(fieldPath('stepId'), 'Treatment plan step');
  return step;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function denied(message: string, code = 'NOT_FOUND'): never {
  throw new GraphQLError(message, { extensions: { code } });
}

export function registerPlans(builder: Builder, { config }: SchemaContext<PackagesConfig>) {
  const PlanStatus = builder.enumType('TreatmentPlanStatus', { values: ['ACTIVE', 'COMPLETED', 'CANCELLED'] as const });
  const Location = builder.enumType('TreatmentStepLocation', {
    values: ['SALON', 'CLINIC'] as const,
    description: 'Where the step happens, and so who schedules it and records its outcome.',
  });
  const StepStatus = builder.enumType('TreatmentStepStatus', { values: ['PLANNED', 'SCHEDULED', 'DONE', 'CANCELLED'] as const });

  const SharedCustomerProfile = builder.objectRef<SharedProfile>('SharedCustomerProfile').implement({
    description:
      'What a joint plan shares about its customer, with the partner clinic too: the name and the relevant skin profile ' +
      '(skin type, allergies, sensitivities). Nothing else — no contact details, points, spend or other visits. ' +
      'Skin fields are null for roles that may not read health data.',
    fields: (t) => ({
      name: t.exposeString('customerName'),
      skinType: t.field({ type: 'SkinType' as never, nullable: true, resolve: (p, _a, ctx) => (health(ctx) ? p.skinType : null) as never }),
      allergies: t.stringList({ nullable: true, resolve: (p, _a, ctx) => (health(ctx) ? p.allergies : null) }),
      sensitivities: t.stringList({ nullable: true, resolve: (p, _a, ctx) => (health(ctx) ? p.sensitivities : null) }),
    }),
  });
  const health = (ctx: Context) => ctx.principal?.kind === 'CUSTOMER' || can(ctx.principal, 'customers:health');

  builder.prismaNode('TreatmentPlanStep', {
    description: 'A step of a joint plan, at the salon or at the clinic, with its schedule, status, outcome and aftercare.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [stepWhere(ctx)] }),
    fields: (t) => ({
      position: t.exposeInt('position'),
      location: t.expose('location', { type: Location }),
      title: t.exposeString('title'),
      status: t.expose('status', { type: StepStatus }),
      scheduledAt: t.expose('scheduledAt', { type: 'DateTime', nullable: true }),
      service: t.field({
        type: 'Service' as never,
        nullable: true,
        description: 'The service, for the party that offers it (the other party sees the title).',
        resolve: (s, _a, ctx) => (s.serviceId ? serviceLoader(ctx).load(s.serviceId) : null) as never,
      }),
      visit: t.field({
        type: 'Visit' as never,
        nullable: true,
        description: 'The salon visit booked for the step (the salon\'s staff only).',
        resolve: (s, _a, ctx) => (s.visitId ? visitLoader(ctx).load(s.visitId) : null) as never,
      }),
      outcome: t.exposeString('outcome', { nullable: true, description: 'The procedure outcome, recorded by whoever performed it.' }),
      aftercareInstructions: t.exposeString('aftercareInstructions', { nullable: true }),
      completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
      followUpDays: t.exposeIntList('followUpDays', { description: 'Follow-ups (days after completion) the salon will make.' }),
      followUps: t.relation('followUps', {
        description: 'The salon\'s follow-up tasks for this step (empty for the clinic).',
        query: (_args, ctx) => ({ where: followUpWhere(ctx), orderBy: { offsetDays: 'asc' } }),
      }),
      plan: t.relation('plan'),
    }),
  });

  const PartnerOrg = 'PartnerOrganization' as never;
  builder.prismaNode('TreatmentPlan', {
    description:
      'A joint treatment plan for a customer, with steps at the salon and at the partner clinic. Owned by the chain; the ' +
      'clinic sees it only while the partnership is active and the customer\'s consent naming that clinic is in force, and ' +
      'then only the shared fields (sharedProfile, steps and outcomes).',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [planWhere(ctx)] }),
    fields: (t) => ({
      title: t.exposeString('title'),
      goal: t.exposeString('goal', { nullable: true }),
      status: t.expose('status', { type: PlanStatus }),
      steps: t.relation('steps', { query: { orderBy: { position: 'asc' } } }),
      sharedProfile: t.field({
        type: SharedCustomerProfile,
        nullable: true,
        resolve: (p, _a, ctx) => sharedProfileLoader(ctx).load(p.id),
      }),
      customer: t.field({
        type: 'Customer' as never,
        nullable: true,
        description: 'The customer record, for the chain\'s staff (always null for the clinic: it sees sharedProfile).',
        resolve: (p, _a, ctx) => customerLoader(ctx).load(p.customerId) as never,
      }),
      store: t.field({
        type: 'Store' as never,
        nullable: true,
        description: 'The salon store in charge (the chain\'s staff only).',
        resolve: (p, _a, ctx) => storeLoader(ctx).load(p.storeId) as never,
      }),
      chain: t.field({ type: PartnerOrg, resolve: (p, _a, ctx) => organizationLoader(ctx).load(p.orgId) as never }),
      clinic: t.field({
        type: PartnerOrg,
        nullable: true,
        resolve: (p, _a, ctx) => (p.clinicOrgId ? organizationLoader(ctx).load(p.clinicOrgId) : null) as never,
      }),
      sharedWithClinic: t.boolean({
        description: 'Whether the clinic can see the plan now: an active partnership and the customer\'s consent naming the clinic.',
        resolve: (p, _a, ctx) => (p.clinicOrgId ? clinicAccessLoader(ctx).load(p.id) : false),
      }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
      updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
      closedAt: t.expose('closedAt', { type: 'DateTime', nullable: true }),
    }),
  });

  const PlanFilter = builder.inputType('TreatmentPlanFilter', {
    fields: (t) => ({
      customerId: t.globalID(),
      storeId: t.globalID(),
      status: t.field({ type: [PlanStatus] }),
    }),
  });

  builder.queryField('treatmentPlans', (t) =>
    t.prismaConnection({
      type: 'TreatmentPlan',
      cursor: 'id',
      description:
        'Joint treatment plans the caller can see, newest first: the chain\'s staff their stores\' plans, a customer their own, ' +
        'a partner clinic the plans naming it that it may see now.',
      args: { filter: t.arg({ type: PlanFilter, required: false }) },
      complexity: (args) => pageCost(args),
      resolve: (query, _root, args, ctx) =>
        ctx.db.treatmentPlan.findMany({
          ...query,
          where: {
            AND: [
              planWhere(ctx),
              args.filter?.customerId ? { customerId: args.filter.customerId.id } : {},
              args.filter?.storeId ? { storeId: args.filter.storeId.id } : {},
              args.filter?.status?.length ? { status: { in: args.filter.status } } : {},
            ],
          },
          orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        }),
    }, { name: 'TreatmentPlanConnection' }, { name: 'TreatmentPlanEdge' }),
  );

  builder.prismaObjectField('Customer', 'treatmentPlans', (t) =>
    t.prismaField({
      type: ['TreatmentPlan'],
      description: 'The customer\'s joint treatment plans, newest first.',
      resolve: (query, customer, _args, ctx) =>
        loader(ctx, `Customer.treatmentPlans:${JSON.stringify(query)}`, () =>
          new DataLoader<string, unknown[]>(async (customerIds) => {
            const rows = await ctx.db.treatmentPlan.findMany({
              ...(query as object),
              where: { AND: [planWhere(ctx), { customerId: { in: [...customerIds] } }] },
              orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
            });
            return customerIds.map((id) => rows.filter((row) => row.customerId === id));
          }),
        ).load(customer.id) as never,
    }),
  );

  registerPlanMutations(builder, config, Location);
  registerPlanSubscription(builder);
}

function registerPlanMutations(builder: Builder, config: PackagesConfig, Location: any) {
  const StepInput = builder.inputType('TreatmentStepInput', {
    description: 'A step: at the SALON (optionally a service of the chain) or at the CLINIC (the clinic names its own service later).',
    fields: (t) => ({
      location: t.field({ type: Location, required: true }),
      title: t.string({ required: true }),
      serviceId: t.globalID(),
      scheduledAt: t.field({ type: 'DateTime' }),
      followUpTemplateId: t.globalID({ description: 'Follow-ups after the step; clinic steps default to the configured schedule.' }),
      followUpDays: t.intList(),
    }),
  });
  const toStepInput = (s: any) => ({
    ...s,
    serviceId: s.serviceId?.id ?? null,
    followUpTemplateId: s.followUpTemplateId?.id ?? null,
  });

  const planPayload = (t: any) => ({
    plan: t.prismaField({
      type: 'TreatmentPlan',
      nullable: true,
      resolve: (query: object, p: { planId?: string }, _a: unknown, ctx: Context) =>
        p.planId ? ctx.db.treatmentPlan.findFirst({ ...query, where: { AND: [{ id: p.planId }, planWhere(ctx)] } }) : null,
    }),
  });
  const stepPayload = (t: any) => ({
    ...planPayload(t),
    step: t.prismaField({
      type: 'TreatmentPlanStep',
      nullable: true,
      resolve: (query: object, p: { stepId?: string }, _a: unknown, ctx: Context) =>
        p.stepId ? ctx.db.treatmentPlanStep.findFirst({ ...query, where: { AND: [{ id: p.stepId }, stepWhere(ctx)] } }) : null,
    }),
  });

  defineMutation(builder, 'createTreatmentPlan', {
    description:
      'Creates a joint treatment plan for a customer at a store (treatmentPlans:write, chain staff). Naming a clinic needs an active ' +
      'partnership; the clinic sees the plan only once the customer has consented to sharing with that clinic.',
    input: (t) => ({
      customerId: t.globalID({ required: true }),
      storeId: t.globalID({ required: true, description: 'The salon store in charge (follow-ups are due in its time zone).' }),
      clinicOrganizationId: t.globalID(),
      title: t.string({ required: true }),
      goal: t.string(),
      steps: t.field({ type: [StepInput], required: true }),
    }),
    payload: planPayload,
    resolve: async (rawInput, ctx) => {
      const principal = requireCapability(ctx, 'treatmentPlans:write');
      await requireChain(ctx);
      const input = parseInput(
        z.object({
          title: z.string().trim().min(1, 'Give the plan a title').max(200),
          goal: z.string().trim().max(2000).nullish(),
          steps: z.array(stepInputSchema).min(1, 'A plan has at least one step').max(30),
        }),
        { ...rawInput, steps: rawInput.steps.map(toStepInput) },
      );
      assertStoreInScope(principal, rawInput.storeId.id, fieldPath('storeId'));
      const clinicOrgId = rawInput.clinicOrganizationId?.id ?? null;
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const customer = await tx.customer.findFirst({ where: { AND: [{ id: rawInput.customerId.id }, customerWhere(ctx)] }, select: { id: true } });
        if (!customer) throw notFound(fieldPath('customerId'), 'Customer');
        const store = await tx.store.findFirst({ where: { id: rawInput.storeId.id, ...orgWhere(ctx) }, select: { id: true } });
        if (!store) throw notFound(fieldPath('storeId'), 'Store');
        if (clinicOrgId) {
          const partnership = await tx.clinicPartnership.findFirst({ where: { orgId: principal.orgId, clinicOrgId, status: { not: 'ENDED' } } });
          if (!partnership) throw notFound(fieldPath('clinicOrganizationId'), 'Partner clinic');
          if (partnership.status !== 'ACTIVE') throw conflict('PARTNERSHIP_NOT_ACTIVE', 'The partnership with this clinic is not active', fieldPath('clinicOrganizationId'));
        }
        const steps = await prepareSteps(tx, ctx, config, input.steps, clinicOrgId);
        const plan = await tx.treatmentPlan.create({
          data: {
            orgId: principal.orgId,
            customerId: customer.id,
            storeId: store.id,
            clinicOrgId,
            title: input.title,
            goal: input.goal ?? null,
            createdBy: principalKey(principal),
          },
        });
        await insertSteps(tx, plan, steps, 0);
        await emitPlanEvent(emit, principal.orgId, 'treatmentPlan.created', plan, { steps: steps.length });
        return { planId: plan.id };
      });
    },
  });

  defineMutation(builder, 'addTreatmentPlanSteps', {
    description: 'Appends steps to an active plan (treatmentPlans:write, the chain).',
    input: (t) => ({ planId: t.globalID({ required: true }), steps: t.field({ type: [StepInput], required: true }) }),
    payload: planPayload,
    resolve: async (rawInput, ctx) => {
      const principal = requireCapability(ctx, 'treatmentPlans:write');
      await requireChain(ctx);
      const input = parseInput(z.object({ steps: z.array(stepInputSchema).min(1, 'Add at least one step').max(30) }), { steps: rawInput.steps.map(toStepInput) });
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const plan = await tx.treatmentPlan.findFirst({ where: { AND: [{ id: rawInput.planId.id, orgId: principal.orgId }, planWhere(ctx)] } });
        if (!plan) throw notFound(fieldPath('planId'), 'Treatment plan');
        const [locked] = await tx.$queryRaw<{ status: string }[]>`SELECT status::text FROM treatment_plan WHERE id = ${plan.id}::uuid FOR UPDATE`;
        assertPlanActive({ ...plan, status: locked!.status });
        const steps = await prepareSteps(tx, ctx, config, input.steps, plan.clinicOrgId);
        const last = await tx.treatmentPlanStep.aggregate({ where: { planId: plan.id }, _max: { position: true } });
        await insertSteps(tx, plan, steps, (last._max.position ?? -1) + 1);
        await tx.treatmentPlan.update({ where: { id: plan.id }, data: { updatedAt: new Date() } });
        await emitPlanEvent(emit, principal.orgId, 'treatmentPlan.stepsAdded', plan, { steps: steps.length });
        return { planId: plan.id };
      });
    },
  });

  defineMutation(builder, 'scheduleTreatmentStep', {
    description:
      'Schedules a step (treatmentPlans:outcome), by the party where it happens: the salon (optionally linking the booked visit, ' +
      'whose completion then completes the step) or the clinic.',
    input: (t) => ({
      stepId: t.globalID({ required: true }),
      scheduledAt: t.field({ type: 'DateTime', description: 'Defaults to the linked visit\'s start.' }),
      visitId: t.globalID({ description: 'A booked salon visit of the customer (salon steps only).' }),
    }),
    payload: stepPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'treatmentPlans:outcome');
      if (!input.scheduledAt && !input.visitId) throw validationError([{ field: fieldPath('scheduledAt'), message: 'Give scheduledAt or a visitId' }]);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const step = await visibleStep(tx, ctx, input.stepId.id);
        assertStepParty(principal, step.plan, step);
        assertPlanActive(step.plan);
        let scheduledAt = input.scheduledAt ?? null;
        let visitId: string | null | undefined;
        if (input.visitId) {
          if (step.location !== 'SALON') throw validationError([{ field: fieldPath('visitId'), message: 'Only salon steps link a salon visit' }]);
          const visit = await tx.visit.findFirst({ where: { AND: [{ id: input.visitId.id, customerId: step.plan.customerId }, visitWhere(ctx)] } });
          if (!visit) throw notFound(fieldPath('visitId'), 'Visit of this customer');
          if (visit.status !== 'BOOKED' && visit.status !== 'CHECKED_IN') throw conflict('INVALID_STATE', 'Link a booked or checked-in visit', fieldPath('visitId'));
          scheduledAt ??= visit.scheduledStart;
          visitId = visit.id;
        }
        if (scheduledAt!.getTime() < Date.now() - 86_400_000 || scheduledAt!.getTime() > Date.now() + 2 * 366 * 86_400_000) {
          throw validationError([{ field: fieldPath('scheduledAt'), message: 'Schedule within the next two years' }]);
        }
        const updated = await tx.treatmentPlanStep.updateMany({
          where: { id: step.id, status: { in: ['PLANNED', 'SCHEDULED'] } },
          data: { status: 'SCHEDULED', scheduledAt, ...(visitId !== undefined ? { visitId } : {}), updatedAt: new Date() },
        });
        if (updated.count === 0) throw conflict('INVALID_STATE', 'The step is already done or cancelled', fieldPath('stepId'));
        await emitPlanEvent(emit, principal.orgId, 'treatmentPlan.stepScheduled', step.plan, { stepId: step.id, scheduledAt: scheduledAt!.toISOString() });
        return { planId: step.planId, stepId: step.id };
      });
    },
  });

  defineMutation(builder, 'recordTreatmentStepOutcome', {
    description:
      'Records that a step was performed, with its outcome and aftercare instructions (treatmentPlans:outcome), by the party where ' +
      'it happened — the clinic for its procedures, the salon for its care. The other party sees it. Follow-up tasks are generated ' +
      'once for the step, due in the plan store\'s time zone.',
    input: (t) => ({
      stepId: t.globalID({ required: true }),
      outcome: t.string({ required: true }),
      aftercareInstructions: t.string(),
      performedAt: t.field({ type: 'DateTime', description: 'Defaults to now.' }),
      serviceId: t.globalID({ description: 'The performing party\'s service, when the step does not name one yet.' }),
    }),
    payload: stepPayload,
    resolve: async (rawInput, ctx) => {
      const principal = requireCapability(ctx, 'treatmentPlans:outcome');
      const input = parseInput(
        z.object({
          outcome: z.string().trim().min(1, 'Describe the outcome').max(4000),
          aftercareInstructions: z.string().trim().max(4000).nullish(),
          performedAt: z
            .date()
            .nullish()
            .refine((d) => !d || d.getTime() <= Date.now() + 5 * 60_000, 'performedAt is in the future')
            .refine((d) => !d || d.getTime() >= Date.now() - config.outcomeBackdateDays * 86_400_000, `performedAt is more than ${config.outcomeBackdateDays} days ago`),
        }),
        rawInput,
      );
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const step = await visibleStep(tx, ctx, rawInput.stepId.id);
        assertStepParty(principal, step.plan, step);
        assertPlanActive(step.plan);
        let serviceId: string | undefined;
        if (rawInput.serviceId) {
          // The caller's own catalogue: the chain's for salon steps, the clinic's for clinic steps.
          const service = await tx.service.findFirst({ where: { id: rawInput.serviceId.id, ...orgWhere(ctx) }, select: { id: true } });
          if (!service) throw notFound(fieldPath('serviceId'), 'Service');
          serviceId = service.id;
        }
        const completedAt = input.performedAt ?? new Date();
        let updated;
        try {
          updated = await tx.treatmentPlanStep.updateMany({
            where: { id: step.id, status: { in: ['PLANNED', 'SCHEDULED'] } },
            data: {
              status: 'DONE',
              outcome: input.outcome,
              aftercareInstructions: input.aftercareInstructions ?? null,
              completedAt,
              completedBy: principalKey(principal),
              ...(serviceId ? { serviceId } : {}),
              updatedAt: new Date(),
            },
          });
        } catch (error) {
          // The policies re-check access on write: consent withdrawn a moment ago refuses like a missing step.
          if (pgErrorCode(error) === '42501') throw notFound(fieldPath('stepId'), 'Treatment plan step');
          throw error;
        }
        if (updated.count === 0) throw conflict('INVALID_STATE', 'The step is already done or cancelled', fieldPath('stepId'));
        await emitPlanEvent(emit, principal.orgId, 'treatmentPlan.outcomeRecorded', step.plan, { stepId: step.id, location: step.location });
        return { planId: step.planId, stepId: step.id };
      });
    },
  });

  defineMutation(builder, 'cancelTreatmentStep', {
    description: 'Cancels a planned or scheduled step: the party where it happens, or the chain that owns the plan.',
    input: (t) => ({ stepId: t.globalID({ required: true }), reason: t.string({ required: true }) }),
    payload: stepPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'treatmentPlans:outcome');
      const reason = input.reason.trim();
      if (!reason || reason.length > 500) throw validationError([{ field: fieldPath('reason'), message: 'Give a reason of at most 500 characters' }]);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const step = await visibleStep(tx, ctx, input.stepId.id);
        if (step.plan.orgId !== principal.orgId) assertStepParty(principal, step.plan, step);
        assertPlanActive(step.plan);
        const updated = await tx.treatmentPlanStep.updateMany({
          where: { id: step.id, status: { in: ['PLANNED', 'SCHEDULED'] } },
          data: { status: 'CANCELLED', updatedAt: new Date() },
        });
        if (updated.count === 0) throw conflict('INVALID_STATE', 'The step is already done or cancelled', fieldPath('stepId'));
        await emitPlanEvent(emit, principal.orgId, 'treatmentPlan.stepCancelled', step.plan, { stepId: step.id, reason });
        return { planId: step.planId, stepId: step.id };
      });
    },
  });

  const CloseStatus = builder.enumType('TreatmentPlanClosing', { values: ['COMPLETED', 'CANCELLED'] as const });
  defineMutation(builder, 'closeTreatmentPlan', {
    description: 'Closes a plan (treatmentPlans:write, the chain): COMPLETED once every step is done or cancelled; CANCELLED cancels the open steps.',
    input: (t) => ({ planId: t.globalID({ required: true }), status: t.field({ type: CloseStatus, required: true }) }),
    payload: planPayload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'treatmentPlans:write');
      await requireChain(ctx);
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const plan = await tx.treatmentPlan.findFirst({ where: { AND: [{ id: input.planId.id, orgId: principal.orgId }, planWhere(ctx)] } });
        if (!plan) throw notFound(fieldPath('planId'), 'Treatment plan');
        const [locked] = await tx.$queryRaw<{ status: string }[]>`SELECT status::text FROM treatment_plan WHERE id = ${plan.id}::uuid FOR UPDATE`;
        assertPlanActive({ ...plan, status: locked!.status });
        const open = await tx.treatmentPlanStep.count({ where: { planId: plan.id, status: { in: ['PLANNED', 'SCHEDULED'] } } });
        if (input.status === 'COMPLETED' && open > 0) throw conflict('OPEN_STEPS', `${open} step(s) are still open: record or cancel them first`, fieldPath('status'));
        if (open > 0) await tx.treatmentPlanStep.updateMany({ where: { planId: plan.id, status: { in: ['PLANNED', 'SCHEDULED'] } }, data: { status: 'CANCELLED', updatedAt: new Date() } });
        const now = new Date();
        await tx.treatmentPlan.update({ where: { id: plan.id }, data: { status: input.status, closedAt: now, updatedAt: now } });
        await emitPlanEvent(emit, principal.orgId, 'treatmentPlan.closed', plan, { status: input.status });
        return { planId: plan.id };
      });
    },
  });
}

/**
 * `treatmentPlanUpdated`: each party's subscribers follow both organizations' streams (a plan's events are recorded
 * where they happen: the chain's or the clinic's outbox), keep plan events only, and re-check access to the plan
 * against the database for every event — consent withdrawn or a partnership suspended mid-subscription stops them.
 */
function registerPlanSubscription(builder: Builder) {
  const Change = builder.objectRef<DomainEvent>('TreatmentPlanChange').implement({
    description: 'A joint plan changed: created, steps added, scheduled, outcome recorded, cancelled or closed.',
    fields: (t) => ({
      type: t.exposeString('type', { description: 'treatmentPlan.created, treatmentPlan.outcomeRecorded, …' }),
      occurredAt: t.field({ type: 'DateTime', resolve: (e) => new Date(e.occurredAt) }),
      plan: t.prismaField({
        type: 'TreatmentPlan',
        nullable: true,
        resolve: (query, e, _a, ctx) => ctx.db.treatmentPlan.findFirst({ ...query, where: { AND: [{ id: String(e.payload.planId) }, planWhere(ctx)] } }),
      }),
      step: t.prismaField({
        type: 'TreatmentPlanStep',
        nullable: true,
        resolve: (query, e, _a, ctx) =>
          e.payload.stepId ? ctx.db.treatmentPlanStep.findFirst({ ...query, where: { AND: [{ id: String(e.payload.stepId) }, stepWhere(ctx)] } }) : null,
      }),
    }),
  });

  builder.subscriptionField('treatmentPlanUpdated', (t) =>
    t.field({
      type: Change,
      description: 'Changes to one plan (planId), or to every plan the caller can see — for the chain and for the partner clinic.',
      args: { planId: t.arg.globalID({ required: false }) },
      subscribe: async (_root, args, ctx) => {
        const principal = requirePrincipal(ctx);
        if (principal.kind !== 'CUSTOMER' && !can(principal, 'treatmentPlans:read')) denied('Requires the treatmentPlans:read permission', 'FORBIDDEN');
        const wanted = args.planId?.id ?? null;
        const orgs = new Set([principal.orgId]);
        if (wanted) {
          const plan = await ctx.db.treatmentPlan.findFirst({ where: { AND: [{ id: wanted }, planWhere(ctx)] }, select: { orgId: true, clinicOrgId: true } });
          if (!plan) denied('Treatment plan not found');
          orgs.add(plan.orgId);
          if (plan.clinicOrgId) orgs.add(plan.clinicOrgId);
        } else {
          const partnerships = await ctx.db.clinicPartnership.findMany({
            where: { AND: [partnershipWhere(ctx), { status: { in: ['ACTIVE', 'SUSPENDED'] } }] },
            select: { orgId: true, clinicOrgId: true },
          });
          for (const p of partnerships) orgs.add(p.orgId === principal.orgId ? p.clinicOrgId : p.orgId);
          if (principal.kind === 'CUSTOMER') {
            // A customer follows the clinics of their own plans too (where those clinics record outcomes).
            const clinics = await ctx.db.treatmentPlan.findMany({ where: { AND: [planWhere(ctx), { clinicOrgId: { not: null } }] }, select: { clinicOrgId: true }, distinct: ['clinicOrgId'] });
            for (const c of clinics) orgs.add(c.clinicOrgId!);
          }
        }
        const events = Repeater.merge([...orgs].map((orgId) => ctx.platform.subscribe(orgId)));
        return pipe(
          events,
          filter(async (event: DomainEvent) => {
            if (event.aggregateType !== 'TreatmentPlan') return false;
            const planId = String(event.payload.planId);
            if (!UUID.test(planId) || (wanted && planId !== wanted)) return false;
            // Fresh for every event: row-level security evaluates the partnership and the consent as they are now.
            const plan = await ctx.db.treatmentPlan.findFirst({ where: { AND: [{ id: planId }, planWhere(ctx)] }, select: { orgId: true, clinicOrgId: true } });
            return !!plan && (event.orgId === plan.orgId || event.orgId === plan.clinicOrgId);
          }),
        );
      },
      resolve: (event: DomainEvent, _args, ctx) => {
        ctx.loaders.clear();
        return event;
      },
    }),
  );
}

/** visit.completed: salon steps linked to the visit are done (follow-ups follow from the database). */
export async function completeLinkedSteps(event: DomainEvent, { tx, emit }: HandlerContext<PackagesConfig>) {
  const completedAt = new Date(String(event.payload.completedAt ?? event.occurredAt));
  const steps = await tx.treatmentPlanStep.findMany({
    where: { visitId: event.aggregateId, location: 'SALON', status: { in: ['PLANNED', 'SCHEDULED'] } },
    include: { plan: true },
  });
  for (const step of steps) {
    if (step.plan.status !== 'ACTIVE') continue;
    const done = await tx.treatmentPlanStep.updateMany({
      where: { id: step.id, status: { in: ['PLANNED', 'SCHEDULED'] } },
      data: { status: 'DONE', completedAt, completedBy: 'plugin:packages', updatedAt: new Date() },
    });
    if (done.count) await emitPlanEvent(emit, event.orgId, 'treatmentPlan.stepCompleted', step.plan, { stepId: step.id, visitId: event.aggregateId });
  }
}

/** visit.cancelled / visit.noShow: salon steps linked to the visit go back to PLANNED, unlinked. */
export async function unlinkSteps(event: DomainEvent, { tx, emit }: HandlerContext<PackagesConfig>) {
  const steps = await tx.treatmentPlanStep.findMany({ where: { visitId: event.aggregateId, status: 'SCHEDULED' }, include: { plan: true } });
  for (const step of steps) {
    await tx.treatmentPlanStep.update({ where: { id: step.id }, data: { status: 'PLANNED', scheduledAt: null, visitId: null, updatedAt: new Date() } });
    await emitPlanEvent(emit, event.orgId, 'treatmentPlan.stepUnscheduled', step.plan, { stepId: step.id, visitId: event.aggregateId });
  }
}

