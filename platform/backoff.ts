/**
 * Exponential backoff with full jitter: a random delay from 0 up to min(max, initial·2^(attempt-1)).
 * Full jitter spreads the retries of many partitions and instances after a shared outage, so the
 * API is not hit by all of them at the same moment when it returns.
 */
export function backoffDelay(
  attempt: number,
  options: { initialDelayMs: number; maxDelayMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(random() * ceiling);
}

/** Resolves after ms, or at once when the signal aborts (never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
