/**
 * Reads configuration from environment variables. Every problem is collected, so a bad start
 * reports all invalid variables at once, each with the form it expects.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

export type Env = Record<string, string | undefined>;

export function createEnvReader(env: Env) {
  const problems: string[] = [];
  const raw = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === "" ? undefined : value;
  };
  return {
    string(name: string, fallback: string): string {
      return raw(name) ?? fallback;
    },
    optional(name: string): string | undefined {
      return raw(name);
    },
    int(name: string, fallback: number, min: number, max: number): number {
      const value = raw(name);
      if (value === undefined) return fallback;
      const n = Number(value);
      if (!/^-?\d+$/.test(value) || n < min || n > max) {
        problems.push(`${name}=${JSON.stringify(value)}: expected an integer from ${min} to ${max}`);
        return fallback;
      }
      return n;
    },
    bool(name: string, fallback: boolean): boolean {
      const value = raw(name)?.toLowerCase();
      if (value === undefined) return fallback;
      if (["1", "true", "yes", "on"].includes(value)) return true;
      if (["0", "false", "no", "off"].includes(value)) return false;
      problems.push(`${name}=${JSON.stringify(value)}: expected true or false`);
      return fallback;
    },
    oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
      const value = raw(name);
      if (value === undefined) return fallback;
      if (!(allowed as readonly string[]).includes(value)) {
        problems.push(`${name}=${JSON.stringify(value)}: expected one of ${allowed.join(", ")}`);
        return fallback;
      }
      return value as T;
    },
    /** Records a problem found by the caller's own check. */
    problem(message: string): void {
      problems.push(message);
    },
    /** Throws a ConfigError naming every problem seen so far. */
    done(): void {
      if (problems.length > 0) throw new ConfigError(problems);
    },
  };
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
