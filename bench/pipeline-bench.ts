/**
 * End-to-end throughput and latency of the pipeline (cadastro-produtos → scheduler → API →
 * PostgreSQL → outbox relay → produtos-persistidos), next to its two ceilings on the same data.
 *
 *   npm run bench:pipeline -- [--messages 50000] [--pipeline child|inproc] [--relay inline|separate]
 *                             [--latency-s 10] [--rate 1000] [--node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"]
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
 * OUTBOX_BATCH_SIZE, KAFKA_FETCH_MAX_WAIT_MS, PARTITIONS_CONSUMED_CONCURRENTLY, DB_POOL_MAX, …);
 * topics, database, group and ports are the bench's. Progress goes to stderr, the report to
 * stdout ending with one machine-readable line, JSON to bench/results/pipeline-<time>.json.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type Consumer, type Kafka, type Message, Partitioners, type Producer } from "kafkajs";
import knexFactory from "knex";
import pg from "pg";
import { destination, type Logger, pino } from "pino";
import { ProductPersistedSchema } from "#gen/products/v1/events_pb.js";
import { createEnvReader } from "#platform/env.js";
import { createKafka, ensureTopics, type KafkaConfig, readKafkaConfig } from "#platform/kafka.js";
import { createApi } from "../api/src/api.js";
import { loadApiConfig } from "../api/src/config.js";
import { createKnex, ensureDatabaseExists, pgTypes } from "../api/src/db/database.js";
import { migrateToLatest } from "../api/src/db/migrations.js";
import { UPSERT_SQL } from "../api/src/products/product-repository.js";
import { loadSchedulerConfig } from "../scheduler/src/config.js";
import { createScheduler } from "../scheduler/src/scheduler.js";
import { createRandom, generateProduct, priceText, type SeedProduct, updateOf } from "../scripts/seed-messages.js";
import { disposableDatabase } from "../test/support/disposable-database.js";
import { freePort, machineCpuSeconds, processCpu, waitUntilReady } from "./bench-support.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BASE_POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const PIPELINE_MODES = ["child", "inproc"] as const;
type PipelineMode = (typeof PIPELINE_MODES)[number];
const RELAY_MODES = ["inline", "separate"] as const;
type RelayMode = (typeof RELAY_MODES)[number];
const UPDATE_SHARE = 0.1;
/** Records per produce request: as `npm run produce` sends them. */
const PRODUCE_BATCH = 1000;
/** A phase that sees no new event for this long is over; what is missing by then is lost. */
const IDLE_TIMEOUT_MS = 30_000;

interface BenchOptions {
  messages: number;
  pipeline: PipelineMode;
  /** separate: the API that serves the scheduler runs no relay; a second API process (no traffic) does. */
  relay: RelayMode;
  latencyS: number;
  rate: number;
  nodeArgs: string[];
}

/** One input record of the workload, with the partition the default partitioner gives its key. */
interface WorkRecord {
  product: SeedProduct;
  value: string;
  timestamp: number;
  partition: number;
}

/** The settings of the services as they will read them from this environment. */
interface Settings {
  kafka: KafkaConfig;
  partitions: number;
  partitionsConcurrently: number;
  apiBatchSize: number;
  apiBatchMaxBytes: number;
  fetchMaxWaitMs: number;
  outboxBatchSize: number;
  outboxPollIntervalMs: number;
  dbPoolMax: number;
  apiProtocol: string;
}

interface RateResult {
  messages: number;
  seconds: number;
  perSecond: number;
  cpu?: CpuUse | undefined;
}

interface LatencyResult {
  ratePerS: number;
  durationS: number;
  sent: number;
  /** Rate the load generator achieved over its sending window. */
  sentPerS: number;
  seen: number;
  lost: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The same, to when the bench's consumer saw the event (includes its fetch wait). */
  seenP50Ms: number;
  seenP99Ms: number;
  /** Record time → start of the transaction that wrote the row: Kafka, scheduler, RPC, API. */
  toWriteP50Ms: number;
  toWriteP99Ms: number;
  /** Start of that transaction → event record time: the write, its commit, NOTIFY, relay. */
  writeToEventP50Ms: number;
  writeToEventP99Ms: number;
  cpu: CpuUse | undefined;
}

function log(message: string): void {
  process.stderr.write(`bench:pipeline ${message}\n`);
}

