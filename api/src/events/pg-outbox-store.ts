import pg from "pg";
import type { Logger } from "#platform/logger.js";
import { pgTypes } from "../db/database.js";
import { EVENT_PRODUCT_COLUMNS } from "../products/product-repository.js";
import type { OutboxBacklog, OutboxSession, OutboxStore } from "./outbox-relay-loop.js";
import type { OutboxRow } from "./product-persisted.js";

/** Any constant shared by every API replica: the advisory lock that elects the one active relay. */
const RELAY_LOCK_KEY = 0x70726f64; // "prod"

/** Rows the backlog gauge counts one by one; beyond, it takes the span of ids (cheap, a bit high). */
const BACKLOG_COUNT_LIMIT = 100_000;

/**
 * Casts of the product's columns that are not text, for rows that hold the product as a jsonb
 * document instead (written before the migration 20261203000000_outbox_product_columns, or by a
 * replica not upgraded yet): such a row reads back as one with columns.
 */
const DOCUMENT_CASTS: Readonly<Record<string, string>> = {
  amount: "numeric",
  quantity: "int",
  availability_at: "timestamptz",
  created_at: "timestamptz",
  updated_at: "timestamptz",
  source_partition: "int",
  source_offset: "int8",
};

/** An OutboxRow's columns, from a product_events row of either kind: the offset as text (exact past 2^53). */
export const OUTBOX_ROW_SELECT = `id, event_id, product_id, persisted_at,
  ${EVENT_PRODUCT_COLUMNS.map((c) => {
    if (c === "version") return c;
    const cast = DOCUMENT_CASTS[c];
    const fromDocument = cast ? `(product->>'${c}')::${cast}` : `product->>'${c}'`;
    return `coalesce(${c}, ${fromDocument})${c === "source_offset" ? "::text" : ""} AS ${c}`;
  }).join(",\n  ")}`;

/**
 * The oldest row of each product among the first `limit` rows: the oldest of that product overall,
 * since every older row is among them. The product's later rows wait for a later batch. The scan
 * is the primary key's first `limit` entries; the two sorts are of at most `limit` rows in memory.
 * Columns are listed, not `*`: one added to the table later changes nothing here.
 */
const STORED = `id, event_id, product_id, persisted_at, product, ${EVENT_PRODUCT_COLUMNS.join(", ")}`;
const READ_BATCH_SQL = `
SELECT ${OUTBOX_ROW_SELECT}
FROM (
  SELECT DISTINCT ON (product_id) ${STORED}
  FROM (SELECT ${STORED} FROM product_events ORDER BY id LIMIT $1) head
  ORDER BY product_id, id
) firsts
ORDER BY id`;

const BACKLOG_SQL = `
SELECT
  (SELECT count(*) FROM (SELECT FROM product_events LIMIT ${BACKLOG_COUNT_LIMIT + 1}) counted)::int AS counted,
  (SELECT max(id) - min(id) + 1 FROM product_events)::float8 AS span,
  (SELECT extract(epoch FROM now() - persisted_at) FROM product_events ORDER BY id LIMIT 1)::float8 AS oldest_age`;

/**
 * The relay's connection: leadership must not outlive a relay that stopped answering, however it
 * stopped. PostgreSQL ends the session, releasing the lock, when the peer is gone (TCP keepalives:
 * about leaseTimeoutMs), when sent data stays unacknowledged (tcp_user_timeout), when a frozen
 * process leaves it idle (idle_session_timeout; the live leader's heartbeat is more frequent) or a
 * statement or transaction hangs; the client gives up a query that gets no answer (query_timeout)
 * and then drops the session, and with it its leadership.
 */
export function relayClientConfig(databaseUrl: string, leaseTimeoutMs: number): pg.ClientConfig {
  const seconds = (ms: number) => Math.max(1, Math.floor(ms / 1000));
  const server = {
    TimeZone: "UTC",
    tcp_keepalives_idle: seconds(leaseTimeoutMs / 2),
    tcp_keepalives_interval: seconds(leaseTimeoutMs / 6),
    tcp_keepalives_count: 3,
    tcp_user_timeout: leaseTimeoutMs,
    statement_timeout: leaseTimeoutMs,
    idle_in_transaction_session_timeout: leaseTimeoutMs,
    idle_session_timeout: leaseTimeoutMs,
  };
  return {
    connectionString: databaseUrl,
    types: pgTypes,
    options: Object.entries(server)
      .map(([name, value]) => `-c ${name}=${value}`)
      .join(" "),
    keepAlive: true,
    keepAliveInitialDelayMillis: Math.floor(leaseTimeoutMs / 2),
    connectionTimeoutMillis: leaseTimeoutMs,
    query_timeout: leaseTimeoutMs,
  };
}

/**
 * The product_events outbox in PostgreSQL. Each session is a dedicated connection (not the pool's):
 * the lease is a session-level advisory lock, so PostgreSQL releases it when the process or the
 * connection dies (see relayClientConfig), and a standby takes over. Notifications are NOTIFY
 * product_events (see outbox-signal.ts).
 */
export function createPgOutboxStore(options: {
  databaseUrl: string;
  logger: Logger;
  /** How long a relay that stopped answering may keep the lease. */
  leaseTimeoutMs: number;
}): OutboxStore {
  return {
    async connect(): Promise<OutboxSession> {
      const client = new pg.Client(relayClientConfig(options.databaseUrl, options.leaseTimeoutMs));
      let onNotification = () => {};
      // A lost connection also loses the lock: the current or next query fails and the relay starts over.
      client.on("error", (error) => options.logger.warn({ err: error }, "outbox relay connection lost"));
      client.on("notification", () => onNotification());
      try {
        await client.connect();
      } catch (error) {
        await client.end().catch(() => {});
        throw error;
      }
      return {
        async tryAcquireLease() {
          const { rows } = await client.query<{ leader: boolean }>("SELECT pg_try_advisory_lock($1) AS leader", [
            RELAY_LOCK_KEY,
          ]);
          return rows[0]?.leader === true;
        },
        async listen(listener) {
          onNotification = listener;
          await client.query("LISTEN product_events");
        },
        async readBatch(limit) {
          return (await client.query<OutboxRow>(READ_BATCH_SQL, [limit])).rows;
        },
        async deleteIds(ids) {
          await client.query("DELETE FROM product_events WHERE id = ANY($1::bigint[])", [ids]);
        },
        async heartbeat(): Promise<OutboxBacklog> {
          const { rows } = await client.query<{ counted: number; span: number | null; oldest_age: number | null }>(
            BACKLOG_SQL,
          );
          const { counted = 0, span = null, oldest_age = null } = rows[0] ?? {};
          return {
            pending: counted > BACKLOG_COUNT_LIMIT ? (span ?? counted) : counted,
            oldestAgeSeconds: Math.max(0, oldest_age ?? 0),
          };
        },
        async close() {
          await client.end();
        },
      };
    },
  };
}
