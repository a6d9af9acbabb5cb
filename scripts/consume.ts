/**
 * Prints the records of a topic as JSON lines, protobuf values decoded (kcat shows only bytes).
 *
 *   npm run consume                                        # new events on TRANSFORMED_TOPIC
 *   npm run consume -- --from-beginning --max 10           # the first ten, then exit
 *   npm run consume -- --topic erro-produtos --from-beginning --timeout-ms 5000
 *   npm run consume -- --from-beginning --until-end           # the whole topic as it is now, then exit
 *
 * One line per record: topic, partition, offset, timestamp (ISO 8601), key, headers and value.
 * Headers are UTF-8 text, except Spring's binary dead-letter headers (original partition, offset,
 * timestamp), which are numbers. Values: protobuf (content-type application/x-protobuf) decoded by
 * the message-type header to protobuf JSON; JSON parsed; other UTF-8 text as a string; anything
 * else as {"base64": …}. `valueType` says which.
 *
 * A throwaway consumer group that commits nothing is used unless --group is given (then offsets
 * are committed as usual). Stops after --max records, after --timeout-ms without a record, with
 * --until-end (-e, like kcat -e) once every partition is read up to its end as of the start, or on
 * Ctrl-C. Kafka settings come from the environment as the services read them (platform/kafka.ts).
 * Exit codes: 0 done, 1 Kafka failed, 2 bad flags or configuration.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { parseArgs } from "node:util";
import { type DescMessage, fromBinary, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { Consumer, IHeaders, KafkaMessage } from "kafkajs";
import { destination, pino } from "pino";
import { ProductPersistedSchema, ProductRegistrationSchema } from "#gen/products/v1/events_pb.js";
import { ConfigError, createEnvReader, LOG_LEVELS } from "#platform/env.js";
import { createKafka, type KafkaConfig, readKafkaConfig } from "#platform/kafka.js";
import { DLT_HEADERS } from "../scheduler/src/dead-letter.js";

const USAGE =
  "usage: npm run consume -- [--topic T] [--from-beginning] [--until-end] [--max N] [--timeout-ms MS] [--group G]\n" +
  "  --topic           default TRANSFORMED_TOPIC (produtos-persistidos)\n" +
  "  --from-beginning  start at the earliest offset (a new group otherwise starts at the end)\n" +
  "  -e, --until-end   exit once every partition is read up to its end offset as of the start\n" +
  "  --max N           exit after N records\n" +
  "  --timeout-ms MS   exit after MS milliseconds without a record (counted from joining the group)\n" +
  "  --group G         consume as group G and commit offsets; default: a throwaway group, no commits";

/** The protobuf messages this project puts on its topics, by full name (the message-type header). */
const SCHEMAS = new Map<string, DescMessage>(
  [ProductPersistedSchema, ProductRegistrationSchema].map((schema) => [schema.typeName, schema]),
);
const PROTOBUF_TYPES = new Set(["application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf"]);
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A mistake in the command line or the environment: exit 2 with the reason. */
class UsageError extends Error {
  override name = "UsageError";
}

interface ConsumeOptions {
  topic: string | undefined;
  fromBeginning: boolean;
  untilEnd: boolean;
  max: number | undefined;
  timeoutMs: number | undefined;
  group: string | undefined;
  help: boolean;
}

function readOptions(args: string[]): ConsumeOptions {
  let values: {
    topic?: string;
    "from-beginning"?: boolean;
    "until-end"?: boolean;
    max?: string;
    "timeout-ms"?: string;
    group?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        topic: { type: "string" },
        "from-beginning": { type: "boolean" },
        "until-end": { type: "boolean", short: "e" },
        max: { type: "string" },
        "timeout-ms": { type: "string" },
        group: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const positive = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || !Number.isSafeInteger(n)) {
      throw new UsageError(`--${flag}=${value}: expected a positive integer`);
    }
    return n;
  };
  if (values.group !== undefined && values.group.trim() === "") throw new UsageError("--group: must not be empty");
  return {
    topic: values.topic,
    fromBeginning: values["from-beginning"] === true,
    untilEnd: values["until-end"] === true,
    max: positive("max", values.max),
    timeoutMs: positive("timeout-ms", values["timeout-ms"]),
    group: values.group,
    help: values.help === true,
  };
}

function readConfig(topicFlag: string | undefined) {
  // --topic stands in for TRANSFORMED_TOPIC, so it is checked by the same rule.
  const env = topicFlag === undefined ? process.env : { ...process.env, TRANSFORMED_TOPIC: topicFlag };
  const read = createEnvReader(env);
  const kafka: KafkaConfig = readKafkaConfig(read, { clientId: "product-consume" });
  const logLevel = read.oneOf("LOG_LEVEL", "warn", LOG_LEVELS);
  try {
    read.done();
  } catch (error) {
    if (topicFlag !== undefined && error instanceof ConfigError) {
      throw new ConfigError(error.problems.map((problem) => problem.replace(/^TRANSFORMED_TOPIC=/, "--topic=")));
    }
    throw error;
  }
  return { kafka, logLevel, topic: kafka.topics.persisted };
}

