/**
 * Create throughput of the API against the same upsert done directly with `pg`.
 *
 *   npm run bench:api -- [--duration 10] [--rounds 3] [--warmup 2] [--server-warmup 10] [--concurrency 64]
 *     [--server child|inproc] [--phases baseline,rest,grpc]
 *     [--server-node-args="--max-semi-space-size=32 --cpu-prof --cpu-prof-dir=/tmp/prof"]
 *
 * Three phases over one fresh database: the raw `pg` baseline (the API's own prepared upsert
 * statement, same pool size), REST `POST /products/` and gRPC `CreateProduct` through a real server. Each phase is
 * a closed loop of `concurrency` clients writing fresh ids. The phases take turns in rounds
 * (baseline, rest, grpc, baseline, …), so that a machine whose speed drifts during the run (a
 * shared host) weighs on all of them alike. The API runs in a child process by
 * default: in-process, the load generator's own CPU per request (for gRPC about as much as the
 * server's) lands on the API's single event loop. The last stdout line is a one-line summary for
 * scripts; JSON goes to bench/results/. See bench/README.md for how to read the numbers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import pg from "pg";
import {
  CreateProductRequestSchema,
  CreateProductResponseSchema,
  WriteOutcome,
} from "#gen/products/v1/product_service_pb.js";
import { createLogger } from "#platform/logger.js";
import { createApi } from "../api/src/api.js";
import { type ApiConfig, loadApiConfig } from "../api/src/config.js";
import { pgTypes } from "../api/src/db/database.js";
import { UPSERT_STATEMENT } from "../api/src/products/product-repository.js";
import { formatTimestamp, parseTimestamp } from "../api/src/products/timestamp.js";
import { disposableDatabase } from "../test/support/disposable-database.js";
import { freePort, machineCpuSeconds, processCpu, waitUntilReady } from "./bench-support.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BASE_POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const PHASES = ["baseline", "rest", "grpc"] as const;
const SERVER_MODES = ["inproc", "child"] as const;

type PhaseName = (typeof PHASES)[number];
type ServerMode = (typeof SERVER_MODES)[number];

interface BenchOptions {
  /** Measured seconds of each phase, over all rounds. */
  durationS: number;
  /** Turns each phase takes; each turn measures durationS / rounds. */
  rounds: number;
  /** Unmeasured load at the start of every phase. */
  warmupS: number;
  /** Unmeasured REST + gRPC load on a fresh server, before the first phase. */
  serverWarmupS: number;
  concurrency: number;
  server: ServerMode;
  /** Extra node flags for the API child, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (not allowed in NODE_OPTIONS). */
  serverNodeArgs: string[];
  phases: PhaseName[];
}

interface PhaseResult {
  name: PhaseName;
  creates: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  /** Failed creates over the whole phase, warm-up included. */
  errors: number;
  /** Distinct error messages with their counts, most frequent first. */
  errorSamples: { message: string; count: number }[];
  /** CPU used during the measured windows; undefined where /proc is not available. */
  cpu: CpuUse | undefined;
  /** Creates per second of each round, in order. */
  roundsPerSecond: number[];
}

/** What one turn of a phase measured. */
interface Turn {
  latencies: number[];
  seconds: number;
  errors: ErrorTally;
  cpu: CpuUse | undefined;
}

/** CPU seconds spent in the measured window, by whom. */
interface CpuUse {
  /** This process: the load generator, plus the API when it runs in-process. */
  bench: number;
  /** The API child process (--server child). */
  apiChild: number | undefined;
  /** The PostgreSQL backends connected to the bench database. */
  postgres: number;
  /** All processes on the machine, all cores. */
  machine: number;
}

/** The seed body's content; only the id changes per create. */
const SEED = {
  name: "Nome do Produto",
  description: "Descrição do Produto",
  amount: 19.99,
  currency: "BRL",
  quantity: 5,
  timestamp: "2024-06-29T00:30:03.254878",
  category: "Categoria do Produto",
};
const SEED_TIMESTAMP = parseTimestamp(SEED.timestamp);
if (!SEED_TIMESTAMP) throw new Error(`unreadable seed timestamp ${SEED.timestamp}`);

