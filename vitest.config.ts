import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // Pothos and Yoga load graphql's CommonJS build; Vite would otherwise load the .mjs copy ("another realm").
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    include: ['core/**/*.test.ts', 'plugins/**/*.test.ts', 'examples/**/*.test.ts', 'schema/**/*.test.ts', 'bench/**/*.test.ts'],
    globalSetup: ['core/testing/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
