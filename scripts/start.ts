/**
 * `npm start`: the whole system in the foreground, with one command. Starts what is missing and
 * uses what is there: the Kafka broker at KAFKA_BROKER_URL (scripts/kafka.sh, only when nothing
 * answers there), PostgreSQL (DATABASE_URL, else the embedded one under DATA_DIR), migrations,
 * topics, then the API and the scheduler as child processes, as `npm run api` / `npm run scheduler`
 * run them. Settings are the services' own (PORT, METRICS_PORT, EMBEDDED_POSTGRES_PORT, …).
 *
 * Ctrl-C or SIGTERM stops what it started, in order (scheduler, API, broker, database), and exits 0;
 * a second Ctrl-C kills the services at once, a third everything. When any part dies, the rest is
 * stopped and it exits 1 naming the part, with its last lines: never a half-running system.
 *
 * Logs: LOG_FORMAT=auto (default) is pretty on a terminal, JSON otherwise. The parts always log JSON;
 * here their lines are formatted and prefixed with the part (pretty) or passed through (json).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import pg from "pg";
import { type DestinationStream, destination } from "pino";
import { ConfigError, type Env } from "#platform/env.js";
import { createKafka, ensureTopics, type KafkaConfig, kafkaAnswers } from "#platform/kafka.js";
import { resolveLogFormat, streamHasColors } from "#platform/log-format.js";
import { createLogger, type Logger } from "#platform/logger.js";
import { describeError, isProcessAlive } from "#platform/run-main.js";
import { type ApiConfig, loadApiConfig } from "../api/src/config.js";
import { createKnex, ensureDatabaseExists } from "../api/src/db/database.js";
import { embeddedPostgresDir, embeddedPostgresUrl } from "../api/src/db/embedded-postgres.js";
import { migrateToLatest } from "../api/src/db/migrations.js";
import { loadSchedulerConfig, type SchedulerConfig } from "../scheduler/src/config.js";
import { SEED_MESSAGE_JSON } from "./seed-messages.js";
import { type Exit, KEPT_LINES, type Output, Part, partLogLevel } from "./start/part.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const KAFKA_SH = path.join(ROOT, "scripts", "kafka.sh");
const EXIT_WITH_PARENT = pathToFileURL(path.join(ROOT, "scripts", "start", "exit-with-parent.ts")).href;
const DEFAULT_KAFKA_PORT = 9092;
/** Signals closer together than this are one: a person's second Ctrl-C comes later. */
const SIGNAL_ECHO_MS = 500;

/** The parts, in the order they are stopped. */
const STOP_ORDER = ["scheduler", "api", "kafka", "postgres"] as const;
type PartName = (typeof STOP_ORDER)[number];

/** What the parts log once they are up (api.ts, scheduler.ts, start/postgres.ts). */
const READY = {
  postgres: "PostgreSQL ready",
  api: "api listening",
  scheduler: "scheduler started",
} as const;

/** A part that failed or died. The message is a sentence that names it; its last lines follow it. */
class PartFailure extends Error {
  constructor(
    readonly part: string,
    message: string,
    readonly lastLines: string[] = [],
  ) {
    super(message);
    this.name = "PartFailure";
  }
}

class StopRequested extends Error {
  constructor(readonly signal: string) {
    super(`stop requested (${signal})`);
    this.name = "StopRequested";
  }
}

interface Settings {
  api: ApiConfig;
  scheduler: SchedulerConfig;
  kafka: KafkaConfig;
  /** DATA_DIR, absolute: the parts run in the repository root. */
  dataDir: string;
  kafkaDataDir: string;
}

/** Both services' settings, every problem of either reported at once. */
export function loadSettings(env: Env): Settings {
  const problems: string[] = [];
  const load = <T>(loader: (env: Env) => T): T | undefined => {
    try {
      return loader(env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems.filter((problem) => !problems.includes(problem)));
      return undefined;
    }
  };
  const api = load(loadApiConfig);
  const scheduler = load(loadSchedulerConfig);
  if (api?.port === 0) problems.push("PORT=0: npm start needs a fixed port, to say where the API is");
  if (problems.length > 0 || api === undefined || scheduler === undefined) throw new ConfigError(problems);
  const dataDir = path.resolve(api.dataDir);
  const kafkaPort = localBrokerPort(scheduler.kafka.brokers) ?? DEFAULT_KAFKA_PORT;
  // As scripts/kafka.sh names it, but under DATA_DIR: everything of one copy in one place.
  const kafkaDataDir =
    env.KAFKA_DATA_DIR?.trim() || path.join(dataDir, kafkaPort === DEFAULT_KAFKA_PORT ? "kafka" : `kafka-${kafkaPort}`);
  return { api, scheduler, kafka: scheduler.kafka, dataDir, kafkaDataDir };
}

