import { encodeGlobalID } from '@pothos/plugin-relay';
import { z } from 'zod';
import type { Prisma } from '../db/generated/client.ts';
import { can, principalKey } from '../auth/policy.ts';
import { pageCost, type Builder } from '../graphql/builder.ts';
import { requirePrincipal, type Context } from '../graphql/context.ts';
import { conflict, fieldPath, notFound, parseInput, pgErrorCode, validationError } from '../graphql/errors.ts';
import { defineMutation } from '../graphql/mutation.ts';
import { inTransaction } from '../events/outbox.ts';
import type { Tx } from '../db/clients.ts';
import { assertStoreInScope, customerWhere, orgWhere, requireCapability } from './access.ts';
import { moneyFor } from './money.ts';
import { maskPhone, normalizePhone } from './phone.ts';

const GENDERS = ['FEMALE', 'MALE', 'OTHER', 'UNDISCLOSED'] as const;
const SOURCES = ['WALK_IN', 'REFERRAL', 'ONLINE', 'PARTNER', 'OTHER'] as const;
const SKIN_TYPES = ['NORMAL', 'DRY', 'OILY', 'COMBINATION', 'SENSITIVE'] as const;
const CONSENT_PURPOSES = ['MARKETING', 'HEALTH_DATA', 'PARTNER_SHARING', 'RESEARCH'] as const;

/** The caller is the customer, or holds the capability. */
function selfOr(ctx: Context, customerId: string, capability: string): boolean {
  const principal = ctx.principal;
  return (principal?.kind === 'CUSTOMER' && principal.customerId === customerId) || can(principal, capability);
}

/** Newest row per (purpose, partner) is the consent in force. */
function currentConsents<T extends { purpose: string; partnerOrgId: string | null; recordedAt: Date }>(rows: T[]): T[] {
  const latest = new Map<string, T>();
  for (const row of [...rows].sort((a, b) => b.recordedAt.getTime() - a.recordedAt.getTime())) {
    const key = `${row.purpose}:${row.partnerOrgId ?? ''}`;
    if (!latest.has(key)) latest.set(key, row);
  }
  return [...latest.values()];
}

export async function hasConsent(tx: Tx, customerId: string, purpose: (typeof CONSENT_PURPOSES)[number], partnerOrgId: string | null = null) {
  const newest = await tx.consent.findFirst({
    where: { customerId, purpose, partnerOrgId },
    orderBy: { recordedAt: 'desc' },
    select: { granted: true },
  });
  return newest?.granted ?? false;
}