/** Bindings in the shape the product store sends: one single-row array per column. */
function upsertBindings(id: string): (string | number)[][] {
  return [
    [id],
    [SEED.name],
    [SEED.description],
    [String(SEED.amount)],
    [SEED.currency],
    [SEED.quantity],
    [formatTimestamp(SEED_TIMESTAMP as NonNullable<typeof SEED_TIMESTAMP>)],
    [SEED.category],
  ];
}

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2));
  const database = disposableDatabase(BASE_POSTGRES_URL, "products_bench");
  const apiEnv = {
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: database.url,
    LOG_LEVEL: "silent",
    SHUTDOWN_TIMEOUT_MS: "2000",
    // The relay publishes the outbox to Kafka after the fact: not part of a create, and the bench
    // must not publish to whatever broker runs on this machine. The outbox rows are still written.
    OUTBOX_RELAY: "false",
  };
  const config = loadApiConfig(apiEnv);
  log(
    `${options.server === "inproc" ? "API and load generator share this Node process" : "API runs in a child process"}` +
      ` on ${os.availableParallelism()} cores, PostgreSQL on the same machine; database ${database.name}`,
  );
  let server: BenchServer | undefined;
  try {
    server =
      options.server === "inproc"
        ? await startInProcess(config)
        : await startChildProcess(apiEnv, database.url, options.serverNodeArgs);
    const serverWarmUpErrors = await warmUpServer(options, server.url);
    const results = await runPhases(options, config, database.url, server);
    await server.stop();
    server = undefined;
    await report(options, config, results, serverWarmUpErrors);
  } finally {
    await server?.stop().catch(() => {});
    await database.drop();
  }
}

async function runPhases(
  options: BenchOptions,
  config: ApiConfig,
  databaseUrl: string,
  server: BenchServer,
): Promise<PhaseResult[]> {
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  const turns = new Map<PhaseName, Turn[]>(options.phases.map((phase) => [phase, []]));
  try {
    for (let round = 1; round <= options.rounds; round++) {
      for (const phase of options.phases) {
        // Every turn starts from empty tables and a fresh checkpoint, so no turn pays for another's rows.
        await admin.query("TRUNCATE products, product_events");
        await admin.query("CHECKPOINT").catch((error: Error) => log(`CHECKPOINT skipped: ${error.message}`));
        const load = await createLoad(phase, options, config, databaseUrl, server.url);
        try {
          const label = options.rounds > 1 ? `${phase} ${round}/${options.rounds}` : phase;
          turns.get(phase)?.push(await runTurn(label, load.create, options, () => openCpuWindow(admin, server.pid)));
        } finally {
          await load.close();
        }
      }
    }
  } finally {
    await admin.end();
  }
  return options.phases.map((phase) => summarize(phase, turns.get(phase) ?? []));
}

interface Load {
  create(id: string): Promise<void>;
  close(): Promise<void>;
}

async function createLoad(
  phase: PhaseName,
  options: BenchOptions,
  config: ApiConfig,
  databaseUrl: string,
  apiUrl: string,
): Promise<Load> {
  switch (phase) {
    case "baseline":
      return createBaselineLoad(config, databaseUrl);
    case "rest":
      return createRestLoad(apiUrl, options.concurrency);
    case "grpc":
      return createGrpcLoad(apiUrl, options.concurrency);
  }
}

function createBaselineLoad(config: ApiConfig, databaseUrl: string): Load {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: config.dbPoolMax,
    connectionTimeoutMillis: config.dbConnectTimeoutMs,
    statement_timeout: config.dbStatementTimeoutMs,
    options: "-c TimeZone=UTC",
    types: pgTypes,
  });
  return {
    async create(id) {
      // The API's own prepared statement, so PostgreSQL does the same work on both paths.
      const { rows } = await pool.query<{ id: string; inserted: boolean }>({
        ...UPSERT_STATEMENT,
        values: upsertBindings(id),
      });
      if (rows.length !== 1 || rows[0]?.id !== id || rows[0].inserted !== true) {
        throw new Error(`baseline: expected one inserted row, got ${rows.length}`);
      }
    },
    close: () => pool.end(),
  };
}

