import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getOperationAST, GraphQLError, NoSchemaIntrospectionCustomRule, validate as validateDocument, type ExecutionArgs, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { createYoga, type Plugin } from 'graphql-yoga';
import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { createComplexityRule } from '@pothos/plugin-complexity';
import { decodeJwt } from 'jose';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { CloseCode, type Context as WsContext, type SubscribePayload } from 'graphql-ws';
import type { Extra } from 'graphql-ws/use/ws';
import { isAuthError, type Principal } from './auth/principal.ts';
import { parseBearer, type TokenVerifier } from './auth/verify.ts';
import { COMPLEXITY_LIMITS } from './graphql/builder.ts';
import { createContext, type Context } from './graphql/context.ts';
import { compiledQueries } from './graphql/jit.ts';
import { SharedSubscriptions } from './graphql/shared-subscriptions.ts';
import type { Platform } from './platform.ts';

export interface ServerOptions {
  platform: Platform;
  schema: GraphQLSchema;
  verifier: TokenVerifier;
  /** No GraphiQL, no introspection, no field suggestions, no error details. */
  production: boolean;
}

export interface RunningServer {
  url: string;
  server: Server;
  /** graphql-ws subscriptions, shared by subscribers who would get the same results. */
  liveSubscriptions: SharedSubscriptions;
  close(): Promise<void>;
}

type InitialContext = { request?: Request; principal?: Principal | null };
type EnvelopedRoot = {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => Promise<AsyncIterable<ExecutionResult> | ExecutionResult>;
  /** Subscribers with the same key get the same results (see SharedSubscriptions). */
  shareKey: string;
};
type SocketContext = WsContext<Record<string, unknown>, Extra & { principal?: Principal }>;

/** setTimeout's longest delay (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Closes the socket when the token that opened it expires, however far away that is. */
function closeAtExpiry(socket: { close(code: number, reason: string): void }, expiresAtMs: number, timers: WeakMap<object, NodeJS.Timeout>) {
  const remaining = expiresAtMs - Date.now();
  const timer = setTimeout(
    () => (remaining > MAX_TIMER_MS ? closeAtExpiry(socket, expiresAtMs, timers) : socket.close(CloseCode.Forbidden, 'Token expired')),
    Math.min(Math.max(remaining, 0), MAX_TIMER_MS),
  );
  timer.unref();
  timers.set(socket, timer);
}

function authError(error: unknown): GraphQLError {
  const code = isAuthError(error) ? error.code : 'TOKEN_INVALID';
  const message = isAuthError(error) ? error.message : 'Invalid token';
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', reason: code, http: { status: 401 } } });
}

export function createApp({ platform, schema, verifier, production }: ServerOptions) {
  const plugins: Plugin[] = [
    // Limits that apply before execution; depth and cost are enforced by Pothos' complexity plugin.
    maxTokensPlugin({ n: 2_000 }) as Plugin,
    maxAliasesPlugin({ n: 30, allowList: [] }) as Plugin,
  ];
  // Introspection is refused by a validation rule on every operation. (@graphql-yoga/plugin-disable-introspection
  // decides per HTTP request, so operations over graphql-ws, which have none, were let through.)
  const noIntrospection: Plugin = { onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule) };
  if (production) plugins.push(noIntrospection, blockFieldSuggestionsPlugin() as Plugin);
  plugins.push(compiledQueries(schema));

  const yoga = createYoga<InitialContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: production ? false : { subscriptionsProtocol: 'WS', title: 'Beauty CRM API' },
    maskedErrors: { isDev: !production },
    plugins,
    context: async (initial) => {
      // WebSocket operations arrive with the principal verified at connection_init.
      if (initial.principal !== undefined) return createContext(platform, initial.principal);
      let token: string | undefined;
      try {
        token = parseBearer(initial.request?.headers.get('authorization'));
        return createContext(platform, token ? await verifier.verify(token) : null);
      } catch (error) {
        throw authError(error);
      }
    },
  });

  const server = createServer(yoga);
  const wsServer = new WebSocketServer({ server, path: '/graphql' });
  const expiryTimers = new WeakMap<object, NodeJS.Timeout>();
  const shared = new SharedSubscriptions();

  useServer<Record<string, unknown>, { principal?: Principal }>(
    {
      execute: (args: ExecutionArgs & { rootValue: EnvelopedRoot }) => args.rootValue.execute(args),
      subscribe: (args: ExecutionArgs & { rootValue: EnvelopedRoot }) => shared.subscribe(args.rootValue.shareKey, () => args.rootValue.subscribe(args)),
      onConnect: async (ctx: SocketContext) => {
        try {
          const token = parseBearer(ctx.connectionParams?.authorization);
          const principal = await verifier.verify(token);
          ctx.extra.principal = principal;
          // A subscription lives no longer than the token that opened it.
          const { exp } = decodeJwt(token!);
          if (exp) closeAtExpiry(ctx.extra.socket, exp * 1000, expiryTimers);
          return true;
        } catch {
          return false;
        }
      },
      onDisconnect: (ctx: SocketContext) => clearTimeout(expiryTimers.get(ctx.extra.socket)),
      onSubscribe: async (ctx: SocketContext, _id: string, params: SubscribePayload) => {
        const { schema: envelopedSchema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          principal: ctx.extra.principal ?? null,
          params,
        } as never);
        let document;
        try {
          document = parse(params.query);
        } catch (error) {
          return [error as GraphQLError];
        }
        let errors;
        try {
          errors = validate(envelopedSchema, document);
        } catch (error) {
          // Limits (e.g. max aliases) reject by throwing from validation: an error for this operation, not a 4500
          // "internal error" that closes the whole socket.
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        if (errors.length) return errors;
        const contextValue = await contextFactory();
        // Depth, breadth and cost are checked by Pothos when a root field resolves, which for a subscription is
        // at each event, after it was accepted. Check them now, so the subscription is refused as HTTP refuses it.
        if (getOperationAST(document, params.operationName)?.operation === 'subscription') {
          const complexityErrors = validateDocument(envelopedSchema, document, [
            createComplexityRule({
              variableValues: params.variables ?? {},
              operationName: params.operationName ?? undefined,
              context: contextValue,
              maxComplexity: COMPLEXITY_LIMITS.complexity,
              maxDepth: COMPLEXITY_LIMITS.depth,
              maxBreadth: COMPLEXITY_LIMITS.breadth,
            }),
          ]);
          if (complexityErrors.length) return complexityErrors;
        }
        return {
          schema: envelopedSchema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue,
          rootValue: {
            execute,
            subscribe,
            // Everything a subscription's results depend on: the operation, its variables and who asks
            // (computed only for subscriptions, the one kind of operation that shares).
            get shareKey() {
              return JSON.stringify([params.query, params.operationName ?? null, params.variables ?? null, ctx.extra.principal ?? null]);
            },
          } satisfies EnvelopedRoot,
        } as ExecutionArgs;
      },
    } as never,
    wsServer,
  );

  return {
    yoga,
    server,
    async listen(port: number, host = '0.0.0.0'): Promise<RunningServer> {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      const shownHost = host === '0.0.0.0' ? 'localhost' : host;
      return {
        url: `http://${shownHost}:${address.port}/graphql`,
        server,
        liveSubscriptions: shared,
        close: async () => {
          for (const client of wsServer.clients) client.close(1001, 'Server shutting down');
          await new Promise<void>((resolve) => wsServer.close(() => resolve()));
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        },
      };
    },
  };
}
