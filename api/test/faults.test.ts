import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { createInterface } from "node:readline";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { expect } from "chai";
import pg from "pg";
import { ProductService, WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import { createLogger } from "#platform/logger.js";
import { JSON_HEADERS, startTestApi } from "../../test/support/api.js";
import { testDatabaseUrl } from "../../test/support/env.js";
import { createTestDatabase } from "../../test/support/postgres.js";
import { seedProductJson } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";
import { createApi } from "../src/api.js";
import { loadApiConfig } from "../src/config.js";
import { productFromJson } from "../src/rest/product-json.js";

/** A TCP proxy to PostgreSQL that a test can cut and restore: the database "goes down" for real. */
async function createCuttableProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const open = async () => {
    server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as net.AddressInfo).port;
  };
  await open();
  return {
    get port() {
      return port;
    },
    async cut() {
      const closed = new Promise((resolve) => server?.close(resolve));
      for (const s of sockets) s.destroy();
      await closed;
    },
    restore: open,
  };
}

describe("faults @integration", () => {
  describe("when the database goes down", () => {
    it("then REST answers 503, RPC unavailable, /readyz 503 — with no driver text — and it recovers", async () => {
      const database = await createTestDatabase();
      const proxy = await createCuttableProxy(new URL(testDatabaseUrl()));
      const url = new URL(database.url);
      url.port = String(proxy.port);
      const config = loadApiConfig({
        PORT: "0",
        HOST: "127.0.0.1",
        DATABASE_URL: url.toString(),
        LOG_LEVEL: "silent",
        DB_CONNECT_TIMEOUT_MS: "1000",
      });
      // Awaited inside the try: if the API does not start, the proxy and database are still removed.
      const starting = createApi(config, createLogger("api", "silent")).start();
      try {
        const api = await starting;
        const post = () =>
          fetch(`${api.url}/products/`, {
            method: "POST",
            headers: JSON_HEADERS,
            body: JSON.stringify(seedProductJson({ id: uniqueId() })),
          });
        expect((await post()).status).to.equal(201);

        await proxy.cut();
        const down = await post();
        expect(down.status).to.equal(503);
        const body = await down.json();
        expect(body).to.deep.equal({ error: "unavailable", message: "database unavailable, retry later" });
        expect((await fetch(`${api.url}/readyz`)).status).to.equal(503);
        expect((await fetch(`${api.url}/healthz`)).status).to.equal(200);
        const client = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
        const error = await client.getProduct({ id: "x" }).catch((e: unknown) => ConnectError.from(e));
        expect(error).to.be.instanceOf(ConnectError).with.property("code", Code.Unavailable);
        expect((error as ConnectError).rawMessage).to.equal("database unavailable, retry later");

        await proxy.restore();
        expect((await post()).status).to.equal(201);
        expect((await fetch(`${api.url}/readyz`)).status).to.equal(200);
      } finally {
        await starting.then(
          (api) => api.stop(),
          () => {},
        );
        await proxy.cut();
        await database.drop();
      }
    });
  });

  describe("when the API is stopped with requests in flight", () => {
    it("then the in-flight REST and gRPC requests complete, then new connections are refused", async () => {
      const api = await startTestApi({ DB_POOL_MAX: "30", DB_WRITE_CONCURRENCY: "20" });
      // Hold the table so that the writes are certainly in flight (waiting in PostgreSQL) when stop() starts.
      // The blocker uses its own connection: the API's pool is busy with the waiting writes.
      const blocker = new pg.Client({ connectionString: api.database.url });
      await blocker.connect();
      try {
        await blocker.query("BEGIN");
        await blocker.query("LOCK TABLE products IN EXCLUSIVE MODE");
        const restIds = Array.from({ length: 10 }, () => uniqueId("inflight-rest"));
        const grpcIds = Array.from({ length: 10 }, () => uniqueId("inflight-grpc"));
        const restInFlight = restIds.map((id) =>
          fetch(`${api.url}/products/`, {
            method: "POST",
            headers: JSON_HEADERS,
            body: JSON.stringify(seedProductJson({ id })),
          }).then((r) => r.status),
        );
        // gRPC goes over HTTP/2: the session must stay open until its streams have answered.
        const grpc = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
        const grpcInFlight = grpcIds.map((id) =>
          grpc
            .createProduct({ product: productFromJson(seedProductJson({ id })).product })
            .then((r) => WriteOutcome[r.outcome]),
        );
        await waitFor(async () => {
          // Not on the blocker: pg_stat_activity is a snapshot fixed for the length of a transaction.
          const { rows } = await api.knex.raw(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
          );
          return rows[0].n === restIds.length + grpcIds.length;
        });
        const stopped = api.stop();
        await blocker.query("COMMIT");
        expect(await Promise.all(restInFlight)).to.deep.equal(restIds.map(() => 201));
        expect(await Promise.all(grpcInFlight)).to.deep.equal(grpcIds.map(() => "CREATED"));
        await stopped;
        const refused = await fetch(`${api.url}/healthz`).then(
          () => false,
          () => true,
        );
        expect(refused).to.equal(true);
      } finally {
        await blocker.end();
        await api.database.drop();
      }
    });
  });
});

describe("API configuration", () => {
  describe("when configuration is invalid", () => {
    it("then loading it names every bad variable and the expected form", () => {
      const load = () => loadApiConfig({ PORT: "eighty", LOG_LEVEL: "loud", DATABASE_URL: "mysql://x" });
      expect(load).to.throw(/PORT="eighty": expected an integer from 0 to 65535/);
      expect(load).to.throw(/DATABASE_URL: expected a PostgreSQL URL/);
      expect(load).to.throw(/LOG_LEVEL="loud": expected one of fatal, error/);
    });

    it("then the original project's SQLAlchemy URL form is accepted", () => {
      const config = loadApiConfig({ DATABASE_URL: "postgresql+psycopg2://user:pw@db:5432/products" });
      expect(config.databaseUrl).to.equal("postgresql://user:pw@db:5432/products");
    });
  });
});

describe("the api process @integration", () => {
  it("when it gets SIGTERM, then it shuts down gracefully and exits 0", async function () {
    this.timeout(60_000);
    const database = await createTestDatabase();
    const child = spawn(process.execPath, ["--import", "tsx", "api/src/main.ts"], {
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", DATABASE_URL: database.url, OUTBOX_RELAY: "false" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const lines: string[] = [];
      const exited = once(child, "exit");
      const listening = new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout }).on("line", (line) => {
          lines.push(line);
          if (line.includes('"api listening"')) resolve();
        });
        // A process that fails to start fails the test now, with its log, not at the timeout.
        exited.then(
          ([code]) => reject(new Error(`the api exited with ${code} before listening:\n${lines.join("\n")}`)),
          reject,
        );
      });
      await listening;
      child.kill("SIGTERM");
      const [code] = await exited;
      expect(code).to.equal(0);
      const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
      expect(messages).to.include.members(["shutdown requested", "api stopped"]);
    } finally {
      child.kill("SIGKILL");
      await database.drop();
    }
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
