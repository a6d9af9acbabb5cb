import { pino } from "pino";
import { createKnex, ensureDatabaseExists } from "../../api/src/db/database.js";
import { migrateToLatest } from "../../api/src/db/migrations.js";
import { type DisposableDatabase, disposableDatabase } from "../../test/support/disposable-database.js";

/** A new database on the server of serverUrl with the API's schema (its migrations); drop() removes it. */
export async function migratedDatabase(serverUrl: string, prefix: string): Promise<DisposableDatabase> {
  const logger = pino({ level: "silent" });
  const database = disposableDatabase(serverUrl, prefix);
  try {
    await ensureDatabaseExists(database.url, logger);
    const knex = createKnex(
      { url: database.url, poolMax: 1, connectTimeoutMs: 10_000, statementTimeoutMs: 120_000 },
      logger,
    );
    try {
      await migrateToLatest(knex);
    } finally {
      await knex.destroy();
    }
  } catch (error) {
    await database.drop().catch(() => {});
    throw error;
  }
  return database;
}
