import { setTimeout as delay } from "node:timers/promises";
import type { Kafka, Producer } from "kafkajs";
import pg from "pg";
import { createIdempotentProducer, ensureTopics } from "#platform/kafka.js";
import type { Logger } from "#platform/logger.js";
import { pgTypes } from "../db/database.js";
import type { ApiMetrics } from "../metrics.js";
import { type OutboxRow, toEventRecord } from "./product-persisted.js";

export interface OutboxRelayOptions {
  databaseUrl: string;
  kafka: Kafka;
  topic: string;
  partitions: number;
  replicationFactor: number;
  logger: Logger;
  metrics: ApiMetrics;
  /** Longest wait between two looks at the outbox when no notification arrives. */
  pollIntervalMs: number;
  /** Rows published per Kafka request. */
  batchSize: number;
}

export interface OutboxRelay {
  start(): void;
  /** Looks at the outbox now (called after this process commits a write with events). */
  wake(): void;
  /** True while this process is the active relay. */
  isActive(): boolean;
  /** Finishes the batch in progress (or gives up on it if Kafka is down), then disconnects. */
  stop(): Promise<void>;
}

/** Any constant shared by every API replica: the advisory lock that elects the one active relay. */
const RELAY_LOCK_KEY = 0x70726f64; // "prod"
const STANDBY_RETRY_MS = 2000;
const MAX_BACKOFF_MS = 30_000;
const STOP_GRACE_MS = 5000;

/**
 * Publishes the product_events outbox to Kafka in id order, then deletes what was published.
 * One relay is active across all replicas: the one whose session holds the advisory lock; when its
 * process or connection dies, PostgreSQL releases the lock and a standby takes over. It is woken
 * by this process's writes (wake()) or by NOTIFY product_events from other replicas (see
 * outbox-signal.ts), and polls as a fallback. If Kafka is down, it keeps retrying with backoff
 * while writes go on accumulating in the outbox.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { logger, metrics } = options;
  const stopController = new AbortController();
  const stopSignal = stopController.signal;
  let producer: Producer | undefined;
  let topicReady = false;
  let running: Promise<void> | undefined;
  let notified = false;
  let active = false;
  let wake: (() => void) | undefined;

  const sleepUntilNotified = (ms: number) =>
    new Promise<void>((resolve) => {
      if (notified || stopSignal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      wake = done;
      stopSignal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        wake = undefined;
        stopSignal.removeEventListener("abort", done);
        resolve();
      }
    });

  const publish = async (rows: OutboxRow[]) => {
    for (let attempt = 1; ; attempt++) {
      try {
        if (!producer) {
          producer = createIdempotentProducer(options.kafka);
          await producer.connect();
        }
        if (!topicReady) {
          await ensureTopics(options.kafka, [options.topic], options.partitions, {
            replicationFactor: options.replicationFactor,
          });
          topicReady = true;
        }
        await producer.send({ topic: options.topic, acks: -1, messages: rows.map(toEventRecord) });
        return true;
      } catch (error) {
        const backoffMs = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2);
        logger.warn(
          { err: error, attempt, backoffMs: Math.round(backoffMs), pending: rows.length },
          "event publish failed; retrying",
        );
        metrics.eventPublishFailures.inc();
        await delay(backoffMs, undefined, { signal: stopSignal }).catch(() => {});
        if (stopSignal.aborted) return false;
      }
    }
  };

  const serveWhileLeader = async (client: pg.Client) => {
    await client.query("LISTEN product_events");
    active = true;
    metrics.relayActive.set(1);
    logger.info("outbox relay active");
    while (!stopSignal.aborted) {
      notified = false;
      const { rows } = await client.query<OutboxRow>(
        "SELECT id, event_id, product_id, product, persisted_at FROM product_events ORDER BY id LIMIT $1",
        [options.batchSize],
      );
      if (rows.length === 0) {
        await sleepUntilNotified(options.pollIntervalMs);
        continue;
      }
      if (!(await publish(rows))) return;
      await client.query("DELETE FROM product_events WHERE id = ANY($1::bigint[])", [rows.map((r) => r.id)]);
      metrics.eventsPublished.inc(rows.length);
    }
  };

  const run = async () => {
    for (let attempt = 1; !stopSignal.aborted; attempt++) {
      const client = new pg.Client({
        connectionString: options.databaseUrl,
        types: pgTypes,
        options: "-c TimeZone=UTC",
      });
      // A lost connection also loses the lock: fail the current query and start over.
      client.on("error", (error) => logger.warn({ err: error }, "outbox relay connection lost"));
      client.on("notification", () => {
        notified = true;
        wake?.();
      });
      try {
        await client.connect();
        while (!stopSignal.aborted) {
          const { rows } = await client.query<{ leader: boolean }>("SELECT pg_try_advisory_lock($1) AS leader", [
            RELAY_LOCK_KEY,
          ]);
          if (rows[0]?.leader) {
            attempt = 0;
            await serveWhileLeader(client);
          } else {
            await delay(STANDBY_RETRY_MS, undefined, { signal: stopSignal }).catch(() => {});
          }
        }
      } catch (error) {
        if (!stopSignal.aborted) {
          logger.warn({ err: error, attempt }, "outbox relay failed; reconnecting");
          await delay(Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt, 6)), undefined, {
            signal: stopSignal,
          }).catch(() => {});
        }
      } finally {
        active = false;
        metrics.relayActive.set(0);
        await client.end().catch(() => {});
      }
    }
  };

  return {
    start() {
      running ??= run();
    },
    wake() {
      notified = true;
      wake?.();
    },
    isActive: () => active,
    async stop() {
      stopController.abort();
      wake?.();
      // The idempotent producer retries a send for as long as the broker is down: cut it short.
      const finished = await Promise.race([running?.then(() => true), delay(STOP_GRACE_MS, false, { ref: false })]);
      await producer?.disconnect().catch(() => {});
      if (!finished) await running;
      logger.info("outbox relay stopped");
    },
  };
}
