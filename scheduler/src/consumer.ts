import type { EventEmitter } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { Batch, EachBatchHandler, EachBatchPayload, KafkaMessage } from "kafkajs";
import type { Product } from "#gen/products/v1/product_pb.js";
import { backoffDelay, sleep } from "#platform/backoff.js";
import type { Logger } from "#platform/logger.js";
import { isPermanentApiError, isPermanentItemError, type ProductApi } from "./api-client.js";
import type { SchedulerConfig } from "./config.js";
import { DeadLetterPublishError, type DeadLetterPublisher } from "./dead-letter.js";
import { RecordError } from "./errors.js";
import { parseRecord } from "./message.js";
import type { SchedulerMetrics } from "./metrics.js";

export interface CommittedEvent {
  topic: string;
  partition: number;
  /** The next offset to read: everything before it is persisted or dead-lettered. */
  offset: bigint;
}

export interface DeadLetteredEvent {
  topic: string;
  partition: number;
  offset: string;
  code: string;
  message: string;
}

export interface RetryingEvent {
  topic: string;
  partition: number;
  /** Offset of the first record not finished yet. */
  offset: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

export type SchedulerEventMap = {
  committed: [CommittedEvent];
  "dead-lettered": [DeadLetteredEvent];
  retrying: [RetryingEvent];
};

export interface BatchHandlerDeps {
  api: ProductApi;
  deadLetters: DeadLetterPublisher;
  config: Pick<SchedulerConfig, "batchSize" | "batchMaxBytes" | "maxRecordBytes" | "retry" | "heartbeatIntervalMs">;
  logger: Logger;
  metrics: SchedulerMetrics;
  events: EventEmitter<SchedulerEventMap>;
  /** Aborted when the scheduler stops: no new chunk starts and backoff waits end at once. */
  stopping: AbortSignal;
}

/** Retried like the rest, but only a fix of the deployment (token, URL, API version) ends them. */
const NEEDS_AN_OPERATOR = new Set(["unauthenticated", "permission_denied", "unimplemented"]);

type ItemState = "pending" | "persisted" | "rejected" | "dead_lettered";

/** One input record on its way: pending until persisted, or rejected until dead-lettered. */
interface Item {
  message: KafkaMessage;
  product: Product | undefined;
  state: ItemState;
  rejection: RecordError | undefined;
  /** Attempts made when the record was rejected, for the x-attempts header. */
  attempts: number;
  size: number;
}

/** Marks records whose retryable failure is reported, not thrown, so finished work is committed first. */
type Failure = { reason: string; error: unknown };

/**
 * The processing loop, as a kafkajs eachBatch handler (run it with eachBatchAutoResolve: false and
 * autoCommit: false). The rules that make it at-least-once without ever skipping a record:
 *
 * - A partition's batch is handled in offset order, in chunks of at most batchSize records and
 *   batchMaxBytes. Each chunk goes to the API in one BatchCreateProducts call (one transaction; the
 *   API applies duplicates of an id in order).
 * - An offset is resolved and committed only once every record up to it is finished: persisted (the
 *   API answered) or dead-lettered (the error topic acknowledged it with acks=-1). A failure leaves
 *   the record and everything after it unresolved, so a restart or another instance reads it again.
 * - Permanent failures (unreadable record, invalid_argument from the API) are dead-lettered at once;
 *   a whole call refused as invalid_argument is replayed one product at a time to find the culprit,
 *   one refused as resource_exhausted is halved.
 *   Anything else is retried with exponential backoff and full jitter, forever, staying inside
 *   eachBatch (kafkajs fetches nothing more for the partition meanwhile) and heartbeating, so the
 *   group does not rebalance because the API is slow or down.
 * - When the scheduler stops, retries end and the unfinished records stay uncommitted.
 * - Errors that are neither (a failed commit or heartbeat during a rebalance, a bug) are thrown to
 *   kafkajs, which rejoins the group or restarts the consumer from the committed offsets.
 */
export function createBatchHandler(deps: BatchHandlerDeps): EachBatchHandler {
  const { config, logger, metrics, events, stopping } = deps;

  return async (payload) => {
    const { batch } = payload;
    const items = batch.messages.map((message) => toItem(message, config.maxRecordBytes));
    logger.debug(
      {
        topic: batch.topic,
        partition: batch.partition,
        records: items.length,
        firstOffset: batch.firstOffset(),
        lastOffset: batch.lastOffset(),
        lag: batch.offsetLag(),
      },
      "batch received",
    );
    for (const chunk of chunks(items, config.batchSize, config.batchMaxBytes)) {
      if (stopping.aborted || !payload.isRunning() || payload.isStale()) return;
      if (!(await processChunk(chunk, payload))) return;
    }
  };

  /** Returns true when every record of the chunk is finished and committed. */
  async function processChunk(chunk: Item[], payload: EachBatchPayload): Promise<boolean> {
    const { batch } = payload;
    let rest = chunk;
    for (let attempt = 1; ; attempt++) {
      let failure = await writePending(rest, attempt, payload);
      const letters = leading(rest, (item) => item.state !== "pending").filter((item) => item.state === "rejected");
      try {
        await deps.deadLetters.publish(
          letters.map((item) => ({
            topic: batch.topic,
            partition: batch.partition,
            message: item.message,
            error: item.rejection ?? new RecordError("invalid_argument", "rejected"),
            attempts: item.attempts,
          })),
        );
        for (const item of letters) {
          item.state = "dead_lettered";
          onDeadLettered(batch, item);
        }
      } catch (error) {
        if (!(error instanceof DeadLetterPublishError)) throw error;
        failure ??= { reason: "dead_letter_publish", error };
      }

      const finished = leading(rest, (item) => item.state === "persisted" || item.state === "dead_lettered");
      const last = finished.at(-1);
      if (last) {
        await commit(payload, last.message);
        rest = rest.slice(finished.length);
      }
      if (rest.length === 0) {
        await payload.heartbeat();
        return true;
      }
      if (!failure) throw new Error("records left unfinished without a failure");
      if (stopping.aborted || !payload.isRunning()) return false;

      const delayMs = backoffDelay(attempt, config.retry);
      const offset = rest[0]?.message.offset ?? "";
      metrics.retries.inc({ reason: failure.reason });
      events.emit("retrying", {
        topic: batch.topic,
        partition: batch.partition,
        offset,
        attempt,
        delayMs,
        reason: failure.reason,
      });
      logger[NEEDS_AN_OPERATOR.has(failure.reason) ? "error" : "warn"](
        {
          topic: batch.topic,
          partition: batch.partition,
          offset,
          records: rest.length,
          attempt,
          delayMs,
          reason: failure.reason,
          err: failure.error,
        },
        "transient failure, retrying",
      );
      await wait(delayMs, payload);
      if (stopping.aborted || !payload.isRunning()) return false;
    }
  }

  /**
   * Sends the chunk's pending products to the API and records each outcome on its item. Returns the
   * retryable failure that left records pending, if any; throws only what is not retryable.
   */
  async function writePending(chunk: Item[], attempt: number, payload: EachBatchPayload): Promise<Failure | undefined> {
    const pending = chunk.filter((item) => item.state === "pending");
    if (pending.length === 0) return undefined;
    const stopTimer = metrics.apiCalls.startTimer();
    let results: Awaited<ReturnType<ProductApi["batchCreate"]>>;
    try {
      results = await withHeartbeats(
        deps.api.batchCreate(pending.map((item) => item.product as Product)),
        payload,
        config.heartbeatIntervalMs,
      );
      stopTimer({ status: "ok" });
    } catch (error) {
      if (!(error instanceof ConnectError)) throw error;
      const code = codeToString(error.code);
      stopTimer({ status: code });
      if (error.code === Code.ResourceExhausted && pending.length > 1) {
        // Too large for the API's body limit (or it sheds load): halve the call rather than
        // repeat it forever; a single product that is still refused is retried as transient.
        const half = Math.ceil(pending.length / 2);
        return (
          (await writePending(pending.slice(0, half), attempt, payload)) ??
          (await writePending(pending.slice(half), attempt, payload))
        );
      }
      if (!isPermanentApiError(error)) return { reason: code, error };
      const [only] = pending;
      if (only && pending.length === 1) {
        reject(only, new RecordError("invalid_argument", error.rawMessage, undefined, { cause: error }), attempt);
        return undefined;
      }
      // The call as a whole was refused: find the culprits one product at a time, in order.
      for (const item of pending) {
        const failure = await writePending([item], attempt, payload);
        if (failure) return failure;
      }
      return undefined;
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

  function reject(item: Item, error: RecordError, attempts: number): void {
    item.state = "rejected";
    item.rejection = error;
    item.attempts = attempts;
  }

  async function commit(payload: EachBatchPayload, message: KafkaMessage): Promise<void> {
    const { batch } = payload;
    payload.resolveOffset(message.offset);
    // resolveOffset skips records kafkajs filtered out after the last message; commit the same.
    const isLast = batch.messages.at(-1) === message;
    const next = BigInt(isLast ? batch.lastOffset() : message.offset) + 1n;
    await payload.commitOffsetsIfNecessary({
      topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next.toString() }] }],
    });
    const lag = BigInt(batch.highWatermark) - next;
    metrics.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(lag > 0n ? lag : 0n));
    events.emit("committed", { topic: batch.topic, partition: batch.partition, offset: next });
    logger.debug({ topic: batch.topic, partition: batch.partition, offset: next.toString() }, "committed");
  }

  function onDeadLettered(batch: Batch, item: Item): void {
    const code = item.rejection?.code ?? "invalid_argument";
    const message = item.rejection?.message ?? "";
    metrics.records.inc({ outcome: "dead_lettered" });
    events.emit("dead-lettered", {
      topic: batch.topic,
      partition: batch.partition,
      offset: item.message.offset,
      code,
      message,
    });
    logger.warn(
      {
        topic: batch.topic,
        partition: batch.partition,
        offset: item.message.offset,
        key: item.message.key?.toString("utf8").slice(0, 128),
        code,
        reason: message,
        attempts: item.attempts,
      },
      "record dead-lettered",
    );
  }

  /** Waits out a backoff while heartbeating, so the group keeps this member and its partitions. */
  async function wait(ms: number, payload: EachBatchPayload): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      await payload.heartbeat();
      const left = end - Date.now();
      if (left <= 0 || stopping.aborted || !payload.isRunning()) return;
      await sleep(Math.min(left, config.heartbeatIntervalMs), stopping);
    }
  }

  function toItem(message: KafkaMessage, maxRecordBytes: number): Item {
    const parsed = parseRecord(message, maxRecordBytes);
    const size = (message.value?.length ?? 0) + (message.key?.length ?? 0) + 64;
    if (parsed.ok) {
      return { message, product: parsed.product, state: "pending", rejection: undefined, attempts: 0, size };
    }
    return { message, product: undefined, state: "rejected", rejection: parsed.error, attempts: 1, size };
  }
}

/**
 * Heartbeats while a long call is in flight, so a slow API does not cost the partition. A failed
 * heartbeat (a rebalance) is not acted on here: the explicit heartbeat after the commit reports it.
 */
async function withHeartbeats<T>(work: Promise<T>, payload: EachBatchPayload, intervalMs: number): Promise<T> {
  const timer = setInterval(() => {
    payload.heartbeat().catch(() => {});
  }, intervalMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
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
