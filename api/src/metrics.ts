import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export interface ApiMetrics {
  registry: Registry;
  /**
   * Every request, REST and RPC: route is the REST route template or the RPC procedure, status the
   * HTTP status (REST) or the Connect code name (RPC, "ok" on success).
   */
  requests: Histogram<"protocol" | "route" | "status">;
  /** Products written, by outcome: created, updated, unchanged, stale (older than the stored row). */
  productWrites: Counter<"outcome">;
  eventsPublished: Counter;
  eventPublishFailures: Counter;
  /** 1 while this process holds the outbox relay lock. */
  relayActive: Gauge;
  /** Single creates waiting for an upsert statement (group commit). */
  writeQueueDepth: Gauge;
  /** Single creates answered without being written: queue_full (503) or client_gone. */
  writesNotRun: Counter<"reason">;
  /** Outbox rows waiting, and the age of the first in line, as the active relay last saw them; 0 elsewhere. */
  outboxPending: Gauge;
  outboxOldestAgeSeconds: Gauge;
}

export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Histogram({
    name: "api_request_duration_seconds",
    help: "Requests handled, by protocol (rest, connect, grpc, grpc-web), route or procedure, and status.",
    labelNames: ["protocol", "route", "status"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const productWrites = new Counter({
    name: "api_product_writes_total",
    help: "Products written, by outcome: created, updated, unchanged, or stale (older than the stored availability.timestamp, so ignored).",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const eventsPublished = new Counter({
    name: "api_events_published_total",
    help: "ProductPersisted events published to Kafka by this process's outbox relay.",
    registers: [registry],
  });
  const eventPublishFailures = new Counter({
    name: "api_event_publish_failures_total",
    help: "Failed attempts to publish a batch of events (each is retried).",
    registers: [registry],
  });
  const relayActive = new Gauge({
    name: "api_outbox_relay_active",
    help: "1 while this process is the active outbox relay (holds the advisory lock), else 0.",
    registers: [registry],
  });
  const writeQueueDepth = new Gauge({
    name: "api_write_queue_depth",
    help: "Single creates waiting for an upsert statement (group commit); at DB_WRITE_QUEUE_MAX new ones get 503.",
    registers: [registry],
  });
  const writesNotRun = new Counter({
    name: "api_writes_not_run_total",
    help: "Single creates answered without reaching the database: queue_full (refused, 503) or client_gone (the client left or its deadline passed while it waited).",
    labelNames: ["reason"],
    registers: [registry],
  });
  const outboxPending = new Gauge({
    name: "api_outbox_pending",
    help: "Events waiting in the outbox, measured every few seconds by the active relay (0 on other replicas).",
    registers: [registry],
  });
  const outboxOldestAgeSeconds = new Gauge({
    name: "api_outbox_oldest_age_seconds",
    help: "Age of the oldest event waiting in the outbox, measured every few seconds by the active relay (0 on other replicas, or when empty).",
    registers: [registry],
  });
  return {
    registry,
    requests,
    productWrites,
    eventsPublished,
    eventPublishFailures,
    relayActive,
    writeQueueDepth,
    writesNotRun,
    outboxPending,
    outboxOldestAgeSeconds,
  };
}
