import fs from "node:fs";

/**
 * For processes `npm start` runs: their stdout and stderr are pipes that npm start reads. If it
 * dies, writes fail with EPIPE, and pino's synchronous destination retries a failed write forever
 * (sonic-boom's flushSync), so the process would hang instead of stopping. With nobody left to
 * read, the output is dropped.
 */
export function dropOutputWhenReaderIsGone(): void {
  const writeSync = fs.writeSync;
  const guarded = ((fd: number, ...rest: unknown[]) => {
    try {
      return (writeSync as (...args: unknown[]) => number)(fd, ...rest);
    } catch (error) {
      if ((fd !== 1 && fd !== 2) || (error as NodeJS.ErrnoException).code !== "EPIPE") throw error;
      // As if written: (fd, string, …) or (fd, buffer, offset?, length?, …).
      const [data, , length] = rest;
      if (typeof data === "string") return Buffer.byteLength(data);
      return typeof length === "number" ? length : (data as ArrayBufferView).byteLength;
    }
  }) as typeof fs.writeSync;
  fs.writeSync = guarded;
  // The streams of process.stdout/stderr report EPIPE as an error event: not a reason to crash.
  process.stdout.on("error", () => {});
  process.stderr.on("error", () => {});
}