export function registerCustomer(builder: Builder) {
  const Gender = builder.enumType('Gender', { values: GENDERS });
  const CustomerSource = builder.enumType('CustomerSource', { values: SOURCES });
  const SkinType = builder.enumType('SkinType', { values: SKIN_TYPES });
  const ConsentPurpose = builder.enumType('ConsentPurpose', {
    values: CONSENT_PURPOSES,
    description: 'Why data is processed (PIPL). Health data and sharing with a partner clinic each need their own consent.',
  });

  const Preference = builder.objectRef<{ key: string; value: string }>('Preference').implement({
    description: 'A care preference, e.g. favouriteTea = jasmine, music = soft piano.',
    fields: (t) => ({ key: t.exposeString('key'), value: t.exposeString('value') }),
  });

  builder.prismaObject('SkinProfile', {
    description: 'Sensitive personal information: readable by the customer and by roles that treat them.',
    fields: (t) => ({
      skinType: t.expose('skinType', { type: SkinType, nullable: true }),
      allergies: t.exposeStringList('allergies'),
      sensitivities: t.exposeStringList('sensitivities'),
      carePreferences: t.exposeStringList('carePreferences'),
      updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    }),
  });

  builder.prismaObject('Consent', {
    description: 'A consent as it stands now (the newest decision for its purpose and partner).',
    fields: (t) => ({
      purpose: t.expose('purpose', { type: ConsentPurpose }),
      partnerOrganizationId: t.id({
        nullable: true,
        resolve: (consent) => (consent.partnerOrgId ? encodeGlobalID('Organization', consent.partnerOrgId) : null),
      }),
      granted: t.exposeBoolean('granted'),
      recordedAt: t.expose('recordedAt', { type: 'DateTime' }),
    }),
  });

  const CustomerFacts = builder
    .objectRef<{ visitCount: number; firstVisitAt: Date | null; lastVisitAt: Date | null; totalSpendMinor: bigint }>('CustomerFacts')
    .implement({
      description: 'Derived from completed visits, kept current in the transaction that completes a visit.',
      fields: (t) => ({
        visitCount: t.exposeInt('visitCount'),
        firstVisitAt: t.expose('firstVisitAt', { type: 'DateTime', nullable: true }),
        lastVisitAt: t.expose('lastVisitAt', { type: 'DateTime', nullable: true }),
        totalSpend: t.field({ type: 'Money', resolve: (f, _a, ctx) => moneyFor(ctx, f.totalSpendMinor) }),
        averageTicket: t.field({
          type: 'Money',
          nullable: true,
          description: 'Total spend ÷ completed visits, rounded half up to the minor unit.',
          resolve: (f, _a, ctx) =>
            f.visitCount === 0
              ? null
              : moneyFor(ctx, (f.totalSpendMinor * 2n + BigInt(f.visitCount)) / (2n * BigInt(f.visitCount))),
        }),
      }),
    });

  builder.prismaNode('Customer', {
    description: 'A customer of the organization, shared by all its stores.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [customerWhere(ctx)] }),
    fields: (t) => ({
      name: t.exposeString('name'),
      phone: t.string({
        description: 'E.164. Masked (+86 138****5678) for roles that do not contact customers.',
        resolve: (customer, _args, ctx) => (selfOr(ctx, customer.id, 'customers:contact') ? customer.phone : maskPhone(customer.phone)),
      }),
      birthday: t.expose('birthday', { type: 'Date', nullable: true }),
      gender: t.expose('gender', { type: Gender }),
      source: t.expose('source', { type: CustomerSource }),
      preferences: t.field({
        type: [Preference],
        resolve: (customer) =>
          Object.entries((customer.preferences ?? {}) as Record<string, string>).map(([key, value]) => ({ key, value: String(value) })),
      }),
      tags: t.exposeStringList('tags'),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
      updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
      homeStore: t.relation('homeStore', { nullable: true }),
      consultant: t.relation('consultant', { nullable: true, description: 'The assigned beauty consultant (美容顾问).' }),
      skinProfile: t.field({
        type: 'SkinProfile' as never,
        nullable: true,
        description: 'Null for roles that may not read health data.',
        select: { id: true, skinProfile: true },
        resolve: (customer, _args, ctx) => (selfOr(ctx, customer.id, 'customers:health') ? customer.skinProfile : null) as never,
      }),
      consents: t.field({
        type: ['Consent' as never],
        select: { consents: true },
        resolve: (customer) => currentConsents(customer.consents) as never,
      }),
      membership: t.relation('membership', { nullable: true }),
      facts: t.field({
        type: CustomerFacts,
        select: { facts: true },
        resolve: (customer) =>
          customer.facts ?? { visitCount: 0, firstVisitAt: null, lastVisitAt: null, totalSpendMinor: 0n },
      }),
    }),
  });

  const OrderDirection = builder.enumType('OrderDirection', { values: ['ASC', 'DESC'] as const });
  const CustomerOrderField = builder.enumType('CustomerOrderField', {
    values: ['NAME', 'CREATED_AT', 'LAST_VISIT_AT', 'TOTAL_SPEND'] as const,
  });
  const CustomerOrder = builder.inputType('CustomerOrder', {
    fields: (t) => ({
      field: t.field({ type: CustomerOrderField, required: true }),
      direction: t.field({ type: OrderDirection, required: false, defaultValue: 'ASC' }),
    }),
  });
  const CustomerFilter = builder.inputType('CustomerFilter', {
    fields: (t) => ({
      search: t.string({ description: 'Part of the name, or digits of the phone number.' }),
      tag: t.string(),
      homeStoreId: t.globalID(),
      lastVisitFrom: t.field({ type: 'DateTime', description: 'Last completed visit at or after this instant.' }),
      lastVisitTo: t.field({ type: 'DateTime', description: 'Last completed visit before this instant.' }),
      birthdayMonth: t.int({ description: '1–12.' }),
      hasMembership: t.boolean(),
    }),
  });

  builder.queryField('customers', (t) =>
    t.prismaConnection(
      {
        type: 'Customer',
        cursor: 'id',
        description: 'Customers of the organization. A customer token sees only themself.',
        args: {
          filter: t.arg({ type: CustomerFilter, required: false }),
          orderBy: t.arg({ type: CustomerOrder, required: false }),
        },
        complexity: (args) => pageCost(args),
        resolve: (query, _root, args, ctx) =>
          ctx.db.customer.findMany({ ...query, where: customerFilter(ctx, args.filter), orderBy: customerOrder(args.orderBy) }),
        totalCount: (_root, args, ctx) => ctx.db.customer.count({ where: customerFilter(ctx, args.filter) }),
      },
      { name: 'CustomerConnection' },
      { name: 'CustomerEdge' },
    ),
  );

  function customerFilter(
    ctx: Context,
    filter: { search?: string | null; tag?: string | null; homeStoreId?: { id: string } | null; lastVisitFrom?: Date | null; lastVisitTo?: Date | null; birthdayMonth?: number | null; hasMembership?: boolean | null } | null | undefined,
  ): Prisma.CustomerWhereInput {
    const and: Prisma.CustomerWhereInput[] = [customerWhere(ctx)];
    if (filter?.search?.trim()) {
      const search = filter.search.trim();
      const digits = search.replace(/\D/g, '');
      and.push({
        OR: [
          // Prisma passes `contains` to LIKE as it is: % and _ in a name search are plain characters.
          { name: { contains: search.replace(/[\\%_]/g, '\\$&'), mode: 'insensitive' } },
          // Only callers who may see phone numbers search by them: otherwise the search would unmask them digit by digit.
          ...(digits.length >= 3 && (ctx.principal?.kind === 'CUSTOMER' || can(ctx.principal, 'customers:contact'))
            ? [{ phone: { contains: digits } }]
            : []),
        ],
      });
    }
    if (filter?.tag) and.push({ tags: { has: filter.tag } });
    if (filter?.homeStoreId) and.push({ homeStoreId: filter.homeStoreId.id });
    if (filter?.lastVisitFrom || filter?.lastVisitTo) {
      and.push({ facts: { lastVisitAt: { ...(filter.lastVisitFrom ? { gte: filter.lastVisitFrom } : {}), ...(filter.lastVisitTo ? { lt: filter.lastVisitTo } : {}) } } });
    }
    if (filter?.birthdayMonth != null) and.push({ birthdayMonth: filter.birthdayMonth });
    if (filter?.hasMembership != null) and.push({ membership: filter.hasMembership ? { isNot: null } : { is: null } });
    return { AND: and };
  }

  function customerOrder(order: { field: string; direction?: string | null } | null | undefined): Prisma.CustomerOrderByWithRelationInput[] {
    const direction = order?.direction === 'DESC' ? 'desc' : 'asc';
    switch (order?.field) {
      case 'CREATED_AT':
        return [{ createdAt: direction }, { id: direction }];
      case 'LAST_VISIT_AT':
        return [{ facts: { lastVisitAt: { sort: direction, nulls: 'last' } } }, { id: direction }];
      case 'TOTAL_SPEND':
        return [{ facts: { totalSpendMinor: direction } }, { id: direction }];
      default:
        return [{ name: direction }, { id: direction }];
    }
  }

  registerCustomerMutations(builder, { Gender, CustomerSource, SkinType, ConsentPurpose });
}

