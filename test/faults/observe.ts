import { fromBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Admin, IHeaders, Kafka } from "kafkajs";
import pg from "pg";
import { ProductPersistedSchema } from "#gen/products/v1/events_pb.js";
import { parseDeadLetterHeaders } from "../../scheduler/src/dead-letter.js";
import { readAllRecords } from "../support/kafka.js";
import type { ProgressSample } from "./catch-up.js";
import type { DeadLetter, InputRecord, PublishedEvent, StoredRow } from "./checker.js";
import { MARKER_HEADER } from "./workload.js";

export interface RunTopics {
  input: string;
  persisted: string;
  errors: string;
}

function header(headers: IHeaders | undefined, name: string): string | undefined {
  const raw = headers?.[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined ? undefined : value.toString();
}

/** Everything on the three topics, decoded for the checker. */
export async function readOutcome(kafka: Kafka, topics: RunTopics) {
  const records = await readAllRecords(kafka, [topics.input, topics.persisted, topics.errors], 120_000);
  const input: InputRecord[] = [];
  const events: PublishedEvent[] = [];
  const deadLetters: DeadLetter[] = [];
  for (const { topic, partition, message } of records) {
    const offset = BigInt(message.offset);
    if (topic === topics.input) {
      input.push({
        partition,
        offset,
        timestamp: Number(message.timestamp),
        marker: header(message.headers, MARKER_HEADER),
      });
    } else if (topic === topics.persisted) {
      const decoded = fromBinary(ProductPersistedSchema, message.value ?? new Uint8Array());
      const product = decoded.product;
      events.push({
        partition,
        offset,
        key: message.key?.toString(),
        headerEventId: header(message.headers, "event-id"),
        eventId: decoded.eventId,
        version: Number(decoded.version),
        product: product && {
          id: product.id,
          content: {
            name: product.name,
            description: product.description,
            price: product.pricing?.amount ?? "",
            currency: product.pricing?.currency ?? "",
            quantity: product.availability?.quantity ?? -1,
            category: product.category,
          },
          timestamp: product.availability?.timestamp ? timestampMs(product.availability.timestamp) : -1,
        },
      });
    } else {
      const info = parseDeadLetterHeaders(message.headers);
      deadLetters.push({
        originalTopic: info.originalTopic,
        originalPartition: info.originalPartition,
        originalOffset: info.originalOffset,
        code: info.code,
      });
    }
  }
  return { input, events, deadLetters };
}

/** The product rows at the end, as the checker compares them. */
export async function readRows(databaseUrl: string): Promise<StoredRow[]> {
  return withClient(databaseUrl, async (client) => {
    const { rows } = await client.query<{
      id: string;
      name: string;
      description: string;
      amount: string;
      currency: string;
      quantity: number;
      ts: string;
      category: string;
      version: string;
    }>(
      `SELECT id, name, description, amount::text AS amount, currency, quantity, category, version::text AS version,
              floor(extract(epoch FROM availability_at) * 1000)::text AS ts
         FROM products`,
    );
    return rows.map((row) => ({
      id: row.id,
      content: {
        name: row.name,
        description: row.description,
        price: row.amount,
        currency: row.currency,
        quantity: row.quantity,
        category: row.category,
      },
      timestamp: Number(row.ts),
      version: Number(row.version),
    }));
  });
}

export async function withClient<T>(databaseUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Rows waiting in the outbox. */
export async function outboxCount(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM product_events");
  return rows[0]?.n ?? 0;
}

/** One look at the pipeline's progress; a part that does not answer leaves its fields undefined. */
export interface PipelineSample {
  t: number;
  inputEnd?: number;
  committed?: number;
  eventsEnd?: number;
  outbox?: number;
}

const sum = (values: readonly { high?: string; offset?: string }[], field: "high" | "offset") =>
  values.reduce((total, value) => total + Math.max(0, Number(value[field] ?? 0)), 0);

/**
 * Samples every `intervalMs`: the input's end, what the consumer group committed, the persisted
 * topic's end and the outbox. Both Kafka and PostgreSQL may be down meanwhile: a failed look is
 * kept as a gap, and the admin client made again.
 */
export function startSampler(options: {
  kafka: Kafka;
  topics: RunTopics;
  databaseUrl: string;
  groupId: () => string;
  intervalMs?: number;
}) {
  const samples: PipelineSample[] = [];
  let stopped = false;
  let admin: Admin | undefined;
  let client: pg.Client | undefined;
  const kafkaLook = async (sample: PipelineSample) => {
    try {
      if (!admin) {
        admin = options.kafka.admin();
        await admin.connect();
      }
      const [input, persisted, groups] = await Promise.all([
        admin.fetchTopicOffsets(options.topics.input),
        admin.fetchTopicOffsets(options.topics.persisted),
        admin.fetchOffsets({ groupId: options.groupId(), topics: [options.topics.input] }),
      ]);
      sample.inputEnd = sum(input, "high");
      sample.eventsEnd = sum(persisted, "high");
      sample.committed = sum(groups[0]?.partitions ?? [], "offset");
    } catch {
      const broken = admin;
      admin = undefined;
      await broken?.disconnect().catch(() => {});
    }
  };
  const databaseLook = async (sample: PipelineSample) => {
    try {
      if (!client) {
        client = new pg.Client({ connectionString: options.databaseUrl, connectionTimeoutMillis: 2_000 });
        client.on("error", () => {});
        await client.connect();
      }
      sample.outbox = await outboxCount(client);
    } catch {
      const broken = client;
      client = undefined;
      await broken?.end().catch(() => {});
    }
  };
  const loop = (async () => {
    while (!stopped) {
      const sample: PipelineSample = { t: Date.now() };
      await Promise.all([kafkaLook(sample), databaseLook(sample)]);
      samples.push(sample);
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
    }
  })();
  return {
    samples,
    /** The latest sample in which every field was seen. */
    latest: () => samples.findLast((s) => s.committed !== undefined && s.outbox !== undefined),
    async stop() {
      stopped = true;
      await loop;
      await admin?.disconnect().catch(() => {});
      await client?.end().catch(() => {});
    },
  };
}

/** The sampler's looks as two counters for catchUpSeconds: input records committed, and events published. */
export function progressOf(samples: readonly PipelineSample[]): { input: ProgressSample[]; events: ProgressSample[] } {
  // Work still waiting for the consumer counts what was produced up to 2 s before: what a healthy
  // pipeline has in flight is not a backlog.
  const inputEndAt = (t: number) =>
    samples.findLast((s) => s.t <= t - 2_000 && s.inputEnd !== undefined)?.inputEnd ?? 0;
  return {
    input: samples.map((s) => ({
      t: s.t,
      done: s.committed,
      backlog: s.committed === undefined ? undefined : Math.max(0, inputEndAt(s.t) - s.committed),
    })),
    events: samples.map((s) => ({ t: s.t, done: s.eventsEnd, backlog: s.outbox })),
  };
}
