import { parseArgsOrThrowUsage, UsageError } from "../shared/usage-error.js";

export const COMPARED_PHASES = ["rest", "grpc"] as const;
export type ComparedPhase = (typeof COMPARED_PHASES)[number];

export interface CompareOptions {
  /** The git revision the working tree is compared with. */
  base: string;
  /** Turns each side takes per phase; the order of the two sides alternates from round to round. */
  rounds: number;
  /** Measured seconds of one turn. */
  turnS: number;
  /** Unmeasured load at the start of every turn, while the other server's clients wind down. */
  settleS: number;
  /** Unmeasured load of each phase on each fresh server, before the first round. */
  serverWarmupS: number;
  concurrency: number;
  phases: ComparedPhase[];
}

/** The command line of `npm run bench:compare`; a UsageError names the flag that is wrong. */
export function readCompareOptions(args: string[]): CompareOptions {
  const { values } = parseArgsOrThrowUsage(args, {
    base: { type: "string", default: "HEAD" },
    rounds: { type: "string", default: "8" },
    turn: { type: "string", default: "3" },
    settle: { type: "string", default: "0.5" },
    "server-warmup": { type: "string", default: "8" },
    concurrency: { type: "string", default: "64" },
    phases: { type: "string", default: COMPARED_PHASES.join(",") },
  });
  const number = (flag: string, value: string, { integer = false, zero = false } = {}) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || (!zero && n === 0) || (integer && !Number.isInteger(n))) {
      throw new UsageError(
        `--${flag}=${value}: expected a ${zero ? "non-negative" : "positive"} ${integer ? "integer" : "number"}`,
      );
    }
    return n;
  };
  const phases = values.phases.split(",").map((p) => p.trim()) as ComparedPhase[];
  if (phases.length === 0 || phases.some((p) => !COMPARED_PHASES.includes(p))) {
    throw new UsageError(
      `--phases=${values.phases}: expected a comma-separated subset of ${COMPARED_PHASES.join(",")}`,
    );
  }
  if (values.base.trim() === "") throw new UsageError("--base: expected a git revision");
  return {
    base: values.base.trim(),
    rounds: number("rounds", values.rounds, { integer: true }),
    turnS: number("turn", values.turn),
    settleS: number("settle", values.settle, { zero: true }),
    serverWarmupS: number("server-warmup", values["server-warmup"], { zero: true }),
    concurrency: number("concurrency", values.concurrency, { integer: true }),
    phases,
  };
}
