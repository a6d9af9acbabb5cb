import { create, fromBinary, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { expect } from "chai";
import type pg from "pg";
import { type ProductPersisted, ProductPersistedSchema } from "#gen/products/v1/events_pb.js";
import { type Product, ProductSchema } from "#gen/products/v1/product_pb.js";
import { ProductService, WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import { JSON_HEADERS, startTestApi, type TestApi } from "../../test/support/api.js";
import { queryDatabase } from "../../test/support/postgres.js";
import { seedProductJson } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";
import { OUTBOX_ROW_SELECT } from "../src/events/pg-outbox-store.js";
import { type OutboxRow, toEventRecord } from "../src/events/product-persisted.js";
import { UPSERT_STATEMENT } from "../src/products/product-repository.js";

const POOL_SIZE = 4;

function newProduct(id: string, quantity = 1) {
  return create(ProductSchema, {
    id,
    name: "Nome do Produto",
    description: "Descrição do Produto",
    pricing: { amount: "19.99", currency: "BRL" },
    availability: { quantity, timestamp: timestampFromDate(new Date("2024-06-29T00:30:03.254Z")) },
    category: "Categoria do Produto",
  });
}

const postProduct = (api: TestApi, body: unknown) =>
  fetch(`${api.url}/products/`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body) }).then(
    async (r) => ({
      status: r.status,
      body: (await r.json()) as Record<string, unknown>,
    }),
  );

const SEED_TIMESTAMP = "2024-06-29T00:30:03.254878";

type PooledClient = pg.ClientBase & { connection: { parsedStatements: Record<string, string> } };

