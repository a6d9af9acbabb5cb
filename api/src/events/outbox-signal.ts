import type { Knex } from "knex";
import type { Logger } from "#platform/logger.js";
import type { OutboxRelay } from "./outbox-relay-loop.js";

/** Longest delay between a commit and the NOTIFY that tells another replica's relay about it. */
const NOTIFY_COALESCE_MS = 5;

/**
 * Tells the active relay that events were committed. If it runs in this process it is woken
 * directly; otherwise one NOTIFY product_events, sent after the commit and shared by all commits
 * of a few milliseconds, wakes it on whichever replica holds the relay lock. Relays also poll, so
 * a lost signal only delays events.
 */
export function createOutboxSignal(knex: Knex, relay: OutboxRelay | undefined, logger: Logger): () => void {
  let pending = false;
  return () => {
    if (relay?.isActive()) {
      relay.wake();
      return;
    }
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      knex.raw("NOTIFY product_events").catch((error: unknown) => logger.debug({ err: error }, "NOTIFY failed"));
    }, NOTIFY_COALESCE_MS);
  };
}
