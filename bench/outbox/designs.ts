import pg from "pg";
import { pino } from "pino";
import { pgTypes } from "../../api/src/db/database.js";
import { createPgOutboxStore } from "../../api/src/events/pg-outbox-store.js";
import {
  EVENT_PRODUCT_COLUMNS,
  numberPlaceholders,
  type ProductWrite,
  splitIntoRounds,
  UPSERT_SQL,
  upsertBindings,
} from "../../api/src/products/product-repository.js";
import { generateWorkload, productWrites } from "../pipeline/workload.js";
import { migratedDatabase } from "../shared/migrated-database.js";
import { allProcessesCpu } from "../shared/proc-cpu.js";

/**
 * How a write's event reaches the relay:
 * - none: no event at all (the upsert alone: what an event adds is the difference);
 * - outbox: the production statement, the product in typed columns of a product_events row, read
 *   in id order and deleted by the production outbox session;
 * - document: the same outbox with the product as a jsonb document instead, as this project wrote
 *   it until the migration 20261203000000_outbox_product_columns, read as it was then;
 * - wal: no row; the document as a transactional logical message (pg_logical_emit_message), read
 *   back in commit order from a logical replication slot (pgoutput) and acknowledged by advancing it.
 */
export type OutboxDesign = "none" | "outbox" | "document" | "wal";
export const OUTBOX_DESIGNS: readonly OutboxDesign[] = ["none", "outbox", "document", "wal"];

const MESSAGE_PREFIX = "product_events";
const PUBLICATION = "bench_outbox_no_tables";

/** The product as one jsonb document, from the columns a write returns (the amount as text, exact). */
const DOCUMENT = `jsonb_build_object(${["id", ...EVENT_PRODUCT_COLUMNS]
  .map((c) => `'${c}', ${c === "amount" ? "amount::text" : c}`)
  .join(", ")})`;

/** The upsert's events clause; its absence means the statement changed, and so must this bench. */
const EVENTS_CLAUSE = UPSERT_SQL.indexOf("), outbox AS (");
if (EVENTS_CLAUSE < 0 || !UPSERT_SQL.trimEnd().endsWith("SELECT * FROM written")) {
  throw new Error("UPSERT_SQL no longer ends with its outbox clause and SELECT * FROM written: update bench/outbox");
}

/** The production upsert with its events clause replaced by the design's ("?" placeholders, as UPSERT_SQL). */
export function designUpsertSql(design: OutboxDesign): string {
  const written = UPSERT_SQL.slice(0, EVENTS_CLAUSE);
  switch (design) {
    case "outbox":
      return UPSERT_SQL;
    case "none":
      return `${written})\nSELECT * FROM written`;
    case "document":
      return `${written}), outbox AS (
  INSERT INTO product_events (product_id, version, product)
  SELECT id, version, ${DOCUMENT}
  FROM written WHERE changed ORDER BY id
)
SELECT * FROM written`;
    case "wal":
      // A CTE that modifies nothing runs only when referenced: the final SELECT references it once.
      return `${written}), events AS (
  SELECT pg_logical_emit_message(true, '${MESSAGE_PREFIX}', jsonb_build_object('event_id', gen_random_uuid(),
    'product_id', id, 'persisted_at', now(), 'product', ${DOCUMENT})::text)
  FROM written WHERE changed ORDER BY id
)
SELECT * FROM written WHERE (SELECT count(*) FROM events) >= 0`;
  }
}

/**
 * The content of a pgoutput Message ('M') change in a binary logical decoding row, or undefined
 * for any other change (Begin, Commit). Protocol version 1: flags (int8), the message's LSN
 * (int64), its prefix (a NUL-terminated string), the content's length (int32), the content.
 */
export function pgoutputMessageContent(data: Buffer): Buffer | undefined {
  if (data[0] !== 0x4d) return undefined;
  const prefixEnd = data.indexOf(0, 1 + 1 + 8);
  if (prefixEnd < 0 || prefixEnd + 5 > data.length) throw new Error("truncated pgoutput message");
  const length = data.readInt32BE(prefixEnd + 1);
  const start = prefixEnd + 5;
  if (start + length > data.length) throw new Error("truncated pgoutput message content");
  return data.subarray(start, start + length);
}

