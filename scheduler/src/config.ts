import { CONTRACT_LIMITS, readContractLimits } from "#platform/contract-limits.js";
import { createEnvReader, type Env, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "#platform/env.js";
import { type KafkaConfig, readKafkaConfig } from "#platform/kafka.js";

export const API_PROTOCOLS = ["grpc", "connect", "grpcweb"] as const;
export type ApiProtocol = (typeof API_PROTOCOLS)[number];

export interface SchedulerConfig {
  kafka: KafkaConfig;
  /** Consumer group shared by all scheduler instances; a new group starts at the earliest offset. */
  groupId: string;
  /** Partitions processed at the same time by one instance. */
  partitionsConcurrently: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /**
   * Longest time the broker holds a fetch until fetchMinBytes have arrived; also bounds how long
   * stop() waits for an idle fetch.
   */
  fetchMaxWaitMs: number;
  /**
   * Bytes a fetch waits for (up to fetchMaxWaitMs) before the broker answers. Above 1, a trickle of
   * records comes in one call per wait instead of one per record, so the per-call cost of the
   * whole pipeline (RPC, transaction, commit, relay transaction) is shared; under load the bytes
   * are there at once and nothing waits.
   */
  fetchMinBytes: number;
  api: {
    /** Base URL of the API: origin plus any path prefix, without /products. */
    url: string;
    protocol: ApiProtocol;
    /** Sent as "Authorization: Bearer <token>" when set. */
    token: string | undefined;
    /** Deadline of every RPC. */
    timeoutMs: number;
  };
  /** Records per BatchCreateProducts call. */
  batchSize: number;
  /** Approximate bytes per BatchCreateProducts call (sum of record values), under the API's body limit. */
  batchMaxBytes: number;
  /** Larger record values are dead-lettered unread: no valid product is anywhere near this size. */
  maxRecordBytes: number;
  retry: {
    /** Cap of the first backoff; each attempt doubles it up to maxDelayMs (full jitter). */
    initialDelayMs: number;
    maxDelayMs: number;
  };
  /** Port of /metrics and /healthz; 0 disables them. */
  metricsPort: number;
  metricsHost: string;
  /** /healthz says stuck when a partition's oldest unfinished record is older than this. */
  stuckAfterMs: number;
  /** Time stop() gets to finish the current chunk before the process exits anyway. */
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

export function loadSchedulerConfig(env: Env = process.env): SchedulerConfig {
  const read = createEnvReader(env);
  const kafka = readKafkaConfig(read, { clientId: "product-scheduler" });
  // A dead instance's partitions move after the session timeout; the core heartbeats through long
  // calls and backoffs, so a short session costs nothing while the API is slow or down.
  const sessionTimeoutMs = read.int("KAFKA_SESSION_TIMEOUT_MS", 6_000, 6_000, 300_000);
  const heartbeatIntervalMs = read.int("KAFKA_HEARTBEAT_INTERVAL_MS", 1_000, 100, 60_000);
  if (heartbeatIntervalMs * 3 > sessionTimeoutMs) {
    read.problem(
      `KAFKA_HEARTBEAT_INTERVAL_MS=${heartbeatIntervalMs}: expected at most a third of KAFKA_SESSION_TIMEOUT_MS (${sessionTimeoutMs})`,
    );
  }
  const initialDelayMs = read.int("RETRY_INITIAL_DELAY_MS", 200, 1, 600_000);
  // Full jitter makes the cap the longest wait after the API is back; a probe every second or so
  // per partition is cheap against a down API.
  const maxDelayMs = read.int("RETRY_MAX_DELAY_MS", 2_000, 1, 3_600_000);
  if (maxDelayMs < initialDelayMs) {
    read.problem(`RETRY_MAX_DELAY_MS=${maxDelayMs}: expected at least RETRY_INITIAL_DELAY_MS (${initialDelayMs})`);
  }
  // The API's limits, read from the variables the API reads: a client setting above them cannot work.
  const limits = readContractLimits(read);
  const timeoutMs = read.int("API_TIMEOUT_MS", 10_000, 100, 600_000);
  if (timeoutMs > limits.maxRpcDeadlineMs) {
    read.problem(
      `API_TIMEOUT_MS=${timeoutMs}: expected at most the API's MAX_RPC_DEADLINE_MS (${limits.maxRpcDeadlineMs}), which refuses longer deadlines`,
    );
  }
  const batchMaxBytes = read.int("API_BATCH_MAX_BYTES", 512 * 1024, 1024, 64 * 1024 * 1024);
  if (batchMaxBytes > limits.maxBodyBytes) {
    read.problem(
      `API_BATCH_MAX_BYTES=${batchMaxBytes}: expected at most the API's MAX_BODY_BYTES (${limits.maxBodyBytes}), the largest request it accepts`,
    );
  }
  const maxRecordBytes = read.int("MAX_RECORD_BYTES", 128 * 1024, 1024, 64 * 1024 * 1024);
  if (maxRecordBytes > batchMaxBytes) {
    read.problem(
      `MAX_RECORD_BYTES=${maxRecordBytes}: expected at most API_BATCH_MAX_BYTES (${batchMaxBytes}), so that every accepted record fits in a call`,
    );
  }
  const config: SchedulerConfig = {
    kafka,
    groupId: read.string("KAFKA_GROUP_ID", "scheduler"),
    partitionsConcurrently: read.int("PARTITIONS_CONSUMED_CONCURRENTLY", kafka.partitions, 1, 1000),
    sessionTimeoutMs,
    heartbeatIntervalMs,
    fetchMaxWaitMs: read.int("KAFKA_FETCH_MAX_WAIT_MS", 25, 10, 30_000),
    fetchMinBytes: read.int("KAFKA_FETCH_MIN_BYTES", 64 * 1024, 1, 64 * 1024 * 1024),
    api: {
      url: readApiUrl(read),
      protocol: read.oneOf("API_PROTOCOL", "grpc", API_PROTOCOLS),
      token: read.optional("API_TOKEN"),
      timeoutMs,
    },
    batchSize: read.int("API_BATCH_SIZE", 500, 1, CONTRACT_LIMITS.maxBatchItems),
    batchMaxBytes,
    maxRecordBytes,
    retry: { initialDelayMs, maxDelayMs },
    metricsPort: read.int("METRICS_PORT", 9464, 0, 65535),
    metricsHost: read.string("METRICS_HOST", "0.0.0.0"),
    stuckAfterMs: read.int("PARTITION_STUCK_AFTER_MS", 60_000, 1_000, 86_400_000),
    shutdownTimeoutMs: read.int("SHUTDOWN_TIMEOUT_MS", 30_000, 0, 600_000),
    logLevel: read.oneOf("LOG_LEVEL", "info", LOG_LEVELS),
    logFormat: read.oneOf("LOG_FORMAT", "auto", LOG_FORMATS),
  };
  read.done();
  return config;
}

/**
 * The seed configured the full REST collection URL (http://api:8000/products/); the Connect client
 * needs the base the RPC paths hang from. Keeps the origin and any path prefix of a gateway, drops
 * a trailing /products and slashes.
 */
export function normaliseApiUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  const prefix = url.pathname.replace(/\/+$/, "").replace(/\/products$/, "");
  return `${url.origin}${prefix}`;
}

function readApiUrl(read: ReturnType<typeof createEnvReader>): string {
  const raw = read.string("API_URL", "http://localhost:8000");
  const url = normaliseApiUrl(raw);
  if (url === undefined) {
    read.problem(`API_URL=${JSON.stringify(raw)}: expected an http(s) URL such as http://localhost:8000`);
    return "http://localhost:8000";
  }
  return url;
}
