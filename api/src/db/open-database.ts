import type { Knex } from "knex";
import type { Logger } from "#platform/logger.js";
import type { ApiConfig } from "../config.js";
import { createKnex, ensureDatabaseExists } from "./database.js";
import { startEmbeddedPostgres } from "./embedded-postgres.js";

export interface OpenDatabase {
  knex: Knex;
  url: string;
  /** Closes the pool, then stops the embedded server if one was started. */
  close(): Promise<void>;
}

/**
 * Connects to DATABASE_URL, or starts the embedded PostgreSQL when it is unset, and creates the
 * database if it does not exist yet.
 */
export async function openDatabase(config: ApiConfig, logger: Logger): Promise<OpenDatabase> {
  let url = config.databaseUrl;
  let stopEmbedded = async () => {};
  if (url === undefined) {
    const embedded = await startEmbeddedPostgres(config.dataDir, config.embeddedPostgresPort, logger);
    stopEmbedded = embedded.stop;
    url = embedded.url;
  }
  try {
    await ensureDatabaseExists(url, logger);
  } catch (error) {
    await stopEmbedded();
    throw error;
  }
  const knex = createKnex(
    {
      url,
      poolMax: config.dbPoolMax,
      connectTimeoutMs: config.dbConnectTimeoutMs,
      statementTimeoutMs: config.dbStatementTimeoutMs,
    },
    logger,
  );
  return {
    knex,
    url,
    async close() {
      await knex.destroy();
      await stopEmbedded();
    },
  };
}
