/**
 * Sends product registrations to TOPIC_NAME (cadastro-produtos), as the original project's
 * produce_message.py did.
 *
 *   npm run produce                                  # the seed's sample message, byte for byte
 *   npm run produce -- --count 10000                 # 10,000 generated products with distinct ids
 *   npm run produce -- --file products.json          # an array of seed-shaped objects, or one object
 *   npm run produce -- --count 5 --format protobuf   # products.v1.ProductRegistration, binary
 *
 * Kafka settings come from the environment as the services read them (KAFKA_BROKER_URL,
 * TOPIC_NAME, KAFKA_PARTITIONS, SASL/TLS: platform/kafka.ts); the topic is created when missing.
 * Records are keyed by productId and sent in batches by an idempotent producer with acks=-1.
 * Progress goes to stderr, one summary line to stdout. Exit codes: 0 sent, 1 Kafka failed,
 * 2 bad flags, file or configuration, 130 interrupted.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { Message } from "kafkajs";
import { destination, pino } from "pino";
import { ConfigError, createEnvReader, LOG_LEVELS } from "#platform/env.js";
import {
  classifyKafkaError,
  createIdempotentProducer,
  createKafka,
  ensureTopics,
  type KafkaConfig,
  readKafkaConfig,
} from "#platform/kafka.js";
import {
  createRandom,
  generateProduct,
  MESSAGE_FORMATS,
  type MessageFormat,
  PROTOBUF_HEADERS,
  SEED_MESSAGE_JSON,
  SEED_PRODUCT,
  type SeedProduct,
  toProtobufValue,
} from "./seed-messages.js";

const USAGE = "usage: npm run produce -- [--count N] [--file products.json] [--format json|protobuf]";
const MAX_COUNT = 100_000_000;
/** Records per request, and bytes: well under the broker's default message.max.bytes (1 MiB). */
const BATCH_RECORDS = 1000;
const BATCH_BYTES = 512 * 1024;

/** A mistake in the command line, the file or the environment: exit 2 with the reason. */
class UsageError extends Error {
  override name = "UsageError";
}

type Source = { kind: "seed" } | { kind: "count"; count: number } | { kind: "file"; path: string };

interface ProduceOptions {
  source: Source;
  format: MessageFormat;
  help: boolean;
}

function readOptions(args: string[]): ProduceOptions {
  let values: { count?: string; file?: string; format?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        count: { type: "string" },
        file: { type: "string" },
        format: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const format = (values.format ?? "json") as MessageFormat;
  if (!MESSAGE_FORMATS.includes(format)) {
    throw new UsageError(`--format=${values.format}: expected one of ${MESSAGE_FORMATS.join(", ")}`);
  }
  if (values.count !== undefined && values.file !== undefined) {
    throw new UsageError("--count and --file: give one of them, not both");
  }
  const help = values.help === true;
  if (values.file !== undefined) return { source: { kind: "file", path: values.file }, format, help };
  if (values.count !== undefined) {
    const count = Number(values.count);
    if (!/^\d+$/.test(values.count) || count < 1 || count > MAX_COUNT) {
      throw new UsageError(`--count=${values.count}: expected an integer from 1 to ${MAX_COUNT}`);
    }
    return { source: { kind: "count", count }, format, help };
  }
  return { source: { kind: "seed" }, format, help };
}

function readConfig(): { kafka: KafkaConfig; logLevel: (typeof LOG_LEVELS)[number] } {
  const read = createEnvReader(process.env);
  const kafka = readKafkaConfig(read, { clientId: "product-produce" });
  const logLevel = read.oneOf("LOG_LEVEL", "warn", LOG_LEVELS);
  read.done();
  return { kafka, logLevel };
}

/** What to send: how many records, and the records themselves (generated lazily for large counts). */
interface RecordSource {
  total: number;
  records: Iterable<Message>;
}

async function openSource(options: ProduceOptions): Promise<RecordSource> {
  const { source, format } = options;
  const encode = (product: SeedProduct): Message =>
    format === "json"
      ? { key: product.productId, value: JSON.stringify(product) }
      : { key: product.productId, value: toProtobufValue(product), headers: { ...PROTOBUF_HEADERS } };
  switch (source.kind) {
    case "seed": {
      const record =
        format === "json" ? { key: SEED_PRODUCT.productId, value: SEED_MESSAGE_JSON } : encode(SEED_PRODUCT);
      return { total: 1, records: [record] };
    }
    case "count": {
      // A run tag keeps ids distinct across runs too: a second run adds products, it does not update.
      const generator = { idPrefix: `sku-${randomBytes(3).toString("hex")}`, random: createRandom(Date.now()) };
      const records = function* () {
        for (let index = 0; index < source.count; index++) yield encode(generateProduct(index, generator));
      };
      return { total: source.count, records: records() };
    }
    case "file": {
      const records = await readFileRecords(source.path, format);
      return { total: records.length, records };
    }
  }
}

/**
 * A JSON file holding one object or an array of them, in the seed's shape. JSON objects are sent as
 * written (an incomplete one is how to try the dead-letter path); for protobuf every field present
 * must fit ProductRegistration, since a field it cannot carry would be dropped silently.
 */
async function readFileRecords(path: string, format: MessageFormat): Promise<Message[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new UsageError(`--file=${path}: ${(error as Error).message}`);
  }
  const objects = Array.isArray(parsed) ? parsed : [parsed];
  if (objects.length === 0) throw new UsageError(`--file=${path}: the array is empty`);
  return objects.map((object, index) => {
    const where = Array.isArray(parsed) ? `${path}[${index}]` : path;
    if (typeof object !== "object" || object === null || Array.isArray(object)) {
      throw new UsageError(`${where}: expected a JSON object in the seed's shape, e.g. ${SEED_MESSAGE_JSON}`);
    }
    const fields = object as Record<string, unknown>;
    const id = fields.productId;
    const key = typeof id === "string" || (typeof id === "number" && Number.isFinite(id)) ? String(id) : null;
    if (format === "json") return { key, value: JSON.stringify(fields) };
    return { key, value: toProtobufValue(registrationFields(fields, where)), headers: { ...PROTOBUF_HEADERS } };
  });
}

