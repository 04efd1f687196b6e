/**
 * PostGraphile 4.14 on the bench database, as the owner role (no row-level security; the bench data hold one
 * organization, so it sees the rows our API's tenant sees). Installed apart, in bench/postgraphile4/ (PostGraphile 4
 * needs graphql 15; the project uses 16). Default options of a production deployment: no GraphiQL, no watch,
 * no query log, default inflection, relations from foreign keys, custom mutation `benchCompleteVisit`
 * (a PL/pgSQL function created by the bench).
 *
 *   DATABASE_URL (owner), BENCH_POOL_SIZE. Prints `READY <url>`; stops when stdin closes or on SIGTERM.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(new URL('./postgraphile4/package.json', import.meta.url));
const { postgraphile } = require('postgraphile');
const pg = require('pg');

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.BENCH_POOL_SIZE ?? 16) });
const middleware = postgraphile(pool, 'public', {
  graphqlRoute: '/graphql',
  graphiql: false,
  watchPg: false,
  disableQueryLog: true,
  dynamicJson: true,
  setofFunctionsContainNulls: false,
  legacyRelations: 'omit',
  retryOnInitFail: false,
  extendedErrors: ['errcode'],
});
const server = createServer(middleware);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  // PostGraphile builds its schema on the first request: warm it before announcing readiness.
  fetch(`http://127.0.0.1:${port}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{__typename}"}' })
    .then((res) => res.text())
    .then(() => process.stdout.write(`READY http://127.0.0.1:${port}/graphql\n`))
    .catch((error) => {
      console.error(error);
      process.exit(1);
    });
});
const stop = () => server.close(() => void pool.end().then(() => process.exit(0)));
process.once('SIGTERM', stop);
process.stdin.on('close', stop);
process.stdin.resume();
