import { readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import {
  type ICustomPartitioner,
  type Kafka as KafkaClient,
  Kafka as KafkaJs,
  type KafkaConfig as KafkaJsConfig,
  logLevel as KafkaLogLevel,
  type logCreator,
  type Producer,
  type SASLOptions,
} from "kafkajs";
import type { createEnvReader } from "./env.js";
import { keyPartitioner } from "./key-partitioner.js";
import { createLogger, type Logger } from "./logger.js";
import { withTimeout } from "./timeout.js";

export type EnvReader = ReturnType<typeof createEnvReader>;

export const SASL_MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** Kafka settings shared by every service of the pipeline; read once with readKafkaConfig. */
export interface KafkaConfig {
  /** host:port of the bootstrap brokers. */
  brokers: string[];
  clientId: string;
  sasl: { mechanism: SaslMechanism; username: string; password: string } | undefined;
  /** Unset: plaintext. `ca` replaces the system trust store when KAFKA_SSL_CA_FILE is set. */
  ssl: { ca: string | undefined } | undefined;
  topics: {
    /** Product registrations from producers (the seed's cadastro-produtos). */
    input: string;
    /** Events about persisted products (produtos-persistidos). */
    persisted: string;
    /** Dead letters: records that can never be processed (erro-produtos). */
    errors: string;
  };
  /** Partitions of the topics created at start; existing topics are left as they are. */
  partitions: number;
  /** -1 lets the broker choose (default.replication.factor). */
  replicationFactor: number;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
}

// Kafka's own rule for topic names (kafka.common.internals.Topic).
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
const BROKER = /^(?:\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/;

/**
 * Reads the KAFKA_* and topic variables with the caller's env reader, so their problems are
 * reported together with the service's own. `clientId` is the default for KAFKA_CLIENT_ID.
 */
export function readKafkaConfig(read: EnvReader, defaults: { clientId: string }): KafkaConfig {
  const brokers = read
    .string("KAFKA_BROKER_URL", "localhost:9092")
    .split(",")
    .map((broker) => broker.trim())
    .filter((broker) => broker !== "");
  const badBrokers = brokers.filter((broker) => {
    const port = Number(BROKER.exec(broker)?.[1]);
    return !(port >= 1 && port <= 65535);
  });
  if (brokers.length === 0 || badBrokers.length > 0) {
    read.problem(
      `KAFKA_BROKER_URL=${JSON.stringify(badBrokers.join(",") || "")}: expected a comma-separated list of host:port, e.g. localhost:9092,kafka-2:9092`,
    );
  }

  const topic = (name: string, fallback: string): string => {
    const value = read.string(name, fallback);
    if (!TOPIC_NAME.test(value) || value === "." || value === "..") {
      read.problem(`${name}=${JSON.stringify(value)}: expected a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)`);
    }
    return value;
  };

  return {
    brokers,
    clientId: read.string("KAFKA_CLIENT_ID", defaults.clientId),
    sasl: readSasl(read),
    ssl: readSsl(read),
    topics: {
      input: topic("TOPIC_NAME", "cadastro-produtos"),
      persisted: topic("TRANSFORMED_TOPIC", "produtos-persistidos"),
      errors: topic("ERROR_TOPIC_NAME", "erro-produtos"),
    },
    partitions: read.int("KAFKA_PARTITIONS", 3, 1, 10_000),
    replicationFactor: read.int("KAFKA_REPLICATION_FACTOR", -1, -1, 32_767),
    connectionTimeoutMs: read.int("KAFKA_CONNECTION_TIMEOUT_MS", 3_000, 100, 300_000),
    requestTimeoutMs: read.int("KAFKA_REQUEST_TIMEOUT_MS", 30_000, 100, 600_000),
  };
}

function readSasl(read: EnvReader): KafkaConfig["sasl"] {
  const mechanism = read.optional("KAFKA_SASL_MECHANISM")?.toLowerCase();
  const username = read.optional("KAFKA_SASL_USERNAME");
  const password = read.optional("KAFKA_SASL_PASSWORD");
  if (mechanism === undefined) {
    if (username !== undefined || password !== undefined) {
      read.problem(
        `KAFKA_SASL_MECHANISM: required with KAFKA_SASL_USERNAME/PASSWORD; one of ${SASL_MECHANISMS.join(", ")}`,
      );
    }
    return undefined;
  }
  if (!(SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
    read.problem(`KAFKA_SASL_MECHANISM=${JSON.stringify(mechanism)}: expected one of ${SASL_MECHANISMS.join(", ")}`);
    return undefined;
  }
  if (username === undefined) read.problem("KAFKA_SASL_USERNAME: required when KAFKA_SASL_MECHANISM is set");
  if (password === undefined) read.problem("KAFKA_SASL_PASSWORD: required when KAFKA_SASL_MECHANISM is set");
  return { mechanism: mechanism as SaslMechanism, username: username ?? "", password: password ?? "" };
}

function readSsl(read: EnvReader): KafkaConfig["ssl"] {
  const caFile = read.optional("KAFKA_SSL_CA_FILE");
  // A CA file only makes sense with TLS, so it turns TLS on rather than being silently ignored.
  if (!read.bool("KAFKA_SSL", caFile !== undefined)) {
    if (caFile !== undefined) read.problem("KAFKA_SSL_CA_FILE: set, but KAFKA_SSL=false; remove one of them");
    return undefined;
  }
  if (caFile === undefined) return { ca: undefined };
  try {
    return { ca: readFileSync(caFile, "utf8") };
  } catch (error) {
    read.problem(`KAFKA_SSL_CA_FILE=${JSON.stringify(caFile)}: cannot read it (${(error as Error).message})`);
    return { ca: undefined };
  }
}

/**
 * A kafkajs client whose log lines go through our logger, as JSON, with the service's fields.
 * `retry` replaces kafkajs's (e.g. none, for a quick "is a broker there?" probe).
 */
export function createKafka(config: KafkaConfig, logger: Logger, retry?: KafkaJsConfig["retry"]): KafkaClient {
  const options: KafkaJsConfig = {
    ...(retry === undefined ? {} : { retry }),
    clientId: config.clientId,
    brokers: config.brokers,
    connectionTimeout: config.connectionTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    logLevel: kafkaLogLevel(logger.level),
    logCreator: pinoLogCreator(logger.child({ component: "kafkajs" })),
  };
  if (config.ssl) options.ssl = config.ssl.ca === undefined ? true : { ca: [config.ssl.ca] };
  if (config.sasl) options.sasl = config.sasl as SASLOptions;
  return new KafkaJs(options);
}

function kafkaLogLevel(level: string): KafkaLogLevel {
  switch (level) {
    case "trace":
    case "debug":
      return KafkaLogLevel.DEBUG;
    case "info":
      return KafkaLogLevel.INFO;
    case "warn":
      return KafkaLogLevel.WARN;
    case "silent":
      return KafkaLogLevel.NOTHING;
    default:
      return KafkaLogLevel.ERROR;
  }
}

/** kafkajs's message for CONCURRENT_TRANSACTIONS. */
const CONCURRENT_TRANSACTIONS_MESSAGE = "while another concurrent operation on the same transaction was ongoing";

function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = log;
      const entry = { namespace, ...fields };
      // A broker's error answer to one request ("Response Produce(…)", e.g. a coordinator still
      // loading) is retried by kafkajs; only what its retries give up on is an error for us.
      const retriedByKafkajs = namespace === "Connection" && message.startsWith("Response ");
      // A transaction begun while the coordinator still completes the previous one: part of every
      // transactional producer's normal run, retried at once.
      // kafkajs names the error in a field of its own, or (the producer's retry) in the message.
      const previousTransactionCompleting =
        message.includes(CONCURRENT_TRANSACTIONS_MESSAGE) ||
        (typeof fields.error === "string" && fields.error.includes(CONCURRENT_TRANSACTIONS_MESSAGE));
      if (previousTransactionCompleting) logger.debug(entry, message);
      else if (level === KafkaLogLevel.ERROR && !retriedByKafkajs) logger.error(entry, message);
      else if (level === KafkaLogLevel.ERROR) logger.warn(entry, message);
      else if (level === KafkaLogLevel.WARN) logger.warn(entry, message);
      else if (level === KafkaLogLevel.INFO) logger.info(entry, message);
      else logger.debug(entry, message);
    };
}

/**
 * Creates the topics that do not exist yet, with `partitions` partitions, and waits until every
 * topic has a leader for each partition. Safe to run from several processes at once: a topic
 * created concurrently by someone else (TOPIC_ALREADY_EXISTS) counts as present. Existing topics
 * are never altered. Returns the names this call created.
 */
export async function ensureTopics(
  kafka: KafkaClient,
  topics: readonly string[],
  partitions: number,
  options: { replicationFactor?: number; timeoutMs?: number } = {},
): Promise<string[]> {
  const wanted = [...new Set(topics)];
  const timeoutMs = options.timeoutMs ?? 30_000;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = wanted.filter((topic) => !existing.has(topic));
    let created: string[] = [];
    if (missing.length > 0) {
      try {
        // false: some already existed (created concurrently by another process); kafkajs does
        // not say which of ours succeeded, so none is reported as created by this call.
        const allCreated = await admin.createTopics({
          topics: missing.map((topic) => ({
            topic,
            numPartitions: partitions,
            replicationFactor: options.replicationFactor ?? -1,
          })),
          waitForLeaders: false,
          timeout: timeoutMs,
        });
        if (allCreated) created = missing;
      } catch (error) {
        if (!isTopicAlreadyExists(error)) throw error;
      }
    }
    await waitForLeaders(admin, wanted, timeoutMs);
    return created;
  } finally {
    await admin.disconnect();
  }
}