const silentLogger = pino({ level: "silent" });
/** Set by Ctrl-C: cleanup is then under way and decides the exit, whatever the phases throw meanwhile. */
let interrupted = false;
/** The bench's own Kafka clients: warnings and errors only, on stderr. */
const benchLogger = pino({ level: "warn", base: { service: "bench" } }, destination(2));

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2));
  const settings = readSettings();
  const tag = randomBytes(4).toString("hex");
  const topics = {
    input: `bench-cadastro-produtos-${tag}`,
    persisted: `bench-produtos-persistidos-${tag}`,
    errors: `bench-erro-produtos-${tag}`,
    scratch: `bench-kafka-ceiling-${tag}`,
  };
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
    await ensureTopics(kafka, Object.values(topics), settings.partitions, {
      replicationFactor: settings.kafka.replicationFactor,
    });
    cleanups.push(() => deleteTopics(kafka, Object.values(topics)));
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    cleanups.push(() => producer.disconnect());

    const workload = generateWorkload(options.messages, tag, settings.partitions);
    log(
      `workload: ${workload.records.length} records, ${workload.distinctIds} products, ${workload.updates} updates, ` +
        `${workload.expectedEvents} events expected`,
    );
    const preload = await preloadInput(producer, topics.input, workload.records);
    const kafkaConsume = await measureConsume(kafka, topics.input, workload.records.length, settings);
    const kafkaPipe = await measurePipe(kafka, topics.input, topics.scratch, workload.records.length, settings);
    const pgCeiling = await measurePgCeiling(workload, settings);

    const observer = await observeEvents(kafka, topics.persisted, "lat");
    cleanups.push(() => observer.stop());
    const expected = new Map(workload.expectedById);
    const database = disposableDatabase(BASE_POSTGRES_URL, "products_bench_pipeline");
    cleanups.push(() => database.drop());
    const pipeline = await startPipeline(options, settings, topics, database.url, tag);
    cleanups.push(() => pipeline.stop());
    const e2e = await measureEndToEnd(settings, pipeline, observer, database.url, workload, expected);

    const latencies: LatencyResult[] = [];
    const rates = [options.rate, Math.max(1, Math.round(e2e.perSecond / 2))];
    for (const [index, rate] of rates.entries()) {
      latencies.push(
        await measureLatency(producer, topics.input, observer, pipeline, expected, {
          rate,
          durationS: options.latencyS,
          idPrefix: `lat${index}-${tag}`,
        }),
      );
    }

    const final = await finalChecks(kafka, topics.errors, database.url, observer, expected, pipeline.warnings());
    await report({
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

function readOptions(args: string[]): BenchOptions {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        messages: { type: "string", default: "50000" },
        pipeline: { type: "string", default: "child" },
        relay: { type: "string", default: "inline" },
        "latency-s": { type: "string", default: "10" },
        rate: { type: "string", default: "1000" },
        "node-args": { type: "string", default: "" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const positiveInt = (flag: string): number => {
    const value = values[flag] ?? "";
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || !Number.isSafeInteger(n)) {
      throw new UsageError(`--${flag}=${value}: expected a positive integer`);
    }
    return n;
  };
  const pipeline = values.pipeline as PipelineMode;
  if (!PIPELINE_MODES.includes(pipeline)) {
    throw new UsageError(`--pipeline=${values.pipeline}: expected one of ${PIPELINE_MODES.join(", ")}`);
  }
  const relay = values.relay as RelayMode;
  if (!RELAY_MODES.includes(relay)) {
    throw new UsageError(`--relay=${values.relay}: expected one of ${RELAY_MODES.join(", ")}`);
  }
  if (relay === "separate" && pipeline !== "child") throw new UsageError("--relay=separate needs --pipeline=child");
  return {
    messages: positiveInt("messages"),
    pipeline,
    relay,
    latencyS: positiveInt("latency-s"),
    rate: positiveInt("rate"),
    nodeArgs: (values["node-args"] ?? "").split(" ").filter((arg) => arg !== ""),
  };
}

function readSettings(): Settings {
  const env = { KAFKA_BROKER_URL: "127.0.0.1:9092", ...process.env };
  const read = createEnvReader(env);
  const kafka = readKafkaConfig(read, { clientId: "pipeline-bench" });
  read.done();
  // The services' own loaders, so the ceilings use exactly the values the services will.
  const scheduler = loadSchedulerConfig({ ...env, METRICS_PORT: "0" });
  const api = loadApiConfig({ ...env, DATABASE_URL: BASE_POSTGRES_URL });
  return {
    kafka,
    partitions: kafka.partitions,
    partitionsConcurrently: scheduler.partitionsConcurrently,
    apiBatchSize: scheduler.batchSize,
    apiBatchMaxBytes: scheduler.batchMaxBytes,
    fetchMaxWaitMs: scheduler.fetchMaxWaitMs,
    outboxBatchSize: api.outboxBatchSize,
    outboxPollIntervalMs: api.outboxPollIntervalMs,
    dbPoolMax: api.dbPoolMax,
    apiProtocol: scheduler.api.protocol,
  };
}

interface Workload {
  records: WorkRecord[];
  distinctIds: number;
  updates: number;
  expectedEvents: number;
  /** Events each product id must publish: one per record that changes its stored state. */
  expectedById: Map<string, number>;
}

/**
 * Distinct products plus ~10% updates of earlier ones, timestamps 1 ms apart and ending now, so an
 * update is always later than what it updates. Expected events are counted by replaying the API's
 * rule (apply when not older and different, availability time included) rather than assumed.
 */
function generateWorkload(count: number, tag: string, partitions: number): Workload {
  const random = createRandom(0x5eed);
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    replicas: [0],
    isr: [0],
    partitionErrorCode: 0,
  }));
  const start = Date.now() - count;
  const latest = new Map<string, SeedProduct>();
  const ids: string[] = [];
  const stored = new Map<string, { state: string; timestamp: number }>();
  const expectedById = new Map<string, number>();
  const records: WorkRecord[] = [];
  let updates = 0;
  for (let index = 0; index < count; index++) {
    const earlier = ids.length > 0 && random() < UPDATE_SHARE ? ids[Math.floor(random() * ids.length)] : undefined;
    const before = earlier === undefined ? undefined : latest.get(earlier);
    let product: SeedProduct;
    if (before) {
      product = updateOf(before, random);
      updates++;
    } else {
      product = generateProduct(ids.length, { idPrefix: `bench-${tag}`, random });
      ids.push(product.productId);
    }
    latest.set(product.productId, product);
    const timestamp = start + index;
    const state = storedState(product, timestamp);
    const previous = stored.get(product.productId);
    if (!previous || (previous.timestamp <= timestamp && previous.state !== state)) {
      stored.set(product.productId, { state, timestamp });
      expectedById.set(product.productId, (expectedById.get(product.productId) ?? 0) + 1);
    }
    const value = JSON.stringify(product);
    const partition = partitioner({ topic: "", partitionMetadata, message: { key: product.productId, value } });
    records.push({ product, value, timestamp, partition });
  }
  let expectedEvents = 0;
  for (const n of expectedById.values()) expectedEvents += n;
  return { records, distinctIds: ids.length, updates, expectedEvents, expectedById };
}

/** The columns the upsert compares, as the database would store them (NUMERIC(15,4) for the price). */
function storedState(product: SeedProduct, timestamp: number): string {
  const { productName, productDescription, price, currency, stockQuantity, category } = product;
  return JSON.stringify([
    productName,
    productDescription,
    price.toFixed(4),
    currency,
    stockQuantity,
    timestamp,
    category,
  ]);
}

function toMessage(record: WorkRecord): Message {
  return { key: record.product.productId, value: record.value, timestamp: String(record.timestamp) };
}

/** Prints `line()` to stderr every second until the returned function is called. */
function everySecond(line: () => string): () => void {
  const timer = setInterval(() => log(line()), 1000);
  return () => clearInterval(timer);
}

/** Counts done over time, for the "n/s" of progress lines. */
function rateMeter() {
  let last = { at: performance.now(), done: 0 };
  return (done: number): number => {
    const now = performance.now();
    const rate = ((done - last.done) * 1000) / Math.max(1, now - last.at);
    last = { at: now, done };
    return Math.round(rate);
  };
}

async function preloadInput(producer: Producer, topic: string, records: WorkRecord[]): Promise<RateResult> {
  let sent = 0;
  const meter = rateMeter();
  const stop = everySecond(() => `[preload] ${sent}/${records.length} sent (${meter(sent)}/s)`);
  const cpu = await openCpuWindow();
  const started = performance.now();
  try {
    for (let index = 0; index < records.length; index += PRODUCE_BATCH) {
      const batch = records.slice(index, index + PRODUCE_BATCH);
      await producer.send({ topic, acks: -1, messages: batch.map(toMessage) });
      sent += batch.length;
    }
  } finally {
    stop();
  }
  return { ...rate(records.length, (performance.now() - started) / 1000), cpu: await cpu() };
}

