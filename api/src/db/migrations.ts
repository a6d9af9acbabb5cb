import type { Knex } from "knex";
import * as createProducts from "./migrations/20261127000000_create_products.js";
import * as createProductEvents from "./migrations/20261127010000_create_product_events.js";
import * as orderWritesBySource from "./migrations/20261202000000_order_writes_by_source.js";
import * as listByCreatingTransaction from "./migrations/20261202010000_list_by_creating_transaction.js";
import * as outboxProductColumns from "./migrations/20261203000000_outbox_product_columns.js";
import * as dropEventIdUnique from "./migrations/20261203010000_drop_event_id_unique.js";

/**
 * Migrations are imported statically rather than found by scanning a folder, so they run the same
 * from TypeScript sources, compiled output or a bundle. Add new ones at the end.
 */
const migrations: Record<string, Knex.Migration> = {
  "20261127000000_create_products": createProducts,
  "20261127010000_create_product_events": createProductEvents,
  "20261202000000_order_writes_by_source": orderWritesBySource,
  "20261202010000_list_by_creating_transaction": listByCreatingTransaction,
  "20261203000000_outbox_product_columns": outboxProductColumns,
  "20261203010000_drop_event_id_unique": dropEventIdUnique,
};

const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name] as Knex.Migration,
};

/** Applies pending migrations; knex's lock table makes concurrent starts safe. Returns the names applied. */
export async function migrateToLatest(knex: Knex): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}

/** Undoes the latest applied migration; returns its name. */
export async function migrateDown(knex: Knex): Promise<string[]> {
  const [, undone] = (await knex.migrate.down({ migrationSource })) as [number, string[]];
  return undone;
}

export async function rollbackAll(knex: Knex): Promise<void> {
  await knex.migrate.rollback({ migrationSource }, true);
}
