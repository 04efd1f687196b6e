import type { Builder } from '../graphql/builder.ts';
import { orgWhere } from './access.ts';
import { moneyFor } from './money.ts';

export const SERVICE_CATEGORIES = ['FACIAL', 'BODY', 'NAIL', 'HAIR_REMOVAL', 'ANTI_AGEING', 'MEDICAL_AESTHETIC'] as const;

export function registerCatalog(builder: Builder) {
  const ServiceCategory = builder.enumType('ServiceCategory', { values: SERVICE_CATEGORIES });

  builder.prismaNode('Service', {
    description: 'A service on the menu (项目).',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [orgWhere(ctx)] }),
    fields: (t) => ({
      name: t.exposeString('name'),
      category: t.expose('category', { type: ServiceCategory }),
      durationMinutes: t.exposeInt('durationMinutes'),
      price: t.field({ type: 'Money', resolve: (s, _a, ctx) => moneyFor(ctx, s.priceMinor) }),
      repurchaseCycleDays: t.exposeInt('repurchaseCycleDays', {
        nullable: true,
        description: 'How many days after this service a customer typically comes back for it.',
      }),
      contraindicationTags: t.exposeStringList('contraindicationTags', {
        description: 'Allergies or sensitivities that make this service unsuitable.',
      }),
      active: t.exposeBoolean('active'),
    }),
  });

  builder.prismaNode('Product', {
    description: 'A retail product.',
    id: { field: 'id' },
    findUnique: (id, ctx) => ({ id, AND: [orgWhere(ctx)] }),
    fields: (t) => ({
      sku: t.exposeString('sku'),
      name: t.exposeString('name'),
      price: t.field({ type: 'Money', resolve: (p, _a, ctx) => moneyFor(ctx, p.priceMinor) }),
      active: t.exposeBoolean('active'),
    }),
  });

  builder.queryFields((t) => ({
    services: t.prismaField({
      type: ['Service'],
      description: 'The service catalogue, by category then name.',
      args: {
        category: t.arg({ type: ServiceCategory, required: false }),
        includeInactive: t.arg.boolean({ required: false, defaultValue: false }),
      },
      resolve: (query, _root, args, ctx) =>
        ctx.db.service.findMany({
          ...query,
          where: { ...orgWhere(ctx), ...(args.category ? { category: args.category } : {}), ...(args.includeInactive ? {} : { active: true }) },
          orderBy: [{ category: 'asc' }, { name: 'asc' }],
        }),
    }),
    products: t.prismaField({
      type: ['Product'],
      description: 'Retail products, by name.',
      resolve: (query, _root, _args, ctx) =>
        ctx.db.product.findMany({ ...query, where: { ...orgWhere(ctx), active: true }, orderBy: { name: 'asc' } }),
    }),
  }));
}
