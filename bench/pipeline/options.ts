import { parseArgsOrThrowUsage, UsageError } from "../shared/usage-error.js";

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
    "node-args": { type: "string", default: "" },
    "results-file": { type: "string" },
  });
  const positiveInt = (flag: string, value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || !Number.isSafeInteger(n)) {
      throw new UsageError(`--${flag}=${value}: expected a positive integer`);
    }
    return n;
  };
  const pipeline = values.pipeline as PipelineMode;
  if (!PIPELINE_MODES.includes(pipeline)) {
    throw new UsageError(`--pipeline=${values.pipeline}: expected one of ${PIPELINE_MODES.join(", ")}`);
  }
  const relay = values.relay as RelayMode;
  if (!RELAY_MODES.includes(relay)) {
    throw new UsageError(`--relay=${values.relay}: expected one of ${RELAY_MODES.join(", ")}`);
  }
  if (relay === "separate" && pipeline !== "child") throw new UsageError("--relay=separate needs --pipeline=child");
  return {
    messages: positiveInt("messages", values.messages),
    pipeline,
    relay,
    latencyS: positiveInt("latency-s", values["latency-s"]),
    rate: positiveInt("rate", values.rate),
    nodeArgs: values["node-args"].split(" ").filter((arg) => arg !== ""),
    resultsFile: values["results-file"],
  };
}
