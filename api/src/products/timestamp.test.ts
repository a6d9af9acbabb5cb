import { expect } from "chai";
import { formatTimestamp, parseTimestamp, truncateToMicros } from "./timestamp.js";

describe("timestamps", () => {
  it("read the original producer's form without offset as UTC", () => {
    const ts = parseTimestamp("2024-06-29T00:30:03.254878");
    expect(ts && formatTimestamp(ts)).to.equal("2024-06-29T00:30:03.254878Z");
  });

  it("read RFC 3339 with Z or an offset", () => {
    expect(formatTimestamp(parseTimestamp("2024-06-29T00:30:03Z")!)).to.equal("2024-06-29T00:30:03.000000Z");
    expect(formatTimestamp(parseTimestamp("2024-06-29T02:30:03.5+02:00")!)).to.equal("2024-06-29T00:30:03.500000Z");
    expect(formatTimestamp(parseTimestamp("2024-06-28T21:30:03-03:00")!)).to.equal("2024-06-29T00:30:03.000000Z");
  });

  it("read PostgreSQL's text output", () => {
    expect(formatTimestamp(parseTimestamp("2024-06-29 00:30:03.254878+00")!)).to.equal("2024-06-29T00:30:03.254878Z");
  });

  it("keep nanoseconds until truncated to PostgreSQL's microseconds", () => {
    const ts = parseTimestamp("2024-06-29T00:30:03.123456789Z")!;
    expect(ts.nanos).to.equal(123456789);
    expect(truncateToMicros(ts).nanos).to.equal(123456000);
  });

  it("reject impossible dates and other forms", () => {
    for (const text of [
      "2024-02-30T00:00:00Z",
      "2023-02-29T00:00:00Z",
      "2024-13-01T00:00:00Z",
      "2024-06-29T24:00:00Z",
      "2024-06-29",
      "yesterday",
      "2024-06-29T00:30:03+2",
      "",
    ]) {
      expect(parseTimestamp(text), text).to.equal(undefined);
    }
    expect(parseTimestamp("2024-02-29T00:00:00Z")).to.not.equal(undefined);
  });

  it("agree with Date's calendar on days from year 1 to 9999, at the bounds of Timestamp", () => {
    const date = new Date(0);
    for (let ms = Date.UTC(1970, 0, 1) - 719_468 * 86_400_000; ms <= Date.UTC(9999, 11, 31); ms += 97.3 * 86_400_000) {
      date.setTime(Math.floor(ms / 1000) * 1000);
      const text = `${String(date.getUTCFullYear()).padStart(4, "0")}${date.toISOString().slice(-20, -5)}Z`;
      const parsed = parseTimestamp(text);
      if (date.getUTCFullYear() < 1) continue;
      expect(parsed && Number(parsed.seconds) * 1000, text).to.equal(date.getTime());
    }
    expect(parseTimestamp("0001-01-01T00:00:00Z")?.seconds).to.equal(-62135596800n);
    expect(parseTimestamp("9999-12-31T23:59:59.999999999Z")?.seconds).to.equal(253402300799n);
    expect(parseTimestamp("0001-01-01T00:00:00+00:01"), "before year 1").to.equal(undefined);
    expect(parseTimestamp("9999-12-31T23:59:59-00:01"), "after year 9999").to.equal(undefined);
  });
});