function rate(messages: number, seconds: number): RateResult {
  return { messages, seconds, perSecond: seconds > 0 ? messages / seconds : 0 };
}

/** Resolves with performance.now() once `count()` reaches `total`; progress to stderr meanwhile. */
async function untilCount(
  label: string,
  count: () => number,
  total: number,
  failed: Promise<never> = new Promise(() => {}),
): Promise<number> {
  const meter = rateMeter();
  const stop = everySecond(() => `[${label}] ${count()}/${total} (${meter(count())}/s)`);
  let lastCount = -1;
  let lastChange = performance.now();
  try {
    for (;;) {
      const now = performance.now();
      const n = count();
      if (n >= total) return now;
      if (n !== lastCount) {
        lastCount = n;
        lastChange = now;
      } else if (now - lastChange > IDLE_TIMEOUT_MS) {
        throw new Error(`${label}: stuck at ${n}/${total} for ${IDLE_TIMEOUT_MS} ms`);
      }
      await Promise.race([delay(5), failed]);
    }
  } finally {
    stop();
  }
}

/** A consumer on a fresh group that counts records; resolves once it has joined. */
async function countingConsumer(
  kafka: Kafka,
  topic: string,
  group: string,
  partitionsConcurrently: number,
  onBatch?: (messages: readonly { key: Buffer | null; value: Buffer | null; timestamp: string }[]) => Promise<void>,
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

/** Raw kafkajs consume of the preloaded topic by a fresh group: no work per record. */
async function measureConsume(kafka: Kafka, topic: string, total: number, settings: Settings): Promise<RateResult> {
  const cpu = await openCpuWindow();
  const consumer = await countingConsumer(
    kafka,
    topic,
    `bench-ceiling-consume-${randomSuffix()}`,
    settings.partitionsConcurrently,
  );
  try {
    const end = await untilCount("kafka consume", consumer.count, total, consumer.failed);
    return { ...rate(total, (end - consumer.joinedAt()) / 1000), cpu: await cpu() };
  } finally {
    await consumer.stop();
  }
}

/**
 * The pipeline's Kafka legs with nothing between them: a fresh group reads the preloaded topic and
 * forwards each batch (acks=-1) to a scratch topic, where another consumer counts the records. The
 * forwarding producer is not idempotent because partitions forward concurrently (kafkajs keeps one
 * sequence per partition; a plain acks=-1 producer has the same request cost).
 */
async function measurePipe(
  kafka: Kafka,
  input: string,
  scratch: string,
  total: number,
  settings: Settings,
): Promise<RateResult> {
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const observer = await countingConsumer(kafka, scratch, `bench-ceiling-observe-${randomSuffix()}`, 1);
  const cpu = await openCpuWindow();
  try {
    const forwarder = await countingConsumer(
      kafka,
      input,
      `bench-ceiling-pipe-${randomSuffix()}`,
      settings.partitionsConcurrently,
      async (messages) => {
        // A fetched batch can hold up to 1 MiB per partition: forward it in produce-sized requests.
        for (let index = 0; index < messages.length; index += PRODUCE_BATCH) {
          await producer.send({
            topic: scratch,
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
      return { ...rate(total, (end - forwarder.joinedAt()) / 1000), cpu: await cpu() };
    } finally {
      await forwarder.stop();
    }
  } finally {
    await observer.stop();
    await producer.disconnect();
  }
}

/**
 * UPSERT_SQL as a named prepared statement, as the product store runs it (parsed and planned once
 * per connection); knex's native form turns its `?` into `$n`.
 */
function upsertStatement(): { name: string; text: string } {
  const bindings = Array.from({ length: 8 }, () => ["x"]);
  return { name: "bench_upsert", text: knexFactory({ client: "pg" }).raw(UPSERT_SQL, bindings).toSQL().toNative().sql };
}

/**
 * The database side alone: UPSERT_SQL (row and outbox event in one statement) on the same records,
 * in the chunks the scheduler would send (API_BATCH_SIZE records of one partition, in offset
 * order), PARTITIONS_CONSUMED_CONCURRENTLY partitions at a time, each chunk split into rounds of
 * distinct ids inside one transaction as the product store does.
 */
async function measurePgCeiling(workload: Workload, settings: Settings): Promise<RateResult & { concurrency: number }> {
  const database = disposableDatabase(BASE_POSTGRES_URL, "products_bench_pg");
  try {
    await ensureDatabaseExists(database.url, silentLogger);
    const knex = createKnex(
      { url: database.url, poolMax: 1, connectTimeoutMs: 10_000, statementTimeoutMs: 120_000 },
      silentLogger,
    );
    try {
      await migrateToLatest(knex);
    } finally {
      await knex.destroy();
    }
    const concurrency = Math.min(settings.partitionsConcurrently, settings.partitions);
    const pool = new pg.Pool({
      connectionString: database.url,
      max: concurrency,
      options: "-c TimeZone=UTC",
      types: pgTypes,
    });
    try {
      // Connections opened before the clock starts, as the API's pool is warm.
      const clients = await Promise.all(Array.from({ length: concurrency }, () => pool.connect()));
      for (const client of clients) client.release();
      const statement = upsertStatement();
      const streams = Array.from({ length: settings.partitions }, (_, partition) =>
        workload.records.filter((record) => record.partition === partition),
      );
      let done = 0;
      const cpu = await openCpuWindow();
      const started = performance.now();
      const progress = untilCount("pg upsert", () => done, workload.records.length);
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let stream = streams[next++]; stream !== undefined; stream = streams[next++]) {
            for (let index = 0; index < stream.length; index += settings.apiBatchSize) {
              const chunk = stream.slice(index, index + settings.apiBatchSize);
              await upsertChunk(pool, statement, chunk);
              done += chunk.length;
            }
          }
        }),
      );
      await progress;
      const seconds = (performance.now() - started) / 1000;
      const { rows } = await pool.query<{ products: number; events: number }>(
        "SELECT (SELECT count(*) FROM products)::int AS products, (SELECT count(*) FROM product_events)::int AS events",
      );
      const [counts] = rows;
      if (counts?.products !== workload.distinctIds || counts.events !== workload.expectedEvents) {
        throw new Error(
          `pg ceiling wrote ${counts?.products} rows and ${counts?.events} events; expected ${workload.distinctIds} and ${workload.expectedEvents}`,
        );
      }
      return { ...rate(workload.records.length, seconds), cpu: await cpu(), concurrency };
    } finally {
      await pool.end();
    }
  } finally {
    await database.drop();
  }
}

async function upsertChunk(
  pool: pg.Pool,
  statement: { name: string; text: string },
  chunk: WorkRecord[],
): Promise<void> {
  const rounds = splitIntoRounds(chunk);
  const [only] = rounds;
  if (only && rounds.length === 1) {
    await pool.query({ ...statement, values: upsertBindings(only) });
    return;
  }
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    for (const round of rounds) await client.query({ ...statement, values: upsertBindings(round) });
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** As the product store does: an id at most once per statement, order per id kept, rounds sorted by id. */
function splitIntoRounds(records: WorkRecord[]): WorkRecord[][] {
  const rounds: WorkRecord[][] = [];
  const seen = new Map<string, number>();
  for (const record of records) {
    const index = seen.get(record.product.productId) ?? 0;
    seen.set(record.product.productId, index + 1);
    const round = rounds[index] ?? [];
    round.push(record);
    rounds[index] = round;
  }
  for (const round of rounds) {
    round.sort((a, b) =>
      a.product.productId < b.product.productId ? -1 : a.product.productId > b.product.productId ? 1 : 0,
    );
  }
  return rounds;
}

function upsertBindings(records: WorkRecord[]): (string | number)[][] {
  return [
    records.map((r) => r.product.productId),
    records.map((r) => r.product.productName),
    records.map((r) => r.product.productDescription),
    records.map((r) => priceText(r.product.price)),
    records.map((r) => r.product.currency),
    records.map((r) => r.product.stockQuantity),
    records.map((r) => new Date(r.timestamp).toISOString()),
    records.map((r) => r.product.category),
  ];
}

interface SeenEvent {
  count: number;
  /** ProductPersisted.persisted_at (the writing transaction's start), for ids the latency phases sent. */
  persistedMs: number | undefined;
  /** Record timestamp of the latest event for the id (set by the relay's producer). */
  eventMs: number;
  /** When this bench's consumer received it. */
  seenMs: number;
}

type EventObserver = Awaited<ReturnType<typeof observeEvents>>;

/**
 * Reads the persisted topic from the start with a fresh group, for the whole run, keeping per
 * product id how many events arrived and when. Keys are enough to count; only the latency phases'
 * events (ids starting with `decodePrefix`) are decoded, for the time their row was written.
 */
async function observeEvents(kafka: Kafka, topic: string, decodePrefix: string) {
  const byId = new Map<string, SeenEvent>();
  let total = 0;
  const consumer: Consumer = kafka.consumer({
    groupId: `bench-observer-${randomSuffix()}`,
    maxWaitTimeInMs: 50,
    allowAutoTopicCreation: false,
  });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 16,
    eachBatch: async ({ batch }) => {
      const seenMs = Date.now();
      for (const message of batch.messages) {
        const id = message.key?.toString("utf8") ?? "";
        const entry = byId.get(id);
        const eventMs = Number(message.timestamp);
        let persistedMs: number | undefined;
        if (id.startsWith(decodePrefix) && message.value) {
          const { persistedAt } = fromBinary(ProductPersistedSchema, message.value);
          persistedMs = persistedAt ? timestampMs(persistedAt) : undefined;
        }
        if (entry) {
          entry.count++;
          entry.eventMs = eventMs;
          entry.seenMs = seenMs;
          entry.persistedMs = persistedMs;
        } else {
          byId.set(id, { count: 1, eventMs, seenMs, persistedMs });
        }
      }
      total += batch.messages.length;
    },
  });
  await joined;
  return {
    byId,
    total: () => total,
    /** Expected events not seen (yet) among `ids`. */
    missing(expected: ReadonlyMap<string, number>, ids: Iterable<string> = expected.keys()): number {
      let missing = 0;
      for (const id of ids) missing += Math.max(0, (expected.get(id) ?? 0) - (byId.get(id)?.count ?? 0));
      return missing;
    },
    stop: () => consumer.disconnect(),
  };
}