const preferencesSchema = z
  .array(z.object({ key: z.string().trim().min(1).max(50), value: z.string().trim().max(200) }))
  .max(30)
  .transform((list) => Object.fromEntries(list.map(({ key, value }) => [key, value])));
const tagsSchema = z.array(z.string().trim().toLowerCase().regex(/^[\p{L}\p{N}][\p{L}\p{N} _-]{0,39}$/u, 'Tags are 1–40 letters, digits, spaces, - or _')).max(30);
const termListSchema = z.array(z.string().trim().min(1).max(60)).max(30);
const skinProfileSchema = z.object({
  skinType: z.enum(SKIN_TYPES).nullish(),
  allergies: termListSchema.nullish(),
  sensitivities: termListSchema.nullish(),
  carePreferences: termListSchema.nullish(),
});
const birthdaySchema = z
  .string()
  .nullish()
  .refine((value) => !value || (value >= '1900-01-01' && value <= new Date().toISOString().slice(0, 10)), 'Birthday must be a past date');

const customerFieldsSchema = {
  name: z.string().trim().min(1, 'Name is required').max(100),
  phone: z.string().trim().min(1, 'Phone is required').max(30),
  birthday: birthdaySchema,
  gender: z.enum(GENDERS).nullish(),
  source: z.enum(SOURCES).nullish(),
  preferences: preferencesSchema.nullish(),
  tags: tagsSchema.nullish(),
  skinProfile: skinProfileSchema.nullish(),
};

