import { Worker } from "node:worker_threads";
import { backoffDelay } from "#platform/backoff.js";
import type { KafkaConfig } from "#platform/kafka.js";
import type { Logger } from "#platform/logger.js";
import type { OutboxRelayOptions } from "./outbox-relay.js";
import type { OutboxRelay, RelayMetrics } from "./outbox-relay-loop.js";

/**
 * What the relay's thread needs to build its relay and clients: the relay's own settings and the
 * configuration of its Kafka client and logger, plain data, cloned into the thread.
 */
export type RelayThreadSettings = Pick<
  OutboxRelayOptions,
  "databaseUrl" | "pollIntervalMs" | "batchSize" | "batchMaxBytes" | "leaseTimeoutMs" | "transactionalId"
> & { kafka: KafkaConfig; logLevel: string };

/** Messages from the API's thread to the relay's. */
export type ToRelayThread = { type: "wake" } | { type: "stop" };

/** Messages from the relay's thread: its log records (pino JSON lines) and metric updates. */
export type FromRelayThread =
  | { type: "log"; line: string }
  | { type: "metric"; name: keyof RelayMetrics; value: number };

/** Between restarts of a relay thread that failed; the outbox keeps the events meanwhile. */
const RESTART_BACKOFF = { initialDelayMs: 1000, maxDelayMs: 30_000 } as const;
/** A thread that ran this long before failing restarts after the shortest delay again. */
const HEALTHY_RUN_MS = 60_000;
/** Past the relay's own stop grace (RELAY_TIMING_DEFAULTS.stopGraceMs), the thread is terminated. */
const STOP_TIMEOUT_MS = 15_000;

/** The worker's entry: relay-worker.js once compiled, relay-worker.ts from source (tests, npm run api). */
const FROM_SOURCE = import.meta.url.endsWith(".ts");
const WORKER_URL = new URL(`./relay-worker.${FROM_SOURCE ? "ts" : "js"}`, import.meta.url);

/**
 * From source, tsx's hooks are registered in the thread before the entry is imported: a worker
 * does not inherit those of `--import tsx` (privatenumber/tsx#354).
 */
function newRelayWorker(settings: RelayThreadSettings): Worker {
  const options = { workerData: settings, name: "outbox-relay" };
  if (!FROM_SOURCE) return new Worker(WORKER_URL, options);
  const bootstrap = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/**
 * The outbox relay on a thread of its own. Publishing costs about as much CPU per event as taking
 * the write does (kafkajs encodes each record in JavaScript); on the request thread the two take
 * turns, and the relay's bursts delay answers. On its own thread, with its own event loop, heap and
 * connections, it uses a second core. What the API sees is unchanged: wake() after a commit,
 * isActive(), stop(); the thread's log records go to this process's logger and its metric updates
 * to this process's metrics. A thread that fails is restarted with backoff: the lease is its pg
 * session, which ends with it, and another replica may take over meanwhile.
 */
export function startOutboxRelayThread(
  settings: RelayThreadSettings,
  logger: Logger,
  metrics: RelayMetrics,
): OutboxRelay {
  let worker: Worker | undefined;
  let active = false;
  let stopping: Promise<void> | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let failures = 0;

  const setInactive = () => {
    active = false;
    metrics.relayActive.set(0);
    metrics.outboxPending.set(0);
    metrics.outboxOldestAgeSeconds.set(0);
  };

  const onMessage = (message: FromRelayThread) => {
    switch (message.type) {
      case "log":
        relog(logger, message.line);
        return;
      case "metric":
        if (message.name === "relayActive") active = message.value === 1;
        applyMetric(metrics, message.name, message.value);
        return;
    }
  };

  const spawn = () => {
    const startedAt = Date.now();
    const thread = newRelayWorker(settings);
    worker = thread;
    thread.on("message", onMessage);
    thread.on("error", (error) => logger.error({ err: error }, "outbox relay thread failed"));
    thread.on("exit", (code) => {
      if (worker === thread) worker = undefined;
      setInactive();
      if (stopping) return;
      // Not asked to stop: a bug or an exhausted heap. The events wait in the outbox meanwhile.
      failures = Date.now() - startedAt > HEALTHY_RUN_MS ? 1 : failures + 1;
      const delayMs = Math.max(RESTART_BACKOFF.initialDelayMs / 2, backoffDelay(failures, RESTART_BACKOFF));
      logger.error({ exitCode: code, restartInMs: delayMs }, "outbox relay thread exited; restarting");
      restartTimer = setTimeout(spawn, delayMs);
    });
  };

  const post = (message: ToRelayThread) => worker?.postMessage(message);

  return {
    start() {
      if (!worker && !stopping && !restartTimer) spawn();
    },
    wake: () => post({ type: "wake" }),
    isActive: () => active,
    stop() {
      stopping ??= (async () => {
        clearTimeout(restartTimer);
        const thread = worker;
        if (!thread) return;
        const exited = new Promise<void>((resolve) => thread.once("exit", () => resolve()));
        post({ type: "stop" });
        const timer = setTimeout(() => {
          logger.warn({ timeoutMs: STOP_TIMEOUT_MS }, "outbox relay thread did not stop in time; terminating it");
          void thread.terminate();
        }, STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** RelayMetrics whose every update goes to `report` (the thread's side of the metric messages). */
export function metricsReporter(report: (name: keyof RelayMetrics, value: number) => void): RelayMetrics {
  const metric =
    (name: keyof RelayMetrics) =>
    (value = 1) =>
      report(name, value);
  return {
    eventsPublished: { inc: metric("eventsPublished") },
    eventPublishFailures: { inc: metric("eventPublishFailures") },
    relayActive: { set: metric("relayActive") },
    outboxPending: { set: metric("outboxPending") },
    outboxOldestAgeSeconds: { set: metric("outboxOldestAgeSeconds") },
  };
}

function applyMetric(metrics: RelayMetrics, name: keyof RelayMetrics, value: number): void {
  switch (name) {
    case "eventsPublished":
      metrics.eventsPublished.inc(value);
      return;
    case "eventPublishFailures":
      metrics.eventPublishFailures.inc();
      return;
    case "relayActive":
      metrics.relayActive.set(value);
      return;
    case "outboxPending":
      metrics.outboxPending.set(value);
      return;
    case "outboxOldestAgeSeconds":
      metrics.outboxOldestAgeSeconds.set(value);
      return;
  }
}

const LEVELS = new Set(["trace", "debug", "info", "warn", "error", "fatal"]);

/** A record of the thread's logger, logged again by this process's (which adds service and time). */
function relog(logger: Logger, line: string): void {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    logger.warn({ line }, "outbox relay thread wrote a line that is not a log record");
    return;
  }
  const { level, msg, ...fields } = record;
  // pino serialized the thread's errors; an Error again keeps its message and stack in this log.
  const err = fields.err as { type?: unknown; message?: unknown; stack?: unknown } | undefined;
  if (err && typeof err.message === "string") {
    const error = new Error(err.message);
    if (typeof err.type === "string") error.name = err.type;
    if (typeof err.stack === "string") error.stack = err.stack;
    fields.err = error;
  }
  const method = typeof level === "string" && LEVELS.has(level) ? (level as "info") : "info";
  logger[method](fields, typeof msg === "string" ? msg : "");
}
