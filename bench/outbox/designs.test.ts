import { expect } from "chai";
import { UPSERT_SQL } from "../../api/src/products/product-repository.js";
import { testDatabaseUrl } from "../../test/support/env.js";
import {
  designUpsertSql,
  measureOutboxDesign,
  OUTBOX_DESIGNS,
  type OutboxDesignCost,
  pgoutputMessageContent,
  workloadWrites,
} from "./designs.js";
import { serverFacts, startLogicalServer } from "./logical-server.js";
import { outboxSummaryLine, outboxTableLines, summarise } from "./report.js";

/** A pgoutput v1 Message change as PostgreSQL sends it: 'M', flags, LSN, prefix\0, length, content. */
function messageChange(prefix: string, content: string): Buffer {
  const body = Buffer.from(content);
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length);
  return Buffer.concat([
    Buffer.from("M"),
    Buffer.from([1]),
    Buffer.alloc(8, 7),
    Buffer.from(`${prefix}\0`),
    length,
    body,
  ]);
}

describe("bench:outbox, the designs of the write → event path", () => {
  describe("their statements, derived from the production upsert", () => {
    it("keeps the production statement for outbox and the same write for every design", () => {
      expect(designUpsertSql("outbox")).to.equal(UPSERT_SQL);
      const written = UPSERT_SQL.slice(0, UPSERT_SQL.indexOf("), outbox AS ("));
      for (const design of OUTBOX_DESIGNS) expect(designUpsertSql(design).startsWith(written), design).to.equal(true);
    });

    it("writes the event as the design says, and only so", () => {
      expect(designUpsertSql("none")).not.to.include("product_events").and.not.to.include("pg_logical_emit_message");
      expect(designUpsertSql("outbox")).to.include("INSERT INTO product_events (product_id, name,");
      expect(designUpsertSql("outbox")).not.to.include("jsonb_build_object");
      expect(designUpsertSql("document")).to.include("INSERT INTO product_events (product_id, version, product)");
      expect(designUpsertSql("document")).to.include("jsonb_build_object('id', id, 'name', name,");
      expect(designUpsertSql("wal")).to.include("pg_logical_emit_message(true, 'product_events'");
      expect(designUpsertSql("wal")).not.to.include("INSERT INTO product_events");
    });
  });

  describe("pgoutputMessageContent", () => {
    it("returns a logical message's content, whatever its prefix", () => {
      const change = messageChange("product_events", '{"product_id":"a"}');
      expect(pgoutputMessageContent(change)?.toString()).to.equal('{"product_id":"a"}');
      expect(pgoutputMessageContent(messageChange("", "x"))?.toString()).to.equal("x");
    });

    it("skips other changes and refuses a truncated message", () => {
      expect(pgoutputMessageContent(Buffer.from("B0000000000000000000"))).to.equal(undefined);
      const change = messageChange("p", "content");
      expect(() => pgoutputMessageContent(change.subarray(0, change.length - 2))).to.throw(/truncated/);
      expect(() => pgoutputMessageContent(change.subarray(0, 12))).to.throw(/truncated/);
    });
  });

  describe("the report", () => {
    const run = (design: OutboxDesignCost["design"], pg: number): OutboxDesignCost => ({
      design,
      events: 100,
      writePg: pg,
      writeClient: 2,
      walBytes: 500,
      relayPg: 0,
      relayClient: 1,
      vacuumPg: 0,
      pg,
      client: 3,
    });

    it("averages each design's rounds and charges an event what it costs beyond the upsert alone", () => {
      const summary = summarise([run("none", 8), run("outbox", 20), run("none", 10), run("outbox", 24)], new Map());
      expect(summary.designs.map((d) => [d.design, d.rounds, d.pg, d.pgRange, d.pgForEvent])).to.deep.equal([
        ["none", 2, 9, [8, 10], undefined],
        ["outbox", 2, 22, [20, 24], 13],
      ]);
    });

    it("names what was not measured, in the table and the summary line", () => {
      const summary = summarise([run("outbox", 20)], new Map([["wal", "wal_level=replica on that server"]]));
      expect(outboxTableLines(summary).at(-1)).to.equal("wal      not measured: wal_level=replica on that server");
      expect(outboxSummaryLine(summary)).to.equal(
        "bench:outbox events=100 outbox_pg_us=20.0 outbox_client_us=3.0 outbox_wal_bytes=500 wal_pg_us=na",
      );
    });
  });

  describe("measured on a server of their own, with logical decoding @integration", function () {
    this.timeout(120_000);
    const costs = new Map<string, OutboxDesignCost>();
    let facts: Awaited<ReturnType<typeof serverFacts>> | undefined;
    let pid: number | undefined;

    before(async () => {
      const logical = await startLogicalServer();
      try {
        facts = await serverFacts(logical.url);
        const writes = workloadWrites(1000);
        const postmasterPid = logical.server.pid;
        if (postmasterPid === undefined) throw new Error("the embedded server's pid is unknown");
        pid = postmasterPid;
        for (const design of OUTBOX_DESIGNS) {
          const options = { serverUrl: logical.url, postmasterPid, writeBatch: 200, readBatch: 300 };
          costs.set(
            design,
            await measureOutboxDesign(design, writes, { ...options, databasePrefix: `bench_${design}` }),
          );
        }
      } finally {
        await logical.remove();
      }
    });

    it("tells a server with logical decoding, and its postmaster, from the tests' server", async () => {
      expect(facts?.walLevel).to.equal("logical");
      expect(facts?.postmasterPid).to.be.a("number").and.equal(pid);
      const tests = await serverFacts(testDatabaseUrl());
      expect(tests.walLevel).to.be.oneOf(["minimal", "replica", "logical"]);
      expect(tests.version).to.match(/^\d+/);
    });

    it("publishes every change of the workload once in each design", () => {
      // 1,000 records are about 900 products plus updates; an insert and each change is an event.
      const events = costs.get("none")?.events ?? 0;
      expect(events).to.be.within(800, 1000);
      for (const design of OUTBOX_DESIGNS) expect(costs.get(design)?.events, design).to.equal(events);
    });

    it("counts the server's CPU and WAL for the writes, and the relay's only where there is one", () => {
      for (const [design, cost] of costs) {
        expect(cost.walBytes, design).to.be.within(200, 5000);
        expect(cost.writeClient, design).to.be.greaterThan(0);
        expect(cost.pg, design).to.be.closeTo(cost.writePg + cost.relayPg + cost.vacuumPg, 1e-9);
      }
      expect(costs.get("none")?.relayClient).to.equal(0);
      for (const design of ["outbox", "document", "wal"])
        expect(costs.get(design)?.relayClient, design).to.be.greaterThan(0);
      // An event's document and row (or message) are more WAL than the upsert's alone.
      for (const design of ["outbox", "document", "wal"]) {
        expect(costs.get(design)?.walBytes, design).to.be.greaterThan(costs.get("none")?.walBytes ?? Infinity);
      }
    });
  });
});
