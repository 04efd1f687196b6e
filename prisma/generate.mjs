// Runs `prisma generate` on install. Generating needs no schema engine, but the Prisma CLI tries to download
// one first and fails on machines that only reach the npm registry; pointing it at any existing file skips that.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const env = { ...process.env };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= fileURLToPath(import.meta.url);
const result = spawnSync('npx', ['prisma', 'generate'], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
