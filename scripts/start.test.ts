import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { type Kafka, Partitioners } from "kafkajs";
import { runScopedSuffix, testBrokers } from "../test/support/env.js";
import { watchEvents } from "../test/support/events.js";
import { freePorts } from "../test/support/free-port.js";
import { testKafka } from "../test/support/kafka.js";
import { SEED_MESSAGE_JSON } from "./seed-messages.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** `npm start` as a user runs it (without npm in between, so its pid is the orchestrator's). */
class Orchestrator {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";
  readonly exited: Promise<number | null>;
  private readonly changed = new Set<() => void>();

  constructor(env: Record<string, string>) {
    const inherited = { ...process.env };
    for (const name of ["DATABASE_URL", "LOG_FORMAT", "LOG_LEVEL", "API_URL", "KAFKA_DATA_DIR"]) delete inherited[name];
    this.child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
      cwd: ROOT,
      env: { ...inherited, ...env },
    });
    this.child.stdout.on("data", (chunk: Buffer) => {
      this.stdout += chunk;
      for (const check of this.changed) check();
    });
    this.child.stderr.on("data", (chunk: Buffer) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => this.child.on("close", (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Resolves once stdout satisfies `condition`; rejects after timeoutMs or when the process exits. */
  until(condition: (stdout: string) => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        this.changed.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        if (condition(this.stdout)) done();
      };
      const timer = setTimeout(
        () => done(new Error(`${what}: not seen in ${timeoutMs} ms\n${this.output()}`)),
        timeoutMs,
      );
      void this.exited.then((code) => done(new Error(`exited (${code}) before ${what}\n${this.output()}`)));
      this.changed.add(check);
      check();
    });
  }

  /** The exit code; rejects if it takes longer than timeoutMs. */
  async exit(timeoutMs: number): Promise<number | null> {
    const waited = new AbortController();
    const timer = delay(timeoutMs, undefined, { signal: waited.signal }).then(() => {
      throw new Error(`still running after ${timeoutMs} ms\n${this.output()}`);
    });
    timer.catch(() => {});
    try {
      return await Promise.race([this.exited, timer]);
    } finally {
      waited.abort();
    }
  }

  output(): string {
    return `--- stdout\n${this.stdout.slice(-6000)}\n--- stderr\n${this.stderr.slice(-3000)}`;
  }
}

/** The pids of every process below `pid` (children, grandchildren: the parts and PostgreSQL's). */
async function descendants(pid: number): Promise<Map<number, string>> {
  const parents = new Map<number, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // pid (comm) state ppid …: comm may hold spaces, so read after its closing parenthesis.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid > 0) parents.set(Number(entry), ppid);
  }
  const found = new Map<number, string>();
  const visit = async (parent: number) => {
    for (const [child, ppid] of parents) {
      if (ppid !== parent || found.has(child)) continue;
      const cmdline = await readFile(`/proc/${child}/cmdline`, "utf8").catch(() => "");
      found.set(child, cmdline.replaceAll("\u0000", " ").trim());
      await visit(child);
    }
  };
  await visit(pid);
  return found;
}

