import { performance } from "node:perf_hooks";
import { allProcessesCpu, machineCpuSeconds } from "../shared/proc-cpu.js";

/** CPU seconds over a window, by who spent them. */
export interface CpuUse {
  seconds: number;
  bench: number;
  /** In-process mode: the API and the scheduler run in the bench's process and count as bench. */
  api: number;
  scheduler: number;
  /** --relay=separate: the API process that only relays events. */
  relay: number;
  postgres: number;
  kafka: number;
  /** Everything else the machine did (other users of the box, the kernel). */
  others: number;
  machine: number;
}

/** The pipeline's processes; those not given (or in-process) count as the bench's or as nobody's. */
export interface PipelinePids {
  api?: number;
  scheduler?: number;
  relay?: number;
}

/**
 * Starts counting the CPU of every process on the machine, sorted into the bench, the pipeline's
 * services, PostgreSQL and Kafka (by executable name) and the rest; the returned function stops.
 */
export async function openCpuWindow(pids: PipelinePids = {}): Promise<() => Promise<CpuUse | undefined>> {
  const startedAt = performance.now();
  const before = await allProcessesCpu();
  const machineBefore = await machineCpuSeconds();
  return async () => {
    const after = await allProcessesCpu();
    const machineAfter = await machineCpuSeconds();
    if (after.size === 0 || machineBefore === undefined || machineAfter === undefined) return undefined;
    const use: CpuUse = {
      seconds: (performance.now() - startedAt) / 1000,
      bench: 0,
      api: 0,
      scheduler: 0,
      relay: 0,
      postgres: 0,
      kafka: 0,
      others: 0,
      machine: machineAfter - machineBefore,
    };
    for (const [pid, { comm, seconds }] of after) {
      const spent = seconds - (before.get(pid)?.seconds ?? 0);
      if (pid === process.pid) use.bench += spent;
      else if (pid === pids.api) use.api += spent;
      else if (pid === pids.scheduler) use.scheduler += spent;
      else if (pid === pids.relay) use.relay += spent;
      else if (comm === "postgres") use.postgres += spent;
      else if (comm === "java") use.kafka += spent;
    }
    // Whatever the machine did besides, short-lived processes of other users included.
    use.others = Math.max(0, use.machine - use.bench - use.api - use.scheduler - use.relay - use.postgres - use.kafka);
    return use;
  };
}
