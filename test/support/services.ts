/**
 * Mocha root hook plugin (`mocha --require test/support/services.ts`): gives the integration tests
 * a Kafka broker and a PostgreSQL server, and takes away what the run created.
 *
 * beforeAll: reuses the broker at KAFKA_BROKER_URL (default 127.0.0.1:9092) if it serves a Kafka
 * request, else starts the project's own there (scripts/kafka.sh, data in a temp dir); reuses the
 * server at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) if it accepts a
 * query, else starts the embedded PostgreSQL on a free port (temp dir). What it settled on is put in
 * process.env.KAFKA_BROKER_URL and process.env.TEST_DATABASE_URL (read them via test/support/env.ts).
 *
 * afterAll: drops the databases and deletes the topics and consumer groups that carry this run's
 * marker (TEST_RUN_ID), stops what beforeAll started, removes its temp dirs, then arms a watchdog:
 * a process still alive WATCHDOG_MS later prints what keeps it alive and exits non-zero.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import pg from "pg";
import { createEnvReader } from "#platform/env.js";
import { kafkaAnswers, readKafkaConfig } from "#platform/kafka.js";
import { withTimeout } from "#platform/timeout.js";
import {
  type EmbeddedDatabase,
  embeddedPostgresDir,
  startEmbeddedPostgres,
} from "../../api/src/db/embedded-postgres.js";
import { isRunScopedDatabase, isRunScopedName, testBrokers, testDatabaseUrl, testRunId } from "./env.js";
import { freePorts } from "./free-port.js";
import { testLogger } from "./logger.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const KAFKA_SCRIPT = path.join(ROOT, "scripts/kafka.sh");

/** Bounds: a probe, a start (kafka.sh downloads Kafka with Maven on a first run), a stop, the cleanup. */
const PROBE_TIMEOUT_MS = 8_000;
const KAFKA_START_TIMEOUT_MS = 300_000;
const POSTGRES_START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 45_000;
const CLEANUP_TIMEOUT_MS = 20_000;
/** Longest wait for a test's killed consumer to leave its group (its session timeout, plus margin). */
const GROUP_EMPTY_WAIT_MS = 15_000;
/** How long after the root afterAll the process may take to exit on its own. */
const WATCHDOG_MS = 10_000;

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

interface StartedKafka {
  dataDir: string;
  env: NodeJS.ProcessEnv;
}

interface StartedPostgres {
  dataDir: string;
  port?: number;
  server?: EmbeddedDatabase;
}

/** What this process started (cleared once stopped), and what it found running. */
const started: { kafka?: StartedKafka; postgres?: StartedPostgres } = {};
const reused: { kafka?: string; postgres?: string } = {};
/** The kafka.sh runs in progress, killed first if the run is interrupted. */
const scripts = new Set<ChildProcess>();

export const mochaHooks: Mocha.RootHookObject = {
  // Named, for mocha's report: `"before all" hook: provideTestServices in "{root}"`.
  beforeAll: async function provideTestServices(this: Mocha.Context) {
    this.timeout(KAFKA_START_TIMEOUT_MS + 2 * PROBE_TIMEOUT_MS);
    await provide();
  },
  afterAll: async function releaseTestServices(this: Mocha.Context) {
    this.timeout(CLEANUP_TIMEOUT_MS + STOP_TIMEOUT_MS + 5_000);
    try {
      await release();
    } finally {
      armWatchdog();
    }
  },
};

function say(message: string): void {
  process.stderr.write(`test services: ${message}\n`);
}

