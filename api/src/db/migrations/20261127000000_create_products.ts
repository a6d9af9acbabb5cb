import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("products", (table) => {
    table.string("id", 128).primary();
    table.string("name", 256).notNullable();
    table.string("description", 4000).notNullable().defaultTo("");
    table.decimal("amount", 15, 4).notNullable();
    table.specificType("currency", "char(3)").notNullable();
    table.integer("quantity").notNullable();
    table.timestamp("availability_at", { useTz: true, precision: 6 }).notNullable();
    table.string("category", 128).notNullable().defaultTo("");
    table.bigInteger("version").notNullable().defaultTo(1);
    table.timestamp("created_at", { useTz: true, precision: 6 }).notNullable().defaultTo(knex.fn.now());
    table.timestamp("updated_at", { useTz: true, precision: 6 }).notNullable().defaultTo(knex.fn.now());
    // Listing pages through products in creation order, with the id breaking ties (keyset pagination).
    table.index(["created_at", "id"], "products_created_at_id_idx");
  });
  await knex.raw("ALTER TABLE products ADD CONSTRAINT products_amount_non_negative CHECK (amount >= 0)");
  await knex.raw("ALTER TABLE products ADD CONSTRAINT products_quantity_non_negative CHECK (quantity >= 0)");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("products");
}
