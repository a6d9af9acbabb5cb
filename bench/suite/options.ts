import { parseArgsOrThrowUsage, UsageError } from "../shared/usage-error.js";

export const SUITE_BENCHES = ["pipeline", "api", "capacity"] as const;
export type SuiteBench = (typeof SUITE_BENCHES)[number];

export interface SuiteOptions {
  quick: boolean;
  only: SuiteBench[];
  /** The arguments each bench runs with. */
  args: Record<SuiteBench, string[]>;
}

/** What --quick runs: each bench small enough to finish in about a minute, all phases still there. */
const QUICK: Record<SuiteBench, string[]> = {
  pipeline: ["--messages", "5000", "--latency-s", "3"],
  api: ["--duration", "3", "--rounds", "1", "--warmup", "1", "--server-warmup", "3"],
  capacity: ["--messages", "3000"],
};

/**
 * `npm run bench -- [--quick] [--messages N] [--duration S] [--capacity-messages N] [--only pipeline,api,capacity]`:
 * --messages goes to the pipeline bench, --duration to the API bench, --capacity-messages to the
 * capacity bench; they override --quick's sizes.
 */
export function readSuiteOptions(argv: string[]): SuiteOptions {
  const { values } = parseArgsOrThrowUsage(argv, {
    quick: { type: "boolean", default: false },
    messages: { type: "string" },
    duration: { type: "string" },
    "capacity-messages": { type: "string" },
    only: { type: "string", default: SUITE_BENCHES.join(",") },
  });
  const only = values.only.split(",").map((name) => name.trim()) as SuiteBench[];
  const unknown = only.filter((name) => !SUITE_BENCHES.includes(name));
  if (unknown.length > 0 || only.length === 0) {
    throw new UsageError(`--only=${values.only}: expected a comma-separated subset of ${SUITE_BENCHES.join(",")}`);
  }
  const base = (bench: SuiteBench) => (values.quick ? [...QUICK[bench]] : []);
  const override = (args: string[], flag: string, value: string | undefined) => {
    if (value === undefined) return args;
    const at = args.indexOf(flag);
    return at >= 0 ? args.map((arg, i) => (i === at + 1 ? value : arg)) : [...args, flag, value];
  };
  return {
    quick: values.quick,
    only: SUITE_BENCHES.filter((bench) => only.includes(bench)),
    args: {
      pipeline: override(base("pipeline"), "--messages", values.messages),
      api: override(base("api"), "--duration", values.duration),
      capacity: override(base("capacity"), "--messages", values["capacity-messages"]),
    },
  };
}
