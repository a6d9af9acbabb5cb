/**
 * The fault-injection suite: real processes killed, frozen and cut off, every record counted.
 *
 *   npm run test:faults                         the fast subset (CI)
 *   npm run test:faults -- --full               every scenario, a larger workload
 *   npm run test:faults -- --scenario NAME ...  chosen scenarios (repeatable)
 *   npm run test:faults -- --ids N              product ids per scenario
 *   npm run test:faults -- --list               the scenarios
 *
 * It starts its own broker (scripts/kafka.sh, on a port of 19600-19699, data in a temp dir), uses
 * PostgreSQL at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) with a
 * fresh database per scenario, and runs the API and the scheduler as separate processes on the
 * product's defaults. Progress goes to stderr; the table to stdout; everything to
 * .data/faults/<time>.json. Exit code 1 when any check fails in any scenario.
 */
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { DisposableDatabase } from "../support/disposable-database.js";
import { testDatabaseUrl, testRunId } from "../support/env.js";
import { freeBrokerPort } from "../support/free-port.js";
import { testKafka } from "../support/kafka.js";
import { REPO_ROOT } from "../support/run-command.js";
import { Broker, FAULTS_PORT_RANGE, type Service } from "./processes.js";
import { formatReport, passed, type ScenarioResult } from "./report.js";
import { runScenario } from "./scenario-runner.js";
import { SCENARIOS } from "./scenarios.js";

const CI_IDS = 400;
const FULL_IDS = 3_000;

function usage(message: string): never {
  process.stderr.write(
    `faults: ${message}\nusage: npm run test:faults -- [--full] [--scenario NAME]... [--ids N] [--list]\n`,
  );
  process.exit(2);
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        full: { type: "boolean", default: false },
        scenario: { type: "string", multiple: true, default: [] },
        ids: { type: "string" },
        list: { type: "boolean", default: false },
      },
      strict: true,
    });
  } catch (error) {
    return usage((error as Error).message);
  }
})();

if (values.list) {
  for (const scenario of SCENARIOS) {
    process.stdout.write(`${scenario.name.padEnd(22)} ${scenario.ci ? "ci  " : "full"}  ${scenario.summary}\n`);
  }
  process.exit(0);
}
const unknown = values.scenario.filter((name) => !SCENARIOS.some((s) => s.name === name));
if (unknown.length > 0) usage(`unknown scenario ${unknown.join(", ")}; --list shows them`);
const chosen =
  values.scenario.length > 0
    ? SCENARIOS.filter((s) => values.scenario.includes(s.name))
    : SCENARIOS.filter((s) => values.full || s.ci);
const ids = values.ids === undefined ? (values.full ? FULL_IDS : CI_IDS) : Number(values.ids);
if (!Number.isInteger(ids) || ids < 5 || ids > 100_000)
  usage(`--ids ${values.ids}: expected an integer from 5 to 100000`);

const started = Date.now();
const progress = (text: string) => {
  process.stderr.write(`[faults ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
};
const runId = testRunId();
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const outDir = path.join(REPO_ROOT, ".data/faults");
const logDir = path.join(outDir, stamp);
await mkdir(logDir, { recursive: true });

const services = new Set<Service>();
const databases = new Set<DisposableDatabase>();
const ports = new Set<number>();
const brokerPort = await freeBrokerPort(FAULTS_PORT_RANGE);
ports.add(brokerPort).add(brokerPort + 1);
const kafkaDir = await mkdtemp(path.join(tmpdir(), `faults-kafka-${runId}-`));
const broker = new Broker(brokerPort, kafkaDir);

/** Ctrl-C or a kill: stop what this run started, drop its databases, then die of the signal. */
let interrupted = false;
const onSignal = (signal: NodeJS.Signals) => {
  if (interrupted) return;
  interrupted = true;
  progress(`${signal}: stopping what this run started`);
  for (const service of services) service.killNow();
  spawnSync("bash", [path.join(REPO_ROOT, "scripts/kafka.sh"), "stop"], {
    env: { ...process.env, KAFKA_BROKER_URL: broker.url, KAFKA_DATA_DIR: kafkaDir },
    stdio: "ignore",
    timeout: 45_000,
  });
  rmSync(kafkaDir, { recursive: true, force: true });
  void Promise.allSettled([...databases].map((database) => database.drop())).finally(() => {
    process.kill(process.pid, signal);
  });
  for (const other of ["SIGINT", "SIGTERM"] as const) process.off(other, onSignal);
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

const results: ScenarioResult[] = [];
try {
  progress(
    `run ${runId}: ${chosen.length} scenarios (${chosen.map((s) => s.name).join(", ")}), ${ids} ids each; ` +
      `PostgreSQL ${new URL(testDatabaseUrl()).host}; logs in ${path.relative(REPO_ROOT, logDir)}`,
  );
  progress(`starting the suite's broker on ${broker.url} (data in ${kafkaDir})`);
  await broker.start();
  const kafka = testKafka(broker.url);
  for (const scenario of chosen) {
    const result = await runScenario(scenario, { broker, kafka, ids, logDir, ports, progress, services, databases });
    results.push(result);
    progress(`${scenario.name}: ${passed(result) ? "pass" : "FAIL"} in ${result.seconds} s`);
    // A broker the scenario left down would fail every later one.
    if (broker.pid() === undefined) await broker.start();
  }
} finally {
  await broker.stop().catch((error: unknown) => progress(`stopping the broker: ${(error as Error).message}`));
  await rm(kafkaDir, { recursive: true, force: true });
}

const report = formatReport(results);
const file = path.join(outDir, `${stamp}.json`);
await writeFile(
  file,
  `${JSON.stringify(
    {
      run: runId,
      startedAt: new Date(started).toISOString(),
      seconds: Math.round((Date.now() - started) / 1000),
      ids,
      full: values.full,
      scenarios: results,
    },
    (_, value) => (typeof value === "bigint" ? value.toString() : value),
    2,
  )}\n`,
);
process.stdout.write(`\n${report}\nresults: ${path.relative(REPO_ROOT, file)}\n`);
const failed = results.filter((r) => !passed(r));
if (failed.length > 0) {
  process.stdout.write(
    `faults: ${failed.length} of ${results.length} scenarios failed: ${failed.map((r) => r.name).join(", ")}\n`,
  );
  process.exitCode = 1;
} else {
  process.stdout.write(`faults: all ${results.length} scenarios met every target\n`);
}
