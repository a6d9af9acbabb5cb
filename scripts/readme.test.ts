import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { expect } from "chai";
import { Kafka, logLevel } from "kafkajs";
import { configVariables } from "#platform/env.js";
import { loadApiConfig } from "../api/src/config.js";
import { loadSchedulerConfig } from "../scheduler/src/config.js";
import { runScopedSuffix, testBrokers, testRunId } from "../test/support/env.js";
import { freePorts } from "../test/support/free-port.js";
import { REPO_ROOT, runCommand } from "../test/support/run-command.js";
import { fragmentPattern, matchesInOrder, readmeSteps } from "./readme-blocks.js";

describe("README examples: the block parser", () => {
  it("when a block is marked test, then its commands, continuations and expected output are read", () => {
    const steps = readmeSteps(
      [
        "```sh",
        "npm ci",
        "```",
        "```sh test",
        "# a comment",
        "curl -s localhost:8000/products/1",
        '#> "id":"1"',
        "#> … done",
        "npx buf curl \\",
        "  http://localhost:8000",
        "```",
      ].join("\n"),
    );
    expect(steps).to.deep.equal([
      { command: "curl -s localhost:8000/products/1", expect: ['"id":"1"', "… done"], line: 6 },
      { command: "npx buf curl \\\n  http://localhost:8000", expect: [], line: 9 },
    ]);
  });

  it("when a block is never closed, then parsing fails", () => {
    expect(() => readmeSteps("```sh test\ncurl x\n")).to.throw("never closed");
  });

  it("when fragments are matched, then … matches anything and order counts", () => {
    expect(fragmentPattern('{"id":"1",…}').test('{"id":"1","name":"n"}')).to.equal(true);
    expect(matchesInOrder("a b c", ["a", "c"])).to.equal(true);
    expect(matchesInOrder("a b c", ["c", "a"])).to.equal(false);
    expect(matchesInOrder("1.5 x", ["1.5"])).to.equal(true);
    expect(matchesInOrder("105 x", ["1.5"])).to.equal(false);
  });
});

