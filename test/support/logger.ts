import { LOG_LEVELS, type LogLevel } from "#platform/env.js";
import { createLogger, type Logger } from "#platform/logger.js";

/** TEST_LOG_LEVEL, silent unless set; read when used, like every test setting (see env.ts). */
export function testLogLevel(): LogLevel {
  const level = process.env.TEST_LOG_LEVEL || "silent";
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`TEST_LOG_LEVEL=${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(", ")}`);
  }
  return level as LogLevel;
}

/** A logger for what a test starts (services, clients), at TEST_LOG_LEVEL. */
export function testLogger(service: string): Logger {
  return createLogger(service, testLogLevel());
}
