import type { Tx } from '../../core/db/clients.ts';
import type { PackagesConfig } from './config.ts';
import { allocateValue } from './customer-packages.ts';

interface TemplateSeed {
  name: string;
  description: string;
  services: { match: string; sessions: number }[];
  /** Share of the list price charged, in percent. */
  pricePct: number;
  validityMonths: number;
  trial?: boolean;
  followUpDays?: number[];
}

const TEMPLATES: TemplateSeed[] = [
  { name: '补水焕颜 6 次卡 Hydrating facial course ×6', description: 'Six 60-minute hydrating facials, 20% off.', services: [{ match: 'Hydrating facial', sessions: 6 }], pricePct: 80, validityMonths: 12 },
  {
    name: '超声刀提拉 + 术后修复 HIFU lifting with 3 repair-care sessions',
    description: 'An ultrasound lifting procedure followed by three post-procedure repair-care sessions, with follow-ups over 3 months.',
    services: [{ match: 'HIFU', sessions: 1 }, { match: 'Post-procedure repair', sessions: 3 }],
    pricePct: 90,
    validityMonths: 12,
    followUpDays: [1, 7, 30, 90],
  },
  { name: '光子嫩肤 3 次疗程 IPL photo-rejuvenation course ×3', description: 'Three IPL sessions a month apart.', services: [{ match: 'IPL', sessions: 3 }], pricePct: 85, validityMonths: 6, followUpDays: [7, 30] },
  { name: '补水体验装 Hydrating facial trial pack ×2', description: 'A small trial course: two hydrating facials.', services: [{ match: 'Hydrating facial', sessions: 2 }], pricePct: 50, validityMonths: 3, trial: true },
];

/**
 * Demo data for a seeded chain: package templates and a follow-up schedule; packages sold on recent completed visits,
 * partly used (through the sessions ledger, so remaining counts come from its trigger), one refunded and one frozen;
 * and, for the chain whose customers consented to sharing with the partner clinic, an active partnership with joint
 * HIFU plans (the clinic's procedure done with its outcome, salon repair care scheduled, follow-ups generated), one plan
 * the clinic cannot see (no consent); and an upcoming booking of a contraindicated service, flagged.
 */
