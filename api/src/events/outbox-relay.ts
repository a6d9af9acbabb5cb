import type { Kafka } from "kafkajs";
import type { Logger } from "#platform/logger.js";
import { createKafkaEventPublisher } from "./kafka-event-publisher.js";
import {
  createOutboxRelayLoop,
  type OutboxRelay,
  RELAY_TIMING_DEFAULTS,
  type RelayMetrics,
} from "./outbox-relay-loop.js";
import { createPgOutboxStore } from "./pg-outbox-store.js";

export interface OutboxRelayOptions {
  databaseUrl: string;
  kafka: Kafka;
  topic: string;
  partitions: number;
  replicationFactor: number;
  logger: Logger;
  metrics: RelayMetrics;
  /** Longest wait between two looks at the outbox when no notification arrives. */
  pollIntervalMs: number;
  /** Rows read, and published in one transaction, per batch. */
  batchSize: number;
  /** Bytes of events per Kafka request. */
  batchMaxBytes: number;
  /** How long a relay that stopped answering may keep the lease (see pg-outbox-store.ts). */
  leaseTimeoutMs: number;
  /** Shared by every replica's relay: the next leader's producer fences the previous one's. */
  transactionalId: string;
}

/**
 * Publishes the product_events outbox to Kafka in id order, then deletes what was published.
 * One relay is active across all replicas: the one whose session holds the advisory lock; when its
 * process or connection dies or stops answering, PostgreSQL releases the lock within about
 * leaseTimeoutMs and a standby takes over. Its transactional producer then fences the old one, so a
 * deposed relay that wakes up cannot append the batch it held. It is woken
 * by this process's writes (wake()) or by NOTIFY product_events from other replicas (see
 * outbox-signal.ts), and polls as a fallback. If Kafka is down, it keeps retrying with backoff
 * while writes go on accumulating in the outbox. The decisions are in outbox-relay-loop.ts; this
 * wires it to PostgreSQL and Kafka.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { logger, metrics } = options;
  return createOutboxRelayLoop(
    {
      store: createPgOutboxStore({ databaseUrl: options.databaseUrl, logger, leaseTimeoutMs: options.leaseTimeoutMs }),
      publisher: createKafkaEventPublisher(options),
      logger,
      metrics,
    },
    {
      batchSize: options.batchSize,
      maxBatchBytes: options.batchMaxBytes,
      pollIntervalMs: options.pollIntervalMs,
      // The session is never idle for long: idle_session_timeout ends only a frozen relay's.
      heartbeatMs: Math.floor(options.leaseTimeoutMs / 3),
      standbyRetryMs: Math.min(RELAY_TIMING_DEFAULTS.standbyRetryMs, Math.floor(options.leaseTimeoutMs / 3)),
    },
  );
}
