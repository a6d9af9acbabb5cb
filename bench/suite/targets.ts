import type { ApiSummary } from "../api/summary.js";
import type { PipelineSummary } from "../pipeline/summary.js";
import { formatNumber } from "../shared/svg.js";

/** One target of issue 10 against a run: pass, fail, or not measured (undefined). */
export interface TargetCheck {
  target: string;
  measured: string;
  pass: boolean | undefined;
}

export const TARGETS = {
  composedRatio: 0.6,
  cpuRatio: 2,
  p99Ms: 100,
  p99RatePerS: 1000,
  singleCreateRatio: 0.8,
} as const;

const ratio = (value: number) => `${value.toFixed(2)}×`;

export function checkTargets(pipeline: PipelineSummary | undefined, api: ApiSummary | undefined): TargetCheck[] {
  const checks: TargetCheck[] = [];
  if (pipeline) {
    checks.push({
      target: `end to end ≥ ${TARGETS.composedRatio}× the composed ceiling`,
      measured: `${formatNumber(pipeline.e2ePerS)} of ${formatNumber(pipeline.composedCeilingPerS)} msg/s: ${ratio(pipeline.composedRatio)}`,
      pass: pipeline.composedCeilingPerS > 0 ? pipeline.composedRatio >= TARGETS.composedRatio : undefined,
    });
    checks.push({
      target: `CPU per message ≤ ${TARGETS.cpuRatio}× the ceilings' sum`,
      measured:
        pipeline.cpuRatio === undefined ||
        pipeline.cpuUsPerMsg === undefined ||
        pipeline.ceilingCpuUsPerMsg === undefined
          ? "not measured (no /proc)"
          : `${formatNumber(pipeline.cpuUsPerMsg)} µs against ${formatNumber(pipeline.ceilingCpuUsPerMsg)} µs: ${ratio(pipeline.cpuRatio)}`,
      pass: pipeline.cpuRatio === undefined ? undefined : pipeline.cpuRatio <= TARGETS.cpuRatio,
    });
    const atRate = pipeline.latencyRatePerS === TARGETS.p99RatePerS;
    checks.push({
      target: `p99 ≤ ${TARGETS.p99Ms} ms at ${formatNumber(TARGETS.p99RatePerS)} msg/s (produce → event)`,
      measured: atRate
        ? `${formatNumber(pipeline.p99Ms)} ms`
        : `not measured at ${formatNumber(TARGETS.p99RatePerS)} msg/s (ran at ${formatNumber(pipeline.latencyRatePerS ?? 0)})`,
      pass: atRate ? pipeline.p99Ms <= TARGETS.p99Ms : undefined,
    });
  }
  if (api) {
    for (const [name, perS, r, cpu] of [
      ["REST", api.restPerS, api.restRatio, api.restCpuMs],
      ["gRPC", api.grpcPerS, api.grpcRatio, api.grpcCpuMs],
    ] as const) {
      checks.push({
        target: `single creates, ${name} ≥ ${TARGETS.singleCreateRatio}× raw pg`,
        measured:
          `${formatNumber(perS)} of ${formatNumber(api.baselinePerS)} creates/s: ${ratio(r)}` +
          (cpu === undefined ? "" : `; API CPU ${cpu.toFixed(3)} ms per create`),
        pass: api.baselinePerS > 0 && perS > 0 ? r >= TARGETS.singleCreateRatio : undefined,
      });
    }
  }
  return checks;
}
