import type { Builder } from '../../core/graphql/builder.ts';
import type { SchemaContext } from '../../core/plugin/contract.ts';
import type { PackagesConfig } from './config.ts';
import { registerContraindications } from './contraindications.ts';
import { registerCustomerPackages } from './customer-packages.ts';
import { registerPackagesErrors } from './errors.ts';
import { registerFollowUps } from './followups.ts';
import { registerPackageMetrics } from './metrics.ts';
import { registerPartnerships } from './partnerships.ts';
import { registerPlans } from './plans.ts';
import { registerTemplates } from './templates.ts';

export function registerPackagesSchema(builder: Builder, context: SchemaContext<PackagesConfig>) {
  registerPackagesErrors(builder);
  registerPartnerships(builder);
  registerTemplates(builder);
  registerCustomerPackages(builder);
  registerPlans(builder, context);
  registerFollowUps(builder);
  registerContraindications(builder, context.config);
  registerPackageMetrics(builder);
}
