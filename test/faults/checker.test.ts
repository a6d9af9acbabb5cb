import { expect } from "chai";
import {
  appliedWrites,
  type CheckInput,
  type Content,
  check,
  type DeadLetter,
  normaliseDecimal,
  type PublishedEvent,
  type RecordSpec,
  type StoredRow,
} from "./checker.js";

const TOPIC = "input";
const content = (quantity: number, price = "10.5"): Content => ({
  name: "Caneca",
  description: "Caneca de cerâmica",
  price,
  currency: "BRL",
  quantity,
  category: "Casa",
});

/** A small world: records of product "a" (and bad ones), built up per test. */
function world() {
  const specs = new Map<string, RecordSpec>();
  const input: CheckInput["input"][number][] = [];
  let offset = 0n;
  return {
    specs,
    input,
    valid(id: string, quantity: number, timestamp: number, partition = 0) {
      const marker = String(specs.size);
      specs.set(marker, { marker, id, valid: true, content: content(quantity) });
      input.push({ partition, offset: offset++, timestamp, marker });
      return input.at(-1)!;
    },
    bad(id: string, expectedCode: string, timestamp = 1, partition = 0) {
      const marker = String(specs.size);
      specs.set(marker, { marker, id, valid: false, kind: "k", expectedCode });
      input.push({ partition, offset: offset++, timestamp, marker });
      return input.at(-1)!;
    },
  };
}

const row = (id: string, quantity: number, timestamp: number, version: number): StoredRow => ({
  id,
  content: content(quantity, "10.5000"),
  timestamp,
  version,
});

let eventOffset = 0n;
const event = (id: string, version: number, quantity: number, timestamp: number, eventId = `e-${id}-${version}`) =>
  ({
    partition: 0,
    offset: eventOffset++,
    key: id,
    headerEventId: eventId,
    eventId,
    version,
    product: { id, content: content(quantity, "10.50"), timestamp },
  }) satisfies PublishedEvent;

const letter = (record: { partition: number; offset: bigint }, code: string): DeadLetter => ({
  originalTopic: TOPIC,
  originalPartition: record.partition,
  originalOffset: record.offset,
  code,
});

function run(w: ReturnType<typeof world>, rest: Partial<CheckInput>) {
  return check({ inputTopic: TOPIC, specs: w.specs, input: w.input, rows: [], events: [], deadLetters: [], ...rest });
}

