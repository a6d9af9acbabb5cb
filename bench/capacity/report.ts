import os from "node:os";
import { CPU_ROLES, cpuUsPerMessage } from "../pipeline/cpu-window.js";
import { writeResultsFile } from "../shared/results-file.js";
import { field, summaryLine } from "../shared/summary-line.js";
import { log } from "./log.js";
import {
  type CapacityPlan,
  type ComponentCosts,
  type ConfigResult,
  componentCosts,
  DEFAULT_PLAN,
  type Limit,
  limits,
  planCapacity,
  relayApart,
} from "./model.js";
import type { CapacityBenchOptions } from "./options.js";

/** The rates the worked table sizes the system for. */
export const PLAN_RATES = [10_000, 50_000, 100_000];
/** The largest PostgreSQL primary the model assumes one can buy. */
export const POSTGRES_MAX_CORES = 64;

/** The JSON a capacity run writes, which `npm run bench` reads back. */
export interface CapacityResultsFile {
  bench: "capacity";
  finishedAt: string;
  options: CapacityBenchOptions;
  machine: { cores: number; cpu: string | undefined; node: string };
  partitions: number;
  partitionsConcurrently: number;
  results: ConfigResult[];
  costs: ComponentCosts | undefined;
  plans: CapacityPlan[];
  limits: Limit[];
}

/**
 * µs of CPU per message by role, in CPU_ROLES order, then all of them. The relay's replica counts
 * as the relay when it served no scheduler (1×2); otherwise the relay is part of its API's figure.
 */
export function roleCosts(result: ConfigResult): (number | undefined)[] {
  const { cpu, messages } = result;
  const relay = relayApart(result) ?? 0;
  const seconds = (role: (typeof CPU_ROLES)[number]) =>
    !cpu ? 0 : role === "api" ? cpu.api - relay : role === "relay" ? cpu.relay + relay : cpu[role];
  return [
    ...CPU_ROLES.map((role) => (cpu && messages > 0 ? (seconds(role) * 1e6) / messages : undefined)),
    cpuUsPerMessage(cpu, messages),
  ];
}

export function configName(result: { schedulers: number; apiReplicas: number }): string {
  return `${result.schedulers}×${result.apiReplicas}`;
}

/** One line per topology, for scripts. */
export function capacitySummaryLine(result: ConfigResult): string {
  const [bench, api, scheduler, relay, postgres, kafka, all] = roleCosts(result);
  return summaryLine("capacity", [
    ["schedulers", result.schedulers],
    ["api_replicas", result.apiReplicas],
    ["messages", result.messages],
    ["e2e_per_s", field(result.perSecond)],
    ["feed_per_s", field(result.feedPerS)],
    ["lost", result.lost],
    ["cpu_us_per_msg", field(all)],
    ["bench_us", field(bench)],
    ["api_us", field((api ?? Number.NaN) + (relay ?? 0))],
    ["scheduler_us", field(scheduler)],
    ["pg_us", field(postgres)],
    ["kafka_us", field(kafka)],
  ]);
}

/** The stdout report: the topologies, the model, the results file, a summary line per topology. */
export async function reportCapacityBench(
  options: CapacityBenchOptions,
  partitions: number,
  partitionsConcurrently: number,
  results: ConfigResult[],
): Promise<void> {
  const costs = componentCosts(results);
  const plans = costs ? PLAN_RATES.map((rate) => planCapacity(costs, rate, DEFAULT_PLAN)) : [];
  const found = costs ? limits(costs, os.availableParallelism(), POSTGRES_MAX_CORES) : [];
  const cell = (value: number | undefined, width = 8) => field(value).padStart(width);
  const lines = [
    `${"schedulers×apis".padEnd(16)}${"msgs/s".padStart(8)}${"s".padStart(7)}  ${["bench", "api", "sched", "relay", "pg", "kafka", "all"].map((h) => h.padStart(7)).join("")}   (µs of CPU per message; relay on, processes)`,
    ...results.map((r) => {
      const processes = Object.entries(r.cpu?.processes ?? {})
        .map(([name, seconds]) => `${name} ${field((seconds * 1e6) / r.messages)}`)
        .join(", ");
      return (
        `${configName(r).padEnd(16)}${cell(r.perSecond)}${r.seconds.toFixed(1).padStart(7)}  ` +
        `${roleCosts(r)
          .map((v) => cell(v, 7))
          .join("")}   relay on ${r.relayOn ?? "?"}; ${processes}; fed at ${field(r.feedPerS)}/s` +
        (r.lost > 0 ? `; LOST ${r.lost}` : "")
      );
    }),
  ];
  if (costs) {
    lines.push(
      `model (µs/msg, from ${costs.source}): scheduler ${field(costs.scheduler)}, api ${field(costs.api)}, ` +
        `relay ${costs.relay === undefined ? "in api" : field(costs.relay)}, pg ${field(costs.postgres)}, kafka ${field(costs.kafka)}; ` +
        `${DEFAULT_PLAN.utilisation * 100}% of each core`,
      `${"msg/s".padStart(8)}${"scheds".padStart(8)}${"parts".padStart(7)}${"apis".padStart(6)}${"relay".padStart(8)}${"pg".padStart(7)}${"kafka".padStart(7)}${"cores".padStart(7)}`,
      ...plans.map(
        (p) =>
          `${String(p.ratePerS).padStart(8)}${String(p.schedulers).padStart(8)}${String(p.partitions).padStart(7)}` +
          `${String(p.apiReplicas).padStart(6)}${(p.relayCores === undefined ? "-" : `${p.relayCores.toFixed(2)}${p.relayFits ? "" : "!"}`).padStart(8)}` +
          `${p.postgresCores.toFixed(1).padStart(7)}${p.kafkaCores.toFixed(1).padStart(7)}${p.totalCores.toFixed(1).padStart(7)}`,
      ),
      `limits, lowest first: ${found.map((l) => `${l.what} ${field(l.maxRatePerS)}/s`).join("; ")}`,
    );
  }
  const finishedAt = new Date();
  const file: CapacityResultsFile = {
    bench: "capacity",
    finishedAt: finishedAt.toISOString(),
    options,
    machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model, node: process.version },
    partitions,
    partitionsConcurrently,
    results,
    costs,
    plans,
    limits: found,
  };
  lines.push(`results: ${await writeResultsFile("capacity", finishedAt, file, options.resultsFile)}`);
  lines.push(...results.map(capacitySummaryLine));
  process.stdout.write(`${lines.join("\n")}\n`);
  const lost = results.filter((r) => r.lost > 0);
  if (lost.length > 0) {
    log(`FAILED: events lost in ${lost.map(configName).join(", ")}`);
    process.exitCode = 1;
  }
}