const STRING_FIELDS = ["productId", "productName", "productDescription", "currency", "category"] as const;

function registrationFields(fields: Record<string, unknown>, where: string): Parameters<typeof toProtobufValue>[0] {
  const known = new Set<string>([...STRING_FIELDS, "price", "stockQuantity"]);
  const unknown = Object.keys(fields).filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new UsageError(`${where}: ${unknown.join(", ")}: not a field of products.v1.ProductRegistration`);
  }
  const text = (name: (typeof STRING_FIELDS)[number]): string => {
    const value = fields[name] ?? "";
    if (name === "productId" && typeof value === "number" && Number.isFinite(value)) return String(value);
    if (typeof value !== "string") throw new UsageError(`${where}.${name}: expected a string`);
    return value;
  };
  const price = fields.price ?? "";
  if (!(typeof price === "string" || (typeof price === "number" && Number.isFinite(price)))) {
    throw new UsageError(`${where}.price: expected a number or a decimal string`);
  }
  const stock = fields.stockQuantity ?? 0;
  if (typeof stock !== "number" || !Number.isInteger(stock) || stock < -(2 ** 31) || stock > 2 ** 31 - 1) {
    throw new UsageError(`${where}.stockQuantity: expected a 32-bit integer`);
  }
  return {
    productId: text("productId"),
    productName: text("productName"),
    productDescription: text("productDescription"),
    price,
    currency: text("currency"),
    stockQuantity: stock,
    category: text("category"),
  };
}

function* batches(records: Iterable<Message>): Generator<Message[]> {
  let batch: Message[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = (record.value?.length ?? 0) + (record.key?.length ?? 0) + 64;
    if (batch.length > 0 && (batch.length >= BATCH_RECORDS || bytes + size > BATCH_BYTES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(record);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}

async function main(args: string[]): Promise<number> {
  const options = readOptions(args);
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const config = readConfig();
  const source = await openSource(options);
  // stderr: stdout carries the summary.
  const logger = pino(
    {
      level: config.logLevel,
      base: { service: "produce" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination(2),
  );
  const kafka = createKafka(config.kafka, logger);
  const topic = config.kafka.topics.input;
  await ensureTopics(kafka, [topic], config.kafka.partitions, { replicationFactor: config.kafka.replicationFactor });

  const producer = createIdempotentProducer(kafka);
  let interrupted = false;
  // The first Ctrl-C stops after the request in flight; a second one does not wait for it.
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const started = performance.now();
  let sent = 0;
  let first: { partition: number; offset: string } | undefined;
  const progress =
    source.total > BATCH_RECORDS
      ? setInterval(() => {
          const seconds = (performance.now() - started) / 1000;
          process.stderr.write(`produce: ${sent}/${source.total} sent (${Math.round(sent / seconds)}/s)\n`);
        }, 1000)
      : undefined;
  await producer.connect();
  try {
    for (const messages of batches(source.records)) {
      if (interrupted) break;
      const [metadata] = await producer.send({ topic, acks: -1, messages });
      if (sent === 0 && metadata) first = { partition: metadata.partition, offset: metadata.baseOffset ?? "?" };
      sent += messages.length;
    }
  } finally {
    clearInterval(progress);
    await producer.disconnect();
  }

  const seconds = (performance.now() - started) / 1000;
  const what = `${sent} ${options.format} message${sent === 1 ? "" : "s"}`;
  const where = sent === 1 && first ? ` (partition ${first.partition}, offset ${first.offset})` : "";
  const summary = `produce: sent ${what} to ${topic}${where} in ${seconds.toFixed(2)} s (${Math.round(sent / seconds)}/s)`;
  if (interrupted) {
    process.stdout.write(`${summary}; interrupted, ${source.total - sent} not sent\n`);
    return 130;
  }
  process.stdout.write(`${summary}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError || error instanceof ConfigError) {
      process.stderr.write(`produce: ${error.message}\n${error instanceof UsageError ? `${USAGE}\n` : ""}`);
      process.exitCode = 2;
    } else {
      // Say when retrying cannot help: the broker refuses the records for their size, or the client.
      const why = {
        too_large: " (too large for the broker: send fewer or smaller records)",
        fatal: " (not retriable)",
        retriable: "",
      }[classifyKafkaError(error)];
      process.stderr.write(`produce: failed: ${error instanceof Error ? error.message : String(error)}${why}\n`);
      process.exitCode = 1;
    }
  },
);
