import type { EventEmitter } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { KafkaMessage } from "kafkajs";
import { backoffDelay, sleep } from "#platform/backoff.js";
import type { Logger } from "#platform/logger.js";
import {
  type ItemResult,
  isPermanentItemError,
  type ProductApi,
  requestBytes,
  type SourcedProduct,
  sizeRefusal,
} from "./api-client.js";
import type { SchedulerConfig } from "./config.js";
import { DeadLetterPublishError, type DeadLetterPublisher } from "./dead-letter.js";
import { RecordError } from "./errors.js";
import { parseRecord } from "./message.js";
import type { SchedulerMetrics } from "./metrics.js";
import type { SchedulerEventMap } from "./scheduler-events.js";

/** One partition's fetched records, in offset order. */
export interface PartitionBatch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: readonly KafkaMessage[];
  /** The batch's last offset: past the last message when kafkajs filtered control records out. */
  readonly lastOffset: string;
  readonly highWatermark: string;
}

/** The consumer group's side of a batch, as kafkajs' eachBatch payload offers it. */
export interface PartitionPort {
  /** Marks the records up to offset as processed. */
  resolveOffset(offset: string): void;
  /** Commits next as the group's offset for the partition; throws when the group refuses it (a rebalance). */
  commitOffset(next: string): Promise<void>;
  /** Keeps this member in the group; throws when the group is rebalancing. */
  heartbeat(): Promise<void>;
  /** False once the consumer stops. */
  isRunning(): boolean;
  /** True once the partition was sought elsewhere: the batch's records are no longer the next ones. */
  isStale(): boolean;
}

/** Time behind a port, so a unit test runs minutes of backoff in no time. */
export interface Clock {
  now(): number;
  /** Resolves after ms, or at once when the signal aborts; never rejects. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** Calls tick every ms until the returned function is called. */
  every(ms: number, tick: () => void): () => void;
}

/** The wall clock and real timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep,
  every(ms, tick) {
    const timer = setInterval(tick, ms);
    return () => clearInterval(timer);
  },
};

export interface ChunkProcessorDeps {
  api: Pick<ProductApi, "batchCreate">;
  deadLetters: DeadLetterPublisher;
  config: Pick<SchedulerConfig, "batchSize" | "batchMaxBytes" | "maxRecordBytes" | "retry" | "heartbeatIntervalMs">;
  logger: Logger;
  metrics: SchedulerMetrics;
  events: EventEmitter<SchedulerEventMap>;
  /** Aborted when the scheduler stops: no new chunk starts and backoff waits end at once. */
  stopping: AbortSignal;
  clock: Clock;
  /** The backoff's jitter source in [0, 1); Math.random unless a test pins it. */
  random?: () => number;
}

export interface ChunkProcessor {
  /**
   * Processes one partition's batch, chunk by chunk. Resolves when every record is committed, or
   * when the scheduler stops or the partition is no longer ours, with the unfinished records left
   * uncommitted; rejects with what only kafkajs can handle (a failed commit or heartbeat, a bug).
   */
  processBatch(batch: PartitionBatch, partition: PartitionPort): Promise<void>;
}

/**
 * Retried like the rest, but only a fix of the deployment ends them: token, URL, API version, or
 * for a whole call refused as invalid_argument/out_of_range, a setting the API refuses (a deadline
 * above its MAX_RPC_DEADLINE_MS, a batch above its limit). Per-item faults come per item.
 */
const NEEDS_AN_OPERATOR = new Set([
  "unauthenticated",
  "permission_denied",
  "unimplemented",
  "invalid_argument",
  "out_of_range",
  // A dead letter too large for the error topic even without its value: its max.message.bytes is tiny.
  "dead_letter_too_large",
]);

type ItemState = "pending" | "persisted" | "rejected" | "dead_lettered";

/** One input record on its way: pending until persisted, or rejected until dead-lettered. */
interface Item {
  message: KafkaMessage;
  /** The product and the record's position, which orders writes with equal timestamps. */
  write: SourcedProduct | undefined;
  state: ItemState;
  rejection: RecordError | undefined;
  /** Attempts made when the record was rejected, for the x-attempts header. */
  attempts: number;
  size: number;
}

/** Marks records whose retryable failure is reported, not thrown, so finished work is committed first. */
type Failure = { reason: string; error: unknown };

