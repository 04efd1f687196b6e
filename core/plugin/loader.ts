import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { grantCapability } from '../auth/policy.ts';
import type { PluginDefinition } from './contract.ts';

export interface LoadedPlugin {
  definition: PluginDefinition<any>;
  config: any;
}

export class PluginConfigurationError extends Error {
  override name = 'PluginConfigurationError';
}

/** Names of the plugins present in the plugins folder (the default when configuration names none). */
export function availablePlugins(pluginsDir: string): string[] {
  return readdirSync(pluginsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(pluginsDir, entry.name, 'plugin.ts')))
    .map((entry) => entry.name)
    .sort();
}

/**
 * Imports the enabled plugins, checks their dependencies and validates their configuration. Fails before
 * anything is served, with a message that says what to change. Returned in dependency order.
 */
export async function loadPlugins(
  pluginsDir: string,
  enabled: string[],
  rawConfig: Record<string, unknown> = {},
): Promise<LoadedPlugin[]> {
  const byName = new Map<string, LoadedPlugin>();
  for (const name of enabled) {
    const file = join(pluginsDir, name, 'plugin.ts');
    if (!/^[a-z][a-z0-9-]*$/.test(name) || !existsSync(file)) {
      throw new PluginConfigurationError(
        `Unknown plugin "${name}": there is no plugins/${name}/plugin.ts. Available: ${availablePlugins(pluginsDir).join(', ')}`,
      );
    }
    const definition = (await import(pathToFileURL(file).href)).default as PluginDefinition<unknown>;
    if (definition?.name !== name) {
      throw new PluginConfigurationError(`plugins/${name}/plugin.ts must default-export definePlugin({ name: "${name}", ... })`);
    }
    byName.set(name, { definition, config: parseConfig(definition, rawConfig[name]) });
  }
  for (const unknown of Object.keys(rawConfig).filter((name) => !byName.has(name))) {
    throw new PluginConfigurationError(`Configuration given for plugin "${unknown}", which is not enabled`);
  }
  const ordered: LoadedPlugin[] = [];
  const visit = (plugin: LoadedPlugin, path: string[]) => {
    if (ordered.includes(plugin)) return;
    const { name, dependsOn = [] } = plugin.definition;
    if (path.includes(name)) throw new PluginConfigurationError(`Plugin dependency cycle: ${[...path, name].join(' -> ')}`);
    for (const dependency of dependsOn) {
      const required = byName.get(dependency);
      if (!required) {
        throw new PluginConfigurationError(
          `Plugin "${name}" depends on "${dependency}", which is not enabled. Enable both (CRM_PLUGINS=${[...byName.keys(), dependency].join(',')}) or disable "${name}".`,
        );
      }
      visit(required, [...path, name]);
    }
    ordered.push(plugin);
  };
  for (const plugin of byName.values()) visit(plugin, []);
  for (const { definition } of ordered) {
    for (const [capability, roles] of Object.entries(definition.capabilities ?? {})) grantCapability(capability, roles);
  }
  return ordered;
}

function parseConfig(definition: PluginDefinition<unknown>, raw: unknown): unknown {
  if (!definition.config) {
    if (raw !== undefined && Object.keys(raw as object).length > 0) {
      throw new PluginConfigurationError(`Plugin "${definition.name}" takes no configuration`);
    }
    return {};
  }
  const result = definition.config.safeParse(raw ?? {});
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new PluginConfigurationError(`Invalid configuration for plugin "${definition.name}": ${issues.join('; ')}`);
  }
  return result.data;
}

/** What enabled plugins offer to an extension point, in dependency order. */
export function collectContributions<T>(plugins: LoadedPlugin[], extensionPoint: string): T[] {
  return plugins.flatMap(({ definition, config }) => {
    const offered = definition.contributes?.(config)[extensionPoint];
    return offered === undefined ? [] : [offered as T];
  });
}
