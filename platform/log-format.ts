import { inspect } from "node:util";
import type { LogFormat } from "./env.js";

/**
 * Log lines for a person: `12:04:05.123 INFO  api       api listening port=8000 host=0.0.0.0`,
 * then any error stack or multi-line text indented below. The JSON record stays the source: this
 * only renders it (platform/logger.ts for a service's own output, scripts/start.ts for its children's).
 */
export interface PrettyOptions {
  /** ANSI colours (levels, service, field names). */
  color: boolean;
}

/** `auto` is pretty on a terminal, JSON otherwise (a file, a pipe, a log collector). */
export function resolveLogFormat(format: LogFormat, stream: { isTTY?: boolean } = process.stdout): "json" | "pretty" {
  if (format !== "auto") return format;
  return stream.isTTY === true ? "pretty" : "json";
}

/** Whether a stream takes colours: a terminal that has them, NO_COLOR / FORCE_COLOR honoured. */
export function streamHasColors(stream: NodeJS.WriteStream = process.stdout): boolean {
  return stream.isTTY === true && typeof stream.hasColors === "function" && stream.hasColors();
}

const LEVEL_NAMES: Record<number, string> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};
const LEVEL_COLORS: Record<string, string> = {
  trace: "90",
  debug: "90",
  info: "32",
  warn: "33",
  error: "31",
  fatal: "1;31",
};
const SERVICE_COLORS = ["36", "35", "34", "33", "32", "96", "95"];
/** Fields shown in the line's fixed columns, or not at all (pino's defaults, when configured). */
const COLUMNS = new Set(["time", "level", "service", "msg", "pid", "hostname"]);
const SERVICE_WIDTH = 9;

function paint(options: PrettyOptions, code: string, text: string): string {
  return options.color ? `\u001b[${code}m${text}\u001b[0m` : text;
}

function serviceColor(service: string): string {
  let hash = 0;
  for (const char of service) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return SERVICE_COLORS[hash % SERVICE_COLORS.length] as string;
}

function clock(time: unknown): string {
  const date = typeof time === "string" || typeof time === "number" ? new Date(time) : new Date();
  const valid = Number.isNaN(date.getTime()) ? new Date() : date;
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(valid.getHours())}:${pad(valid.getMinutes())}:${pad(valid.getSeconds())}.${pad(valid.getMilliseconds(), 3)}`;
}

function levelName(level: unknown): string {
  if (typeof level === "number") return LEVEL_NAMES[level] ?? String(level);
  return typeof level === "string" ? level : "";
}

/** A value as key=value text: bare when unambiguous, JSON-quoted otherwise. */
function scalar(value: unknown): string {
  if (typeof value === "string") return /^[^\s="\\]+$/.test(value) ? value : JSON.stringify(value);
  if (value === undefined) return "undefined";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return inspect(value, { breakLength: Number.POSITIVE_INFINITY });
    }
  }
  return String(value);
}

/** An error as pino serialises it: {type, message, stack, ...own fields}. */
function isSerialisedError(value: unknown): value is { stack: string; type?: string; message?: string } {
  return typeof value === "object" && value !== null && typeof (value as { stack?: unknown }).stack === "string";
}

function indent(text: string): string {
  return `    ${text.replace(/\n/g, "\n    ")}`;
}

/** One log record (a parsed pino line) as text, without a trailing newline. */
export function formatRecord(record: Record<string, unknown>, options: PrettyOptions): string {
  const level = levelName(record.level);
  const service = typeof record.service === "string" ? record.service : "";
  const message = typeof record.msg === "string" ? record.msg : record.msg === undefined ? "" : scalar(record.msg);
  const fields: string[] = [];
  const blocks: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (COLUMNS.has(key)) continue;
    if (isSerialisedError(value)) {
      const { stack, type: _type, message: _message, ...extra } = value as Record<string, unknown>;
      for (const [name, field] of Object.entries(extra)) {
        fields.push(`${paint(options, "2", `${key}.${name}=`)}${scalar(field)}`);
      }
      blocks.push(indent(String(stack)));
    } else if (typeof value === "string" && value.includes("\n")) {
      fields.push(paint(options, "2", `${key}=↓`));
      blocks.push(indent(value.replace(/\n+$/, "")));
    } else {
      fields.push(`${paint(options, "2", `${key}=`)}${scalar(value)}`);
    }
  }
  const head = [
    paint(options, "2", clock(record.time)),
    paint(options, LEVEL_COLORS[level] ?? "0", level.toUpperCase().padEnd(5)),
    paint(options, serviceColor(service), service.padEnd(SERVICE_WIDTH)),
    message,
    ...fields,
  ]
    .filter((part, index) => part !== "" || index < 3)
    .join(" ");
  return [head.trimEnd(), ...blocks].join("\n");
}

/**
 * A line of output as text for a person: a JSON log record is formatted; anything else (a tool's
 * plain text, a stack trace on stderr) is shown as it is, in the columns of `service`.
 */
export function formatLine(line: string, options: PrettyOptions & { service: string }): string {
  const record = parseRecord(line);
  if (record !== undefined) return formatRecord(record, options);
  return formatRecord({ service: options.service, msg: line }, options);
}

/** The record of a pino JSON line; undefined for anything else. */
export function parseRecord(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === "object" && value !== null && !Array.isArray(value) && "level" in value) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Not JSON: shown as text.
  }
  return undefined;
}
