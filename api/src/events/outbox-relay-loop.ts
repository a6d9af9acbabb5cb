import { backoffDelay, sleep } from "#platform/backoff.js";
import { classifyKafkaError, isProducerFenced } from "#platform/kafka.js";
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

/** What the active relay reports about the outbox. */
export interface OutboxBacklog {
  /** Rows waiting to be published. */
  pending: number;
  /** Age of the row first in line, 0 when there is none. */
  oldestAgeSeconds: number;
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
  /**
   * The oldest rows, in id order, at most one per product id (its oldest): a later version waits
   * for a later batch, so a batch published twice never puts an older version after a newer one.
   */
  readBatch(limit: number): Promise<OutboxRow[]>;
  deleteIds(ids: readonly OutboxRow["id"][]): Promise<void>;
  /**
   * Shows the database this session (and its lease) is alive, so that it ends a session that
   * stops doing so, and measures the backlog.
   */
  heartbeat(): Promise<OutboxBacklog>;
  close(): Promise<void>;
}

/** A row as the publisher will send it, and its size on the wire. */
export interface EncodedEvent {
  readonly row: OutboxRow;
  /** Bytes of the record in a produce request: key, value, headers and framing. */
  readonly bytes: number;
}

/** Where events go. */
export interface EventPublisher<E extends EncodedEvent = EncodedEvent> {
  encode(row: OutboxRow): E;
  /**
   * Makes this process the one publisher the broker accepts (a new producer epoch), so that
   * whatever a deposed relay still has in flight is refused from now on. The leader calls it
   * before each read, so every batch goes out in an epoch that began before the batch was read;
   * a no-op while the current epoch stands.
   */
  claim(): Promise<void>;
  /**
   * Publishes the events atomically, in order, one produce request per element of `requests`.
   * Resolves once the broker acknowledged them all; rejects otherwise, and then none of them is
   * visible to consumers.
   */
  publish(requests: readonly (readonly E[])[]): Promise<void>;
  /** Ends the epoch and disconnects; a publish still in flight fails. claim() starts a new one. */
  release(): Promise<void>;
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
  outboxPending: { set(value: number): void };
  outboxOldestAgeSeconds: { set(value: number): void };
}

export interface OutboxRelayPorts<E extends EncodedEvent = EncodedEvent> {
  store: OutboxStore;
  publisher: EventPublisher<E>;
  logger: Logger;
  metrics: RelayMetrics;
  /** Real timers and Math.random unless given. */
  timing?: RelayTiming;
}

type Backoff = Parameters<typeof backoffDelay>[1];

export interface OutboxRelayLoopOptions {
  /** Rows read, hence events published, per batch at most. */
  batchSize: number;
  /** Bytes of events (EncodedEvent.bytes) per produce request at most; a larger single event goes alone. */
  maxBatchBytes: number;
  /** Longest wait between two looks at the outbox when no notification arrives. */
  pollIntervalMs: number;
  /** Between two heartbeats of the leader's session. */
  heartbeatMs?: number;
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
  heartbeatMs: 3000,
  publishBackoff: { initialDelayMs: 250, maxDelayMs: 30_000 },
  reconnectBackoff: { initialDelayMs: 500, maxDelayMs: 30_000 },
  standbyRetryMs: 2000,
  stopGraceMs: 5000,
} as const satisfies Required<Omit<OutboxRelayLoopOptions, "batchSize" | "maxBatchBytes" | "pollIntervalMs">>;

const realTiming: RelayTiming = { sleep, random: Math.random };