async function provide(): Promise<void> {
  const runId = testRunId();
  const brokers = testBrokers();
  const databaseUrl = testDatabaseUrl();
  // Before anything starts: a Ctrl-C or kill must not leave a broker (in its own session) running.
  for (const signal of SIGNALS) process.on(signal, onSignal);
  process.once("exit", stopStartedSync);

  const [kafkaUp, postgres] = await Promise.all([brokerAnswers(brokers), probePostgres(databaseUrl)]);
  if (!postgres.ok && postgres.refused) {
    throw new Error(
      `PostgreSQL at ${redact(databaseUrl)} answers but refuses the tests: ${postgres.reason}. ` +
        "Fix TEST_DATABASE_URL (a role that may create databases), or unset it.",
    );
  }
  // Both at once: the broker's JVM and initdb take a few seconds each.
  const [kafka, database] = await Promise.allSettled([
    kafkaUp ? brokers : startKafka(brokers),
    postgres.ok ? databaseUrl : startPostgres(databaseUrl, postgres.reason),
  ]);
  if (kafka.status === "rejected" || database.status === "rejected") {
    const reasons = [kafka, database].flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
    throw new Error(reasons.join("\n"));
  }
  // Found running, or came up meanwhile (startKafka then reuses it): this run cleans up on it.
  if (!started.kafka) reused.kafka = kafka.value;
  if (!started.postgres) reused.postgres = database.value;
  process.env.KAFKA_BROKER_URL = kafka.value;
  process.env.TEST_DATABASE_URL = database.value;
  say(
    `run ${runId}: Kafka at ${kafka.value} (${started.kafka ? "started" : "running"}), ` +
      `PostgreSQL at ${redact(database.value)} (${started.postgres ? "started, embedded" : "running"})`,
  );
}

async function release(): Promise<void> {
  const runId = testRunId();
  const problems: string[] = [];
  // A server this run started takes everything with it; on a reused one, only this run's things go.
  await Promise.all([
    reused.postgres &&
      bounded(dropRunDatabases(reused.postgres, runId), CLEANUP_TIMEOUT_MS, "dropping this run's databases").then(
        (dropped) => dropped.length > 0 && say(`dropped databases the tests left behind: ${dropped.join(", ")}`),
        (error: Error) => problems.push(error.message),
      ),
    reused.kafka &&
      bounded(deleteRunTopicsAndGroups(reused.kafka, runId), CLEANUP_TIMEOUT_MS, "deleting this run's topics").then(
        (deleted) => deleted.length > 0 && say(`deleted topics the tests left behind: ${deleted.join(", ")}`),
        (error: Error) => problems.push(error.message),
      ),
  ]);
  await Promise.all([
    stopKafka().catch((error: Error) => problems.push(error.message)),
    stopPostgres().catch((error: Error) => problems.push(error.message)),
  ]);
  for (const signal of SIGNALS) process.off(signal, onSignal);
  if (problems.length > 0) throw new Error(`cleaning up after the tests: ${problems.join("; ")}`);
}

// --- Kafka ---------------------------------------------------------------------------------

export function adminFor(brokers: string, requestTimeout: number) {
  return new Kafka({
    clientId: "test-services",
    brokers: brokers.split(",").map((broker) => broker.trim()),
    connectionTimeout: 2_000,
    requestTimeout,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  }).admin();
}

/** Whether a broker at `brokers` serves requests (platform/kafka.ts's probe, as npm start uses it). */
export function brokerAnswers(brokers: string): Promise<boolean> {
  const read = createEnvReader({ KAFKA_BROKER_URL: brokers });
  const config = readKafkaConfig(read, { clientId: "test-services" });
  read.done();
  return kafkaAnswers(config, PROBE_TIMEOUT_MS);
}

