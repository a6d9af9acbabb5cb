/**
 * Catch-up: how long after a fault ends (the crashed process or the broker is back) the pipeline
 * processes at its normal rate again. Pure, from progress samples taken during the run.
 */

/** One look at a counter: work finished so far, and work waiting. Undefined when the look failed. */
export interface ProgressSample {
  /** Epoch ms. */
  t: number;
  /** Cumulative, e.g. input records committed, or events on the persisted topic. */
  done: number | undefined;
  /** Work waiting, e.g. input records not yet committed, or outbox rows. */
  backlog: number | undefined;
}

/** The span over which a rate is measured. */
export const RATE_WINDOW_MS = 1_000;
/** How long the counter must keep up for the catch-up to be over: a backlog still building up is not caught up. */
export const STABLE_MS = 5_000;

/**
 * Seconds from `backAt` to the first sample at or after it from which, for STABLE_MS, every sample
 * keeps up: it has at most RATE_WINDOW_MS worth of offered work waiting, or it advances at once
 * and at half the offered rate or more over the next RATE_WINDOW_MS (working off a backlog).
 * Undefined if that never happens.
 *
 * The offered rate is what the producer sends in the steady phase; once it has stopped, a drained
 * backlog is what "caught up" means.
 */
export function catchUpSeconds(
  samples: readonly ProgressSample[],
  backAt: number,
  offeredPerSecond: number,
): number | undefined {
  const usable = samples.filter((s) => s.done !== undefined && s.backlog !== undefined) as {
    t: number;
    done: number;
    backlog: number;
  }[];
  const keepsUp = Math.max(1, (offeredPerSecond * RATE_WINDOW_MS) / 1000);
  const ok = usable.map((start, i) => {
    if (start.backlog <= keepsUp) return true;
    const step = usable[i + 1];
    const end = usable.slice(i + 1).find((s) => s.t >= start.t + RATE_WINDOW_MS);
    if (!step || !end || step.done <= start.done) return false;
    const rate = ((end.done - start.done) * 1000) / (end.t - start.t);
    return rate >= offeredPerSecond / 2;
  });
  for (let i = 0; i < usable.length; i++) {
    const start = usable[i] as { t: number };
    if (start.t < backAt) continue;
    let stable = true;
    for (let j = i; j < usable.length && (usable[j] as { t: number }).t <= start.t + STABLE_MS; j++) {
      if (!ok[j]) {
        stable = false;
        break;
      }
    }
    if (stable) return (start.t - backAt) / 1000;
  }
  return undefined;
}
