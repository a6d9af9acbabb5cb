import { createRequire } from "node:module";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Message, PartitionerArgs } from "kafkajs";
import { pino } from "pino";
import { ProductPersistedSchema } from "#gen/products/v1/events_pb.js";
import { keyPartitioner } from "#platform/key-partitioner.js";
import { createKnex } from "../../api/src/db/database.js";
import { type KafkaEvent, recordBytes } from "../../api/src/events/kafka-event-publisher.js";
import { chunksOf } from "../../api/src/events/outbox-relay-loop.js";
import { createPgOutboxStore } from "../../api/src/events/pg-outbox-store.js";
import { toEventRecord } from "../../api/src/events/product-persisted.js";
import { createProductRepository } from "../../api/src/products/product-repository.js";
import { generateWorkload, productWrites } from "../pipeline/workload.js";
import { migratedDatabase } from "../shared/migrated-database.js";
import { allProcessesCpu } from "../shared/proc-cpu.js";

/**
 * kafkajs's own encoders, as its producer calls them: the relay's records go through exactly this
 * code. They are not part of kafkajs's public API (its package has no "exports" map); the bench's
 * test runs them, so an upgrade that moves them fails there.
 */
const require = createRequire(import.meta.url);
const produceRequests = require("kafkajs/src/protocol/requests/produce/index.js") as {
  protocol(args: { version: number }): (request: ProduceArgs) => { request: { encode(): Promise<{ buffer: Buffer }> } };
};
const groupMessagesPerPartition = require("kafkajs/src/producer/groupMessagesPerPartition.js") as (args: {
  topic: string;
  partitionMetadata: PartitionerArgs["partitionMetadata"];
  messages: Message[];
  partitioner: (args: PartitionerArgs) => number;
}) => Record<string, Message[]>;

interface ProduceArgs {
  acks: number;
  timeout: number;
  compression: number;
  transactionalId: string;
  producerId: number;
  producerEpoch: number;
  topicData: { topic: string; partitions: { partition: number; firstSequence: number; messages: Message[] }[] }[];
}

/** The newest Produce version kafkajs speaks, the one it uses with any broker since Kafka 2.1. */
const PRODUCE_VERSION = 7;
const TOPIC = "produtos-persistidos";

export interface RelayStagesOptions {
  /** Input records written through the repository; about 90% of them become events. */
  records: number;
  /** Rows per read, as OUTBOX_BATCH_SIZE. */
  batchSize: number;
  /** Bytes of records per produce request, as OUTBOX_BATCH_MAX_BYTES. */
  maxRequestBytes: number;
  partitions: number;
  /**
   * Times each encoding stage runs on every batch, averaged: a garbage collection lands in whichever
   * stage is running, and more runs spread that noise. The read and the delete run once.
   */
  repeat: number;
  /** Batches at the start left out of the figures: V8 compiles the code paths during them. */
  warmupBatches: number;
  databaseServerUrl: string;
  /** Of the disposable database's name; products_bench_relay unless given. */
  databasePrefix?: string;
  onBatch?: (done: number, events: number) => void;
}

/** CPU of this process per event, in µs, for each stage of one relay cycle; pg is all PostgreSQL processes. */
export interface RelayStageCosts {
  read: number;
  /** toEventRecord and the record's size, as the publisher's encode() does. */
  event: number;
  /** Of event: protobuf-es toBinary of the same ProductPersisted messages. */
  protobuf: number;
  grouping: number;
  kafkaEncode: number;
  /** kafkaEncode of the same records without their three headers: what the headers cost. */
  kafkaEncodeWithoutHeaders: number;
  delete: number;
  /** read + event + grouping + kafkaEncode + delete. */
  client: number;
  /** PostgreSQL's CPU (all its processes) over the measured batches, per event; undefined without /proc. */
  pg: number | undefined;
}

export interface RelayStagesResult {
  events: number;
  batches: number;
  /** Produce requests, as the relay splits its batches (chunksOf). */
  requests: number;
  measuredEvents: number;
  bytesPerRecord: number;
  perEvent: RelayStageCosts;
}

