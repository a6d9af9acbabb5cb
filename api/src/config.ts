import { readContractLimits } from "#platform/contract-limits.js";
import { createEnvReader, type Env, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "#platform/env.js";
import { type KafkaConfig, readKafkaConfig } from "#platform/kafka.js";
import { normaliseDatabaseUrl } from "./db/database.js";
import { DEFAULT_EMBEDDED_POSTGRES_PORT } from "./db/embedded-postgres.js";

export interface ApiConfig {
  port: number;
  host: string;
  /** Unset: run the embedded PostgreSQL with data under dataDir. */
  databaseUrl: string | undefined;
  dataDir: string;
  embeddedPostgresPort: number;
  dbPoolMax: number;
  dbConnectTimeoutMs: number;
  dbStatementTimeoutMs: number;
  migrateOnStart: boolean;
  /** Upsert statements in flight at once; single creates arriving meanwhile share the next one. */
  dbWriteConcurrency: number;
  /** Single creates that may wait for a statement; more are refused as unavailable. */
  dbWriteQueueMax: number;
  /** When set, writes need "Authorization: Bearer <token>". */
  apiToken: string | undefined;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Largest request body, REST and RPC alike. */
  maxBodyBytes: number;
  /** Longest time to receive a request's headers / whole request. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** How far ahead of this server's clock a product's availability.timestamp may be. */
  maxClockSkewMs: number;
  /** HTTP/2: streams a client may have open at once on one connection. */
  http2MaxConcurrentStreams: number;
  /** Cap on the deadline an RPC client may ask for, and the deadline of unary RPCs that ask for none. */
  maxRpcDeadlineMs: number;
  /** Time in-flight requests get to finish on SIGTERM before connections are closed. */
  shutdownTimeoutMs: number;
  kafka: KafkaConfig;
  /** Run the outbox relay in this process (one replica is active at a time; see outbox-relay.ts). */
  outboxRelay: boolean;
  outboxPollIntervalMs: number;
  outboxBatchSize: number;
  /** Bytes of events per Kafka request, well under the broker's message.max.bytes (1 MiB by default). */
  outboxBatchMaxBytes: number;
  /** How long a relay that stopped answering keeps the lease; a standby takes over after it. */
  outboxLeaseTimeoutMs: number;
  /** The relay's Kafka transactional id, shared by every replica publishing this outbox. */
  outboxTransactionalId: string;
}

export function loadApiConfig(env: Env = process.env): ApiConfig {
  const read = createEnvReader(env);
  const databaseUrl = read.optional("DATABASE_URL");
  if (databaseUrl !== undefined) {
    try {
      const url = new URL(normaliseDatabaseUrl(databaseUrl));
      if (!/^postgres(ql)?:$/.test(url.protocol)) throw new Error("not postgres");
    } catch {
      read.problem("DATABASE_URL: expected a PostgreSQL URL such as postgresql://user:password@host:5432/products");
    }
  }
  const kafka = readKafkaConfig(read, { clientId: "product-api" });
  const config: ApiConfig = {
    port: read.int("PORT", 8000, 0, 65535),
    host: read.string("HOST", "0.0.0.0"),
    databaseUrl: databaseUrl === undefined ? undefined : normaliseDatabaseUrl(databaseUrl),
    dataDir: read.string("DATA_DIR", ".data"),
    embeddedPostgresPort: read.int("EMBEDDED_POSTGRES_PORT", DEFAULT_EMBEDDED_POSTGRES_PORT, 1, 65535),
    dbPoolMax: read.int("DB_POOL_MAX", 20, 1, 1000),
    dbConnectTimeoutMs: read.int("DB_CONNECT_TIMEOUT_MS", 5000, 100, 600_000),
    dbStatementTimeoutMs: read.int("DB_STATEMENT_TIMEOUT_MS", 15_000, 100, 3_600_000),
    migrateOnStart: read.bool("MIGRATE_ON_START", true),
    // Two: one statement runs while the next one fills. More lanes split the same creates into
    // smaller statements, each paying its round trip and commit (bench/README.md, "Single creates").
    dbWriteConcurrency: read.int("DB_WRITE_CONCURRENCY", 2, 1, 1000),
    dbWriteQueueMax: read.int("DB_WRITE_QUEUE_MAX", 1000, 1, 1_000_000),
    apiToken: read.optional("API_TOKEN"),
    logLevel: read.oneOf("LOG_LEVEL", "info", LOG_LEVELS),
    logFormat: read.oneOf("LOG_FORMAT", "auto", LOG_FORMATS),
    ...readContractLimits(read),
    headersTimeoutMs: read.int("HEADERS_TIMEOUT_MS", 10_000, 100, 600_000),
    requestTimeoutMs: read.int("REQUEST_TIMEOUT_MS", 30_000, 100, 600_000),
    maxClockSkewMs: read.int("MAX_CLOCK_SKEW_MS", 300_000, 0, 86_400_000),
    http2MaxConcurrentStreams: read.int("HTTP2_MAX_CONCURRENT_STREAMS", 100, 1, 10_000),
    shutdownTimeoutMs: read.int("SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
    kafka,
    outboxRelay: read.bool("OUTBOX_RELAY", true),
    outboxPollIntervalMs: read.int("OUTBOX_POLL_INTERVAL_MS", 1000, 10, 600_000),
    outboxBatchSize: read.int("OUTBOX_BATCH_SIZE", 2000, 1, 10_000),
    outboxBatchMaxBytes: read.int("OUTBOX_BATCH_MAX_BYTES", 512 * 1024, 1024, 32 * 1024 * 1024),
    outboxLeaseTimeoutMs: read.int("OUTBOX_LEASE_TIMEOUT_MS", 10_000, 3000, 600_000),
    // Replicas share it because they share the topic; another outbox publishing there sets its own.
    outboxTransactionalId:
      read.optional("OUTBOX_TRANSACTIONAL_ID") ?? `product-api-outbox-relay.${kafka.topics.persisted}`,
  };
  read.done();
  return config;
}
