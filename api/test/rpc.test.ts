import * as http2 from "node:http2";
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { expect } from "chai";
import { BadRequestSchema } from "#gen/google/rpc/error_details_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "#gen/health/v1/health_pb.js";
import { ProductSchema } from "#gen/products/v1/product_pb.js";
import {
  CreateProductRequestSchema,
  ProductService,
  ResultView,
  WriteOutcome,
} from "#gen/products/v1/product_service_pb.js";
import { startTestApi, type TestApi } from "../../test/support/api.js";
import { uniqueId } from "../../test/support/unique-names.js";

function newProduct(id = uniqueId("rpc")) {
  return create(ProductSchema, {
    id,
    name: "Nome do Produto",
    description: "Descrição do Produto",
    pricing: { amount: "19.99", currency: "BRL" },
    availability: { quantity: 50, timestamp: timestampFromDate(new Date("2024-06-29T00:30:03.254Z")) },
    category: "Categoria do Produto",
  });
}

describe("ProductService over RPC @integration", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => {
    await api?.close();
  });

  const transports: [string, () => Transport][] = [
    ["Connect JSON over HTTP/1.1", () => createConnectTransport({ baseUrl: api.url, httpVersion: "1.1" })],
    [
      "Connect binary over HTTP/1.1",
      () => createConnectTransport({ baseUrl: api.url, httpVersion: "1.1", useBinaryFormat: true }),
    ],
    [
      "Connect binary over HTTP/2",
      () => createConnectTransport({ baseUrl: api.url, httpVersion: "2", useBinaryFormat: true }),
    ],
    ["gRPC over h2c", () => createGrpcTransport({ baseUrl: api.url })],
    ["gRPC-Web over HTTP/1.1", () => createGrpcWebTransport({ baseUrl: api.url, httpVersion: "1.1" })],
    ["gRPC-Web over HTTP/2", () => createGrpcWebTransport({ baseUrl: api.url, httpVersion: "2" })],
  ];

  for (const [name, transport] of transports) {
    describe(name, () => {
      it("creates, reads back, updates idempotently and lists", async () => {
        const client = createClient(ProductService, transport());
        const product = newProduct();
        const created = await client.createProduct({ product });
        expect(created.outcome).to.equal(WriteOutcome.CREATED);
        expect(created.product?.version).to.equal(1n);
        expect(created.product?.pricing?.amount).to.equal("19.99");
        expect(created.product?.description).to.equal("Descrição do Produto");

        const again = await client.createProduct({ product });
        expect(again.outcome).to.equal(WriteOutcome.UNCHANGED);
        expect(again.product?.version).to.equal(1n);

        product.availability!.quantity = 7;
        const updated = await client.createProduct({ product });
        expect(updated.outcome).to.equal(WriteOutcome.UPDATED);
        expect(updated.product?.version).to.equal(2n);

        const read = await client.getProduct({ id: product.id });
        expect(read.product).to.deep.equal(updated.product);

        const page = await client.listProducts({ pageSize: 500 });
        expect(page.products.map((p) => p.id)).to.include(product.id);
      });

      it("answers invalid_argument with the field violations as google.rpc.BadRequest", async () => {
        const client = createClient(ProductService, transport());
        const product = newProduct();
        product.pricing = { $typeName: "products.v1.Pricing", amount: "1.23456", currency: "brl" };
        const error = await client.createProduct({ product }).then(
          () => expect.fail("accepted an invalid product"),
          (e: unknown) => ConnectError.from(e),
        );
        expect(error.code).to.equal(Code.InvalidArgument);
        expect(error.rawMessage).to.match(/^invalid product: pricing\.amount: .*; pricing\.currency: /);
        const [details] = error.findDetails(BadRequestSchema);
        expect(details?.fieldViolations.map((v) => v.field)).to.deep.equal(["pricing.amount", "pricing.currency"]);
        const stored = await client.getProduct({ id: product.id }).catch((e: unknown) => ConnectError.from(e));
        expect(stored).to.be.instanceOf(ConnectError).with.property("code", Code.NotFound);
      });

      it("answers a forged page token with invalid_argument about the request, naming page_token", async () => {
        const client = createClient(ProductService, transport());
        const error = await client.listProducts({ pageToken: "bm90LWEtdG9rZW4" }).then(
          () => expect.fail("accepted a forged page token"),
          (e: unknown) => ConnectError.from(e),
        );
        expect(error.code).to.equal(Code.InvalidArgument);
        expect(error.rawMessage).to.equal("invalid request: page_token: is not a token returned by a previous page");
        const [details] = error.findDetails(BadRequestSchema);
        expect(details?.fieldViolations.map((v) => v.field)).to.deep.equal(["page_token"]);
      });
    });
  }

  it("reports what each upsert did: created, updated, unchanged, stale", async () => {
    const client = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
    const product = newProduct();
    expect((await client.createProduct({ product })).outcome).to.equal(WriteOutcome.CREATED);
    const older = newProduct(product.id);
    older.availability!.timestamp = timestampFromDate(new Date("2020-01-01T00:00:00Z"));
    older.name = "stale";
    const stale = await client.createProduct({ product: older });
    expect(stale.outcome).to.equal(WriteOutcome.STALE);
    expect(stale.product?.name).to.equal("Nome do Produto");
  });

  it("when 50 gRPC clients create one id concurrently, then none fails and exactly one created it", async () => {
    const client = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
    const product = newProduct();
    const results = await Promise.all(Array.from({ length: 50 }, () => client.createProduct({ product })));
    expect(results.filter((r) => r.outcome === WriteOutcome.CREATED)).to.have.length(1);
    expect(results.filter((r) => r.outcome === WriteOutcome.UNCHANGED)).to.have.length(49);
  });

  it("BatchCreateProducts writes valid items in order and reports invalid ones per item", async () => {
    const client = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
    const id = uniqueId("batch");
    const first = newProduct(id);
    const second = newProduct(id);
    second.availability!.quantity = 1;
    const invalid = newProduct();
    invalid.name = "";
    const { results } = await client.batchCreateProducts({
      requests: [{ product: first }, { product: invalid }, { product: second }, { product: first }],
    });
    expect(results.map((r) => r.result.case)).to.deep.equal(["response", "error", "response", "response"]);
    const outcomes = results.map((r) => (r.result.case === "response" ? r.result.value.outcome : undefined));
    expect(outcomes).to.deep.equal([WriteOutcome.CREATED, undefined, WriteOutcome.UPDATED, WriteOutcome.UPDATED]);
    const error = results[1]?.result.case === "error" ? results[1].result.value : undefined;
    expect(error?.code).to.equal("invalid_argument");
    expect(error?.fieldViolations.map((v) => v.field)).to.deep.equal(["name"]);
    expect((await client.getProduct({ id })).product?.version).to.equal(3n);
  });

  it("BatchCreateProducts with RESULT_VIEW_OUTCOME answers each outcome with only the product's id and version", async () => {
    const client = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
    const id = uniqueId("outcome");
    const first = newProduct(id);
    const newer = newProduct(id);
    newer.availability!.quantity = 7;
    newer.availability!.timestamp = timestampFromDate(new Date("2024-06-30T00:00:00Z"));
    const { results } = await client.batchCreateProducts({
      requests: [{ product: first }, { product: newer }, { product: newer }, { product: first }],
      resultView: ResultView.OUTCOME,
    });
    const answers = results.map((r) => (r.result.case === "response" ? r.result.value : undefined));
    expect(answers.map((a) => a?.outcome)).to.deep.equal([
      WriteOutcome.CREATED,
      WriteOutcome.UPDATED,
      WriteOutcome.UNCHANGED,
      WriteOutcome.STALE,
    ]);
    expect(answers.map((a) => a?.product?.version)).to.deep.equal([1n, 2n, 2n, 2n]);
    const thin = create(ProductSchema, { id, version: 2n });
    for (const answer of answers.slice(1)) expect(answer?.product).to.deep.equal(thin);
    // What was written is the whole product, as with the default view.
    const stored = (await client.getProduct({ id })).product;
    expect(stored?.availability?.quantity).to.equal(7);
    expect(stored?.description).to.equal("Descrição do Produto");
    const full = await client.batchCreateProducts({ requests: [{ product: newer }] });
    const answer = full.results[0]?.result.case === "response" ? full.results[0].result.value : undefined;
    expect(answer?.product?.pricing?.amount).to.equal("19.99");
  });

  it("BatchCreateProducts refuses only the item dated beyond MAX_CLOCK_SKEW_MS ahead", async () => {
    const client = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
    const future = newProduct();
    future.availability!.timestamp = timestampFromDate(new Date(Date.now() + 3_600_000));
    const fine = newProduct();
    const { results } = await client.batchCreateProducts({ requests: [{ product: future }, { product: fine }] });
    expect(results.map((r) => r.result.case)).to.deep.equal(["error", "response"]);
    const error = results[0]?.result.case === "error" ? results[0].result.value : undefined;
    expect(error?.code).to.equal("invalid_argument");
    expect(error?.fieldViolations.map((v) => v.field)).to.deep.equal(["availability.timestamp"]);
    const missing = await client.getProduct({ id: future.id }).catch((e: unknown) => e);
    expect(missing).to.be.instanceOf(ConnectError).with.property("code", Code.NotFound);
  });

  it("rejects requests over 1 MiB with resource_exhausted", async () => {
    const client = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
    const product = newProduct();
    product.description = "x".repeat(1024 * 1024 + 10);
    const error = await client.createProduct({ product }).catch((e: unknown) => ConnectError.from(e));
    expect(error).to.be.instanceOf(ConnectError).with.property("code", Code.ResourceExhausted);
  });

  it("serves grpc.health.v1.Health", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: api.url }));
    expect((await health.check({ service: "" })).status).to.equal(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: "products.v1.ProductService" })).status).to.equal(
      HealthCheckResponse_ServingStatus.SERVING,
    );
    const unknown = await health.check({ service: "nope.v1.Nope" }).catch((e: unknown) => ConnectError.from(e));
    expect(unknown).to.be.instanceOf(ConnectError).with.property("code", Code.NotFound);
  });

  describe("an independent gRPC implementation (@grpc/grpc-js)", () => {
    type Callback = (error: grpc.ServiceError | null, response: any) => void;
    let client: grpc.Client & Record<string, (request: unknown, metadata: grpc.Metadata, callback: Callback) => void>;
    before(() => {
      const definition = protoLoader.loadSync("products/v1/product_service.proto", {
        includeDirs: ["proto", "node_modules/google-proto-files"],
        longs: String,
        enums: String,
        defaults: true,
      });
      const loaded = grpc.loadPackageDefinition(definition) as any;
      client = new loaded.products.v1.ProductService(`127.0.0.1:${api.port}`, grpc.credentials.createInsecure());
    });
    after(() => client?.close());

    const call = (method: string, request: unknown) =>
      new Promise<{ error: grpc.ServiceError | null; response: any }>((resolve) => {
        client[method]!(request, new grpc.Metadata(), (error, response) => resolve({ error, response }));
      });

    it("creates and reads a product", async () => {
      const id = uniqueId("grpcjs");
      const product = {
        id,
        name: "Nome do Produto",
        pricing: { amount: "100.50", currency: "BRL" },
        availability: { quantity: 3, timestamp: { seconds: "1719621003", nanos: 254878000 } },
      };
      const created = await call("CreateProduct", { product });
      expect(created.error).to.equal(null);
      expect(created.response.outcome).to.equal("WRITE_OUTCOME_CREATED");
      expect(created.response.product.pricing.amount).to.equal("100.5");
      const read = await call("GetProduct", { id });
      expect(read.response.product.version).to.equal("1");
      expect(read.response.product.availability.timestamp).to.deep.equal({ seconds: "1719621003", nanos: 254878000 });
    });

    it("receives invalid_argument with google.rpc.BadRequest in grpc-status-details-bin", async () => {
      const { error } = await call("CreateProduct", { product: { id: "x" } });
      expect(error?.code).to.equal(grpc.status.INVALID_ARGUMENT);
      const detailsBin = error?.metadata.get("grpc-status-details-bin")[0];
      expect(detailsBin).to.be.instanceOf(Buffer);
    });

    it("gets NOT_FOUND for a missing product", async () => {
      const { error } = await call("GetProduct", { id: "missing" });
      expect(error?.code).to.equal(grpc.status.NOT_FOUND);
    });
  });

  describe("invalid UTF-8 in a string field", () => {
    const procedure = "/products.v1.ProductService/CreateProduct";
    /** A CreateProductRequest whose product name holds a byte that is never valid UTF-8. */
    function withInvalidName(id: string): { json: Buffer; binary: Buffer } {
      const product = newProduct(id);
      product.name = "N#ME";
      const json = Buffer.from(JSON.stringify({ product: toJson(ProductSchema, product) }));
      const binary = Buffer.from(toBinary(CreateProductRequestSchema, create(CreateProductRequestSchema, { product })));
      for (const bytes of [json, binary]) bytes[bytes.indexOf("N#ME") + 1] = 0xff;
      return { json, binary };
    }
    const envelope = (payload: Buffer) => {
      const head = Buffer.alloc(5);
      head.writeUInt32BE(payload.length, 1);
      return Buffer.concat([head, payload]);
    };
    /** The status of a gRPC-Web response: a trailers-only header, or the body's trailer frame. */
    async function grpcWebStatus(response: Response): Promise<{ status?: string; message?: string }> {
      const header = response.headers.get("grpc-status");
      if (header !== null) return { status: header, message: response.headers.get("grpc-message") ?? undefined };
      const body = Buffer.from(await response.arrayBuffer());
      for (let at = 0; at + 5 <= body.length; at += 5 + body.readUInt32BE(at + 1)) {
        if ((body[at] ?? 0) & 0x80) {
          const lines = body
            .subarray(at + 5, at + 5 + body.readUInt32BE(at + 1))
            .toString()
            .split("\r\n");
          const fields = new Map(
            lines.map((line) => [
              line.slice(0, line.indexOf(":")).toLowerCase(),
              line.slice(line.indexOf(":") + 1).trim(),
            ]),
          );
          return { status: fields.get("grpc-status"), message: fields.get("grpc-message") };
        }
      }
      return {};
    }
    async function stored(id: string): Promise<number> {
      const { rows } = await api.knex.raw("SELECT count(*)::int AS n FROM products WHERE id = ?", [id]);
      return rows[0].n;
    }

    it("Connect JSON answers invalid_argument and stores nothing", async () => {
      const id = uniqueId("utf8");
      const response = await fetch(`${api.url}${procedure}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: withInvalidName(id).json,
      });
      expect(response.status).to.equal(400);
      const error = (await response.json()) as { code: string; message: string };
      expect(error).to.deep.include({
        code: "invalid_argument",
        message: "request body is not valid UTF-8 in product.name",
      });
      expect(await stored(id)).to.equal(0);
    });

    it("gRPC-Web JSON answers invalid_argument and stores nothing", async () => {
      const id = uniqueId("utf8");
      const response = await fetch(`${api.url}${procedure}`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web+json" },
        body: envelope(withInvalidName(id).json),
      });
      const { status, message } = await grpcWebStatus(response);
      expect(status).to.equal(String(Code.InvalidArgument));
      expect(decodeURIComponent(message ?? "")).to.equal("request body is not valid UTF-8 in product.name");
      expect(await stored(id)).to.equal(0);
    });

    // protobuf-es verifies UTF-8 in proto3 strings; connect-es calls every binary decode failure internal.
    it("Connect and gRPC-Web binary refuse it (protobuf-es verifies proto3 strings) and store nothing", async () => {
      const id = uniqueId("utf8");
      const { binary } = withInvalidName(id);
      const connect = await fetch(`${api.url}${procedure}`, {
        method: "POST",
        headers: { "content-type": "application/proto" },
        body: binary,
      });
      expect(((await connect.json()) as { message: string }).message).to.match(/^parse binary: .*UTF-8/i);
      const grpcWeb = await fetch(`${api.url}${procedure}`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web+proto" },
        body: envelope(binary),
      });
      const { status, message } = await grpcWebStatus(grpcWeb);
      expect(status).to.not.equal(undefined).and.not.equal("0");
      expect(decodeURIComponent(message ?? "")).to.match(/^parse binary: .*UTF-8/i);
      expect(await stored(id)).to.equal(0);
    });

    it("gRPC over h2c (the lean unary path) refuses it and stores nothing", async () => {
      const id = uniqueId("utf8");
      const session = http2.connect(api.url);
      try {
        const status = await new Promise<string | undefined>((resolve, reject) => {
          const stream = session.request({
            ":method": "POST",
            ":path": procedure,
            "content-type": "application/grpc",
            te: "trailers",
          });
          let grpcStatus: string | undefined;
          stream.on("response", (headers) => {
            grpcStatus ??= headers["grpc-status"] as string | undefined;
          });
          stream.on("trailers", (trailers) => {
            grpcStatus ??= trailers["grpc-status"] as string | undefined;
          });
          stream.on("error", reject);
          stream.on("close", () => resolve(grpcStatus));
          stream.resume();
          stream.end(envelope(withInvalidName(id).binary));
        });
        expect(status).to.not.equal(undefined).and.not.equal("0");
      } finally {
        session.close();
      }
      expect(await stored(id)).to.equal(0);
    });
  });

  it("rejects a message it cannot decode with an error that says so", async () => {
    const bytes = toBinary(CreateProductRequestSchema, create(CreateProductRequestSchema, { product: newProduct() }));
    const response = await fetch(`${api.url}/products.v1.ProductService/CreateProduct`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: Buffer.concat([Buffer.from(bytes), Buffer.from([0xff, 0xff, 0xff])]),
    });
    // connect-es classifies binary decode failures as "internal" (its serializer is shared with clients).
    expect(((await response.json()) as { message: string }).message).to.match(/^parse binary: /);
    const connectJson = await fetch(`${api.url}/products.v1.ProductService/CreateProduct`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"product": {',
    });
    expect(connectJson.status).to.equal(400);
    expect(((await connectJson.json()) as { code: string }).code).to.equal("invalid_argument");
  });
});

describe("RPC deadlines of the running API @integration", () => {
  const MAX_DEADLINE_MS = 500;
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ MAX_RPC_DEADLINE_MS: String(MAX_DEADLINE_MS) });
  });
  after(async () => {
    await api?.close();
  });

  const transports: [string, () => Transport][] = [
    ["gRPC over h2c", () => createGrpcTransport({ baseUrl: api.url })],
    ["Connect over HTTP/1.1", () => createConnectTransport({ baseUrl: api.url, httpVersion: "1.1" })],
    ["gRPC-Web over HTTP/1.1", () => createGrpcWebTransport({ baseUrl: api.url, httpVersion: "1.1" })],
  ];
  for (const [name, transport] of transports) {
    it(`over ${name}: a call without a deadline gets MAX_RPC_DEADLINE_MS, and one asking for more is refused`, async () => {
      const client = createClient(ProductService, transport());
      // The products table locked: the write waits for as long as the test holds the lock.
      const lock = await api.knex.transaction();
      try {
        await lock.raw("LOCK TABLE products IN ACCESS EXCLUSIVE MODE");
        const started = Date.now();
        const slow = await client
          .batchCreateProducts({ requests: [{ product: newProduct() }] })
          .catch((e: unknown) => ConnectError.from(e));
        expect(slow).to.be.instanceOf(ConnectError).with.property("code", Code.DeadlineExceeded);
        expect(Date.now() - started, "ms until deadline_exceeded")
          .to.be.at.least(MAX_DEADLINE_MS)
          .and.below(5000);
      } finally {
        await lock.rollback();
      }
      const refused = await client
        .batchCreateProducts({ requests: [{ product: newProduct() }] }, { timeoutMs: 2 * MAX_DEADLINE_MS })
        .catch((e: unknown) => ConnectError.from(e));
      expect(refused).to.be.instanceOf(ConnectError).with.property("code", Code.InvalidArgument);
      expect((refused as ConnectError).rawMessage).to.equal(
        `timeout ${2 * MAX_DEADLINE_MS}ms must be <= ${MAX_DEADLINE_MS}`,
      );
      const { results } = await client.batchCreateProducts({ requests: [{ product: newProduct() }] });
      expect(results[0]?.result.case, "a quick call without a deadline").to.equal("response");
    });
  }
});
