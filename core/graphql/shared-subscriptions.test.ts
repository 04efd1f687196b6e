/**
 * The sharing itself, on plain async iterables (what Yoga's subscribe returns); core/events/subscriptions.test.ts
 * covers it through real WebSockets.
 */
import type { ExecutionResult } from 'graphql';
import { Repeater } from 'graphql-yoga';
import { describe, expect, test } from 'vitest';
import { MAX_PENDING_RESULTS, SharedSubscriptions } from './shared-subscriptions.ts';

/** An upstream the test pushes results into, counting how often it was started and whether it was closed. */
function upstream() {
  const state = { started: 0, closed: false, push: (_: ExecutionResult) => {}, fail: (_: Error) => {} };
  const start = () => {
    state.started += 1;
    return new Repeater<ExecutionResult>(async (push, stop) => {
      state.push = (result) => void push(result);
      state.fail = (error) => stop(error);
      await stop;
      state.closed = true;
    });
  };
  return { state, start };
}

const result = (n: number): ExecutionResult => ({ data: { n } });
const iterate = (outcome: unknown) => outcome as AsyncGenerator<ExecutionResult>;
/** Two subscribers of one key, subscribing at the same moment. */
async function two(shared: SharedSubscriptions, start: () => Repeater<ExecutionResult>) {
  const [a, b] = await Promise.all([shared.subscribe('k', start), shared.subscribe('k', start)]);
  return [iterate(a), iterate(b)] as const;
}

describe('SharedSubscriptions', () => {
  test('one upstream per key, each result to every subscriber in order; closed when the last one leaves', async () => {
    const shared = new SharedSubscriptions();
    const { state, start } = upstream();
    const [a, b] = await two(shared, start);
    expect(state.started).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 0));
    state.push(result(1));
    state.push(result(2));
    expect([(await a.next()).value, (await a.next()).value]).toEqual([result(1), result(2)]);
    expect([(await b.next()).value, (await b.next()).value]).toEqual([result(1), result(2)]);
    await a.return(undefined);
    expect(await shared.stats()).toEqual({ streams: 1, subscribers: 1 });
    expect(state.closed).toBe(false);
    await b.return(undefined);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(state.closed).toBe(true);
    expect(await shared.stats()).toEqual({ streams: 0, subscribers: 0 });
    // The next subscriber starts a new upstream.
    const c = iterate(await shared.subscribe('k', start));
    expect(state.started).toBe(2);
    await c.return(undefined);
  });

  test('a refusal at subscribe time is answered to those waiting for it, and not kept for the next subscriber', async () => {
    const shared = new SharedSubscriptions();
    let calls = 0;
    const refused: ExecutionResult = { errors: [] };
    const start = async () => {
      calls += 1;
      return refused;
    };
    expect(await Promise.all([shared.subscribe('k', start), shared.subscribe('k', start)])).toEqual([refused, refused]);
    expect(calls).toBe(1);
    await shared.subscribe('k', start);
    expect(calls).toBe(2);
  });

  test('an upstream failure reaches every subscriber after what was pending', async () => {
    const shared = new SharedSubscriptions();
    const { state, start } = upstream();
    const a = iterate(await shared.subscribe('k', start));
    await new Promise((resolve) => setTimeout(resolve, 0));
    state.push(result(1));
    state.fail(new Error('lost'));
    expect((await a.next()).value).toEqual(result(1));
    await expect(a.next()).rejects.toThrow('lost');
    expect(await shared.stats()).toEqual({ streams: 0, subscribers: 0 });
  });

  test('a subscriber that stops reading is cut off with SLOW_CONSUMER; the others keep their stream', async () => {
    const shared = new SharedSubscriptions();
    const { state, start } = upstream();
    const [stalled, reading] = await two(shared, start);
    await new Promise((resolve) => setTimeout(resolve, 0));
    for (let n = 0; n <= MAX_PENDING_RESULTS; n++) {
      state.push(result(n));
      expect((await reading.next()).value).toEqual(result(n));
    }
    const got: ExecutionResult[] = [];
    for (let next = await stalled.next(); !next.done; next = await stalled.next()) got.push(next.value);
    expect(got).toHaveLength(MAX_PENDING_RESULTS + 1);
    expect(got.at(-1)!.errors?.[0]?.extensions).toEqual({ code: 'SLOW_CONSUMER' });
    expect(await shared.stats()).toEqual({ streams: 1, subscribers: 1 });
    state.push(result(-1));
    expect((await reading.next()).value).toEqual(result(-1));
    await reading.return(undefined);
  });
});