/** Gone: no such process, or a zombie waiting for a parent that no longer matters. */
async function isGone(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  return stat === undefined || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function getProduct(port: number, id: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${port}/products/${id}`);
  return { status: response.status, body: await response.json() };
}

/** Whether a complete line of stdout so far is the JSON record with this message. */
function hasRecord(stdout: string, msg: string): boolean {
  return stdout
    .slice(0, stdout.lastIndexOf("\n") + 1)
    .split("\n")
    .some((line) => line.includes(`"msg":${JSON.stringify(msg)}`));
}

/** JSON records of the orchestrator's stdout (json format: every line is one). */
function jsonRecords(stdout: string): Record<string, any>[] {
  return stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line));
}

describe("npm start @integration", function () {
  this.timeout(120_000);
  const suffix = runScopedSuffix();
  const topics = {
    input: `test-start-in-${suffix}`,
    persisted: `test-start-out-${suffix}`,
    errors: `test-start-err-${suffix}`,
  };
  // A group per run: a run whose scheduler is killed leaves a member behind until its session ends.
  const groups: string[] = [];
  const runs: Orchestrator[] = [];
  let kafka: Kafka;
  let dataDir: string;
  let ports: { api: number; metrics: number; postgres: number; noBroker: number };
  let env: () => Record<string, string>;

  before(async () => {
    const [api, metrics, postgres, noBroker] = (await freePorts(4)) as [number, number, number, number];
    ports = { api, metrics, postgres, noBroker };
    dataDir = await mkdtemp(path.join(os.tmpdir(), "npm-start-"));
    // As root, the embedded PostgreSQL runs as the "postgres" user, which must enter DATA_DIR.
    await chmod(dataDir, 0o755);
    const brokers = testBrokers();
    kafka = testKafka(brokers);
    env = () => {
      const group = `test-start-${suffix}-${groups.length + 1}`;
      groups.push(group);
      return {
        KAFKA_BROKER_URL: brokers,
        PORT: String(ports.api),
        METRICS_PORT: String(ports.metrics),
        EMBEDDED_POSTGRES_PORT: String(ports.postgres),
        DATA_DIR: dataDir,
        TOPIC_NAME: topics.input,
        TRANSFORMED_TOPIC: topics.persisted,
        ERROR_TOPIC_NAME: topics.errors,
        KAFKA_GROUP_ID: group,
        // A scheduler killed here leaves its group member behind until the session expires.
        KAFKA_SESSION_TIMEOUT_MS: "6000",
        KAFKA_HEARTBEAT_INTERVAL_MS: "1000",
        OUTBOX_POLL_INTERVAL_MS: "200",
      };
    };
  });

  after(async () => {
    for (const run of runs) {
      if (run.child.exitCode !== null || run.child.signalCode !== null) continue;
      const left = await descendants(run.pid);
      run.child.kill("SIGTERM");
      const waited = new AbortController();
      await Promise.race([run.exited, delay(30_000, undefined, { signal: waited.signal }).catch(() => {})]);
      waited.abort();
      for (const pid of [run.pid, ...left.keys()]) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    const admin = kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const ours = Object.values(topics).filter((topic) => existing.has(topic));
      if (ours.length > 0) await admin.deleteTopics({ topics: ours });
      await admin.deleteGroups(groups).catch(() => {});
    } finally {
      await admin.disconnect();
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  /** Every part's process is gone and its ports are closed. */
  async function expectNothingLeft(pids: Iterable<number>) {
    for (const pid of pids) expect(await isGone(pid), `pid ${pid} is still running`).to.equal(true);
    for (const port of [ports.api, ports.metrics, ports.postgres]) {
      expect(await isListening(port), `port ${port} is still open`).to.equal(false);
    }
  }

  it("starts everything on the test broker and the embedded PostgreSQL, runs the pipeline, and stops in order on SIGTERM", async () => {
    const run = new Orchestrator({ ...env(), LOG_FORMAT: "pretty" });
    runs.push(run);
    await run.until((out) => out.includes("Ctrl-C stops everything."), "the ready banner", 90_000);
    const out = run.stdout;
    const broker = testBrokers();

    // One line per step, in order.
    const steps = [
      `kafka: using the broker at ${broker} (KAFKA_BROKER_URL)`,
      `postgres: starting the embedded PostgreSQL on 127.0.0.1:${ports.postgres}`,
      "migrations: applied 20261127000000_create_products, 20261127010000_create_product_events",
      `topics: created ${topics.input}, ${topics.persisted}, ${topics.errors}`,
      `api: starting on port ${ports.api}`,
      `scheduler: starting (metrics on port ${ports.metrics}), consuming ${topics.input}`,
      "Ready. Product ingestion is running:",
    ];
    const positions = steps.map((step) => out.indexOf(step));
    expect(positions, out).to.not.include(-1);
    expect([...positions].sort((a, b) => a - b)).to.deep.equal(positions);

    // The parts' JSON lines are formatted and carry the part's name; none is passed through raw.
    expect(out).to.match(
      new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  api {7}api listening port=${ports.api} `, "m"),
    );
    expect(out).to.match(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}scheduler scheduler started topic=/m);
    expect(out).to.match(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}postgres {2}PostgreSQL ready /m);
    expect(out.split("\n").filter((line) => line.startsWith("{"))).to.deep.equal([]);

    const banner = out.slice(out.indexOf("Ready."));
    const base = `http://localhost:${ports.api}`;
    for (const row of [
      `REST        ${base}/products/`,
      `docs        ${base}/docs`,
      `gRPC        localhost:${ports.api} (h2c`,
      `metrics     ${base}/metrics (api), http://localhost:${ports.metrics}/metrics (scheduler)`,
      `Kafka       ${broker} (already running: left as it is)`,
      `PostgreSQL  postgres://postgres:***@127.0.0.1:${ports.postgres}/products (embedded, data in ${path.join(dataDir, `postgres-${ports.postgres}`)})`,
      `echo '${SEED_MESSAGE_JSON}' | kcat -P -b ${broker} -t ${topics.input}`,
      `curl -s ${base}/products/12345`,
    ]) {
      expect(banner).to.include(row);
    }
    expect(banner).not.to.include("postgres:postgres@");

    // Where it says things are, they are.
    expect((await fetch(`${base}/docs`)).status).to.equal(200);
    expect(await (await fetch(`${base}/metrics`)).text()).to.include("# TYPE");
    expect(await (await fetch(`http://localhost:${ports.metrics}/metrics`)).text()).to.include("# TYPE");

    const events = await watchEvents(kafka, topics.persisted);
    try {
      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      await producer.send({ topic: topics.input, acks: -1, messages: [{ key: "12345", value: SEED_MESSAGE_JSON }] });
      await producer.disconnect();

      const [event] = await events.until(
        (seen) => seen.some((e) => e.key === "12345"),
        "ProductPersisted 12345",
        30_000,
      );
      expect(event?.event.product?.name).to.equal("Nome do Produto");
    } finally {
      await events.stop();
    }
    const { status, body } = await getProduct(ports.api, "12345");
    expect(status).to.equal(200);
    expect(body).to.include({ id: "12345", name: "Nome do Produto", category: "Categoria do Produto", version: 1 });

    const parts = await descendants(run.pid);
    const commands = [...parts.values()];
    for (const part of ["api/src/main.ts", "scheduler/src/main.ts", "scripts/start/postgres.ts"]) {
      expect(
        commands.some((command) => command.includes(part)),
        `${part} in ${commands.join("\n")}`,
      ).to.equal(true);
    }
    expect(commands.some((command) => /\/postgres -D \S+postgres-\d+/.test(command))).to.equal(true);

    run.child.kill("SIGTERM");
    expect(await run.exit(60_000), run.output()).to.equal(0);
    const stopping = run.stdout.slice(run.stdout.indexOf("stopping scheduler, api, postgres"));
    const stopped = ["scheduler: stopped", "api: stopped", "postgres: stopped"].map((line) => stopping.indexOf(line));
    expect(stopped, run.output()).to.not.include(-1);
    expect([...stopped].sort((a, b) => a - b)).to.deep.equal(stopped);
    await expectNothingLeft([...parts.keys()]);
  });

  it("on a second start the data is still there; when the scheduler is killed, it stops the rest and exits 1 naming it", async () => {
    expect(existsSync(path.join(dataDir, `postgres-${ports.postgres}`, "PG_VERSION")), "the first run's data").to.equal(
      true,
    );
    // Not a terminal and no LOG_FORMAT: JSON, the parts' lines passed through unchanged.
    const run = new Orchestrator(env());
    runs.push(run);
    await run.until((out) => hasRecord(out, "ready"), "the ready record", 90_000);
    const records = jsonRecords(run.stdout);
    const ready = records.find((record) => record.msg === "ready");
    expect(ready).to.include({
      service: "start",
      rest: `http://localhost:${ports.api}/products/`,
      postgres: `postgres://postgres:***@127.0.0.1:${ports.postgres}/products (embedded, data in ${path.join(dataDir, `postgres-${ports.postgres}`)})`,
    });
    expect(records.map((record) => record.msg)).to.include("migrations: up to date");
    expect(records.map((record) => record.msg)).not.to.include("initialising embedded PostgreSQL");

    const { status, body } = await getProduct(ports.api, "12345");
    expect(status).to.equal(200);
    expect(body).to.include({ id: "12345", version: 1 });

    const parts = await descendants(run.pid);
    const [schedulerPid] = [...parts].find(([, command]) => command.includes("scheduler/src/main.ts")) ?? [];
    expect(schedulerPid, [...parts.values()].join("\n")).to.be.a("number");
    process.kill(schedulerPid as number, "SIGKILL");

    expect(await run.exit(60_000), run.output()).to.equal(1);
    expect(run.stderr).to.match(/^start: scheduler was killed by SIGKILL\nscheduler's last lines:\n {2}\S/m);
    expect(run.stderr).to.match(/^ {2}\d\d:\d\d:\d\d\.\d{3} INFO {2}scheduler scheduler started /m);
    const messages = jsonRecords(run.stdout).map((record) => String(record.msg));
    const at = (prefix: string) => messages.findIndex((message) => message.startsWith(prefix));
    const failed = at("scheduler was killed by SIGKILL; stopping everything");
    expect(failed, run.output()).to.be.above(-1);
    expect(at("api: stopped (")).to.be.above(failed);
    expect(at("postgres: stopped (")).to.be.above(at("api: stopped ("));
    await expectNothingLeft([...parts.keys()]);
  });

  it("when npm start itself is killed, the parts it started stop by themselves", async () => {
    const run = new Orchestrator(env());
    runs.push(run);
    await run.until((out) => hasRecord(out, "ready"), "the ready record", 90_000);
    const parts = await descendants(run.pid);
    expect(parts.size, [...parts.values()].join("\n")).to.be.at.least(4);
    run.child.kill("SIGKILL");
    await run.exit(10_000);
    // Each part sees its stdin end and stops (start/exit-with-parent.ts, start/postgres.ts).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const left: number[] = [];
      for (const pid of parts.keys()) if (!(await isGone(pid))) left.push(pid);
      if (left.length === 0) break;
      if (Date.now() > deadline) expect.fail(`still running: ${left.map((pid) => parts.get(pid)).join("\n")}`);
      await delay(200);
    }
    await expectNothingLeft(parts.keys());
  });

  it("when PostgreSQL cannot start, it stops and exits 1 naming postgres, with PostgreSQL's own reason", async () => {
    const brokenDir = await mkdtemp(path.join(os.tmpdir(), "npm-start-broken-"));
    try {
      await chmod(brokenDir, 0o755);
      // Looks initialised, has no configuration: postgres exits at once.
      const databaseDir = path.join(brokenDir, `postgres-${ports.postgres}`);
      await mkdir(databaseDir);
      await writeFile(path.join(databaseDir, "PG_VERSION"), "18\n");
      const run = new Orchestrator({ ...env(), DATA_DIR: brokenDir, LOG_FORMAT: "pretty" });
      runs.push(run);
      expect(await run.exit(60_000), run.output()).to.equal(1);
      expect(run.stderr).to.match(/^start: postgres exited with code 1\npostgres's last lines:\n/m);
      expect(run.stderr).to.include("the embedded PostgreSQL did not start");
      expect(run.stderr).to.include("could not access the server configuration file");
      expect(run.stdout).not.to.include("api: starting");
      expect(await isListening(ports.postgres)).to.equal(false);
    } finally {
      await rm(brokenDir, { recursive: true, force: true });
    }
  });

  it("when no broker answers and Java is missing, it fails at once saying to install Java, and starts nothing else", async () => {
    // A PATH with what scripts/kafka.sh needs before it looks for java, and no java.
    const bin = await mkdtemp(path.join(os.tmpdir(), "no-java-"));
    try {
      const dirs = (process.env.PATH ?? "").split(path.delimiter);
      for (const tool of [
        "bash",
        "dirname",
        "timeout",
        "rm",
        "tr",
        "grep",
        "sed",
        "head",
        "cat",
        "mkdir",
        "sleep",
        "seq",
      ]) {
        const found = dirs.map((dir) => path.join(dir, tool)).find((file) => existsSync(file));
        if (found) await symlink(found, path.join(bin, tool));
      }
      expect(existsSync(path.join(bin, "java"))).to.equal(false);
      const started = Date.now();
      const run = new Orchestrator({
        ...env(),
        KAFKA_BROKER_URL: `127.0.0.1:${ports.noBroker}`,
        PATH: bin,
        LOG_FORMAT: "pretty",
      });
      runs.push(run);
      expect(await run.exit(30_000), run.output()).to.equal(1);
      expect(Date.now() - started).to.be.below(20_000);
      expect(run.stderr).to.match(
        /^start: kafka: java not found\. Kafka [\d.]+ needs Java 17\+; install it with: apt-get install -y openjdk-17-jre-headless/m,
      );
      expect(run.stdout).to.include(`kafka: nothing answers at 127.0.0.1:${ports.noBroker}; starting a broker`);
      expect(run.stdout).not.to.include("postgres: starting");
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });
});
