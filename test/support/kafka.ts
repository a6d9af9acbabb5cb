import { setTimeout as delay } from "node:timers/promises";
import { type Admin, type Kafka, type KafkaMessage, type Message, Partitioners, type Producer } from "kafkajs";
import { createEnvReader } from "#platform/env.js";
import { createKafka, ensureTopics, readKafkaConfig } from "#platform/kafka.js";
import { runScopedSuffix, testBrokers } from "./env.js";
import { listEndOffsets } from "./list-offsets.js";
import { testLogger } from "./logger.js";

/** A kafkajs client for the test broker (or `brokers`), logging like the services do, at TEST_LOG_LEVEL. */
export function testKafka(brokers = testBrokers()): Kafka {
  const read = createEnvReader({ KAFKA_BROKER_URL: brokers });
  const config = readKafkaConfig(read, { clientId: "tests" });
  read.done();
  return createKafka(config, testLogger("kafka-test"));
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

/**
 * The high watermark of each partition of `topic`: the offset after its last record, committed or
 * not. Tests need it to know when a reader has seen everything published so far, and kafkajs's
 * admin.fetchTopicOffsets cannot give it: it always asks for read_committed, which answers the last
 * stable offset. That one stays before a transaction until the commit marker is written, and the
 * broker writes the marker after it has answered the commit. So right after the relay committed
 * (and deleted its outbox rows), the LSO may still be before the events: a reader that stops there
 * misses them. A read_committed reader passes the high watermark only once every transaction below
 * it is decided, so waiting for that is exact. Asked again for up to `retryForMs` while it fails,
 * as when a restarted broker has not taken its leaderships back yet.
 */
export async function highWatermarks(kafka: Kafka, topic: string, retryForMs = 10_000): Promise<Map<number, bigint>> {
  const deadline = Date.now() + retryForMs;
  for (;;) {
    try {
      const leaders = await withAdmin(kafka, (admin) => partitionLeaders(admin, topic));
      const answers = await Promise.all(
        [...leaders].map(([address, partitions]) => listEndOffsets(address, topic, partitions)),
      );
      return new Map(answers.flatMap((answer) => [...answer]));
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await delay(200);
    }
  }
}

/** The partitions of `topic` by the "host:port" of their leader. */
async function partitionLeaders(admin: Admin, topic: string): Promise<Map<string, number[]>> {
  const [{ brokers }, { topics }] = await Promise.all([
    admin.describeCluster(),
    admin.fetchTopicMetadata({ topics: [topic] }),
  ]);
  const leaders = new Map<string, number[]>();
  for (const { partitionId, leader } of topics[0]?.partitions ?? []) {
    const broker = brokers.find((b) => b.nodeId === leader);
    if (!broker) throw new Error(`${topic}[${partitionId}] has no leader among the brokers (leader ${leader})`);
    const address = `${broker.host}:${broker.port}`;
    const partitions = leaders.get(address) ?? [];
    partitions.push(partitionId);
    leaders.set(address, partitions);
  }
  return leaders;
}

export interface TestTopics {
  input: string;
  persisted: string;
  errors: string;
  /** Deletes the three topics. */
  delete(): Promise<void>;
}

/**
 * Input, persisted and error topics with names of this run, 3 partitions each. `errorTopicConfig`
 * creates the error topic with those topic configs, e.g. a small max.message.bytes.
 */
export async function createTestTopics(
  kafka: Kafka,
  partitions = 3,
  options: { errorTopicConfig?: Record<string, string> } = {},
): Promise<TestTopics> {
  const suffix = runScopedSuffix();
  const names = {
    input: `test-cadastro-produtos-${suffix}`,
    persisted: `test-produtos-persistidos-${suffix}`,
    errors: `test-erro-produtos-${suffix}`,
  };
  const { errorTopicConfig } = options;
  if (errorTopicConfig) {
    await withAdmin(kafka, (admin) =>
      admin.createTopics({
        topics: [
          {
            topic: names.errors,
            numPartitions: partitions,
            configEntries: Object.entries(errorTopicConfig).map(([name, value]) => ({ name, value })),
          },
        ],
      }),
    );
  }
  await ensureTopics(kafka, Object.values(names), partitions);
  return {
    ...names,
    async delete() {
      await withAdmin(kafka, (admin) => admin.deleteTopics({ topics: Object.values(names) }));
    },
  };
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

/** Number of records in the topic (sum of high watermarks: test topics start at offset 0; control records of transactions count too). */
export async function recordCount(kafka: Kafka, topic: string): Promise<number> {
  return [...(await highWatermarks(kafka, topic)).values()].reduce((sum, high) => sum + Number(high), 0);
}

/** A record read back, with where it is. */
export interface ReadRecord {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/**
 * Reads every record of the topics from the beginning with a throwaway group, up to the end of
 * each partition as of the call (its high watermark: see highWatermarks), in offset order within
 * each partition; the control records of transactions are skipped, as consumers do.
 */
export async function readAllRecords(
  kafka: Kafka,
  topics: readonly string[],
  timeoutMs = 15_000,
): Promise<ReadRecord[]> {
  const ends = new Map<string, bigint>();
  for (const topic of topics) {
    for (const [partition, high] of await highWatermarks(kafka, topic)) ends.set(`${topic}:${partition}`, high);
  }
  const next = new Map([...ends.keys()].map((at) => [at, 0n]));
  const caughtUp = () => [...ends].every(([at, high]) => (next.get(at) ?? 0n) >= high);
  const consumer = kafka.consumer({ groupId: `test-reader-${runScopedSuffix()}`, maxWaitTimeInMs: 200 });
  const received: ReadRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${received.length} records of ${topics.join(", ")}, not up to their end`)),
        timeoutMs,
      );
      const check = () => {
        if (!caughtUp()) return;
        clearTimeout(timer);
        resolve();
      };
      check();
      // A batch's last offset counts its control records, which eachMessage never sees.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        const at = `${payload.topic}:${payload.partition}`;
        const after = BigInt(payload.lastOffset) + 1n;
        if (after > (next.get(at) ?? 0n)) next.set(at, after);
        check();
      });
      consumer
        .run({
          eachMessage: async ({ topic, partition, message }) => {
            const high = ends.get(`${topic}:${partition}`);
            if (high !== undefined && BigInt(message.offset) < high) received.push({ topic, partition, message });
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return received;
}

/** Reads every record of the topic from the beginning with a throwaway group (see readAllRecords). */
export async function readAll(kafka: Kafka, topic: string, timeoutMs = 15_000): Promise<KafkaMessage[]> {
  return (await readAllRecords(kafka, [topic], timeoutMs)).map((record) => record.message);
}
