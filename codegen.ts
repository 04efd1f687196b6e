import type { CodegenConfig } from '@graphql-codegen/cli';

/** Typed documents for the example clients, from the committed schema: `npm run codegen`. */
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  documents: ['examples/**/*.ts', '!examples/generated/**', '!examples/**/*.test.ts'],
  // ESM imports with extensions, as Node and tsx resolve them.
  emitLegacyCommonJSImports: false,
  generates: {
    'examples/generated/': {
      preset: 'client',
      config: {
        scalars: { DateTime: 'string', Date: 'string', Decimal: 'string', ID: 'string' },
        enumsAsTypes: true,
        useTypeImports: true,
      },
      presetConfig: { fragmentMasking: false },
    },
  },
};

export default config;
