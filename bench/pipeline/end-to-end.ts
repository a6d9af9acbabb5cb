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
  /** Scheduler process start → group joined (not part of the measured time). */
  startupS: number;
  /** When the last row was written, from the clock start (the relay's tail is the rest). */
  rowsDoneS: number;
  lost: number;
  duplicates: number;
  rows: number;
  cpu: CpuUse | undefined;
  calls: CallStats | undefined;
}

/**
 * The preloaded workload through the real pipeline: from the scheduler joining its group until
 * every expected event is on the persisted topic and the row count matches.
 */
export async function measureEndToEnd(
  settings: Settings,
  pipeline: Pipeline,
  observer: EventObserver,
  databaseUrl: string,
  workload: Workload,
  expected: ReadonlyMap<string, number>,
): Promise<EndToEndResult> {
  const spawned = Date.now();
  const cpu = await openCpuWindow(pipeline.pids);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const startMs = await Promise.race([pipeline.joined, pipeline.failed]);
    const calls = await openCallWindow(pipeline, Math.min(settings.partitions, settings.partitionsConcurrently));
    log(`[e2e] scheduler joined its group ${((startMs - spawned) / 1000).toFixed(1)} s after start; clock started`);
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
      ...rateResult(target - missing, seconds),
      startupS: (startMs - spawned) / 1000,
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
