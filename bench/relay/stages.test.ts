import { expect } from "chai";
import { runScopedDatabasePrefix, testDatabaseUrl } from "../../test/support/env.js";
import { relayStageLines, relaySummaryLine } from "./report.js";
import { measureRelayStages, type RelayStagesResult } from "./stages.js";

describe("bench:relay, the relay's CPU per event by stage @integration", function () {
  this.timeout(60_000);
  let result: RelayStagesResult;
  const batches: number[] = [];

  before(async () => {
    result = await measureRelayStages({
      records: 1000,
      batchSize: 200,
      maxRequestBytes: 32 * 1024,
      partitions: 3,
      warmupBatches: 1,
      repeat: 2,
      databaseServerUrl: testDatabaseUrl(),
      databasePrefix: runScopedDatabasePrefix("products_bench_relay"),
      onBatch: (batch) => batches.push(batch),
    });
  });

  it("reads, encodes and deletes every event of the workload, one batch at a time, leaving the warm-up out", () => {
    // 1,000 records are about 900 distinct products plus updates, each change an event.
    expect(result.events).to.be.within(800, 1000);
    expect(result.batches).to.be.at.least(Math.ceil(result.events / 200));
    // 200 records of about 400 bytes: three requests of at most 32 KiB each.
    expect(result.requests).to.be.at.least(result.batches * 2);
    expect(batches).to.deep.equal(Array.from({ length: result.batches }, (_, i) => i + 1));
    expect(result.measuredEvents)
      .to.be.lessThan(result.events)
      .and.greaterThan(result.events - 201);
  });

  it("gives each stage's CPU in µs per event, and the relay's total is the sum of its stages", () => {
    const cost = result.perEvent;
    const stages = [cost.read, cost.event, cost.protobuf, cost.grouping, cost.kafkaEncode, cost.delete];
    for (const value of [...stages, cost.kafkaEncodeWithoutHeaders]) {
      // µs, not ms or ns: no stage costs under a tenth of a µs or more than 10 ms per event.
      expect(value).to.be.a("number").greaterThan(0.1).and.lessThan(10_000);
    }
    expect(cost.client).to.be.closeTo(cost.read + cost.event + cost.grouping + cost.kafkaEncode + cost.delete, 1e-6);
    // A record of this workload: key, protobuf value and three headers, over 200 bytes.
    expect(result.bytesPerRecord).to.be.within(200, 1000);
  });

  it("prints a table and a summary line with every field", () => {
    expect(relayStageLines(result).join("\n")).to.include("kafkajs encoding").and.include("without the three headers");
    const line = relaySummaryLine(result);
    expect(line).to.match(/^bench:relay events=\d+ /);
    for (const key of [
      "read_us",
      "event_us",
      "protobuf_us",
      "grouping_us",
      "kafka_encode_us",
      "kafka_encode_no_headers_us",
      "delete_us",
      "client_us",
      "pg_us",
    ]) {
      expect(line).to.match(new RegExp(` ${key}=(\\d+\\.\\d{2}|na)( |$)`));
    }
  });
});
