import type pg from "pg";
import { machineCpuSeconds, processCpu } from "../shared/proc-cpu.js";

/** CPU seconds spent in the measured window, by whom. */
export interface CpuUse {
  /** This process: the load generator, plus the API when it runs in-process. */
  bench: number;
  /** The API child process (--server child). */
  apiChild: number | undefined;
  /** The PostgreSQL backends connected to the bench database. */
  postgres: number;
  /** All processes on the machine, all cores. */
  machine: number;
}

/** Window over window: CPU adds up across a phase's turns; unknown (undefined) if any turn's is. */
export function addCpuUse(windows: (CpuUse | undefined)[]): CpuUse | undefined {
  if (!windows.every((c) => c !== undefined)) return undefined;
  return windows.reduce<CpuUse>(
    (sum, c) => ({
      bench: sum.bench + c.bench,
      apiChild: sum.apiChild === undefined || c.apiChild === undefined ? undefined : sum.apiChild + c.apiChild,
      postgres: sum.postgres + c.postgres,
      machine: sum.machine + c.machine,
    }),
    { bench: 0, apiChild: 0, postgres: 0, machine: 0 },
  );
}

/**
 * Starts counting CPU time of this process, the API child and the database's backends (those
 * connected now, after warm-up, when both pools are full); the returned function stops counting.
 */
export async function openCpuWindow(
  admin: pg.Client,
  apiPid: number | undefined,
): Promise<() => Promise<CpuUse | undefined>> {
  const { rows } = await admin.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
  );
  const seconds = async (pid: number) => (await processCpu(pid))?.seconds;
  const read = async () => {
    const own = process.cpuUsage();
    return {
      bench: (own.user + own.system) / 1e6,
      apiChild: apiPid === undefined ? undefined : await seconds(apiPid),
      postgres: await Promise.all(rows.map((row) => seconds(row.pid))),
      machine: await machineCpuSeconds(),
    };
  };
  const start = await read();
  return async () => {
    const end = await read();
    if (start.machine === undefined || end.machine === undefined) return undefined;
    let postgres = 0;
    start.postgres.forEach((before, i) => {
      const after = end.postgres[i];
      if (before !== undefined && after !== undefined) postgres += after - before;
    });
    return {
      bench: end.bench - start.bench,
      apiChild: start.apiChild !== undefined && end.apiChild !== undefined ? end.apiChild - start.apiChild : undefined,
      postgres,
      machine: end.machine - start.machine,
    };
  };
}