function isTopicAlreadyExists(error: unknown): boolean {
  const { type, errors } = (error ?? {}) as { type?: unknown; errors?: unknown };
  if (type === "TOPIC_ALREADY_EXISTS") return true;
  return Array.isArray(errors) && errors.length > 0 && errors.every(isTopicAlreadyExists);
}

async function waitForLeaders(
  admin: ReturnType<KafkaClient["admin"]>,
  topics: string[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const metadata = await admin.fetchTopicMetadata({ topics });
      const ready = metadata.topics.every(
        (topic) => topic.partitions.length > 0 && topic.partitions.every((p) => p.leader >= 0),
      );
      if (ready && metadata.topics.length === topics.length) return;
    } catch (error) {
      lastError = error;
    }
    await delay(100);
  }
  throw new Error(`topics ${topics.join(", ")} have no leader after ${timeoutMs} ms`, { cause: lastError });
}

/**
 * The one producer setup of the project (scheduler dead letters, the outbox relay, the produce tool):
 * idempotent, one request in flight so that retries keep the order, topics never created by a send,
 * and by default the Java client's partitioner (keyPartitioner: murmur2 of the key, as kafkajs's
 * DefaultPartitioner but without its cost), so records of one key share a partition with what any
 * other client sends. With a transactionalId it is transactional: sends go through
 * producer.transaction(), and a producer that starts later with the same id fences this one.
 */
