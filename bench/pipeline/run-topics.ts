import type { Kafka } from "kafkajs";
import { ensureTopics } from "#platform/kafka.js";
import type { Settings } from "./settings.js";

/** The topics of one run, all named `*-<tag>`: fresh, so no earlier run's records are read. */
export interface RunTopics {
  input: string;
  persisted: string;
  errors: string;
  /** Where the Kafka ceiling forwards the input. */
  scratch: string;
}

export function runTopics(tag: string): RunTopics {
  return {
    input: `bench-cadastro-produtos-${tag}`,
    persisted: `bench-produtos-persistidos-${tag}`,
    errors: `bench-erro-produtos-${tag}`,
    scratch: `bench-kafka-ceiling-${tag}`,
  };
}

/** Creates the run's topics with the services' partition count; the returned function deletes them. */
export async function createRunTopics(
  kafka: Kafka,
  topics: RunTopics,
  settings: Settings,
): Promise<() => Promise<void>> {
  const names = Object.values(topics);
  await ensureTopics(kafka, names, settings.partitions, { replicationFactor: settings.kafka.replicationFactor });
  return async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: names });
    } finally {
      await admin.disconnect();
    }
  };
}
