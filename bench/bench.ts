/**
 * `npm run bench`: the pipeline, API and capacity benches one after the other, then one results
 * file and one report.
 *
 *   npm run bench -- [--quick] [--messages 50000] [--duration 10] [--capacity-messages 20000]
 *                    [--only pipeline,api,capacity]
 *
 * Each bench runs as its own process (as `npm run bench:<name>` would), its progress on stderr and
 * its report on stdout as it goes. Then bench/results/<stamp>.json holds every bench's results with
 * the machine (cores, CPU, load before and after), the versions and the commit, and
 * bench/reports/<stamp>.md the report with its SVG charts in bench/reports/<stamp>/. --quick runs
 * small workloads into the quick/ folders (gitignored): a smoke test, not a measurement. The last
 * stdout lines are every bench's summary line, then the report's path.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { benchLog } from "./shared/bench-log.js";
import { REPOSITORY_ROOT } from "./shared/environment.js";
import { failureText, UsageError } from "./shared/usage-error.js";
import { gitInfo, machineInfo, measureWakeCost, versions, wakeCostSummary } from "./suite/machine.js";
import { readSuiteOptions, type SuiteBench } from "./suite/options.js";
import { outputDirs, stampOf, writeReport } from "./suite/report-files.js";
import type { SuiteResults } from "./suite/results.js";

const log = benchLog("bench");

/** Runs `bench/<name>-bench.ts`, echoing its stdout; resolves with its exit code and summary lines. */
async function runBench(name: SuiteBench, args: string[]): Promise<{ exitCode: number | null; summary: string[] }> {
  const child = spawn(process.execPath, ["--import", "tsx", `bench/${name}-bench.ts`, ...args], {
    cwd: REPOSITORY_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const summary: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    process.stdout.write(`${line}\n`);
    if (line.startsWith(`bench:${name} `)) summary.push(line);
  });
  const [exitCode] = (await once(child, "close")) as [number | null];
  return { exitCode, summary };
}

async function main(): Promise<void> {
  const options = readSuiteOptions(process.argv.slice(2));
  const started = new Date();
  const stamp = stampOf(started);
  const loadBefore = os.loadavg();
  const git = gitInfo();
  const dirs = outputDirs(options.quick);
  const scratch = await mkdtemp(path.join(os.tmpdir(), "bench-"));
  log(
    `${options.quick ? "quick smoke run" : "run"} ${stamp}: ${options.only.join(", ")}; ${os.availableParallelism()} cores, ` +
      `load ${loadBefore.map((l) => l.toFixed(2)).join(" ")}; commit ${git.commit?.slice(0, 12) ?? "?"}${git.dirty ? " (dirty)" : ""}`,
  );
  log("measuring what a wake-up costs on this machine (5 s)");
  const wakeCost = await measureWakeCost().catch((error: unknown) => {
    log(`wake-up cost not measured: ${failureText(error)}`);
    return undefined;
  });
  if (wakeCost) log(`wake-up cost: ${wakeCostSummary(wakeCost, (us) => us.toFixed(0))}`);
  const results: Partial<SuiteResults> = {};
  const failures: SuiteResults["failures"] = [];
  const summaryLines: string[] = [];
  const commands: Record<string, string[]> = {};
  try {
    for (const [index, name] of options.only.entries()) {
      const file = path.join(scratch, `${name}.json`);
      commands[name] = options.args[name];
      log(`[${index + 1}/${options.only.length}] bench:${name} ${options.args[name].join(" ")}`);
      const run = await runBench(name, [...options.args[name], "--results-file", file]);
      summaryLines.push(...run.summary);
      if (run.exitCode !== 0) failures.push({ bench: name, exitCode: run.exitCode });
      const text = await readFile(file, "utf8").catch(() => undefined);
      if (text === undefined) {
        log(`bench:${name} wrote no results (exit ${run.exitCode})`);
        continue;
      }
      Object.assign(results, { [name]: JSON.parse(text) });
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const suite: SuiteResults = {
    stamp,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    quick: options.quick,
    commands,
    machine: machineInfo(loadBefore, os.loadavg(), wakeCost),
    versions: await versions(),
    git,
    ...results,
    failures,
    summaryLines,
  };
  await mkdir(dirs.results, { recursive: true });
  const resultsFile = path.join(dirs.results, `${stamp}.json`);
  await writeFile(resultsFile, `${JSON.stringify(suite, null, 2)}\n`);
  const report = await writeReport(suite, dirs.reports);
  process.stdout.write(
    `${[...summaryLines, `results: ${path.relative(REPOSITORY_ROOT, resultsFile)}`, `report: ${report}`].join("\n")}\n`,
  );
  if (failures.length > 0) {
    log(`FAILED: ${failures.map((f) => `bench:${f.bench} exited ${f.exitCode}`).join(", ")}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${failureText(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
