import { performance } from "node:perf_hooks";
import pg from "pg";
import type { Product } from "#gen/products/v1/product_pb.js";
import { pgTypes } from "../../api/src/db/database.js";
import { splitIntoRounds, UPSERT_STATEMENT, upsertBindings } from "../../api/src/products/product-repository.js";
import { parseRecord } from "../../scheduler/src/message.js";
import { BENCH_POSTGRES_URL } from "../shared/environment.js";
import { migratedDatabase } from "../shared/migrated-database.js";
import { openCpuWindow } from "./cpu-window.js";
import { untilCount } from "./progress.js";
import { type RateResult, rateResult } from "./rate-result.js";
import type { Settings } from "./settings.js";
import type { Workload, WorkRecord } from "./workload.js";

/**
 * The database side alone: the API's prepared UPSERT_STATEMENT (row and outbox event in one
 * statement) on the same records, in the chunks the scheduler would send (API_BATCH_SIZE records
 * of one partition, in offset order), PARTITIONS_CONSUMED_CONCURRENTLY partitions at a time, each
 * chunk split into rounds and bound by the product repository's own functions.
 */
export async function measurePgCeiling(
  workload: Workload,
  settings: Settings,
): Promise<RateResult & { concurrency: number }> {
  const database = await migratedDatabase(BENCH_POSTGRES_URL, "products_bench_pg");
  try {
    const concurrency = Math.min(settings.partitionsConcurrently, settings.partitions);
    const pool = new pg.Pool({
      connectionString: database.url,
      max: concurrency,
      options: "-c TimeZone=UTC",
      types: pgTypes,
    });
    // A failed chunk ends the phase while others are in flight; the drop then ends their sessions,
    // which must not crash the bench and hide the first error.
    pool.on("error", () => {});
    try {
      // Connections opened before the clock starts, as the API's pool is warm.
      const clients = await Promise.all(Array.from({ length: concurrency }, () => pool.connect()));
      for (const client of clients) client.release();
      const streams = Array.from({ length: settings.partitions }, (_, partition) =>
        toProducts(workload.records.filter((record) => record.partition === partition)),
      );
      let done = 0;
      const cpu = await openCpuWindow();
      const started = performance.now();
      const progress = untilCount("pg upsert", () => done, workload.records.length);
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let stream = streams[next++]; stream !== undefined; stream = streams[next++]) {
            for (let index = 0; index < stream.length; index += settings.apiBatchSize) {
              const chunk = stream.slice(index, index + settings.apiBatchSize);
              await upsertChunk(pool, chunk);
              done += chunk.length;
            }
          }
        }),
      );
      await progress;
      const seconds = (performance.now() - started) / 1000;
      const { rows } = await pool.query<{ products: number; events: number }>(
        "SELECT (SELECT count(*) FROM products)::int AS products, (SELECT count(*) FROM product_events)::int AS events",
      );
      const [counts] = rows;
      if (counts?.products !== workload.distinctIds || counts.events !== workload.expectedEvents) {
        throw new Error(
          `pg ceiling wrote ${counts?.products} rows and ${counts?.events} events; expected ${workload.distinctIds} and ${workload.expectedEvents}`,
        );
      }
      return { ...rateResult(workload.records.length, seconds, await cpu()), concurrency };
    } finally {
      await pool.end();
    }
  } finally {
    await database.drop();
  }
}

/** The records as the scheduler's own parser turns them into the products it sends the API. */
function toProducts(records: WorkRecord[]): Product[] {
  return records.map((record) => {
    const parsed = parseRecord({ value: Buffer.from(record.value), timestamp: String(record.timestamp) });
    if (!parsed.ok) throw new Error(`workload record ${record.product.productId}: ${parsed.error.message}`);
    return parsed.product;
  });
}

/** One chunk as the product repository writes it: one statement per round, one transaction if several. */
async function upsertChunk(pool: pg.Pool, chunk: Product[]): Promise<void> {
  const rounds = splitIntoRounds(chunk.map((product) => ({ product })));
  const [only] = rounds;
  if (only && rounds.length === 1) {
    await pool.query({ ...UPSERT_STATEMENT, values: upsertBindings(only) });
    return;
  }
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    for (const round of rounds) await client.query({ ...UPSERT_STATEMENT, values: upsertBindings(round) });
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
