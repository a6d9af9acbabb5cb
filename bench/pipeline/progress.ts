import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { log } from "./log.js";

/** A phase that sees no new event for this long is over; what is missing by then is lost. */
export const IDLE_TIMEOUT_MS = 30_000;

/** Prints `line()` to stderr every second until the returned function is called. */
export function everySecond(line: () => string): () => void {
  const timer = setInterval(() => log(line()), 1000);
  return () => clearInterval(timer);
}

/** Counts done over time, for the "n/s" of progress lines. */
export function rateMeter(): (done: number) => number {
  let last = { at: performance.now(), done: 0 };
  return (done) => {
    const now = performance.now();
    const rate = ((done - last.done) * 1000) / Math.max(1, now - last.at);
    last = { at: now, done };
    return Math.round(rate);
  };
}

/**
 * Resolves with performance.now() once `count()` reaches `total`; progress to stderr meanwhile.
 * Throws when the count has not moved for IDLE_TIMEOUT_MS, or when `failed` rejects.
 */
export async function untilCount(
  label: string,
  count: () => number,
  total: number,
  failed: Promise<never> = new Promise(() => {}),
): Promise<number> {
  const meter = rateMeter();
  const stop = everySecond(() => `[${label}] ${count()}/${total} (${meter(count())}/s)`);
  let lastCount = -1;
  let lastChange = performance.now();
  try {
    for (;;) {
      const now = performance.now();
      const n = count();
      if (n >= total) return now;
      if (n !== lastCount) {
        lastCount = n;
        lastChange = now;
      } else if (now - lastChange > IDLE_TIMEOUT_MS) {
        throw new Error(`${label}: stuck at ${n}/${total} for ${IDLE_TIMEOUT_MS} ms`);
      }
      await Promise.race([delay(5), failed]);
    }
  } finally {
    stop();
  }
}
