import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { type CallStats, openCallWindow } from "./call-stats.js";
import { type CpuUse, openCpuWindow } from "./cpu-window.js";
import type { EventObserver } from "./event-observer.js";
import { log } from "./log.js";
import { everySecond, IDLE_TIMEOUT_MS, rateMeter } from "./progress.js";
import { type RateResult, rateResult } from "./rate-result.js";
import type { Pipeline } from "./services.js";
import type { Settings } from "./settings.js";
import type { Workload } from "./workload.js";

export interface EndToEndResult extends RateResult {
  /** Scheduler process start → group joined (or settled, when fed): not part of the measured time. */
  startupS: number;
  /** Events published before the clock started (the warm-up), not counted in messages. */
  warmupEvents: number;
  /** When the last row was written, from the clock start (the relay's tail is the rest). */
  rowsDoneS: number;
  lost: number;
  duplicates: number;
  rows: number;
  cpu: CpuUse | undefined;
  calls: CallStats | undefined;
}

/**
 * The workload through the real pipeline, until every expected event is on the persisted topic
 * and the row count matches. Preloaded (no `feed`): the clock starts when the scheduler joins its
 * group. With `feed` (several schedulers): once the group has settled, so that no rebalance is
 * timed, `feed` produces the workload while the clock runs. The clock and the CPU window start
 * once `warmupEvents` events are out (lazy loading and JIT warm-up are start-up, not per-message
 * costs); the rate and CPU are those of the remaining events.
 */
export async function measureEndToEnd(
  settings: Settings,
  pipeline: Pipeline,
  observer: EventObserver,
  databaseUrl: string,
  workload: Workload,
  expected: ReadonlyMap<string, number>,
  warmupEvents: number,
  feed?: () => Promise<unknown>,
): Promise<EndToEndResult> {
  const spawned = Date.now();
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const ready = await Promise.race([feed ? pipeline.settled : pipeline.joined, pipeline.failed]);
    const feeding = feed?.();
    feeding?.catch(() => {});
    const warmup = Math.min(warmupEvents, workload.expectedEvents - 1);
    while (observer.total() < warmup) await Promise.race([delay(5), pipeline.failed]);
    const warmedUp = observer.total();
    // Opened once the services have started and warmed up: neither is the job.
    const cpu = await openCpuWindow(pipeline.services);
    const schedulers = pipeline.services.filter((service) => service.role === "scheduler").length;
    const calls = await openCallWindow(
      pipeline,
      Math.min(settings.partitions, schedulers * settings.partitionsConcurrently),
    );
    const startMs = warmup > 0 ? Date.now() : feed ? Date.now() : ready;
    log(
      `[e2e] ${feed ? "group settled" : "scheduler joined its group"} ${((ready - spawned) / 1000).toFixed(1)} s after start; ` +
        `clock started${warmup > 0 ? ` after ${warmedUp} warm-up events` : ""}`,
    );
    const target = workload.expectedEvents;
    let seen = 0;
    let missing = target;
    const meter = rateMeter();
    const stop = everySecond(
      () => `[e2e] ${Math.round((Date.now() - startMs) / 1000)}s events ${seen}/${target} (${meter(seen)}/s)`,
    );
    let lastSeen = -1;
    let lastChange = Date.now();
    try {
      for (;;) {
        seen = observer.total();
        if (seen >= target) {
          missing = observer.missing(expected);
          if (missing === 0) break;
        }
        if (seen !== lastSeen) {
          lastSeen = seen;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > IDLE_TIMEOUT_MS) {
          missing = observer.missing(expected);
          log(`[e2e] no new event for ${IDLE_TIMEOUT_MS} ms; ${missing} expected events missing`);
          break;
        }
        await Promise.race([delay(5), pipeline.failed]);
      }
    } finally {
      stop();
    }
    await feeding;
    let rows = await countRows(db);
    while (rows < workload.distinctIds && missing === 0) {
      // Events follow their rows' commit, so this is a check rather than a wait.
      await delay(10);
      rows = await countRows(db);
    }
    const endMs = Date.now();
    const lastRow = await db.query<{ ms: string | null }>(
      "SELECT (extract(epoch FROM max(updated_at)) * 1000)::int8::text AS ms FROM products",
    );
    const seconds = (endMs - startMs) / 1000;
    return {
      ...rateResult(target - missing - warmedUp, seconds),
      startupS: (ready - spawned) / 1000,
      warmupEvents: warmedUp,
      rowsDoneS: (Number(lastRow.rows[0]?.ms ?? endMs) - startMs) / 1000,
      lost: missing,
      duplicates: observer.duplicates(expected),
      rows,
      cpu: await cpu(),
      calls: await calls(),
    };
  } finally {
    await db.end();
  }
}

export async function countRows(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM products");
  return rows[0]?.n ?? 0;
}