/**
 * The decisions of the processing loop, with Kafka, the API and time as ports. The rules that make
 * it at-least-once without ever skipping a record:
 *
 * - A partition's batch is handled in offset order, in chunks of at most batchSize records and
 *   batchMaxBytes. Each chunk goes to the API in one BatchCreateProducts call (one transaction; the
 *   API applies duplicates of an id in order).
 * - An offset is resolved and committed only once every record up to it is finished: persisted (the
 *   API answered) or dead-lettered (the error topic acknowledged it with acks=-1). A failure leaves
 *   the record and everything after it unresolved, so a restart or another instance reads it again.
 * - Permanent failures (an unreadable record, an item result of invalid_argument or out_of_range,
 *   a product whose request alone is over a body limit) are dead-lettered at once; a dead letter
 *   too large for the error topic is published truncated (without its value), never retried for
 *   its size. A call refused as a whole is otherwise never one record's fault (the API reports a
 *   product's faults in its item result): one refused for its size, or as resource_exhausted, is
 *   halved; any other, invalid_argument included, is retried with exponential backoff and full
 *   jitter, restarting from the initial delay whenever a record gets finished, forever, staying
 *   inside eachBatch (kafkajs fetches nothing more for the partition meanwhile) and heartbeating,
 *   so the group does not rebalance because the API is slow, down or refusing.
 * - When the scheduler stops, retries end and the unfinished records stay uncommitted.
 * - Errors that are neither (a failed commit or heartbeat during a rebalance, a bug) are thrown to
 *   kafkajs, which rejoins the group or restarts the consumer from the committed offsets.
 */
export function createChunkProcessor(deps: ChunkProcessorDeps): ChunkProcessor {
  return {
    processBatch: (batch, partition) => new BatchRun(deps, batch, partition).run(),
  };
}

/** One batch in progress: the deps, the batch and its partition, shared by the steps below. */
class BatchRun {
  constructor(
    private readonly deps: ChunkProcessorDeps,
    private readonly batch: PartitionBatch,
    private readonly partition: PartitionPort,
  ) {}

  /** Records of the batch finished so far (a prefix), for the unfinished-records gauges. */
  private finished = 0;

  async run(): Promise<void> {
    const { config, metrics } = this.deps;
    const { topic, partition, messages } = this.batch;
    const items = messages.map((message) => toItem(message, { topic, partition }, config.maxRecordBytes));
    const first = messages[0];
    if (first) this.setLag(BigInt(first.offset));
    metrics.unfinished.started(topic, partition, items.length);
    try {
      for (const chunk of chunks(items, config.batchSize, config.batchMaxBytes)) {
        if (this.mustStop() || this.partition.isStale()) return;
        if (!(await this.processChunk(chunk))) return;
      }
    } finally {
      // Finished, stopped or no longer ours: nothing of this batch is waiting here any more.
      metrics.unfinished.ended(topic, partition);
    }
  }

  /** Records from next to the high watermark: the lag once next is committed. */
  private setLag(next: bigint): void {
    const { topic, partition, highWatermark } = this.batch;
    const lag = BigInt(highWatermark) - next;
    this.deps.metrics.lag.set({ topic, partition: String(partition) }, Number(lag > 0n ? lag : 0n));
  }

  /** Returns true when every record of the chunk is finished and committed. */
  private async processChunk(chunk: Item[]): Promise<boolean> {
    let rest = chunk;
    // attempt counts every call (the dead letter's x-attempts); failures only those since the last
    // progress, so the backoff starts small again once the API answers.
    let failures = 0;
    for (let attempt = 1; ; attempt++) {
      const writeFailure = await this.writePending(rest, attempt);
      const publishFailure = await this.publishDeadLetters(rest);
      const failure = writeFailure ?? publishFailure;
      const before = rest.length;
      rest = await this.commitFinished(rest);
      if (rest.length === 0) {
        await this.partition.heartbeat();
        return true;
      }
      if (!failure) throw new Error("records left unfinished without a failure");
      if (this.mustStop()) return false;
      failures = rest.length < before ? 1 : failures + 1;
      await this.backOff(rest, failures, failure);
      if (this.mustStop()) return false;
    }
  }

  private mustStop(): boolean {
    return this.deps.stopping.aborted || !this.partition.isRunning();
  }

