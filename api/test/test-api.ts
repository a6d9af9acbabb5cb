import { randomBytes } from "node:crypto";
import { createLogger } from "../../lib/logger.js";
import { createApi, type RunningApi } from "../src/api.js";
import { type ApiConfig, loadApiConfig } from "../src/config.js";
import { type DisposableDatabase, disposableDatabase } from "../src/db/disposable-database.js";

/** The PostgreSQL server tests create their databases on (the machine's, or CI's). */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export type TestDatabase = DisposableDatabase;

/** A new, empty database with a random name; drop() removes it. */
export async function createTestDatabase(prefix = "products_test"): Promise<TestDatabase> {
  return disposableDatabase(TEST_POSTGRES_URL, prefix);
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
  const api = await createApi(config, createLogger("api", config.logLevel)).start();
  return {
    ...api,
    database,
    async close() {
      await api.stop();
      await database.drop();
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
