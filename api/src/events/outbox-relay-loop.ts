import { backoffDelay, sleep } from "#platform/backoff.js";
import { classifyKafkaError } from "#platform/kafka.js";
import type { Logger } from "#platform/logger.js";
import type { OutboxRow } from "./product-persisted.js";

/** The relay as the rest of the API sees it. */
export interface OutboxRelay {
  start(): void;
  /** Looks at the outbox now (called after this process commits a write with events). */
  wake(): void;
  /** True while this process is the active relay. */
  isActive(): boolean;
  /** Finishes the batch in progress (or gives up on it if Kafka is down), then disconnects. */
  stop(): Promise<void>;
}

/** Where the outbox lives. One session is one connection; the lease is held by the session. */
export interface OutboxStore {
  connect(): Promise<OutboxSession>;
}

/**
 * One connection to the outbox. Any rejection means the session, and the lease with it, may be
 * gone: the loop stops being the leader, closes the session and connects again.
 */
export interface OutboxSession {
  /** True if this session now holds the lease that makes it the one active relay. */
  tryAcquireLease(): Promise<boolean>;
  /** Calls onNotification whenever another process says it wrote events. */
  listen(onNotification: () => void): Promise<void>;
  /** The oldest rows, in id order. */
  readBatch(limit: number): Promise<OutboxRow[]>;
  deleteIds(ids: readonly OutboxRow["id"][]): Promise<void>;
  close(): Promise<void>;
}

/** Where events go. */
export interface EventPublisher {
  /** Resolves once the broker acknowledged every row, in order; rejects otherwise (then retried). */
  publish(rows: readonly OutboxRow[]): Promise<void>;
  /** Disconnects; a publish still in flight fails. */
  close(): Promise<void>;
}

/** Time and jitter, so tests decide when a wait ends. */
export interface RelayTiming {
  /** Resolves after ms, or at once when the signal aborts; never rejects. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** The jitter of backoffDelay, in [0, 1). */
  random(): number;
}

/** The relay's metrics (ApiMetrics has them). */
export interface RelayMetrics {
  eventsPublished: { inc(count: number): void };
  eventPublishFailures: { inc(): void };
  relayActive: { set(value: number): void };
}

export interface OutboxRelayPorts {
  store: OutboxStore;
  publisher: EventPublisher;
  logger: Logger;
  metrics: RelayMetrics;
  /** Real timers and Math.random unless given. */
  timing?: RelayTiming;
}

type Backoff = Parameters<typeof backoffDelay>[1];

export interface OutboxRelayLoopOptions {
  /** Rows published per Kafka request. */
  batchSize: number;
  /** Longest wait between two looks at the outbox when no notification arrives. */
  pollIntervalMs: number;
  /** Between attempts to publish one batch. */
  publishBackoff?: Backoff;
  /** Between attempts to connect to the outbox after a failure or a lost lease. */
  reconnectBackoff?: Backoff;
  /** How often a standby asks for the lease. */
  standbyRetryMs?: number;
  /** How long stop() lets a batch in progress finish before it disconnects the publisher. */
  stopGraceMs?: number;
}

/** Today's timings: a standby takes over within seconds; backoffs never exceed 30 s. */
export const RELAY_TIMING_DEFAULTS = {
  publishBackoff: { initialDelayMs: 250, maxDelayMs: 30_000 },
  reconnectBackoff: { initialDelayMs: 500, maxDelayMs: 30_000 },
  standbyRetryMs: 2000,
  stopGraceMs: 5000,
} as const satisfies Required<Omit<OutboxRelayLoopOptions, "batchSize" | "pollIntervalMs">>;

const realTiming: RelayTiming = { sleep, random: Math.random };

/**
 * The relay's decisions, with its I/O as ports: while it holds the lease, it reads the oldest
 * batch, publishes it, and deletes it only once the broker acknowledged it; when the outbox is
 * empty it waits for a notification, a wake() or the poll interval. A failed publish is retried
 * with backoff, the rows kept; a failed session (lost connection, so lost lease) drops leadership,
 * and the next leader reads the same rows again. Without the lease it retries later, publishing
 * nothing.
 */