describe("fault suite checker", () => {
  beforeEach(() => {
    eventOffset = 0n;
  });

  describe("the model of the write rule", () => {
    it("when records tie on timestamp, then the later offset wins and each change is a version", () => {
      const w = world();
      for (const q of [1, 2, 3, 4]) w.valid("a", q, 100);
      const result = run(w, {
        rows: [row("a", 4, 100, 4)],
        events: [1, 2, 3, 4].map((v) => event("a", v, v, 100)),
      });
      expect(result.counts).to.include({ sent: 4, valid: 4, persisted: 4, lost: 0, wrong: 0, missingEvents: 0 });
      expect(result.counts).to.include({ wrongEvents: 0, duplicates: 0, orderViolations: 0, backwards: 0 });
    });

    it("when a stale record or an exact duplicate follows, then it changes nothing", () => {
      const w = world();
      w.valid("a", 1, 100);
      w.valid("a", 2, 200);
      w.valid("a", 9, 50); // stale
      w.valid("a", 2, 200); // duplicate
      const specs = [...w.input];
      const writes = specs.map((r) => ({
        content: (w.specs.get(r.marker!) as { content: Content }).content,
        timestamp: r.timestamp,
        position: [r.partition, r.offset] as [number, bigint],
        describe: "",
      }));
      expect(appliedWrites(writes)).to.have.length(2);
      const result = run(w, { rows: [row("a", 2, 200, 2)], events: [event("a", 1, 1, 100), event("a", 2, 2, 200)] });
      expect(result.counts).to.include({ persisted: 4, lost: 0, wrong: 0, missingEvents: 0, wrongEvents: 0 });
    });

    it("when a replay re-applies older tied records, then versions and events are wrong and newer records lost", () => {
      const w = world();
      w.valid("a", 1, 100);
      w.valid("a", 2, 100);
      // What a replay under "apply when not older" does: version 3 holds the first record again.
      const result = run(w, {
        rows: [row("a", 1, 100, 3)],
        events: [event("a", 1, 1, 100), event("a", 2, 2, 100), event("a", 3, 1, 100)],
      });
      expect(result.counts).to.include({ wrong: 1, lost: 1, wrongEvents: 1 });
      expect(result.examples.wrong?.[0]).to.match(/row is version 3 holding 0:0.*expected version 2/);
    });
  });

  describe("lost and wrong", () => {
    it("when a product has no row, then its records are lost and the product wrong", () => {
      const w = world();
      w.valid("a", 1, 100);
      w.valid("a", 2, 200);
      const result = run(w, {});
      expect(result.counts).to.include({ lost: 2, wrong: 1, persisted: 0, missingEvents: 2 });
    });

    it("when the row holds an older record, then the newer ones are lost", () => {
      const w = world();
      w.valid("a", 1, 100);
      w.valid("a", 2, 200);
      w.valid("a", 3, 300);
      const result = run(w, { rows: [row("a", 2, 200, 2)] });
      expect(result.counts).to.include({ lost: 1, persisted: 2, wrong: 1 });
    });

    it("when a row exists that no record wrote, then it is wrong", () => {
      const result = run(world(), { rows: [row("ghost", 1, 1, 1)] });
      expect(result.counts.wrong).to.equal(1);
    });

    it("when the content matches but the version does not, then the product is wrong", () => {
      const w = world();
      w.valid("a", 1, 100);
      const result = run(w, { rows: [row("a", 1, 100, 2)], events: [event("a", 1, 1, 100)] });
      expect(result.counts).to.include({ wrong: 1, lost: 0 });
    });

    it("when writes came through REST, then they count in the model like records", () => {
      const result = run(world(), {
        directWrites: [{ id: "r", content: content(7), timestamp: 5 }],
        rows: [row("r", 7, 5, 1)],
        events: [event("r", 1, 7, 5)],
      });
      expect(result.counts).to.include({ wrong: 0, missingEvents: 0, wrongEvents: 0, lost: 0 });
      const unpublished = run(world(), {
        directWrites: [{ id: "r", content: content(7), timestamp: 5 }],
        rows: [row("r", 7, 5, 1)],
      });
      expect(unpublished.counts.missingEvents).to.equal(1);
    });
  });

  describe("dead letters", () => {
    it("when a bad record is dead-lettered with its reason, then it counts as dead-lettered", () => {
      const w = world();
      const bad = w.bad("a", "invalid_json");
      const result = run(w, { deadLetters: [letter(bad, "invalid_json"), letter(bad, "invalid_json")] });
      expect(result.counts).to.include({ bad: 1, deadLettered: 1, lost: 0, wrongReason: 0, deadLetterCopies: 1 });
    });

    it("when a bad record has no dead letter, then it is lost; with another reason, the reason is wrong", () => {
      const w = world();
      w.bad("a", "invalid_json");
      const other = w.bad("a", "missing_field");
      const result = run(w, { deadLetters: [letter(other, "invalid_field")] });
      expect(result.counts).to.include({ lost: 1, deadLettered: 1, wrongReason: 1 });
    });

    it("when a valid record is dead-lettered, then that is counted (and a letter of nothing is stray)", () => {
      const w = world();
      const good = w.valid("a", 1, 100);
      const result = run(w, {
        rows: [row("a", 1, 100, 1)],
        events: [event("a", 1, 1, 100)],
        deadLetters: [letter(good, "invalid_argument"), { ...letter(good, "x"), originalOffset: 99n }],
      });
      expect(result.counts).to.include({ validDeadLettered: 1, strayDeadLetters: 1 });
    });

    it("when an input record carries no known marker, then it is counted as unknown", () => {
      const w = world();
      w.input.push({ partition: 0, offset: 50n, timestamp: 1, marker: undefined });
      expect(run(w, {}).counts.unknownRecords).to.equal(1);
    });
  });

  describe("events", () => {
    const twoVersions = () => {
      const w = world();
      w.valid("a", 1, 100);
      w.valid("a", 2, 200);
      w.valid("a", 3, 300);
      return w;
    };

    it("when an event is published twice with one event-id, then it is a duplicate, not a wrong event", () => {
      const result = run(twoVersions(), {
        rows: [row("a", 3, 300, 3)],
        events: [event("a", 1, 1, 100), event("a", 2, 2, 200), event("a", 2, 2, 200), event("a", 3, 3, 300)],
      });
      expect(result.counts).to.include({ events: 4, distinctEvents: 3, duplicates: 1, wrongEvents: 0, backwards: 0 });
    });

    it("when a duplicate arrives after a newer version, then it goes backwards", () => {
      const result = run(twoVersions(), {
        rows: [row("a", 3, 300, 3)],
        events: [event("a", 1, 1, 100), event("a", 2, 2, 200), event("a", 3, 3, 300), event("a", 2, 2, 200)],
      });
      expect(result.counts).to.include({ duplicates: 1, backwards: 1, orderViolations: 0 });
    });

    it("when distinct events come out of version order, then that is an order violation", () => {
      const result = run(twoVersions(), {
        rows: [row("a", 3, 300, 3)],
        events: [event("a", 2, 2, 200), event("a", 1, 1, 100), event("a", 3, 3, 300)],
      });
      expect(result.counts).to.include({ orderViolations: 1, duplicates: 0 });
    });

    it("when a version is published under two event ids, or with the wrong content, then the events are wrong", () => {
      const result = run(twoVersions(), {
        rows: [row("a", 3, 300, 3)],
        events: [event("a", 1, 1, 100), event("a", 2, 2, 200), event("a", 2, 2, 200, "other"), event("a", 3, 9, 300)],
      });
      expect(result.counts.wrongEvents).to.equal(2);
    });

    it("when the event-id header differs from the payload, then it is a mismatch", () => {
      const w = world();
      w.valid("a", 1, 100);
      const result = run(w, {
        rows: [row("a", 1, 100, 1)],
        events: [{ ...event("a", 1, 1, 100), headerEventId: undefined }],
      });
      expect(result.counts.eventIdMismatches).to.equal(1);
    });
  });

  it("normaliseDecimal compares decimals by value", () => {
    expect(["100.0000", "100", "2.50", "0.5000", "19.99"].map(normaliseDecimal)).to.deep.equal([
      "100",
      "100",
      "2.5",
      "0.5",
      "19.99",
    ]);
  });
});
