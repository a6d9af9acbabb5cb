import os from "node:os";
import { writeResultsFile } from "../shared/results-file.js";
import { field } from "../shared/summary-line.js";
import type { CallStats } from "./call-stats.js";
import { type CpuUse, cpuUsPerMessage } from "./cpu-window.js";
import type { EndToEndResult } from "./end-to-end.js";
import type { FinalChecks } from "./final-checks.js";
import type { LatencyResult } from "./latency.js";
import { log } from "./log.js";
import type { PipelineBenchOptions } from "./options.js";
import type { RateResult } from "./rate-result.js";
import type { Settings } from "./settings.js";
import { composedCeiling, type PipelineSummary, pipelineSummaryLine, summarizePipeline } from "./summary.js";

/** The JSON a pipeline run writes, which `npm run bench` reads back. */
export type PipelineResultsFile = Omit<PipelineReport, "settings"> & {
  bench: "pipeline";
  finishedAt: string;
  machine: { cores: number; cpu: string | undefined; node: string };
  settings: Omit<Settings, "kafka"> & { brokers: string[] };
  ratios: { e2eToKafka: number; e2eToPg: number };
  summary: PipelineSummary;
};

export interface PipelineReport {
  options: PipelineBenchOptions;
  settings: Settings;
  loadAtStart: number[];
  loadAtEnd: number[];
  workload: { records: number; distinctIds: number; updates: number; expectedEvents: number };
  preload: RateResult;
  kafkaConsume: RateResult;
  kafkaPipe: RateResult;
  pgCeiling: RateResult & { concurrency: number };
  e2e: EndToEndResult;
  latencies: LatencyResult[];
  final: FinalChecks;
}

/**
 * The stdout report: settings, the throughput table with both ceilings, the latency table, the
 * scheduler's calls, the CPU table, the checks, the results file, and last the `bench:pipeline …`
 * line for scripts. Sets exit code 1 if events were lost, dead-lettered or rows are missing.
 */