async function startKafka(brokers: string): Promise<string> {
  const cannot = (why: string) =>
    new Error(
      `Kafka is not running at ${brokers} and cannot be started: ${why}. ` +
        "Or start a broker some other way and set KAFKA_BROKER_URL to it.",
    );
  const first = firstBroker(brokers);
  if (!first) throw cannot(`KAFKA_BROKER_URL=${JSON.stringify(brokers)} is not host:port`);
  if (first.host !== "127.0.0.1" && first.host !== "localhost") {
    throw cannot(`scripts/kafka.sh starts brokers on 127.0.0.1 only, not on ${first.host}`);
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), `test-kafka-${testRunId()}-`));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KAFKA_BROKER_URL: brokers,
    KAFKA_DATA_DIR: dataDir,
    KAFKA_START_TIMEOUT: process.env.KAFKA_START_TIMEOUT ?? "45",
  };
  // The broker's port is the URL's; a stray KAFKA_PORT would put it elsewhere.
  delete env.KAFKA_PORT;
  started.kafka = { dataDir, env };
  say(`Kafka does not answer at ${brokers}; starting one there (scripts/kafka.sh, data in ${dataDir})`);
  const startedAt = Date.now();
  const result = await runKafkaScript("start", env, KAFKA_START_TIMEOUT_MS);
  if (result.code !== 0) {
    await stopKafka().catch(() => {});
    throw cannot(result.error);
  }
  if (!existsSync(path.join(dataDir, "broker.pid"))) {
    // kafka.sh found the port taken and started nothing: fine if a broker came up there meanwhile.
    await rm(dataDir, { recursive: true, force: true });
    started.kafka = undefined;
    if (await brokerAnswers(brokers)) return brokers;
    throw cannot(`${first.host}:${first.port} is taken by something that does not answer as a Kafka broker`);
  }
  say(`Kafka started at ${brokers} in ${seconds(startedAt)} s`);
  return brokers;
}

async function stopKafka(): Promise<void> {
  const kafka = started.kafka;
  if (!kafka) return;
  const result = await runKafkaScript("stop", kafka.env, STOP_TIMEOUT_MS);
  if (result.code !== 0) throw new Error(`stopping the test broker: ${result.error}`);
  await rm(kafka.dataDir, { recursive: true, force: true });
  started.kafka = undefined;
}

/** `bash scripts/kafka.sh <command>`, its stderr passed through; killed, with its children, at timeoutMs. */
function runKafkaScript(
  command: "start" | "stop",
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; error: string }> {
  return new Promise((resolve) => {
    // detached: a process group of its own, so that a timeout also kills the mvn or java it runs.
    const child = spawn("bash", [KAFKA_SCRIPT, command], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "ignore", "pipe"],
      detached: true,
    });
    scripts.add(child);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      process.stderr.write(chunk);
    });
    const timer = setTimeout(() => {
      stderr += `kafka: error: 'scripts/kafka.sh ${command}' did not finish in ${timeoutMs / 1000} s\n`;
      killGroup(child);
    }, timeoutMs);
    const done = (code: number | null, spawnError?: Error) => {
      clearTimeout(timer);
      scripts.delete(child);
      const lines = stderr.split("\n").filter((line) => line.trim() !== "");
      const errors = lines.filter((line) => line.startsWith("kafka: error: ")).map((line) => line.slice(14));
      resolve({ code, error: spawnError?.message ?? (errors.join("; ") || lines.slice(-3).join(" ")) });
    };
    child.on("error", (error) => done(null, error));
    child.on("close", (code) => done(code));
  });
}

/** The first entry of a broker list as host and port, as kafka.sh reads it. */
function firstBroker(brokers: string): { host: string; port: number } | undefined {
  const first = (brokers.split(",")[0] ?? "").trim().replace(/^\w+:\/\//, "");
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(first);
  if (!match?.[1] || !match[2]) return undefined;
  return { host: match[1], port: Number(match[2]) };
}

/** Deletes the topics and consumer groups named with this run's marker; returns the topics. */
async function deleteRunTopicsAndGroups(brokers: string, runId: string): Promise<string[]> {
  const admin = adminFor(brokers, 10_000);
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((name) => isRunScopedName(name, runId));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 10_000 });
    // Groups outlive their consumers by design (committed offsets); no test deletes its own.
    const { groups } = await admin.listGroups();
    const ours = groups.map((group) => group.groupId).filter((name) => isRunScopedName(name, runId));
    if (ours.length > 0) await deleteGroupsOnceEmpty(admin, ours);
    return topics;
  } finally {
    await admin.disconnect();
  }
}

/** Kafka's NON_EMPTY_GROUP: a member is still in the group (a killed consumer, until its session expires). */
const NON_EMPTY_GROUP = 68;
const GROUP_GONE = 69; // GROUP_ID_NOT_FOUND: deleted meanwhile

/**
 * Deletes the groups, waiting for the ones that still have a member (a consumer a test killed stays
 * a member until its session times out) until GROUP_EMPTY_WAIT_MS; other failures throw.
 */