export async function seedPackagesDemo({ tx, orgId, config }: { tx: Tx; orgId: string; config: PackagesConfig }) {
  const services = await tx.service.findMany({ where: { orgId, active: true }, orderBy: { name: 'asc' } });
  if (services.length === 0) return;
  const find = (match: string) => services.find((s) => s.name.includes(match));
  await tx.followUpTemplate.create({ data: { orgId, name: '术后回访 Post-procedure follow-ups (days 1, 7, 30, 90)', offsetsDays: [1, 7, 30, 90] } });

  const seeds = TEMPLATES.filter((t) => t.services.every((s) => find(s.match)));
  if (seeds.length === 0) {
    const first = services[0]!;
    seeds.push({ name: `${first.name} ×5`, description: 'Five sessions, 15% off.', services: [{ match: first.name, sessions: 5 }], pricePct: 85, validityMonths: 12 });
  }
  const templates = [];
  for (const seed of seeds) {
    const lines = seed.services.map((s) => ({ service: find(s.match)!, sessions: s.sessions }));
    const list = lines.reduce((sum, l) => sum + l.service.priceMinor * l.sessions, 0);
    const template = await tx.packageTemplate.create({
      data: {
        orgId,
        name: seed.name,
        description: seed.description,
        priceMinor: Math.round((list * seed.pricePct) / 10_000) * 100,
        validityMonths: seed.validityMonths,
        trial: seed.trial ?? false,
        followUpDays: seed.followUpDays ?? [],
        services: { create: lines.map((l) => ({ serviceId: l.service.id, sessions: l.sessions })) },
      },
      include: { services: true },
    });
    templates.push({ template, lines });
  }

  // Customers' latest completed visit in the last 300 days, one package each, in a stable order.
  const buyers = await tx.$queryRaw<{ visit_id: string; customer_id: string; store_id: string; completed_at: Date; timezone: string }[]>`
    SELECT DISTINCT ON (v.customer_id) v.id AS visit_id, v.customer_id, v.store_id, v.completed_at, s.timezone
      FROM visit v JOIN store s ON s.id = v.store_id
     WHERE v.org_id = ${orgId}::uuid AND v.status = 'COMPLETED' AND v.completed_at > now() - interval '300 days'
     ORDER BY v.customer_id, v.completed_at DESC`;
  buyers.sort((a, b) => a.completed_at.getTime() - b.completed_at.getTime() || a.customer_id.localeCompare(b.customer_id));
  const sold: { id: string; customerId: string; storeId: string }[] = [];
  for (const [i, buyer] of buyers.slice(0, 48).entries()) {
    const { template, lines } = templates[i % templates.length]!;
    const [row] = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO customer_package (org_id, customer_id, template_id, store_id, visit_id, name, trial, price_minor, purchased_at,
                                    expires_at, follow_up_days, sold_by)
      VALUES (${orgId}::uuid, ${buyer.customer_id}::uuid, ${template.id}::uuid, ${buyer.store_id}::uuid, ${buyer.visit_id}::uuid,
              ${template.name}, ${template.trial}, ${template.priceMinor}::int, ${buyer.completed_at},
              ((((${buyer.completed_at}::timestamptz AT TIME ZONE ${buyer.timezone})::date
                 + make_interval(months => ${template.validityMonths}::int))::date + 1)::timestamp AT TIME ZONE ${buyer.timezone}),
              ${template.followUpDays}::int[], 'seed')
      ON CONFLICT DO NOTHING
      RETURNING id`;
    if (!row) continue;
    const values = allocateValue(template.priceMinor, lines.map((l) => ({ sessions: l.sessions, listPriceMinor: l.service.priceMinor })));
    for (const [j, line] of lines.entries()) {
      await tx.$executeRaw`
        INSERT INTO customer_package_service (customer_package_id, org_id, service_id, sessions_total, value_minor)
        VALUES (${row.id}::uuid, ${orgId}::uuid, ${line.service.id}::uuid, ${line.sessions}::int, ${values[j]!}::int)`;
    }
    sold.push({ id: row.id, customerId: buyer.customer_id, storeId: buyer.store_id });
    // Sessions used on the sale visit and, for every other package, one more: only while the package is valid.
    const uses = i % 3;
    for (let k = 0; k < uses; k++) {
      await tx.$executeRaw`
        INSERT INTO package_session_entry (org_id, customer_package_id, service_id, customer_id, kind, sessions, visit_id, store_id, actor, created_at)
        SELECT ${orgId}::uuid, p.id, l.service_id, p.customer_id, 'CONSUME', 1, p.visit_id, p.store_id, 'seed', p.purchased_at + make_interval(mins => ${k}::int)
          FROM customer_package p
          JOIN customer_package_service l ON l.customer_package_id = p.id AND l.sessions_remaining > 0
         WHERE p.id = ${row.id}::uuid AND p.expires_at > now()
         ORDER BY l.value_minor / l.sessions_total, l.service_id
         LIMIT 1`;
    }
  }
  if (sold.length >= 2) {
    // One refunded at its store (pro rata, through the ledger), one frozen.
    const refunded = sold[1]!;
    const [refund] = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO package_refund (org_id, customer_package_id, store_id, sessions, amount_minor, reason, actor)
      SELECT ${orgId}::uuid, p.id, p.store_id, sum(l.sessions_remaining)::int,
             sum(l.value_minor - (l.value_minor::bigint * (l.sessions_total - l.sessions_remaining)) / l.sessions_total)::int,
             '顾客搬迁 Customer moved to another city', 'seed'
        FROM customer_package p JOIN customer_package_service l ON l.customer_package_id = p.id
       WHERE p.id = ${refunded.id}::uuid GROUP BY p.id, p.store_id
      RETURNING id`;
    await tx.$executeRaw`
      INSERT INTO package_session_entry (org_id, customer_package_id, service_id, customer_id, kind, sessions, store_id, refund_id, actor)
      SELECT org_id, customer_package_id, service_id, ${refunded.customerId}::uuid, 'REFUND', sessions_remaining, ${refunded.storeId}::uuid, ${refund!.id}::uuid, 'seed'
        FROM customer_package_service WHERE customer_package_id = ${refunded.id}::uuid AND sessions_remaining > 0`;
    await tx.$executeRaw`UPDATE customer_package SET status = 'REFUNDED', refunded_at = now() WHERE id = ${refunded.id}::uuid`;
    await tx.$executeRaw`UPDATE customer_package SET status = 'FROZEN', frozen_at = now() - interval '5 days' WHERE id = ${sold[sold.length - 1]!.id}::uuid`;
  }

  await seedPlans(tx, orgId, config, find);

  // One upcoming booking of a service contraindicated for its customer (the core demo books none), so a flag shows.
  await tx.$executeRaw`
    WITH pick AS (
      SELECT c.id AS customer_id, c.home_store_id, s.id AS service_id, s.name, s.price_minor, s.duration_minutes
        FROM customer c
        JOIN skin_profile sp ON sp.customer_id = c.id
        JOIN service s ON s.org_id = c.org_id AND s.active AND s.contraindication_tags && (sp.allergies || sp.sensitivities)
       WHERE c.org_id = ${orgId}::uuid AND c.home_store_id IS NOT NULL
       ORDER BY c.created_at, c.id, s.name LIMIT 1
    ), booked AS (
      INSERT INTO visit (org_id, store_id, customer_id, status, scheduled_start, scheduled_end, total_minor, notes)
      SELECT ${orgId}::uuid, home_store_id, customer_id, 'BOOKED', date_trunc('day', now()) + interval '7 days 7 hours',
             date_trunc('day', now()) + interval '7 days 7 hours' + make_interval(mins => duration_minutes), price_minor, 'Booked online'
        FROM pick
      RETURNING id
    )
    INSERT INTO visit_line (org_id, visit_id, position, kind, service_id, description, quantity, unit_price_minor, amount_minor)
    SELECT ${orgId}::uuid, booked.id, 0, 'SERVICE', pick.service_id, pick.name, 1, pick.price_minor, pick.price_minor FROM booked, pick`;

  // Upcoming bookings of services contraindicated for the customer, without an acknowledgement: flagged.
  await tx.$executeRaw`
    INSERT INTO contraindication_flag (org_id, visit_id, customer_id, store_id, service_id, tags)
    SELECT v.org_id, v.id, v.customer_id, v.store_id, s.id,
           ARRAY(SELECT DISTINCT t FROM unnest(s.contraindication_tags) t WHERE t = ANY(sp.allergies) OR t = ANY(sp.sensitivities) ORDER BY t)
      FROM visit v
      JOIN visit_line l ON l.visit_id = v.id AND l.kind = 'SERVICE'
      JOIN service s ON s.id = l.service_id
      JOIN skin_profile sp ON sp.customer_id = v.customer_id
     WHERE v.org_id = ${orgId}::uuid AND v.status = 'BOOKED'
       AND s.contraindication_tags && (sp.allergies || sp.sensitivities)
    ON CONFLICT DO NOTHING`;
}