/** The port of the only broker when it is on this machine: a broker npm start may run there. */
function localBrokerPort(brokers: string[]): number | undefined {
  if (brokers.length !== 1) return undefined;
  const match = /^(localhost|127\.0\.0\.1|\[::1\]):(\d+)$/.exec(brokers[0] ?? "");
  return match ? Number(match[2]) : undefined;
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(not a URL)";
  }
}

function describeExit(exit: Exit): string {
  if (exit.error) return `could not be run: ${exit.error.message}`;
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

/** `node <flags> <entry>.ts` of a package.json script, so the services run exactly as `npm run <name>`. */
async function serviceArgs(script: "api" | "scheduler"): Promise<string[]> {
  const pkg = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")) as {
    scripts?: Record<string, string>;
  };
  const tokens = (pkg.scripts?.[script] ?? "").trim().split(/\s+/);
  const entry = tokens.at(-1);
  if (tokens[0] !== "node" || entry === undefined || !entry.endsWith(".ts")) {
    throw new Error(`package.json script "${script}" is not "node <flags> <file>.ts"; npm start runs it that way`);
  }
  return [...tokens.slice(1, -1), "--import", EXIT_WITH_PARENT, entry];
}

async function readPid(file: string): Promise<number | undefined> {
  const pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

async function tail(file: string, lines: number): Promise<string[]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .slice(-lines);
}

