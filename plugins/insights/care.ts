import { Prisma } from '../../core/db/generated/client.ts';
import type { Tx } from '../../core/db/clients.ts';
import { DOMAIN_EVENT_COLUMNS, toDomainEvent, type DomainEvent, type DomainEventRow, type Emit } from '../../core/events/outbox.ts';
import type { Platform } from '../../core/platform.ts';
import type { HandlerContext } from '../../core/plugin/contract.ts';
import type { CareKind, InsightsConfig } from './config.ts';
import { thresholdsFor } from './settings.ts';

export const ACTOR = 'plugin:insights';

/**
 * Care tasks. Each comes from a candidate row with a dedupe key naming its (kind, customer, period); the key is unique
 * per organization and the insert says ON CONFLICT DO NOTHING, so generating again — a second job run, two runs at
 * once, a redelivered event — creates nothing twice:
 *   WIN_BACK    win-back:<customer>:<last visit instant>  the customer reached churnDays without a visit (once per lapse),
 *                                                         and has no visit booked; due winBackDueHours later
 *   BIRTHDAY    birthday:<customer>:<local YYYY-MM>        the birthday month in the home store's time zone (else the
 *                                                         organization's); due by the end of the birthday
 *   REPURCHASE  repurchase:<customer>:<service>:<visit>    the service's repurchase cycle from the customer's last
 *                                                         completed visit with it comes round within repurchaseLeadDays
 *   FEEDBACK    feedback:<visit>                           on visit.completed; due feedbackDueHours after the visit
 *   FOLLOW_UP   follow-up:<visit>                          followUpAfterDays after a completed visit; due followUpDueDays after it
 * Assigned to the customer's consultant (when active), at the customer's home store (visit tasks: the visit's store).
 */

const candidateColumns = Prisma.sql`kind, dedupe_key, customer_id, store_id, assignee_id, visit_id, service_id, title, due_at`;

interface CreatedTask {
  id: string;
  kind: CareKind;
  customerId: string;
  storeId: string | null;
  assigneeId: string | null;
  dueAt: Date;
}

/** Inserts the candidates that are new (and their CREATED log lines); returns the tasks created. */
async function insertTasks(tx: Tx, orgId: string, candidates: Prisma.Sql): Promise<CreatedTask[]> {
  return tx.$queryRaw<CreatedTask[]>`
    WITH candidate (${candidateColumns}) AS (${candidates}),
    created AS (
      INSERT INTO insights_care_task (org_id, ${candidateColumns})
      SELECT ${orgId}::uuid, ${candidateColumns} FROM candidate
      ORDER BY dedupe_key -- two runs at once take the keys in the same order
      ON CONFLICT (org_id, dedupe_key) DO NOTHING
      RETURNING id, kind, customer_id, store_id, assignee_id, due_at
    ),
    logged AS (
      INSERT INTO insights_care_task_log (org_id, task_id, action, assignee_id, actor)
      SELECT ${orgId}::uuid, id, 'CREATED', assignee_id, ${ACTOR} FROM created
    )
    SELECT id, kind::text AS kind, customer_id AS "customerId", store_id AS "storeId", assignee_id AS "assigneeId", due_at AS "dueAt"
    FROM created`;
}

export function taskEvent(task: { id: string; kind: string; customerId: string; storeId: string | null; assigneeId: string | null }, type: string, extra: Record<string, unknown> = {}) {
  return {
    type,
    aggregateType: 'CareTask',
    aggregateId: task.id,
    streamKey: task.customerId,
    payload: { taskId: task.id, kind: task.kind, customerId: task.customerId, storeId: task.storeId, assigneeId: task.assigneeId, ...extra },
  };
}

/** The customer's consultant, when one is assigned and still active. */
const consultant = Prisma.sql`(SELECT s.id FROM staff s WHERE s.id = c.consultant_id AND s.active)`;
const noBooking = (now: Date) => Prisma.sql`NOT EXISTS (
  SELECT 1 FROM visit b WHERE b.org_id = c.org_id AND b.customer_id = c.id AND b.status IN ('BOOKED', 'CHECKED_IN') AND b.scheduled_end > ${now}::timestamptz)`;

