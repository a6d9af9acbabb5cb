import { ConfigError } from "./env.js";

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
