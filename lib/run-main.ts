import { ConfigError } from "./env.js";
import type { Logger } from "./logger.js";

/**
 * Runs a service's main and turns a failed start into a clear message and a non-zero exit, never
 * a stack trace for a configuration mistake.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`${name}: ${error.message}\n`);
    } else {
      process.stderr.write(
        `${name}: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    process.exit(1);
  });
}

/**
 * On the first SIGTERM or SIGINT, runs stop() and exits 0 (1 if it fails). Past timeoutMs the
 * process exits 1 anyway: whatever was not finished is redone by the next owner (uncommitted
 * offsets, unpublished outbox rows), so a hung shutdown never blocks a deploy.
 */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger, timeoutMs: number): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutdown requested");
    setTimeout(() => {
      logger.error({ timeoutMs }, "shutdown timed out");
      process.exit(1);
    }, timeoutMs).unref();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