async function deleteGroupsOnceEmpty(admin: ReturnType<typeof adminFor>, groupIds: string[]): Promise<void> {
  const deadline = Date.now() + GROUP_EMPTY_WAIT_MS;
  let pending = groupIds;
  for (;;) {
    try {
      await admin.deleteGroups(pending);
      return;
    } catch (error) {
      const failed = (error as { groups?: { groupId: string; errorCode: number }[] }).groups;
      if (failed === undefined || failed.some((group) => ![NON_EMPTY_GROUP, GROUP_GONE].includes(group.errorCode))) {
        throw error;
      }
      pending = failed.filter((group) => group.errorCode === NON_EMPTY_GROUP).map((group) => group.groupId);
      if (pending.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `consumer groups still have members after ${GROUP_EMPTY_WAIT_MS / 1000} s: ${pending.join(", ")}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

// --- PostgreSQL ----------------------------------------------------------------------------

type PostgresProbe = { ok: true } | { ok: false; refused: boolean; reason: string };

/** Whether the server accepts a query; `refused` when it answered with an error (auth, no database…). */
export async function probePostgres(url: string): Promise<PostgresProbe> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on("error", () => {});
  try {
    await bounded(
      client.connect().then(() => client.query("SELECT 1")),
      PROBE_TIMEOUT_MS,
      `probing PostgreSQL at ${redact(url)}`,
    );
    return { ok: true };
  } catch (error) {
    return { ok: false, refused: error instanceof pg.DatabaseError, reason: (error as Error).message };
  } finally {
    await client.end().catch(() => {});
  }
}

async function startPostgres(url: string, why: string): Promise<string> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `test-postgres-${testRunId()}-`));
  // As root, the embedded server runs as the postgres user, which must get through to its data.
  await chmod(dataDir, 0o711);
  const postgres: StartedPostgres = { dataDir };
  started.postgres = postgres;
  say(`PostgreSQL does not answer at ${redact(url)} (${why}); starting the embedded one (data in ${dataDir})`);
  const startedAt = Date.now();
  try {
    const [port] = (await freePorts(1)) as [number];
    postgres.port = port;
    const starting = startEmbeddedPostgres(dataDir, port, testLogger("test-postgres")).then((server) => {
      // Kept even if it comes after the timeout, so that stopPostgres stops it.
      postgres.server = server;
    });
    await bounded(starting, POSTGRES_START_TIMEOUT_MS, "starting the embedded PostgreSQL");
    say(`embedded PostgreSQL started on port ${port} in ${seconds(startedAt)} s`);
    return `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  } catch (error) {
    await stopPostgres().catch(() => {});
    // embedded-postgres rejects with nothing when the server exits during startup.
    const reason = (error as Error | undefined)?.message || "the server exited during startup";
    throw new Error(
      `PostgreSQL is not running at ${redact(url)} and the embedded one cannot be started: ${reason}. ` +
        "Or start PostgreSQL yourself and set TEST_DATABASE_URL to it (e.g. postgres://postgres@127.0.0.1:5432/postgres).",
    );
  }
}

async function stopPostgres(): Promise<void> {
  const postgres = started.postgres;
  if (!postgres) return;
  if (postgres.server) {
    await bounded(postgres.server.stop(), STOP_TIMEOUT_MS / 2, "stopping the embedded PostgreSQL").catch(() => {});
  }
  if (postgres.port !== undefined) killPostmasterSync(embeddedPostgresDir(postgres.dataDir, postgres.port));
  await rm(postgres.dataDir, { recursive: true, force: true });
  started.postgres = undefined;
}

/** Stops a server still running on databaseDir (its start timed out, or stop() did not finish) by its pid file. */
function killPostmasterSync(databaseDir: string): void {
  const pidFile = path.join(databaseDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, "SIGINT"); // PostgreSQL's fast shutdown
  } catch {
    return; // already gone
  }
  spawnSync(
    "bash",
    [
      "-c",
      'for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || exit 0; sleep 0.1; done; kill -KILL "$1"',
      "_",
      `${pid}`,
    ],
    { stdio: "ignore", timeout: 15_000 },
  );
}

/** Drops the databases named with this run's marker on the server of `url`; returns their names. */
async function dropRunDatabases(url: string, runId: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>("SELECT datname FROM pg_database");
    const ours = rows.map((row) => row.datname).filter((name) => isRunScopedDatabase(name, runId));
    for (const name of ours) await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    return ours;
  } finally {
    await client.end().catch(() => {});
  }
}

