import { Logger, run, type Runner, type TaskList } from 'graphile-worker';
import type { Platform } from '../platform.ts';
import type { EventHandler } from '../plugin/contract.ts';
import { inTransaction, toDomainEvent, type DomainEvent } from './outbox.ts';

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
    const claimed = await tx.processedEvent.createMany({
      data: [{ handler: `${pluginName}:${event.type}`, eventId: BigInt(event.id), orgId: event.orgId }],
      skipDuplicates: true,
    });
    if (claimed.count === 0) return false;
    await handler(event, { config, platform, db, tx, emit });
    return true;
  });
}

/** Delivers a recorded event to every enabled plugin's handler for its type. A failure retries the job. */
export async function dispatchEvent(platform: Platform, eventId: string): Promise<void> {
  const row = await platform.dbs.system.domainEvent.findUnique({ where: { id: BigInt(eventId) } });
  if (!row) return;
  const event = toDomainEvent(row);
  for (const { definition, config } of platform.plugins) {
    const handler = definition.handlers?.[event.type];
    if (handler) await runHandler(platform, definition.name, config, handler as EventHandler<unknown>, event);
  }
}

export function workerTasks(platform: Platform): { taskList: TaskList; crontab: string } {
  const taskList: TaskList = {
    'domain-event': async (payload) => dispatchEvent(platform, String((payload as { id: string | number }).id)),
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
