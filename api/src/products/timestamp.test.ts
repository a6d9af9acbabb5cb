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
});
