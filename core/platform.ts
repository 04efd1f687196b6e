import { createPubSub, type PubSub } from 'graphql-yoga';
import type { Databases } from './db/clients.ts';
import type { DomainEvent } from './events/outbox.ts';
import { collectContributions, type LoadedPlugin } from './plugin/loader.ts';

export interface OrgSettings {
  timezone: string;
  currency: string;
  kind: 'CHAIN' | 'CLINIC';
}

export type PlatformPubSub = PubSub<{ domainEvent: [orgId: string, event: DomainEvent] }>;

/** The long-lived parts a request, a job or an event handler works with. */
export class Platform {
  readonly pubsub: PlatformPubSub;
  readonly #orgSettings = new Map<string, Promise<OrgSettings>>();
  readonly #settledOrgSettings = new Map<string, OrgSettings>();

  constructor(
    readonly dbs: Databases,
    readonly plugins: LoadedPlugin[],
    eventTarget?: Parameters<typeof createPubSub>[0],
  ) {
    this.pubsub = createPubSub(eventTarget);
  }

  /** Live delivery to subscribers on every API process (through LISTEN/NOTIFY or Redis). */
  publish(event: DomainEvent): void {
    this.pubsub.publish('domainEvent', event.orgId, event);
  }

  subscribe(orgId: string) {
    return this.pubsub.subscribe('domainEvent', orgId);
  }

  contributions<T>(extensionPoint: string): T[] {
    return collectContributions<T>(this.plugins, extensionPoint);
  }

  /** Time zone and currency of an organization; they never change once set, so they are cached. */
  orgSettings(orgId: string): Promise<OrgSettings> {
    let settings = this.#orgSettings.get(orgId);
    if (!settings) {
      settings = this.dbs.system.organization
        .findUniqueOrThrow({ where: { id: orgId }, select: { timezone: true, currency: true, kind: true } })
        .then(
          (settled) => {
            this.#settledOrgSettings.set(orgId, settled);
            return settled;
          },
          (error) => {
            this.#orgSettings.delete(orgId);
            throw error;
          },
        );
      this.#orgSettings.set(orgId, settings);
    }
    return settings;
  }

  /** The settings once `orgSettings` has read them: a value a resolver can use without waiting a tick. */
  settledOrgSettings(orgId: string): OrgSettings | undefined {
    return this.#settledOrgSettings.get(orgId);
  }

  isEnabled(pluginName: string): boolean {
    return this.plugins.some((plugin) => plugin.definition.name === pluginName);
  }
}