describe("a migration while the API runs @integration", () => {
  let api: TestApi;
  let grpc: Client<typeof ProductService>;
  before(async () => {
    // A small pool and more writes in flight than connections: concurrent writes use every connection.
    api = await startTestApi({ DB_POOL_MAX: String(POOL_SIZE), DB_WRITE_CONCURRENCY: String(2 * POOL_SIZE) });
    grpc = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
  });
  after(async () => {
    await api?.close();
  });

  /** Holds every pooled connection at once (so each is a different one) while `inspect` looks at them. */
  async function onEveryConnection<T>(inspect: (connection: PooledClient) => Promise<T>): Promise<T[]> {
    const connections = (await Promise.all(
      Array.from({ length: POOL_SIZE }, () => api.knex.client.acquireConnection()),
    )) as PooledClient[];
    try {
      return await Promise.all(connections.map(inspect));
    } finally {
      for (const c of connections) await api.knex.client.releaseConnection(c);
    }
  }

  /** Per pooled connection: whether PostgreSQL holds the upsert prepared, and prepared after `since`. */
  const upsertPrepared = (since: string) =>
    onEveryConnection(async (connection) => {
      const { rows } = await connection.query<{ fresh: boolean }>(
        "SELECT prepare_time > $1::timestamptz AS fresh FROM pg_prepared_statements WHERE name = $2",
        [since, UPSERT_STATEMENT.name],
      );
      const cached = connection.connection.parsedStatements[UPSERT_STATEMENT.name] !== undefined;
      return rows.length === 1 && cached ? (rows[0]?.fresh ? "re-prepared" : "prepared before") : "not prepared";
    });

  const everyConnection = (state: string) => Array.from({ length: POOL_SIZE }, () => state);

  /** Writes on every pooled connection, so each has the upsert prepared; returns the server's time after. */
  async function warmUp(): Promise<string> {
    const warm = await Promise.all(
      Array.from({ length: 8 * POOL_SIZE }, () => postProduct(api, seedProductJson({ id: uniqueId("warm") }))),
    );
    expect(warm.map((r) => r.status)).to.deep.equal(warm.map(() => 201));
    const [now] = await queryDatabase<{ at: string }>(api.database.url, "SELECT clock_timestamp()::text AS at");
    if (!now) throw new Error("no server time");
    expect(await upsertPrepared(now.at)).to.deep.equal(everyConnection("prepared before"));
    return now.at;
  }

  /** What another replica's migration does, on a connection of its own; returns the server's time after. */
  async function migrate(sql: string): Promise<string> {
    await queryDatabase(api.database.url, sql);
    const [now] = await queryDatabase<{ at: string }>(api.database.url, "SELECT clock_timestamp()::text AS at");
    if (!now) throw new Error("no server time");
    return now.at;
  }

  /** Each product's events, in order, as the relay reads the outbox (the relay is off). */
  async function eventsOf(ids: string[]): Promise<Map<string, ProductPersisted[]>> {
    const list = ids.map((id) => `'${id}'`).join(", ");
    // The API's own client: its type parsers give the rows the relay gets.
    const { rows } = await api.knex.raw<{ rows: OutboxRow[] }>(
      `SELECT ${OUTBOX_ROW_SELECT} FROM product_events WHERE product_id IN (${list}) ORDER BY id`,
    );
    const byId = new Map<string, ProductPersisted[]>();
    for (const row of rows) {
      const events = byId.get(row.product_id) ?? [];
      events.push(fromBinary(ProductPersistedSchema, toEventRecord(row).value as Buffer));
      byId.set(row.product_id, events);
    }
    return byId;
  }

  /** Each product's last event carries exactly the product as written, whatever columns the tables gained. */
  async function expectLastEventsMatch(written: Product[]) {
    const events = await eventsOf(written.map((p) => p.id));
    for (const product of written) {
      const last = events.get(product.id)?.at(-1);
      expect(last, `event of ${product.id}`).to.not.equal(undefined);
      expect(last?.version).to.equal(product.version);
      expect(toJson(ProductSchema, last?.product ?? create(ProductSchema))).to.deep.equal(
        toJson(ProductSchema, product),
      );
    }
  }

  /** BatchCreateProducts with each id twice: two rounds, so one transaction per batch. */
  async function batchesWithRepeats(count: number): Promise<Product[]> {
    const ids = Array.from({ length: count }, () => uniqueId("batch"));
    const batches = await Promise.all(
      ids.map((id) =>
        grpc.batchCreateProducts({ requests: [{ product: newProduct(id, 1) }, { product: newProduct(id, 2) }] }),
      ),
    );
    return batches.map(({ results }) => {
      const outcomes = results.map((r) => (r.result.case === "response" ? r.result.value.outcome : r.result.value));
      expect(outcomes).to.deep.equal([WriteOutcome.CREATED, WriteOutcome.UPDATED]);
      const last = results[1]?.result;
      if (last?.case !== "response" || !last.value.product) throw new Error("no product in the batch response");
      expect(last.value.product.version).to.equal(2n);
      return last.value.product;
    });
  }

  /** Single-product batches: one statement each, no transaction. */
  async function singleBatches(count: number): Promise<Product[]> {
    const batches = await Promise.all(
      Array.from({ length: count }, () =>
        grpc.batchCreateProducts({ requests: [{ product: newProduct(uniqueId("one")) }] }),
      ),
    );
    return batches.map(({ results }) => {
      const only = results[0]?.result;
      if (only?.case !== "response" || !only.value.product) throw new Error("no product in the batch response");
      expect(only.value.outcome).to.equal(WriteOutcome.CREATED);
      return only.value.product;
    });
  }

  /** Creates then updates products over REST; returns them as the API reads them back. */
  async function restWrites(count: number): Promise<Product[]> {
    const ids = Array.from({ length: count }, () => uniqueId("rest"));
    const created = await Promise.all(ids.map((id) => postProduct(api, seedProductJson({ id }))));
    expect(created.map((r) => r.status)).to.deep.equal(ids.map(() => 201));
    const changed = { quantity: 7, timestamp: SEED_TIMESTAMP };
    const updated = await Promise.all(
      ids.map((id) => postProduct(api, seedProductJson({ id, availability: changed }))),
    );
    expect(updated.map((r) => [r.status, r.body.version])).to.deep.equal(ids.map(() => [200, 2]));
    const read = await Promise.all(ids.map(async (id) => (await grpc.getProduct({ id })).product));
    expect(read.map((p) => p?.availability?.quantity)).to.deep.equal(ids.map(() => 7));
    return read.map((p) => p ?? create(ProductSchema));
  }

  it("when columns are added to both tables, then every write succeeds on its prepared plan, events keep their shape and reads work", async () => {
    const before = await warmUp();
    await migrate("ALTER TABLE products ADD COLUMN extra text; ALTER TABLE product_events ADD COLUMN note text");

    const batched = await batchesWithRepeats(2 * POOL_SIZE);
    const single = await singleBatches(2 * POOL_SIZE);
    const rest = await restWrites(8 * POOL_SIZE);
    await expectLastEventsMatch([...batched, ...single, ...rest]);

    const one = await fetch(`${api.url}/products/${encodeURIComponent(rest[0]?.id ?? "")}`);
    expect(one.status).to.equal(200);
    expect(Object.keys((await one.json()) as object)).to.not.include("extra");
    const page = await fetch(`${api.url}/products/?page_size=500`);
    expect(page.status).to.equal(200);
    const listed = ((await page.json()) as { products: { id: string }[] }).products.map((p) => p.id);
    expect(listed).to.include.members([...batched, ...single, ...rest].map((p) => p.id));
    // The listed result type did not change: PostgreSQL replanned the statements it already had.
    expect(await upsertPrepared(before)).to.deep.equal(everyConnection("prepared before"));
  });

  it("when a returned column changes type, then batches in a transaction succeed, and each connection prepares the upsert again", async () => {
    await warmUp();
    const changed = await migrate("ALTER TABLE products ALTER COLUMN category TYPE varchar(256)");

    const first = await batchesWithRepeats(2 * POOL_SIZE);
    await expectLastEventsMatch(first);
    // The stale statements are dropped at each connection's next use, after the aborted transaction.
    const again = await batchesWithRepeats(2 * POOL_SIZE);
    await expectLastEventsMatch(again);
    expect(await upsertPrepared(changed)).to.deep.equal(everyConnection("re-prepared"));
    await expectLastEventsMatch(await restWrites(8 * POOL_SIZE));
  });

  it("when a returned column changes type, then single writes succeed, each connection preparing the upsert again", async () => {
    await warmUp();
    const changed = await migrate("ALTER TABLE products ALTER COLUMN description TYPE varchar(8000)");

    const rest = await restWrites(8 * POOL_SIZE);
    const single = await singleBatches(2 * POOL_SIZE);
    await expectLastEventsMatch([...rest, ...single]);
    expect(await upsertPrepared(changed)).to.deep.equal(everyConnection("re-prepared"));
  });
});
