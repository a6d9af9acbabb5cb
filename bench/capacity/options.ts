import { parseArgsOrThrowUsage, UsageError } from "../shared/usage-error.js";

/** One topology: how many scheduler instances and API replicas (each its own process). */
export interface CapacityConfig {
  schedulers: number;
  apiReplicas: number;
}

export interface CapacityBenchOptions {
  messages: number;
  configs: CapacityConfig[];
  nodeArgs: string[];
  /** Where the JSON goes (`npm run bench` sets it); default bench/results/runs/capacity-<time>.json. */
  resultsFile: string | undefined;
}

export const DEFAULT_CONFIGS = "1x1,2x1,3x1,1x2,2x2,3x2";

/** `--configs 1x1,2x1`: schedulers × API replicas, 1–9 each. */
export function parseConfigs(text: string): CapacityConfig[] {
  const configs = text.split(",").map((item) => {
    const match = /^([1-9])x([1-9])$/.exec(item.trim());
    if (!match) throw new UsageError(`--configs=${text}: expected schedulers×replicas pairs such as 1x1,2x1,1x2`);
    return { schedulers: Number(match[1]), apiReplicas: Number(match[2]) };
  });
  return configs;
}

/** The command line of `npm run bench:capacity`; a UsageError names the flag that is wrong. */
export function readCapacityBenchOptions(args: string[]): CapacityBenchOptions {
  const { values } = parseArgsOrThrowUsage(args, {
    messages: { type: "string", default: "20000" },
    configs: { type: "string", default: DEFAULT_CONFIGS },
    "node-args": { type: "string", default: "" },
    "results-file": { type: "string" },
  });
  const messages = Number(values.messages);
  if (!/^\d+$/.test(values.messages) || messages < 1 || !Number.isSafeInteger(messages)) {
    throw new UsageError(`--messages=${values.messages}: expected a positive integer`);
  }
  return {
    messages,
    configs: parseConfigs(values.configs),
    nodeArgs: values["node-args"].split(" ").filter((arg) => arg !== ""),
    resultsFile: values["results-file"],
  };
}
