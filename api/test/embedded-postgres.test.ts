import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import pg from "pg";
import { freePorts } from "../../test/support/free-port.js";
import { testLogger } from "../../test/support/logger.js";
import { createApi, type RunningApi } from "../src/api.js";
import { loadApiConfig } from "../src/config.js";
import {
  DEFAULT_EMBEDDED_POSTGRES_PORT,
  type EmbeddedDatabase,
  embeddedPostgresDir,
  startEmbeddedPostgres,
} from "../src/db/embedded-postgres.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const logger = () => testLogger("embedded-test");

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** `npm run migrate` as a user runs it, on the embedded database of dataDir and port. */
function migrate(dataDir: string, port: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "api/src/db/migrate-cli.ts"], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: "", DATA_DIR: dataDir, EMBEDDED_POSTGRES_PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("embedded PostgreSQL data dirs", () => {
  it("keeps the default port's data in <DATA_DIR>/postgres and any other port's in postgres-<port>", () => {
    expect(embeddedPostgresDir(".data", DEFAULT_EMBEDDED_POSTGRES_PORT)).to.equal(path.join(".data", "postgres"));
    expect(embeddedPostgresDir(".data", 19250)).to.equal(path.join(".data", "postgres-19250"));
  });
});

describe("embedded PostgreSQL @integration", function () {
  this.timeout(90_000);
  let dataDir: string;
  const servers: EmbeddedDatabase[] = [];

  // A data dir per test: tests on the same port must not see each other's files.
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "embedded-pg-"));
    // As root, PostgreSQL runs as the "postgres" user, which must be able to enter the data dir.
    await chmod(dataDir, 0o755);
  });
  afterEach(async () => {
    for (const server of servers.splice(0).reverse()) await server.stop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  });

  it("when one already runs on the data dir and port, then a second start uses it and its stop leaves it running", async () => {
    const [port] = (await freePorts(1)) as [number];
    const first = await startEmbeddedPostgres(dataDir, port, logger());
    servers.push(first);
    expect(first.reused).to.equal(false);
    expect(first.databaseDir).to.equal(path.join(dataDir, `postgres-${port}`));
    expect(first.pid).to.be.a("number");

    const second = await startEmbeddedPostgres(dataDir, port, logger());
    expect(second).to.include({ reused: true, pid: first.pid, url: first.url });
    await second.stop();
    expect(await query(first.url, "SELECT 1 AS one")).to.deep.equal([{ one: 1 }]);

    await first.stop();
    expect(isAlive(first.pid as number)).to.equal(false);
  });

  it("when `npm run migrate` runs while the API runs on the embedded database, then it migrates and the API keeps running", async () => {
    const [port] = (await freePorts(1)) as [number];
    const config = loadApiConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      EMBEDDED_POSTGRES_PORT: String(port),
      OUTBOX_RELAY: "false",
      LOG_LEVEL: "silent",
      SHUTDOWN_TIMEOUT_MS: "2000",
    });
    let api: RunningApi | undefined = await createApi(config, logger()).start();
    try {
      const result = await migrate(dataDir, port);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout)
        .to.include("using the embedded PostgreSQL already running")
        .and.include("already up to date");
      const ready = await fetch(`${api.url}/readyz`);
      expect(ready.status).to.equal(200);
      await api.stop();
      api = undefined;
      // The API started the server, so its stop stopped it.
      const gone = await query(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`, "SELECT 1").catch(
        (error: NodeJS.ErrnoException) => error,
      );
      expect(gone).to.have.property("code", "ECONNREFUSED");
    } finally {
      await api?.stop();
    }
  });

  it("when the data dir is in use on another port, then the error names that port", async () => {
    const [port, other] = (await freePorts(2)) as [number, number];
    const dir = embeddedPostgresDir(dataDir, port);
    await mkdir(dir, { recursive: true });
    // A live pid (this process) and another port, as PostgreSQL writes them.
    await writeFile(path.join(dir, "postmaster.pid"), `${process.pid}\n${dir}\n0\n${other}\n`);
    const error = await startEmbeddedPostgres(dataDir, port, logger())
      .then(
        () => expect.fail("started"),
        (e: Error) => e,
      )
      // The fake pid file names this process: a later test on the same port would take it as running.
      .finally(() => rm(dir, { recursive: true, force: true }));
    expect(error.message).to.equal(
      `${dir} is in use by PostgreSQL pid ${process.pid} on port ${other}, not ${port}; set EMBEDDED_POSTGRES_PORT=${other} to use that server`,
    );
  });

  it("when PostgreSQL cannot start, then `npm run migrate` prints why, with PostgreSQL's last lines", async () => {
    const [port] = (await freePorts(1)) as [number];
    // A data dir that looks initialised but has no configuration: postgres exits at once.
    const dir = embeddedPostgresDir(dataDir, port);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "PG_VERSION"), "18\n");
    const result = await migrate(dataDir, port);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(
      new RegExp(`^migrate: failed to start: Error: the embedded PostgreSQL did not start \\(port ${port}, data in `),
    );
    expect(result.stderr).to.match(/PostgreSQL's last lines:\n {2}postgres: could not access the server configuration/);
    expect(result.stderr).not.to.match(/: undefined/);
  });
});
