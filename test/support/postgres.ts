import pg from "pg";
import { type DisposableDatabase, disposableDatabase } from "./disposable-database.js";
import { runScopedDatabasePrefix, testDatabaseUrl } from "./env.js";

export type TestDatabase = DisposableDatabase;

/**
 * A new, empty database on the test server (TEST_DATABASE_URL), named with this run's marker so
 * that the root hook can drop it if a test does not; drop() removes it.
 */
export async function createTestDatabase(prefix = "products_test"): Promise<TestDatabase> {
  return disposableDatabase(testDatabaseUrl(), runScopedDatabasePrefix(prefix));
}

/** One query on a database of its own connection, for checks while the API is down. */
export async function queryDatabase<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}