interface Pipeline {
  mode: PipelineMode;
  /** Epoch ms at which the scheduler joined its consumer group, from its log. */
  joined: Promise<number>;
  /** Rejects if a service dies before stop(). */
  failed: Promise<never>;
  /** Processes whose CPU is the pipeline's (this one, in-process). */
  pids: { api: number; scheduler: number; relay?: number };
  warnings: () => number;
  /** The services' Prometheus metrics, as text. */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Log lines of the services, parsed: the scheduler's "joined the consumer group" starts the clock;
 * warnings and errors are echoed to stderr and counted (a healthy run has none).
 */
function createLogSink(service: string, onJoined: (epochMs: number) => void) {
  let warnings = 0;
  return {
    warnings: () => warnings,
    line(text: string) {
      let entry: { level?: string; msg?: string; time?: string } | undefined;
      try {
        entry = JSON.parse(text) as typeof entry;
      } catch {
        process.stderr.write(`[${service}] ${text}\n`);
        return;
      }
      if (entry?.msg === "joined the consumer group") onJoined(Date.parse(entry.time ?? "") || Date.now());
      if (entry?.level === "warn" || entry?.level === "error" || entry?.level === "fatal") {
        warnings++;
        if (warnings <= 20) process.stderr.write(`[${service}] ${text.slice(0, 2000)}\n`);
      }
    },
  };
}

async function startPipeline(
  options: BenchOptions,
  settings: Settings,
  topics: { input: string; persisted: string; errors: string },
  databaseUrl: string,
  tag: string,
): Promise<Pipeline> {
  let onJoined: (epochMs: number) => void = () => {};
  const joined = new Promise<number>((resolve) => {
    onJoined = resolve;
  });
  const apiLog = createLogSink("api", () => {});
  const schedulerLog = createLogSink("scheduler", (ms) => onJoined(ms));
  const shared = {
    ...process.env,
    KAFKA_BROKER_URL: settings.kafka.brokers.join(","),
    TOPIC_NAME: topics.input,
    TRANSFORMED_TOPIC: topics.persisted,
    ERROR_TOPIC_NAME: topics.errors,
    KAFKA_PARTITIONS: String(settings.partitions),
  };
  const apiEnv = {
    ...shared,
    HOST: "127.0.0.1",
    DATABASE_URL: databaseUrl,
    OUTBOX_RELAY: "true",
    LOG_LEVEL: "warn",
    SHUTDOWN_TIMEOUT_MS: "5000",
  };
  const schedulerEnv = {
    ...shared,
    KAFKA_GROUP_ID: `bench-scheduler-${tag}`,
    METRICS_PORT: "0",
    // info: the group join is logged at info; per-record logs are debug.
    LOG_LEVEL: "info",
    SHUTDOWN_TIMEOUT_MS: "10000",
  };

  if (options.pipeline === "inproc") {
    const sinkLogger = (service: string, level: string, sink: ReturnType<typeof createLogSink>): Logger =>
      pino(
        {
          level,
          base: { service },
          timestamp: pino.stdTimeFunctions.isoTime,
          formatters: { level: (label) => ({ level: label }) },
        },
        { write: (text: string) => sink.line(text.trimEnd()) },
      );
    const api = await createApi(loadApiConfig({ ...apiEnv, PORT: "0" }), sinkLogger("api", "warn", apiLog)).start();
    const scheduler = createScheduler(
      loadSchedulerConfig({ ...schedulerEnv, API_URL: api.url }),
      sinkLogger("scheduler", "info", schedulerLog),
    );
    try {
      await scheduler.start();
    } catch (error) {
      await api.stop();
      throw error;
    }
    return {
      mode: "inproc",
      joined,
      failed: new Promise<never>(() => {}),
      pids: { api: process.pid, scheduler: process.pid },
      warnings: () => apiLog.warnings() + schedulerLog.warnings(),
      metrics: async () => `${await api.metrics.registry.metrics()}\n${await scheduler.metrics.registry.metrics()}`,
      async stop() {
        await scheduler.stop();
        await api.stop();
      },
    };
  }

  const separate = options.relay === "separate";
  const startApi = async (sink: ReturnType<typeof createLogSink>, relay: boolean) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { ...apiEnv, PORT: String(port), OUTBOX_RELAY: String(relay) };
    // The flags `npm run api` starts the API with, then any from --node-args.
    const service = spawnService("api/src/main.ts", env, ["--max-semi-space-size=32", ...options.nodeArgs], sink);
    try {
      await Promise.race([waitUntilReady(url), service.failed]);
    } catch (error) {
      await service.stop();
      throw error;
    }
    return { ...service, url };
  };
  const api = await startApi(apiLog, !separate);
  const apiUrl = api.url;
  let relay: Awaited<ReturnType<typeof startApi>> | undefined;
  try {
    if (separate)
      relay = await startApi(
        createLogSink("relay", () => {}),
        true,
      );
  } catch (error) {
    await api.stop();
    throw error;
  }
  const metricsPort = await freePort();
  const scheduler = spawnService(
    "scheduler/src/main.ts",
    { ...schedulerEnv, API_URL: apiUrl, METRICS_PORT: String(metricsPort), METRICS_HOST: "127.0.0.1" },
    options.nodeArgs,
    schedulerLog,
  );
  const text = (url: string) => fetch(url).then((res) => res.text());
  return {
    mode: "child",
    joined,
    failed: Promise.race([api.failed, scheduler.failed, ...(relay ? [relay.failed] : [])]),
    pids: { api: api.pid, scheduler: scheduler.pid, ...(relay ? { relay: relay.pid } : {}) },
    warnings: () => apiLog.warnings() + schedulerLog.warnings(),
    metrics: async () =>
      [
        await text(`${apiUrl}/metrics`),
        await text(`http://127.0.0.1:${metricsPort}/metrics`),
        relay ? await text(`${relay.url}/metrics`) : "",
      ].join("\n"),
    async stop() {
      await scheduler.stop();
      await api.stop();
      await relay?.stop();
    },
  };
}