describe("README configuration table", () => {
  it("when it is compared with the config loaders, then it lists every variable each service reads, with its default", async () => {
    const readme = await readFile(path.join(REPO_ROOT, "README.md"), "utf8");
    const section = readme.split(/^## Configuration$/m)[1]?.split(/^## /m)[0] ?? "";
    const rows = [...section.matchAll(/^\| `([A-Z0-9_]+)` +\| (api|scheduler|both) +\| (.+?) +\|/gm)].map(
      ([, name, service, fallback]) => ({
        name,
        service,
        fallback: fallback === "—" ? undefined : fallback?.replace(/^`|`$/g, ""),
      }),
    );
    for (const [service, load] of [
      ["api", loadApiConfig],
      ["scheduler", loadSchedulerConfig],
    ] as const) {
      const documented = rows
        .filter((row) => row.service === service || row.service === "both")
        .map(({ name, fallback }) => ({ name, default: fallback }));
      const read = configVariables(load);
      const byName = (a: { name?: string }, b: { name?: string }) => String(a.name).localeCompare(String(b.name));
      expect(documented.sort(byName), `README rows for ${service}`).to.deep.equal(read.sort(byName));
    }
  });
});

describe("README examples against a system started like npm start @integration", function () {
  this.timeout(180_000);
  let system: ChildProcess | undefined;
  let output = "";
  let dataDir: string;
  let ports: { api: number; metrics: number; postgres: number };
  let topics: { input: string; persisted: string; errors: string };
  const broker = () => testBrokers();

  /** The README is written for the default ports and topics; this run has its own. */
  const localise = (command: string) =>
    command
      .replaceAll("localhost:8000", `localhost:${ports.api}`)
      .replaceAll("localhost:9464", `localhost:${ports.metrics}`)
      .replaceAll("localhost:9092", broker())
      .replaceAll("cadastro-produtos", topics.input)
      .replaceAll("produtos-persistidos", topics.persisted)
      .replaceAll("erro-produtos", topics.errors);

  const env = () => ({
    ...process.env,
    PORT: String(ports.api),
    METRICS_PORT: String(ports.metrics),
    EMBEDDED_POSTGRES_PORT: String(ports.postgres),
    DATA_DIR: dataDir,
    KAFKA_BROKER_URL: broker(),
    TOPIC_NAME: topics.input,
    TRANSFORMED_TOPIC: topics.persisted,
    ERROR_TOPIC_NAME: topics.errors,
    DATABASE_URL: "",
    LOG_FORMAT: "json",
  });

  before(async () => {
    const suffix = runScopedSuffix();
    topics = {
      input: `readme-cadastro-produtos-${suffix}`,
      persisted: `readme-produtos-persistidos-${suffix}`,
      errors: `readme-erro-produtos-${suffix}`,
    };
    dataDir = await mkdtemp(path.join(os.tmpdir(), `readme-${testRunId()}-`));
    // mkdtemp makes it 0700; as root, the embedded PostgreSQL runs as the postgres user.
    await chmod(dataDir, 0o711);
    const [api, metrics, postgres] = (await freePorts(3)) as [number, number, number];
    ports = { api, metrics, postgres };
    system = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
      cwd: REPO_ROOT,
      env: env(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [system.stdout, system.stderr]) {
      stream?.on("data", (chunk: Buffer) => {
        output += chunk.toString("utf8");
      });
    }
    await untilUp(system, [`http://127.0.0.1:${ports.api}/readyz`, `http://127.0.0.1:${ports.metrics}/healthz`], () =>
      output.slice(-4000),
    );
  });

  after(async () => {
    if (system && system.exitCode === null) {
      system.kill("SIGTERM");
      if ((await exitCode(system, 60_000)) === "timeout") system.kill("SIGKILL");
    }
    const admin = new Kafka({ brokers: [broker()], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const ours = Object.values(topics).filter((topic) => existing.has(topic));
      if (ours.length > 0) await admin.deleteTopics({ topics: ours });
    } finally {
      await admin.disconnect();
    }
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("when every runnable block of the README runs in order, then each command succeeds and prints what the README shows", async () => {
    const steps = readmeSteps(await readFile(path.join(REPO_ROOT, "README.md"), "utf8"));
    expect(steps.length, "runnable steps in README.md").to.be.greaterThan(10);
    for (const step of steps) {
      const command = localise(step.command);
      // The pipeline is asynchronous: a read that expects a row or an event is retried for a while.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const result = await runCommand("bash", ["-o", "pipefail", "-c", command], { env: env(), timeoutMs: 60_000 });
        const ok = result.code === 0 && matchesInOrder(result.output, step.expect.map(localise));
        if (ok) break;
        if (Date.now() > deadline || (result.code !== 0 && step.expect.length === 0)) {
          expect.fail(
            `README line ${step.line}: ${step.command}\nexit ${result.code}; expected, in order:\n  ${step.expect.join("\n  ")}\ngot:\n${result.output}`,
          );
        }
        await delay(500);
      }
    }
  });

  it("when the system is stopped with SIGTERM, then it exits 0", async () => {
    expect(system?.exitCode, output.slice(-2000)).to.equal(null);
    system?.kill("SIGTERM");
    expect(await exitCode(system as ChildProcess, 60_000), output.slice(-2000)).to.equal(0);
  });
});

/** The child's exit code (a signal counts as null), or "timeout" if it is still running after timeoutMs. */
async function exitCode(child: ChildProcess, timeoutMs: number): Promise<number | null | "timeout"> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const timer = new AbortController();
  try {
    const [code] = (await Promise.race([
      once(child, "exit"),
      delay(timeoutMs, ["timeout"], { signal: timer.signal }),
    ])) as [number | null | "timeout"];
    return code;
  } finally {
    timer.abort();
  }
}

async function untilUp(child: ChildProcess, urls: string[], log: () => string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${log()}`);
    const up = await Promise.all(
      urls.map((url) =>
        fetch(url).then(
          (res) => res.ok,
          () => false,
        ),
      ),
    );
    if (up.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`npm start not up after ${timeoutMs} ms:\n${log()}`);
    await delay(250);
  }
}
