import type { Knex } from "knex";

/**
 * The Kafka position of the write that a row holds, which breaks ties between writes with equal
 * availability_at (see UPSERT_SQL). NULL: a write without one (REST, other clients), and every
 * row written before this migration. Topics compare bytewise ("C"), as the API's own comparison does.
 *
 * last_write_changed says whether the last write that touched the row changed its content or only
 * moved its source forward (same content, newer position): the upsert's RETURNING reads it to
 * decide on the version and the event, as PostgreSQL 15 cannot return the row as it was.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE products
      ADD COLUMN source_topic text COLLATE "C",
      ADD COLUMN source_partition integer,
      ADD COLUMN source_offset bigint,
      ADD COLUMN last_write_changed boolean NOT NULL DEFAULT true,
      ADD CONSTRAINT products_source_complete CHECK (
        (source_topic IS NULL) = (source_partition IS NULL) AND (source_topic IS NULL) = (source_offset IS NULL)
      )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE products
      DROP CONSTRAINT products_source_complete,
      DROP COLUMN source_topic,
      DROP COLUMN source_partition,
      DROP COLUMN source_offset,
      DROP COLUMN last_write_changed`);
}
