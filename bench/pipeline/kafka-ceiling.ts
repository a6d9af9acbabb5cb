import { performance } from "node:perf_hooks";
import type { Kafka } from "kafkajs";
import { keyPartitioner } from "#platform/key-partitioner.js";
import { openCpuWindow } from "./cpu-window.js";
import { untilCount } from "./progress.js";
import { type RateResult, rateResult } from "./rate-result.js";
import type { Settings } from "./settings.js";
import { PRODUCE_BATCH } from "./workload.js";

type FetchedMessage = { key: Buffer | null; value: Buffer | null; timestamp: string };

/** A consumer on a fresh group that counts records; resolves once it has joined. */
async function countingConsumer(
  kafka: Kafka,
  topic: string,
  group: string,
  partitionsConcurrently: number,
  onBatch?: (messages: readonly FetchedMessage[]) => Promise<void>,
) {
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
  let count = 0;
  let joinedAt = 0;
  const joined = new Promise<void>((resolve) => {
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joinedAt ||= performance.now();
      resolve();
    });
  });
  const failed = new Promise<never>((_, reject) => {
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) reject(new Error(`consumer ${group} failed: ${payload.error.message}`));
    });
  });
  failed.catch(() => {});
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: onBatch !== undefined,
    partitionsConsumedConcurrently: partitionsConcurrently,
    eachBatch: async ({ batch }) => {
      if (onBatch) await onBatch(batch.messages);
      count += batch.messages.length;
    },
  });
  await joined;
  return { count: () => count, joinedAt: () => joinedAt, failed, stop: () => consumer.disconnect() };
}

/** Raw kafkajs consume of the preloaded topic by a fresh group (`tag` names it): no work per record. */
export async function measureConsume(
  kafka: Kafka,
  topic: string,
  total: number,
  settings: Settings,
  tag: string,
): Promise<RateResult> {
  const cpu = await openCpuWindow();
  const consumer = await countingConsumer(
    kafka,
    topic,
    `bench-ceiling-consume-${tag}`,
    settings.partitionsConcurrently,
  );
  try {
    const end = await untilCount("kafka consume", consumer.count, total, consumer.failed);
    return rateResult(total, (end - consumer.joinedAt()) / 1000, await cpu());
  } finally {
    await consumer.stop();
  }
}

/**
 * The pipeline's Kafka legs with nothing between them: a fresh group reads the preloaded topic and
 * forwards each batch (acks=-1) to a scratch topic, where another consumer counts the records. The
 * forwarding producer is not idempotent because partitions forward concurrently (kafkajs keeps one
 * sequence per partition; a plain acks=-1 producer has the same request cost). It partitions as
 * the pipeline's producers do (keyPartitioner).
 */
export async function measurePipe(
  kafka: Kafka,
  topics: { input: string; scratch: string },
  total: number,
  settings: Settings,
  tag: string,
): Promise<RateResult> {
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: keyPartitioner,
  });
  await producer.connect();
  const observer = await countingConsumer(kafka, topics.scratch, `bench-ceiling-observe-${tag}`, 1);
  const cpu = await openCpuWindow();
  try {
    const forwarder = await countingConsumer(
      kafka,
      topics.input,
      `bench-ceiling-pipe-${tag}`,
      settings.partitionsConcurrently,
      async (messages) => {
        // A fetched batch can hold up to 1 MiB per partition: forward it in produce-sized requests.
        for (let index = 0; index < messages.length; index += PRODUCE_BATCH) {
          await producer.send({
            topic: topics.scratch,
            acks: -1,
            messages: messages
              .slice(index, index + PRODUCE_BATCH)
              .map(({ key, value, timestamp }) => ({ key, value, timestamp })),
          });
        }
      },
    );
    try {
      const end = await untilCount(
        "kafka consume→produce→consume",
        observer.count,
        total,
        Promise.race([observer.failed, forwarder.failed]),
      );
      return rateResult(total, (end - forwarder.joinedAt()) / 1000, await cpu());
    } finally {
      await forwarder.stop();
    }
  } finally {
    await observer.stop();
    await producer.disconnect();
  }
}