  /**
   * Sends the chunk's pending products to the API and records each outcome on its item. Returns the
   * retryable failure that left records pending, if any; throws only what is not retryable.
   */
  private async writePending(chunk: Item[], attempt: number): Promise<Failure | undefined> {
    const { api, metrics } = this.deps;
    const pending = chunk.filter((item) => item.state === "pending");
    if (pending.length === 0) return undefined;
    const stopTimer = metrics.apiCalls.startTimer();
    let results: ItemResult[];
    try {
      results = await this.withHeartbeats(() => api.batchCreate(pending.map((item) => item.write as SourcedProduct)));
      stopTimer({ status: "ok" });
    } catch (error) {
      if (!(error instanceof ConnectError)) throw error;
      const code = codeToString(error.code);
      stopTimer({ status: code });
      const refusal = sizeRefusal(error);
      if ((refusal !== undefined || error.code === Code.ResourceExhausted) && pending.length > 1) {
        // Too large for a body limit (or resource_exhausted for load): halve the call rather than
        // repeat it forever, so no record is dead-lettered because its neighbours made it large.
        const half = Math.ceil(pending.length / 2);
        return (
          (await this.writePending(pending.slice(0, half), attempt)) ??
          (await this.writePending(pending.slice(half), attempt))
        );
      }
      const [item] = pending;
      if (refusal !== undefined && item) {
        // One product alone is over the limit: its own fault, whatever the retries.
        const bytes = requestBytes([item.write as SourcedProduct]);
        const message = `the product's BatchCreateProducts request is ${bytes} bytes, over ${refusal}`;
        reject(item, new RecordError("record_too_large", message, undefined, { cause: error }), attempt);
        return undefined;
      }
      return { reason: code, error };
    }
    for (const [index, item] of pending.entries()) {
      const result = results[index];
      if (result?.ok) {
        item.state = "persisted";
        metrics.records.inc({ outcome: "persisted" });
      } else if (result && isPermanentItemError(result.code)) {
        reject(item, new RecordError("invalid_argument", result.message), attempt);
      } else {
        // Later items were written by the same call; sending them again is harmless (the upsert is
        // idempotent) and keeps them behind this one.
        const message = result?.message ?? "no result";
        return { reason: result?.code ?? "internal", error: new ConnectError(message, Code.Internal) };
      }
    }
    return undefined;
  }

  /**
   * Heartbeats while a long call (the API's, or a dead-letter publish) is in flight, so a slow API
   * or broker does not cost the partition. A failed heartbeat (a rebalance) is not acted on here:
   * the explicit heartbeat after the commit reports it.
   */
  private async withHeartbeats<T>(work: () => Promise<T>): Promise<T> {
    const cancel = this.deps.clock.every(this.deps.config.heartbeatIntervalMs, () => {
      this.partition.heartbeat().catch(() => {});
    });
    try {
      return await work();
    } finally {
      cancel();
    }
  }

  /**
   * Dead-letters the rejected records of the finished prefix (a rejected record behind a pending one
   * waits, so letters keep their order). A failed publish is a retryable failure like the API's.
   */
  private async publishDeadLetters(chunk: Item[]): Promise<Failure | undefined> {
    const letters = leading(chunk, (item) => item.state !== "pending").filter((item) => item.state === "rejected");
    if (letters.length === 0) return undefined;
    return this.publish(letters, false);
  }

  /**
   * Publishes the letters in one request, heartbeating meanwhile. The error topic refuses a letter
   * or a batch larger than its max.message.bytes for good, and takes or refuses a publish whole
   * (one partition): a refused batch is halved, and a single letter still refused goes truncated,
   * without its value, so that the partition never stops on it. Returns the failure that left
   * letters unpublished, if any.
   */
  private async publish(letters: Item[], truncated: boolean): Promise<Failure | undefined> {
    const { topic, partition } = this.batch;
    try {
      await this.withHeartbeats(() =>
        this.deps.deadLetters.publish(
          letters.map((item) => ({
            topic,
            partition,
            message: item.message,
            error: item.rejection ?? new RecordError("invalid_argument", "rejected"),
            attempts: item.attempts,
            truncated,
          })),
        ),
      );
    } catch (error) {
      if (!(error instanceof DeadLetterPublishError)) throw error;
      if (error.kafkaErrorClass !== "too_large") return { reason: "dead_letter_publish", error };
      if (letters.length > 1) {
        const half = Math.ceil(letters.length / 2);
        return (await this.publish(letters.slice(0, half), false)) ?? (await this.publish(letters.slice(half), false));
      }
      if (!truncated) return this.publish(letters, true);
      return { reason: "dead_letter_too_large", error };
    }
    for (const item of letters) {
      item.state = "dead_lettered";
      this.onDeadLettered(item, truncated);
    }
    return undefined;
  }