interface GenerationContext {
  orgId: string;
  timezone: string;
  now: Date;
  config: InsightsConfig;
  churnDays: number;
  lostDays: number;
}

function candidates(kind: CareKind, g: GenerationContext): Prisma.Sql | null {
  const { orgId, now, config } = g;
  switch (kind) {
    case 'WIN_BACK':
      return Prisma.sql`
        SELECT 'WIN_BACK'::insights_care_task_kind AS kind,
               'win-back:' || c.id || ':' || to_char(f.last_visit_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS dedupe_key,
               c.id AS customer_id,
               coalesce(c.home_store_id, (SELECT v.store_id FROM visit v WHERE v.org_id = c.org_id AND v.customer_id = c.id
                                           AND v.status = 'COMPLETED' ORDER BY v.completed_at DESC LIMIT 1)) AS store_id,
               ${consultant} AS assignee_id, NULL::uuid AS visit_id, NULL::uuid AS service_id,
               'Win back: no visit in ' || ${g.churnDays}::int || ' days' AS title,
               ${now}::timestamptz + make_interval(hours => ${config.care.winBackDueHours}::int) AS due_at
        FROM customer c JOIN customer_fact f ON f.customer_id = c.id
        WHERE c.org_id = ${orgId}::uuid
          AND f.last_visit_at <= ${now}::timestamptz - make_interval(days => ${g.churnDays}::int)
          AND f.last_visit_at > ${now}::timestamptz - make_interval(days => ${g.lostDays}::int)
          AND ${noBooking(now)}`;
    case 'BIRTHDAY':
      return Prisma.sql`
        SELECT 'BIRTHDAY'::insights_care_task_kind, 'birthday:' || c.id || ':' || to_char(l.local_now, 'YYYY-MM'),
               c.id, c.home_store_id, ${consultant}, NULL::uuid, NULL::uuid,
               'Birthday care: birthday on ' || to_char(b.day, 'FMMonth FMDD'),
               greatest(((b.day + 1)::timestamp AT TIME ZONE l.tz), ${now}::timestamptz + interval '24 hours')
        FROM customer c
        LEFT JOIN store hs ON hs.id = c.home_store_id
        CROSS JOIN LATERAL (SELECT coalesce(hs.timezone, ${g.timezone}) AS tz, ${now}::timestamptz AT TIME ZONE coalesce(hs.timezone, ${g.timezone}) AS local_now) l
        CROSS JOIN LATERAL (
          SELECT make_date(extract(year FROM l.local_now)::int, c.birthday_month,
                           least(extract(day FROM c.birthday)::int,
                                 extract(day FROM date_trunc('month', l.local_now) + interval '1 month - 1 day')::int)) AS day
        ) b
        WHERE c.org_id = ${orgId}::uuid AND c.birthday IS NOT NULL AND c.birthday_month = extract(month FROM l.local_now)`;
    case 'REPURCHASE':
      return Prisma.sql`
        WITH last_service AS (
          SELECT DISTINCT ON (v.customer_id, l.service_id)
                 v.customer_id, l.service_id, v.id AS visit_id, v.store_id, v.completed_at, s.repurchase_cycle_days AS cycle, s.name
          FROM visit v
          JOIN visit_line l ON l.visit_id = v.id AND l.kind = 'SERVICE'
          JOIN service s ON s.id = l.service_id
          WHERE v.org_id = ${orgId}::uuid AND v.status = 'COMPLETED' AND s.repurchase_cycle_days IS NOT NULL AND s.active
            AND v.completed_at > ${now}::timestamptz - make_interval(days => 7 + (
              SELECT coalesce(max(repurchase_cycle_days), 0) FROM service WHERE org_id = ${orgId}::uuid))
          ORDER BY v.customer_id, l.service_id, v.completed_at DESC, v.id DESC
        )
        SELECT 'REPURCHASE'::insights_care_task_kind, 'repurchase:' || ls.customer_id || ':' || ls.service_id || ':' || ls.visit_id,
               ls.customer_id, ls.store_id, ${consultant}, ls.visit_id, ls.service_id,
               'Repurchase cycle: ' || ls.name, ls.completed_at + make_interval(days => ls.cycle)
        FROM last_service ls JOIN customer c ON c.id = ls.customer_id
        WHERE ls.completed_at + make_interval(days => ls.cycle - ${config.care.repurchaseLeadDays}::int) <= ${now}::timestamptz
          AND ls.completed_at + make_interval(days => ls.cycle) > ${now}::timestamptz - interval '7 days'
          AND ${noBooking(now)}`;
    case 'FOLLOW_UP':
      return Prisma.sql`
        SELECT 'FOLLOW_UP'::insights_care_task_kind, 'follow-up:' || v.id, v.customer_id, v.store_id, ${consultant}, v.id, NULL::uuid,
               'Follow-up within ' || ${config.care.followUpDueDays}::int || ' days of the visit',
               v.completed_at + make_interval(days => ${config.care.followUpDueDays}::int)
        FROM visit v JOIN customer c ON c.id = v.customer_id
        WHERE v.org_id = ${orgId}::uuid AND v.status = 'COMPLETED'
          AND v.completed_at <= ${now}::timestamptz - make_interval(days => ${config.care.followUpAfterDays}::int)
          AND v.completed_at > ${now}::timestamptz - make_interval(days => ${config.care.followUpDueDays}::int)`;
    case 'FEEDBACK':
      return null; // From visit.completed (feedbackForVisit).
  }
}

