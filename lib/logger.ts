import { type Logger, pino } from "pino";
import type { LogLevel } from "./env.js";

export type { Logger };

/** Structured JSON logs on stdout, one object per line, with the service name on each. */
export function createLogger(service: string, level: LogLevel): Logger {
  return pino({
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
