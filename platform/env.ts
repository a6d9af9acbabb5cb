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

/** One environment variable a config loader reads, and the value it takes when unset. */
export interface ConfigVariable {
  name: string;
  /** Undefined: the setting is off or derived when the variable is unset. */
  default: string | undefined;
}

const READ_LOG = Symbol("config variables read");
type RecordingEnv = Env & { [READ_LOG]?: ConfigVariable[] };

/**
 * The variables `load` reads, in the order it reads them, with their defaults: the single source
 * for documentation and for checks that a deployment sets only variables that exist.
 */
export function configVariables(load: (env: Env) => unknown): ConfigVariable[] {
  const log: ConfigVariable[] = [];
  load({ [READ_LOG]: log } as RecordingEnv);
  return log.filter((variable, index) => log.findIndex((other) => other.name === variable.name) === index);
}

export function createEnvReader(env: Env) {
  const problems: string[] = [];
  const readLog = (env as RecordingEnv)[READ_LOG];
  const raw = (name: string, fallback?: string | number | boolean): string | undefined => {
    readLog?.push({ name, default: fallback === undefined ? undefined : String(fallback) });
    const value = env[name]?.trim();
    return value === "" ? undefined : value;
  };
  return {
    string(name: string, fallback: string): string {
      return raw(name, fallback) ?? fallback;
    },
    optional(name: string): string | undefined {
      return raw(name);
    },
    int(name: string, fallback: number, min: number, max: number): number {
      const value = raw(name, fallback);
      if (value === undefined) return fallback;
      const n = Number(value);
      if (!/^-?\d+$/.test(value) || n < min || n > max) {
        problems.push(`${name}=${JSON.stringify(value)}: expected an integer from ${min} to ${max}`);
        return fallback;
      }
      return n;
    },
    bool(name: string, fallback: boolean): boolean {
      const value = raw(name, fallback)?.toLowerCase();
      if (value === undefined) return fallback;
      if (["1", "true", "yes", "on"].includes(value)) return true;
      if (["0", "false", "no", "off"].includes(value)) return false;
      problems.push(`${name}=${JSON.stringify(value)}: expected true or false`);
      return fallback;
    },
    oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
      const value = raw(name, fallback);
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

/** `auto`: pretty on a terminal, JSON otherwise (platform/log-format.ts). */
export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
