import { type DestinationStream, destination, type Logger, pino } from "pino";
import type { LogFormat, LogLevel } from "./env.js";
import { formatRecord, parseRecord, resolveLogFormat, streamHasColors } from "./log-format.js";

export type { Logger };

/**
 * Logs on stdout with the service name on each record: JSON lines, one object per line, or (pretty;
 * `auto` on a terminal) the same records formatted for a person by platform/log-format.ts.
 */
export function createLogger(service: string, level: LogLevel, format: LogFormat = "json"): Logger {
  const options = {
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (resolveLogFormat(format) === "json") return pino(options);
  return pino(options, prettyDestination(streamHasColors()));
}

/** pino's JSON lines, rendered; written synchronously like pino's own stdout, so nothing is lost on exit. */
function prettyDestination(color: boolean): DestinationStream {
  const stdout = destination({ dest: 1, sync: true });
  return {
    write(chunk: string) {
      let text = "";
      for (const line of chunk.split("\n")) {
        if (line === "") continue;
        const record = parseRecord(line);
        text += `${record ? formatRecord(record, { color }) : line}\n`;
      }
      stdout.write(text);
    },
  };
}
