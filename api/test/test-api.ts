import { randomBytes } from "node:crypto";
import { createLogger } from "#platform/logger.js";
import { type DisposableDatabase, disposableDatabase } from "../../test/support/disposable-database.js";
import { runScopedDatabasePrefix, testDatabaseUrl } from "../../test/support/env.js";
import { createApi, type RunningApi } from "../src/api.js";
import { type ApiConfig, loadApiConfig } from "../src/config.js";

export type TestDatabase = DisposableDatabase;

/**
 * A new, empty database on the test server (TEST_DATABASE_URL), named with this run's marker so
 * that the root hook can drop it if a test does not; drop() removes it.
 */
export async function createTestDatabase(prefix = "products_test"): Promise<TestDatabase> {
  return disposableDatabase(testDatabaseUrl(), runScopedDatabasePrefix(prefix));
}

export interface TestApi extends RunningApi {
  database: TestDatabase;
  /** Stops the API and drops its database. */
  close(): Promise<void>;
}

/**
 * A real API on a random port over a fresh database (created by the API itself, as in production).
 * Pass environment overrides as the service would read them, e.g. { API_TOKEN: "secret" }.
 */
export async function startTestApi(env: Record<string, string> = {}): Promise<TestApi> {
  const database = await createTestDatabase();
  const config: ApiConfig = loadApiConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: database.url,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    SHUTDOWN_TIMEOUT_MS: "2000",
    // Tests that check events turn the relay on, with their own topic.
    OUTBOX_RELAY: "false",
    ...env,
  });
  let api: RunningApi;
  try {
    api = await createApi(config, createLogger("api", config.logLevel)).start();
  } catch (error) {
    // The API may have created its database before failing (e.g. a migration).
    await database.drop().catch(() => {});
    throw error;
  }
  return {
    ...api,
    database,
    async close() {
      try {
        await api.stop();
      } finally {
        await database.drop();
      }
    },
  };
}

/** The original project's REST body, as its producer sent it. */
export function seedProductJson(overrides: Record<string, unknown> = {}) {
  return {
    id: "12345",
    name: "Nome do Produto",
    description: "Descrição do Produto",
    pricing: { amount: 100.0, currency: "BRL" },
    availability: { quantity: 50, timestamp: "2024-06-29T00:30:03.254878" },
    category: "Categoria do Produto",
    ...overrides,
  };
}

export function uniqueId(prefix = "p"): string {
  return `${prefix}-${randomBytes(8).toString("hex")}`;
}
