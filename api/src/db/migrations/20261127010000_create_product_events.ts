import type { Knex } from "knex";

/**
 * The transactional outbox: every write that changes a product adds a row here in the same
 * statement; the relay publishes rows in id order and deletes them. A statement-level trigger
 * wakes relays (LISTEN product_events) when such a write commits.
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
  await knex.raw(`
    CREATE FUNCTION notify_product_events() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('product_events', '');
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE TRIGGER product_events_notify AFTER INSERT ON product_events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_product_events()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("product_events");
  await knex.raw("DROP FUNCTION notify_product_events()");
}
