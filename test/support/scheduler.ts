import type { Kafka } from "kafkajs";
import { loadSchedulerConfig } from "../../scheduler/src/config.js";
import { createScheduler, type Scheduler } from "../../scheduler/src/scheduler.js";
import { runScopedSuffix, testBrokers } from "./env.js";
import { type TestTopics, withAdmin } from "./kafka.js";
import { testLogger, testLogLevel } from "./logger.js";

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
  const groupId = options.groupId ?? `test-scheduler-${runScopedSuffix()}`;
  const config = loadSchedulerConfig({
    KAFKA_BROKER_URL: testBrokers(),
    TOPIC_NAME: options.topics.input,
    TRANSFORMED_TOPIC: options.topics.persisted,
    ERROR_TOPIC_NAME: options.topics.errors,
    KAFKA_GROUP_ID: groupId,
    API_URL: options.apiUrl,
    API_TIMEOUT_MS: "5000",
    METRICS_PORT: "0",
    LOG_LEVEL: testLogLevel(),
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