/** Deferred signal: resolve() once, wait on promise any number of times. */
function latch() {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

interface Stopper {
  stop(): Promise<"stopped" | "killed">;
}

/** Runs the system until a signal or a failure; returns the exit code. */
async function run(settings: Settings, logger: Logger, output: Output): Promise<number> {
  const { api, scheduler, kafka } = settings;
  const started = new Map<PartName, Stopper>();
  const timers: NodeJS.Timeout[] = [];
  const forceServices = latch();
  const forceAll = latch();
  let phase: "starting" | "running" | "stopping" = "starting";
  let forced = 0;
  // A function: TypeScript would narrow the variable, which the closures below change.
  const isStopping = () => phase === "stopping";

  // Rejects with the first reason to stop: a signal or a part that died.
  let interrupt: (reason: StopRequested | PartFailure) => void = () => {};
  const interrupted = new Promise<never>((_, reject) => {
    interrupt = reject;
  });
  interrupted.catch(() => {});
  const halt = (reason: StopRequested | PartFailure) => {
    if (phase === "stopping") return;
    phase = "stopping";
    if (reason instanceof PartFailure) logger.error(`${reason.message}; stopping everything`);
    interrupt(reason);
  };
  /** Waits for a step unless the run is interrupted meanwhile. */
  const step = <T>(promise: Promise<T>): Promise<T> => Promise.race([promise, interrupted]);

  let lastSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // Under `npm start`, one Ctrl-C arrives twice: from the terminal and forwarded by npm.
    const now = Date.now();
    if (now - lastSignalAt < SIGNAL_ECHO_MS) return;
    lastSignalAt = now;
    if (phase !== "stopping") {
      logger.info(`${signal}: stopping everything (again to kill the services at once)`);
      halt(new StopRequested(signal));
    } else if (forced === 0) {
      forced = 1;
      logger.warn(
        `${signal}: killing the api and the scheduler now; kafka and postgres still stop cleanly (again to kill them too)`,
      );
      forceServices.resolve();
    } else if (forced === 1) {
      forced = 2;
      logger.warn(`${signal}: killing everything now`);
      forceAll.resolve();
    }
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);

  const partEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
    ...process.env,
    LOG_FORMAT: "json",
    LOG_LEVEL: partLogLevel(api.logLevel),
    DATA_DIR: settings.dataDir,
    ...extra,
  });
  const kafkaEnv = (): NodeJS.ProcessEnv => ({
    ...process.env,
    KAFKA_BROKER_URL: kafka.brokers.join(","),
    KAFKA_DATA_DIR: settings.kafkaDataDir,
  });

  /** A part that must keep running: its exit, unless we are stopping, stops everything. */
  const supervise = (name: PartName, part: Part, stopTimeoutMs: number, force: Promise<void>) => {
    started.set(name, { stop: () => part.stop(stopTimeoutMs, force) });
    void part.exited.then((exit) => {
      if (phase !== "stopping") halt(new PartFailure(name, `${name} ${describeExit(exit)}`, part.lastLines()));
    });
  };
  const untilReady = async (part: Part, name: keyof typeof READY, timeoutMs: number) => {
    try {
      return await step(part.waitForRecord((record) => record.msg === READY[name], timeoutMs, name));
    } catch (error) {
      if (error instanceof PartFailure || error instanceof StopRequested) throw error;
      const seconds = Math.round(timeoutMs / 1000);
      throw new PartFailure(name, `${name} did not log "${READY[name]}" within ${seconds} s`, part.lastLines());
    }
  };
  const nodePart = (name: string, args: string[], env: NodeJS.ProcessEnv) =>
    new Part({ name, command: process.execPath, args, cwd: ROOT, env, output });

  async function startKafka(): Promise<{ started: boolean }> {
    const where = kafka.brokers.join(",");
    if (await step(kafkaAnswers(kafka))) {
      logger.info(`kafka: using the broker at ${where} (KAFKA_BROKER_URL)`);
      return { started: false };
    }
    if (localBrokerPort(kafka.brokers) === undefined) {
      throw new PartFailure(
        "kafka",
        `kafka: no broker answers at ${where} (KAFKA_BROKER_URL); start it, or point KAFKA_BROKER_URL at localhost:<port> for npm start to run one there`,
      );
    }
    logger.info(
      `kafka: nothing answers at ${where}; starting a broker (scripts/kafka.sh, data in ${settings.kafkaDataDir})`,
    );
    const kafkaScript = { name: "kafka", command: "bash", cwd: ROOT, env: kafkaEnv(), output, stripPrefix: "kafka: " };
    const script = new Part({ ...kafkaScript, args: [KAFKA_SH, "start"] });
    const pidFile = path.join(settings.kafkaDataDir, "broker.pid");
    // Cleared when another start raced us: then the broker is someone else's, left running.
    let ours = true;
    started.set("kafka", {
      async stop() {
        await script.stop(5_000, forceAll.promise); // a start still in progress (e.g. downloading)
        if (!ours) return "stopped";
        // Stops the broker of our data dir only; it waits 30 s, then kills it. A third Ctrl-C kills it now.
        const stopper = new Part({ ...kafkaScript, args: [KAFKA_SH, "stop"] });
        const killed = forceAll.promise.then(async () => {
          const pid = await readPid(pidFile);
          if (pid !== undefined && isProcessAlive(pid)) process.kill(pid, "SIGKILL");
          stopper.kill();
          return "killed" as const;
        });
        const outcome = await Promise.race([stopper.exited.then(() => "stopped" as const), killed]);
        await Promise.race([stopper.exited, delay(5_000)]);
        return outcome;
      },
    });
    const exit = await step(script.exited);
    if (exit.code !== 0) {
      // kafka.sh says what is missing (java, mvn) and how to install it on its "error:" line.
      const reason = script
        .lastRawLines()
        .map((line) => /^kafka: error: (.*)$/.exec(line)?.[1])
        .filter((line) => line !== undefined)
        .at(-1);
      throw new PartFailure(
        "kafka",
        reason === undefined
          ? `kafka: scripts/kafka.sh start ${describeExit(exit)}`
          : `kafka: ${reason} (or set KAFKA_BROKER_URL to a broker that runs)`,
        script.lastLines(),
      );
    }
    if (!script.lastRawLines().some((line) => /^kafka: started pid \d+/.test(line))) {
      ours = false; // another start raced us: its broker, not ours to stop
      logger.info(`kafka: a broker answers at ${where} now; using it`);
      return { started: false };
    }
    const pid = await readPid(pidFile);
    if (pid !== undefined) {
      const watch = setInterval(() => {
        if (phase === "stopping" || isProcessAlive(pid)) return;
        clearInterval(watch);
        void tail(path.join(settings.kafkaDataDir, "broker.log"), KEPT_LINES).then((lines) =>
          halt(new PartFailure("kafka", `kafka: the broker (pid ${pid}) exited`, lines)),
        );
      }, 1_000);
      timers.push(watch);
    }
    return { started: true };
  }

  async function startPostgres(): Promise<{ url: string; note: string }> {
    if (api.databaseUrl !== undefined) {
      const client = new pg.Client({ connectionString: api.databaseUrl, connectionTimeoutMillis: 5_000 });
      try {
        await step(client.connect());
      } catch (error) {
        // 3D000: the database does not exist yet; the migrations step creates it.
        if ((error as { code?: string }).code !== "3D000") {
          if (error instanceof PartFailure || error instanceof StopRequested) throw error;
          throw new PartFailure(
            "postgres",
            `postgres: cannot connect to DATABASE_URL ${redactUrl(api.databaseUrl)}: ${describeError(error)}`,
          );
        }
      } finally {
        await client.end().catch(() => {});
      }
      logger.info(`postgres: using DATABASE_URL ${redactUrl(api.databaseUrl)}`);
      return { url: api.databaseUrl, note: "DATABASE_URL" };
    }
    const port = api.embeddedPostgresPort;
    const databaseDir = embeddedPostgresDir(settings.dataDir, port);
    logger.info(`postgres: starting the embedded PostgreSQL on 127.0.0.1:${port} (data in ${databaseDir})`);
    const part = nodePart("postgres", ["--import", "tsx", path.join("scripts", "start", "postgres.ts")], partEnv({}));
    supervise("postgres", part, 30_000, forceAll.promise);
    const ready = await untilReady(part, "postgres", 150_000);
    return {
      url: embeddedPostgresUrl(port),
      note:
        ready.reused === true
          ? `embedded, already running: left running at the end; data in ${databaseDir}`
          : `embedded, data in ${databaseDir}`,
    };
  }

  async function migrate(url: string): Promise<void> {
    try {
      await step(ensureDatabaseExists(url, logger));
      const knex = createKnex(
        { url, poolMax: 1, connectTimeoutMs: api.dbConnectTimeoutMs, statementTimeoutMs: api.dbStatementTimeoutMs },
        logger,
      );
      try {
        const applied = await step(migrateToLatest(knex));
        logger.info(applied.length > 0 ? `migrations: applied ${applied.join(", ")}` : "migrations: up to date");
      } finally {
        await knex.destroy();
      }
    } catch (error) {
      if (error instanceof PartFailure || error instanceof StopRequested) throw error;
      throw new PartFailure("migrations", `migrations failed: ${describeError(error)}`);
    }
  }

  async function createTopics(): Promise<void> {
    const { input, persisted, errors } = kafka.topics;
    try {
      const created = await step(
        ensureTopics(createKafka(kafka, logger), [input, persisted, errors], kafka.partitions, {
          replicationFactor: kafka.replicationFactor,
        }),
      );
      logger.info(
        created.length > 0
          ? `topics: created ${created.join(", ")} (${kafka.partitions} partitions)`
          : `topics: ${input}, ${persisted}, ${errors} exist`,
      );
    } catch (error) {
      if (error instanceof PartFailure || error instanceof StopRequested) throw error;
      throw new PartFailure("topics", `topics: could not create them: ${describeError(error)}`);
    }
  }

  async function startServices(databaseUrl: string): Promise<void> {
    logger.info(`api: starting on port ${api.port}`);
    const apiPart = nodePart("api", await serviceArgs("api"), partEnv({ DATABASE_URL: databaseUrl }));
    supervise("api", apiPart, api.shutdownTimeoutMs + 15_000, forceServices.promise);
    await untilReady(apiPart, "api", 60_000);

    logger.info(
      `scheduler: starting${scheduler.metricsPort > 0 ? ` (metrics on port ${scheduler.metricsPort})` : ""}, consuming ${kafka.topics.input}`,
    );
    const schedulerPart = nodePart(
      "scheduler",
      await serviceArgs("scheduler"),
      partEnv({ API_URL: `http://127.0.0.1:${api.port}` }),
    );
    supervise("scheduler", schedulerPart, scheduler.shutdownTimeoutMs + 5_000, forceServices.promise);
    // Joining the group can wait out a previous member's session.
    await untilReady(schedulerPart, "scheduler", scheduler.sessionTimeoutMs + 60_000);
  }

  async function stopAll(): Promise<void> {
    phase = "stopping";
    for (const timer of timers) clearInterval(timer);
    const names = STOP_ORDER.filter((name) => started.has(name));
    if (names.length > 0) logger.info(`stopping ${names.join(", ")}`);
    for (const name of names) {
      const began = Date.now();
      const outcome = await started.get(name)?.stop();
      logger.info(
        `${name}: ${outcome === "killed" ? "killed" : "stopped"} (${((Date.now() - began) / 1000).toFixed(1)} s)`,
      );
    }
  }

  let reason: unknown;
  try {
    const broker = await startKafka();
    const database = await startPostgres();
    await migrate(database.url);
    await createTopics();
    await startServices(database.url);
    if (!isStopping()) phase = "running";
    announce(settings, logger, output, { brokerStarted: broker.started, database });
    await interrupted;
  } catch (error) {
    reason = error;
  }
  if (reason instanceof PartFailure && !isStopping()) logger.error(`${reason.message}; stopping everything`);
  await stopAll();

  if (reason instanceof StopRequested) return forced > 0 ? 130 : 0;
  if (reason instanceof PartFailure) {
    const lines =
      reason.lastLines.length > 0 ? `\n${reason.part}'s last lines:\n  ${reason.lastLines.join("\n  ")}` : "";
    output.stderr.write(`start: ${reason.message}${lines}\n`);
    return 1;
  }
  output.stderr.write(`start: failed: ${describeError(reason)}\n`);
  return 1;
}

