import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { runOnce } from 'graphile-worker';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { ensureLocalSigningKey, type LocalSigningKey } from '../auth/keys.ts';
import { mintToken } from '../auth/mint.ts';
import type { Principal } from '../auth/principal.ts';
import { createTokenVerifier, DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../auth/verify.ts';
import { startPlatform, type RunningPlatform } from '../bootstrap.ts';
import { PrismaClient } from '../db/generated/client.ts';
import { quietLogger, workerTasks } from '../events/worker.ts';
import { toDomainEvent, type DomainEvent } from '../events/outbox.ts';
import { seedDemo, type DemoPrincipals } from '../seed/demo.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';

export interface GraphQLResponse<T = any> {
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown>; path?: (string | number)[] }[];
}

export interface TestPlatform {
  url: string;
  wsUrl: string;
  running: RunningPlatform;
  database: TestDatabase;
  /** Owner client (no RLS): for arranging data and checking what changed. */
  owner: InstanceType<typeof PrismaClient>;
  principals: DemoPrincipals;
  signingKey: LocalSigningKey;
  token(principal: Principal | keyof DemoPrincipals, expiresIn?: string): Promise<string>;
  /** POST a GraphQL request as a principal (or anonymously with null). */
  gql<T = any>(query: string, variables?: Record<string, unknown>, as?: Principal | keyof DemoPrincipals | null): Promise<GraphQLResponse<T>>;
  ws(as: Principal | keyof DemoPrincipals, url?: string): Promise<Client>;
  /** Runs every queued job (event handlers) to completion, as the worker would. */
  drainJobs(): Promise<void>;
  close(): Promise<void>;
}

export interface TestPlatformOptions {
  plugins?: string[];
  pluginConfig?: Record<string, unknown>;
  redisUrl?: string;
  production?: boolean;
  /** Reuse another test platform's database (a second API process on the same data). */
  shareDatabaseWith?: TestPlatform;
  /** Background job worker; off by default so tests drain jobs when they choose. */
  workerConcurrency?: number;
}

/**
 * A real API server on a fresh database seeded with the demo data (two chains and a clinic), with the
 * same token verification as production, over a signing key made for the test.
 */
export async function startTestPlatform(options: TestPlatformOptions = {}): Promise<TestPlatform> {
  const shared = options.shareDatabaseWith;
  const database = shared?.database ?? (await createTestDatabase());
  const owner = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
  const principals = shared?.principals ?? (await seedDemo(owner, { now: new Date() })).principals;
  const keysDir = shared ? null : await mkdtemp(join(tmpdir(), 'crm-test-keys-'));
  const signingKey = shared?.signingKey ?? (await ensureLocalSigningKey(keysDir!));
  const verifier = createTokenVerifier({
    issuer: DEFAULT_ISSUER,
    audience: DEFAULT_AUDIENCE,
    keySource: { kind: 'jwksFile', path: signingKey.jwksPath },
  });
  const plugins = options.plugins ?? [];
  const running = await startPlatform({
    ownerUrl: database.url,
    plugins,
    pluginConfig: options.pluginConfig,
    redisUrl: options.redisUrl,
    verifier,
    production: options.production,
    host: '127.0.0.1',
    workerConcurrency: options.workerConcurrency ?? 0,
    poolSize: 24,
  });
  const resolve = (as: Principal | keyof DemoPrincipals): Principal => (typeof as === 'object' ? as : principals[as]!);
  const token = (as: Principal | keyof DemoPrincipals, expiresIn = '1h') =>
    mintToken(signingKey, resolve(as), { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, expiresIn });
  const sockets: Client[] = [];

  const platform: TestPlatform = {
    url: running.url,
    wsUrl: running.url.replace(/^http/, 'ws'),
    running,
    database,
    owner,
    principals,
    signingKey,
    token,
    async gql(query, variables, as = 'OWNER') {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (as !== null) headers.authorization = `Bearer ${await token(as)}`;
      const response = await fetch(running.url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
      return (await response.json()) as GraphQLResponse;
    },
    async ws(as, url = platform.wsUrl) {
      const authorization = `Bearer ${await token(as)}`;
      const client = createClient({ url, webSocketImpl: WebSocket, connectionParams: { authorization }, lazy: false, retryAttempts: 0 });
      sockets.push(client);
      return client;
    },
    async drainJobs() {
      const { taskList } = workerTasks(running.platform);
      // runOnce can stop while a serial queue (one per customer) still holds a runnable job: repeat until none is left.
      for (let round = 0; round < 50; round++) {
        await runOnce({ connectionString: database.url, taskList, logger: quietLogger });
        // A job that ran before an earlier job of its stream had finished steps back (see dispatchEvent):
        // make it runnable again now rather than after its retry delay.
        await owner.$executeRaw`
          UPDATE graphile_worker._private_jobs SET run_at = now()
          WHERE last_error LIKE '%waits until the earlier events%' AND locked_at IS NULL AND attempts < max_attempts`;
        const [{ runnable }] = await owner.$queryRaw<{ runnable: number }[]>`
          SELECT count(*)::int AS runnable FROM graphile_worker.jobs WHERE attempts < max_attempts AND run_at <= now()`;
        if (runnable === 0) {
          const failed = await owner.$queryRaw<{ task: string; error: string }[]>`
            SELECT task_identifier AS task, last_error AS error FROM graphile_worker.jobs
            WHERE last_error IS NOT NULL AND last_error NOT LIKE '%waits until the earlier events%'`;
          if (failed.length) throw new Error(`jobs failed: ${failed.map((job) => `${job.task}: ${job.error}`).join('\n')}`);
          return;
        }
      }
      throw new Error('jobs are still runnable after 50 rounds');
    },
    async close() {
      await Promise.all(sockets.map((socket) => socket.dispose()));
      await running.close();
      await owner.$disconnect();
      if (!shared) {
        await database.drop();
        if (keysDir) await rm(keysDir, { recursive: true, force: true });
      }
    },
  };
  return platform;
}

/** Global id as the API encodes it. */
export function gid(type: string, id: string): string {
  return Buffer.from(`${type}:${id}`).toString('base64');
}

/** Records a domain event as a change would (written by the owner; the outbox trigger queues its job). */
export async function recordOutboxEvent(
  api: TestPlatform,
  orgId: string,
  event: { type: string; aggregateType: string; aggregateId: string; payload: Record<string, unknown> },
): Promise<DomainEvent> {
  const row = await api.owner.domainEvent.create({
    data: {
      orgId,
      type: event.type,
      aggregateType: event.aggregateType,
      aggregateId: event.aggregateId,
      streamKey: (event.payload.customerId as string | undefined) ?? null,
      payload: event.payload as object,
      actor: 'test:arrange',
    },
  });
  return toDomainEvent(row);
}
