import { ApiError } from "../errors.js";
import type { ProductWrite, WriteResult } from "./product-repository.js";

export interface WriteCoalescerOptions {
  /** Upsert statements allowed in flight at once; writes arriving while all are busy wait and share the next one. */
  maxInFlight: number;
  /** Most products in one statement. */
  maxBatch: number;
}

type Upsert = (writes: readonly ProductWrite[]) => Promise<WriteResult[]>;

interface Pending {
  write: ProductWrite;
  resolve: (result: WriteResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for single-product writes: while `maxInFlight` upserts are running, new writes
 * queue, and the next statement takes all of them at once. An idle server writes at once, with no
 * added delay; a busy one turns many small transactions into a few multi-row ones, which is what
 * PostgreSQL does best. Each caller still gets its own result; a batch that fails for a reason
 * other than the database being unavailable is retried one product at a time, so one bad write
 * never fails the others.
 */
export function createWriteCoalescer(
  upsert: Upsert,
  options: WriteCoalescerOptions,
): (write: ProductWrite) => Promise<WriteResult> {
  const queue: Pending[] = [];
  let inFlight = 0;

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
    while (inFlight < options.maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, options.maxBatch);
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
  };

  return (write) =>
    new Promise<WriteResult>((resolve, reject) => {
      queue.push({ write, resolve, reject });
      flush();
    });
}
