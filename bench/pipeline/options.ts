import { integerFlag, parseArgsOrThrowUsage, UsageError } from "../shared/usage-error.js";

/** See PipelineBenchOptions.warmupPercent; the capacity bench uses it as it is. */
export const DEFAULT_WARMUP_PERCENT = 10;

export const PIPELINE_MODES = ["child", "inproc"] as const;
export type PipelineMode = (typeof PIPELINE_MODES)[number];
export const RELAY_MODES = ["inline", "separate"] as const;
export type RelayMode = (typeof RELAY_MODES)[number];

export interface PipelineBenchOptions {
  messages: number;
  pipeline: PipelineMode;
  /** separate: the API that serves the scheduler runs no relay; a second API process (no traffic) does. */
  relay: RelayMode;
  latencyS: number;
  rate: number;
  /**
   * Share of the end-to-end events, in percent, let through before its clock and CPU window start:
   * the services' lazy module loading and JIT warm-up are a start-up cost, not a per-message one.
   */
  warmupPercent: number;
  nodeArgs: string[];
  /** Where the JSON goes (`npm run bench` sets it); default bench/results/runs/pipeline-<time>.json. */
  resultsFile: string | undefined;
}

/** The command line of `npm run bench:pipeline`; a UsageError names the flag that is wrong. */
export function readPipelineBenchOptions(args: string[]): PipelineBenchOptions {
  const { values } = parseArgsOrThrowUsage(args, {
    messages: { type: "string", default: "50000" },
    pipeline: { type: "string", default: "child" },
    relay: { type: "string", default: "inline" },
    "latency-s": { type: "string", default: "10" },
    rate: { type: "string", default: "1000" },
    "warmup-percent": { type: "string", default: String(DEFAULT_WARMUP_PERCENT) },
    "node-args": { type: "string", default: "" },
    "results-file": { type: "string" },
  });
  const pipeline = values.pipeline as PipelineMode;
  if (!PIPELINE_MODES.includes(pipeline)) {
    throw new UsageError(`--pipeline=${values.pipeline}: expected one of ${PIPELINE_MODES.join(", ")}`);
  }
  const relay = values.relay as RelayMode;
  if (!RELAY_MODES.includes(relay)) {
    throw new UsageError(`--relay=${values.relay}: expected one of ${RELAY_MODES.join(", ")}`);
  }
  const warmupPercent = Number(values["warmup-percent"]);
  if (!/^\d+$/.test(values["warmup-percent"]) || warmupPercent > 50) {
    throw new UsageError(`--warmup-percent=${values["warmup-percent"]}: expected an integer from 0 to 50`);
  }
  if (relay === "separate" && pipeline !== "child") throw new UsageError("--relay=separate needs --pipeline=child");
  return {
    messages: integerFlag("messages", values.messages),
    pipeline,
    relay,
    latencyS: integerFlag("latency-s", values["latency-s"]),
    rate: integerFlag("rate", values.rate),
    warmupPercent,
    nodeArgs: values["node-args"].split(" ").filter((arg) => arg !== ""),
    resultsFile: values["results-file"],
  };
}

/** How many of `expectedEvents` the warm-up lets through. */
export function warmupEvents(expectedEvents: number, percent: number): number {
  return Math.ceil((expectedEvents * percent) / 100);
}
