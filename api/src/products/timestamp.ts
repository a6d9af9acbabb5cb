import type { Timestamp } from "@bufbuild/protobuf/wkt";

/**
 * RFC 3339 timestamps, plus the original producer's form without an offset
 * ("2024-06-29T00:30:03.254878"), which is read as UTC.
 */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;

/** Bounds of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. */
export const MIN_TIMESTAMP_SECONDS = -62135596800n;
export const MAX_TIMESTAMP_SECONDS = 253402300799n;

export function parseTimestamp(text: string): Timestamp | undefined {
  return parseUtcFast(text) ?? parseWithOffset(text);
}

/** Digits of text from start to end as a number, or -1 if any is not a digit. */
function digitsAt(text: string, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** UTC suffixes PostgreSQL and clients write: its text output (+00), its JSON (+00:00), Z, none. */
const UTC_SUFFIXES = new Set(["", "Z", "z", "+00", "+00:00"]);

/**
 * The common case without a regex: UTC, as every timestamp read back from the database is (each
 * row a write returns and each event the relay publishes hold three). undefined means "not this
 * form", not "invalid": parseWithOffset then decides.
 */
function parseUtcFast(text: string): Timestamp | undefined {
  if (text.length < 19 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) return undefined;
  const separator = text[10];
  if (separator !== "T" && separator !== "t" && separator !== " ") return undefined;
  if (text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return undefined;
  let end = 19;
  let nanos = 0;
  if (text.charCodeAt(19) === 46) {
    end = 20;
    while (end < text.length && end < 29 && text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end++;
    if (end === 20) return undefined;
    nanos = digitsAt(text, 20, end) * 10 ** (29 - end);
  }
  if (!UTC_SUFFIXES.has(text.slice(end))) return undefined;
  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 7);
  const day = digitsAt(text, 8, 10);
  const hour = digitsAt(text, 11, 13);
  const minute = digitsAt(text, 14, 16);
  const second = digitsAt(text, 17, 19);
  if (Math.min(year, month, day, hour, minute, second) < 0) return undefined;
  return fromFields(year, month, day, hour, minute, second, 0, nanos);
}

function parseWithOffset(text: string): Timestamp | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s, fraction = "", offset = "Z"] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  let offsetMinutes = 0;
  if (offset !== "Z" && offset !== "z") {
    const sign = offset.startsWith("-") ? -1 : 1;
    const digits = offset.slice(1).replace(":", "");
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2) || "0");
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const nanos = fraction === "" ? 0 : Number(fraction.padEnd(9, "0"));
  return fromFields(year, month, day, hour, minute, second, offsetMinutes, nanos);
}

/** The Timestamp of a calendar date and time at an offset, if the fields make a valid one. */
function fromFields(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  offsetMinutes: number,
  nanos: number,
): Timestamp | undefined {
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  // Arithmetic rather than Date objects: this runs for every timestamp the database returns.
  const epochSeconds = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + (minute - offsetMinutes) * 60 + second;
  if (epochSeconds < Number(MIN_TIMESTAMP_SECONDS) || epochSeconds > Number(MAX_TIMESTAMP_SECONDS)) return undefined;
  return timestamp(BigInt(epochSeconds), nanos);
}

/**
 * A Timestamp as a literal of the generated type (tsc checks its fields): create()'s reflection
 * costs more than the parse on the hot paths that build one per row.
 */
function timestamp(seconds: bigint, nanos: number): Timestamp {
  return { $typeName: "google.protobuf.Timestamp", seconds, nanos };
}

/** Formats as RFC 3339 in UTC with microseconds, the precision PostgreSQL stores. */
export function formatTimestamp(ts: Timestamp): string {
  const date = new Date(Number(ts.seconds) * 1000);
  const micros = String(Math.floor(ts.nanos / 1000)).padStart(6, "0");
  return `${date.toISOString().slice(0, 19)}.${micros}Z`;
}

/** Drops sub-microsecond digits, which PostgreSQL cannot keep. */
export function truncateToMicros(ts: Timestamp): Timestamp {
  return timestamp(ts.seconds, ts.nanos - (ts.nanos % 1000));
}

export function isValidTimestamp(ts: Timestamp): boolean {
  return (
    ts.seconds >= MIN_TIMESTAMP_SECONDS &&
    ts.seconds <= MAX_TIMESTAMP_SECONDS &&
    Number.isInteger(ts.nanos) &&
    ts.nanos >= 0 &&
    ts.nanos <= 999_999_999
  );
}

/** Milliseconds since the epoch, sub-millisecond digits dropped; exact for every valid timestamp. */
export function timestampToMillis(ts: Timestamp): number {
  return Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1_000_000);
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  return month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil), any year. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}
