/**
 * The outbox relay's thread (started by relay-thread.ts): its own Kafka client, PostgreSQL session
 * and event loop. Log records and metric updates go to the API's thread, which owns stdout and
 * /metrics; wake and stop come from it.
 */
import { parentPort, workerData } from "node:worker_threads";
import { pino } from "pino";
import { createKafka } from "#platform/kafka.js";
import { createOutboxRelay } from "./outbox-relay.js";
import { type FromRelayThread, metricsReporter, type RelayThreadSettings, type ToRelayThread } from "./relay-thread.js";

const port = parentPort;
if (!port) throw new Error("relay-worker.ts runs as a worker thread (see relay-thread.ts)");
const { kafka, logLevel, ...relaySettings } = workerData as RelayThreadSettings;
const post = (message: FromRelayThread) => port.postMessage(message);

const threadLogger = pino(
  {
    level: logLevel,
    base: null,
    timestamp: false,
    formatters: { level: (label: string) => ({ level: label }) },
  },
  { write: (line: string) => post({ type: "log", line }) },
);
const logger = threadLogger.child({ component: "outbox-relay" });

const metrics = metricsReporter((name, value) => post({ type: "metric", name, value }));

const relay = createOutboxRelay({
  ...relaySettings,
  kafka: createKafka(kafka, threadLogger),
  topic: kafka.topics.persisted,
  partitions: kafka.partitions,
  replicationFactor: kafka.replicationFactor,
  logger,
  metrics,
});

port.on("message", (message: ToRelayThread) => {
  if (message.type === "wake") {
    relay.wake();
    return;
  }
  void relay.stop().then(() => {
    // Ends this thread only; kafkajs may still hold timers that would keep it alive.
    process.exit(0);
  });
});
relay.start();