export function createOutboxRelayLoop(ports: OutboxRelayPorts, options: OutboxRelayLoopOptions): OutboxRelay {
  const { store, publisher, logger, metrics } = ports;
  const timing = ports.timing ?? realTiming;
  const settings = {
    batchSize: options.batchSize,
    pollIntervalMs: options.pollIntervalMs,
    publishBackoff: options.publishBackoff ?? RELAY_TIMING_DEFAULTS.publishBackoff,
    reconnectBackoff: options.reconnectBackoff ?? RELAY_TIMING_DEFAULTS.reconnectBackoff,
    standbyRetryMs: options.standbyRetryMs ?? RELAY_TIMING_DEFAULTS.standbyRetryMs,
    stopGraceMs: options.stopGraceMs ?? RELAY_TIMING_DEFAULTS.stopGraceMs,
  };
  const stopController = new AbortController();
  const stopSignal = stopController.signal;
  let running: Promise<void> | undefined;
  let active = false;
  let notified = false;
  let idleWait: AbortController | undefined;

  const wakeUp = () => {
    notified = true;
    idleWait?.abort();
  };

  const waitForWork = async () => {
    if (notified || stopSignal.aborted) return;
    idleWait = new AbortController();
    await timing.sleep(settings.pollIntervalMs, idleWait.signal);
    idleWait = undefined;
  };

  const setActive = (value: boolean) => {
    active = value;
    metrics.relayActive.set(value ? 1 : 0);
  };

  /** False when stopped before the broker acknowledged the rows. */
  const publish = async (rows: OutboxRow[]) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await publisher.publish(rows);
        return true;
      } catch (error) {
        const backoffMs = backoffDelay(attempt, settings.publishBackoff, timing.random);
        logger.warn(
          { err: error, kafkaErrorClass: classifyKafkaError(error), attempt, backoffMs, pending: rows.length },
          "event publish failed; retrying",
        );
        metrics.eventPublishFailures.inc();
        await timing.sleep(backoffMs, stopSignal);
        if (stopSignal.aborted) return false;
      }
    }
  };

  const serveWhileLeader = async (session: OutboxSession) => {
    await session.listen(wakeUp);
    setActive(true);
    logger.info("outbox relay active");
    while (!stopSignal.aborted) {
      // Cleared before the read: a notification during the read means there may be more.
      notified = false;
      const rows = await session.readBatch(settings.batchSize);
      if (rows.length === 0) {
        await waitForWork();
        continue;
      }
      if (!(await publish(rows))) return;
      await session.deleteIds(rows.map((row) => row.id));
      metrics.eventsPublished.inc(rows.length);
    }
  };

  const run = async () => {
    // Reset while leader: losing the lease after a long leadership is not a repeated failure.
    for (let attempt = 1; !stopSignal.aborted; attempt++) {
      let session: OutboxSession | undefined;
      let failure: { error: unknown } | undefined;
      try {
        session = await store.connect();
        while (!stopSignal.aborted) {
          if (await session.tryAcquireLease()) {
            attempt = 0;
            await serveWhileLeader(session);
          } else {
            await timing.sleep(settings.standbyRetryMs, stopSignal);
          }
        }
      } catch (error) {
        failure = { error };
      }
      // Before the backoff: a session that failed without dying must not keep the lease meanwhile.
      setActive(false);
      await session?.close().catch(() => {});
      if (failure && !stopSignal.aborted) {
        logger.warn({ err: failure.error, attempt }, "outbox relay failed; reconnecting");
        await timing.sleep(backoffDelay(attempt, settings.reconnectBackoff, timing.random), stopSignal);
      }
    }
  };

  return {
    start() {
      running ??= run();
    },
    wake: wakeUp,
    isActive: () => active,
    async stop() {
      stopController.abort();
      idleWait?.abort();
      // A publish can hang for as long as the broker is down: after the grace, cut it short.
      let finished = true;
      if (running) {
        const grace = new AbortController();
        const graceOver = timing.sleep(settings.stopGraceMs, grace.signal).then(() => false);
        finished = await Promise.race([running.then(() => true), graceOver]);
        grace.abort();
      }
      await publisher.close().catch(() => {});
      if (!finished) await running;
      logger.info("outbox relay stopped");
    },
  };
}
