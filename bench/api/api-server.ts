import { createLogger } from "#platform/logger.js";
import { createApi } from "../../api/src/api.js";
import type { ApiConfig } from "../../api/src/config.js";
import { freePorts } from "../../test/support/free-port.js";
import { BENCH_PORT_RANGE } from "../shared/environment.js";
import { startHttpService } from "../shared/service-process.js";
import type { ApiBenchOptions } from "./options.js";

/**
 * The API's environment under a bench: a database of its own, silent, and the caller's database
 * settings (DB_POOL_MAX, DB_WRITE_CONCURRENCY, …) passed through.
 */
export function benchApiEnv(databaseUrl: string): Record<string, string> {
  return {
    ...Object.fromEntries(
      Object.entries(process.env).flatMap(([name, value]) =>
        name.startsWith("DB_") && value !== undefined ? [[name, value]] : [],
      ),
    ),
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: "silent",
    SHUTDOWN_TIMEOUT_MS: "2000",
    // The relay publishes the outbox to Kafka after the fact: not part of a create, and the bench
    // must not publish to whatever broker runs on this machine. The outbox rows are still written.
    OUTBOX_RELAY: "false",
  };
}

/** The API under load, wherever it runs. */
export interface BenchServer {
  url: string;
  /** The API's own process when it is a child; in-process, its CPU counts as the bench's. */
  pid?: number;
  stop(): Promise<void>;
}

/**
 * The API as --server says: by default `api/src/main.ts` in a child process, so that client and
 * server do not share one event loop; inproc through createApi, on this process's loop.
 */
export async function startApiServer(
  options: ApiBenchOptions,
  apiEnv: Record<string, string>,
  config: ApiConfig,
): Promise<BenchServer> {
  if (options.server === "inproc") {
    const api = await createApi(config, createLogger("api", config.logLevel)).start();
    return { url: api.url, stop: () => api.stop() };
  }
  const [port] = await freePorts(1, [], BENCH_PORT_RANGE);
  const url = `http://127.0.0.1:${port}`;
  const service = await startHttpService("api/src/main.ts", url, {
    env: {
      PATH: process.env.PATH,
      ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}),
      ...apiEnv,
      PORT: String(port),
    },
    nodeArgs: options.serverNodeArgs,
  });
  return { url, pid: service.pid, stop: () => service.stop() };
}