function createRestLoad(apiUrl: string, concurrency: number): Load {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const { hostname, port } = new URL(apiUrl);
  return {
    create(id) {
      const body = JSON.stringify({
        id,
        name: SEED.name,
        description: SEED.description,
        pricing: { amount: SEED.amount, currency: SEED.currency },
        availability: { quantity: SEED.quantity, timestamp: SEED.timestamp },
        category: SEED.category,
      });
      return new Promise<void>((resolve, reject) => {
        const req = http.request(
          {
            agent,
            hostname,
            port,
            method: "POST",
            path: "/products/",
            headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("error", reject);
            res.on("end", () => {
              const text = Buffer.concat(chunks).toString("utf8");
              if (res.statusCode !== 201) {
                reject(new Error(`rest: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
              } else if ((JSON.parse(text) as { id?: unknown }).id !== id) {
                reject(new Error("rest: response is not the created product"));
              } else {
                resolve();
              }
            });
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    },
    async close() {
      agent.destroy();
    },
  };
}

/**
 * gRPC over h2c with a lean client: a few HTTP/2 sessions, each request one length-prefixed
 * CreateProductRequest, the answer checked from its trailers and decoded. Like h2load or ghz, it
 * keeps the load generator's CPU small, since it shares the machine's two cores with the server
 * (the generated Connect client costs about 0.7 ms of CPU per call; it is tested in api/test).
 */
function createGrpcLoad(apiUrl: string, concurrency: number): Load {
  const sessions = Array.from({ length: Math.max(1, Math.ceil(concurrency / 16)) }, () => http2.connect(apiUrl));
  for (const session of sessions) session.on("error", () => {});
  let next = 0;
  return {
    create(id) {
      const message = toBinary(
        CreateProductRequestSchema,
        create(CreateProductRequestSchema, {
          product: {
            id,
            name: SEED.name,
            description: SEED.description,
            pricing: { amount: String(SEED.amount), currency: SEED.currency },
            availability: { quantity: SEED.quantity, timestamp: SEED_TIMESTAMP },
            category: SEED.category,
          },
        }),
      );
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      const session = sessions[next++ % sessions.length] as http2.ClientHttp2Session;
      return new Promise<void>((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/products.v1.ProductService/CreateProduct",
          "content-type": "application/grpc+proto",
          te: "trailers",
        });
        const chunks: Buffer[] = [];
        let status: string | undefined;
        let statusMessage: string | undefined;
        stream.on("response", (headers) => {
          status = headers["grpc-status"] as string | undefined;
          statusMessage = headers["grpc-message"] as string | undefined;
        });
        stream.on("trailers", (trailers) => {
          status = trailers["grpc-status"] as string | undefined;
          statusMessage = trailers["grpc-message"] as string | undefined;
        });
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("error", reject);
        stream.on("end", () => {
          if (status !== "0") return reject(new Error(`grpc: status ${status}: ${statusMessage ?? ""}`));
          const body = Buffer.concat(chunks);
          const response = fromBinary(CreateProductResponseSchema, body.subarray(5, 5 + body.readUInt32BE(1)));
          if (response.outcome !== WriteOutcome.CREATED || response.product?.id !== id) {
            return reject(new Error(`grpc: expected CREATED, got ${WriteOutcome[response.outcome]}`));
          }
          resolve();
        });
        stream.end(frame);
      });
    },
    async close() {
      for (const session of sessions) session.close();
    },
  };
}

/** Counts failed creates by message, so a report can show what went wrong without flooding. */
class ErrorTally {
  count = 0;
  readonly #messages = new Map<string, number>();

  add(error: unknown): void {
    this.count++;
    const message = error instanceof Error ? error.message : String(error);
    this.#messages.set(message, (this.#messages.get(message) ?? 0) + 1);
  }

  addAll(other: ErrorTally): void {
    this.count += other.count;
    for (const [message, count] of other.#messages)
      this.#messages.set(message, (this.#messages.get(message) ?? 0) + count);
  }

  /** Distinct messages, most frequent first. */
  samples(limit = 5): { message: string; count: number }[] {
    return [...this.#messages]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([message, count]) => ({ message, count }));
  }
}

/**
 * `concurrency` clients, each starting its next create (with a fresh id) as soon as the previous
 * one ends, until stop(). Prints the completion rate to stderr every second.
 */
function startClosedLoop(
  name: string,
  concurrency: number,
  create: (id: string) => Promise<void>,
  onDone: (startedMs: number, endedMs: number) => void,
  errors: ErrorTally,
  stage: () => string,
) {
  const tag = randomBytes(4).toString("hex");
  let nextId = 0;
  let stopped = false;
  let sinceTick = 0;
  const client = async () => {
    while (!stopped) {
      const id = `${name}-${tag}-${nextId++}`;
      const started = performance.now();
      try {
        await create(id);
        sinceTick++;
        onDone(started, performance.now());
      } catch (error) {
        errors.add(error);
      }
    }
  };
  const loopStart = performance.now();
  let lastTick = loopStart;
  const progress = setInterval(() => {
    const now = performance.now();
    const rate = Math.round((sinceTick * 1000) / (now - lastTick));
    log(`[${name}] ${((now - loopStart) / 1000).toFixed(0)}s ${stage()}: ${rate}/s, ${errors.count} errors`);
    sinceTick = 0;
    lastTick = now;
  }, 1000);
  const clients = Array.from({ length: concurrency }, client);
  return {
    async stop() {
      stopped = true;
      clearInterval(progress);
      await Promise.all(clients);
    },
  };
}

/**
 * One measured turn of a phase. Only creates that complete inside the window after the warm-up
 * count toward throughput and latency; errors count over the whole turn.
 */
async function runTurn(
  label: string,
  create: (id: string) => Promise<void>,
  options: BenchOptions,
  openWindow: () => Promise<() => Promise<CpuUse | undefined>>,
): Promise<Turn> {
  const latencies: number[] = [];
  const errors = new ErrorTally();
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.POSITIVE_INFINITY;
  const loop = startClosedLoop(
    label,
    options.concurrency,
    create,
    (started, ended) => {
      if (ended >= windowStart && ended <= windowEnd) latencies.push(ended - started);
    },
    errors,
    () => (Number.isFinite(windowStart) ? "measure" : "warm-up"),
  );
  let cpu: CpuUse | undefined;
  try {
    await delay(options.warmupS * 1000);
    const closeCpuWindow = await openWindow();
    windowStart = performance.now();
    await delay((options.durationS / options.rounds) * 1000);
    windowEnd = performance.now();
    cpu = await closeCpuWindow();
  } finally {
    await loop.stop();
  }
  return { latencies, seconds: (windowEnd - windowStart) / 1000, errors, cpu };
}

/** A phase over all its turns: rates and CPU add up, latencies are pooled. */
function summarize(name: PhaseName, turns: Turn[]): PhaseResult {
  const seconds = turns.reduce((sum, turn) => sum + turn.seconds, 0);
  const sorted = Float64Array.from(turns.flatMap((turn) => turn.latencies)).sort();
  const errors = new ErrorTally();
  for (const turn of turns) errors.addAll(turn.errors);
  const cpus = turns.map((turn) => turn.cpu);
  const cpu = cpus.every((c) => c !== undefined)
    ? cpus.reduce<CpuUse>(
        (sum, c) => ({
          bench: sum.bench + c.bench,
          apiChild: sum.apiChild === undefined || c.apiChild === undefined ? undefined : sum.apiChild + c.apiChild,
          postgres: sum.postgres + c.postgres,
          machine: sum.machine + c.machine,
        }),
        { bench: 0, apiChild: 0, postgres: 0, machine: 0 },
      )
    : undefined;
  return {
    name,
    creates: sorted.length,
    seconds,
    perSecond: seconds > 0 ? sorted.length / seconds : 0,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    meanMs: sorted.length > 0 ? sorted.reduce((sum, v) => sum + v, 0) / sorted.length : 0,
    maxMs: sorted.at(-1) ?? 0,
    errors: errors.count,
    errorSamples: errors.samples(),
    cpu,
    roundsPerSecond: turns.map((turn) => (turn.seconds > 0 ? turn.latencies.length / turn.seconds : 0)),
  };
}

/**
 * A fresh API process needs about ten seconds of load before V8 has optimised the Express, knex
 * and Connect paths (REST ran at a third of its steady rate in its first seconds). Both paths are
 * driven together, unmeasured, so the phases compare steady states.
 */
async function warmUpServer(options: BenchOptions, apiUrl: string): Promise<ErrorTally> {
  const errors = new ErrorTally();
  if (options.serverWarmupS === 0 || !options.phases.some((phase) => phase !== "baseline")) return errors;
  const rest = createRestLoad(apiUrl, options.concurrency);
  const grpc = createGrpcLoad(apiUrl, options.concurrency);
  let turn = 0;
  const loop = startClosedLoop(
    "server-warm-up",
    options.concurrency,
    (id) => (turn++ % 2 === 0 ? rest.create(id) : grpc.create(id)),
    () => {},
    errors,
    () => "rest+grpc",
  );
  try {
    await delay(options.serverWarmupS * 1000);
  } finally {
    await loop.stop();
    await Promise.all([rest.close(), grpc.close()]);
  }
  return errors;
}

/**
 * Starts counting CPU time of this process, the API child and the database's backends (those
 * connected now, after warm-up, when both pools are full); the returned function stops counting.
 */
async function openCpuWindow(admin: pg.Client, apiPid: number | undefined) {
  const { rows } = await admin.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
  );
  const read = async () => {
    const own = process.cpuUsage();
    return {
      bench: (own.user + own.system) / 1e6,
      apiChild: apiPid === undefined ? undefined : await processCpuSeconds(apiPid),
      postgres: await Promise.all(rows.map((row) => processCpuSeconds(row.pid))),
      machine: await machineCpuSeconds(),
    };
  };
  const start = await read();
  return async (): Promise<CpuUse | undefined> => {
    const end = await read();
    if (start.machine === undefined || end.machine === undefined) return undefined;
    let postgres = 0;
    start.postgres.forEach((before, i) => {
      const after = end.postgres[i];
      if (before !== undefined && after !== undefined) postgres += after - before;
    });
    return {
      bench: end.bench - start.bench,
      apiChild: start.apiChild !== undefined && end.apiChild !== undefined ? end.apiChild - start.apiChild : undefined,
      postgres,
      machine: end.machine - start.machine,
    };
  };
}

/** utime + stime of a process, from /proc/<pid>/stat. */
async function processCpuSeconds(pid: number): Promise<number | undefined> {
  return (await processCpu(pid))?.seconds;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

async function report(
  options: BenchOptions,
  config: ApiConfig,
  results: PhaseResult[],
  serverWarmUpErrors: ErrorTally,
): Promise<void> {
  const byName = new Map(results.map((r) => [r.name, r]));
  const baseline = byName.get("baseline")?.perSecond ?? 0;
  const ratio = (r: PhaseResult | undefined) => (r && baseline > 0 ? r.perSecond / baseline : 0);

  const lines = [
    `${"phase".padEnd(10)}${"creates/s".padStart(11)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}${"errors".padStart(8)}${"vs pg".padStart(8)}`,
    ...results.map(
      (r) =>
        `${r.name.padEnd(10)}${Math.round(r.perSecond).toString().padStart(11)}${r.p50Ms.toFixed(2).padStart(9)}` +
        `${r.p99Ms.toFixed(2).padStart(9)}${String(r.errors).padStart(8)}${ratio(r).toFixed(2).padStart(8)}`,
    ),
  ];
  const baselineRounds = byName.get("baseline")?.roundsPerSecond;
  if (options.rounds > 1 && baselineRounds) {
    // Each round against the baseline of the same round: how far the machine's noise moves a ratio.
    for (const r of results) {
      if (r.name === "baseline") continue;
      const perRound = r.roundsPerSecond.map((rate, i) => (rate / (baselineRounds[i] ?? Number.NaN)).toFixed(2));
      lines.push(`  ${r.name} vs pg by round: ${perRound.join(" ")}`);
    }
  }
  for (const r of results) {
    for (const sample of r.errorSamples) lines.push(`  ${r.name} error x${sample.count}: ${sample.message}`);
  }
  for (const sample of serverWarmUpErrors.samples()) {
    lines.push(`  server warm-up error x${sample.count}: ${sample.message}`);
  }
  if (results.some((r) => r.cpu)) {
    lines.push(
      `${"cpu".padEnd(10)}${"bench ms".padStart(11)}${"api ms".padStart(9)}${"pg ms".padStart(9)}` +
        `${"cores busy".padStart(12)}${"others".padStart(8)}   (CPU per create; cores busy over the window)`,
    );
    for (const r of results) {
      if (!r.cpu) continue;
      const perCreate = (seconds: number | undefined) =>
        seconds === undefined || r.creates === 0 ? "-" : ((seconds * 1000) / r.creates).toFixed(3);
      const others = r.cpu.machine - r.cpu.bench - (r.cpu.apiChild ?? 0) - r.cpu.postgres;
      lines.push(
        `${r.name.padEnd(10)}${perCreate(r.cpu.bench).padStart(11)}${perCreate(r.cpu.apiChild).padStart(9)}` +
          `${perCreate(r.cpu.postgres).padStart(9)}${(r.cpu.machine / r.seconds).toFixed(2).padStart(12)}` +
          `${(Math.max(0, others) / r.seconds).toFixed(2).padStart(8)}`,
      );
    }
  }

  const startedAt = new Date();
  const file = path.join(ROOT, "bench", "results", `api-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(
    file,
    `${JSON.stringify(
      {
        bench: "api",
        finishedAt: startedAt.toISOString(),
        options,
        dbPoolMax: config.dbPoolMax,
        serverWarmUpErrors: { count: serverWarmUpErrors.count, samples: serverWarmUpErrors.samples() },
        machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model, node: process.version },
        sql: UPSERT_STATEMENT,
        phases: results.map((r) => ({ ...r, ratioToBaseline: r.name === "baseline" ? 1 : ratio(r) })),
      },
      null,
      2,
    )}\n`,
  );
  lines.push(`results: ${path.relative(ROOT, file)}`);

  const rest = byName.get("rest");
  const grpc = byName.get("grpc");
  lines.push(
    `bench:api baseline_per_s=${Math.round(baseline)} rest_per_s=${Math.round(rest?.perSecond ?? 0)}` +
      ` grpc_per_s=${Math.round(grpc?.perSecond ?? 0)} rest_ratio=${ratio(rest).toFixed(2)}` +
      ` grpc_ratio=${ratio(grpc).toFixed(2)} rest_p99_ms=${(rest?.p99Ms ?? 0).toFixed(2)}` +
      ` grpc_p99_ms=${(grpc?.p99Ms ?? 0).toFixed(2)}`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);

  const failed = [
    ...(serverWarmUpErrors.count > 0 ? [`server warm-up (${serverWarmUpErrors.count})`] : []),
    ...results.filter((r) => r.errors > 0).map((r) => `${r.name} (${r.errors})`),
  ];
  if (failed.length > 0) {
    log(`FAILED: errors in ${failed.join(", ")}`);
    process.exitCode = 1;
  }
}

interface BenchServer {
  url: string;
  /** The API's own process when it is a child; in-process, its CPU counts as the bench's. */
  pid?: number;
  stop(): Promise<void>;
}

async function startInProcess(config: ApiConfig): Promise<BenchServer> {
  const api = await createApi(config, createLogger("api", config.logLevel)).start();
  return { url: api.url, stop: () => api.stop() };
}

/** `tsx api/src/main.ts` as a separate process, so client and server do not share one event loop. */
async function startChildProcess(
  apiEnv: Record<string, string>,
  databaseUrl: string,
  nodeArgs: string[],
): Promise<BenchServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, "--import", "tsx", "api/src/main.ts"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}),
      ...apiEnv,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = once(child, "exit").then(([code, signal]) => ({ code, signal }));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  try {
    await Promise.race([
      waitUntilReady(url),
      exited.then(({ code, signal }) => {
        throw new Error(`api child process exited during start (code ${code}, signal ${signal})`);
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, pid: child.pid, stop };
}

function readOptions(args: string[]): BenchOptions {
  const { values } = parseOrThrowUsage(args, {
    duration: { type: "string", default: "10" },
    rounds: { type: "string", default: "3" },
    warmup: { type: "string", default: "2" },
    "server-warmup": { type: "string", default: "10" },
    concurrency: { type: "string", default: "64" },
    server: { type: "string", default: "child" },
    // The flags `npm run api` starts the API with.
    "server-node-args": { type: "string", default: "--max-semi-space-size=32" },
    phases: { type: "string", default: PHASES.join(",") },
  });
  const positive = (flag: string, value: string, integer: boolean) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new UsageError(`--${flag}=${value}: expected a positive ${integer ? "integer" : "number"}`);
    }
    return n;
  };
  const server = values.server as ServerMode;
  if (!SERVER_MODES.includes(server)) {
    throw new UsageError(`--server=${values.server}: expected one of ${SERVER_MODES.join(", ")}`);
  }
  const phases = values.phases.split(",").map((p) => p.trim()) as PhaseName[];
  const unknown = phases.filter((p) => !PHASES.includes(p));
  if (unknown.length > 0 || phases.length === 0) {
    throw new UsageError(`--phases=${values.phases}: expected a comma-separated subset of ${PHASES.join(",")}`);
  }
  return {
    durationS: positive("duration", values.duration, false),
    rounds: positive("rounds", values.rounds, true),
    warmupS: values.warmup === "0" ? 0 : positive("warmup", values.warmup, false),
    serverWarmupS: values["server-warmup"] === "0" ? 0 : positive("server-warmup", values["server-warmup"], false),
    concurrency: positive("concurrency", values.concurrency, true),
    server,
    serverNodeArgs: values["server-node-args"].split(" ").filter((arg) => arg !== ""),
    phases,
  };
}

function parseOrThrowUsage<T extends ParseArgsConfig["options"]>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

class UsageError extends Error {
  override name = "UsageError";
}

function log(message: string): void {
  process.stderr.write(`bench:api ${message}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:api: ${error instanceof UsageError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
