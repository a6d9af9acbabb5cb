import knexFactory, { type Knex } from "knex";
import pg from "pg";
import type { Logger } from "#platform/logger.js";

export interface DatabaseOptions {
  url: string;
  poolMax: number;
  /** Longest wait for a pooled connection, and for a new one: bounds how long a request hangs when the database is down. */
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

const TIMESTAMPTZ_OID = 1184;
const INT8_OID = 20;

/**
 * Per-connection type parsers: timestamps stay text so microseconds survive (a JS Date keeps
 * milliseconds), int8 becomes a number (versions never approach 2^53), NUMERIC stays a string.
 */
export const pgTypes = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === TIMESTAMPTZ_OID) return (value: string) => value;
    if (oid === INT8_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format ?? "text");
  },
};

export function createKnex(options: DatabaseOptions, logger: Logger): Knex {
  // knex and its pool print to the console by default; their messages belong in our structured log.
  const log = (message: unknown) => logger.debug({ knex: String(message) }, "database client");
  return knexFactory({
    log: { warn: log, error: log, debug: log, deprecate: log },
    client: "pg",
    connection: {
      connectionString: options.url,
      connectionTimeoutMillis: options.connectTimeoutMs,
      statement_timeout: options.statementTimeoutMs,
      options: "-c TimeZone=UTC",
      types: pgTypes,
    } as Knex.PgConnectionConfig,
    pool: { min: 0, max: options.poolMax },
    acquireConnectionTimeout: options.connectTimeoutMs,
  });
}

/** Normalises the original project's SQLAlchemy-style URL (postgresql+psycopg2://…) for node-postgres. */
export function normaliseDatabaseUrl(url: string): string {
  return url.replace(/^postgres(?:ql)?\+\w+:\/\//, "postgresql://");
}

/** Creates the database named in url when it does not exist yet (connecting to "postgres" to do so). */
export async function ensureDatabaseExists(url: string, logger: Logger): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!name) return;
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await probe.connect();
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== "3D000") throw error; // 3D000: database does not exist
  } finally {
    await probe.end().catch(() => {});
  }
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    logger.info({ database: name }, "created database");
  } catch (error) {
    if ((error as { code?: string }).code !== "42P04") throw error; // 42P04: created concurrently
  } finally {
    await client.end();
  }
}
