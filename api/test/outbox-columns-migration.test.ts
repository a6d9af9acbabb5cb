import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { expect } from "chai";
import { ProductSchema, SourcePositionSchema } from "#gen/products/v1/product_pb.js";
import { testLogger } from "../../test/support/logger.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/postgres.js";
import { createKnex, ensureDatabaseExists } from "../src/db/database.js";
import { migrateDown, migrateToLatest } from "../src/db/migrations.js";
import { OUTBOX_ROW_SELECT } from "../src/events/pg-outbox-store.js";
import type { OutboxRow } from "../src/events/product-persisted.js";
import { createProductRepository } from "../src/products/product-repository.js";

describe("the migration of the outbox's product to columns @integration", function () {
  this.timeout(60_000);
  let database: TestDatabase;
  let knex: ReturnType<typeof createKnex>;

  before(async () => {
    database = await createTestDatabase("products_outbox_columns");
    const logger = testLogger("migration");
    await ensureDatabaseExists(database.url, logger);
    knex = createKnex({ url: database.url, poolMax: 2, connectTimeoutMs: 10_000, statementTimeoutMs: 30_000 }, logger);
    await migrateToLatest(knex);
  });
  after(async () => {
    await knex?.destroy();
    await database?.drop();
  });

  const outboxRows = async () =>
    (await knex.raw<{ rows: OutboxRow[] }>(`SELECT ${OUTBOX_ROW_SELECT} FROM product_events ORDER BY id`)).rows;

  it("when undone, then each event's product becomes the document the earlier version wrote; done again, it reads the same", async () => {
    const product = create(ProductSchema, {
      id: "migrated",
      name: 'Café "moído" \\ 𝄞',
      description: "",
      pricing: { amount: "10.5", currency: "BRL" },
      availability: { quantity: 3, timestamp: timestampFromDate(new Date("2024-07-01T12:00:00.123Z")) },
      category: "bebidas",
    });
    // A record's position past 2^53, which only text keeps exact.
    const source = create(SourcePositionSchema, { topic: "cadastro-produtos", partition: 1, offset: 2n ** 53n + 1n });
    const repository = createProductRepository(knex);
    await repository.upsert([{ product, source }, { product: { ...product, id: "direct" } }]);
    const written = await outboxRows();
    expect(written.map((row) => [row.product_id, row.source_offset])).to.deep.equal([
      ["direct", null],
      ["migrated", "9007199254740993"],
    ]);

    expect(await migrateDown(knex)).to.deep.equal(["20261203010000_drop_event_id_unique"]);
    expect(await migrateDown(knex)).to.deep.equal(["20261203000000_outbox_product_columns"]);
    const documents = (
      await knex.raw<{ rows: { product_id: string; product: Record<string, unknown> }[] }>(
        "SELECT product_id, product FROM product_events ORDER BY id",
      )
    ).rows;
    const migrated = documents.find((row) => row.product_id === "migrated")?.product;
    expect(migrated).to.include({
      id: "migrated",
      name: 'Café "moído" \\ 𝄞',
      amount: "10.5000",
      currency: "BRL",
      quantity: 3,
      version: 1,
      source_topic: "cadastro-produtos",
      source_partition: 1,
      source_offset: "9007199254740993",
    });
    expect(Object.keys(migrated ?? {}).sort()).to.deep.equal(
      [
        "amount",
        "availability_at",
        "category",
        "created_at",
        "currency",
        "description",
        "id",
        "name",
        "quantity",
        "source_offset",
        "source_partition",
        "source_topic",
        "updated_at",
        "version",
      ].sort(),
    );

    expect(await migrateToLatest(knex)).to.deep.equal([
      "20261203000000_outbox_product_columns",
      "20261203010000_drop_event_id_unique",
    ]);
    expect(await outboxRows()).to.deep.equal(written);
  });
});
