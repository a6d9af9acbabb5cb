import { setTimeout as delay } from "node:timers/promises";
import { fromBinary } from "@bufbuild/protobuf";
import {
  type Admin,
  type Consumer,
  type Kafka,
  type KafkaMessage,
  type Message,
  Partitioners,
  type Producer,
} from "kafkajs";
import pg from "pg";
import { type ProductPersisted, ProductPersistedSchema } from "#gen/products/v1/events_pb.js";
import { createKafka, ensureTopics } from "#platform/kafka.js";
import { createLogger, type Logger } from "#platform/logger.js";
import { createApi, type RunningApi } from "../../api/src/api.js";
import { loadApiConfig } from "../../api/src/config.js";
import { runScopedSuffix, testBrokers } from "../../test/support/env.js";
import { loadSchedulerConfig } from "../src/config.js";
import { createScheduler, type Scheduler } from "../src/scheduler.js";

/** Read when used, like every test setting (see test/support/env.ts). */
const logLevel = () => process.env.TEST_LOG_LEVEL ?? "silent";

export function testLogger(service: string): Logger {
  return createLogger(service, logLevel() as Parameters<typeof createLogger>[1]);
}

/** A unique part for topic and group names, carrying this run's marker (see test/support/env.ts). */
export function randomSuffix(): string {
  return runScopedSuffix();
}

/** A kafkajs client for the test broker, logging like the services do (silent unless TEST_LOG_LEVEL). */
export function testKafka(): Kafka {
  const config = loadSchedulerConfig({ KAFKA_BROKER_URL: testBrokers(), KAFKA_CLIENT_ID: "scheduler-tests" });
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
    KAFKA_BROKER_URL: testBrokers(),
    TOPIC_NAME: options.topics.input,
    TRANSFORMED_TOPIC: options.topics.persisted,
    ERROR_TOPIC_NAME: options.topics.errors,
    KAFKA_GROUP_ID: groupId,
    KAFKA_FETCH_MAX_WAIT_MS: "200",
    API_URL: options.apiUrl,
    API_TIMEOUT_MS: "5000",
    METRICS_PORT: "0",
    LOG_LEVEL: logLevel(),
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
 * API settings that turn its outbox relay on, publishing to the test's own persisted topic on the
 * test broker (the API's defaults would publish to the shared produtos-persistidos).
 */
export function relayEnv(persistedTopic: string): Record<string, string> {
  return { OUTBOX_RELAY: "true", KAFKA_BROKER_URL: testBrokers(), TRANSFORMED_TOPIC: persistedTopic };
}

/**
 * The API over an existing database, on a given port (0 for any), its relay publishing to
 * `persistedTopic`: with the same URL and port, a restarted API is the same service to the
 * scheduler, as after a real outage.
 */
export async function startApiOn(databaseUrl: string, port: number, persistedTopic: string): Promise<RunningApi> {
  const config = loadApiConfig({
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: logLevel(),
    SHUTDOWN_TIMEOUT_MS: "2000",
    ...relayEnv(persistedTopic),
  });
  return createApi(config, testLogger("api")).start();
}

/** A ProductPersisted record as a consumer of the persisted topic sees it. */
export interface SeenEvent {
  key: string | undefined;
  /** Header values as strings. */
  headers: Record<string, string | undefined>;
  event: ProductPersisted;
  partition: number;
  offset: bigint;
  /** The record's timestamp, epoch milliseconds. */
  timestamp: number;
}

export interface EventWatcher {
  /** Every event seen so far, in arrival order: offset order within a partition, hence per product id. */
  all(): SeenEvent[];
  /** The events keyed by this product id, in order. */
  of(id: string): SeenEvent[];
  /** Resolves with every event seen once `condition` holds for them; rejects after timeoutMs naming `what`. */
  until(condition: (events: SeenEvent[]) => boolean, what: string, timeoutMs?: number): Promise<SeenEvent[]>;
  /**
   * Resolves once every record now in the topic has been seen. After the outbox is drained
   * (untilOutboxDrained), counts taken then are final: nothing published is still on its way.
   */
  untilCaughtUp(timeoutMs?: number): Promise<SeenEvent[]>;
  stop(): Promise<void>;
}

/**
 * Reads the persisted topic from the beginning with a throwaway group, decoding each record as
 * products.v1.ProductPersisted. A record that does not decode fails every later wait.
 */
export async function watchEvents(kafka: Kafka, topic: string): Promise<EventWatcher> {
  const seen: SeenEvent[] = [];
  const nextOffsets = new Map<number, bigint>();
  const checks = new Set<() => void>();
  let undecodable: Error | undefined;
  const consumer: Consumer = kafka.consumer({ groupId: `test-events-${randomSuffix()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        try {
          seen.push({
            key: message.key?.toString(),
            headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, v?.toString()])),
            event: fromBinary(ProductPersistedSchema, message.value ?? new Uint8Array()),
            partition,
            offset: BigInt(message.offset),
            timestamp: Number(message.timestamp),
          });
        } catch (error) {
          undecodable ??= new Error(`${topic} ${partition}:${message.offset} is not a ProductPersisted`, {
            cause: error,
          });
        }
        nextOffsets.set(partition, BigInt(message.offset) + 1n);
        for (const check of checks) check();
      },
    });
  } catch (error) {
    await consumer.disconnect();
    throw error;
  }

  const waitFor = (condition: () => boolean, what: string, timeoutMs: number) =>
    new Promise<SeenEvent[]>((resolve, reject) => {
      const check = () => {
        if (undecodable) {
          done();
          reject(undecodable);
        } else if (condition()) {
          done();
          resolve([...seen]);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; saw ${seen.length} events on ${topic}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        checks.delete(check);
      };
      checks.add(check);
      check();
    });

  return {
    all: () => [...seen],
    of: (id) => seen.filter((e) => e.key === id),
    until: (condition, what, timeoutMs = 15_000) => waitFor(() => condition(seen), what, timeoutMs),
    async untilCaughtUp(timeoutMs = 15_000) {
      const ends = await withAdmin(kafka, (admin) => admin.fetchTopicOffsets(topic));
      return waitFor(
        () => ends.every(({ partition, high }) => (nextOffsets.get(partition) ?? 0n) >= BigInt(high)),
        `the events of ${topic} up to ${ends.map((e) => `${e.partition}:${e.high}`).join(",")}`,
        timeoutMs,
      );
    },
    stop: () => consumer.disconnect(),
  };
}

/**
 * Resolves once the API's outbox (product_events) is empty: the relay deletes a row only after the
 * broker acknowledged its event (acks=-1), so every event written so far is then on the topic.
 * Polls, since deletes notify nobody.
 */
export async function untilOutboxDrained(databaseUrl: string, timeoutMs = 15_000): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM product_events");
      const left = rows[0]?.n ?? 0;
      if (left === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for the outbox to drain: ${left} events unpublished`);
      }
      await delay(25);
    }
  } finally {
    await client.end();
  }
}

/**
 * Call once the writes of interest are done (the scheduler committed them): waits until their events
 * are on the topic and seen, and returns every event seen, final for counting.
 */
export async function untilEventsSettled(watcher: EventWatcher, databaseUrl: string): Promise<SeenEvent[]> {
  await untilOutboxDrained(databaseUrl);
  return watcher.untilCaughtUp();
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
