import { createLogger } from "#platform/logger.js";
import { createApi, type RunningApi } from "../../api/src/api.js";
import { loadApiConfig } from "../../api/src/config.js";
import { testBrokers } from "./env.js";
import { testLogLevel } from "./logger.js";
import { createTestDatabase, type TestDatabase } from "./postgres.js";

/** What a REST write must declare: the API refuses other content types with 415. */
export const JSON_HEADERS = { "content-type": "application/json" } as const;

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
  let api: RunningApi;
  try {
    api = await startApi({ PORT: "0", DATABASE_URL: database.url, ...env });
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

/**
 * The API over an existing database, on a given port (0 for any), its relay publishing to
 * `persistedTopic`: with the same URL and port, a restarted API is the same service to the
 * scheduler, as after a real outage.
 */
export function startApiOn(databaseUrl: string, port: number, persistedTopic: string): Promise<RunningApi> {
  return startApi({ PORT: String(port), DATABASE_URL: databaseUrl, ...relayEnv(persistedTopic) });
}

/**
 * API settings that turn its outbox relay on, publishing to the test's own persisted topic on the
 * test broker (the API's defaults would publish to the shared produtos-persistidos).
 */
export function relayEnv(persistedTopic: string): Record<string, string> {
  return { OUTBOX_RELAY: "true", KAFKA_BROKER_URL: testBrokers(), TRANSFORMED_TOPIC: persistedTopic };
}

/** The API as its main starts it, on 127.0.0.1 and at TEST_LOG_LEVEL; `env` as the service reads it. */
function startApi(env: Record<string, string>): Promise<RunningApi> {
  const config = loadApiConfig({
    HOST: "127.0.0.1",
    LOG_LEVEL: testLogLevel(),
    SHUTDOWN_TIMEOUT_MS: "2000",
    // Tests that check events turn the relay on, with their own topic.
    OUTBOX_RELAY: "false",
    ...env,
  });
  return createApi(config, createLogger("api", config.logLevel)).start();
}