function registerCustomerMutations(
  builder: Builder,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Pothos enum refs, created in registerCustomer
  enums: Record<'Gender' | 'CustomerSource' | 'SkinType' | 'ConsentPurpose', any>,
) {
  const PreferenceInput = builder.inputType('PreferenceInput', {
    fields: (t) => ({ key: t.string({ required: true }), value: t.string({ required: true }) }),
  });
  const SkinProfileInput = builder.inputType('SkinProfileInput', {
    description: 'Health data: needs the HEALTH_DATA consent and the customers:health permission.',
    fields: (t) => ({
      skinType: t.field({ type: enums.SkinType }),
      allergies: t.stringList(),
      sensitivities: t.stringList(),
      carePreferences: t.stringList(),
    }),
  });

  const customerPayload = (t: any) => ({
    customer: t.prismaField({
      type: 'Customer',
      nullable: true,
      resolve: (query: object, payload: { customerId?: string }, _args: unknown, ctx: Context) =>
        payload.customerId ? ctx.db.customer.findFirst({ ...query, where: { id: payload.customerId, ...customerWhere(ctx) } }) : null,
    }),
  });

  defineMutation(builder, 'createCustomer', {
    description: 'Registers a customer. The phone number is normalised to E.164 and must be unique in the organization.',
    input: (t) => ({
      name: t.string({ required: true }),
      phone: t.string({ required: true, description: 'Any common format; read in the organization\'s region when it has no country code.' }),
      birthday: t.field({ type: 'Date' }),
      gender: t.field({ type: enums.Gender }),
      source: t.field({ type: enums.CustomerSource }),
      homeStoreId: t.globalID({ description: 'Defaults to the caller\'s first store.' }),
      consultantId: t.globalID(),
      preferences: t.field({ type: [PreferenceInput] }),
      tags: t.stringList(),
      skinProfile: t.field({ type: SkinProfileInput }),
      healthDataConsent: t.boolean({ description: 'The customer\'s separate consent to store health data (required with skinProfile).' }),
      marketingConsent: t.boolean(),
    }),
    payload: customerPayload,
    resolve: async (rawInput, ctx) => {
      const principal = requireCapability(ctx, 'customers:write');
      const input = parseInput(
        z.object({ ...customerFieldsSchema, healthDataConsent: z.boolean().nullish(), marketingConsent: z.boolean().nullish() }),
        rawInput,
      );
      const phone = normalizePhone(input.phone);
      const issues: { field: string[]; message: string }[] = [];
      if (!phone) issues.push({ field: fieldPath('phone'), message: 'Not a valid phone number' });
      if (input.skinProfile && !input.healthDataConsent) {
        issues.push({ field: fieldPath('healthDataConsent'), message: 'Storing a skin profile needs the customer\'s health-data consent' });
      }
      if (input.skinProfile && !can(principal, 'customers:health')) {
        issues.push({ field: fieldPath('skinProfile'), message: 'Your role may not record health data' });
      }
      if (issues.length) throw validationError(issues);
      const homeStoreId = rawInput.homeStoreId?.id ?? (principal.kind === 'CUSTOMER' ? undefined : principal.storeIds[0]);
      const actor = principalKey(principal);
      const customerId = await inTransaction(ctx.platform, ctx.db, principal.orgId, actor, async (tx, emit) => {
        await assertReferences(tx, ctx, { homeStoreId, consultantId: rawInput.consultantId?.id });
        let created;
        try {
          created = await tx.customer.create({
            data: {
              orgId: principal.orgId,
              name: input.name,
              phone: phone!,
              birthday: input.birthday ? new Date(`${input.birthday}T00:00:00Z`) : null,
              gender: input.gender ?? undefined,
              source: input.source ?? undefined,
              homeStoreId: homeStoreId ?? null,
              consultantId: rawInput.consultantId?.id ?? null,
              preferences: input.preferences ?? {},
              tags: [...new Set(input.tags ?? [])],
            },
            select: { id: true },
          });
        } catch (error) {
          if (pgErrorCode(error) === '23505' || (error as { code?: string }).code === 'P2002') {
            throw conflict('DUPLICATE_PHONE', 'A customer with this phone number already exists', fieldPath('phone'));
          }
          throw error;
        }
        await tx.customerFact.create({ data: { customerId: created.id, orgId: principal.orgId } });
        const consents = [
          ...(input.healthDataConsent != null ? [{ purpose: 'HEALTH_DATA' as const, granted: input.healthDataConsent }] : []),
          ...(input.marketingConsent != null ? [{ purpose: 'MARKETING' as const, granted: input.marketingConsent }] : []),
        ];
        if (consents.length) {
          await tx.consent.createMany({
            data: consents.map((c) => ({ ...c, orgId: principal.orgId, customerId: created.id, recordedBy: actor })),
          });
        }
        if (input.skinProfile) {
          await tx.skinProfile.create({ data: { customerId: created.id, orgId: principal.orgId, ...skinProfileData(input.skinProfile) } });
        }
        await emit({
          type: 'customer.created',
          aggregateType: 'Customer',
          aggregateId: created.id,
          streamKey: created.id,
          payload: { customerId: created.id, homeStoreId: homeStoreId ?? null, source: input.source ?? 'WALK_IN', hasSkinProfile: !!input.skinProfile },
        });
        return created.id;
      });
      return { customerId };
    },
  });

  defineMutation(builder, 'updateCustomer', {
    description: 'Changes a customer\'s profile. Omitted fields stay as they are; null clears an optional field.',
    input: (t) => ({
      customerId: t.globalID({ required: true }),
      name: t.string(),
      phone: t.string(),
      birthday: t.field({ type: 'Date' }),
      gender: t.field({ type: enums.Gender }),
      homeStoreId: t.globalID(),
      consultantId: t.globalID(),
      preferences: t.field({ type: [PreferenceInput] }),
      tags: t.stringList(),
      skinProfile: t.field({ type: SkinProfileInput }),
    }),
    payload: customerPayload,
    resolve: async (rawInput, ctx) => {
      const principal = requirePrincipal(ctx);
      const customerId = rawInput.customerId.id;
      const isSelf = principal.kind === 'CUSTOMER' && principal.customerId === customerId;
      if (!isSelf) requireCapability(ctx, 'customers:write');
      const input = parseInput(z.object(customerFieldsSchema).partial(), rawInput);
      const issues: { field: string[]; message: string }[] = [];
      const phone = input.phone != null ? normalizePhone(input.phone) : undefined;
      if (phone === null) issues.push({ field: fieldPath('phone'), message: 'Not a valid phone number' });
      if (input.skinProfile && !isSelf && !can(principal, 'customers:health')) {
        issues.push({ field: fieldPath('skinProfile'), message: 'Your role may not record health data' });
      }
      if (isSelf && (rawInput.homeStoreId !== undefined || rawInput.consultantId !== undefined)) {
        issues.push({ field: fieldPath(rawInput.homeStoreId !== undefined ? 'homeStoreId' : 'consultantId'), message: 'Customers cannot change their store or consultant' });
      }
      if (issues.length) throw validationError(issues);
      await inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const existing = await tx.customer.findFirst({ where: { id: customerId, ...customerWhere(ctx) }, select: { id: true } });
        if (!existing) throw notFound(fieldPath('customerId'), 'Customer');
        await assertReferences(tx, ctx, { homeStoreId: rawInput.homeStoreId?.id, consultantId: rawInput.consultantId?.id });
        if (input.skinProfile && !(await hasConsent(tx, customerId, 'HEALTH_DATA'))) {
          throw validationError([{ field: fieldPath('skinProfile'), message: 'The customer has not consented to storing health data' }]);
        }
        const data: Prisma.CustomerUncheckedUpdateInput = {};
        if (input.name != null) data.name = input.name;
        if (phone) data.phone = phone;
        if (input.birthday !== undefined) data.birthday = input.birthday ? new Date(`${input.birthday}T00:00:00Z`) : null;
        if (input.gender) data.gender = input.gender;
        if (rawInput.homeStoreId !== undefined) data.homeStoreId = rawInput.homeStoreId?.id ?? null;
        if (rawInput.consultantId !== undefined) data.consultantId = rawInput.consultantId?.id ?? null;
        if (input.preferences) data.preferences = input.preferences;
        if (input.tags) data.tags = [...new Set(input.tags)];
        try {
          await tx.customer.update({ where: { id: customerId }, data });
        } catch (error) {
          if (pgErrorCode(error) === '23505' || (error as { code?: string }).code === 'P2002') {
            throw conflict('DUPLICATE_PHONE', 'A customer with this phone number already exists', fieldPath('phone'));
          }
          throw error;
        }
        if (input.skinProfile) {
          const profile = skinProfileData(input.skinProfile);
          await tx.skinProfile.upsert({
            where: { customerId },
            create: { customerId, orgId: principal.orgId, ...profile },
            update: profile,
          });
        }
        await emit({
          type: 'customer.updated',
          aggregateType: 'Customer',
          aggregateId: customerId,
          streamKey: customerId,
          payload: { customerId, changed: Object.keys(rawInput).filter((k) => k !== 'customerId') },
        });
      });
      return { customerId };
    },
  });

  defineMutation(builder, 'recordConsent', {
    description:
      'Records a customer\'s decision on a purpose. Kept as history; the newest decision is in force. ' +
      'PARTNER_SHARING names the partner organization it allows.',
    input: (t) => ({
      customerId: t.globalID({ required: true }),
      purpose: t.field({ type: enums.ConsentPurpose, required: true }),
      granted: t.boolean({ required: true }),
      partnerOrganizationId: t.globalID(),
    }),
    payload: customerPayload,
    resolve: async (input, ctx) => {
      const principal = requirePrincipal(ctx);
      const customerId = input.customerId.id;
      if (!(principal.kind === 'CUSTOMER' && principal.customerId === customerId)) requireCapability(ctx, 'customers:write');
      const partnerOrgId = input.partnerOrganizationId?.id ?? null;
      if ((input.purpose === 'PARTNER_SHARING') !== (partnerOrgId !== null)) {
        throw validationError([{ field: fieldPath('partnerOrganizationId'), message: 'PARTNER_SHARING, and only it, names a partner organization' }]);
      }
      // The partner must be a clinic. Read through the system client: RLS hides other organizations from the tenant's.
      if (partnerOrgId && (await ctx.platform.orgSettings(partnerOrgId).catch(() => null))?.kind !== 'CLINIC') {
        throw notFound(fieldPath('partnerOrganizationId'), 'Partner clinic');
      }
      await inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const existing = await tx.customer.findFirst({ where: { id: customerId, ...customerWhere(ctx) }, select: { id: true } });
        if (!existing) throw notFound(fieldPath('customerId'), 'Customer');
        await tx.consent.create({
          data: { orgId: principal.orgId, customerId, purpose: input.purpose, granted: input.granted, partnerOrgId, recordedBy: principalKey(principal) },
        });
        await emit({
          type: input.granted ? 'customer.consentGranted' : 'customer.consentWithdrawn',
          aggregateType: 'Customer',
          aggregateId: customerId,
          streamKey: customerId,
          payload: { customerId, purpose: input.purpose, partnerOrgId },
        });
      });
      return { customerId };
    },
  });
}

