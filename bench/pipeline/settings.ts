import { createEnvReader } from "#platform/env.js";
import { type KafkaConfig, readKafkaConfig } from "#platform/kafka.js";
import { loadApiConfig } from "../../api/src/config.js";
import { loadSchedulerConfig } from "../../scheduler/src/config.js";
import { BENCH_POSTGRES_URL } from "../shared/environment.js";

/** The settings of the services as they will read them from this environment. */
export interface Settings {
  kafka: KafkaConfig;
  partitions: number;
  partitionsConcurrently: number;
  apiBatchSize: number;
  apiBatchMaxBytes: number;
  fetchMaxWaitMs: number;
  fetchMinBytes: number;
  outboxBatchSize: number;
  outboxPollIntervalMs: number;
  dbPoolMax: number;
  apiProtocol: string;
}

/**
 * Read with the services' own loaders, so the ceilings use exactly the values the services will;
 * only the broker defaults to 127.0.0.1:9092.
 */
export function readSettings(): Settings {
  const env = { KAFKA_BROKER_URL: "127.0.0.1:9092", ...process.env };
  const read = createEnvReader(env);
  const kafka = readKafkaConfig(read, { clientId: "pipeline-bench" });
  read.done();
  const scheduler = loadSchedulerConfig({ ...env, METRICS_PORT: "0" });
  const api = loadApiConfig({ ...env, DATABASE_URL: BENCH_POSTGRES_URL });
  return {
    kafka,
    partitions: kafka.partitions,
    partitionsConcurrently: scheduler.partitionsConcurrently,
    apiBatchSize: scheduler.batchSize,
    apiBatchMaxBytes: scheduler.batchMaxBytes,
    fetchMaxWaitMs: scheduler.fetchMaxWaitMs,
    fetchMinBytes: scheduler.fetchMinBytes,
    outboxBatchSize: api.outboxBatchSize,
    outboxPollIntervalMs: api.outboxPollIntervalMs,
    dbPoolMax: api.dbPoolMax,
    apiProtocol: scheduler.api.protocol,
  };
}