  /** Resolves and commits the finished prefix of the chunk; returns the records after it. */
  private async commitFinished(chunk: Item[]): Promise<Item[]> {
    const finished = leading(chunk, (item) => item.state === "persisted" || item.state === "dead_lettered");
    const last = finished.at(-1);
    if (!last) return chunk;
    const { batch, partition } = this;
    const { metrics, events, logger } = this.deps;
    partition.resolveOffset(last.message.offset);
    // resolveOffset skips records kafkajs filtered out after the last message; commit the same.
    const isLast = batch.messages.at(-1) === last.message;
    const next = BigInt(isLast ? batch.lastOffset : last.message.offset) + 1n;
    await partition.commitOffset(next.toString());
    this.setLag(next);
    this.finished += finished.length;
    metrics.unfinished.left(batch.topic, batch.partition, batch.messages.length - this.finished);
    events.emit("committed", { topic: batch.topic, partition: batch.partition, offset: next });
    logger.debug({ topic: batch.topic, partition: batch.partition, offset: next.toString() }, "committed");
    return chunk.slice(finished.length);
  }

  /** Reports the transient failure, then waits out the attempt's backoff. */
  private async backOff(rest: Item[], attempt: number, failure: Failure): Promise<void> {
    const { config, metrics, events, logger, random } = this.deps;
    const { topic, partition } = this.batch;
    const delayMs = backoffDelay(attempt, config.retry, random);
    const offset = rest[0]?.message.offset ?? "";
    metrics.retries.inc({ reason: failure.reason });
    events.emit("retrying", { topic, partition, offset, attempt, delayMs, reason: failure.reason });
    logger[NEEDS_AN_OPERATOR.has(failure.reason) ? "error" : "warn"](
      {
        topic,
        partition,
        offset,
        records: rest.length,
        attempt,
        delayMs,
        reason: failure.reason,
        err: failure.error,
      },
      "transient failure, retrying",
    );
    await this.wait(delayMs);
  }

  /** Waits out a backoff while heartbeating, so the group keeps this member and its partitions. */
  private async wait(ms: number): Promise<void> {
    const { clock, config, stopping } = this.deps;
    const end = clock.now() + ms;
    for (;;) {
      await this.partition.heartbeat();
      const left = end - clock.now();
      if (left <= 0 || stopping.aborted || !this.partition.isRunning()) return;
      await clock.sleep(Math.min(left, config.heartbeatIntervalMs), stopping);
    }
  }

  private onDeadLettered(item: Item, truncated: boolean): void {
    const { topic, partition } = this.batch;
    const code = item.rejection?.code ?? "invalid_argument";
    const message = item.rejection?.message ?? "";
    this.deps.metrics.records.inc({ outcome: "dead_lettered" });
    this.deps.events.emit("dead-lettered", { topic, partition, offset: item.message.offset, code, message, truncated });
    this.deps.logger.warn(
      {
        topic,
        partition,
        offset: item.message.offset,
        key: item.message.key?.toString("utf8").slice(0, 128),
        code,
        reason: message,
        attempts: item.attempts,
        ...(truncated ? { truncated, valueBytes: item.message.value?.length ?? 0 } : {}),
      },
      truncated
        ? "record dead-lettered without its value: the whole record is larger than the error topic accepts"
        : "record dead-lettered",
    );
  }
}

function toItem(message: KafkaMessage, at: { topic: string; partition: number }, maxRecordBytes: number): Item {
  const parsed = parseRecord(message, maxRecordBytes);
  const size = (message.value?.length ?? 0) + (message.key?.length ?? 0) + 64;
  if (parsed.ok) {
    const write = { product: parsed.product, source: { ...at, offset: BigInt(message.offset) } };
    return { message, write, state: "pending", rejection: undefined, attempts: 0, size };
  }
  return { message, write: undefined, state: "rejected", rejection: parsed.error, attempts: 1, size };
}

function reject(item: Item, error: RecordError, attempts: number): void {
  item.state = "rejected";
  item.rejection = error;
  item.attempts = attempts;
}

function leading(items: Item[], test: (item: Item) => boolean): Item[] {
  const end = items.findIndex((item) => !test(item));
  return end === -1 ? items : items.slice(0, end);
}

function* chunks(items: Item[], maxItems: number, maxBytes: number): Generator<Item[]> {
  let chunk: Item[] = [];
  let bytes = 0;
  for (const item of items) {
    if (chunk.length > 0 && (chunk.length >= maxItems || bytes + item.size > maxBytes)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += item.size;
  }
  if (chunk.length > 0) yield chunk;
}
