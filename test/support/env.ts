import { randomSuffix } from "./unique-names.js";

/**
 * Where integration tests find their services, and the marker that names what they create.
 *
 * The root hook (test/support/services.ts) decides the services and sets KAFKA_BROKER_URL and
 * TEST_DATABASE_URL in its beforeAll, which runs after mocha has loaded every spec file: read
 * them through these functions, inside hooks and tests, never into module-level constants.
 */

export const DEFAULT_BROKERS = "127.0.0.1:9092";
export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres";

/** The Kafka bootstrap servers of this run (KAFKA_BROKER_URL). */
export function testBrokers(): string {
  return process.env.KAFKA_BROKER_URL || DEFAULT_BROKERS;
}

/** The PostgreSQL server tests create their databases on (TEST_DATABASE_URL). */
export function testDatabaseUrl(): string {
  return process.env.TEST_DATABASE_URL || DEFAULT_DATABASE_URL;
}

const RUN_ID = /^[a-z0-9]{4,24}$/;

/**
 * This run's marker (TEST_RUN_ID, random unless given). Every database, topic and consumer group a
 * test creates carries it, so that the root hook, or CI, can find and remove what a run left behind.
 */
export function testRunId(): string {
  const given = process.env.TEST_RUN_ID;
  if (given === undefined || given === "") {
    // Kept in the environment: stable for the whole process, and inherited by the tools tests spawn.
    const id = randomSuffix(4);
    process.env.TEST_RUN_ID = id;
    return id;
  }
  if (!RUN_ID.test(given)) {
    throw new Error(`TEST_RUN_ID=${JSON.stringify(given)}: expected 4-24 of a-z 0-9`);
  }
  return given;
}

/** `<run id>-<random>`: a unique part for topic and group names, e.g. `test-input-${runScopedSuffix()}`. */
export function runScopedSuffix(): string {
  return `${testRunId()}-${randomSuffix()}`;
}

/** Whether a topic or group name carries this run's marker (as runScopedSuffix puts it). */
export function isRunScopedName(name: string, runId = testRunId()): boolean {
  return name.includes(`-${runId}-`);
}

/** The prefix of this run's database names: disposableDatabase appends `_<random>`. */
export function runScopedDatabasePrefix(prefix: string): string {
  return `${prefix}_${testRunId()}`;
}

/** Whether a database name carries this run's marker (as runScopedDatabasePrefix puts it). */
export function isRunScopedDatabase(name: string, runId = testRunId()): boolean {
  return name.includes(`_${runId}_`);
}