async function seedPlans(tx: Tx, orgId: string, config: PackagesConfig, find: (match: string) => { id: string } | undefined) {
  const [clinic] = await tx.$queryRaw<{ id: string }[]>`
    SELECT o.id FROM organization o
     WHERE o.kind = 'CLINIC' AND EXISTS (SELECT 1 FROM consent c WHERE c.org_id = ${orgId}::uuid AND c.partner_org_id = o.id)
     ORDER BY o.created_at LIMIT 1`;
  if (!clinic) return;
  const open = await tx.clinicPartnership.findFirst({ where: { orgId, clinicOrgId: clinic.id, status: { not: 'ENDED' } } });
  if (open && open.status !== 'ACTIVE') return;
  if (!open) await tx.clinicPartnership.create({
    data: {
      orgId,
      clinicOrgId: clinic.id,
      status: 'ACTIVE',
      proposedByOrgId: orgId,
      proposedBy: 'seed',
      note: '联合抗衰方案合作 Joint anti-ageing programme',
      acceptedAt: new Date(Date.now() - 200 * 86_400_000),
      acceptedBy: 'seed',
      createdAt: new Date(Date.now() - 210 * 86_400_000),
    },
  });
  const clinicService = await tx.service.findFirst({ where: { orgId: clinic.id, name: { contains: 'Ultraformer' } } });
  // Customers whose newest PARTNER_SHARING decision for the clinic is a grant, and a few without one.
  const customers = await tx.$queryRaw<{ id: string; home_store_id: string; shared: boolean }[]>`
    SELECT c.id, c.home_store_id,
           coalesce((SELECT k.granted FROM consent k WHERE k.customer_id = c.id AND k.purpose = 'PARTNER_SHARING'
                      AND k.partner_org_id = ${clinic.id}::uuid ORDER BY k.recorded_at DESC, k.granted LIMIT 1), false) AS shared
      FROM customer c
     WHERE c.org_id = ${orgId}::uuid AND c.home_store_id IS NOT NULL
     ORDER BY c.created_at, c.id`;
  const shared = customers.filter((c) => c.shared).slice(0, 6);
  const unshared = customers.filter((c) => !c.shared).slice(0, 1);
  const repair = find('Post-procedure repair');
  const day = 86_400_000;
  for (const [i, customer] of [...shared, ...unshared].entries()) {
    const plan = await tx.treatmentPlan.create({
      data: {
        orgId,
        customerId: customer.id,
        storeId: customer.home_store_id,
        clinicOrgId: clinic.id,
        title: '超声刀提拉联合方案 HIFU lifting with salon repair care',
        goal: 'Firmer jawline; calm, hydrated skin through the recovery.',
        createdBy: 'seed',
        createdAt: new Date(Date.now() - (30 + i) * day),
      },
    });
    const procedureDone = i % 3 !== 2;
    const done = (daysAgo: number) => new Date(Date.now() - daysAgo * day);
    const steps = [
      { location: 'SALON' as const, title: '术前皮肤评估 Pre-procedure skin assessment', status: 'DONE' as const, completedAt: done(21 + i), outcome: 'Skin barrier intact; no active inflammation.', followUpDays: [] },
      {
        location: 'CLINIC' as const,
        title: '超声刀提拉 HIFU ultrasound lifting',
        serviceId: clinicService?.id ?? null,
        status: procedureDone ? ('DONE' as const) : ('SCHEDULED' as const),
        scheduledAt: procedureDone ? done(14 + i) : new Date(Date.now() + (3 + i) * day),
        completedAt: procedureDone ? done(14 + i) : null,
        outcome: procedureDone ? 'Full-face HIFU, 400 lines at 3.0/4.5 mm; mild redness resolved within the session.' : null,
        aftercareInstructions: procedureDone ? 'No hot baths or saunas for 7 days; SPF 50 daily; gentle cleanser only; repair care from day 3.' : null,
        followUpDays: config.defaultClinicFollowUpDays,
      },
      ...[0, 1, 2].map((k) => ({
        location: 'SALON' as const,
        title: `术后修复护理 Post-procedure repair care ${k + 1}/3`,
        serviceId: repair?.id ?? null,
        status: procedureDone && k === 0 ? ('DONE' as const) : procedureDone && k === 1 ? ('SCHEDULED' as const) : ('PLANNED' as const),
        completedAt: procedureDone && k === 0 ? done(10 + i) : null,
        scheduledAt: procedureDone && k === 1 ? new Date(Date.now() + (2 + i) * day) : null,
        outcome: procedureDone && k === 0 ? 'Moisture 38% → 51%; redness gone.' : null,
        followUpDays: [],
      })),
    ];
    for (const [position, step] of steps.entries()) {
      await tx.treatmentPlanStep.create({
        data: {
          orgId,
          planId: plan.id,
          customerId: customer.id,
          clinicOrgId: clinic.id,
          position,
          ...step,
          completedBy: step.completedAt ? 'seed' : null,
        },
      });
    }
  }
}
