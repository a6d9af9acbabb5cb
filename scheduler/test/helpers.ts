import { randomBytes } from "node:crypto";
import { type Admin, type Kafka, type KafkaMessage, type Message, Partitioners, type Producer } from "kafkajs";
import pg from "pg";
import { createApi, type RunningApi } from "../../api/src/api.js";
import { loadApiConfig } from "../../api/src/config.js";
import { createKafka, ensureTopics } from "../../lib/kafka.js";
import { createLogger, type Logger } from "../../lib/logger.js";
import { loadSchedulerConfig } from "../src/config.js";
import { createScheduler, type Scheduler } from "../src/scheduler.js";

const LOG_LEVEL = process.env.TEST_LOG_LEVEL ?? "silent";
export const TEST_BROKERS = process.env.KAFKA_BROKER_URL ?? "127.0.0.1:9092";

export function testLogger(service: string): Logger {
  return createLogger(service, LOG_LEVEL as Parameters<typeof createLogger>[1]);
}

export function randomSuffix(): string {
  return randomBytes(6).toString("hex");
}

/** A kafkajs client for the test broker, logging like the services do (silent unless TEST_LOG_LEVEL). */
export function testKafka(): Kafka {
  const config = loadSchedulerConfig({ KAFKA_BROKER_URL: TEST_BROKERS, KAFKA_CLIENT_ID: "scheduler-tests" });
  return createKafka(config.kafka, testLogger("kafka-test"));
}

export interface TestTopics {
  input: string;
  persisted: string;
  errors: string;
  /** Deletes the three topics. */
  delete(): Promise<void>;
}

/** Input, persisted and error topics with random names, 3 partitions each. */
export async function createTestTopics(kafka: Kafka, partitions = 3): Promise<TestTopics> {
  const suffix = randomSuffix();
  const names = {
    input: `test-cadastro-produtos-${suffix}`,
    persisted: `test-produtos-persistidos-${suffix}`,
    errors: `test-erro-produtos-${suffix}`,
  };
  await ensureTopics(kafka, Object.values(names), partitions);
  return {
    ...names,
    async delete() {
      await withAdmin(kafka, (admin) => admin.deleteTopics({ topics: Object.values(names) }));
    },
  };
}

export async function withAdmin<T>(kafka: Kafka, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTestProducer(kafka: Kafka): Promise<Producer> {
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  return producer;
}

export interface ProducedRecord {
  partition: number;
  offset: bigint;
}

/**
 * Sends the messages in one request. Messages must share a key (or a partition) so their offsets
 * are consecutive and can be returned per message.
 */
export async function produceInOrder(
  producer: Producer,
  topic: string,
  messages: Message[],
): Promise<ProducedRecord[]> {
  const [metadata, ...others] = await producer.send({ topic, acks: -1, messages });
  if (!metadata || others.length > 0) throw new Error("produceInOrder: messages went to several partitions");
  const base = BigInt(metadata.baseOffset ?? "0");
  return messages.map((_, index) => ({ partition: metadata.partition, offset: base + BigInt(index) }));
}

export interface TestScheduler extends Scheduler {
  groupId: string;
}

/** A real scheduler on the test topics with a unique consumer group; env overrides as the service reads them. */
export async function startTestScheduler(options: {
  topics: Pick<TestTopics, "input" | "persisted" | "errors">;
  apiUrl: string;
  groupId?: string;
  env?: Record<string, string>;
}): Promise<TestScheduler> {
  const groupId = options.groupId ?? `test-scheduler-${randomSuffix()}`;
  const config = loadSchedulerConfig({
    KAFKA_BROKER_URL: TEST_BROKERS,
    TOPIC_NAME: options.topics.input,
    TRANSFORMED_TOPIC: options.topics.persisted,
    ERROR_TOPIC_NAME: options.topics.errors,
    KAFKA_GROUP_ID: groupId,
    KAFKA_FETCH_MAX_WAIT_MS: "200",
    API_URL: options.apiUrl,
    API_TIMEOUT_MS: "5000",
    METRICS_PORT: "0",
    LOG_LEVEL,
    ...options.env,
  });
  const scheduler = createScheduler(config, testLogger("scheduler"));
  await scheduler.start();
  return Object.assign(scheduler, { groupId });
}

/**
 * Resolves once `condition` holds, checking now and after every `event` the scheduler emits;
 * rejects after timeoutMs with `what` in the message.
 */
export function until(
  scheduler: Scheduler,
  event: "committed" | "retrying" | "dead-lettered",
  condition: () => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!condition()) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      scheduler.events.off(event, check);
    };
    scheduler.events.on(event, check);
    check();
  });
}

/**
 * Waits until the scheduler's group has committed everything currently in the topic, by this
 * instance or (for partitions with nothing new) by an earlier member of the group.
 */
export async function untilConsumed(scheduler: TestScheduler, kafka: Kafka, topic: string, timeoutMs = 15_000) {
  const [ends, [earlier]] = await withAdmin(kafka, (admin) =>
    Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: scheduler.groupId, topics: [topic] })]),
  );
  const committed = (partition: number): bigint => {
    const before = BigInt(earlier?.partitions.find((p) => p.partition === partition)?.offset ?? "0");
    const now = scheduler.committedOffset(topic, partition) ?? 0n;
    return now > before ? now : before;
  };
  await until(
    scheduler,
    "committed",
    () => ends.every(({ partition, high }) => committed(partition) >= BigInt(high)),
    `${topic} to be consumed up to ${ends.map((e) => `${e.partition}:${e.high}`).join(",")}`,
    timeoutMs,
  );
}

/** Number of records in the topic (sum of high watermarks: test topics start at offset 0). */
export async function recordCount(kafka: Kafka, topic: string): Promise<number> {
  const ends = await withAdmin(kafka, (admin) => admin.fetchTopicOffsets(topic));
  return ends.reduce((sum, { high }) => sum + Number(high), 0);
}

/** Reads every record of the topic from the beginning with a throwaway group. */
export async function readAll(kafka: Kafka, topic: string, timeoutMs = 15_000): Promise<KafkaMessage[]> {
  const expected = await recordCount(kafka, topic);
  const consumer = kafka.consumer({ groupId: `test-reader-${randomSuffix()}`, maxWaitTimeInMs: 200 });
  const received: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${received.length} of ${expected} records of ${topic}`)),
        timeoutMs,
      );
      if (expected === 0) {
        clearTimeout(timer);
        resolve();
        return;
      }
      consumer
        .run({
          eachMessage: async ({ message }) => {
            received.push(message);
            if (received.length >= expected) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return received;
}

/**
 * The API over an existing database, on a given port (0 for any): with the same URL and port, a
 * restarted API is the same service to the scheduler, as after a real outage.
 */
export async function startApiOn(databaseUrl: string, port: number): Promise<RunningApi> {
  const config = loadApiConfig({
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: databaseUrl,
    LOG_LEVEL,
    SHUTDOWN_TIMEOUT_MS: "2000",
  });
  return createApi(config, testLogger("api")).start();
}

/** The seed producer's JSON message, with field overrides (undefined removes the field). */
export function seedMessage(overrides: Record<string, unknown> = {}): string {
  const json: Record<string, unknown> = {
    productId: "12345",
    productName: "Nome do Produto",
    productDescription: "Descrição do Produto",
    price: 100.0,
    currency: "BRL",
    stockQuantity: 50,
    category: "Categoria do Produto",
  };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete json[name];
    else json[name] = value;
  }
  return JSON.stringify(json);
}

/** One query on a database of its own connection, for checks while the API is down. */
export async function queryDatabase<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}
