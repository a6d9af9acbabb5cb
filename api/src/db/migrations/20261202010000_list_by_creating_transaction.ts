import type { Knex } from "knex";

/**
 * Listing pages by (created_xid, id): the id of the transaction that inserted the row, which the
 * list compares with the oldest transaction still writing, so that a page token never passes a row
 * that may still commit (created_at is the transaction's start, and a later reader could pass it).
 * Rows from before this migration get the migration's transaction, so they keep being listed first,
 * by id; page tokens issued before it are refused.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw("ALTER TABLE products ADD COLUMN created_xid xid8 NOT NULL DEFAULT pg_current_xact_id()");
  await knex.raw("CREATE INDEX products_created_xid_id_idx ON products (created_xid, id)");
  await knex.raw("DROP INDEX products_created_at_id_idx");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("CREATE INDEX products_created_at_id_idx ON products (created_at, id)");
  await knex.raw("DROP INDEX products_created_xid_id_idx");
  await knex.raw("ALTER TABLE products DROP COLUMN created_xid");
}
