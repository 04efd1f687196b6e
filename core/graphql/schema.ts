import type { GraphQLSchema } from 'graphql';
import { registerCatalog } from '../graph/catalog.ts';
import { registerCustomer } from '../graph/customer.ts';
import { registerMembership } from '../graph/membership.ts';
import { registerMoney } from '../graph/money.ts';
import { registerOrganization } from '../graph/organization.ts';
import { registerSubscriptions } from '../graph/subscriptions.ts';
import { registerVisit } from '../graph/visit.ts';
import { collectContributions, type LoadedPlugin } from '../plugin/loader.ts';
import { createBuilder } from './builder.ts';
import { registerUserErrors } from './mutation.ts';

/** The core graph, then each enabled plugin's types and fields, in dependency order. */
export function buildSchema(plugins: LoadedPlugin[]): GraphQLSchema {
  const builder = createBuilder();
  registerUserErrors(builder);
  registerMoney(builder);
  registerOrganization(builder);
  registerCatalog(builder);
  registerCustomer(builder);
  registerVisit(builder);
  registerMembership(builder);
  registerSubscriptions(builder);
  for (const { definition, config } of plugins) {
    definition.schema?.(builder, { config, contributions: (point) => collectContributions(plugins, point) });
  }
  return builder.toSchema({ sortSchema: true });
}
