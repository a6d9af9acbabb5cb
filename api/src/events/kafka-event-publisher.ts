import type { Kafka, Producer } from "kafkajs";
import { createIdempotentProducer, ensureTopics } from "#platform/kafka.js";
import type { EventPublisher } from "./outbox-relay-loop.js";
import { toEventRecord } from "./product-persisted.js";

export interface KafkaEventPublisherOptions {
  kafka: Kafka;
  topic: string;
  /** Of the topic, if this publisher creates it. */
  partitions: number;
  replicationFactor: number;
}

/**
 * Publishes ProductPersisted records with the project's idempotent producer (acks from all
 * in-sync replicas, order kept across retries). Nothing connects before the first publish, and the
 * topic is ensured until that succeeds once, so a broker that is down at start only delays events.
 * The producer itself retries a send for as long as the broker is down; close() cuts it short.
 */
export function createKafkaEventPublisher(options: KafkaEventPublisherOptions): EventPublisher {
  let producer: Producer | undefined;
  let topicReady = false;
  return {
    async publish(rows) {
      if (!producer) {
        producer = createIdempotentProducer(options.kafka);
        await producer.connect();
      }
      if (!topicReady) {
        await ensureTopics(options.kafka, [options.topic], options.partitions, {
          replicationFactor: options.replicationFactor,
        });
        topicReady = true;
      }
      await producer.send({ topic: options.topic, acks: -1, messages: rows.map(toEventRecord) });
    },
    async close() {
      await producer?.disconnect();
    },
  };
}