/** `node --import tsx <entry>` with its stdout (JSON logs) parsed by `sink`. */
function spawnService(
  entry: string,
  env: Record<string, string | undefined>,
  nodeArgs: string[],
  sink: ReturnType<typeof createLogSink>,
) {
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, "--import", "tsx", entry], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (child.stdout) createInterface({ input: child.stdout }).on("line", (line) => sink.line(line));
  let stopping = false;
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  const failed = exited.then(([code, signal]) => {
    if (!stopping) throw new Error(`${entry} exited (code ${code}, signal ${signal})`);
    return new Promise<never>(() => {});
  });
  failed.catch(() => {});
  return {
    pid: child.pid ?? 0,
    failed,
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** What the services' metrics say about the scheduler's calls to the API over a window. */
interface CallStats {
  calls: number;
  /** Records per BatchCreateProducts call. */
  recordsPerCall: number;
  /** Mean call time seen by the scheduler, and by the API's handler (the difference is transport and encoding). */
  schedulerCallMs: number;
  apiHandlerMs: number;
  /**
   * Share of the partition workers' time spent waiting on calls: near 1 means the API (or the
   * database behind it) is the limit, low means time goes to fetching, committing or the CPU queue.
   */
  callShare: number;
  eventsPublished: number;
}

/** Sums the samples of a metric whose labels contain every `match` fragment. */
function metricSum(text: string, name: string, ...match: string[]): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) continue;
    if (match.every((fragment) => line.includes(fragment))) sum += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
  }
  return sum;
}

async function openCallWindow(pipeline: Pipeline, partitions: number): Promise<() => Promise<CallStats | undefined>> {
  const read = async () => {
    const text = await pipeline.metrics().catch(() => "");
    return {
      at: performance.now(),
      calls: metricSum(text, "scheduler_api_call_duration_seconds_count", 'status="ok"'),
      callSeconds: metricSum(text, "scheduler_api_call_duration_seconds_sum", 'status="ok"'),
      records: metricSum(text, "scheduler_records_total", 'outcome="persisted"'),
      handlerCalls: metricSum(text, "api_request_duration_seconds_count", "BatchCreateProducts", 'status="ok"'),
      handlerSeconds: metricSum(text, "api_request_duration_seconds_sum", "BatchCreateProducts", 'status="ok"'),
      events: metricSum(text, "api_events_published_total"),
    };
  };
  const start = await read();
  return async () => {
    const end = await read();
    const calls = end.calls - start.calls;
    if (calls <= 0) return undefined;
    const handlerCalls = end.handlerCalls - start.handlerCalls;
    return {
      calls,
      recordsPerCall: (end.records - start.records) / calls,
      schedulerCallMs: ((end.callSeconds - start.callSeconds) * 1000) / calls,
      apiHandlerMs: handlerCalls > 0 ? ((end.handlerSeconds - start.handlerSeconds) * 1000) / handlerCalls : 0,
      callShare: ((end.callSeconds - start.callSeconds) * 1000) / (partitions * (end.at - start.at)),
      eventsPublished: end.events - start.events,
    };
  };
}

