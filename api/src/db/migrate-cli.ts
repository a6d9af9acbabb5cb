import { createLogger } from "#platform/logger.js";
import { runMain } from "#platform/run-main.js";
import { loadApiConfig } from "../config.js";
import { migrateToLatest } from "./migrations.js";
import { openDatabase } from "./open-database.js";

/** `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database). */
runMain("migrate", async () => {
  const config = loadApiConfig();
  const logger = createLogger("migrate", config.logLevel, config.logFormat);
  const database = await openDatabase(config, logger);
  try {
    const applied = await migrateToLatest(database.knex);
    logger.info({ applied }, applied.length > 0 ? "migrations applied" : "already up to date");
  } finally {
    await database.close();
  }
});