/** Where everything is, and two things to try. */
function announce(
  settings: Settings,
  logger: Logger,
  output: Output,
  state: { brokerStarted: boolean; database: { url: string; note: string } },
): void {
  const { api, scheduler, kafka } = settings;
  const host = api.host === "0.0.0.0" || api.host === "::" ? "localhost" : api.host;
  const base = `http://${host}:${api.port}`;
  const broker = kafka.brokers[0] ?? "";
  const kafkaNote = state.brokerStarted
    ? `started here, stopped at the end; data in ${settings.kafkaDataDir}`
    : "already running: left as it is";
  const where = {
    rest: `${base}/products/`,
    docs: `${base}/docs`,
    grpc: `${host}:${api.port}`,
    apiMetrics: `${base}/metrics`,
    schedulerMetrics:
      scheduler.metricsPort > 0 ? `http://${host}:${scheduler.metricsPort}/metrics` : "off (METRICS_PORT=0)",
    kafka: `${kafka.brokers.join(",")} (${kafkaNote})`,
    postgres: `${redactUrl(state.database.url)} (${state.database.note})`,
    topics: `${kafka.topics.input} → ${kafka.topics.persisted}, dead letters ${kafka.topics.errors}`,
  };
  const tryCommands = [
    `echo '${SEED_MESSAGE_JSON}' | kcat -P -b ${broker} -t ${kafka.topics.input}`,
    `curl -s ${base}/products/12345`,
  ];
  if (output.format === "json") {
    logger.info({ ...where, try: tryCommands }, "ready");
    return;
  }
  const rows: [string, string][] = [
    ["REST", where.rest],
    ["docs", where.docs],
    ["gRPC", `${where.grpc} (h2c; Connect and gRPC-Web too): grpcurl -plaintext ${where.grpc} list`],
    ["metrics", `${where.apiMetrics} (api), ${where.schedulerMetrics} (scheduler)`],
    ["Kafka", where.kafka],
    ["PostgreSQL", where.postgres],
    ["topics", where.topics],
  ];
  const bold = (text: string) => (output.color ? `\u001b[1m${text}\u001b[0m` : text);
  output.stdout.write(
    [
      "",
      bold("Ready. Product ingestion is running:"),
      ...rows.map(([name, value]) => `  ${name.padEnd(11)} ${value}`),
      "",
      bold("Try:"),
      ...tryCommands.map((command) => `  ${command}`),
      "",
      "Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
}

async function main(): Promise<number> {
  let settings: Settings;
  try {
    settings = loadSettings(process.env);
  } catch (error) {
    process.stderr.write(`start: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const format = resolveLogFormat(settings.api.logFormat);
  // Synchronous, like pino's own stdout: lines of the parts and ours never interleave mid-line.
  const sync = (fd: number): DestinationStream => {
    const stream = destination({ dest: fd, sync: true });
    stream.on("error", () => {}); // a reader that went away (EPIPE) is no reason to leave parts running
    return stream;
  };
  const output: Output = {
    format,
    color: format === "pretty" && streamHasColors(process.stdout),
    level: settings.api.logLevel,
    stdout: sync(1),
    stderr: sync(2),
  };
  const logger = createLogger("start", settings.api.logLevel, format);
  return run(settings, logger, output);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`start: failed: ${describeError(error)}\n`);
    process.exit(1);
  },
);
