import { readdir, readFile } from "node:fs/promises";

/** Linux reports process and machine CPU time in clock ticks of 1/100 s (`getconf CLK_TCK`). */
const CLOCK_TICKS_PER_S = 100;

export interface ProcessCpu {
  /** The executable's name (comm), e.g. "postgres" or "java". */
  comm: string;
  /** The parent's pid: a PostgreSQL server's processes are the postmaster's children. */
  ppid: number;
  /** User + system CPU seconds since the process started. */
  seconds: number;
}

/** A process's CPU time from /proc/PID/stat; undefined once it has ended or where /proc is missing. */
export async function processCpu(pid: number | string): Promise<ProcessCpu | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // comm may hold spaces and parentheses: the fields start after the last ")".
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    return {
      comm: stat.slice(stat.indexOf("(") + 1, close),
      ppid: Number(fields[1]),
      seconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S,
    };
  } catch {
    return undefined;
  }
}

/** CPU time of every process by pid; empty where /proc is not there. */
export async function allProcessesCpu(): Promise<Map<number, ProcessCpu>> {
  const result = new Map<number, ProcessCpu>();
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return result;
  }
  await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry))
      .map(async (entry) => {
        const cpu = await processCpu(entry); // undefined: the process ended meanwhile
        if (cpu) result.set(Number(entry), cpu);
      }),
  );
  return result;
}

/** Busy time of all cores (all but idle and iowait), from the first line of /proc/stat. */
export async function machineCpuSeconds(): Promise<number | undefined> {
  try {
    const line = (await readFile("/proc/stat", "utf8")).split("\n", 1)[0] ?? "";
    const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line
      .trim()
      .split(/\s+/)
      .map(Number);
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}
