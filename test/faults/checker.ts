/**
 * The fault suite's checker: given what was produced and what came out (rows, events, dead
 * letters), counts every record. Pure, so its unit tests drive every rule.
 *
 * The model of the write rule: records of one product are applied in input order (one partition,
 * offset order); a record changes the product when it is newer in the total order — its timestamp,
 * then partition and offset — than the record the row holds, and its content differs. Stale records
 * and equal content change nothing. Each change is one version and one event.
 */

/** What a product record says, as the upsert compares it (besides the timestamp). */
export interface Content {
  name: string;
  description: string;
  /** Decimal text; compared after normaliseDecimal. */
  price: string;
  currency: string;
  quantity: number;
  category: string;
}

/** What the workload planned for one record, found again by its marker header. */
export type RecordSpec =
  | { marker: string; id: string; valid: true; content: Content }
  | { marker: string; id: string; valid: false; kind: string; expectedCode: string };

/** A record of the input topic, as read back after the run. */
export interface InputRecord {
  partition: number;
  offset: bigint;
  /** Epoch ms. */
  timestamp: number;
  marker: string | undefined;
}

/** A write that did not come through Kafka (REST), e.g. while the broker was down. */
export interface DirectWrite {
  id: string;
  content: Content;
  timestamp: number;
}

/** A product row at the end. */
export interface StoredRow {
  id: string;
  content: Content;
  timestamp: number;
  version: number;
}

/** A record of the persisted topic, decoded. */
export interface PublishedEvent {
  partition: number;
  offset: bigint;
  key: string | undefined;
  /** The `event-id` header. */
  headerEventId: string | undefined;
  /** ProductPersisted.event_id. */
  eventId: string;
  version: number;
  product: { id: string; content: Content; timestamp: number } | undefined;
}

/** A record of the error topic, its kafka_dlt-* headers decoded. */
export interface DeadLetter {
  originalTopic: string;
  originalPartition: number;
  originalOffset: bigint;
  code: string;
}

export interface CheckInput {
  inputTopic: string;
  specs: ReadonlyMap<string, RecordSpec>;
  input: readonly InputRecord[];
  directWrites?: readonly DirectWrite[];
  rows: readonly StoredRow[];
  events: readonly PublishedEvent[];
  deadLetters: readonly DeadLetter[];
}

export interface CheckCounts {
  /** Records in the input topic. */
  sent: number;
  valid: number;
  bad: number;
  /** Valid records whose effect the final row shows (it holds them or something newer). */
  persisted: number;
  /** Bad records with a dead letter. */
  deadLettered: number;
  /** Records neither reflected in the final row nor dead-lettered. */
  lost: number;
  /** Products whose final row differs from the model (content, timestamp, version), is missing or unexpected. */
  wrong: number;
  validDeadLettered: number;
  /** Bad records dead-lettered with another reason than expected. */
  wrongReason: number;
  /** Dead letters beyond the first of a record (a redelivery, or a replay with a new group). */
  deadLetterCopies: number;
  /** Dead letters that name no record of the input topic. */
  strayDeadLetters: number;
  /** Input records without a marker the workload knows (a harness problem). */
  unknownRecords: number;
  events: number;
  distinctEvents: number;
  /** Events published more than once (same event-id). */
  duplicates: number;
  /** Events whose `event-id` header is missing or differs from the payload's. */
  eventIdMismatches: number;
  /** Distinct events that no applied write explains (wrong content, a version twice, unknown product). */
  wrongEvents: number;
  /** Applied versions with no event. */
  missingEvents: number;
  /** Distinct events of a product out of version order. */
  orderViolations: number;
  /** Duplicates that arrive after a newer version of their product: a consumer that does not dedupe goes back. */
  backwards: number;
}

export interface CheckResult {
  counts: CheckCounts;
  /** Up to a few examples per non-zero failure count, as evidence. */
  examples: Partial<Record<keyof CheckCounts, string[]>>;
}

const MAX_EXAMPLES = 5;

/** "100.0000" → "100", "2.50" → "2.5": decimals as the database and the events print them, compared by value. */
export function normaliseDecimal(text: string): string {
  const trimmed = text.trim();
  if (!trimmed.includes(".")) return trimmed.replace(/^(-?)0+(?=\d)/, "$1");
  return trimmed
    .replace(/0+$/, "")
    .replace(/\.$/, "")
    .replace(/^(-?)0+(?=\d)/, "$1");
}

