import { performance } from "node:perf_hooks";
import { allProcessesCpu, machineCpuSeconds } from "../shared/proc-cpu.js";

/** The pipeline's roles, as the CPU tables and charts show them. */
export const CPU_ROLES = ["bench", "api", "scheduler", "relay", "postgres", "kafka"] as const;
export type CpuRole = (typeof CPU_ROLES)[number];

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
  /** Each service process by name ("api#1", "scheduler#2", …): how the roles' sums split. */
  processes?: Record<string, number>;
}

/** A service process of the pipeline whose CPU is counted under its role. */
export interface ServicePid {
  name: string;
  role: "api" | "scheduler" | "relay";
  pid: number;
}

/** CPU of every role but `others` (what the run itself spent), per message, in µs; undefined without /proc. */
export function cpuUsPerMessage(cpu: CpuUse | undefined, messages: number): number | undefined {
  if (!cpu || messages <= 0) return undefined;
  let ours = 0;
  for (const role of CPU_ROLES) ours += cpu[role];
  return (ours * 1e6) / messages;
}

/**
 * Starts counting the CPU of every process on the machine, sorted into the bench, the pipeline's
 * services, PostgreSQL and Kafka (by executable name) and the rest; the returned function stops.
 * A service running in this process (inproc) counts as the bench.
 */
export async function openCpuWindow(services: readonly ServicePid[] = []): Promise<() => Promise<CpuUse | undefined>> {
  const startedAt = performance.now();
  const before = await allProcessesCpu();
  const machineBefore = await machineCpuSeconds();
  const byPid = new Map(services.filter((s) => s.pid !== process.pid).map((s) => [s.pid, s]));
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
    const processes: Record<string, number> = {};
    for (const [pid, { comm, seconds }] of after) {
      const spent = seconds - (before.get(pid)?.seconds ?? 0);
      const service = byPid.get(pid);
      if (pid === process.pid) use.bench += spent;
      else if (service) {
        use[service.role] += spent;
        processes[service.name] = (processes[service.name] ?? 0) + spent;
      } else if (comm === "postgres") use.postgres += spent;
      else if (comm === "java") use.kafka += spent;
    }
    if (byPid.size > 0) use.processes = processes;
    // Whatever the machine did besides, short-lived processes of other users included.
    use.others = Math.max(0, use.machine - use.bench - use.api - use.scheduler - use.relay - use.postgres - use.kafka);
    return use;
  };
}