export interface OutboxDesignOptions {
  serverUrl: string;
  /** The server's postmaster: the CPU counted is its own and its children's (this machine's /proc). */
  postmasterPid: number;
  /** Records per upsert call, as the scheduler's API_BATCH_SIZE. */
  writeBatch: number;
  /** Events per relay read, as OUTBOX_BATCH_SIZE; for wal, changes per peek. */
  readBatch: number;
  databasePrefix: string;
}

/** CPU µs per event; pg is the server's processes, client this process. */
export interface OutboxDesignCost {
  design: OutboxDesign;
  events: number;
  writePg: number;
  writeClient: number;
  /** WAL the writes generated, bytes per event. */
  walBytes: number;
  relayPg: number;
  relayClient: number;
  /** VACUUM of product_events after the relay emptied it (autovacuum's work, done at once). */
  vacuumPg: number;
  /** Everything PostgreSQL spent on the design beyond the upsert itself is pg - pg of none. */
  pg: number;
  client: number;
}

async function serverSeconds(postmasterPid: number): Promise<number> {
  let seconds = 0;
  for (const [pid, entry] of await allProcessesCpu()) {
    if (pid === postmasterPid || entry.ppid === postmasterPid) seconds += entry.seconds;
  }
  return seconds;
}

function clientMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

/** The workload of the other benches (about a tenth updates), as the scheduler would write it. */
export function workloadWrites(records: number): ProductWrite[] {
  return productWrites(generateWorkload(records, "outbox", 3));
}

/**
 * One design on a fresh database: the workload through the design's upsert, in calls of writeBatch
 * records (one statement per round, one transaction per call, as the repository writes), then the
 * relay's side until every event is read and acknowledged, then the outbox's VACUUM.
 */
export async function measureOutboxDesign(
  design: OutboxDesign,
  writes: readonly ProductWrite[],
  options: OutboxDesignOptions,
): Promise<OutboxDesignCost> {
  const database = await migratedDatabase(options.serverUrl, options.databasePrefix);
  const writer = new pg.Client({ connectionString: database.url, types: pgTypes });
  const slot = `${database.name}_slot`;
  let slotCreated = false;
  const hasRelay = design !== "none";
  const hasOutbox = design === "outbox" || design === "document";
  await writer.connect();
  try {
    if (design === "wal") {
      await writer.query(`CREATE PUBLICATION ${PUBLICATION}`);
      await writer.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
      slotCreated = true;
    }
    const statement = { name: `bench_upsert_${design}`, text: numberPlaceholders(designUpsertSql(design)) };
    const lsnBefore = await currentLsn(writer);
    const pgBefore = await serverSeconds(options.postmasterPid);
    const writeStart = process.cpuUsage();
    for (let index = 0; index < writes.length; index += options.writeBatch) {
      const rounds = splitIntoRounds(writes.slice(index, index + options.writeBatch));
      if (rounds.length > 1) await writer.query("BEGIN");
      for (const round of rounds) await writer.query({ ...statement, values: upsertBindings(round) });
      if (rounds.length > 1) await writer.query("COMMIT");
    }
    const writeClient = clientMicros(writeStart);
    const pgWritten = await serverSeconds(options.postmasterPid);
    const walBytes = Number(
      (
        await writer.query<{ bytes: string }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::text AS bytes", [
          lsnBefore,
        ])
      ).rows[0]?.bytes,
    );

    const relay = await openRelay(design, database.url, slot, options.readBatch, writer);
    const relayStart = process.cpuUsage();
    const events = await relay.drain();
    const relayClient = clientMicros(relayStart);
    // Before the relay's connection ends: its backend's CPU leaves /proc with it.
    const pgRelayed = await serverSeconds(options.postmasterPid);
    await relay.close();
    const pgClosed = await serverSeconds(options.postmasterPid);
    if (hasOutbox) await writer.query("VACUUM product_events");
    const pgVacuumed = await serverSeconds(options.postmasterPid);
    if (events === 0) throw new Error(`${design}: no events`);
    const perEvent = (micros: number) => micros / events;
    const writePg = perEvent((pgWritten - pgBefore) * 1e6);
    const relayPg = hasRelay ? perEvent((pgRelayed - pgWritten) * 1e6) : 0;
    const vacuumPg = hasOutbox ? perEvent((pgVacuumed - pgClosed) * 1e6) : 0;
    const relayClientPerEvent = hasRelay ? perEvent(relayClient) : 0;
    return {
      design,
      events,
      writePg,
      writeClient: perEvent(writeClient),
      walBytes: walBytes / events,
      relayPg,
      relayClient: relayClientPerEvent,
      vacuumPg,
      pg: writePg + relayPg + vacuumPg,
      client: perEvent(writeClient) + relayClientPerEvent,
    };
  } finally {
    // A database with a replication slot cannot be dropped.
    if (slotCreated) await writer.query("SELECT pg_drop_replication_slot($1)", [slot]).catch(() => {});
    await writer.end().catch(() => {});
    await database.drop();
  }
}