/** The record as one JSON object: what a person (or jq) needs to see. */
function describeRecord(topic: string, partition: number, message: KafkaMessage, inputTopic: string) {
  const headers = decodeHeaders(message.headers);
  return {
    topic,
    partition,
    offset: Number(message.offset),
    timestamp: new Date(Number(message.timestamp)).toISOString(),
    key: message.key === null ? null : bytesToJson(message.key),
    headers,
    ...decodeValue(message, headers, topic === inputTopic),
  };
}

type HeaderJson = string | number | { base64: string };

const BINARY_DLT_HEADERS = new Map<string, (bytes: Buffer) => number | string | undefined>([
  [DLT_HEADERS.originalPartition, (bytes) => (bytes.length === 4 ? bytes.readInt32BE(0) : undefined)],
  [DLT_HEADERS.originalOffset, (bytes) => (bytes.length === 8 ? safeNumber(bytes.readBigInt64BE(0)) : undefined)],
  [DLT_HEADERS.originalTimestamp, (bytes) => (bytes.length === 8 ? safeNumber(bytes.readBigInt64BE(0)) : undefined)],
]);

function safeNumber(value: bigint): number | string {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value.toString();
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, HeaderJson | HeaderJson[]> {
  const decoded: Record<string, HeaderJson | HeaderJson[]> = {};
  for (const [name, raw] of Object.entries(headers ?? {})) {
    if (raw === undefined) continue;
    const one = (value: Buffer | string): HeaderJson => {
      const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value);
      return BINARY_DLT_HEADERS.get(name)?.(bytes) ?? bytesToJson(bytes);
    };
    decoded[name] = Array.isArray(raw) ? raw.map(one) : one(raw);
  }
  return decoded;
}

function bytesToJson(bytes: Buffer): string | { base64: string } {
  try {
    return utf8.decode(bytes);
  } catch {
    return { base64: bytes.toString("base64") };
  }
}

function headerText(headers: Record<string, HeaderJson | HeaderJson[]>, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    const first = Array.isArray(value) ? value[0] : value;
    return typeof first === "string" ? first : undefined;
  }
  return undefined;
}

type DecodedValue = { valueType: string | null; value: JsonValue; valueError?: string };

function decodeValue(
  message: KafkaMessage,
  headers: Record<string, HeaderJson | HeaderJson[]>,
  onInputTopic: boolean,
): DecodedValue {
  const { value } = message;
  if (value === null) return { valueType: null, value: null };
  const contentType = headerText(headers, "content-type")?.split(";")[0]?.trim().toLowerCase();
  if (contentType !== undefined && PROTOBUF_TYPES.has(contentType)) {
    // Registrations on the input topic (and their dead letters) may come without message-type:
    // the scheduler reads every protobuf record there as a ProductRegistration.
    const isRegistration = onInputTopic || headers[DLT_HEADERS.originalTopic] !== undefined;
    const typeName =
      headerText(headers, "message-type") ?? (isRegistration ? ProductRegistrationSchema.typeName : undefined);
    const schema = typeName === undefined ? undefined : SCHEMAS.get(typeName);
    if (schema === undefined) {
      return {
        valueType: "base64",
        value: { base64: value.toString("base64") },
        valueError: `no known protobuf message-type (${typeName ?? "header missing"})`,
      };
    }
    try {
      return {
        valueType: schema.typeName,
        value: toJson(schema, fromBinary(schema, value), { alwaysEmitImplicit: true }),
      };
    } catch (error) {
      return {
        valueType: "base64",
        value: { base64: value.toString("base64") },
        valueError: `not a ${schema.typeName}: ${(error as Error).message}`,
      };
    }
  }
  const text = bytesToJson(value);
  if (typeof text !== "string") return { valueType: "base64", value: text };
  if (contentType === undefined || JSON_TYPE.test(contentType)) {
    try {
      return { valueType: "json", value: JSON.parse(text) as JsonValue };
    } catch {
      // Not JSON after all: shown as text below.
    }
  }
  return { valueType: "text", value: text };
}

interface PartitionEnd {
  /** The end offset (high watermark) as of the start: the first offset not to read. */
  end: bigint;
  /** The next offset to read. */
  next: bigint;
}

/**
 * Where each partition starts and ends for --until-end: it starts at the group's committed offset,
 * else at the earliest (--from-beginning) or latest offset, as the consumer will.
 */
async function partitionEnds(
  admin: ReturnType<ReturnType<typeof createKafka>["admin"]>,
  topic: string,
  options: ConsumeOptions,
): Promise<Map<number, PartitionEnd>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  const committed = new Map<number, bigint>();
  if (options.group !== undefined) {
    const [forTopic] = await admin.fetchOffsets({ groupId: options.group, topics: [topic] });
    for (const { partition, offset } of forTopic?.partitions ?? []) {
      if (BigInt(offset) >= 0n) committed.set(partition, BigInt(offset));
    }
  }
  return new Map(
    offsets.map(({ partition, low, high }) => {
      const end = BigInt(high);
      const fallback = options.fromBeginning ? BigInt(low) : end;
      const start = committed.get(partition) ?? fallback;
      return [partition, { end, next: start > BigInt(low) ? start : BigInt(low) }];
    }),
  );
}

