import type { Kafka } from "kafkajs";
import { createIdempotentProducer } from "#platform/kafka.js";
import { disposableDatabase } from "../../test/support/disposable-database.js";
import { measureEndToEnd } from "../pipeline/end-to-end.js";
import { observeEvents } from "../pipeline/event-observer.js";
import { metricSum } from "../pipeline/metrics-text.js";
import { DEFAULT_WARMUP_PERCENT, warmupEvents } from "../pipeline/options.js";
import type { RateResult } from "../pipeline/rate-result.js";
import { createRunTopics, runTopics } from "../pipeline/run-topics.js";
import { startPipeline } from "../pipeline/services.js";
import type { Settings } from "../pipeline/settings.js";
import { preloadInput, type Workload } from "../pipeline/workload.js";
import { BENCH_POSTGRES_URL } from "../shared/environment.js";
import { log } from "./log.js";
import type { ConfigResult } from "./model.js";
import type { CapacityConfig } from "./options.js";

/**
 * One topology on fresh topics, database, group and producer: the services start, the group settles, then
 * the workload is produced while the clock runs, until every event is on the persisted topic.
 */
export async function measureConfig(
  kafka: Kafka,
  settings: Settings,
  workload: Workload,
  config: CapacityConfig,
  tag: string,
  nodeArgs: readonly string[],
): Promise<ConfigResult> {
  const runTag = `${tag}-${config.schedulers}x${config.apiReplicas}`;
  const topics = runTopics(runTag);
  const cleanups: (() => Promise<unknown>)[] = [await createRunTopics(kafka, topics, settings)];
  try {
    // A producer per topology: kafkajs keeps refreshing the metadata of every topic a producer has
    // sent to, and fails once an earlier topology's topics are deleted.
    const producer = createIdempotentProducer(kafka);
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    const database = disposableDatabase(BENCH_POSTGRES_URL, "products_bench_capacity");
    cleanups.push(() => database.drop());
    // Nothing to decode: counting events per id is enough here.
    const observer = await observeEvents(kafka, topics.persisted, "\u0000", runTag);
    cleanups.push(() => observer.stop());
    const pipeline = await startPipeline(
      { pipeline: "child", relay: "inline", nodeArgs },
      settings,
      topics,
      database.url,
      runTag,
      config,
    );
    cleanups.push(() => pipeline.stop());
    let fed: RateResult | undefined;
    const e2e = await measureEndToEnd(
      settings,
      pipeline,
      observer,
      database.url,
      workload,
      workload.expectedById,
      warmupEvents(workload.expectedEvents, DEFAULT_WARMUP_PERCENT),
      async () => {
        fed = await preloadInput(producer, topics.input, workload.records);
      },
    );
    const apis = await pipeline.apiMetrics();
    const apiNames = Object.keys(apis);
    return {
      ...config,
      messages: e2e.messages,
      seconds: e2e.seconds,
      perSecond: e2e.perSecond,
      feedPerS: fed?.perSecond ?? 0,
      lost: e2e.lost,
      duplicates: e2e.duplicates,
      startupS: e2e.startupS,
      relayOn: apiNames.find((name) => metricSum(apis[name] ?? "", "api_outbox_relay_active") === 1),
      schedulerApis: pipeline.schedulerApis,
      cpu: e2e.cpu,
      calls: e2e.calls,
    };
  } finally {
    for (const step of cleanups.reverse()) {
      await step().catch((error: unknown) => log(`cleanup: ${(error as Error).message}`));
    }
  }
}
