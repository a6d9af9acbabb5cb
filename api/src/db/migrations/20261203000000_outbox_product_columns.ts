import type { Knex } from "knex";

/**
 * The outbox row's copy of the product, in typed columns instead of a jsonb document: building the
 * document for every row was half of what an event cost PostgreSQL (`npm run bench:outbox`: 13.6
 * µs per event beyond the upsert alone, 9.0 with columns; a quarter less WAL). version and the
 * product's id were columns already. Rows written before this migration, or by a replica that has
 * not been upgraded yet, keep their document; the relay reads either (pg-outbox-store.ts). A relay
 * of the earlier version cannot read the new rows: during a rolling upgrade it fails on the first
 * one and gives up its lease, and a replica of this version takes over (events wait, none is lost).
 */
/** The product's columns as the outbox row copies them, with their types. */
const COLUMNS: readonly (readonly [name: string, type: string])[] = [
  ["name", "text"],
  ["description", "text"],
  ["amount", "numeric"],
  ["currency", "text"],
  ["quantity", "integer"],
  ["availability_at", "timestamptz(6)"],
  ["category", "text"],
  ["created_at", "timestamptz(6)"],
  ["updated_at", "timestamptz(6)"],
  ["source_topic", "text"],
  ["source_partition", "integer"],
  ["source_offset", "bigint"],
];

export async function up(knex: Knex): Promise<void> {
  const added = COLUMNS.map(([name, type]) => `ADD COLUMN ${name} ${type}`);
  await knex.raw(`ALTER TABLE product_events ALTER COLUMN product DROP NOT NULL, ${added.join(", ")}`);
}

/** Back to documents: the rows written with columns get theirs before the columns go. */
export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    UPDATE product_events SET product = jsonb_build_object(
      'id', product_id, 'name', name, 'description', description, 'amount', amount::text,
      'currency', currency, 'quantity', quantity, 'availability_at', availability_at, 'category', category,
      'version', version, 'created_at', created_at, 'updated_at', updated_at, 'source_topic', source_topic,
      'source_partition', source_partition, 'source_offset', source_offset::text)
    WHERE product IS NULL`);
  const dropped = COLUMNS.map(([name]) => `DROP COLUMN ${name}`);
  await knex.raw(`ALTER TABLE product_events ${dropped.join(", ")}, ALTER COLUMN product SET NOT NULL`);
}
