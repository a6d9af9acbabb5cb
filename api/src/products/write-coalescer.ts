import { ApiError } from "../errors.js";
import type { ProductWrite, WriteResult } from "./product-repository.js";

/** Why a write was answered without reaching the database. */
export type NotRunReason = "queue_full" | "client_gone";

export interface WriteCoalescerOptions {
  /** Upsert statements allowed in flight at once; writes arriving while all are busy wait and share the next one. */
  maxInFlight: number;
  /** Most products in one statement. */
  maxBatch: number;
  /** Most writes waiting for a statement; beyond it a write is refused as unavailable, nothing written. */
  maxQueued: number;
  /** Told the number of writes waiting whenever it changes, e.g. for a gauge. */
  onQueueDepth?: (depth: number) => void;
  /** Told each write answered without running, e.g. for a counter. */
  onNotRun?: (reason: NotRunReason) => void;
}

export type Write = (write: ProductWrite, signal?: AbortSignal) => Promise<WriteResult>;

type Upsert = (writes: readonly ProductWrite[]) => Promise<WriteResult[]>;

interface Pending {
  write: ProductWrite;
  /** Taken into a statement, or answered because its signal aborted: no longer in the queue. */
  done: boolean;
  resolve: (result: WriteResult) => void;
  reject: (error: unknown) => void;
  /** Removes the abort listener once the write is taken. */
  release?: () => void;
}

/**
 * Group commit for single-product writes: while `maxInFlight` upserts are running, new writes
 * queue, and the next statement takes all of them at once. An idle server writes at once, with no
 * added delay; a busy one turns many small transactions into a few multi-row ones, which is what
 * PostgreSQL does best. Each caller still gets its own result; a batch that fails for a reason
 * other than the database being unavailable is retried one product at a time, so one bad write
 * never fails the others.
 *
 * The queue is bounded: past `maxQueued` waiting writes, a new one is refused at once as
 * `unavailable` (503; retry later), rather than growing memory and latency without limit under
 * overload. A waiting write whose signal aborts (its client went away, its deadline passed) leaves
 * the queue and never reaches the database; once in a statement, it runs.
 */
export function createWriteCoalescer(upsert: Upsert, options: WriteCoalescerOptions): Write {
  const queue: Pending[] = [];
  let inFlight = 0;
  const depthChanged = () => options.onQueueDepth?.(queue.length);

  const runOne = async (item: Pending) => {
    try {
      const [result] = await upsert([item.write]);
      if (!result) throw new Error("upsert returned no result");
      item.resolve(result);
    } catch (error) {
      item.reject(error);
    }
  };

  const flush = () => {
    let took = false;
    while (inFlight < options.maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, options.maxBatch);
      for (const item of batch) {
        item.done = true;
        item.release?.();
      }
      took = true;
      inFlight++;
      const run = async () => {
        try {
          const results = await upsert(batch.map((item) => item.write));
          batch.forEach((item, i) => {
            const result = results[i];
            if (result) item.resolve(result);
            else item.reject(new Error("upsert returned no result"));
          });
        } catch (error) {
          const unavailable = error instanceof ApiError && error.code === "unavailable";
          if (batch.length === 1 || unavailable) for (const item of batch) item.reject(error);
          else for (const item of batch) await runOne(item);
        }
      };
      run().finally(() => {
        inFlight--;
        flush();
      });
    }
    if (took) depthChanged();
  };

  return (write, signal) =>
    new Promise<WriteResult>((resolve, reject) => {
      if (signal?.aborted) {
        options.onNotRun?.("client_gone");
        reject(clientGone(signal));
        return;
      }
      if (queue.length >= options.maxQueued) {
        options.onNotRun?.("queue_full");
        reject(
          new ApiError(
            "unavailable",
            `too many writes waiting (${options.maxQueued}); nothing was written, retry later`,
          ),
        );
        return;
      }
      const item: Pending = { write, done: false, resolve, reject };
      queue.push(item);
      flush();
      if (item.done) return;
      if (signal) {
        const onAbort = () => {
          if (item.done) return;
          item.done = true;
          queue.splice(queue.indexOf(item), 1);
          depthChanged();
          options.onNotRun?.("client_gone");
          reject(clientGone(signal));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        item.release = () => signal.removeEventListener("abort", onAbort);
      }
      depthChanged();
    });
}

/** The answer to a write whose caller went away: canceled, with the signal's reason for the edge. */
function clientGone(signal: AbortSignal): ApiError {
  return new ApiError("canceled", "the request ended before its write ran; nothing was written", [], {
    cause: signal.reason,
  });
}
