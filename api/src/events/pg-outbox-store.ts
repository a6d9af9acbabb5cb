import pg from "pg";
import type { Logger } from "#platform/logger.js";
import { pgTypes } from "../db/database.js";
import type { OutboxSession, OutboxStore } from "./outbox-relay-loop.js";
import type { OutboxRow } from "./product-persisted.js";

/** Any constant shared by every API replica: the advisory lock that elects the one active relay. */
const RELAY_LOCK_KEY = 0x70726f64; // "prod"

/**
 * The product_events outbox in PostgreSQL. Each session is a dedicated connection (not the pool's):
 * the lease is a session-level advisory lock, so PostgreSQL releases it when the process or the
 * connection dies, and a standby takes over. Notifications are NOTIFY product_events (see
 * outbox-signal.ts).
 */
export function createPgOutboxStore(options: { databaseUrl: string; logger: Logger }): OutboxStore {
  return {
    async connect(): Promise<OutboxSession> {
      const client = new pg.Client({
        connectionString: options.databaseUrl,
        types: pgTypes,
        options: "-c TimeZone=UTC",
      });
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
          const { rows } = await client.query<OutboxRow>(
            "SELECT id, event_id, product_id, product, persisted_at FROM product_events ORDER BY id LIMIT $1",
            [limit],
          );
          return rows;
        },
        async deleteIds(ids) {
          await client.query("DELETE FROM product_events WHERE id = ANY($1::bigint[])", [ids]);
        },
        async close() {
          await client.end();
        },
      };
    },
  };
}
