import { encodeGlobalID } from '@pothos/plugin-relay';
import { principalKey } from '../../core/auth/policy.ts';
import type { Principal } from '../../core/auth/principal.ts';
import type { Tx } from '../../core/db/clients.ts';
import { inTransaction, type Emit } from '../../core/events/outbox.ts';
import { requireCapability } from '../../core/graph/access.ts';
import type { Builder } from '../../core/graphql/builder.ts';
import { requirePrincipal, type Context } from '../../core/graphql/context.ts';
import { conflict, fieldPath, notFound, pgErrorCode, validationError } from '../../core/graphql/errors.ts';
import { defineMutation } from '../../core/graphql/mutation.ts';
import { orgKind, organizationLoader, partnershipWhere } from './access.ts';

export interface PartnerOrganization {
  id: string;
  name: string;
  kind: 'CHAIN' | 'CLINIC';
}

export function registerPartnerOrganization(builder: Builder) {
  return builder.objectRef<PartnerOrganization>('PartnerOrganization').implement({
    description: 'The other party of a partnership, as the partners see each other: a name and a kind, nothing more.',
    fields: (t) => ({
      id: t.id({ description: 'The organization\'s global id (Organization).', resolve: (o) => encodeGlobalID('Organization', o.id) }),
      name: t.exposeString('name'),
      kind: t.field({ type: 'OrganizationKind' as never, resolve: (o) => o.kind as never }),
    }),
  });
}

type Partnership = NonNullable<Awaited<ReturnType<Tx['clinicPartnership']['findFirst']>>>;

async function emitPartnership(emit: Emit, type: string, row: Partnership) {
  await emit({
    type,
    aggregateType: 'ClinicPartnership',
    aggregateId: row.id,
    payload: { partnershipId: row.id, chainOrgId: row.orgId, clinicOrgId: row.clinicOrgId, status: row.status },
  });
}

/** Locks a partnership the caller is party to (row-level security lets either side see it). */
async function lockPartnership(tx: Tx, ctx: Context, id: string): Promise<Partnership> {
  const principal = requirePrincipal(ctx);
  const [locked] = await tx.$queryRaw<{ id: string }[]>`
    SELECT id FROM clinic_partnership WHERE id = ${id}::uuid
       AND (org_id = ${principal.orgId}::uuid OR clinic_org_id = ${principal.orgId}::uuid) FOR UPDATE`;
  const row = locked ? await tx.clinicPartnership.findFirst({ where: { AND: [{ id }, partnershipWhere(ctx)] } }) : null;
  if (!row) throw notFound(fieldPath('partnershipId'), 'Partnership');
  return row;
}

/** The guard trigger has the last word on transitions; its refusal is the same conflict the checks below give. */
async function guarded<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (pgErrorCode(error) === '23514') throw conflict('INVALID_STATE', 'The partnership cannot make this change', fieldPath('partnershipId'));
    throw error;
  }
}

