import { execFileSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { BENCH_POSTGRES_URL, REPOSITORY_ROOT } from "../shared/environment.js";

/** What the numbers were measured on. */
export interface MachineInfo {
  cores: number;
  cpuModel: string | undefined;
  memoryGiB: number;
  os: string;
  /** 1, 5 and 15 minute load averages when the run started and ended. */
  loadBefore: number[];
  loadAfter: number[];
  /** Absent in results written before it was measured. */
  wakeCost?: WakeCost | undefined;
}

/**
 * What a hop costs on this machine when it is rare: a process that sleeps between small pieces of
 * work pays to wake up each time, and at a low rate every hop of the pipeline (fetch, RPC, SQL
 * round trip, produce) is such a piece. CPU of this process, in µs per wake or round trip.
 */
export interface WakeCost {
  /** A Node.js timer firing every WAKE_INTERVAL_MS and doing nothing. */
  timerUs: number;
  /** A PostgreSQL round trip (`SELECT $1`) every WAKE_INTERVAL_MS, the client's side. */
  pgRoundTripIdleUs: number;
  /** The same round trips back to back: the part of the cost that is the work itself. */
  pgRoundTripBusyUs: number;
}

/** 40 wakes a second: one hop of a pipeline at 1,000 msg/s in batches of 25. */
export const WAKE_INTERVAL_MS = 25;
const WAKES = 80;
const BUSY_ROUND_TRIPS = 1000;

export interface Versions {
  node: string;
  kafkajs: string | undefined;
  postgres: string | undefined;
  /** The broker's, read from the running broker's class path; undefined if it runs elsewhere. */
  kafka: string | undefined;
}

export interface GitInfo {
  commit: string | undefined;
  /** Uncommitted changes (tracked or not) when the run started. */
  dirty: boolean | undefined;
}

export function machineInfo(loadBefore: number[], loadAfter: number[], wakeCost?: WakeCost): MachineInfo {
  return {
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    loadBefore,
    loadAfter,
    wakeCost,
  };
}

/** The three figures in one line, as the progress log and the report's machine table give them. */
export function wakeCostSummary(cost: WakeCost, format: (us: number) => string): string {
  return (
    `timer ${format(cost.timerUs)} µs; PostgreSQL round trip ${format(cost.pgRoundTripIdleUs)} µs ` +
    `every ${WAKE_INTERVAL_MS} ms, ${format(cost.pgRoundTripBusyUs)} µs back to back`
  );
}

/** CPU per wake and per round trip (see WakeCost); takes about 5 s. */
export async function measureWakeCost(): Promise<WakeCost> {
  const cpuUs = async (times: number, work: () => Promise<unknown>) => {
    const start = process.cpuUsage();
    for (let i = 0; i < times; i++) await work();
    const used = process.cpuUsage(start);
    return (used.user + used.system) / times;
  };
  const client = new pg.Client({ connectionString: BENCH_POSTGRES_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const roundTrip = () => client.query("SELECT $1::int AS n", [1]);
    // Warm-up: connection, parse and JIT are start-up costs, not per-wake ones.
    await cpuUs(BUSY_ROUND_TRIPS / 10, roundTrip);
    return {
      timerUs: await cpuUs(WAKES, () => delay(WAKE_INTERVAL_MS)),
      pgRoundTripIdleUs: await cpuUs(WAKES, async () => {
        await delay(WAKE_INTERVAL_MS);
        await roundTrip();
      }),
      pgRoundTripBusyUs: await cpuUs(BUSY_ROUND_TRIPS, roundTrip),
    };
  } finally {
    await client.end();
  }
}

export function gitInfo(): GitInfo {
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: REPOSITORY_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  try {
    // Earlier runs' reports and results are outputs, not changes to the code measured.
    const status = git("status", "--porcelain", "--", ".", ":!bench/reports", ":!bench/results");
    return { commit: git("rev-parse", "HEAD").trim(), dirty: status.trim() !== "" };
  } catch {
    return { commit: undefined, dirty: undefined };
  }
}

export async function versions(): Promise<Versions> {
  return {
    node: process.version,
    kafkajs: kafkajsVersion(),
    postgres: await postgresVersion().catch(() => undefined),
    kafka: await kafkaVersion().catch(() => undefined),
  };
}

function kafkajsVersion(): string | undefined {
  try {
    return (createRequire(import.meta.url)("kafkajs/package.json") as { version?: string }).version;
  } catch {
    return undefined;
  }
}

async function postgresVersion(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: BENCH_POSTGRES_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const { rows } = await client.query<{ server_version: string }>("SHOW server_version");
    return rows[0]?.server_version;
  } finally {
    await client.end();
  }
}

/** A Kafka version in a broker's command line or its libs' file names: `kafka-4.4.0/`, `kafka_2.13-3.7.0/`, `kafka-server-4.0.0.jar`. */
export function kafkaVersionIn(text: string): string | undefined {
  return (
    /(?:^|[/\s:=])kafka(?:_[\d.]+)?-(\d+\.\d+\.\d+)(?=[/\s:]|$)/.exec(text)?.[1] ??
    /kafka-(?:server|clients)-(\d+\.\d+\.\d+)\.jar/.exec(text)?.[1]
  );
}

/** The version of a broker running on this machine (kafka.Kafka in a java process), from its class path. */
async function kafkaVersion(): Promise<string | undefined> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const args = cmdline.split("\0");
    if (!args.includes("kafka.Kafka")) continue;
    const found = kafkaVersionIn(args.join(" "));
    if (found) return found;
    const classPath = args[args.indexOf("-cp") + 1] ?? "";
    for (const dir of classPath.split(":").map((p) => path.dirname(p))) {
      const jars = await readdir(dir).catch(() => []);
      const inLibs = kafkaVersionIn(jars.join(" "));
      if (inLibs) return inLibs;
    }
  }
  return undefined;
}