export function createIdempotentProducer(
  kafka: KafkaClient,
  options: { transactionalId?: string; createPartitioner?: ICustomPartitioner } = {},
): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: options.createPartitioner ?? keyPartitioner,
    ...(options.transactionalId === undefined
      ? {}
      : {
          transactionalId: options.transactionalId,
          // Right after a commit the coordinator is still writing its markers and answers the next
          // transaction's first request CONCURRENT_TRANSACTIONS; kafkajs's first retry would wait 300 ms.
          retry: { initialRetryTime: 20, retries: Number.MAX_SAFE_INTEGER },
        }),
  });
}

/**
 * What a failed Kafka request means for the caller:
 * - `too_large`: the broker refuses the record or batch for its size (MESSAGE_TOO_LARGE,
 *   RECORD_LIST_TOO_LARGE); sending it again cannot succeed, sending less may;
 * - `fatal`: a mistake no retry fixes (authentication, authorisation, an invalid topic or record);
 * - `retriable`: anything else (broker down, leader moving, timeouts): retry with backoff.
 */
export type KafkaErrorClass = "retriable" | "too_large" | "fatal";

const TOO_LARGE = new Set(["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"]);
const FATAL = new Set([
  "SASL_AUTHENTICATION_FAILED",
  "TOPIC_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  "INVALID_TOPIC_EXCEPTION",
  "INVALID_RECORD",
  "CORRUPT_MESSAGE",
  "UNSUPPORTED_VERSION",
  "UNSUPPORTED_COMPRESSION_TYPE",
]);

export function classifyKafkaError(error: unknown): KafkaErrorClass {
  for (const { type, name } of errorChain(error)) {
    if (typeof type === "string") {
      if (TOO_LARGE.has(type)) return "too_large";
      if (FATAL.has(type)) return "fatal";
    }
    if (name === "KafkaJSSASLAuthenticationError") return "fatal";
  }
  return "retriable";
}

const FENCED = new Set(["INVALID_PRODUCER_EPOCH", "PRODUCER_FENCED", "INVALID_PRODUCER_ID_MAPPING"]);

/**
 * Whether a transactional producer's epoch is over: another producer started with the same
 * transactional id (or the broker expired ours), so nothing this producer sends is accepted any
 * more. Brokers answer kafkajs's request versions INVALID_PRODUCER_EPOCH; PRODUCER_FENCED (90),
 * which kafkajs does not know, reaches us as an unknown error code.
 */
export function isProducerFenced(error: unknown): boolean {
  for (const { type, message } of errorChain(error)) {
    if (typeof type === "string" && FENCED.has(type)) return true;
    if (type === "KAFKAJS_UNKNOWN_ERROR_CODE" && message === "Unknown error code 90") return true;
  }
  return false;
}

/** The error and what it wraps: kafkajs puts the broker's error (type = the protocol's error name) inside retry errors. */
function* errorChain(error: unknown): Generator<{ type?: unknown; name?: unknown; message?: unknown }> {
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 10; depth++) {
    const link = current as {
      type?: unknown;
      name?: unknown;
      message?: unknown;
      originalError?: unknown;
      cause?: unknown;
    };
    yield link;
    current = link.originalError ?? link.cause;
  }
}

/**
 * Whether a broker at config.brokers serves requests: a metadata round trip that lists a broker,
 * not merely an open port (a KRaft broker binds its port before it can answer). No retries, bounded
 * by timeoutMs, never throws: for deciding whether to start one.
 */
export async function kafkaAnswers(config: KafkaConfig, timeoutMs = 8_000): Promise<boolean> {
  const probe = { ...config, connectionTimeoutMs: 2_000, requestTimeoutMs: Math.min(5_000, timeoutMs) };
  const admin = createKafka(probe, createLogger("kafka-probe", "silent"), { retries: 0 }).admin();
  try {
    const answer = (async () => {
      await admin.connect();
      return (await admin.describeCluster()).brokers.length > 0;
    })();
    return await withTimeout(answer, timeoutMs, `no answer from Kafka at ${config.brokers.join(",")}`);
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
