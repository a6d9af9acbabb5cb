import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import type { ApiConfig } from "../../api/src/config.js";
import { ascending, mean, percentile, perSecond } from "../shared/stats.js";
import type { BenchServer } from "./api-server.js";
import { runTurn, startClosedLoop, type Turn } from "./closed-loop.js";
import { addCpuUse, type CpuUse, openCpuWindow } from "./cpu-window.js";
import { ErrorTally } from "./error-tally.js";
import { createGrpcLoad, createLoad, createRestLoad } from "./loads.js";
import { log } from "./log.js";
import type { ApiBenchOptions, PhaseName } from "./options.js";

export interface PhaseResult {
  name: PhaseName;
  creates: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  /** Failed creates over the whole phase, warm-up included. */
  errors: number;
  /** Distinct error messages with their counts, most frequent first. */
  errorSamples: { message: string; count: number }[];
  /** CPU used during the measured windows; undefined where /proc is not available. */
  cpu: CpuUse | undefined;
  /** Creates per second of each round, in order. */
  roundsPerSecond: number[];
}

/**
 * The phases in rounds (baseline, rest, grpc, baseline, …), so that a machine whose speed drifts
 * during the run weighs on all of them alike; one result per phase over all its turns.
 */
export async function runPhases(
  options: ApiBenchOptions,
  config: ApiConfig,
  databaseUrl: string,
  server: BenchServer,
): Promise<PhaseResult[]> {
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  const turns = new Map<PhaseName, Turn[]>(options.phases.map((phase) => [phase, []]));
  const turnLoad = {
    concurrency: options.concurrency,
    warmupS: options.warmupS,
    windowS: options.durationS / options.rounds,
  };
  try {
    for (let round = 1; round <= options.rounds; round++) {
      for (const phase of options.phases) {
        // Every turn starts from empty tables and a fresh checkpoint, so no turn pays for another's rows.
        await admin.query("TRUNCATE products, product_events");
        await admin.query("CHECKPOINT").catch((error: Error) => log(`CHECKPOINT skipped: ${error.message}`));
        const load = createLoad(phase, options, config, databaseUrl, server.url);
        try {
          const label = options.rounds > 1 ? `${phase} ${round}/${options.rounds}` : phase;
          turns.get(phase)?.push(await runTurn(label, load.create, turnLoad, () => openCpuWindow(admin, server.pid)));
        } finally {
          await load.close();
        }
      }
    }
  } finally {
    await admin.end();
  }
  return options.phases.map((phase) => summarize(phase, turns.get(phase) ?? []));
}

/** A phase over all its turns: rates and CPU add up, latencies are pooled. */
function summarize(name: PhaseName, turns: Turn[]): PhaseResult {
  const seconds = turns.reduce((sum, turn) => sum + turn.seconds, 0);
  const sorted = ascending(turns.flatMap((turn) => turn.latencies));
  const errors = new ErrorTally();
  for (const turn of turns) errors.addAll(turn.errors);
  return {
    name,
    creates: sorted.length,
    seconds,
    perSecond: perSecond(sorted.length, seconds),
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    meanMs: mean(sorted),
    maxMs: sorted.at(-1) ?? 0,
    errors: errors.count,
    errorSamples: errors.samples(),
    cpu: addCpuUse(turns.map((turn) => turn.cpu)),
    roundsPerSecond: turns.map((turn) => perSecond(turn.latencies.length, turn.seconds)),
  };
}

/**
 * A fresh API process needs about ten seconds of load before V8 has optimised the Express, knex
 * and Connect paths (REST ran at a third of its steady rate in its first seconds). Both paths are
 * driven together, unmeasured, so the phases compare steady states.
 */
export async function warmUpServer(
  options: Pick<ApiBenchOptions, "serverWarmupS" | "phases" | "concurrency">,
  apiUrl: string,
): Promise<ErrorTally> {
  const errors = new ErrorTally();
  if (options.serverWarmupS === 0 || !options.phases.some((phase) => phase !== "baseline")) return errors;
  const rest = createRestLoad(apiUrl, options.concurrency);
  const grpc = createGrpcLoad(apiUrl, options.concurrency);
  let turn = 0;
  const loop = startClosedLoop(
    "server-warm-up",
    options.concurrency,
    (id) => (turn++ % 2 === 0 ? rest.create(id) : grpc.create(id)),
    () => {},
    errors,
    () => "rest+grpc",
  );
  try {
    await delay(options.serverWarmupS * 1000);
  } finally {
    await loop.stop();
    await Promise.all([rest.close(), grpc.close()]);
  }
  return errors;
}