// --- interruptions, watchdog ---------------------------------------------------------------

let interrupted = false;

/** Stops what was started, then dies of the signal as it would have without this handler. */
function onSignal(signal: NodeJS.Signals): void {
  // Still listening while stopping: a repeated signal (npm forwards one too) would kill us half-way.
  if (interrupted) return;
  interrupted = true;
  say(`${signal}: stopping what this run started`);
  stopStartedSync();
  for (const other of SIGNALS) process.off(other, onSignal);
  process.kill(process.pid, signal);
}

/** Last resort on exit or a signal, when nothing can be awaited: stop what was started, remove temp dirs. */
function stopStartedSync(): void {
  for (const script of scripts) killGroup(script);
  const { kafka, postgres } = started;
  if (kafka) {
    spawnSync("bash", [KAFKA_SCRIPT, "stop"], {
      cwd: ROOT,
      env: kafka.env,
      stdio: ["ignore", "ignore", "inherit"],
      timeout: STOP_TIMEOUT_MS,
    });
    rmSync(kafka.dataDir, { recursive: true, force: true });
    started.kafka = undefined;
  }
  if (postgres) {
    if (postgres.port !== undefined) killPostmasterSync(embeddedPostgresDir(postgres.dataDir, postgres.port));
    rmSync(postgres.dataDir, { recursive: true, force: true });
    started.postgres = undefined;
  }
}

/**
 * Everything the tests started is stopped by now, so the process should exit by itself. If it is
 * still alive WATCHDOG_MS later, it says what holds it and exits non-zero, even if every test passed.
 */
function armWatchdog(): void {
  setTimeout(() => {
    process.stderr.write(
      `\ntest services: the process is still alive ${WATCHDOG_MS / 1000} s after the last test; ` +
        "something a test started was not stopped.\n" +
        `  active resources: ${process.getActiveResourcesInfo().join(", ")}\n` +
        describeActiveHandles()
          .map((line) => `  ${line}\n`)
          .join(""),
    );
    // Mocha sets the exit code to the failure count in an exit listener of its own, which runs first.
    process.on("exit", () => {
      if (!process.exitCode) process.exitCode = 1;
    });
    process.exit(1);
  }, WATCHDOG_MS).unref();
}

/** The sockets, servers, child processes and timers holding the event loop, as far as Node says. */
function describeActiveHandles(): string[] {
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  return handles.flatMap((handle): string[] => {
    if (handle instanceof net.Server) {
      const address = handle.address();
      return [`server on ${typeof address === "string" ? address : `${address?.address}:${address?.port}`}`];
    }
    if (handle instanceof net.Socket) {
      if (handle.remotePort === undefined) return []; // stdio and pipes
      return [`socket ${handle.localAddress}:${handle.localPort} -> ${handle.remoteAddress}:${handle.remotePort}`];
    }
    const name = (handle as { constructor?: { name?: string } }).constructor?.name ?? "unknown";
    if (name === "ChildProcess") {
      const child = handle as ChildProcess;
      return [`child process ${child.pid}: ${child.spawnargs.join(" ")}`];
    }
    if (name === "Timeout") {
      const timer = handle as { _idleTimeout?: number; _onTimeout?: { name?: string }; hasRef?: () => boolean };
      if (timer.hasRef && !timer.hasRef()) return [];
      return [`timer of ${timer._idleTimeout} ms (${timer._onTimeout?.name || "anonymous"})`];
    }
    return [name];
  });
}

// --- small helpers -------------------------------------------------------------------------

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(work, ms, `${what}: no answer after ${ms / 1000} s`);
}

export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}

function seconds(since: number): string {
  return ((Date.now() - since) / 1000).toFixed(1);
}
