import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { pino } from "pino";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "../../api/src/db/embedded-postgres.js";
import { freePorts } from "../../test/support/free-port.js";
import { BENCH_PORT_RANGE } from "../shared/environment.js";
import { processCpu } from "../shared/proc-cpu.js";

export interface LogicalServer {
  server: EmbeddedDatabase;
  /** Its maintenance database's URL, to create databases on. */
  url: string;
  /** Stops it and removes its files. */
  remove(): Promise<void>;
}

/** A PostgreSQL of the bench's own, with logical decoding on, in a directory removed with it. */
export async function startLogicalServer(): Promise<LogicalServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "products-bench-outbox-"));
  // The server runs as the postgres user when this runs as root: it must reach its data dir.
  await chmod(dir, 0o755);
  const [port] = await freePorts(1, [], BENCH_PORT_RANGE);
  try {
    const server = await startEmbeddedPostgres(dir, port ?? 0, pino({ level: "silent" }), {
      settings: { wal_level: "logical", max_replication_slots: "10", max_wal_senders: "10" },
    });
    return {
      server,
      url: new URL("/postgres", server.url).toString(),
      remove: async () => {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The server's version and wal_level, and its postmaster's pid if it runs on this machine (its backends' parent). */
export async function serverFacts(url: string): Promise<{ version: string; walLevel: string; postmasterPid?: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ version: string; wal_level: string; pid: number }>(
      "SELECT current_setting('server_version') AS version, current_setting('wal_level') AS wal_level, pg_backend_pid() AS pid",
    );
    const [facts] = rows;
    const postmasterPid = facts ? (await processCpu(facts.pid))?.ppid : undefined;
    return {
      version: facts?.version ?? "?",
      walLevel: facts?.wal_level ?? "?",
      ...(postmasterPid ? { postmasterPid } : {}),
    };
  } finally {
    await client.end();
  }
}
