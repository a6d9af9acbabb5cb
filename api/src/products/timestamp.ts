import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";

/**
 * RFC 3339 timestamps, plus the original producer's form without an offset
 * ("2024-06-29T00:30:03.254878"), which is read as UTC.
 */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;

/** Bounds of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. */
export const MIN_TIMESTAMP_SECONDS = -62135596800n;
export const MAX_TIMESTAMP_SECONDS = 253402300799n;

export function parseTimestamp(text: string): Timestamp | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s, fraction = "", offset = "Z"] = match;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (offset !== "Z" && offset !== "z") {
    const sign = offset.startsWith("-") ? -1 : 1;
    const digits = offset.slice(1).replace(":", "");
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2) || "0");
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute - offsetMinutes, second, 0);
  const seconds = BigInt(Math.floor(utc.getTime() / 1000));
  if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS) return undefined;
  return create(TimestampSchema, { seconds, nanos: Number(fraction.padEnd(9, "0")) });
}

/** Formats as RFC 3339 in UTC with microseconds, the precision PostgreSQL stores. */
export function formatTimestamp(ts: Timestamp): string {
  const date = new Date(Number(ts.seconds) * 1000);
  const micros = String(Math.floor(ts.nanos / 1000)).padStart(6, "0");
  return `${date.toISOString().slice(0, 19)}.${micros}Z`;
}

/** Drops sub-microsecond digits, which PostgreSQL cannot keep. */
export function truncateToMicros(ts: Timestamp): Timestamp {
  return create(TimestampSchema, { seconds: ts.seconds, nanos: ts.nanos - (ts.nanos % 1000) });
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

function daysInMonth(year: number, month: number): number {
  const lastDay = new Date(0);
  lastDay.setUTCFullYear(year, month, 0);
  return lastDay.getUTCDate();
}
