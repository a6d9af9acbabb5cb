import { field, summaryLine } from "../shared/summary-line.js";
import { type CpuUse, cpuUsPerMessage } from "./cpu-window.js";

/** The figures of a pipeline run that its summary line, the targets and the report state. */
export interface PipelineSummary {
  messages: number;
  e2ePerS: number;
  kafkaCeilingPerS: number;
  pgCeilingPerS: number;
  /** At the first latency phase's rate (--rate, 1,000/s by default). */
  latencyRatePerS: number | undefined;
  p50Ms: number;
  p99Ms: number;
  lost: number;
  /**
   * The honest limit of a pipeline that does both jobs on the same cores: a message costs the
   * Kafka legs' time and the upsert's time, so 1 / (1/kafka + 1/pg).
   */
  composedCeilingPerS: number;
  composedRatio: number;
  /** End to end, CPU of every process but `others`, per message; undefined without /proc. */
  cpuUsPerMsg: number | undefined;
  /** The same for the Kafka ceiling plus the PostgreSQL ceiling: the work that cannot be avoided. */
  ceilingCpuUsPerMsg: number | undefined;
  cpuRatio: number | undefined;
}

interface Phase {
  messages: number;
  perSecond: number;
  cpu?: CpuUse | undefined;
}

export function composedCeiling(kafkaPerS: number, pgPerS: number): number {
  return kafkaPerS > 0 && pgPerS > 0 ? 1 / (1 / kafkaPerS + 1 / pgPerS) : 0;
}

export function summarizePipeline(run: {
  messages: number;
  e2e: Phase;
  kafkaPipe: Phase;
  pgCeiling: Phase;
  latencies: readonly { ratePerS: number; p50Ms: number; p99Ms: number }[];
  lost: number;
}): PipelineSummary {
  const [atRate] = run.latencies;
  const composed = composedCeiling(run.kafkaPipe.perSecond, run.pgCeiling.perSecond);
  const cpu = cpuUsPerMessage(run.e2e.cpu, run.e2e.messages);
  const kafkaCpu = cpuUsPerMessage(run.kafkaPipe.cpu, run.kafkaPipe.messages);
  const pgCpu = cpuUsPerMessage(run.pgCeiling.cpu, run.pgCeiling.messages);
  const ceilingCpu = kafkaCpu === undefined || pgCpu === undefined ? undefined : kafkaCpu + pgCpu;
  return {
    messages: run.messages,
    e2ePerS: run.e2e.perSecond,
    kafkaCeilingPerS: run.kafkaPipe.perSecond,
    pgCeilingPerS: run.pgCeiling.perSecond,
    latencyRatePerS: atRate?.ratePerS,
    p50Ms: atRate?.p50Ms ?? 0,
    p99Ms: atRate?.p99Ms ?? 0,
    lost: run.lost,
    composedCeilingPerS: composed,
    composedRatio: composed > 0 ? run.e2e.perSecond / composed : 0,
    cpuUsPerMsg: cpu,
    ceilingCpuUsPerMsg: ceilingCpu,
    cpuRatio: cpu === undefined || !ceilingCpu ? undefined : cpu / ceilingCpu,
  };
}

/** The last stdout line of `npm run bench:pipeline`: `key=value` fields, for scripts. */
export function pipelineSummaryLine(s: PipelineSummary): string {
  return summaryLine("pipeline", [
    ["messages", s.messages],
    ["e2e_per_s", field(s.e2ePerS)],
    ["kafka_ceiling_per_s", field(s.kafkaCeilingPerS)],
    ["pg_ceiling_per_s", field(s.pgCeilingPerS)],
    ["p50_ms", field(s.p50Ms)],
    ["p99_ms", field(s.p99Ms)],
    ["lost", s.lost],
    ["composed_ceiling_per_s", field(s.composedCeilingPerS)],
    ["composed_ratio", field(s.composedRatio, 2)],
    ["cpu_us_per_msg", field(s.cpuUsPerMsg)],
    ["ceiling_cpu_us_per_msg", field(s.ceilingCpuUsPerMsg)],
    ["cpu_ratio", field(s.cpuRatio, 2)],
  ]);
}
