import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import type { CpuUse } from "./cpu-window.js";
import { ErrorTally } from "./error-tally.js";
import { log } from "./log.js";

/** A running closed loop. */
export interface ClosedLoop {
  /** Lets every client finish its create in flight, then resolves. */
  stop(): Promise<void>;
}

/**
 * `concurrency` clients, each starting its next create (with a fresh id) as soon as the previous
 * one ends, until stop(). Prints the completion rate to stderr every second.
 */
export function startClosedLoop(
  name: string,
  concurrency: number,
  create: (id: string) => Promise<void>,
  onDone: (startedMs: number, endedMs: number) => void,
  errors: ErrorTally,
  stage: () => string,
): ClosedLoop {
  const tag = randomBytes(4).toString("hex");
  let nextId = 0;
  let stopped = false;
  let sinceTick = 0;
  const client = async () => {
    while (!stopped) {
      const id = `${name}-${tag}-${nextId++}`;
      const started = performance.now();
      try {
        await create(id);
        sinceTick++;
        onDone(started, performance.now());
      } catch (error) {
        errors.add(error);
      }
    }
  };
  const loopStart = performance.now();
  let lastTick = loopStart;
  const progress = setInterval(() => {
    const now = performance.now();
    const rate = Math.round((sinceTick * 1000) / (now - lastTick));
    log(`[${name}] ${((now - loopStart) / 1000).toFixed(0)}s ${stage()}: ${rate}/s, ${errors.count} errors`);
    sinceTick = 0;
    lastTick = now;
  }, 1000);
  const clients = Array.from({ length: concurrency }, client);
  return {
    async stop() {
      stopped = true;
      clearInterval(progress);
      await Promise.all(clients);
    },
  };
}

/** What one turn of a phase measured. */
export interface Turn {
  /** Milliseconds of each create that completed inside the window. */
  latencies: number[];
  seconds: number;
  /** Failed creates over the whole turn, warm-up included. */
  errors: ErrorTally;
  cpu: CpuUse | undefined;
}

/**
 * One measured turn of a phase: `warmupS` of load, then a window of `windowS`. Only creates that
 * complete inside the window count toward throughput and latency; errors count over the whole turn.
 */
export async function runTurn(
  label: string,
  create: (id: string) => Promise<void>,
  load: { concurrency: number; warmupS: number; windowS: number },
  openWindow: () => Promise<() => Promise<CpuUse | undefined>>,
): Promise<Turn> {
  const latencies: number[] = [];
  const errors = new ErrorTally();
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.POSITIVE_INFINITY;
  const loop = startClosedLoop(
    label,
    load.concurrency,
    create,
    (started, ended) => {
      if (ended >= windowStart && ended <= windowEnd) latencies.push(ended - started);
    },
    errors,
    () => (Number.isFinite(windowStart) ? "measure" : "warm-up"),
  );
  let cpu: CpuUse | undefined;
  try {
    await delay(load.warmupS * 1000);
    const closeCpuWindow = await openWindow();
    windowStart = performance.now();
    await delay(load.windowS * 1000);
    windowEnd = performance.now();
    cpu = await closeCpuWindow();
  } finally {
    await loop.stop();
  }
  return { latencies, seconds: (windowEnd - windowStart) / 1000, errors, cpu };
}
