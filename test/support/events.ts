import { setTimeout as delay } from "node:timers/promises";
import { fromBinary } from "@bufbuild/protobuf";
import type { Consumer, Kafka } from "kafkajs";
import pg from "pg";
import { type ProductPersisted, ProductPersistedSchema } from "#gen/products/v1/events_pb.js";
import { runScopedSuffix } from "./env.js";
import { highWatermarks } from "./kafka.js";

/** A ProductPersisted record as a consumer of the persisted topic sees it. */
export interface SeenEvent {
  key: string | undefined;
  /** Header values as strings. */
  headers: Record<string, string | undefined>;
  event: ProductPersisted;
  partition: number;
  offset: bigint;
  /** The record's timestamp, epoch milliseconds. */
  timestamp: number;
}

export interface EventWatcher {
  /** Every event seen so far, in arrival order: offset order within a partition, hence per product id. */
  all(): SeenEvent[];
  /** The events keyed by this product id, in order. */
  of(id: string): SeenEvent[];
  /** Resolves with every event seen once `condition` holds for them; rejects after timeoutMs naming `what`. */
  until(condition: (events: SeenEvent[]) => boolean, what: string, timeoutMs?: number): Promise<SeenEvent[]>;
  /**
   * Resolves once every record now in the topic has been seen, up to its high watermark: every
   * transaction below it decided, its commit marker written. After the outbox is drained
   * (untilOutboxDrained), counts taken then are final: nothing published is still on its way.
   */
  untilCaughtUp(timeoutMs?: number): Promise<SeenEvent[]>;
  stop(): Promise<void>;
}

/**
 * Reads the persisted topic from the beginning with a throwaway group, decoding each record as
 * products.v1.ProductPersisted. A record that does not decode fails every later wait.
 */
export async function watchEvents(kafka: Kafka, topic: string): Promise<EventWatcher> {
  const seen: SeenEvent[] = [];
  const nextOffsets = new Map<number, bigint>();
  const checks = new Set<() => void>();
  let undecodable: Error | undefined;
  const consumer: Consumer = kafka.consumer({ groupId: `test-events-${runScopedSuffix()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        try {
          seen.push({
            key: message.key?.toString(),
            headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, v?.toString()])),
            event: fromBinary(ProductPersistedSchema, message.value ?? new Uint8Array()),
            partition,
            offset: BigInt(message.offset),
            timestamp: Number(message.timestamp),
          });
        } catch (error) {
          undecodable ??= new Error(`${topic} ${partition}:${message.offset} is not a ProductPersisted`, {
            cause: error,
          });
        }
        nextOffsets.set(partition, BigInt(message.offset) + 1n);
        for (const check of checks) check();
      },
    });
  } catch (error) {
    await consumer.disconnect();
    throw error;
  }
  // The relay publishes in transactions: each ends with a control record that no handler sees,
  // so the position after a batch is its last offset, control records included.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const next = BigInt(payload.lastOffset) + 1n;
    if (next > (nextOffsets.get(payload.partition) ?? 0n)) nextOffsets.set(payload.partition, next);
    for (const check of checks) check();
  });

  const waitFor = (condition: () => boolean, what: string, timeoutMs: number) =>
    new Promise<SeenEvent[]>((resolve, reject) => {
      const check = () => {
        if (undecodable) {
          done();
          reject(undecodable);
        } else if (condition()) {
          done();
          resolve([...seen]);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; saw ${seen.length} events on ${topic}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        checks.delete(check);
      };
      checks.add(check);
      check();
    });

  return {
    all: () => [...seen],
    of: (id) => seen.filter((e) => e.key === id),
    until: (condition, what, timeoutMs = 15_000) => waitFor(() => condition(seen), what, timeoutMs),
    async untilCaughtUp(timeoutMs = 15_000) {
      const ends = [...(await highWatermarks(kafka, topic))];
      return waitFor(
        () => ends.every(([partition, high]) => (nextOffsets.get(partition) ?? 0n) >= high),
        `the events of ${topic} up to ${ends.map(([partition, high]) => `${partition}:${high}`).join(",")}`,
        timeoutMs,
      );
    },
    stop: () => consumer.disconnect(),
  };
}

/**
 * Resolves once the API's outbox (product_events) is empty: the relay deletes a row only after the
 * broker acknowledged its event (acks=-1), so every event written so far is then on the topic.
 * Polls, since deletes notify nobody.
 */
export async function untilOutboxDrained(databaseUrl: string, timeoutMs = 15_000): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM product_events");
      const left = rows[0]?.n ?? 0;
      if (left === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for the outbox to drain: ${left} events unpublished`);
      }
      await delay(25);
    }
  } finally {
    await client.end();
  }
}

/**
 * Call once the writes of interest are done (the scheduler committed them): waits until their events
 * are on the topic and seen, and returns every event seen, final for counting.
 */
export async function untilEventsSettled(watcher: EventWatcher, databaseUrl: string): Promise<SeenEvent[]> {
  await untilOutboxDrained(databaseUrl);
  return watcher.untilCaughtUp();
}
