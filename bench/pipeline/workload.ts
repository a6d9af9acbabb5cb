import { performance } from "node:perf_hooks";
import { create } from "@bufbuild/protobuf";
import type { Message, Producer } from "kafkajs";
import { SourcePositionSchema } from "#gen/products/v1/product_pb.js";
import { keyPartitioner } from "#platform/key-partitioner.js";
import type { ProductWrite } from "../../api/src/products/product-repository.js";
import { parseRecord } from "../../scheduler/src/message.js";
import { createRandom, generateProduct, type SeedProduct, updateOf } from "../../scripts/seed-messages.js";
import { openCpuWindow } from "./cpu-window.js";
import { everySecond, rateMeter } from "./progress.js";
import { type RateResult, rateResult } from "./rate-result.js";

const UPDATE_SHARE = 0.1;
/** Records per produce request: as `npm run produce` sends them. */
export const PRODUCE_BATCH = 1000;

/** One input record of the workload, with the partition the default partitioner gives its key. */
export interface WorkRecord {
  product: SeedProduct;
  value: string;
  timestamp: number;
  partition: number;
}

export interface Workload {
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
export function generateWorkload(count: number, tag: string, partitions: number): Workload {
  const random = createRandom(0x5eed);
  const partitioner = keyPartitioner();
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

/** The record as produced: keyed by product id, its timestamp the product's availability time. */
export function toMessage(record: WorkRecord): Message {
  return { key: record.product.productId, value: record.value, timestamp: String(record.timestamp) };
}

/** Produces the workload into the input topic, PRODUCE_BATCH records per acks=-1 request. */
export async function preloadInput(producer: Producer, topic: string, records: WorkRecord[]): Promise<RateResult> {
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
  return rateResult(records.length, (performance.now() - started) / 1000, await cpu());
}

/**
 * The workload's records as the scheduler turns them into writes: its own parser's product, and
 * the record's Kafka position (its index as the offset), for benches that write without a broker.
 */
export function productWrites(workload: Workload): ProductWrite[] {
  return workload.records.map((record, offset) => {
    const parsed = parseRecord({ value: Buffer.from(record.value), timestamp: String(record.timestamp) });
    if (!parsed.ok) throw new Error(`workload record ${record.product.productId}: ${parsed.error.message}`);
    const source = create(SourcePositionSchema, {
      topic: "cadastro-produtos",
      partition: record.partition,
      offset: BigInt(offset),
    });
    return { product: parsed.product, source };
  });
}
