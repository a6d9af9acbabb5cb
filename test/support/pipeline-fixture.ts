import type { Kafka, Producer } from "kafkajs";
import { startTestApi, type TestApi } from "./api.js";
import { createTestProducer, createTestTopics, type TestTopics, testKafka } from "./kafka.js";
import { startTestScheduler, type TestScheduler } from "./scheduler.js";
import { settleAll } from "./settle.js";

export interface PipelineFixture {
  readonly api: TestApi;
  readonly kafka: Kafka;
  readonly topics: TestTopics;
  readonly producer: Producer;
  /** A scheduler on the fixture's topics, stopped after the block's tests. */
  startScheduler(options: Omit<Parameters<typeof startTestScheduler>[0], "topics">): Promise<TestScheduler>;
}

/**
 * For one describe block of scheduler tests: a real API (with `apiEnv`), fresh topics and a
 * producer, set up in its `before` hook and torn down, with every scheduler it started, in `after`.
 */
export function usePipelineFixture(apiEnv: Record<string, string>, options: { partitions?: number } = {}) {
  let api: TestApi | undefined;
  let kafka: Kafka | undefined;
  let topics: TestTopics | undefined;
  let producer: Producer | undefined;
  const schedulers: TestScheduler[] = [];

  before(async () => {
    kafka = testKafka();
    const client = kafka;
    await settleAll([
      startTestApi(apiEnv).then((started) => {
        api = started;
      }),
      createTestTopics(client, options.partitions).then((created) => {
        topics = created;
      }),
    ]);
    producer = await createTestProducer(client);
  });

  after(async () => {
    for (const scheduler of schedulers) await scheduler.stop();
    await producer?.disconnect();
    await topics?.delete();
    await api?.close();
  });

  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the fixture's ${what} is used before its before hook ran`);
    return value;
  };
  const fixture: PipelineFixture = {
    get api() {
      return ready(api, "API");
    },
    get kafka() {
      return ready(kafka, "Kafka client");
    },
    get topics() {
      return ready(topics, "topics");
    },
    get producer() {
      return ready(producer, "producer");
    },
    async startScheduler(schedulerOptions) {
      const scheduler = await startTestScheduler({ topics: fixture.topics, ...schedulerOptions });
      schedulers.push(scheduler);
      return scheduler;
    },
  };
  return fixture;
}
