/** A wait that ran out: callers tell it from the failure of the work itself. */
export class TimeoutError extends Error {
  override name = "TimeoutError";
}

/**
 * Settles as `promise` does, or rejects with a TimeoutError carrying `message` after timeoutMs.
 * The work is not stopped (a promise cannot be): the caller cleans up what it started.
 */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(message)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