interface EndToEndResult extends RateResult {
  /** Scheduler process start → group joined (not part of the measured time). */
  startupS: number;
  /** When the last row was written, from the clock start (the relay's tail is the rest). */
  rowsDoneS: number;
  lost: number;
  duplicates: number;
  rows: number;
  cpu: CpuUse | undefined;
  calls: CallStats | undefined;
}

async function measureEndToEnd(
  settings: Settings,
  pipeline: Pipeline,
  observer: EventObserver,
  databaseUrl: string,
  workload: Workload,
  expected: ReadonlyMap<string, number>,
): Promise<EndToEndResult> {
  const spawned = Date.now();
  const cpu = await openCpuWindow(pipeline.pids);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const startMs = await Promise.race([pipeline.joined, pipeline.failed]);
    const calls = await openCallWindow(pipeline, Math.min(settings.partitions, settings.partitionsConcurrently));
    log(`[e2e] scheduler joined its group ${((startMs - spawned) / 1000).toFixed(1)} s after start; clock started`);
    const target = workload.expectedEvents;
    let seen = 0;
    let missing = target;
    const meter = rateMeter();
    const stop = everySecond(
      () => `[e2e] ${Math.round((Date.now() - startMs) / 1000)}s events ${seen}/${target} (${meter(seen)}/s)`,
    );
    let lastSeen = -1;
    let lastChange = Date.now();
    try {
      for (;;) {
        seen = observer.total();
        if (seen >= target) {
          missing = observer.missing(expected);
          if (missing === 0) break;
        }
        if (seen !== lastSeen) {
          lastSeen = seen;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > IDLE_TIMEOUT_MS) {
          missing = observer.missing(expected);
          log(`[e2e] no new event for ${IDLE_TIMEOUT_MS} ms; ${missing} expected events missing`);
          break;
        }
        await Promise.race([delay(5), pipeline.failed]);
      }
    } finally {
      stop();
    }
    let rows = await countRows(db);
    while (rows < workload.distinctIds && missing === 0) {
      // Events follow their rows' commit, so this is a check rather than a wait.
      await delay(10);
      rows = await countRows(db);
    }
    const endMs = Date.now();
    const lastRow = await db.query<{ ms: string | null }>(
      "SELECT (extract(epoch FROM max(updated_at)) * 1000)::int8::text AS ms FROM products",
    );
    let duplicates = 0;
    for (const [id, n] of expected) duplicates += Math.max(0, (observer.byId.get(id)?.count ?? 0) - n);
    const seconds = (endMs - startMs) / 1000;
    return {
      ...rate(target - missing, seconds),
      startupS: (startMs - spawned) / 1000,
      rowsDoneS: (Number(lastRow.rows[0]?.ms ?? endMs) - startMs) / 1000,
      lost: missing,
      duplicates,
      rows,
      cpu: await cpu(),
      calls: await calls(),
    };
  } finally {
    await db.end();
  }
}

async function countRows(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM products");
  return rows[0]?.n ?? 0;
}

/**
 * Open-loop load: records are due at fixed times whatever the pipeline does, and carry their due
 * time as record timestamp, so a stall anywhere (this process included) shows up as latency
 * instead of slowing the load (no coordinated omission). Records that fall due while a request is
 * in flight go together in the next one.
 */
async function measureLatency(
  producer: Producer,
  topic: string,
  observer: EventObserver,
  pipeline: Pipeline,
  expected: Map<string, number>,
  load: { rate: number; durationS: number; idPrefix: string },
): Promise<LatencyResult> {
  const total = load.rate * load.durationS;
  const random = createRandom(load.rate);
  const dueMs = new Map<string, number>();
  const label = `latency ${load.rate}/s`;
  let sent = 0;
  let queued = 0;
  const cpu = await openCpuWindow(pipeline.pids);
  const meter = rateMeter();
  const stop = everySecond(
    () =>
      `[${label}] sent ${sent}/${total} (${meter(sent)}/s), events ${dueMs.size - observer.missing(expected, dueMs.keys())}`,
  );
  const startMs = Date.now() + 20;
  try {
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - startMs) * load.rate) / 1000) + 1);
      const messages: Message[] = [];
      for (; queued < due; queued++) {
        const product = generateProduct(queued, { idPrefix: load.idPrefix, random });
        const timestamp = startMs + Math.floor((queued * 1000) / load.rate);
        dueMs.set(product.productId, timestamp);
        expected.set(product.productId, 1);
        messages.push({ key: product.productId, value: JSON.stringify(product), timestamp: String(timestamp) });
      }
      if (messages.length === 0) {
        await delay(1);
        continue;
      }
      await Promise.race([producer.send({ topic, acks: -1, messages }), pipeline.failed]);
      sent += messages.length;
    }
    const sendSeconds = (Date.now() - startMs) / 1000;
    let lastMissing = -1;
    let lastChange = Date.now();
    for (;;) {
      const missing = observer.missing(expected, dueMs.keys());
      if (missing === 0) break;
      if (missing !== lastMissing) {
        lastMissing = missing;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > IDLE_TIMEOUT_MS) {
        log(`[${label}] no new event for ${IDLE_TIMEOUT_MS} ms; ${missing} missing`);
        break;
      }
      await Promise.race([delay(20), pipeline.failed]);
    }
    const latencies: number[] = [];
    const seenLatencies: number[] = [];
    const toWrite: number[] = [];
    const writeToEvent: number[] = [];
    for (const [id, due] of dueMs) {
      const event = observer.byId.get(id);
      if (!event) continue;
      latencies.push(event.eventMs - due);
      seenLatencies.push(event.seenMs - due);
      if (event.persistedMs !== undefined) {
        toWrite.push(event.persistedMs - due);
        writeToEvent.push(event.eventMs - event.persistedMs);
      }
    }
    const sorted = Float64Array.from(latencies).sort();
    const seenSorted = Float64Array.from(seenLatencies).sort();
    const toWriteSorted = Float64Array.from(toWrite).sort();
    const writeToEventSorted = Float64Array.from(writeToEvent).sort();
    return {
      ratePerS: load.rate,
      durationS: load.durationS,
      sent,
      sentPerS: sent / sendSeconds,
      seen: sorted.length,
      lost: observer.missing(expected, dueMs.keys()),
      p50Ms: percentile(sorted, 0.5),
      p90Ms: percentile(sorted, 0.9),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted.at(-1) ?? 0,
      seenP50Ms: percentile(seenSorted, 0.5),
      seenP99Ms: percentile(seenSorted, 0.99),
      toWriteP50Ms: percentile(toWriteSorted, 0.5),
      toWriteP99Ms: percentile(toWriteSorted, 0.99),
      writeToEventP50Ms: percentile(writeToEventSorted, 0.5),
      writeToEventP99Ms: percentile(writeToEventSorted, 0.99),
      cpu: await cpu(),
    };
  } finally {
    stop();
  }
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

