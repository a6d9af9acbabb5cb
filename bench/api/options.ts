import { parseArgsOrThrowUsage, UsageError } from "../shared/usage-error.js";

export const PHASES = ["baseline", "rest", "grpc"] as const;
export const SERVER_MODES = ["inproc", "child"] as const;

/** The flags `npm run api` starts the API with: the API child's by default. */
export const DEFAULT_SERVER_NODE_ARGS = ["--max-semi-space-size=32"];

export type PhaseName = (typeof PHASES)[number];
export type ServerMode = (typeof SERVER_MODES)[number];

export interface ApiBenchOptions {
  /** Measured seconds of each phase, over all rounds. */
  durationS: number;
  /** Turns each phase takes; each turn measures durationS / rounds. */
  rounds: number;
  /** Unmeasured load at the start of every phase. */
  warmupS: number;
  /** Unmeasured REST + gRPC load on a fresh server, before the first phase. */
  serverWarmupS: number;
  concurrency: number;
  server: ServerMode;
  /** Extra node flags for the API child, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (not allowed in NODE_OPTIONS). */
  serverNodeArgs: string[];
  phases: PhaseName[];
  /** Where the JSON goes (`npm run bench` sets it); default bench/results/runs/api-<time>.json. */
  resultsFile: string | undefined;
}

/** The command line of `npm run bench:api`; a UsageError names the flag that is wrong. */
export function readApiBenchOptions(args: string[]): ApiBenchOptions {
  const { values } = parseArgsOrThrowUsage(args, {
    duration: { type: "string", default: "10" },
    rounds: { type: "string", default: "3" },
    warmup: { type: "string", default: "2" },
    "server-warmup": { type: "string", default: "10" },
    concurrency: { type: "string", default: "64" },
    server: { type: "string", default: "child" },
    "server-node-args": { type: "string", default: DEFAULT_SERVER_NODE_ARGS.join(" ") },
    phases: { type: "string", default: PHASES.join(",") },
    "results-file": { type: "string" },
  });
  const positive = (flag: string, value: string, integer: boolean) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new UsageError(`--${flag}=${value}: expected a positive ${integer ? "integer" : "number"}`);
    }
    return n;
  };
  const server = values.server as ServerMode;
  if (!SERVER_MODES.includes(server)) {
    throw new UsageError(`--server=${values.server}: expected one of ${SERVER_MODES.join(", ")}`);
  }
  const phases = values.phases.split(",").map((p) => p.trim()) as PhaseName[];
  const unknown = phases.filter((p) => !PHASES.includes(p));
  if (unknown.length > 0 || phases.length === 0) {
    throw new UsageError(`--phases=${values.phases}: expected a comma-separated subset of ${PHASES.join(",")}`);
  }
  return {
    durationS: positive("duration", values.duration, false),
    rounds: positive("rounds", values.rounds, true),
    warmupS: values.warmup === "0" ? 0 : positive("warmup", values.warmup, false),
    serverWarmupS: values["server-warmup"] === "0" ? 0 : positive("server-warmup", values["server-warmup"], false),
    concurrency: positive("concurrency", values.concurrency, true),
    server,
    serverNodeArgs: values["server-node-args"].split(" ").filter((arg) => arg !== ""),
    phases,
    resultsFile: values["results-file"],
  };
}