/** CPU µs of this process spent in fn (user + system). */
async function cpuOf(fn: () => unknown): Promise<number> {
  const start = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

/** Mean CPU µs of fn over `times` runs. */
async function meanCpuOf(fn: () => unknown, times: number): Promise<number> {
  let total = 0;
  for (let run = 0; run < times; run++) total += await cpuOf(fn);
  return total / times;
}

async function postgresSeconds(): Promise<number | undefined> {
  const all = await allProcessesCpu();
  if (all.size === 0) return undefined;
  let seconds = 0;
  for (const entry of all.values()) if (entry.comm === "postgres") seconds += entry.seconds;
  return seconds;
}

/**
 * The relay's work per event, stage by stage, on the relay's own functions and kafkajs's encoders,
 * without a broker: a fresh database gets the workload through the product repository (rows and
 * outbox events, as the API writes them), then an outbox session reads it back batch by batch as
 * the leader does; each batch is turned into Kafka records, split into produce requests of at most
 * maxRequestBytes as the relay splits it, each grouped by partition and encoded as kafkajs does
 * before it writes the request to the socket; then the batch is deleted.
 * What this leaves out is the rest of a publish: the socket write, the transaction's requests,
 * the broker's answers and the GC of all that, which the pipeline bench's relay column includes.
 */
export async function measureRelayStages(options: RelayStagesOptions): Promise<RelayStagesResult> {
  const logger = pino({ level: "silent" });
  const database = await migratedDatabase(options.databaseServerUrl, options.databasePrefix ?? "products_bench_relay");
  const knex = createKnex(
    { url: database.url, poolMax: 2, connectTimeoutMs: 10_000, statementTimeoutMs: 120_000 },
    logger,
  );
  try {
    const repository = createProductRepository(knex);
    const workload = generateWorkload(options.records, "relay", options.partitions);
    const writes = productWrites(workload);
    for (let index = 0; index < writes.length; index += 500) {
      await repository.upsert(writes.slice(index, index + 500), "outcome");
    }

    const session = await createPgOutboxStore({ databaseUrl: database.url, logger, leaseTimeoutMs: 60_000 }).connect();
    const partitioner = keyPartitioner();
    const partitionMetadata = Array.from({ length: options.partitions }, (_, partitionId) => ({
      partitionId,
      leader: 0,
      replicas: [0],
      isr: [0],
      partitionErrorCode: 0,
    }));
    const encodeRequest = async (grouped: Record<string, Message[]>) => {
      const { request } = produceRequests.protocol({ version: PRODUCE_VERSION })({
        acks: -1,
        timeout: 30_000,
        compression: 0,
        transactionalId: "bench-relay",
        producerId: 1,
        producerEpoch: 0,
        topicData: [
          {
            topic: TOPIC,
            partitions: Object.entries(grouped).map(([partition, messages]) => ({
              partition: Number(partition),
              firstSequence: 0,
              messages,
            })),
          },
        ],
      });
      return (await request.encode()).buffer;
    };

    const spent = {
      read: 0,
      event: 0,
      protobuf: 0,
      grouping: 0,
      kafkaEncode: 0,
      kafkaEncodeWithoutHeaders: 0,
      delete: 0,
    };
    let events = 0;
    let batches = 0;
    let measuredEvents = 0;
    let requestBytes = 0;
    let requestCount = 0;
    // PostgreSQL works only in the reads and deletes: its CPU over the measured batches is theirs.
    let pgAtStart = options.warmupBatches === 0 ? await postgresSeconds() : undefined;
    for (;;) {
      let rows: Awaited<ReturnType<typeof session.readBatch>> = [];
      const read = await cpuOf(async () => {
        rows = await session.readBatch(options.batchSize);
      });
      if (rows.length === 0) break;
      let encoded: KafkaEvent[] = [];
      const event = await meanCpuOf(() => {
        encoded = rows.map((row) => {
          const message = toEventRecord(row);
          return { row, message, bytes: recordBytes(message) };
        });
      }, options.repeat);
      const decoded = encoded.map(({ message }) => fromBinary(ProductPersistedSchema, message.value as Buffer));
      const protobuf = await meanCpuOf(
        () => decoded.map((message) => toBinary(ProductPersistedSchema, message)),
        options.repeat,
      );
      const requests = chunksOf(encoded, options.maxRequestBytes).map((chunk) => chunk.map(({ message }) => message));
      let groups: Record<string, Message[]>[] = [];
      const grouping = await meanCpuOf(() => {
        groups = requests.map((messages) =>
          groupMessagesPerPartition({ topic: TOPIC, partitionMetadata, messages, partitioner }),
        );
      }, options.repeat);
      let bytes = 0;
      const kafkaEncode = await meanCpuOf(async () => {
        bytes = 0;
        for (const grouped of groups) bytes += (await encodeRequest(grouped)).length;
      }, options.repeat);
      const headerless = groups.map((grouped) =>
        Object.fromEntries(
          Object.entries(grouped).map(([partition, list]) => [partition, list.map(({ headers: _, ...rest }) => rest)]),
        ),
      );
      const kafkaEncodeWithoutHeaders = await meanCpuOf(async () => {
        for (const grouped of headerless) await encodeRequest(grouped);
      }, options.repeat);
      const deleted = await cpuOf(() => session.deleteIds(rows.map((row) => row.id)));

      batches++;
      requestCount += requests.length;
      events += rows.length;
      if (batches > options.warmupBatches) {
        measuredEvents += rows.length;
        requestBytes += bytes;
        spent.read += read;
        spent.event += event;
        spent.protobuf += protobuf;
        spent.grouping += grouping;
        spent.kafkaEncode += kafkaEncode;
        spent.kafkaEncodeWithoutHeaders += kafkaEncodeWithoutHeaders;
        spent.delete += deleted;
      }
      if (batches === options.warmupBatches) pgAtStart = await postgresSeconds();
      options.onBatch?.(batches, events);
    }
    const pgAtEnd = await postgresSeconds();
    await session.close();
    if (events !== workload.expectedEvents) {
      throw new Error(`the outbox held ${events} events, the workload expects ${workload.expectedEvents}`);
    }
    if (measuredEvents === 0) {
      throw new Error(`no batch after the ${options.warmupBatches} warm-up batches: raise --records`);
    }
    const per = (us: number) => us / measuredEvents;
    const client = spent.read + spent.event + spent.grouping + spent.kafkaEncode + spent.delete;
    return {
      events,
      batches,
      requests: requestCount,
      measuredEvents,
      bytesPerRecord: requestBytes / measuredEvents,
      perEvent: {
        read: per(spent.read),
        event: per(spent.event),
        protobuf: per(spent.protobuf),
        grouping: per(spent.grouping),
        kafkaEncode: per(spent.kafkaEncode),
        kafkaEncodeWithoutHeaders: per(spent.kafkaEncodeWithoutHeaders),
        delete: per(spent.delete),
        client: per(client),
        pg: pgAtStart === undefined || pgAtEnd === undefined ? undefined : per((pgAtEnd - pgAtStart) * 1e6),
      },
    };
  } finally {
    await knex.destroy();
    await database.drop();
  }
}
