import { expect } from "chai";
import { parseRecord } from "../../scheduler/src/message.js";
import { BAD_KINDS, generateWorkload, MARKER_HEADER, toMessages } from "./workload.js";

/** Codes the API gives (the scheduler passes these records on): parseRecord cannot tell them. */
const API_CODES = new Set(["invalid_argument"]);
const MAX_RECORD_BYTES = 128 * 1024;

describe("fault suite workload", () => {
  const workload = generateWorkload({ ids: 100, idPrefix: "w", bulkShare: 0.4, compressedOverSize: true });
  const planned = workload.batches.flatMap((batch) => batch.messages);

  it("when generated, then every bad kind is in it and every record carries a marker of its own", () => {
    const kinds = new Set(planned.flatMap(({ spec }) => (spec.valid ? [] : [spec.kind])));
    expect([...kinds].sort()).to.deep.equal(Object.keys(BAD_KINDS).sort());
    const markers = planned.map(({ message }) => String(message.headers?.[MARKER_HEADER]));
    expect(new Set(markers).size).to.equal(planned.length);
    expect(workload.records).to.equal(planned.length);
  });

  it("when everything goes at once, then the bulk phase holds every batch", () => {
    const all = generateWorkload({ ids: 100, idPrefix: "w", bulkShare: 1, compressedOverSize: true });
    expect(all.bulkBatches).to.equal(all.batches.length);
  });

  it("when the scheduler parses each record, then valid ones become products and bad ones fail with the expected code", () => {
    const now = Date.now();
    for (const batch of workload.batches) {
      toMessages(batch, now).forEach((message, index) => {
        const { spec } = batch.messages[index]!;
        const parsed = parseRecord(
          {
            value: message.value === null || message.value === undefined ? null : Buffer.from(message.value),
            headers: message.headers,
            timestamp: message.timestamp ?? String(now),
          },
          MAX_RECORD_BYTES,
        );
        if (spec.valid || API_CODES.has(spec.expectedCode)) {
          expect(parsed.ok, `${spec.marker} ${spec.valid ? "valid" : spec.kind}`).to.equal(true);
          if (parsed.ok) expect(parsed.product.id).to.equal(spec.id);
        } else {
          expect(parsed.ok ? "ok" : parsed.error.code, spec.kind).to.equal(spec.expectedCode);
        }
      });
    }
  });

  it("when a group has 4 updates per id, then one produce request holds them all, keyed by the id", () => {
    for (const batch of workload.batches) {
      for (const { spec, message } of batch.messages) expect(message.key).to.equal(spec.id);
    }
    const perId = new Map<string, number>();
    for (const { spec } of planned) if (spec.valid) perId.set(spec.id, (perId.get(spec.id) ?? 0) + 1);
    expect(perId.size).to.equal(100);
    expect([...perId.values()].every((n) => n >= 4)).to.equal(true);
  });
});