export function sameContent(a: Content, b: Content): boolean {
  return (
    a.name === b.name &&
    a.description === b.description &&
    normaliseDecimal(a.price) === normaliseDecimal(b.price) &&
    a.currency === b.currency &&
    a.quantity === b.quantity &&
    a.category === b.category
  );
}

/** A write in the model: content, timestamp and its place in the total order. */
interface Write {
  content: Content;
  timestamp: number;
  /** Partition and offset; direct writes have none and order by timestamp alone. */
  position: [number, bigint] | undefined;
  describe: string;
}

/** Total order: timestamp, then partition, then offset. */
function compareWrites(a: Write, b: Write): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  if (!a.position || !b.position) return 0;
  if (a.position[0] !== b.position[0]) return a.position[0] - b.position[0];
  return a.position[1] === b.position[1] ? 0 : a.position[1] < b.position[1] ? -1 : 1;
}

const sameState = (a: { content: Content; timestamp: number }, b: { content: Content; timestamp: number }) =>
  a.timestamp === b.timestamp && sameContent(a.content, b.content);

/** The versions the model says a product goes through, oldest first, from its writes in input order. */
export function appliedWrites<W extends Write>(writes: readonly W[]): W[] {
  const applied: W[] = [];
  let stored: W | undefined;
  for (const write of writes) {
    if (stored === undefined || (compareWrites(write, stored) > 0 && !sameState(write, stored))) {
      stored = write;
      applied.push(write);
    }
  }
  return applied;
}

