import { GraphQLError, type ExecutionResult } from 'graphql';

type Outcome = AsyncIterable<ExecutionResult> | ExecutionResult;
type Waiting = { resolve: (result: IteratorResult<ExecutionResult>) => void; reject: (error: unknown) => void };

/** Results a subscriber has not taken yet; past this it is cut off rather than buffered without end. */
export const MAX_PENDING_RESULTS = 1_000;

/**
 * One execution per event for every subscriber of the same operation, variables and principal (as Hasura
 * multiplexes live queries): their results cannot differ, so the first subscriber's stream is executed once
 * and its results are handed to each. Without this, 1000 apps following one member ran the same resolvers,
 * filters and allocations 1000 times per event. A refusal at subscribe time is not kept: the next subscriber
 * asks again.
 */
export class SharedSubscriptions {
  readonly #streams = new Map<string, Promise<SharedStream | ExecutionResult>>();

  async subscribe(key: string, start: () => Promise<Outcome> | Outcome): Promise<Outcome> {
    let opening = this.#streams.get(key);
    if (!opening) {
      const forget = () => {
        if (this.#streams.get(key) === opened) this.#streams.delete(key);
      };
      const opened = this.#open(start, forget);
      this.#streams.set(key, opened);
      opening = opened;
    }
    const stream = await opening;
    if (!(stream instanceof SharedStream)) return stream;
    // A stream that ended while this subscriber waited has left the map: open a new one.
    return stream.attach() ?? this.subscribe(key, start);
  }

  /** Streams running and subscribers attached (for tests and diagnostics). */
  async stats(): Promise<{ streams: number; subscribers: number }> {
    const streams = (await Promise.all(this.#streams.values())).filter((s): s is SharedStream => s instanceof SharedStream);
    return { streams: streams.length, subscribers: streams.reduce((sum, s) => sum + s.size, 0) };
  }

  async #open(start: () => Promise<Outcome> | Outcome, forget: () => void): Promise<SharedStream | ExecutionResult> {
    let outcome: Outcome;
    try {
      outcome = await start();
    } catch (error) {
      forget();
      throw error;
    }
    if (!(Symbol.asyncIterator in outcome)) {
      forget();
      return outcome;
    }
    return new SharedStream(outcome, forget);
  }
}

/** The upstream results of one shared subscription, pumped to every attached subscriber in order. */
class SharedStream {
  readonly #subscribers = new Set<Subscriber>();
  readonly #upstream: AsyncIterator<ExecutionResult>;
  #ended = false;

  constructor(
    upstream: AsyncIterable<ExecutionResult>,
    private readonly forget: () => void,
  ) {
    this.#upstream = upstream[Symbol.asyncIterator]();
    void this.#pump();
  }

  get size() {
    return this.#subscribers.size;
  }

  attach(): Subscriber | null {
    if (this.#ended) return null;
    const subscriber = new Subscriber(() => this.#detach(subscriber));
    this.#subscribers.add(subscriber);
    return subscriber;
  }

  #detach(subscriber: Subscriber) {
    this.#subscribers.delete(subscriber);
    if (this.#subscribers.size || this.#ended) return;
    this.#end();
    void this.#upstream.return?.();
  }

  #end() {
    this.#ended = true;
    this.forget();
  }

  async #pump() {
    let failure: unknown = null;
    try {
      for (;;) {
        const next = await this.#upstream.next();
        if (next.done) break;
        for (const subscriber of this.#subscribers) subscriber.push(next.value);
      }
    } catch (error) {
      failure = error;
    }
    if (!this.#ended) this.#end();
    for (const subscriber of this.#subscribers) subscriber.finish(failure);
    this.#subscribers.clear();
  }
}

/** One subscriber's view of a shared stream: an async iterator over the results published since it attached. */
class Subscriber implements AsyncIterableIterator<ExecutionResult> {
  #pending: ExecutionResult[] = [];
  #waiting: Waiting | null = null;
  #finished = false;
  #failure: unknown = null;

  constructor(private readonly detach: () => void) {}

  push(result: ExecutionResult) {
    if (this.#finished) return;
    if (this.#waiting) {
      const { resolve } = this.#waiting;
      this.#waiting = null;
      resolve({ value: result, done: false });
    } else if (this.#pending.length < MAX_PENDING_RESULTS) {
      this.#pending.push(result);
    } else {
      // A consumer this far behind (a stalled socket) is told why and ended; the others are not held back.
      this.#pending.push({ errors: [new GraphQLError('Subscriber too slow: events were not read in time', { extensions: { code: 'SLOW_CONSUMER' } })] });
      this.finish(null);
      this.detach();
    }
  }

  /** The upstream ended (or failed): what is pending is still delivered, then the iterator ends. */
  finish(failure: unknown) {
    if (this.#finished) return;
    this.#finished = true;
    this.#failure = failure;
    if (this.#waiting) this.#settle(this.#waiting);
  }

  #settle(waiting: Waiting) {
    this.#waiting = null;
    if (this.#failure) waiting.reject(this.#failure);
    else waiting.resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    const result = this.#pending.shift();
    if (result) return Promise.resolve({ value: result, done: false });
    if (this.#finished) return this.#failure ? Promise.reject(this.#failure) : Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.#pending = [];
    if (!this.#finished) {
      this.#finished = true;
      if (this.#waiting) this.#settle(this.#waiting);
      this.detach();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
    void this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}
