import pg from 'pg';

const CHANNEL = 'crm_live_events';
/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_999;

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
  /** Payloads waiting to be sent, in publish order, and the send in progress. */
  #pending: string[] = [];
  #sending: Promise<void> | null = null;

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

  /**
   * Sends are serialised and batched: whatever was published while one NOTIFY statement ran goes out in the
   * next one, in publish order (PostgreSQL delivers a transaction's notifications in the order they were sent,
   * and transactions in commit order). Concurrent sends on several connections reordered events published back
   * to back; one statement per event on a single connection would cap a process at one commit per event.
   */
  override dispatchEvent(event: Event): boolean {
    const payload = JSON.stringify({ topic: event.type, data: (event as CustomEvent).detail });
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) {
      console.error(`live event not published: ${event.type} payload is over ${MAX_PAYLOAD_BYTES} bytes`);
      return true;
    }
    this.#pending.push(payload);
    this.#sending ??= this.#send();
    return true;
  }

  async #send(): Promise<void> {
    while (this.#pending.length) {
      const batch = this.#pending.splice(0, 1_000);
      try {
        await this.#pool.query(
          'SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS published(payload, position) ORDER BY position',
          [CHANNEL, batch],
        );
      } catch (error) {
        console.error(`${batch.length} live event(s) not published:`, error instanceof Error ? error.message : error);
      }
    }
    this.#sending = null;
  }

  async close(): Promise<void> {
    // Events already published still go out.
    await this.#sending;
    this.#closed = true;
    const listener = this.#listener;
    this.#listener = null;
    await Promise.allSettled([listener?.end(), this.#pool.end()]);
  }
}
