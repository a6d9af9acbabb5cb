import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { sleep } from "#platform/backoff.js";
import { REPOSITORY_ROOT } from "./environment.js";

/** A service of the project running as a child process of the bench. */
export interface ServiceProcess {
  pid: number;
  /** Rejects if the process exits before stop() is called. */
  failed: Promise<never>;
  /** SIGTERM (the service's own graceful shutdown), SIGKILL if that takes longer than 15 s. */
  stop(): Promise<void>;
}

export interface ServiceProcessOptions {
  env: Record<string, string | undefined>;
  /** node flags before the entry (`--max-semi-space-size`, `--cpu-prof`: not allowed in NODE_OPTIONS). */
  nodeArgs: readonly string[];
  /** Receives stdout line by line (the service's JSON log); without it, stdout is the bench's. */
  onLine?: (line: string) => void;
}

const KILL_AFTER_MS = 15_000;

/** `node <nodeArgs> --import tsx <entry>` from the repository root, as `npm run api` starts it. */
export function spawnService(entry: string, options: ServiceProcessOptions): ServiceProcess {
  const { onLine } = options;
  const child: ChildProcess = spawn(process.execPath, [...options.nodeArgs, "--import", "tsx", entry], {
    cwd: REPOSITORY_ROOT,
    env: options.env,
    stdio: ["ignore", onLine ? "pipe" : "inherit", "inherit"],
  });
  if (onLine && child.stdout) createInterface({ input: child.stdout }).on("line", onLine);
  let stopping = false;
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  const failed = exited.then(([code, signal]) => {
    if (!stopping) throw new Error(`${entry} exited (code ${code}, signal ${signal})`);
    return new Promise<never>(() => {});
  });
  failed.catch(() => {});
  return {
    pid: child.pid ?? 0,
    failed,
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), KILL_AFTER_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * spawnService for a service with an HTTP /readyz on `url`, resolved once it answers 200. A
 * service at LOG_LEVEL silent or warn says nothing when it listens, so the bench has to ask.
 */
export async function startHttpService(
  entry: string,
  url: string,
  options: ServiceProcessOptions,
): Promise<ServiceProcess> {
  const service = spawnService(entry, options);
  const stopPolling = new AbortController();
  try {
    await Promise.race([waitUntilReady(url, stopPolling.signal), service.failed]);
  } catch (error) {
    await service.stop();
    throw error;
  } finally {
    stopPolling.abort();
  }
  return service;
}

/** Polls `${url}/readyz` until it answers 200; returns early, quietly, when `signal` aborts. */
async function waitUntilReady(url: string, signal: AbortSignal, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!signal.aborted) {
    const ready = await fetch(`${url}/readyz`, { signal }).then(
      (res) => res.ok,
      () => false,
    );
    if (ready) return;
    if (Date.now() >= deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await sleep(100, signal);
  }
}
