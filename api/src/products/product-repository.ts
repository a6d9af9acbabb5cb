import type { Knex } from "knex";
import type pg from "pg";
import type { Product, SourcePosition } from "#gen/products/v1/product_pb.js";
import { WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import { ProductRow } from "../db/product-model.js";
import { ApiError } from "../errors.js";
import { formatTimestamp, parseTimestamp } from "./timestamp.js";
import { compareWrites, type WriteKey, writeOrderSql } from "./write-order.js";

/** A validated product to write, and the Kafka record it comes from, if any (see write-order.ts). */
export interface ProductWrite {
  product: Product;
  source?: SourcePosition | undefined;
}

export interface WriteResult {
  product: Product;
  outcome: WriteOutcome;
}

/**
 * How much of each written product an upsert returns: "full", or "outcome" (only id and version,
 * for callers that read nothing else), which spares parsing and building the rest of every row.
 */
export type ResultDetail = "full" | "outcome";

/** Position in the list order (created_xid, id); the page token encodes it. */
export interface ListCursor {
  /** The creating transaction's id (xid8), in decimal. */
  createdXid: string;
  id: string;
}

export interface ProductRepository {
  /** Upserts validated writes in order; returns one result per input, in input order ("full" by default). */
  upsert(writes: readonly ProductWrite[], detail?: ResultDetail): Promise<WriteResult[]>;
  get(id: string): Promise<Product | undefined>;
  list(pageSize: number, after: ListCursor | undefined): Promise<{ products: Product[]; next?: ListCursor }>;
  /** Throws an "unavailable" ApiError when the database does not answer. */
  ping(): Promise<void>;
}

const CONTENT_COLUMNS = ["name", "description", "amount", "currency", "quantity", "availability_at", "category"];

/**
 * The columns a write returns, its event carries and the reads select: listed rather than `*`, so
 * that a migration adding a column changes neither the prepared upsert's result type (PostgreSQL
 * would refuse to run it, 0A000) nor the event payload consumers see.
 */
export const PRODUCT_COLUMNS = ["id", ...CONTENT_COLUMNS, "version", "created_at", "updated_at"];

/** The Kafka position of the write a row holds (all NULL for a direct write): the tiebreak of write-order.ts. */
const SOURCE_COLUMNS = ["source_topic", "source_partition", "source_offset"];

/**
 * The product as an outbox row holds it, one column each (see the migration
 * 20261203000000_outbox_product_columns): every column a write returns but the id, which is the
 * row's product_id.
 */
export const EVENT_PRODUCT_COLUMNS = [...PRODUCT_COLUMNS.filter((c) => c !== "id"), ...SOURCE_COLUMNS];

/** The source columns as a write returns and the reads select them: the offset as text, exact past 2^53. */
const sourceSelect = (alias: string) =>
  `${alias}.source_topic, ${alias}.source_partition, ${alias}.source_offset::text AS source_offset`;

const CHANGED = `(${CONTENT_COLUMNS.map((c) => `p.${c}`).join(", ")})
        IS DISTINCT FROM (${CONTENT_COLUMNS.map((c) => `excluded.${c}`).join(", ")})`;

/**
 * One statement per round. A write applies when it is newer than the row's in the order of
 * write-order.ts (availability, then source position), or when it is a direct write tied with a
 * direct write (the last to arrive wins). An applied write that changes the content bumps the
 * version and adds its event to the outbox in the same statement, hence the same transaction; one
 * that does not (same content from a newer record) only moves the row's source forward, so the row
 * always holds the newest write seen and the final state does not depend on arrival order. An
 * equal write (a redelivery, a replay) or an older one changes nothing, and concurrent upserts of
 * one id never fail.
 */
export const UPSERT_SQL = upsertSql("*");

function upsertSql(returned: string): string {
  return `
WITH written AS (
  INSERT INTO products AS p (id, ${CONTENT_COLUMNS.join(", ")}, ${SOURCE_COLUMNS.join(", ")})
  SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::numeric[], ?::text[], ?::int[], ?::timestamptz[], ?::text[],
    ?::text[], ?::int[], ?::int8[])
  ON CONFLICT (id) DO UPDATE SET
    ${[...CONTENT_COLUMNS, ...SOURCE_COLUMNS].map((c) => `${c} = excluded.${c}`).join(", ")},
    version = p.version + (${CHANGED})::int,
    updated_at = CASE WHEN ${CHANGED} THEN now() ELSE p.updated_at END,
    last_write_changed = ${CHANGED}
  WHERE ${writeOrderSql("p")} < ${writeOrderSql("excluded")}
     OR (excluded.source_topic IS NULL AND ${writeOrderSql("p")} = ${writeOrderSql("excluded")} AND ${CHANGED})
  RETURNING ${PRODUCT_COLUMNS.map((c) => `p.${c}`).join(", ")}, ${sourceSelect("p")},
    (xmax = 0) AS inserted, p.last_write_changed AS changed
), outbox AS (
  INSERT INTO product_events (product_id, ${EVENT_PRODUCT_COLUMNS.join(", ")})
  SELECT id, ${EVENT_PRODUCT_COLUMNS.map((c) => (c === "source_offset" ? "source_offset::int8" : c)).join(", ")}
  FROM written WHERE changed ORDER BY id
)
SELECT ${returned} FROM written`;
}

/**
 * The oldest transaction whose rows may still appear in this database: the list's snapshot's oldest
 * running transaction, leaving out those pg_stat_activity shows in another database (they cannot
 * write here; one that ended meanwhile is kept, to be safe), or the snapshot's xmax when none runs.
 * Every row created by an earlier transaction is already visible, or never will be.
 */
const LIST_HORIZON_SQL = `
  SELECT coalesce(min(running.xid), pg_snapshot_xmax(pg_current_snapshot()))
  FROM pg_snapshot_xip(pg_current_snapshot()) AS running(xid)
  WHERE NOT EXISTS (
    SELECT FROM pg_stat_activity a
    WHERE a.backend_xid = running.xid::xid AND a.datname IS DISTINCT FROM current_database()
  )`;

/**
 * A page in (created_xid, id) order, ending before the horizon: a row created by a transaction that
 * is still running (or started after one that is) is listed only once that one has ended, so no page
 * token ever passes a row that commits later. Bindings: [xid, id] of the cursor if any, then the limit.
 */
function listSql(afterCursor: boolean): string {
  return `
SELECT ${PRODUCT_COLUMNS.join(", ")}, created_xid::text AS cursor_xid
FROM products
WHERE created_xid < (${LIST_HORIZON_SQL})
  ${afterCursor ? "AND (created_xid, id) > (?::xid8, ?)" : ""}
ORDER BY products.created_xid, products.id
LIMIT ?`;
}

/**
 * The upsert runs as a named prepared statement on the pool's own pg connection: it is the hot
 * path, and this spares PostgreSQL a parse and plan and knex its query building on every write.
 */
export const UPSERT_STATEMENT = { name: "products_upsert_v3", text: numberPlaceholders(UPSERT_SQL) };

/** The same upsert returning only what an "outcome" result needs: fewer columns to send and parse. */
const UPSERT_OUTCOME_STATEMENT = {
  name: "products_upsert_outcome_v2",
  text: numberPlaceholders(upsertSql("id, version, inserted, changed")),
};

const UPSERT_STATEMENTS = { full: UPSERT_STATEMENT, outcome: UPSERT_OUTCOME_STATEMENT } as const;

/** knex's "?" placeholders as pg's "$1", "$2", …; UPSERT_SQL has no other question mark. */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** A row the upsert returned: every product column for "full", only id and version for "outcome". */
type WrittenRow = Pick<ProductColumns, "id" | "version"> &
  Partial<ProductColumns> & { inserted: boolean; changed: boolean };

/** How runUpsert sends the statement: prepared once per connection, or parsed afresh (no name). */
type UpsertMode = "prepared" | "one-off";

/** pg's per-connection record of the named statements it has parsed (pg/lib/client.js). */
type PgClient = pg.ClientBase & { connection?: { parsedStatements?: Record<string, string> } };

/**
 * Connections whose prepared upsert went stale inside a transaction: the error aborted it, so the
 * statement can only be dropped at the connection's next use, after the rollback.
 */
const stalePlans = new WeakSet<PgClient>();

async function runUpsert(
  db: Knex | Knex.Transaction,
  values: unknown[],
  mode: UpsertMode,
  detail: ResultDetail,
): Promise<WrittenRow[]> {
  const statement = UPSERT_STATEMENTS[detail];
  // In a transaction, knex's client hands out the transaction's connection.
  const connection = (await db.client.acquireConnection()) as PgClient;
  const run = async () =>
    (
      await connection.query<WrittenRow>(
        mode === "prepared" ? { ...statement, values } : { text: statement.text, values },
      )
    ).rows;
  try {
    if (mode === "prepared" && stalePlans.has(connection)) await forgetUpsert(connection);
    try {
      return await run();
    } catch (error) {
      if (mode !== "prepared" || !isStalePlan(error)) throw error;
      if (db.isTransaction) {
        stalePlans.add(connection);
        throw error;
      }
      // Not in a transaction, nothing was written: prepare again and retry once on this connection.
      await forgetUpsert(connection);
      return await run();
    }
  } finally {
    await db.client.releaseConnection(connection);
  }
}

/**
 * SQLSTATE 0A000 from the prepared upsert: a migration changed the type of a column it returns
 * (e.g. widened a varchar), so PostgreSQL refuses the cached plan until the statement is prepared again.
 */
function isStalePlan(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === "0A000";
}

/**
 * Drops the prepared upserts on this connection, in PostgreSQL and in pg's cache, so their next use
 * prepares them. Both variants: the migration that made one stale made the other stale too.
 */
async function forgetUpsert(connection: PgClient): Promise<void> {
  const parsed = connection.connection?.parsedStatements;
  // Without pg's cache, pg would bind the dropped statement forever: fail loudly instead.
  if (!parsed) throw new Error("pg client exposes no parsedStatements: cannot re-prepare the upsert");
  try {
    for (const { name } of Object.values(UPSERT_STATEMENTS)) {
      // Only those pg parsed on this connection exist in PostgreSQL (else DEALLOCATE fails, 26000).
      if (parsed[name] !== undefined) await connection.query(`DEALLOCATE ${name}`);
    }
  } finally {
    // Even if DEALLOCATE failed: the connection is then broken or the statement gone, and a parse is right.
    for (const { name } of Object.values(UPSERT_STATEMENTS)) delete parsed[name];
    stalePlans.delete(connection);
  }
}

export interface ProductStoreOptions {
  /** Called after a write that added events to the outbox has committed (wakes the relay). */
  onEventsWritten?: () => void;
}

export function createProductRepository(knex: Knex, options: ProductStoreOptions = {}): ProductRepository {
  const upsertRound = async (
    db: Knex | Knex.Transaction,
    round: ProductWrite[],
    mode: UpsertMode,
    detail: ResultDetail,
  ) => {
    const rows = await runUpsert(db, upsertBindings(round), mode, detail);
    const written = new Map(rows.map((row) => [row.id, row]));
    const missing = round.filter((w) => !written.has(w.product.id)).map((w) => w.product.id);
    const current =
      missing.length > 0
        ? await ProductRow.query(db)
            .select([...PRODUCT_COLUMNS, db.raw(sourceSelect("products"))])
            .whereIn("id", missing)
        : ([] as ProductRow[]);
    const stored = new Map(current.map((row) => [row.id, row]));
    return round.map((write): WriteResult => {
      const row = written.get(write.product.id);
      if (row) {
        const outcome = row.inserted
          ? WriteOutcome.CREATED
          : row.changed
            ? WriteOutcome.UPDATED
            : WriteOutcome.UNCHANGED;
        return {
          product: detail === "full" ? productFromColumns(row as ProductColumns) : outcomeProduct(row),
          outcome,
        };
      }
      const kept = stored.get(write.product.id);
      if (!kept) throw new Error(`product ${write.product.id} neither written nor found`);
      const keptProduct = rowToProduct(kept);
      const isStale = compareWrites(storedKey(keptProduct, kept), writeKey(write)) > 0;
      return {
        product: detail === "full" ? keptProduct : outcomeProduct(keptProduct),
        outcome: isStale ? WriteOutcome.STALE : WriteOutcome.UNCHANGED,
      };
    });
  };

  return {
    upsert: (writes, detail = "full") =>
      withDatabaseErrors(async () => {
        const rounds = splitIntoRounds(writes);
        const inTransaction = (mode: UpsertMode) =>
          knex.transaction(async (trx) => {
            const all: WriteResult[] = [];
            for (const round of rounds) all.push(...(await upsertRound(trx, round, mode, detail)));
            return all;
          });
        // A stale plan aborts the transaction: run it once more with plans made now, as the next
        // connection may be stale too.
        const retryFresh = (error: unknown) => {
          if (!isStalePlan(error)) throw error;
          return inTransaction("one-off");
        };
        const results =
          rounds.length === 1
            ? await upsertRound(knex, rounds[0] ?? [], "prepared", detail)
            : await inTransaction("prepared").catch(retryFresh);
        if (results.some((r) => r.outcome === WriteOutcome.CREATED || r.outcome === WriteOutcome.UPDATED)) {
          options.onEventsWritten?.();
        }
        return reorder(writes, results);
      }),

    get: (id) =>
      withDatabaseErrors(async () => {
        const row = await ProductRow.query(knex).select(PRODUCT_COLUMNS).findById(id);
        return row ? rowToProduct(row) : undefined;
      }),

    list: (pageSize, after) =>
      withDatabaseErrors(async () => {
        const { rows } = await knex.raw<{ rows: (ProductColumns & { cursor_xid: string })[] }>(
          listSql(after !== undefined),
          after ? [after.createdXid, after.id, pageSize + 1] : [pageSize + 1],
        );
        const page = rows.slice(0, pageSize);
        const last = page.at(-1);
        const next =
          rows.length > pageSize && last ? { createdXid: last.cursor_xid, id: last.id as string } : undefined;
        return {
          products: page.map(productFromColumns),
          ...(next ? { next } : {}),
        };
      }),

    ping: () =>
      withDatabaseErrors(async () => {
        await knex.raw("SELECT 1");
      }),
  };
}

/**
 * Splits writes so that each round holds an id at most once (one INSERT cannot touch a row twice),
 * keeping per-id order across rounds. Rounds are sorted by id so concurrent batches lock rows in
 * the same order and cannot deadlock.
 */
export function splitIntoRounds(writes: readonly ProductWrite[]): ProductWrite[][] {
  const rounds: ProductWrite[][] = [];
  const seen = new Map<string, number>();
  for (const write of writes) {
    const index = seen.get(write.product.id) ?? 0;
    seen.set(write.product.id, index + 1);
    const round = rounds[index] ?? [];
    round.push(write);
    rounds[index] = round;
  }
  for (const round of rounds)
    round.sort((a, b) => (a.product.id < b.product.id ? -1 : a.product.id > b.product.id ? 1 : 0));
  return rounds.length > 0 ? rounds : [[]];
}

/** Puts round-ordered results back in input order. */
function reorder(writes: readonly ProductWrite[], results: WriteResult[]): WriteResult[] {
  const byId = new Map<string, WriteResult[]>();
  for (const result of results) {
    const list = byId.get(result.product.id) ?? [];
    list.push(result);
    byId.set(result.product.id, list);
  }
  return writes.map(({ product }) => {
    const result = byId.get(product.id)?.shift();
    if (!result) throw new Error(`no write result for product ${product.id}`);
    return result;
  });
}

/** UPSERT_SQL's bindings for one round: one array per column, as its unnest() takes them. */
export function upsertBindings(writes: readonly ProductWrite[]): (string | number | null)[][] {
  return [
    writes.map(({ product: p }) => p.id),
    writes.map(({ product: p }) => p.name),
    writes.map(({ product: p }) => p.description),
    writes.map(({ product: p }) => p.pricing?.amount ?? "0"),
    writes.map(({ product: p }) => p.pricing?.currency ?? ""),
    writes.map(({ product: p }) => p.availability?.quantity ?? 0),
    writes.map(({ product: p }) => availabilityText(p)),
    writes.map(({ product: p }) => p.category),
    writes.map(({ source }) => source?.topic ?? null),
    writes.map(({ source }) => source?.partition ?? null),
    writes.map(({ source }) => source?.offset.toString() ?? null),
  ];
}

function writeKey({ product, source }: ProductWrite): WriteKey {
  return { timestamp: requireAvailability(product), source };
}

/** The key of the write a row holds (rowToProduct of it, and its source columns). */
function storedKey(product: Product, row: ProductRow): WriteKey {
  return { timestamp: requireAvailability(product), source: sourceOf(row) };
}

function requireAvailability(product: Product) {
  const timestamp = product.availability?.timestamp;
  if (!timestamp) throw new Error(`product ${product.id} has no availability.timestamp`);
  return timestamp;
}

/** A row's source position, or undefined for a direct write (its source columns are NULL). */
export function sourceOf(row: ProductRow): SourcePosition | undefined {
  return sourceFromColumns(row.$toDatabaseJson() as unknown as ProductColumns);
}

/** The source columns as a SourcePosition literal (see productFromColumns), if the write had one. */
export function sourceFromColumns(row: Omit<ProductColumns, "id">): SourcePosition | undefined {
  if (row.source_topic === null || row.source_topic === undefined) return undefined;
  return {
    $typeName: "products.v1.SourcePosition",
    topic: row.source_topic,
    partition: row.source_partition ?? 0,
    offset: BigInt(row.source_offset ?? "0"),
  };
}

function availabilityText(product: Product): string {
  const timestamp = product.availability?.timestamp;
  return timestamp ? formatTimestamp(timestamp) : "";
}

/** The product columns as PostgreSQL returns them: snake_case, timestamps as text (see database.ts). */
export interface ProductColumns {
  id: string;
  name: string;
  description: string;
  amount: string;
  currency: string;
  quantity: number;
  availability_at: string;
  category: string;
  version: number | string;
  created_at: string;
  updated_at: string;
  source_topic?: string | null;
  source_partition?: number | null;
  /** Text, exact past 2^53 (the statements select it ::text). */
  source_offset?: string | number | null;
}

/**
 * A Product from its columns, as literals of the generated types (tsc checks every field): this
 * runs for every row a write returns and every event the relay publishes, where create()'s
 * reflection and objection's mapping cost more than the database work.
 */
export function productFromColumns(row: ProductColumns): Product {
  return productWithId(row.id, row);
}

/** productFromColumns of columns that leave the id out (an outbox row's is its product_id). */
export function productWithId(id: string, row: Omit<ProductColumns, "id">): Product {
  return {
    $typeName: "products.v1.Product",
    id,
    name: row.name,
    description: row.description,
    pricing: { $typeName: "products.v1.Pricing", amount: canonicalAmount(row.amount), currency: row.currency },
    availability: {
      $typeName: "products.v1.Availability",
      quantity: row.quantity,
      timestamp: requireTimestamp(row.availability_at),
    },
    category: row.category,
    version: BigInt(row.version),
    createdAt: requireTimestamp(row.created_at),
    updatedAt: requireTimestamp(row.updated_at),
  };
}

/** The product of an "outcome" result: only id and version, the rest left at its defaults. */
export function outcomeProduct({ id, version }: { id: string; version: number | string | bigint }): Product {
  return { $typeName: "products.v1.Product", id, name: "", description: "", category: "", version: BigInt(version) };
}

export function rowToProduct(row: ProductRow): Product {
  return productFromColumns(row.$toDatabaseJson() as unknown as ProductColumns);
}

/** NUMERIC(15,4) comes back as "19.9900": drop the zeros the client did not send. */
function canonicalAmount(numeric: string): string {
  return numeric.includes(".") ? numeric.replace(/\.?0+$/, "") : numeric;
}

function requireTimestamp(text: string) {
  const timestamp = parseTimestamp(text);
  if (!timestamp) throw new Error(`unreadable timestamp from the database: ${text}`);
  return timestamp;
}

// Classes of SQLSTATE that mean "the database is not there right now", not "the request is wrong".
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-3])/;
const UNAVAILABLE_ERRNO = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND", "EPIPE"]);

/** Maps driver errors to ApiErrors; the original error is kept as the cause for logs only. */
async function withDatabaseErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(
      isUnavailable(error) ? "unavailable" : "internal",
      isUnavailable(error) ? "database unavailable, retry later" : "internal error",
      [],
      { cause: error },
    );
  }
}

function isUnavailable(error: unknown): boolean {
  const { code, name, message } = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof code === "string" && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))) return true;
  if (code === "57014") return true; // statement timeout
  if (name === "KnexTimeoutError") return true; // no pooled connection in time
  return (
    typeof message === "string" &&
    /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(message)
  );
}