/** Creates the tasks due at `now` for one organization (each at most once), in the caller's transaction. */
export async function createDueTasks(tx: Tx, orgId: string, timezone: string, config: InsightsConfig, now: Date): Promise<CreatedTask[]> {
  const thresholds = await thresholdsFor(tx, orgId, config.defaults);
  const g: GenerationContext = { orgId, timezone, now, config, churnDays: thresholds.churnDays, lostDays: thresholds.lostDays };
  const created: CreatedTask[] = [];
  for (const kind of config.care.kinds) {
    const sql = candidates(kind, g);
    if (sql) created.push(...(await insertTasks(tx, orgId, sql)));
  }
  return created;
}

/**
 * The scheduled job: for every organization, in one transaction each, creates the care tasks now due (each at most
 * once) and reopens snoozed tasks whose time has come. Returns what it did, for tests and logs.
 */
export async function generateCareTasks(platform: Platform, config: InsightsConfig, now = new Date()) {
  const orgs = await platform.dbs.system.organization.findMany({ select: { id: true, timezone: true }, orderBy: { id: 'asc' } });
  const totals = { created: 0, reopened: 0 };
  for (const org of orgs) {
    const db = platform.dbs.forOrg(org.id);
    const events = await db.$transaction(
      async (tx) => {
        const created = await createDueTasks(tx, org.id, org.timezone, config, now);
        const reopened = await tx.$queryRaw<{ id: string; kind: string; customerId: string; storeId: string | null; assigneeId: string | null }[]>`
          WITH woke AS (
            UPDATE insights_care_task SET status = 'OPEN', snoozed_until = NULL, updated_at = ${now}::timestamptz
            WHERE org_id = ${org.id}::uuid AND status = 'SNOOZED' AND snoozed_until <= ${now}::timestamptz
            RETURNING id, kind, customer_id, store_id, assignee_id
          ), logged AS (
            INSERT INTO insights_care_task_log (org_id, task_id, action, actor) SELECT ${org.id}::uuid, id, 'REOPENED', ${ACTOR} FROM woke
          )
          SELECT id, kind::text AS kind, customer_id AS "customerId", store_id AS "storeId", assignee_id AS "assigneeId" FROM woke`;
        totals.created += created.length;
        totals.reopened += reopened.length;
        const inputs = [
          ...created.map((task) => taskEvent(task, 'careTask.created', { dueAt: task.dueAt.toISOString() })),
          ...reopened.map((task) => taskEvent(task, 'careTask.reopened')),
        ];
        return recordEvents(tx, org.id, inputs);
      },
      { timeout: 120_000, maxWait: 10_000 },
    );
    for (const event of events) platform.publish(event);
  }
  return totals;
}