export function registerPartnerships(builder: Builder) {
  const PartnerOrg = registerPartnerOrganization(builder);
  const Status = builder.enumType('ClinicPartnershipStatus', {
    values: ['PROPOSED', 'ACTIVE', 'SUSPENDED', 'ENDED'] as const,
    description: 'PROPOSED by one owner → ACTIVE once the other accepts; SUSPENDED or ENDED stop the clinic\'s access at once.',
  });

  const orgField = (t: any, column: 'orgId' | 'clinicOrgId' | 'proposedByOrgId', description: string) =>
    t.field({
      type: PartnerOrg,
      description,
      resolve: (p: Partnership, _a: unknown, ctx: Context) => organizationLoader(ctx).load(p[column]),
    });

  builder.prismaNode('ClinicPartnership', {
    description: 'A beauty chain and a medical-aesthetic clinic working together on joint treatment plans, agreed by both owners.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [partnershipWhere(ctx)] }),
    fields: (t) => ({
      status: t.expose('status', { type: Status }),
      chain: orgField(t, 'orgId', 'The beauty chain.'),
      clinic: orgField(t, 'clinicOrgId', 'The partner clinic.'),
      proposedBy: orgField(t, 'proposedByOrgId', 'Who proposed it; the other party accepts.'),
      awaitingMyAcceptance: t.boolean({
        description: 'Proposed by the other party and waiting for the caller\'s organization to accept.',
        resolve: (p, _a, ctx) => p.status === 'PROPOSED' && p.proposedByOrgId !== requirePrincipal(ctx).orgId,
      }),
      note: t.exposeString('note', { nullable: true }),
      acceptedAt: t.expose('acceptedAt', { type: 'DateTime', nullable: true }),
      suspendedAt: t.expose('suspendedAt', { type: 'DateTime', nullable: true }),
      endedAt: t.expose('endedAt', { type: 'DateTime', nullable: true }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
      updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    }),
  });

  builder.queryField('clinicPartnerships', (t) =>
    t.prismaField({
      type: ['ClinicPartnership'],
      description: 'Partnerships of the caller\'s organization (as chain or as clinic), newest first; staff only.',
      args: { includeEnded: t.arg.boolean({ required: false, defaultValue: false }) },
      resolve: (query, _root, args, ctx) =>
        ctx.db.clinicPartnership.findMany({
          ...query,
          where: { AND: [partnershipWhere(ctx), args.includeEnded ? {} : { status: { not: 'ENDED' } }] },
          orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
        }),
    }),
  );

  const payload = (t: any) => ({
    partnership: t.prismaField({
      type: 'ClinicPartnership',
      nullable: true,
      resolve: (query: object, p: { partnershipId?: string }, _a: unknown, ctx: Context) =>
        p.partnershipId ? ctx.db.clinicPartnership.findFirst({ ...query, where: { AND: [{ id: p.partnershipId }, partnershipWhere(ctx)] } }) : null,
    }),
  });

  defineMutation(builder, 'proposeClinicPartnership', {
    description: 'An owner proposes a partnership to a clinic (from a chain) or to a chain (from a clinic); the other owner accepts it.',
    input: (t) => ({
      partnerOrganizationId: t.globalID({ required: true, description: 'The clinic (or chain) to partner with.' }),
      note: t.string(),
    }),
    payload,
    resolve: async (input, ctx) => {
      const principal = requireCapability(ctx, 'partnerships:manage');
      const note = input.note?.trim() || null;
      if (note && note.length > 1000) throw validationError([{ field: fieldPath('note'), message: 'A note is at most 1000 characters' }]);
      const partnerId = input.partnerOrganizationId.id;
      const [mine, theirs] = await Promise.all([orgKind(ctx), partnerId === principal.orgId ? null : orgKind(ctx, partnerId)]);
      // Only a chain–clinic pair partners; anything else answers like an unknown organization.
      if (!mine || !theirs || mine === theirs) throw notFound(fieldPath('partnerOrganizationId'), 'Partner organization');
      const chainId = mine === 'CHAIN' ? principal.orgId : partnerId;
      const clinicId = mine === 'CLINIC' ? principal.orgId : partnerId;
      return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
        const open = await tx.clinicPartnership.findFirst({ where: { orgId: chainId, clinicOrgId: clinicId, status: { not: 'ENDED' } }, select: { id: true } });
        if (open) throw conflict('PARTNERSHIP_EXISTS', 'There is already a partnership with this organization', fieldPath('partnerOrganizationId'));
        let row: Partnership;
        try {
          row = await tx.clinicPartnership.create({
            data: { orgId: chainId, clinicOrgId: clinicId, proposedByOrgId: principal.orgId, proposedBy: principalKey(principal), note },
          });
        } catch (error) {
          if (pgErrorCode(error) === '23505') throw conflict('PARTNERSHIP_EXISTS', 'There is already a partnership with this organization', fieldPath('partnerOrganizationId'));
          throw error;
        }
        await emitPartnership(emit, 'partnership.proposed', row);
        return { partnershipId: row.id };
      });
    },
  });

  const transition = (
    name: string,
    description: string,
    change: (row: Partnership, principal: Principal) => Record<string, unknown>,
    event: string,
  ) =>
    defineMutation(builder, name, {
      description,
      input: (t) => ({ partnershipId: t.globalID({ required: true }) }),
      payload,
      resolve: async (input, ctx) => {
        const principal = requireCapability(ctx, 'partnerships:manage');
        return inTransaction(ctx.platform, ctx.db, principal.orgId, principalKey(principal), async (tx, emit) => {
          const row = await lockPartnership(tx, ctx, input.partnershipId.id);
          const data = change(row, principal);
          const updated = await guarded(() => tx.clinicPartnership.update({ where: { id: row.id }, data: { ...data, updatedAt: new Date() } }));
          await emitPartnership(emit, event, updated);
          return { partnershipId: row.id };
        });
      },
    });

  const refuse = (message: string) => {
    throw conflict('INVALID_STATE', message, fieldPath('partnershipId'));
  };

  transition(
    'acceptClinicPartnership',
    'The other party\'s owner accepts a proposed partnership; it becomes ACTIVE.',
    (row, principal) => {
      if (row.status !== 'PROPOSED') refuse('Only a proposed partnership can be accepted');
      if (row.proposedByOrgId === principal.orgId) refuse('The other party accepts a proposal');
      return { status: 'ACTIVE', acceptedAt: new Date(), acceptedBy: principalKey(principal) };
    },
    'partnership.accepted',
  );
  transition(
    'suspendClinicPartnership',
    'Either owner suspends an active partnership: the clinic loses access to every shared plan at once.',
    (row, principal) => {
      if (row.status !== 'ACTIVE') refuse('Only an active partnership can be suspended');
      return { status: 'SUSPENDED', suspendedAt: new Date(), suspendedByOrgId: principal.orgId };
    },
    'partnership.suspended',
  );
  transition(
    'resumeClinicPartnership',
    'The owner who suspended a partnership resumes it.',
    (row, principal) => {
      if (row.status !== 'SUSPENDED') refuse('Only a suspended partnership can be resumed');
      if (row.suspendedByOrgId !== principal.orgId) refuse('Only the party that suspended it can resume it');
      return { status: 'ACTIVE', suspendedAt: null, suspendedByOrgId: null };
    },
    'partnership.resumed',
  );
  transition(
    'endClinicPartnership',
    'Either owner ends a partnership (or withdraws or declines a proposal). Final: a new one must be proposed.',
    (row, principal) => {
      if (row.status === 'ENDED') refuse('The partnership has already ended');
      return { status: 'ENDED', endedAt: new Date(), endedBy: principalKey(principal), suspendedAt: null, suspendedByOrgId: null };
    },
    'partnership.ended',
  );
}
