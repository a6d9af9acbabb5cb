/**
 * Lists what a test run left behind on the services it reused: databases, topics and consumer groups
 * named with its marker (TEST_RUN_ID). Exits 1 if there are any, 0 otherwise; a service that does not
 * answer is skipped (then it was the run's own, and went with it). Used by .ci/run after `npm test`.
 *
 *   TEST_RUN_ID=<id> node --import tsx test/support/leftovers.ts
 */
import pg from "pg";
import { isRunScopedDatabase, isRunScopedName, testBrokers, testDatabaseUrl } from "./env.js";
import { adminFor, brokerAnswers, probePostgres, redact } from "./services.js";

async function databasesOf(url: string, runId: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>("SELECT datname FROM pg_database");
    return rows.map((row) => row.datname).filter((name) => isRunScopedDatabase(name, runId));
  } finally {
    await client.end();
  }
}

async function topicsAndGroupsOf(brokers: string, runId: string): Promise<string[]> {
  const admin = adminFor(brokers, 10_000);
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((name) => isRunScopedName(name, runId));
    const { groups } = await admin.listGroups();
    const ours = groups.map((group) => group.groupId).filter((name) => isRunScopedName(name, runId));
    return [...topics.map((topic) => `topic ${topic}`), ...ours.map((group) => `consumer group ${group}`)];
  } finally {
    await admin.disconnect();
  }
}

const runId = process.env.TEST_RUN_ID;
if (!runId) {
  process.stderr.write("leftovers: set TEST_RUN_ID to the run's marker\n");
  process.exit(2);
}
const databaseUrl = testDatabaseUrl();
const brokers = testBrokers();
const found: string[] = [];
if ((await probePostgres(databaseUrl)).ok) {
  found.push(...(await databasesOf(databaseUrl, runId)).map((name) => `database ${name} on ${redact(databaseUrl)}`));
} else {
  process.stdout.write(`leftovers: no PostgreSQL at ${redact(databaseUrl)}; no databases to check\n`);
}
if (await brokerAnswers(brokers)) {
  found.push(...(await topicsAndGroupsOf(brokers, runId)).map((what) => `${what} on ${brokers}`));
} else {
  process.stdout.write(`leftovers: no Kafka at ${brokers}; no topics to check\n`);
}
if (found.length > 0) {
  process.stderr.write(`leftovers: run ${runId} left behind:\n${found.map((what) => `  ${what}\n`).join("")}`);
  process.exit(1);
}
process.stdout.write(`leftovers: run ${runId} left no databases, topics or groups\n`);
