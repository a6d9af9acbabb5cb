import { fromBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Consumer, Kafka } from "kafkajs";
import { ProductPersistedSchema } from "#gen/products/v1/events_pb.js";

export interface SeenEvent {
  count: number;
  /** ProductPersisted.persisted_at (the writing transaction's start), for ids the latency phases sent. */
  persistedMs: number | undefined;
  /** Record timestamp of the latest event for the id (set by the relay's producer). */
  eventMs: number;
  /** When this bench's consumer received it. */
  seenMs: number;
}

export type EventObserver = Awaited<ReturnType<typeof observeEvents>>;

/**
 * Reads the persisted topic from the start with a fresh group (`tag` names it), for the whole run,
 * keeping per product id how many events arrived and when. Keys are enough to count; only the
 * latency phases' events (ids starting with `decodePrefix`) are decoded, for the time their row
 * was written.
 */
export async function observeEvents(kafka: Kafka, topic: string, decodePrefix: string, tag: string) {
  const byId = new Map<string, SeenEvent>();
  let total = 0;
  const consumer: Consumer = kafka.consumer({
    groupId: `bench-observer-${tag}`,
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
    /** Events seen beyond those expected: each is a write published twice. */
    duplicates(expected: ReadonlyMap<string, number>): number {
      let duplicates = 0;
      for (const [id, n] of expected) duplicates += Math.max(0, (byId.get(id)?.count ?? 0) - n);
      return duplicates;
    },
    stop: () => consumer.disconnect(),
  };
}
