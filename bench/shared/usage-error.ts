import { type ParseArgsConfig, parseArgs } from "node:util";
import { describeError } from "#platform/run-main.js";

/** A bad command line: reported as its message alone, without a stack. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** parseArgs with no positionals and unknown flags refused, its complaints as UsageErrors. */
export function parseArgsOrThrowUsage<T extends ParseArgsConfig["options"]>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** A flag's value as a whole number of at least `min`, or a UsageError naming the flag. */
export function integerFlag(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || !Number.isSafeInteger(n)) {
    throw new UsageError(
      `--${flag}=${value}: expected ${min === 1 ? "a positive integer" : `an integer of at least ${min}`}`,
    );
  }
  return n;
}

/** What a bench prints when it fails: the usage message, or the error with its causes. */
export function failureText(error: unknown): string {
  return error instanceof UsageError ? error.message : describeError(error);
}