function skinProfileData(profile: z.infer<typeof skinProfileSchema>) {
  return {
    ...(profile.skinType !== undefined ? { skinType: profile.skinType } : {}),
    ...(profile.allergies ? { allergies: profile.allergies } : {}),
    ...(profile.sensitivities ? { sensitivities: profile.sensitivities } : {}),
    ...(profile.carePreferences ? { carePreferences: profile.carePreferences } : {}),
  };
}

/** Referenced store and consultant must exist in the organization (and the store be in the caller's scope). */
async function assertReferences(tx: Tx, ctx: Context, refs: { homeStoreId?: string | null; consultantId?: string | null }) {
  const principal = requirePrincipal(ctx);
  if (refs.homeStoreId) {
    assertStoreInScope(principal, refs.homeStoreId, fieldPath('homeStoreId'));
    const store = await tx.store.findFirst({ where: { id: refs.homeStoreId, ...orgWhere(ctx) }, select: { id: true } });
    if (!store) throw notFound(fieldPath('homeStoreId'), 'Store');
  }
  if (refs.consultantId) {
    const consultant = await tx.staff.findFirst({
      where: { id: refs.consultantId, ...orgWhere(ctx), active: true, role: { in: ['CONSULTANT', 'STORE_MANAGER', 'OWNER'] } },
      select: { id: true },
    });
    if (!consultant) throw notFound(fieldPath('consultantId'), 'Consultant');
  }
}