export async function reportPipelineBench(result: PipelineReport): Promise<void> {
  const { options, settings, e2e, kafkaPipe, pgCeiling, final } = result;
  const perS = (n: number) => Math.round(n).toString();
  const ratio = (ceiling: number) => (ceiling > 0 ? e2e.perSecond / ceiling : 0).toFixed(2);
  const row = (phase: string, messages: number, seconds: number, perSecond: number, note: string) =>
    `${phase.padEnd(18)}${String(messages).padStart(8)}${seconds.toFixed(2).padStart(9)}${perS(perSecond).padStart(10)}  ${note}`;
  const lines = [
    `pipeline=${options.pipeline} relay=${options.relay} cores=${os.availableParallelism()} partitions=${settings.partitions} ` +
      `concurrency=${settings.partitionsConcurrently} API_BATCH_SIZE=${settings.apiBatchSize} ` +
      `OUTBOX_BATCH_SIZE=${settings.outboxBatchSize} KAFKA_FETCH_MAX_WAIT_MS=${settings.fetchMaxWaitMs} KAFKA_FETCH_MIN_BYTES=${settings.fetchMinBytes} ` +
      `API_PROTOCOL=${settings.apiProtocol} load=${result.loadAtStart.map((l) => l.toFixed(1)).join("/")}`,
    `workload: ${result.workload.records} records = ${result.workload.distinctIds} products + ` +
      `${result.workload.updates} updates; ${result.workload.expectedEvents} events expected`,
    `${"phase".padEnd(18)}${"msgs".padStart(8)}${"s".padStart(9)}${"msgs/s".padStart(10)}`,
    row(
      "preload produce",
      result.preload.messages,
      result.preload.seconds,
      result.preload.perSecond,
      "idempotent, acks=-1, 1000/request",
    ),
    row(
      "kafka consume",
      result.kafkaConsume.messages,
      result.kafkaConsume.seconds,
      result.kafkaConsume.perSecond,
      "fresh group, count only",
    ),
    row(
      "kafka ceiling",
      kafkaPipe.messages,
      kafkaPipe.seconds,
      kafkaPipe.perSecond,
      "consume → produce acks=-1 → consume",
    ),
    row(
      "pg ceiling",
      pgCeiling.messages,
      pgCeiling.seconds,
      pgCeiling.perSecond,
      `prepared UPSERT_SQL, ${settings.apiBatchSize}/statement, ${pgCeiling.concurrency} concurrent`,
    ),
    `${"composed ceiling".padEnd(35)}${perS(composedCeiling(kafkaPipe.perSecond, pgCeiling.perSecond)).padStart(10)}` +
      "  1 / (1/kafka + 1/pg): both jobs on the same cores",
    row(
      "end to end",
      e2e.messages,
      e2e.seconds,
      e2e.perSecond,
      `${ratio(kafkaPipe.perSecond)} of kafka, ${ratio(pgCeiling.perSecond)} of pg, ` +
        `${ratio(composedCeiling(kafkaPipe.perSecond, pgCeiling.perSecond))} of composed; rows done at ${e2e.rowsDoneS.toFixed(2)} s; ` +
        `startup ${e2e.startupS.toFixed(1)} s, then ${e2e.warmupEvents} warm-up events; lost ${e2e.lost}, duplicates ${e2e.duplicates}`,
    ),
    `${"latency".padEnd(18)}${"sent".padStart(8)}${"p50 ms".padStart(9)}${"p90 ms".padStart(9)}${"p99 ms".padStart(9)}${"max ms".padStart(9)}${"lost".padStart(6)}   (record time → event time; p50/p99 of parts)`,
    ...result.latencies.map(
      (l) =>
        `${`open loop ${l.ratePerS}/s`.padEnd(18)}${String(l.sent).padStart(8)}${l.p50Ms.toFixed(0).padStart(9)}` +
        `${l.p90Ms.toFixed(0).padStart(9)}${l.p99Ms.toFixed(0).padStart(9)}${l.maxMs.toFixed(0).padStart(9)}` +
        `${String(l.lost).padStart(6)}   seen ${l.seenP50Ms.toFixed(0)}/${l.seenP99Ms.toFixed(0)}, ` +
        `→write ${l.toWriteP50Ms.toFixed(0)}/${l.toWriteP99Ms.toFixed(0)}, write→event ${l.writeToEventP50Ms.toFixed(0)}/${l.writeToEventP99Ms.toFixed(0)}; ` +
        `sent at ${perS(l.sentPerS)}/s`,
    ),
    ...callLines("end to end", e2e.calls),
    ...result.latencies.flatMap((l) => callLines(`open loop ${l.ratePerS}/s`, l.calls)),
    ...cpuLines([
      ["preload produce", result.preload.cpu, result.preload.messages],
      ["kafka consume", result.kafkaConsume.cpu, result.kafkaConsume.messages],
      ["kafka ceiling", kafkaPipe.cpu, kafkaPipe.messages],
      ["pg ceiling", pgCeiling.cpu, pgCeiling.messages],
      ["end to end", e2e.cpu, e2e.messages],
      ...result.latencies.map((l) => [`open loop ${l.ratePerS}/s`, l.cpu, l.sent] as const),
    ]),
    `checks: rows ${final.rows}/${final.expectedRows}, dead-lettered ${final.deadLettered}, lost ${final.lost}, ` +
      `duplicate events ${final.duplicates}, service warnings ${final.serviceWarnings}`,
  ];

  const summary = summarizePipeline({
    messages: result.workload.records,
    e2e,
    kafkaPipe,
    pgCeiling,
    latencies: result.latencies,
    lost: final.lost,
  });
  const finishedAt = new Date();
  const { kafka: _kafka, ...serviceSettings } = settings;
  const resultsFile: PipelineResultsFile = {
    bench: "pipeline",
    finishedAt: finishedAt.toISOString(),
    machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model, node: process.version },
    ...result,
    // The Kafka config holds SASL credentials when they are set: only the brokers go to the file.
    settings: { ...serviceSettings, brokers: settings.kafka.brokers },
    ratios: { e2eToKafka: Number(ratio(kafkaPipe.perSecond)), e2eToPg: Number(ratio(pgCeiling.perSecond)) },
    summary,
  };
  const file = await writeResultsFile("pipeline", finishedAt, resultsFile, options.resultsFile);
  lines.push(`results: ${file}`);
  const lost = final.lost;
  lines.push(pipelineSummaryLine(summary));
  process.stdout.write(`${lines.join("\n")}\n`);
  const problems = [
    ...(lost > 0 ? [`${lost} events lost`] : []),
    ...(final.deadLettered > 0 ? [`${final.deadLettered} records dead-lettered`] : []),
    ...(final.rows !== final.expectedRows ? [`${final.rows} rows, expected ${final.expectedRows}`] : []),
  ];
  if (problems.length > 0) {
    log(`FAILED: ${problems.join("; ")}`);
    process.exitCode = 1;
  }
}

function callLines(phase: string, calls: CallStats | undefined): string[] {
  if (!calls) return [];
  return [
    `scheduler → API (${phase}): ${calls.calls} BatchCreateProducts calls, ${calls.recordsPerCall.toFixed(0)} records each, ` +
      `${calls.schedulerCallMs.toFixed(1)} ms per call at the scheduler, ${calls.apiHandlerMs.toFixed(1)} ms in the API handler; ` +
      `calls busy ${(calls.callShare * 100).toFixed(0)}% of the partition workers' time`,
  ];
}

/** Cores each process kept busy per phase, and CPU per message of all but `others`. */
export function cpuLines(phases: readonly (readonly [string, CpuUse | undefined, number])[]): string[] {
  return [
    `${"cpu (cores)".padEnd(18)}${["bench", "api", "sched", "relay", "pg", "kafka", "others", "busy", "µs/msg"].map((h) => h.padStart(8)).join("")}` +
      "   (µs/msg: CPU of all but others, per message)",
    ...phases.flatMap(([name, cpu, messages]) => {
      if (!cpu) return [];
      const cores = (s: number) => (s / cpu.seconds).toFixed(2).padStart(8);
      return [
        `${name.padEnd(18)}${cores(cpu.bench)}${cores(cpu.api)}${cores(cpu.scheduler)}${cores(cpu.relay)}${cores(cpu.postgres)}` +
          `${cores(cpu.kafka)}${cores(cpu.others)}${cores(cpu.machine)}${field(cpuUsPerMessage(cpu, messages)).padStart(8)}`,
      ];
    }),
  ];
}
