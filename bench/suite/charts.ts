import type { ApiResultsFile } from "../api/report.js";
import type { CapacityResultsFile } from "../capacity/report.js";
import { configName, roleCosts } from "../capacity/report.js";
import { CPU_ROLES, type CpuUse } from "../pipeline/cpu-window.js";
import type { PipelineResultsFile } from "../pipeline/report.js";
import { barChart, formatNumber, groupedBarChart, PALETTE, stackedBarChart } from "../shared/svg.js";
import { TARGETS } from "./targets.js";

/** The roles as the charts name them. */
export const ROLE_LABELS = ["bench", "api", "scheduler", "relay", "pg", "kafka"];

const CEILING = PALETTE[0] as string;
const COMPOSED = PALETTE[4] as string;
const MEASURED = PALETTE[1] as string;

/** µs of CPU per message of each role over a window, in CPU_ROLES order. */
export function roleParts(cpu: CpuUse | undefined, messages: number): number[] {
  return CPU_ROLES.map((role) => (cpu && messages > 0 ? (cpu[role] * 1e6) / messages : 0));
}

export function pipelineThroughputChart(p: PipelineResultsFile): string {
  const s = p.summary;
  return barChart({
    title: "Pipeline throughput beside its ceilings (same run)",
    unit: "msg/s",
    bars: [
      { label: "kafka pipe ceiling", value: s.kafkaCeilingPerS, color: CEILING },
      { label: "pg upsert ceiling", value: s.pgCeilingPerS, color: CEILING },
      { label: "composed ceiling", value: s.composedCeilingPerS, color: COMPOSED },
      { label: "end to end", value: s.e2ePerS, color: MEASURED },
    ],
    references: [
      { value: TARGETS.composedRatio * s.composedCeilingPerS, label: `target ${TARGETS.composedRatio}× composed` },
    ],
  });
}

export function apiThroughputChart(a: ApiResultsFile): string {
  const s = a.summary;
  return barChart({
    title: "Single creates beside the raw pg baseline (same run)",
    unit: "creates/s",
    bars: [
      { label: "raw pg baseline", value: s.baselinePerS, color: CEILING },
      { label: "REST POST /products/", value: s.restPerS, color: MEASURED },
      { label: "gRPC CreateProduct", value: s.grpcPerS, color: MEASURED },
    ],
    references: [
      { value: TARGETS.singleCreateRatio * s.baselinePerS, label: `target ${TARGETS.singleCreateRatio}× pg` },
    ],
  });
}

export function latencyChart(p: PipelineResultsFile): string {
  return groupedBarChart({
    title: "Latency, produce → event on the topic, by offered rate (open loop)",
    unit: "ms",
    series: ["p50", "p90", "p99", "max"],
    groups: p.latencies.map((l) => ({
      label: `${formatNumber(l.ratePerS)} msg/s`,
      values: [l.p50Ms, l.p90Ms, l.p99Ms, l.maxMs],
    })),
    references: [{ value: TARGETS.p99Ms, label: `p99 target ${TARGETS.p99Ms} ms` }],
  });
}

export function pipelineCpuChart(p: PipelineResultsFile): string {
  const kafka = roleParts(p.kafkaPipe.cpu, p.kafkaPipe.messages);
  const pg = roleParts(p.pgCeiling.cpu, p.pgCeiling.messages);
  const ceilingSum = kafka.map((v, i) => v + (pg[i] ?? 0));
  return stackedBarChart({
    title: "CPU per message by process (others excluded)",
    unit: "µs/msg",
    series: ROLE_LABELS,
    rows: [
      { label: "kafka pipe ceiling", parts: kafka },
      { label: "pg upsert ceiling", parts: pg },
      { label: "ceilings' sum", parts: ceilingSum },
      { label: "end to end", parts: roleParts(p.e2e.cpu, p.e2e.messages) },
    ],
    references:
      p.summary.ceilingCpuUsPerMsg === undefined
        ? []
        : [{ value: TARGETS.cpuRatio * p.summary.ceilingCpuUsPerMsg, label: `target ${TARGETS.cpuRatio}× ceilings` }],
  });
}

export function apiCpuChart(a: ApiResultsFile): string {
  return stackedBarChart({
    title: "CPU per create by process",
    unit: "ms/create",
    series: ["bench (load generator)", "api", "pg"],
    rows: a.phases.map((phase) => {
      const ms = (seconds: number | undefined) =>
        phase.cpu && seconds !== undefined && phase.creates > 0 ? (seconds * 1000) / phase.creates : 0;
      return { label: phase.name, parts: [ms(phase.cpu?.bench), ms(phase.cpu?.apiChild), ms(phase.cpu?.postgres)] };
    }),
  });
}

export function capacityThroughputChart(c: CapacityResultsFile): string {
  return barChart({
    title: "End to end by topology (schedulers × API replicas), this machine",
    unit: "msg/s",
    bars: c.results.map((r) => ({ label: `${configName(r)}`, value: r.perSecond, color: MEASURED })),
  });
}

export function capacityCpuChart(c: CapacityResultsFile): string {
  return stackedBarChart({
    title: "CPU per message by process, by topology",
    unit: "µs/msg",
    series: ROLE_LABELS,
    rows: c.results.map((r) => ({
      label: configName(r),
      parts: roleCosts(r)
        .slice(0, CPU_ROLES.length)
        .map((v) => v ?? 0),
    })),
  });
}