/** Many outbox rows in one statement (a first run can create thousands of tasks). */
async function recordEvents(tx: Tx, orgId: string, inputs: ReturnType<typeof taskEvent>[]): Promise<DomainEvent[]> {
  if (inputs.length === 0) return [];
  const rows = await tx.$queryRaw<DomainEventRow[]>`
    INSERT INTO domain_event (org_id, type, aggregate_type, aggregate_id, stream_key, payload, actor)
    SELECT ${orgId}::uuid, e->>'type', e->>'aggregateType', (e->>'aggregateId')::uuid, e->>'streamKey', e->'payload', ${ACTOR}
    FROM jsonb_array_elements(${JSON.stringify(inputs)}::jsonb) WITH ORDINALITY AS x(e, n)
    ORDER BY n
    RETURNING ${DOMAIN_EVENT_COLUMNS}`;
  return rows.map(toDomainEvent);
}

/**
 * visit.completed: the feedback task (due feedbackDueHours after the visit), and — the customer came back — their open
 * win-back tasks and the repurchase tasks of the services they just had are done. Runs in the handler's transaction.
 */
export async function onVisitCompleted(event: DomainEvent, ctx: HandlerContext<InsightsConfig>) {
  const { tx, emit, config } = ctx;
  const visitId = String(event.payload.visitId);
  const customerId = String(event.payload.customerId);
  if (config.care.kinds.includes('FEEDBACK')) {
    const created = await insertTasks(
      tx,
      event.orgId,
      Prisma.sql`
        SELECT 'FEEDBACK'::insights_care_task_kind AS kind, 'feedback:' || v.id AS dedupe_key, v.customer_id, v.store_id, ${consultant} AS assignee_id,
               v.id AS visit_id, NULL::uuid AS service_id, 'Feedback within ' || ${config.care.feedbackDueHours}::int || ' hours of the visit' AS title,
               v.completed_at + make_interval(hours => ${config.care.feedbackDueHours}::int) AS due_at
        FROM visit v JOIN customer c ON c.id = v.customer_id
        WHERE v.id = ${visitId}::uuid AND v.org_id = ${event.orgId}::uuid AND v.status = 'COMPLETED'`,
    );
    for (const task of created) await emit(taskEvent(task, 'careTask.created', { dueAt: task.dueAt.toISOString() }));
  }
  const services = ((event.payload.lines as { serviceId?: string | null }[] | undefined) ?? []).flatMap((line) => (line.serviceId ? [line.serviceId] : []));
  await resolveTasks(
    tx,
    emit,
    event.orgId,
    Prisma.sql`customer_id = ${customerId}::uuid AND (kind = 'WIN_BACK' OR (kind = 'REPURCHASE' AND service_id = ANY(${services}::uuid[])))`,
    'The customer came back (visit completed)',
  );
}

/** Marks the open or snoozed tasks matching `where` done, with a reason, logged and announced. */
async function resolveTasks(tx: Tx, emit: Emit, orgId: string, where: Prisma.Sql, reason: string) {
  const done = await tx.$queryRaw<{ id: string; kind: string; customerId: string; storeId: string | null; assigneeId: string | null }[]>`
    WITH done AS (
      UPDATE insights_care_task SET status = 'DONE', snoozed_until = NULL, resolution = ${reason}, resolved_at = now(),
             resolved_by = ${ACTOR}, updated_at = now()
      WHERE org_id = ${orgId}::uuid AND status IN ('OPEN', 'SNOOZED') AND ${where}
      RETURNING id, kind, customer_id, store_id, assignee_id
    ), logged AS (
      INSERT INTO insights_care_task_log (org_id, task_id, action, reason, actor) SELECT ${orgId}::uuid, id, 'COMPLETED', ${reason}, ${ACTOR} FROM done
    )
    SELECT id, kind::text AS kind, customer_id AS "customerId", store_id AS "storeId", assignee_id AS "assigneeId" FROM done`;
  for (const task of done) await emit(taskEvent(task, 'careTask.completed', { reason }));
}
