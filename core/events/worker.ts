import { Logger, run, type Job, type Runner, type TaskList } from 'graphile-worker';
import type { Databases } from '../db/clients.ts';
import type { Platform } from '../platform.ts';
import type { LoadedPlugin } from '../plugin/loader.ts';
import type { EventHandler } from '../plugin/contract.ts';
import { DOMAIN_EVENT_COLUMNS, inTransaction, toDomainEvent, type DomainEvent, type DomainEventRow } from './outbox.ts';

/** graphile-worker logs every job at info level; keep warnings and errors. */
export const quietLogger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(`[worker] ${message}`);
});

/**
 * Runs one plugin handler for one event, at most once in effect: the (handler, event) row is claimed in
 * the handler's own transaction, so a redelivered event (after a crash, a retry, or two workers racing)
 * finds it claimed and does nothing.
 */
export async function runHandler(
  platform: Platform,
  pluginName: string,
  config: unknown,
  handler: EventHandler<unknown>,
  event: DomainEvent,
): Promise<boolean> {
  const db = platform.dbs.forOrg(event.orgId);
  return inTransaction(platform, db, event.orgId, `plugin:${pluginName}`, async (tx, emit) => {
    // Raw SQL for the same reason as the idempotency claim: a createMany is compiled again on every call.
    const claimed = await tx.$executeRaw`
      INSERT INTO processed_event (handler, event_id, org_id)
      VALUES (${`${pluginName}:${event.type}`}, ${BigInt(event.id)}, ${event.orgId}::uuid)
      ON CONFLICT DO NOTHING`;
    if (claimed === 0) return false;
    await handler(event, { config, platform, db, tx, emit });
    return true;
  });
}

/**
 * Delivers a recorded event to every enabled plugin's handler for its type. A failure retries the job.
 * `job` is the queue's job when the worker calls.
 *
 * A stream's jobs share a graphile-worker queue, which runs them one at a time, but a failed job goes back to wait
 * for its retry and frees the queue: the stream's next event would overtake it. So a job of a queue that still
 * holds an earlier job fails too, and is retried after it. The event and that check are one statement.
 */
export async function dispatchEvent(platform: Platform, eventId: string, job?: Pick<Job, 'id' | 'job_queue_id'>): Promise<void> {
  const [row] = await platform.dbs.system.$queryRaw<(DomainEventRow & { earlierJobPending: boolean })[]>`
    SELECT ${DOMAIN_EVENT_COLUMNS},
           EXISTS (
             SELECT 1 FROM graphile_worker._private_jobs j
             WHERE j.job_queue_id = ${job?.job_queue_id ?? null}::int AND j.id < ${job ? BigInt(job.id) : null}::bigint
           ) AS "earlierJobPending"
    FROM domain_event WHERE id = ${BigInt(eventId)}`;
  if (!row) return;
  if (row.earlierJobPending) {
    throw new Error(`event ${eventId} waits until the earlier events of stream ${row.streamKey} are handled`);
  }
  const event = toDomainEvent(row);
  for (const { definition, config } of platform.plugins) {
    const handler = definition.handlers?.[event.type];
    if (handler) await runHandler(platform, definition.name, config, handler as EventHandler<unknown>, event);
  }
}

/**
 * Records which event types this process's plugins handle: the outbox trigger enqueues jobs only for those. Called
 * when a process starts, before it records or handles an event, whether or not it runs a worker itself.
 */
export async function registerEventHandlers(system: Databases['system'], plugins: Pick<LoadedPlugin, 'definition'>[]): Promise<void> {
  const types = [...new Set(plugins.flatMap(({ definition }) => Object.keys(definition.handlers ?? {})))];
  await system.eventHandlerType.createMany({ data: types.map((type) => ({ type })), skipDuplicates: true });
}

export function workerTasks(platform: Platform): { taskList: TaskList; crontab: string } {
  const taskList: TaskList = {
    'domain-event': async (payload, helpers) => dispatchEvent(platform, String((payload as { id: string | number }).id), helpers.job),
  };
  const crontab: string[] = [];
  for (const { definition, config } of platform.plugins) {
    for (const [jobName, job] of Object.entries(definition.jobs ?? {})) {
      const task = `${definition.name}:${jobName}`;
      taskList[task] = (payload) => job.run({ config, platform }, payload);
      crontab.push(`${job.schedule} ${task}`);
    }
  }
  return { taskList, crontab: crontab.join('\n') };
}

/** Each API process runs a worker; graphile-worker's row locking shares the jobs between them. */
export function startWorker(platform: Platform, ownerUrl: string, concurrency = 4): Promise<Runner> {
  const { taskList, crontab } = workerTasks(platform);
  return run({ connectionString: ownerUrl, concurrency, taskList, crontab, noHandleSignals: true, logger: quietLogger, pollInterval: 2_000 });
}
