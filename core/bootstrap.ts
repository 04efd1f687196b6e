import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { Runner } from 'graphile-worker';
import type { TokenVerifier } from './auth/verify.ts';
import { Databases } from './db/clients.ts';
import { PgEventTarget } from './events/pg-event-target.ts';
import { registerEventHandlers, startWorker } from './events/worker.ts';
import { buildSchema } from './graphql/schema.ts';
import { Platform } from './platform.ts';
import { availablePlugins, loadPlugins, PluginConfigurationError } from './plugin/loader.ts';
import { createApp } from './server.ts';
import type { SharedSubscriptions } from './graphql/shared-subscriptions.ts';

export const PLUGINS_DIR = fileURLToPath(new URL('../plugins', import.meta.url));

export interface PlatformOptions {
  /** Database owner URL (migrations must already be applied). */
  ownerUrl: string;
  plugins: string[];
  pluginConfig?: Record<string, unknown>;
  /** Live events through Redis pub/sub instead of PostgreSQL LISTEN/NOTIFY. */
  redisUrl?: string;
  verifier: TokenVerifier;
  production?: boolean;
  port?: number;
  host?: string;
  /** Jobs run by this process at once; 0 runs no worker (another process handles jobs). */
  workerConcurrency?: number;
  poolSize?: number;
}

export interface RunningPlatform {
  url: string;
  platform: Platform;
  liveSubscriptions: SharedSubscriptions;
  close(): Promise<void>;
}

/** Plugins and their configuration from the environment: CRM_PLUGINS (comma list, default all) and CRM_PLUGIN_CONFIG. */
export function pluginSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): { plugins: string[]; pluginConfig: Record<string, unknown> } {
  const plugins = env.CRM_PLUGINS !== undefined
    ? env.CRM_PLUGINS.split(',').map((name) => name.trim()).filter(Boolean)
    : availablePlugins(PLUGINS_DIR);
  let pluginConfig: Record<string, unknown> = {};
  const raw = env.CRM_PLUGIN_CONFIG?.trim();
  if (raw) {
    const text = raw.startsWith('{') ? raw : existsSync(raw) ? readFileSync(raw, 'utf8') : null;
    if (text === null) throw new PluginConfigurationError(`CRM_PLUGIN_CONFIG: no such file ${raw}`);
    try {
      pluginConfig = JSON.parse(text) as Record<string, unknown>;
    } catch (error) {
      throw new PluginConfigurationError(`CRM_PLUGIN_CONFIG is not valid JSON: ${(error as Error).message}`);
    }
  }
  return { plugins, pluginConfig };
}

async function liveEventTarget(options: PlatformOptions) {
  if (options.redisUrl) {
    const publishClient = new Redis(options.redisUrl, { lazyConnect: true });
    const subscribeClient = new Redis(options.redisUrl, { lazyConnect: true });
    await Promise.all([publishClient.connect(), subscribeClient.connect()]);
    return {
      eventTarget: createRedisEventTarget({ publishClient, subscribeClient }),
      close: async () => {
        publishClient.disconnect();
        subscribeClient.disconnect();
      },
    };
  }
  const target = await PgEventTarget.create(options.ownerUrl);
  return { eventTarget: target, close: () => target.close() };
}

/** Loads the plugins, builds the schema, and serves it with a job worker beside it. */
export async function startPlatform(options: PlatformOptions): Promise<RunningPlatform> {
  const plugins = await loadPlugins(PLUGINS_DIR, options.plugins, options.pluginConfig);
  const schema = buildSchema(plugins);
  const dbs = new Databases({ ownerUrl: options.ownerUrl, poolSize: options.poolSize });
  const live = await liveEventTarget(options);
  const platform = new Platform(dbs, plugins, { eventTarget: live.eventTarget as never });
  await registerEventHandlers(dbs.system, plugins);
  let worker: Runner | null = null;
  if ((options.workerConcurrency ?? 4) > 0) worker = await startWorker(platform, options.ownerUrl, options.workerConcurrency ?? 4);
  const app = createApp({ platform, schema, verifier: options.verifier, production: options.production ?? false });
  const server = await app.listen(options.port ?? 0, options.host);
  return {
    url: server.url,
    platform,
    liveSubscriptions: server.liveSubscriptions,
    close: async () => {
      await server.close();
      await worker?.stop();
      await live.close();
      await dbs.close();
    },
  };
}
