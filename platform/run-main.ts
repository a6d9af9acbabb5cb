import { readFileSync } from "node:fs";
import { inspect } from "node:util";
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
      process.stderr.write(`${name}: failed to start: ${describeError(error)}\n`);
    }
    process.exit(1);
  });
}

/**
 * Whatever was thrown, as text for a person: an Error's stack and its causes, the errors of an
 * AggregateError, and a readable form of anything else (a bare `undefined` rejection included).
 */
export function describeError(error: unknown, depth = 0): string {
  if (depth > 5) return "…";
  if (!(error instanceof Error)) {
    if (error === undefined || error === null) return `no error given (rejected with ${String(error)})`;
    return typeof error === "string" ? error : inspect(error, { depth: 3, breakLength: Number.POSITIVE_INFINITY });
  }
  let text = error.stack ?? `${error.name}: ${error.message}`;
  // Some errors (e.g. a refused connection of pg) have an empty message: their fields say what happened.
  if (error.message === "" && Object.keys(error).length > 0) {
    const fields = inspect({ ...error }, { depth: 2, breakLength: Number.POSITIVE_INFINITY });
    const newline = text.indexOf("\n");
    text = newline < 0 ? `${text} ${fields}` : `${text.slice(0, newline)} ${fields}${text.slice(newline)}`;
  }
  if (error instanceof AggregateError) {
    for (const inner of error.errors) text += `\n  - ${describeError(inner, depth + 1).replaceAll("\n", "\n    ")}`;
  }
  if (error.cause !== undefined) text += `\ncaused by: ${describeError(error.cause, depth + 1)}`;
  return text;
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

/**
 * Whether a process with this pid exists (EPERM: it does, owned by another user, e.g. "postgres").
 * A zombie counts as gone: it holds no port or lock, its parent merely has not reaped it yet (as
 * after a SIGKILL); /proc tells, where there is one.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch (error) {
    // No /proc (not Linux): kill(0) has answered. Gone between the two calls: ENOENT.
    return (error as NodeJS.ErrnoException).code !== "ENOENT";
  }
}
