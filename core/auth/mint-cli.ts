/**
 * npm run token -- <LABEL|ROLE|customer|api_client> [--expires 12h]
 * npm run token -- --principal '<json Principal>' [--expires 12h]
 * npm run token -- --list
 *
 * Signs with the local key in .data/keys (created by the server on first start) and prints only the
 * token on stdout. Demo principals come from .data/demo-principals.json (written by the demo seed),
 * an object keyed by label: { "OWNER": <Principal>, "CUSTOMER": <Principal>, "POS_CLIENT": ... }.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { readSigningKey } from './keys.ts';
import { mintToken } from './mint.ts';
import { AuthError, parsePrincipal, STAFF_ROLES, type Principal } from './principal.ts';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from './verify.ts';

export const DEFAULT_DATA_DIR = resolve(fileURLToPath(new URL('../../', import.meta.url)), '.data');
export const DEMO_PRINCIPALS_FILE = 'demo-principals.json';

const USAGE = `Usage:
  npm run token -- <LABEL|ROLE|customer|api_client> [--expires 12h]
  npm run token -- --principal '<json Principal>' [--expires 12h]
  npm run token -- --list
Options:
  --expires <span>    token lifetime (jose time span, e.g. 15m, 12h, 7d); default 12h
  --data-dir <dir>    data directory (default: <project>/.data)`;

export class CliError extends Error {}

async function loadDemoPrincipals(dataDir: string): Promise<Record<string, unknown>> {
  const file = join(dataDir, DEMO_PRINCIPALS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CliError(`${file} not found — start the server once with npm start (it seeds the demo data), or pass --principal '<json>'`);
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not valid JSON`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CliError(`${file} must be a JSON object keyed by label`);
  }
  return json as Record<string, unknown>;
}

function validated(label: string, value: unknown): Principal {
  try {
    return parsePrincipal(value);
  } catch (err) {
    if (err instanceof AuthError) throw new CliError(`Principal "${label}" is malformed (${err.reason ?? err.code})`);
    throw err;
  }
}

/** Label (exact, then case-insensitive), else 'customer' / 'api_client' / a staff role → first match by kind/role. */
export function selectPrincipal(all: Record<string, unknown>, selector: string): Principal {
  if (Object.prototype.hasOwnProperty.call(all, selector)) return validated(selector, all[selector]);
  const upper = selector.toUpperCase().replace(/-/g, '_');
  const label = Object.keys(all).find((k) => k.toUpperCase() === upper);
  if (label) return validated(label, all[label]);

  const entries = Object.entries(all) as [string, Record<string, unknown> | null][];
  const find = (pred: (p: Record<string, unknown>) => boolean) => {
    const hit = entries.find(([, p]) => typeof p === 'object' && p !== null && pred(p));
    return hit ? validated(hit[0], hit[1]) : undefined;
  };
  let found: Principal | undefined;
  if (upper === 'CUSTOMER') found = find((p) => p.kind === 'CUSTOMER');
  else if (upper === 'API_CLIENT' || upper === 'APICLIENT') found = find((p) => p.kind === 'API_CLIENT');
  else if ((STAFF_ROLES as readonly string[]).includes(upper)) found = find((p) => p.kind === 'STAFF' && p.role === upper);
  if (found) return found;
  throw new CliError(`No demo principal matches "${selector}". Available: ${Object.keys(all).join(', ') || '(none)'}`);
}

/** Runs the CLI and returns what it would print on stdout (the token, or the label list). */
export async function runMintCli(
  argv: string[],
  { dataDir: dataDirDefault = DEFAULT_DATA_DIR, env = process.env }: { dataDir?: string; env?: Record<string, string | undefined> } = {},
): Promise<string> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        expires: { type: 'string', default: '12h' },
        principal: { type: 'string' },
        'data-dir': { type: 'string' },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return USAGE;
  const dataDir = values['data-dir'] ? resolve(values['data-dir']) : dataDirDefault;

  if (values.list) {
    const all = await loadDemoPrincipals(dataDir);
    return Object.entries(all)
      .map(([label, p]) => {
        const q = p as Record<string, unknown>;
        return `${label}\t${String(q?.kind)}${q?.role ? ` ${String(q.role)}` : ''}`;
      })
      .join('\n');
  }

  let principal: Principal;
  if (values.principal !== undefined) {
    if (positionals.length > 0) throw new CliError(`Pass either a label or --principal, not both\n${USAGE}`);
    let json: unknown;
    try {
      json = JSON.parse(values.principal);
    } catch {
      throw new CliError('--principal is not valid JSON');
    }
    principal = validated('--principal', json);
  } else {
    if (positionals.length !== 1) throw new CliError(USAGE);
    principal = selectPrincipal(await loadDemoPrincipals(dataDir), positionals[0]!);
  }

  let key;
  try {
    key = await readSigningKey(join(dataDir, 'keys'));
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const issuer = env.JWT_ISSUER?.trim() || DEFAULT_ISSUER;
  const audience = env.JWT_AUDIENCE?.trim() || DEFAULT_AUDIENCE;
  try {
    return await mintToken(key, principal, { issuer, audience, expiresIn: values.expires });
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new CliError(`Invalid --expires "${values.expires}"`);
    throw err;
  }
}

async function main(): Promise<void> {
  try {
    const out = await runMintCli(process.argv.slice(2));
    if (['JWT_PUBLIC_KEY', 'JWT_JWKS_FILE', 'JWT_JWKS_URL'].some((n) => process.env[n]?.trim())) {
      process.stderr.write('note: a JWT key source is configured in the environment; tokens from the local key verify only if that source includes it\n');
    }
    process.stdout.write(out + '\n');
  } catch (err) {
    process.stderr.write(`error: ${err instanceof CliError ? err.message : String((err as Error)?.stack ?? err)}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