export function check(input: CheckInput): CheckResult {
  const counts: CheckCounts = {
    sent: input.input.length,
    valid: 0,
    bad: 0,
    persisted: 0,
    deadLettered: 0,
    lost: 0,
    wrong: 0,
    validDeadLettered: 0,
    wrongReason: 0,
    deadLetterCopies: 0,
    strayDeadLetters: 0,
    unknownRecords: 0,
    events: input.events.length,
    distinctEvents: 0,
    duplicates: 0,
    eventIdMismatches: 0,
    wrongEvents: 0,
    missingEvents: 0,
    orderViolations: 0,
    backwards: 0,
  };
  const examples: CheckResult["examples"] = {};
  const fail = (what: keyof CheckCounts, example: string) => {
    counts[what] += 1;
    const list = examples[what] ?? [];
    examples[what] = list;
    if (list.length < MAX_EXAMPLES) list.push(example);
  };

  const where = (r: { partition: number; offset: bigint }) => `${r.partition}:${r.offset}`;
  const lettersOf = new Map<string, DeadLetter[]>();
  for (const letter of input.deadLetters) {
    const at = `${letter.originalPartition}:${letter.originalOffset}`;
    const list = lettersOf.get(at) ?? [];
    list.push(letter);
    lettersOf.set(at, list);
  }
  const inputAt = new Set(input.input.map(where));
  for (const letter of input.deadLetters) {
    const at = `${letter.originalPartition}:${letter.originalOffset}`;
    if (letter.originalTopic !== input.inputTopic || !inputAt.has(at)) {
      fail("strayDeadLetters", `dead letter of ${letter.originalTopic} ${at} (${letter.code})`);
    }
  }

  // Writes per product, in input order.
  const writesById = new Map<string, (Write & { record?: InputRecord })[]>();
  const addWrite = (id: string, write: Write & { record?: InputRecord }) => {
    const list = writesById.get(id) ?? [];
    list.push(write);
    writesById.set(id, list);
  };
  const ordered = [...input.input].sort((a, b) =>
    a.partition !== b.partition ? a.partition - b.partition : a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0,
  );
  for (const record of ordered) {
    const spec = record.marker === undefined ? undefined : input.specs.get(record.marker);
    const letters = lettersOf.get(where(record))?.filter((l) => l.originalTopic === input.inputTopic) ?? [];
    if (letters.length > 1) counts.deadLetterCopies += letters.length - 1;
    if (!spec) {
      fail("unknownRecords", `${where(record)} marker ${record.marker}`);
      continue;
    }
    if (spec.valid) {
      counts.valid++;
      if (letters.length > 0) {
        fail("validDeadLettered", `${spec.id} ${where(record)} marker ${spec.marker}: ${letters[0]?.code}`);
      }
      addWrite(spec.id, {
        content: spec.content,
        timestamp: record.timestamp,
        position: [record.partition, record.offset],
        describe: `${where(record)} marker ${spec.marker}`,
        record,
      });
      continue;
    }
    counts.bad++;
    if (letters.length === 0) {
      fail("lost", `${spec.kind} record ${where(record)} (marker ${spec.marker}) was not dead-lettered`);
      continue;
    }
    counts.deadLettered++;
    if (!letters.some((letter) => letter.code === spec.expectedCode)) {
      fail(
        "wrongReason",
        `${spec.kind} ${where(record)}: ${letters.map((l) => l.code).join(",")}, expected ${spec.expectedCode}`,
      );
    }
  }
  for (const write of input.directWrites ?? []) {
    addWrite(write.id, {
      content: write.content,
      timestamp: write.timestamp,
      position: undefined,
      describe: "direct write",
    });
  }

  // Final rows against the model.
  const rows = new Map(input.rows.map((row) => [row.id, row]));
  const modelVersions = new Map<string, Write[]>();
  for (const [id, writes] of writesById) {
    const applied = appliedWrites(writes);
    modelVersions.set(id, applied);
    const expected = applied.at(-1) as Write;
    const row = rows.get(id);
    if (!row) {
      fail("wrong", `${id}: no row, expected version ${applied.length}`);
    } else if (!sameState(row, expected) || row.version !== applied.length) {
      const held = writes.findLast((w) => sameState(w, row));
      fail(
        "wrong",
        `${id}: row is version ${row.version} ${held ? `holding ${held.describe}` : "holding no record's content"}, ` +
          `expected version ${applied.length} holding ${expected.describe}`,
      );
    }
    // Lost: valid records newer than the one the row holds (all of them when there is no row).
    const heldIndex = row ? writes.findLastIndex((w) => sameState(w, row)) : -1;
    const held = heldIndex >= 0 ? writes[heldIndex] : undefined;
    for (const write of writes) {
      if (!write.record) continue;
      const reflected =
        row !== undefined && (held === undefined ? write.timestamp < row.timestamp : compareWrites(write, held) <= 0);
      if (reflected) counts.persisted++;
      else fail("lost", `${id} ${write.describe}: not in the final row`);
    }
  }
  for (const row of input.rows) {
    if (!writesById.has(row.id)) fail("wrong", `${row.id}: a row nobody wrote`);
  }

  // Events: distinct by event id, then against the model's versions, in topic order.
  const sortedEvents = [...input.events].sort((a, b) =>
    a.partition !== b.partition ? a.partition - b.partition : a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0,
  );
  const seenIds = new Set<string>();
  const versionsSeen = new Map<string, Map<number, string>>();
  const lastDistinct = new Map<string, number>();
  const highest = new Map<string, number>();
  for (const event of sortedEvents) {
    const id = event.product?.id ?? event.key ?? "?";
    if (event.headerEventId !== event.eventId) {
      fail("eventIdMismatches", `${where(event)}: header ${event.headerEventId}, payload ${event.eventId}`);
    }
    const before = highest.get(id) ?? 0;
    highest.set(id, Math.max(before, event.version));
    if (seenIds.has(event.eventId)) {
      counts.duplicates++;
      if (event.version < before)
        fail("backwards", `${id}: duplicate of version ${event.version} at ${where(event)} after version ${before}`);
      continue;
    }
    seenIds.add(event.eventId);
    counts.distinctEvents++;
    const previous = lastDistinct.get(id);
    if (previous !== undefined && event.version <= previous) {
      fail("orderViolations", `${id}: version ${event.version} at ${where(event)} after version ${previous}`);
    }
    lastDistinct.set(id, event.version);
    const versions = versionsSeen.get(id) ?? new Map<number, string>();
    versionsSeen.set(id, versions);
    const applied = modelVersions.get(id);
    const expected = applied?.[event.version - 1];
    if (event.key !== id) {
      fail("wrongEvents", `${where(event)}: key ${event.key} for product ${id}`);
    } else if (versions.has(event.version)) {
      fail(
        "wrongEvents",
        `${id}: version ${event.version} published as ${versions.get(event.version)} and ${event.eventId}`,
      );
    } else if (!expected || !event.product || !sameState(event.product, expected)) {
      fail(
        "wrongEvents",
        `${id}: event version ${event.version} at ${where(event)}; model has ${applied?.length ?? 0} versions` +
          (expected ? `, this one holding ${expected.describe}` : ""),
      );
    }
    versions.set(event.version, event.eventId);
  }
  for (const [id, applied] of modelVersions) {
    const versions = versionsSeen.get(id);
    for (let version = 1; version <= applied.length; version++) {
      if (!versions?.has(version)) fail("missingEvents", `${id}: no event for version ${version}`);
    }
  }
  return { counts, examples };
}
