import type { Kafka, Message, Producer, Transaction } from "kafkajs";
import { createIdempotentProducer, ensureTopics, isProducerFenced } from "#platform/kafka.js";
import type { EncodedEvent, EventPublisher } from "./outbox-relay-loop.js";
import { type OutboxRow, toEventRecord } from "./product-persisted.js";

export interface KafkaEventPublisherOptions {
  kafka: Kafka;
  topic: string;
  /** Of the topic, if this publisher creates it. */
  partitions: number;
  replicationFactor: number;
  /** Shared by every relay of one outbox: a new leader's producer fences the one before it. */
  transactionalId: string;
}

export interface KafkaEvent extends EncodedEvent {
  readonly message: Message;
}

/**
 * Framing of a record in a v2 record batch, at most: length, attributes, timestamp and offset
 * deltas, key and value lengths, header count (varints); and per header its two lengths.
 */
const RECORD_FRAMING_BYTES = 36;
const HEADER_FRAMING_BYTES = 10;

/** An upper bound of the bytes a record takes in a produce request (uncompressed). */
export function recordBytes(message: Message): number {
  const size = (value: string | Buffer | null | undefined) =>
    value === null || value === undefined ? 0 : typeof value === "string" ? Buffer.byteLength(value) : value.length;
  let bytes = RECORD_FRAMING_BYTES + size(message.key) + size(message.value as Buffer | string | null);
  for (const [key, value] of Object.entries(message.headers ?? {})) {
    const values = Array.isArray(value) ? value : [value];
    for (const one of values) bytes += HEADER_FRAMING_BYTES + Buffer.byteLength(key) + size(one);
  }
  return bytes;
}

/**
 * Publishes ProductPersisted records with a transactional producer: one transaction per batch
 * (its produce requests sized by the relay, its commit costing two round trips to the
 * coordinator), so a batch is visible to (read_committed) consumers whole or not at all, and a producer that
 * claims the same transactional id later — the next leader — fences this one: the broker refuses
 * whatever it still sends. Nothing connects before the first claim, and the topic is ensured until
 * that succeeds once, so a broker that is down at start only delays events. The producer retries
 * a send for as long as the broker is down; release() cuts it short.
 */
export function createKafkaEventPublisher(options: KafkaEventPublisherOptions): EventPublisher<KafkaEvent> {
  let producer: Producer | undefined;
  /** Begun by claim(): kafkajs starts the epoch (InitProducerId) with the first transaction. */
  let begun: Transaction | undefined;
  let topicReady = false;

  const release = async () => {
    const current = producer;
    producer = undefined;
    begun = undefined;
    await current?.disconnect();
  };

  return {
    encode(row: OutboxRow): KafkaEvent {
      const message = toEventRecord(row);
      return { row, message, bytes: recordBytes(message) };
    },
    async claim() {
      if (producer) return;
      if (!topicReady) {
        await ensureTopics(options.kafka, [options.topic], options.partitions, {
          replicationFactor: options.replicationFactor,
        });
        topicReady = true;
      }
      const next = createIdempotentProducer(options.kafka, { transactionalId: options.transactionalId });
      try {
        await next.connect();
        begun = await next.transaction();
      } catch (error) {
        await next.disconnect().catch(() => {});
        throw error;
      }
      producer = next;
    },
    async publish(requests) {
      if (!producer) throw new Error("publish before claim: no producer epoch");
      const transaction = begun ?? (await producer.transaction());
      begun = undefined;
      try {
        for (const events of requests) {
          await transaction.send({ topic: options.topic, acks: -1, messages: events.map((event) => event.message) });
        }
        await transaction.commit();
      } catch (error) {
        // Never goes on in the same epoch: kafkajs keeps its sequence numbers across an abort, so a
        // record the broker appended without our seeing the answer would, sent again, be taken for
        // a duplicate of the aborted one and silently dropped. The next claim starts a new epoch.
        if (transaction.isActive() && !isProducerFenced(error)) await transaction.abort().catch(() => {});
        await release().catch(() => {});
        throw error;
      }
    },
    release,
  };
}
