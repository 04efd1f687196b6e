import type { z } from 'zod';
import type { StaffRole } from '../auth/principal.ts';
import type { Db, Tx } from '../db/clients.ts';
import type { DomainEvent, Emit } from '../events/outbox.ts';
import type { Builder } from '../graphql/builder.ts';
import type { Platform } from '../platform.ts';

/** What a plugin's event handler gets: its tenant's database, inside the transaction that records it as handled. */
export interface HandlerContext<Config> {
  config: Config;
  platform: Platform;
  /** The event's organization's client (row-level security applies). */
  db: Db;
  /** The handler's transaction: do all writes here, so a redelivered event has no second effect. */
  tx: Tx;
  emit: Emit;
}

export type EventHandler<Config> = (event: DomainEvent, ctx: HandlerContext<Config>) => Promise<void>;

export interface JobContext<Config> {
  config: Config;
  platform: Platform;
}

export interface ScheduledJob<Config> {
  /** Crontab time fields (graphile-worker syntax), e.g. '15 * * * *'. */
  schedule: string;
  run: (ctx: JobContext<Config>, payload: unknown) => Promise<void>;
}

export interface SchemaContext<Config> {
  config: Config;
  /** Contributions other enabled plugins made to an extension point (see `contributes`). */
  contributions<T>(extensionPoint: string): T[];
}

/**
 * A plugin is this one declaration. The core finds it in plugins/<name>/plugin.ts when configuration
 * enables it; a disabled plugin is never imported, so it adds no types and handles no events.
 */
export interface PluginDefinition<Config = Record<string, never>> {
  name: string;
  description: string;
  /** Plugins that must be enabled too; starting without them fails with a clear message. */
  dependsOn?: string[];
  /** Validated (and defaulted) at start; a bad config fails the start. */
  config?: z.ZodType<Config>;
  /** Capabilities this plugin introduces, and the staff roles that hold them (API clients get them as scopes). */
  capabilities?: Record<string, StaffRole[]>;
  /** Types and fields, including fields on core types (e.g. `Customer.points`). */
  schema?: (builder: Builder, ctx: SchemaContext<Config>) => void;
  /** Handlers by event type; each runs at least once per event and its effects happen exactly once. */
  handlers?: Record<string, EventHandler<Config>>;
  /** Scheduled work, by job name (run through graphile-worker's crontab). */
  jobs?: Record<string, ScheduledJob<Config>>;
  /** Demo data for a freshly seeded chain (first `npm start`), written by the database owner. */
  seedDemo?: (ctx: { tx: Tx; orgId: string; config: Config }) => Promise<void>;
  /**
   * Values this plugin offers to extension points declared by other plugins, e.g. tiers offering
   * `points.earnMultiplier`. The consumer never imports the provider.
   */
  contributes?: (config: Config) => Record<string, unknown>;
}

export function definePlugin<Config = Record<string, never>>(definition: PluginDefinition<Config>): PluginDefinition<Config> {
  return definition;
}