async function currentLsn(client: pg.Client): Promise<string> {
  return (await client.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0]?.lsn ?? "0/0";
}

interface Relay {
  /** Reads and acknowledges every event; how many there were. */
  drain(): Promise<number>;
  close(): Promise<void>;
}

/** The design's reader of events, connected. */
async function openRelay(
  design: OutboxDesign,
  databaseUrl: string,
  slot: string,
  batch: number,
  writer: pg.Client,
): Promise<Relay> {
  if (design === "none") return { drain: () => countChangedRows(writer), close: async () => {} };
  if (design === "outbox") return outboxRelay(databaseUrl, batch);
  const client = new pg.Client({ connectionString: databaseUrl, types: pgTypes });
  await client.connect();
  return {
    drain: () => (design === "wal" ? drainSlot(client, slot, batch) : drainDocuments(client, batch)),
    close: () => client.end(),
  };
}

/** none writes no events: the changes it would have published, for a per-event figure. */
async function countChangedRows(client: pg.Client): Promise<number> {
  // An insert is version 1, and each change bumps it: the events a product's writes made.
  return Number((await client.query<{ n: string }>("SELECT sum(version)::text AS n FROM products")).rows[0]?.n ?? 0);
}

/** The production outbox session: read a batch as the leader does, delete it, until empty. */
async function outboxRelay(databaseUrl: string, batch: number): Promise<Relay> {
  const session = await createPgOutboxStore({
    databaseUrl,
    logger: pino({ level: "silent" }),
    leaseTimeoutMs: 120_000,
  }).connect();
  return {
    async drain() {
      let events = 0;
      for (let rows = await session.readBatch(batch); rows.length > 0; rows = await session.readBatch(batch)) {
        events += rows.length;
        await session.deleteIds(rows.map((row) => row.id));
      }
      return events;
    },
    close: () => session.close(),
  };
}

/** The outbox read as it was for documents: the rows as stored, the document parsed by pg (JSON.parse). */
const DOCUMENT_READ = {
  name: "bench_read_documents",
  text: `SELECT id, event_id, product_id, product, persisted_at FROM (
  SELECT DISTINCT ON (product_id) id, event_id, product_id, product, persisted_at
  FROM (SELECT id, event_id, product_id, product, persisted_at FROM product_events ORDER BY id LIMIT $1) head
  ORDER BY product_id, id
) firsts ORDER BY id`,
};

async function drainDocuments(client: pg.Client, batch: number): Promise<number> {
  let events = 0;
  for (;;) {
    const { rows } = await client.query<{ id: string; product: { id?: unknown } }>({
      ...DOCUMENT_READ,
      values: [batch],
    });
    if (rows.length === 0) return events;
    if (typeof rows[0]?.product.id !== "string") throw new Error("an outbox row without its document");
    events += rows.length;
    await client.query("DELETE FROM product_events WHERE id = ANY($1::bigint[])", [rows.map((row) => row.id)]);
  }
}

/**
 * The slot's messages, as a relay would take them: peek (the events stay in the slot until
 * acknowledged), parse each document, then advance the slot past them. The client gets the binary
 * changes hex-encoded, as pg reads bytea in text format.
 */
async function drainSlot(client: pg.Client, slot: string, changes: number): Promise<number> {
  let events = 0;
  for (;;) {
    const { rows } = await client.query<{ lsn: string; data: Buffer }>(
      `SELECT lsn::text AS lsn, data FROM pg_logical_slot_peek_binary_changes($1, NULL, $2,
         'proto_version', '1', 'publication_names', '${PUBLICATION}', 'messages', 'true')`,
      [slot, changes],
    );
    const last = rows.at(-1);
    if (!last) return events;
    for (const row of rows) {
      const content = pgoutputMessageContent(row.data);
      if (!content) continue;
      const event = JSON.parse(content.toString("utf8")) as { product_id?: unknown };
      if (typeof event.product_id !== "string") throw new Error("a logical message without a product_id");
      events++;
    }
    await client.query("SELECT pg_replication_slot_advance($1, $2::pg_lsn)", [slot, last.lsn]);
  }
}
