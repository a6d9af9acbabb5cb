import { once } from "node:events";
import { readFile } from "node:fs/promises";
import net from "node:net";
import { setTimeout as delay } from "node:timers/promises";

/** Polls the API's /readyz until it answers 200: a service at LOG_LEVEL silent or warn says nothing when it listens. */
export async function waitUntilReady(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ready = await fetch(`${url}/readyz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ready) return;
    await delay(100);
  }
  throw new Error(`api at ${url} not ready after ${timeoutMs} ms`);
}

/** A port that was free a moment ago, for a child process that must be told its port. */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address() as net.AddressInfo;
  probe.close();
  await once(probe, "close");
  return port;
}

/** Linux reports process and machine CPU time in clock ticks of 1/100 s (`getconf CLK_TCK`). */
const CLOCK_TICKS_PER_S = 100;

/** A process's name and CPU time (user + system) from /proc/PID/stat; undefined once it has ended. */
export async function processCpu(pid: number | string): Promise<{ comm: string; seconds: number } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    return {
      comm: stat.slice(stat.indexOf("(") + 1, close),
      seconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S,
    };
  } catch {
    return undefined;
  }
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
