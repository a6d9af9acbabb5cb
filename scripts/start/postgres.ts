/**
 * The embedded PostgreSQL as a process of its own, run by `npm start` (scripts/start.ts) in its
 * own process group: a Ctrl-C in the terminal reaches npm start only, which stops this last, after
 * the services that use it. SIGTERM, SIGINT or the end of stdin (npm start is gone) stop the
 * server and exit 0; the server dying exits 1 with its last output lines.
 */

import { createLogger } from "#platform/logger.js";
import { isProcessAlive, runMain } from "#platform/run-main.js";
import { loadApiConfig } from "../../api/src/config.js";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "../../api/src/db/embedded-postgres.js";
import { dropOutputWhenReaderIsGone } from "./orphan-output.js";

const WATCH_INTERVAL_MS = 500;

dropOutputWhenReaderIsGone();

runMain("postgres", async () => {
  const config = loadApiConfig();
  const logger = createLogger("postgres", config.logLevel, config.logFormat);
  let server: EmbeddedDatabase | undefined;
  let stopping: Promise<void> | undefined;
  let watch: NodeJS.Timeout | undefined;
  const stop = (reason: string) => {
    stopping ??= (async () => {
      clearInterval(watch);
      if (server === undefined) return; // asked during the start: stopped once it is up
      logger.info(
        { reason },
        server.reused ? "leaving the PostgreSQL it did not start running" : "stopping PostgreSQL",
      );
      await server.stop();
      logger.info("PostgreSQL stopped");
      process.exit(0);
    })().catch((error: unknown) => {
      logger.error({ err: error }, "stopping PostgreSQL failed");
      process.exit(1);
    });
  };
  // Installed first: a signal during the start must not kill this process and orphan the server.
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.stdin.on("end", () => stop("npm start went away"));
  process.stdin.on("error", () => stop("npm start went away"));
  process.stdin.resume();

  server = await startEmbeddedPostgres(config.dataDir, config.embeddedPostgresPort, logger);
  const { pid, reused, databaseDir } = server;
  logger.info({ port: config.embeddedPostgresPort, pid, reused, databaseDir }, "PostgreSQL ready");
  if (stopping !== undefined) {
    stopping = undefined;
    stop("asked to stop while starting");
    return;
  }
  watch = setInterval(() => {
    if (pid === undefined || isProcessAlive(pid) || stopping !== undefined) return;
    clearInterval(watch);
    logger.error(
      { pid, postgres: server?.lastLines().join("\n") || "(no output: not started by this process)" },
      "PostgreSQL exited",
    );
    process.exit(1);
  }, WATCH_INTERVAL_MS);
});
