import pg from 'pg';

const CHANNEL = 'crm_live_events';

/**
 * An EventTarget for graphql-yoga's pubsub that fans events out to every API process on the same
 * database through LISTEN/NOTIFY: dispatching sends NOTIFY; each process's LISTEN connection turns
 * notifications back into local events (including its own, so every process delivers the same way).
 * Payloads are ids and small facts, far below NOTIFY's 8000-byte limit.
 */
export class PgEventTarget extends EventTarget {
  readonly #pool: pg.Pool;
  readonly #connectionString: string;
  #listener: pg.Client | null = null;
  #closed = false;
  #reconnectDelayMs = 100;

  private constructor(connectionString: string) {
    super();
    this.#connectionString = connectionString;
    this.#pool = new pg.Pool({ connectionString, max: 2 });
    this.#pool.on('error', () => {});
  }

  static async create(connectionString: string): Promise<PgEventTarget> {
    const target = new PgEventTarget(connectionString);
    await target.#listen();
    return target;
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#connectionString });
    client.on('notification', (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      const { topic, data } = JSON.parse(message.payload) as { topic: string; data: unknown };
      super.dispatchEvent(new CustomEvent(topic, { detail: data }));
    });
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.#listener = client;
    this.#reconnectDelayMs = 100;
  }

  #lost(client: pg.Client) {
    if (this.#listener !== client) return;
    this.#listener = null;
    this.#scheduleReconnect();
  }

  /** Events published while reconnecting are missed; subscribers refetch on their next event. */
  #scheduleReconnect() {
    if (this.#closed) return;
    const delay = this.#reconnectDelayMs;
    this.#reconnectDelayMs = Math.min(delay * 2, 5_000);
    setTimeout(() => {
      if (!this.#closed) this.#listen().catch(() => this.#scheduleReconnect());
    }, delay).unref();
  }

  override dispatchEvent(event: Event): boolean {
    const payload = JSON.stringify({ topic: event.type, data: (event as CustomEvent).detail });
    this.#pool.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]).catch((error) => {
      console.error('live event not published:', error instanceof Error ? error.message : error);
    });
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const listener = this.#listener;
    this.#listener = null;
    await Promise.allSettled([listener?.end(), this.#pool.end()]);
  }
}
