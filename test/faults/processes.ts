import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, existsSync, readFileSync, type WriteStream } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { configVariables } from "#platform/env.js";
import { isProcessAlive } from "#platform/run-main.js";
import { loadApiConfig } from "../../api/src/config.js";
import { loadSchedulerConfig } from "../../scheduler/src/config.js";
import { freePorts, isPortFree } from "../support/free-port.js";
import { REPO_ROOT, runCommand } from "../support/run-command.js";

/** The fault suite's own ports: its broker (and its controller on port + 1), APIs, scheduler metrics. */
export const FAULTS_PORT_RANGE = { first: 19600, last: 19699 } as const;

const KAFKA_SCRIPT = path.join(REPO_ROOT, "scripts/kafka.sh");
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 15_000;

/**
 * The harness's environment without any variable a service reads: the services run on the
 * product's defaults plus what the suite sets, never on settings that leaked from the shell.
 */
export function baseEnv(): NodeJS.ProcessEnv {
  const names = new Set(
    [...configVariables(loadApiConfig), ...configVariables(loadSchedulerConfig)].map((v) => v.name),
  );
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !names.has(name)));
}

async function untilGone(pid: number, port: number | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid) || (port !== undefined && !(await isPortFree(port)))) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still alive (or port ${port} taken) after ${timeoutMs} ms`);
    await delay(50);
  }
}

/** The suite's own single-node broker (scripts/kafka.sh), which it may SIGKILL and start again. */
export class Broker {
  readonly url: string;

  constructor(
    readonly port: number,
    readonly dataDir: string,
  ) {
    this.url = `127.0.0.1:${port}`;
  }

  private get env(): NodeJS.ProcessEnv {
    return { ...baseEnv(), KAFKA_BROKER_URL: this.url, KAFKA_DATA_DIR: this.dataDir };
  }

  /** kafka.sh start: returns once the broker serves metadata. */
  async start(): Promise<void> {
    const result = await runCommand("bash", [KAFKA_SCRIPT, "start"], {
      env: this.env,
      timeoutMs: 300_000,
      detached: true,
    });
    if (result.code !== 0) {
      throw new Error(
        `kafka.sh start failed (exit ${result.code}): ${result.stderr.trim().split("\n").slice(-5).join(" | ")}`,
      );
    }
  }

  pid(): number | undefined {
    const file = path.join(this.dataDir, "broker.pid");
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 && isProcessAlive(pid) ? pid : undefined;
  }

  /** SIGKILL, as a crash; returns once the process is gone and its port is free. */
  async kill(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) throw new Error(`no broker running from ${this.dataDir}`);
    process.kill(pid, "SIGKILL");
    await untilGone(pid, this.port, 30_000);
  }

  async stop(): Promise<void> {
    const result = await runCommand("bash", [KAFKA_SCRIPT, "stop"], { env: this.env, timeoutMs: 60_000 });
    if (result.code !== 0) throw new Error(`kafka.sh stop failed: ${result.stderr.trim()}`);
  }
}

export interface ServiceSpec {
  /** e.g. "api-1", "scheduler-2": names the log file and the report's notes. */
  name: string;
  entry: "api/src/main.ts" | "scheduler/src/main.ts";
  env: Record<string, string>;
  /** GET here answers 200 once the process is up (the API's /readyz, the scheduler's /healthz). */
  readyUrl: string;
  /** The port it listens on, free again once it is gone. */
  port: number;
  logFile: string;
  /**
   * Output that says the process is up and asking for work before it is ready (the scheduler's
   * consumer "Starting", before its group join completes); readiness otherwise.
   */
  upLine?: string;
}

/** The flags package.json's `npm run api` / `npm run scheduler` start them with. */
const NODE_ARGS: Record<ServiceSpec["entry"], string[]> = {
  "api/src/main.ts": ["--max-semi-space-size=32", "--import", "tsx"],
  "scheduler/src/main.ts": ["--import", "tsx"],
};

/**
 * A service of the product as its own OS process, its output appended to a log file. The suite
 * kills, freezes and restarts it; an exit it did not ask for is noted and, as a supervisor would,
 * answered with a restart.
 */
export class Service {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private expectingExit = false;
  private readonly log: WriteStream;
  /** Exits nobody asked for (a crash of the service itself). */
  readonly unplannedExits: string[] = [];
  private readonly lineListeners = new Set<(line: string) => void>();
  /** When the last start was up (upLine seen, or ready): what "back" means after a restart. */
  upAt: number | undefined;

  constructor(
    readonly spec: ServiceSpec,
    private readonly onUnplannedExit: (service: Service, what: string) => void,
  ) {
    this.log = createWriteStream(spec.logFile, { flags: "a" });
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves once readyUrl answers 200. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    if (!(await isPortFree(this.spec.port))) await untilPortFree(this.spec.port);
    this.expectingExit = false;
    this.upAt = undefined;
    this.log.write(`\n--- ${new Date().toISOString()} start ${this.name}\n`);
    const child = spawn(process.execPath, [...NODE_ARGS[this.spec.entry], this.spec.entry], {
      cwd: REPO_ROOT,
      env: { ...baseEnv(), ...this.spec.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on("line", (line) => {
        this.log.write(`${line}\n`);
        if (this.upAt === undefined && this.spec.upLine !== undefined && line.includes(this.spec.upLine)) {
          this.upAt = Date.now();
        }
        for (const listener of this.lineListeners) listener(line);
      });
    }
    this.exited = once(child, "exit").then(([code, signal]) => {
      this.log.write(`--- ${new Date().toISOString()} ${this.name} exited (code ${code}, signal ${signal})\n`);
      if (!this.expectingExit) {
        const what = `${this.name} exited on its own (code ${code}, signal ${signal})`;
        this.unplannedExits.push(what);
        this.onUnplannedExit(this, what);
      }
    });
    await this.untilReady(child);
    this.upAt ??= Date.now();
  }

  private async untilReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${this.name} exited while starting (see ${this.spec.logFile})`);
      }
      const ok = await fetch(this.spec.readyUrl, { signal: AbortSignal.timeout(2_000) }).then(
        (res) => res.ok,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline)
        throw new Error(`${this.name} not ready at ${this.spec.readyUrl} after ${READY_TIMEOUT_MS} ms`);
      await delay(100);
    }
  }

  /** Resolves with the first output line (from now on) that includes `text`. */
  waitForLine(text: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const listener = (line: string) => {
        if (!line.includes(text)) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name} did not log ${JSON.stringify(text)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.lineListeners.delete(listener);
      };
      this.lineListeners.add(listener);
    });
  }

  /** SIGKILL: a crash. Resolves once the process is gone and its port free. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child?.pid || !this.running) throw new Error(`${this.name} is not running`);
    this.expectingExit = true;
    child.kill("SIGKILL");
    await this.exited;
    await untilGone(child.pid, this.spec.port, 10_000);
  }

  /** SIGSTOP / SIGCONT: frozen, as a stalled host or a long GC pause. */
  signal(signal: "SIGSTOP" | "SIGCONT"): void {
    if (!this.running) throw new Error(`${this.name} is not running`);
    this.child?.kill(signal);
  }

  /** SIGTERM (the service's graceful shutdown), SIGKILL after STOP_TIMEOUT_MS. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    this.expectingExit = true;
    child.kill("SIGCONT"); // a frozen process cannot handle SIGTERM
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** For the last-resort cleanup of an interrupted run. */
  killNow(): void {
    this.expectingExit = true;
    if (this.running) this.child?.kill("SIGKILL");
  }

  close(): void {
    this.log.end();
  }
}

async function untilPortFree(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await isPortFree(port))) {
    if (Date.now() > deadline) throw new Error(`port ${port} is still taken`);
    await delay(100);
  }
}

/** `count` distinct free ports of the suite's range, none of those handed out already (`taken` gets them). */
export async function allocatePorts(count: number, taken: Set<number>): Promise<number[]> {
  const ports = await freePorts(count, [...taken], FAULTS_PORT_RANGE);
  for (const port of ports) taken.add(port);
  return ports;
}