function allRead(ends: Map<number, PartitionEnd>): boolean {
  return [...ends.values()].every(({ end, next }) => next >= end);
}

/**
 * Resolves when stdout can take more, so a slow reader (a pipe, a terminal) slows the consumer, or
 * when the tool stops (a reader that went away never drains).
 */
function writeLines(lines: string[], stopped: Promise<unknown>): Promise<unknown> | undefined {
  if (lines.length === 0) return undefined;
  if (process.stdout.write(`${lines.join("\n")}\n`)) return undefined;
  return Promise.race([once(process.stdout, "drain"), stopped]);
}

async function main(args: string[]): Promise<number> {
  const options = readOptions(args);
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const config = readConfig(options.topic);
  // stderr: stdout carries the records.
  const logger = pino(
    {
      level: config.logLevel,
      base: { service: "consume" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination(2),
  );
  const kafka = createKafka(config.kafka, logger);
  const { topic } = config;

  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, PartitionEnd> | undefined;
  try {
    if (!(await admin.listTopics()).includes(topic)) throw new Error(`topic ${JSON.stringify(topic)} does not exist`);
    if (options.untilEnd) ends = await partitionEnds(admin, topic, options);
  } finally {
    await admin.disconnect();
  }
  if (ends !== undefined && allRead(ends)) {
    process.stderr.write(`consume: 0 records from ${topic}; stopped: nothing to read before the end\n`);
    return 0;
  }

  const commits = options.group !== undefined;
  const consumer: Consumer = kafka.consumer({
    groupId: options.group ?? `consume-${randomBytes(6).toString("hex")}`,
    // Short fetch waits: a line appears as soon as its record arrives, and stops are prompt.
    maxWaitTimeInMs: 200,
    allowAutoTopicCreation: false,
  });

  let printed = 0;
  let finish: (reason: string) => void = () => {};
  const finished = new Promise<string>((resolve) => {
    finish = resolve;
  });
  let silence: NodeJS.Timeout | undefined;
  const armSilenceTimer = () => {
    if (options.timeoutMs === undefined) return;
    clearTimeout(silence);
    silence = setTimeout(() => finish(`${options.timeoutMs} ms without a record`), options.timeoutMs);
  };
  consumer.on(consumer.events.GROUP_JOIN, armSilenceTimer);
  const advance = (partition: number, next: bigint) => {
    const end = ends?.get(partition);
    if (ends === undefined || end === undefined) return;
    if (next > end.next) end.next = next;
    if (allRead(ends)) finish("reached the end");
  };
  // Batches of only control records (transactions) never reach eachBatch; kafkajs still reports them.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.batchSize === 0) advance(payload.partition, BigInt(payload.lastOffset) + 1n);
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) finish(`consumer failed: ${payload.error.message}`);
  });
  let signals = 0;
  // The first Ctrl-C leaves the group cleanly; a second one does not wait for that.
  const onSignal = () => {
    if (++signals > 1) process.exit(130);
    finish("interrupted");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    // The reader went away (e.g. `| head`): nothing more to print.
    if (error.code === "EPIPE") finish("stdout closed");
  });

  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: options.fromBeginning });
    await consumer.run({
      autoCommit: commits,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, isRunning, isStale }) => {
        const lines: string[] = [];
        // With --until-end, records written after the start are left for another run.
        const end = ends?.get(batch.partition)?.end;
        let next: bigint | undefined;
        let whole = true;
        for (const message of batch.messages) {
          if (!isRunning() || isStale() || (options.max !== undefined && printed >= options.max)) {
            whole = false;
            break;
          }
          if (end !== undefined && BigInt(message.offset) >= end) break;
          lines.push(JSON.stringify(describeRecord(batch.topic, batch.partition, message, config.kafka.topics.input)));
          printed++;
          resolveOffset(message.offset);
          next = BigInt(message.offset) + 1n;
        }
        if (lines.length > 0) armSilenceTimer();
        await writeLines(lines, finished);
        if (options.max !== undefined && printed >= options.max) finish(`--max ${options.max} reached`);
        // A transaction's batch ends with a control record no handler sees: past it once all is read.
        else if (whole) advance(batch.partition, BigInt(batch.lastOffset()) + 1n);
        else if (next !== undefined) advance(batch.partition, next);
      },
    });
    const reason = await finished;
    process.stderr.write(`consume: ${printed} record${printed === 1 ? "" : "s"} from ${topic}; stopped: ${reason}\n`);
    return reason.startsWith("consumer failed") ? 1 : 0;
  } finally {
    clearTimeout(silence);
    await consumer.disconnect();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError || error instanceof ConfigError) {
      process.stderr.write(`consume: ${error.message}\n${error instanceof UsageError ? `${USAGE}\n` : ""}`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`consume: failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