/** Consecutive events, each chunk at most maxBytes (or a single event): one produce request each. */
export function chunksOf<E extends EncodedEvent>(events: readonly E[], maxBytes: number): E[][] {
  const chunks: E[][] = [];
  let chunk: E[] = [];
  let bytes = 0;
  for (const event of events) {
    if (chunk.length > 0 && bytes + event.bytes > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(event);
    bytes += event.bytes;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

const bytesOf = (events: readonly EncodedEvent[]) => events.reduce((sum, event) => sum + event.bytes, 0);

/**
 * The relay's decisions, with its I/O as ports: while it holds the lease, it claims the publisher,
 * reads the oldest batch, publishes it and deletes it only once the broker acknowledged it; when
 * the outbox is empty it waits for a notification, a wake() or the poll interval. A heartbeat
 * keeps the session's lease alive and measures the backlog. A failed publish is retried with
 * backoff after reading the batch again; one the broker refuses as too large is halved. A failed
 * session (lost connection, so lost lease) or a fenced publisher (another relay took over) drops
 * leadership, and the next leader reads the same rows again. Rows acknowledged but not deleted
 * when the session failed are deleted first thing in the next session, not published again.
 * Without the lease it retries later, publishing nothing.
 */
export function createOutboxRelayLoop<E extends EncodedEvent>(
  ports: OutboxRelayPorts<E>,
  options: OutboxRelayLoopOptions,
): OutboxRelay {
  const { store, publisher, logger, metrics } = ports;
  const timing = ports.timing ?? realTiming;
  const settings = {
    batchSize: options.batchSize,
    maxBatchBytes: options.maxBatchBytes,
    pollIntervalMs: options.pollIntervalMs,
    heartbeatMs: options.heartbeatMs ?? RELAY_TIMING_DEFAULTS.heartbeatMs,
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
  /** Ids the broker acknowledged that are not deleted yet: the next session deletes them first. */
  let acknowledged: OutboxRow["id"][] = [];

  const wakeUp = () => {
    notified = true;
    idleWait?.abort();
  };

  const waitForWork = async (signal: AbortSignal) => {
    if (notified || signal.aborted) return;
    idleWait = new AbortController();
    await timing.sleep(settings.pollIntervalMs, AbortSignal.any([idleWait.signal, signal]));
    idleWait = undefined;
  };

  const setActive = (value: boolean) => {
    active = value;
    metrics.relayActive.set(value ? 1 : 0);
    if (!value) {
      // Only the active relay reports the backlog; elsewhere the gauges say nothing stale.
      metrics.outboxPending.set(0);
      metrics.outboxOldestAgeSeconds.set(0);
    }
  };

  const serveWhileLeader = async (session: OutboxSession) => {
    const leadership = new AbortController();
    const signal = AbortSignal.any([leadership.signal, stopSignal]);
    let lost: { error: unknown } | undefined;
    const loseLeadership = (error: unknown) => {
      lost ??= { error };
      leadership.abort();
      // A publish in flight belongs to a leadership that is over: cut it short.
      publisher.release().catch(() => {});
    };
    const heartbeat = (async () => {
      while (!signal.aborted) {
        try {
          const backlog = await session.heartbeat();
          if (signal.aborted) return;
          metrics.outboxPending.set(backlog.pending);
          metrics.outboxOldestAgeSeconds.set(backlog.oldestAgeSeconds);
        } catch (error) {
          loseLeadership(error);
          return;
        }
        await timing.sleep(settings.heartbeatMs, signal);
      }
    })();

    /** After a failed claim or publish: waits as needed; throws when leadership must end. */
    let failures = 0;
    let maxBytes = settings.maxBatchBytes;
    const onPublishFailure = async (error: unknown, requests: readonly (readonly E[])[]) => {
      if (lost) throw lost.error;
      if (stopSignal.aborted) return;
      metrics.eventPublishFailures.inc();
      if (isProducerFenced(error)) {
        throw new Error("another relay claimed the publisher: this one is no longer the leader", { cause: error });
      }
      const kafkaErrorClass = classifyKafkaError(error);
      // The broker does not say which request it refused: halve the largest.
      const largest = requests.reduce<readonly E[]>((a, b) => (bytesOf(b) > bytesOf(a) ? b : a), []);
      if (kafkaErrorClass === "too_large" && largest.length > 1) {
        maxBytes = Math.floor(bytesOf(largest) / 2);
        logger.warn(
          { err: error, events: largest.length, bytes: bytesOf(largest), maxBytes },
          "the broker refused the batch as too large; halving it",
        );
        return;
      }
      failures++;
      const backoffMs = backoffDelay(failures, settings.publishBackoff, timing.random);
      const pending = requests.reduce((sum, request) => sum + request.length, 0);
      const fields = { err: error, kafkaErrorClass, attempt: failures, backoffMs, pending };
      if (kafkaErrorClass === "too_large") logger.error(fields, "the broker refuses a single event as too large");
      else logger.warn(fields, "event publish failed; retrying");
      await timing.sleep(backoffMs, signal);
    };

    /** One transaction per batch, in requests of at most maxBytes; after a failure the batch is read again. */
    const publishBatch = async (rows: OutboxRow[]) => {
      const requests = chunksOf(
        rows.map((row) => publisher.encode(row)),
        maxBytes,
      );
      try {
        await publisher.publish(requests);
      } catch (error) {
        await onPublishFailure(error, requests);
        return;
      }
      failures = 0;
      acknowledged = rows.map((row) => row.id);
      metrics.eventsPublished.inc(rows.length);
      await session.deleteIds(acknowledged);
      acknowledged = [];
    };

    try {
      await session.listen(wakeUp);
      setActive(true);
      logger.info("outbox relay active");
      while (!stopSignal.aborted) {
        if (lost) throw lost.error;
        // Cleared before the read: a notification during the read means there may be more.
        notified = false;
        try {
          await publisher.claim();
        } catch (error) {
          await onPublishFailure(error, []);
          continue;
        }
        const rows = await session.readBatch(settings.batchSize);
        if (rows.length === 0) {
          await waitForWork(signal);
          continue;
        }
        await publishBatch(rows);
      }
    } catch (error) {
      throw lost ? lost.error : error;
    } finally {
      leadership.abort();
      await heartbeat;
    }
  };

  const run = async () => {
    // Reset while leader: losing the lease after a long leadership is not a repeated failure.
    for (let attempt = 1; !stopSignal.aborted; attempt++) {
      let session: OutboxSession | undefined;
      let failure: { error: unknown } | undefined;
      try {
        session = await store.connect();
        if (acknowledged.length > 0) {
          await session.deleteIds(acknowledged);
          logger.info({ events: acknowledged.length }, "deleted the events acknowledged before the session failed");
          acknowledged = [];
        }
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
      // Before the backoff: a session that failed without dying must not keep the lease meanwhile,
      // and a publisher whose leadership ended must not keep its epoch.
      setActive(false);
      await publisher.release().catch(() => {});
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
      await publisher.release().catch(() => {});
      if (!finished) await running;
      logger.info("outbox relay stopped");
    },
  };
}
