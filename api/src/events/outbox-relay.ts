import type { Kafka } from "kafkajs";
import type { Logger } from "#platform/logger.js";
import type { ApiMetrics } from "../metrics.js";
import { createKafkaEventPublisher } from "./kafka-event-publisher.js";
import { createOutboxRelayLoop, type OutboxRelay } from "./outbox-relay-loop.js";
import { createPgOutboxStore } from "./pg-outbox-store.js";

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

/**
 * Publishes the product_events outbox to Kafka in id order, then deletes what was published.
 * One relay is active across all replicas: the one whose session holds the advisory lock; when its
 * process or connection dies, PostgreSQL releases the lock and a standby takes over. It is woken
 * by this process's writes (wake()) or by NOTIFY product_events from other replicas (see
 * outbox-signal.ts), and polls as a fallback. If Kafka is down, it keeps retrying with backoff
 * while writes go on accumulating in the outbox. The decisions are in outbox-relay-loop.ts; this
 * wires it to PostgreSQL and Kafka.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { logger, metrics } = options;
  return createOutboxRelayLoop(
    {
      store: createPgOutboxStore({ databaseUrl: options.databaseUrl, logger }),
      publisher: createKafkaEventPublisher(options),
      logger,
      metrics,
    },
    { batchSize: options.batchSize, pollIntervalMs: options.pollIntervalMs },
  );
}
