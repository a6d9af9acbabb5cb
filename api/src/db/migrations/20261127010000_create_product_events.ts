import type { Knex } from "knex";

/**
 * The transactional outbox: every write that changes a product adds a row here in the same
 * statement; the relay publishes rows in id order and deletes them. No NOTIFY trigger: a NOTIFY
 * in the write transaction serialises every commit of the cluster on PostgreSQL's notify queue
 * lock; writers signal after commit instead (see outbox-signal.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("product_events", (table) => {
    table.bigIncrements("id").primary();
    table.uuid("event_id").notNullable().unique().defaultTo(knex.raw("gen_random_uuid()"));
    table.string("product_id", 128).notNullable();
    table.bigInteger("version").notNullable();
    // The product as this write stored it (amount as text, to stay exact).
    table.jsonb("product").notNullable();
    table.timestamp("persisted_at", { useTz: true, precision: 6 }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("product_events");
}
