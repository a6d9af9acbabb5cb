import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { expect } from "chai";
import pg from "pg";
import { ProductService } from "#gen/products/v1/product_service_pb.js";
import { JSON_HEADERS, startTestApi, type TestApi } from "../../test/support/api.js";
import { seedProductJson } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";
import { waitFor } from "../../test/support/wait-for.js";
import { productFromJson } from "../src/rest/product-json.js";

describe("single creates waiting for a statement (group commit) @integration", () => {
  let api: TestApi;
  let blocker: pg.Client | undefined;

  before(async () => {
    // One statement at a time and one write allowed to wait for it.
    api = await startTestApi({ DB_WRITE_CONCURRENCY: "1", DB_WRITE_QUEUE_MAX: "1" });
  });

  after(async () => {
    await blocker?.end();
    await api?.close();
  });

  const post = (id: string, signal?: AbortSignal) =>
    fetch(`${api.url}/products/`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify(seedProductJson({ id })),
      ...(signal ? { signal } : {}),
    });
  const gauge = async () => (await api.metrics.writeQueueDepth.get()).values[0]?.value ?? 0;
  const notRun = async (reason: string) =>
    (await api.metrics.writesNotRun.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  const rowsOf = (ids: string[]) => api.knex("products").whereIn("id", ids).pluck("id");

  it("when the clients of waiting writes go away (a closed REST request, a passed gRPC deadline), then their writes never run; when the queue is full, a new write gets 503 and changes nothing", async () => {
    // The table held, so the one statement allowed waits in PostgreSQL and later writes queue.
    blocker = new pg.Client({ connectionString: api.database.url });
    await blocker.connect();
    await blocker.query("BEGIN");
    await blocker.query("LOCK TABLE products IN EXCLUSIVE MODE");
    const inFlight = uniqueId("in-flight");
    const running = post(inFlight);
    await waitFor(async () => {
      const { rows } = await api.knex.raw(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      return rows[0].n === 1;
    }, "the first write to wait for the table lock");

    const restGone = uniqueId("rest-gone");
    const client = new AbortController();
    const aborted = post(restGone, client.signal).catch((error: unknown) => error);
    await waitFor(async () => (await gauge()) === 1, "the REST write to queue");

    const full = uniqueId("full");
    const refused = await post(full);
    expect(refused.status).to.equal(503);
    expect(await refused.json()).to.deep.equal({
      error: "unavailable",
      message: "too many writes waiting (1); nothing was written, retry later",
    });

    client.abort();
    expect(await aborted).to.have.property("name", "AbortError");
    await waitFor(async () => (await gauge()) === 0, "the closed request's write to leave the queue");

    const grpcGone = uniqueId("grpc-gone");
    const grpc = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
    const deadline = await grpc
      .createProduct({ product: productFromJson(seedProductJson({ id: grpcGone })).product }, { timeoutMs: 300 })
      .then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );
    expect(deadline?.code).to.equal(Code.DeadlineExceeded);
    await waitFor(async () => (await notRun("client_gone")) === 2, "the gRPC write to leave the queue");
    expect(await gauge()).to.equal(0);
    expect(await notRun("queue_full")).to.equal(1);

    await blocker.query("COMMIT");
    expect((await running).status, "the write in flight completes").to.equal(201);
    // A write after them all: once it is answered, nothing queued before it is still to run.
    const after = uniqueId("after");
    expect((await post(after)).status).to.equal(201);
    expect(await rowsOf([inFlight, restGone, full, grpcGone, after])).to.have.members([inFlight, after]);
  });
});