interface FinalChecks {
  deadLettered: number;
  rows: number;
  expectedRows: number;
  lost: number;
  duplicates: number;
  /** Warnings and errors the services logged. */
  serviceWarnings: number;
}

async function finalChecks(
  kafka: Kafka,
  errorsTopic: string,
  databaseUrl: string,
  observer: EventObserver,
  expected: ReadonlyMap<string, number>,
  serviceWarnings: number,
): Promise<FinalChecks> {
  const admin = kafka.admin();
  await admin.connect();
  let deadLettered = 0;
  try {
    for (const { high, low } of await admin.fetchTopicOffsets(errorsTopic)) deadLettered += Number(high) - Number(low);
  } finally {
    await admin.disconnect();
  }
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    let duplicates = 0;
    for (const [id, n] of expected) duplicates += Math.max(0, (observer.byId.get(id)?.count ?? 0) - n);
    return {
      deadLettered,
      rows: await countRows(db),
      expectedRows: expected.size,
      lost: observer.missing(expected),
      duplicates,
      serviceWarnings,
    };
  } finally {
    await db.end();
  }
}

/** CPU seconds over a window, by who spent them. */
interface CpuUse {
  seconds: number;
  bench: number;
  /** In-process mode: the API and the scheduler run in the bench's process and count as bench. */
  api: number;
  scheduler: number;
  /** --relay=separate: the API process that only relays events. */
  relay: number;
  postgres: number;
  kafka: number;
  /** Everything else the machine did (other users of the box, the kernel). */
  others: number;
  machine: number;
}

async function openCpuWindow(
  pids: { api?: number; scheduler?: number; relay?: number } = {},
): Promise<() => Promise<CpuUse | undefined>> {
  const startedAt = performance.now();
  const before = await allProcessesCpu();
  const machineBefore = await machineCpuSeconds();
  return async () => {
    const after = await allProcessesCpu();
    const machineAfter = await machineCpuSeconds();
    if (after.size === 0 || machineBefore === undefined || machineAfter === undefined) return undefined;
    const use: CpuUse = {
      seconds: (performance.now() - startedAt) / 1000,
      bench: 0,
      api: 0,
      scheduler: 0,
      relay: 0,
      postgres: 0,
      kafka: 0,
      others: 0,
      machine: machineAfter - machineBefore,
    };
    for (const [pid, { comm, seconds }] of after) {
      const spent = seconds - (before.get(pid)?.seconds ?? 0);
      if (pid === process.pid) use.bench += spent;
      else if (pid === pids.api) use.api += spent;
      else if (pid === pids.scheduler) use.scheduler += spent;
      else if (pid === pids.relay) use.relay += spent;
      else if (comm === "postgres") use.postgres += spent;
      else if (comm === "java") use.kafka += spent;
    }
    // Whatever the machine did besides, short-lived processes of other users included.
    use.others = Math.max(0, use.machine - use.bench - use.api - use.scheduler - use.relay - use.postgres - use.kafka);
    return use;
  };
}

/** utime + stime of every process, from /proc/<pid>/stat; empty where /proc is not there. */
async function allProcessesCpu(): Promise<Map<number, { comm: string; seconds: number }>> {
  const result = new Map<number, { comm: string; seconds: number }>();
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return result;
  }
  await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry))
      .map(async (entry) => {
        const cpu = await processCpu(entry); // undefined: the process ended meanwhile
        if (cpu) result.set(Number(entry), cpu);
      }),
  );
  return result;
}

interface Report {
  options: BenchOptions;
  settings: Settings;
  loadAtStart: number[];
  loadAtEnd: number[];
  workload: { records: number; distinctIds: number; updates: number; expectedEvents: number };
  preload: RateResult;
  kafkaConsume: RateResult;
  kafkaPipe: RateResult;
  pgCeiling: RateResult & { concurrency: number };
  e2e: EndToEndResult;
  latencies: LatencyResult[];
  final: FinalChecks;
}

