import os from "node:os";
import type { ApiConfig } from "../../api/src/config.js";
import { UPSERT_STATEMENT } from "../../api/src/products/product-repository.js";
import { writeResultsFile } from "../shared/results-file.js";
import type { ErrorTally } from "./error-tally.js";
import { log } from "./log.js";
import type { ApiBenchOptions } from "./options.js";
import type { PhaseResult } from "./phases.js";
import { type ApiSummary, apiSummaryLine, summarizeApi } from "./summary.js";

/** The JSON an API run writes, which `npm run bench` reads back. */
export interface ApiResultsFile {
  bench: "api";
  finishedAt: string;
  options: ApiBenchOptions;
  dbPoolMax: number;
  /** Upserts of single creates in flight at once (DB_WRITE_CONCURRENCY); absent in files before 2026-12-02. */
  dbWriteConcurrency?: number;
  serverWarmUpErrors: { count: number; samples: { message: string; count: number }[] };
  machine: { cores: number; cpu: string | undefined; node: string };
  sql: typeof UPSERT_STATEMENT;
  phases: (PhaseResult & { ratioToBaseline: number })[];
  summary: ApiSummary;
}

/**
 * The stdout report: the phase table, each round's ratio, errors, the CPU table, the results
 * file, and last the `bench:api …` line for scripts. Sets exit code 1 if anything failed.
 */
export async function reportApiBench(
  options: ApiBenchOptions,
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
  lines.push(...cpuLines(results));

  const summary = summarizeApi(results);
  const finishedAt = new Date();
  const resultsFile: ApiResultsFile = {
    bench: "api",
    finishedAt: finishedAt.toISOString(),
    options,
    dbPoolMax: config.dbPoolMax,
    dbWriteConcurrency: config.dbWriteConcurrency,
    serverWarmUpErrors: { count: serverWarmUpErrors.count, samples: serverWarmUpErrors.samples() },
    machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model, node: process.version },
    sql: UPSERT_STATEMENT,
    phases: results.map((r) => ({ ...r, ratioToBaseline: r.name === "baseline" ? 1 : ratio(r) })),
    summary,
  };
  const file = await writeResultsFile("api", finishedAt, resultsFile, options.resultsFile);
  lines.push(`results: ${file}`);
  lines.push(apiSummaryLine(summary));
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

/** CPU per create by process, and how busy the machine was: empty where /proc is not available. */
function cpuLines(results: PhaseResult[]): string[] {
  if (!results.some((r) => r.cpu)) return [];
  const lines = [
    `${"cpu".padEnd(10)}${"bench ms".padStart(11)}${"api ms".padStart(9)}${"pg ms".padStart(9)}` +
      `${"cores busy".padStart(12)}${"others".padStart(8)}   (CPU per create; cores busy over the window)`,
  ];
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
  return lines;
}
