/**
 * The fixed stack's floor on this machine: what one request costs the server in each layer alone, with no schema
 * or resolver of ours. Reported next to the workloads, so a ratio to the raw server can be read against what the
 * layers it must go through cost by themselves.
 *
 *   FLOOR_LAYER=http     node:http answering a constant GraphQL-shaped JSON (POST /graphql)
 *   FLOOR_LAYER=yoga     graphql-yoga, one field resolving to a constant (POST /graphql)
 *   FLOOR_LAYER=pg       node:http + pg: one customer by id, a named prepared statement (GET /customer/<uuid>)
 *   FLOOR_LAYER=prisma   node:http + Prisma (@prisma/adapter-pg, named statements): the same customer by findUnique
 *   FLOOR_LAYER=yogaPrisma  graphql-yoga + Prisma: `customer(id)` resolved by that findUnique (POST /graphql)
 *
 * Env: DATABASE_URL (owner), BENCH_POOL_SIZE. Prints `READY <url>`; stops when stdin closes or on SIGTERM.
 */
import { createServer, type RequestListener } from 'node:http';
import { createHash } from 'node:crypto';
import { createSchema, createYoga } from 'graphql-yoga';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../core/db/generated/client.ts';

const env = process.env;
const CONSTANT = JSON.stringify({ data: { ping: 'pong' } });

function answer(read: (id: string) => Promise<unknown>): RequestListener {
  return (req, res) => {
    req.resume();
    req.on('end', async () => {
      const body = JSON.stringify({ data: await read(req.url!.slice('/customer/'.length)) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
  };
}

const pool = () => new pg.Pool({ connectionString: env.DATABASE_URL, max: Number(env.BENCH_POOL_SIZE ?? 16) });

function prismaCustomer() {
  const name = (query: { sql: string }) => `s${createHash('sha1').update(query.sql).digest('base64url').slice(0, 24)}`;
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool(), { statementNameGenerator: name }) });
  return (id: string) => prisma.customer.findUnique({ where: { id } });
}

function listener(): RequestListener {
  switch (env.FLOOR_LAYER) {
    case 'http':
      return (req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(CONSTANT);
        });
      };
    case 'yoga':
      return createYoga({
        schema: createSchema({ typeDefs: 'type Query { ping: String }', resolvers: { Query: { ping: () => 'pong' } } }),
        landingPage: false,
        graphiql: false,
        logging: false,
      });
    case 'pg': {
      const clients = pool();
      return answer(async (id) => (await clients.query({ name: 'customer', text: 'SELECT * FROM customer WHERE id = $1', values: [id] })).rows[0]);
    }
    case 'prisma':
      return answer(prismaCustomer());
    case 'yogaPrisma': {
      const customer = prismaCustomer();
      return createYoga({
        schema: createSchema({
          typeDefs: 'type Query { customer(id: ID!): Customer } type Customer { id: ID! name: String! phone: String! }',
          resolvers: { Query: { customer: (_: unknown, { id }: { id: string }) => customer(id) } },
        }),
        landingPage: false,
        graphiql: false,
        logging: false,
      });
    }
    default:
      throw new Error(`FLOOR_LAYER must be one of http, yoga, pg, prisma, yogaPrisma (got ${env.FLOOR_LAYER})`);
  }
}

const server = createServer(listener()).listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`READY http://127.0.0.1:${port}\n`);
});
const stop = () => process.exit(0);
process.once('SIGTERM', stop);
process.stdin.on('close', stop);
process.stdin.resume();