async function report(result: Report): Promise<void> {
  const { options, settings, e2e, kafkaPipe, pgCeiling, final } = result;
  const [atRate] = result.latencies;
  const perS = (n: number) => Math.round(n).toString();
  const ratio = (ceiling: number) => (ceiling > 0 ? e2e.perSecond / ceiling : 0).toFixed(2);
  const row = (phase: string, messages: number, seconds: number, perSecond: number, note: string) =>
    `${phase.padEnd(18)}${String(messages).padStart(8)}${seconds.toFixed(2).padStart(9)}${perS(perSecond).padStart(10)}  ${note}`;
  const lines = [
    `pipeline=${options.pipeline} relay=${options.relay} cores=${os.availableParallelism()} partitions=${settings.partitions} ` +
      `concurrency=${settings.partitionsConcurrently} API_BATCH_SIZE=${settings.apiBatchSize} ` +
      `OUTBOX_BATCH_SIZE=${settings.outboxBatchSize} KAFKA_FETCH_MAX_WAIT_MS=${settings.fetchMaxWaitMs} ` +
      `API_PROTOCOL=${settings.apiProtocol} load=${result.loadAtStart.map((l) => l.toFixed(1)).join("/")}`,
    `workload: ${result.workload.records} records = ${result.workload.distinctIds} products + ` +
      `${result.workload.updates} updates; ${result.workload.expectedEvents} events expected`,
    `${"phase".padEnd(18)}${"msgs".padStart(8)}${"s".padStart(9)}${"msgs/s".padStart(10)}`,
    row(
      "preload produce",
      result.preload.messages,
      result.preload.seconds,
      result.preload.perSecond,
      "idempotent, acks=-1, 1000/request",
    ),
    row(
      "kafka consume",
      result.kafkaConsume.messages,
      result.kafkaConsume.seconds,
      result.kafkaConsume.perSecond,
      "fresh group, count only",
    ),
    row(
      "kafka ceiling",
      kafkaPipe.messages,
      kafkaPipe.seconds,
      kafkaPipe.perSecond,
      "consume → produce acks=-1 → consume",
    ),
    row(
      "pg ceiling",
      pgCeiling.messages,
      pgCeiling.seconds,
      pgCeiling.perSecond,
      `prepared UPSERT_SQL, ${settings.apiBatchSize}/statement, ${pgCeiling.concurrency} concurrent`,
    ),
    row(
      "end to end",
      e2e.messages,
      e2e.seconds,
      e2e.perSecond,
      `${ratio(kafkaPipe.perSecond)} of kafka, ${ratio(pgCeiling.perSecond)} of pg; rows done at ${e2e.rowsDoneS.toFixed(2)} s; ` +
        `startup ${e2e.startupS.toFixed(1)} s; lost ${e2e.lost}, duplicates ${e2e.duplicates}`,
    ),
    `${"latency".padEnd(18)}${"sent".padStart(8)}${"p50 ms".padStart(9)}${"p90 ms".padStart(9)}${"p99 ms".padStart(9)}${"max ms".padStart(9)}${"lost".padStart(6)}   (record time → event time; p50/p99 of parts)`,
    ...result.latencies.map(
      (l) =>
        `${`open loop ${l.ratePerS}/s`.padEnd(18)}${String(l.sent).padStart(8)}${l.p50Ms.toFixed(0).padStart(9)}` +
        `${l.p90Ms.toFixed(0).padStart(9)}${l.p99Ms.toFixed(0).padStart(9)}${l.maxMs.toFixed(0).padStart(9)}` +
        `${String(l.lost).padStart(6)}   seen ${l.seenP50Ms.toFixed(0)}/${l.seenP99Ms.toFixed(0)}, ` +
        `→write ${l.toWriteP50Ms.toFixed(0)}/${l.toWriteP99Ms.toFixed(0)}, write→event ${l.writeToEventP50Ms.toFixed(0)}/${l.writeToEventP99Ms.toFixed(0)}; ` +
        `sent at ${perS(l.sentPerS)}/s`,
    ),
    ...callLines(e2e.calls),
    `${"cpu (cores)".padEnd(18)}${["bench", "api", "sched", "relay", "pg", "kafka", "others", "busy", "µs/msg"].map((h) => h.padStart(8)).join("")}` +
      "   (µs/msg: CPU of all but others, per message)",
    ...(
      [
        ["preload produce", result.preload.cpu, result.preload.messages],
        ["kafka consume", result.kafkaConsume.cpu, result.kafkaConsume.messages],
        ["kafka ceiling", kafkaPipe.cpu, kafkaPipe.messages],
        ["pg ceiling", pgCeiling.cpu, pgCeiling.messages],
        ["end to end", e2e.cpu, e2e.messages],
        ...result.latencies.map((l) => [`open loop ${l.ratePerS}/s`, l.cpu, l.sent] as const),
      ] as const
    ).flatMap(([name, cpu, messages]) => {
      if (!cpu) return [];
      const cores = (s: number) => (s / cpu.seconds).toFixed(2).padStart(8);
      const ours = cpu.bench + cpu.api + cpu.scheduler + cpu.relay + cpu.postgres + cpu.kafka;
      return [
        `${name.padEnd(18)}${cores(cpu.bench)}${cores(cpu.api)}${cores(cpu.scheduler)}${cores(cpu.relay)}${cores(cpu.postgres)}` +
          `${cores(cpu.kafka)}${cores(cpu.others)}${cores(cpu.machine)}${((ours * 1e6) / Math.max(1, messages)).toFixed(0).padStart(8)}`,
      ];
    }),
    `checks: rows ${final.rows}/${final.expectedRows}, dead-lettered ${final.deadLettered}, lost ${final.lost}, ` +
      `duplicate events ${final.duplicates}, service warnings ${final.serviceWarnings}`,
  ];

  const finishedAt = new Date();
  const file = path.join(ROOT, "bench", "results", `pipeline-${finishedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  await mkdir(path.dirname(file), { recursive: true });
  const { kafka: _kafka, ...serviceSettings } = settings;
  await writeFile(
    file,
    `${JSON.stringify(
      {
        bench: "pipeline",
        finishedAt: finishedAt.toISOString(),
        machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model, node: process.version },
        ...result,
        settings: { ...serviceSettings, brokers: settings.kafka.brokers },
        ratios: { e2eToKafka: Number(ratio(kafkaPipe.perSecond)), e2eToPg: Number(ratio(pgCeiling.perSecond)) },
      },
      null,
      2,
    )}\n`,
  );
  lines.push(`results: ${path.relative(ROOT, file)}`);
  const lost = final.lost;
  lines.push(
    `bench:pipeline messages=${result.workload.records} e2e_per_s=${perS(e2e.perSecond)} kafka_ceiling_per_s=${perS(kafkaPipe.perSecond)} ` +
      `pg_ceiling_per_s=${perS(pgCeiling.perSecond)} p50_ms=${Math.round(atRate?.p50Ms ?? 0)} ` +
      `p99_ms=${Math.round(atRate?.p99Ms ?? 0)} lost=${lost}`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
  const problems = [
    ...(lost > 0 ? [`${lost} events lost`] : []),
    ...(final.deadLettered > 0 ? [`${final.deadLettered} records dead-lettered`] : []),
    ...(final.rows !== final.expectedRows ? [`${final.rows} rows, expected ${final.expectedRows}`] : []),
  ];
  if (problems.length > 0) {
    log(`FAILED: ${problems.join("; ")}`);
    process.exitCode = 1;
  }
}

function callLines(calls: CallStats | undefined): string[] {
  if (!calls) return [];
  return [
    `scheduler → API (end to end): ${calls.calls} BatchCreateProducts calls, ${calls.recordsPerCall.toFixed(0)} records each, ` +
      `${calls.schedulerCallMs.toFixed(1)} ms per call at the scheduler, ${calls.apiHandlerMs.toFixed(1)} ms in the API handler; ` +
      `calls busy ${(calls.callShare * 100).toFixed(0)}% of the partition workers' time`,
  ];
}

function randomSuffix(): string {
  return randomBytes(4).toString("hex");
}

async function deleteTopics(kafka: Kafka, topics: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics });
  } finally {
    await admin.disconnect();
  }
}

class UsageError extends Error {
  override name = "UsageError";
}

main().then(
  // Explicitly: a client a library keeps open must not hold the report's exit code hostage.
  () => {
    if (!interrupted) process.exit();
  },
  (error: unknown) => {
    if (interrupted) return;
    process.stderr.write(
      `bench:pipeline: ${error instanceof UsageError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
