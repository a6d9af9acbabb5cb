/**
 * End-to-end throughput and latency of the pipeline (cadastro-produtos → scheduler → API →
 * PostgreSQL → outbox relay → produtos-persistidos), next to its two ceilings on the same data.
 *
 *   npm run bench:pipeline -- [--messages 50000] [--pipeline child|inproc] [--relay inline|separate]
 *                             [--latency-s 10] [--rate 1000] [--warmup-percent 10]
 *                             [--node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"]
 *
 * One run, fresh topics, databases and consumer groups:
 *
 * 1. preload: N seed-shaped JSON records into a new input topic, distinct ids plus ~10% updates of
 *    earlier ids with later record timestamps (every record is a state change: one event each);
 * 2. Kafka ceiling: raw kafkajs on the preloaded topic: consume only, then consume → produce
 *    (acks=-1) → consume, the pipeline's Kafka legs with no work between them;
 * 3. PostgreSQL ceiling: the API's UPSERT_SQL on the same records, straight through `pg`, in the
 *    batches the scheduler sends (API_BATCH_SIZE per partition, partitions concurrently);
 * 4. end to end: a real API (with its outbox relay) and a real scheduler, from the scheduler
 *    joining its group until every expected event is on the persisted topic and the row count
 *    matches;
 * 5. latency: open-loop load at --rate (1,000/s) and at half the end-to-end rate, --latency-s each:
 *    per product, from its record timestamp (the scheduled send time) to its event's record
 *    timestamp (stamped by the relay's producer).
 *
 * --pipeline child (default) runs `tsx api/src/main.ts` and `tsx scheduler/src/main.ts` as child
 * processes, as deployed: each service has its own event loop and the load generator shares neither.
 * inproc runs both in this process through createApi/createScheduler: one event loop for everything,
 * so it caps at one core and its latencies include the bench's own work. --relay separate moves the
 * outbox relay into a second API process that serves no requests. --node-args go to the children.
 *
 * The services read their settings from this process's environment (API_BATCH_SIZE,
 * OUTBOX_BATCH_SIZE, KAFKA_FETCH_MAX_WAIT_MS, KAFKA_FETCH_MIN_BYTES, PARTITIONS_CONSUMED_CONCURRENTLY, DB_POOL_MAX, …);
 * topics, database, group and ports are the bench's. Progress goes to stderr, the report to
 * stdout ending with one machine-readable line, JSON to bench/results/runs/ (or --results-file).
 * Each step lives in a module of bench/pipeline/ (see bench/README.md).
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { destination, pino } from "pino";
import { createIdempotentProducer, createKafka } from "#platform/kafka.js";
import { disposableDatabase } from "../test/support/disposable-database.js";
import { measureEndToEnd } from "./pipeline/end-to-end.js";
import { observeEvents } from "./pipeline/event-observer.js";
import { finalChecks } from "./pipeline/final-checks.js";
import { measureConsume, measurePipe } from "./pipeline/kafka-ceiling.js";
import { type LatencyResult, measureLatency } from "./pipeline/latency.js";
import { log } from "./pipeline/log.js";
import { readPipelineBenchOptions, warmupEvents } from "./pipeline/options.js";
import { measurePgCeiling } from "./pipeline/pg-ceiling.js";
import { reportPipelineBench } from "./pipeline/report.js";
import { createRunTopics, runTopics } from "./pipeline/run-topics.js";
import { startPipeline } from "./pipeline/services.js";
import { readSettings } from "./pipeline/settings.js";
import { generateWorkload, preloadInput } from "./pipeline/workload.js";
import { BENCH_POSTGRES_URL } from "./shared/environment.js";
import { failureText, UsageError } from "./shared/usage-error.js";

/** Set by Ctrl-C: cleanup is then under way and decides the exit, whatever the phases throw meanwhile. */
let interrupted = false;
/** The bench's own Kafka clients: warnings and errors only, on stderr. */
const benchLogger = pino({ level: "warn", base: { service: "bench" } }, destination(2));

async function main(): Promise<void> {
  const options = readPipelineBenchOptions(process.argv.slice(2));
  const settings = readSettings();
  const tag = randomBytes(4).toString("hex");
  const topics = runTopics(tag);
  const kafka = createKafka({ ...settings.kafka, clientId: "pipeline-bench" }, benchLogger);
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const step of cleanups.splice(0).reverse()) {
      await step().catch((error: unknown) => log(`cleanup: ${(error as Error).message}`));
    }
  };
  process.on("SIGINT", () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log("interrupted: cleaning up (Ctrl-C again to leave everything as it is)");
    cleanup().finally(() => process.exit(130));
  });

  const loadAtStart = os.loadavg();
  log(
    `${os.availableParallelism()} cores, load average ${loadAtStart.map((l) => l.toFixed(2)).join(" ")}; ` +
      `pipeline=${options.pipeline}, ${settings.partitions} partitions, topics *-${tag}`,
  );
  try {
    cleanups.push(await createRunTopics(kafka, topics, settings));
    const producer = createIdempotentProducer(kafka);
    await producer.connect();
    cleanups.push(() => producer.disconnect());

    const workload = generateWorkload(options.messages, tag, settings.partitions);
    log(
      `workload: ${workload.records.length} records, ${workload.distinctIds} products, ${workload.updates} updates, ` +
        `${workload.expectedEvents} events expected`,
    );
    const preload = await preloadInput(producer, topics.input, workload.records);
    const kafkaConsume = await measureConsume(kafka, topics.input, workload.records.length, settings, tag);
    const kafkaPipe = await measurePipe(kafka, topics, workload.records.length, settings, tag);
    const pgCeiling = await measurePgCeiling(workload, settings);

    const observer = await observeEvents(kafka, topics.persisted, "lat", tag);
    cleanups.push(() => observer.stop());
    const expected = new Map(workload.expectedById);
    const database = disposableDatabase(BENCH_POSTGRES_URL, "products_bench_pipeline");
    cleanups.push(() => database.drop());
    const pipeline = await startPipeline(options, settings, topics, database.url, tag);
    cleanups.push(() => pipeline.stop());
    const e2e = await measureEndToEnd(
      settings,
      pipeline,
      observer,
      database.url,
      workload,
      expected,
      warmupEvents(workload.expectedEvents, options.warmupPercent),
    );

    const latencies: LatencyResult[] = [];
    const rates = [options.rate, Math.max(1, Math.round(e2e.perSecond / 2))];
    for (const [index, rate] of rates.entries()) {
      latencies.push(
        await measureLatency(producer, topics.input, observer, pipeline, expected, {
          rate,
          durationS: options.latencyS,
          idPrefix: `lat${index}-${tag}`,
          partitionWorkers: Math.min(settings.partitions, settings.partitionsConcurrently),
        }),
      );
    }

    const final = await finalChecks(kafka, topics.errors, database.url, observer, expected, pipeline.warnings());
    await reportPipelineBench({
      options,
      settings,
      loadAtStart,
      loadAtEnd: os.loadavg(),
      workload: {
        records: workload.records.length,
        distinctIds: workload.distinctIds,
        updates: workload.updates,
        expectedEvents: workload.expectedEvents,
      },
      preload,
      kafkaConsume,
      kafkaPipe,
      pgCeiling,
      e2e,
      latencies,
      final,
    });
  } finally {
    if (!interrupted) await cleanup();
  }
}

main().then(
  // Explicitly: a client a library keeps open must not hold the report's exit code hostage.
  () => {
    if (!interrupted) process.exit();
  },
  (error: unknown) => {
    if (interrupted) return;
    process.stderr.write(`bench:pipeline: ${failureText(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
