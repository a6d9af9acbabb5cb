import { field, summaryLine } from "../shared/summary-line.js";
import type { CpuUse } from "./cpu-window.js";

/** The figures of an API run that its summary line, the targets and the report state. */
export interface ApiSummary {
  baselinePerS: number;
  restPerS: number;
  grpcPerS: number;
  restRatio: number;
  grpcRatio: number;
  restP99Ms: number;
  grpcP99Ms: number;
  /** The API process's CPU per create (ms); undefined in-process or without /proc. */
  restCpuMs: number | undefined;
  grpcCpuMs: number | undefined;
  /** The baseline's whole CPU per create: its `pg` client (this process) and the PostgreSQL backends. */
  baselineCpuMs: number | undefined;
}

interface Phase {
  name: string;
  creates: number;
  perSecond: number;
  p99Ms: number;
  cpu: CpuUse | undefined;
}

const perCreateMs = (seconds: number | undefined, creates: number) =>
  seconds === undefined || creates <= 0 ? undefined : (seconds * 1000) / creates;

export function summarizeApi(phases: readonly Phase[]): ApiSummary {
  const byName = new Map(phases.map((phase) => [phase.name, phase]));
  const baseline = byName.get("baseline");
  const rest = byName.get("rest");
  const grpc = byName.get("grpc");
  const baselinePerS = baseline?.perSecond ?? 0;
  const ratio = (phase: Phase | undefined) => (phase && baselinePerS > 0 ? phase.perSecond / baselinePerS : 0);
  const apiCpu = (phase: Phase | undefined) => phase && perCreateMs(phase.cpu?.apiChild, phase.creates);
  return {
    baselinePerS,
    restPerS: rest?.perSecond ?? 0,
    grpcPerS: grpc?.perSecond ?? 0,
    restRatio: ratio(rest),
    grpcRatio: ratio(grpc),
    restP99Ms: rest?.p99Ms ?? 0,
    grpcP99Ms: grpc?.p99Ms ?? 0,
    restCpuMs: apiCpu(rest),
    grpcCpuMs: apiCpu(grpc),
    baselineCpuMs:
      baseline?.cpu === undefined
        ? undefined
        : perCreateMs(baseline.cpu.bench + baseline.cpu.postgres, baseline.creates),
  };
}

/** The last stdout line of `npm run bench:api`: `key=value` fields, for scripts. */
export function apiSummaryLine(s: ApiSummary): string {
  return summaryLine("api", [
    ["baseline_per_s", field(s.baselinePerS)],
    ["rest_per_s", field(s.restPerS)],
    ["grpc_per_s", field(s.grpcPerS)],
    ["rest_ratio", field(s.restRatio, 2)],
    ["grpc_ratio", field(s.grpcRatio, 2)],
    ["rest_p99_ms", field(s.restP99Ms, 2)],
    ["grpc_p99_ms", field(s.grpcP99Ms, 2)],
    ["rest_cpu_ms", field(s.restCpuMs, 3)],
    ["grpc_cpu_ms", field(s.grpcCpuMs, 3)],
    ["baseline_cpu_ms", field(s.baselineCpuMs, 3)],
  ]);
}
