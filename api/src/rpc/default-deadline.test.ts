import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError, type ConnectRouter, createClient, type Transport } from "@connectrpc/connect";
import { expressConnectMiddleware } from "@connectrpc/connect-express";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { expect } from "chai";
import express from "express";
import { ServerReflection } from "#gen/grpc/reflection/v1/reflection_pb.js";
import { file_health_v1_health, Health, HealthCheckResponse_ServingStatus } from "#gen/health/v1/health_pb.js";
import { ProductService } from "#gen/products/v1/product_service_pb.js";
import { createDualProtocolServer, type DualProtocolServer } from "../http/dual-protocol-server.js";
import { serveRpcOverHttp2 } from "../http/http2-rpc-adapter.js";
import { createDefaultDeadlineInterceptor } from "./default-deadline.js";
import { registerHealthService } from "./health.js";
import { registerReflectionServices } from "./reflection.js";
import { createRpcRouter } from "./rpc-router.js";

const MAX_DEADLINE_MS = 300;

/** What a GetProduct handler saw of its call. */
interface Seen {
  signal: AbortSignal;
  timeoutMs: number | undefined;
}

describe("the default deadline of unary RPCs (MAX_RPC_DEADLINE_MS)", () => {
  const seen: Seen[] = [];
  let release: () => void = () => {};
  let released = Promise.resolve();
  let server: DualProtocolServer;
  let baseUrl: string;

  /** GetProduct "slow" waits for the test, ignoring its signal; any other id answers at once. */
  const routes = (router: ConnectRouter) => {
    router.service(ProductService, {
      async getProduct(request, context) {
        seen.push({ signal: context.signal, timeoutMs: context.timeoutMs() });
        if (request.id === "slow") await released;
        return { product: { id: request.id } };
      },
    });
    registerHealthService(router, async () => true);
    registerReflectionServices(router, [file_health_v1_health]);
  };

  before(async () => {
    // As the API wires them (api.ts): our router on HTTP/2, connect-express on HTTP/1.1.
    const options = {
      maxTimeoutMs: MAX_DEADLINE_MS,
      interceptors: [createDefaultDeadlineInterceptor(MAX_DEADLINE_MS)],
    };
    const router = createRpcRouter(options);
    routes(router);
    const app = express();
    app.use(expressConnectMiddleware({ ...options, routes }));
    server = createDualProtocolServer({
      http1: app,
      http2: serveRpcOverHttp2(router.handlers, {
        fallback: (stream) => stream.respond({ ":status": 404 }, { endStream: true }),
        onInternalError: (error) => {
          throw error;
        },
      }),
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 10_000,
    });
    baseUrl = `http://127.0.0.1:${await server.listen(0, "127.0.0.1")}`;
  });

  after(async () => {
    release();
    await server?.close(1000);
  });

  beforeEach(() => {
    seen.length = 0;
    released = new Promise((resolve) => {
      release = resolve;
    });
  });

  afterEach(() => release());

  const failure = async (call: Promise<unknown>): Promise<ConnectError> => {
    try {
      await call;
    } catch (error) {
      return ConnectError.from(error);
    }
    return expect.fail("the call succeeded");
  };

  const transports: [string, () => Transport][] = [
    ["gRPC (our unary handler, HTTP/2)", () => createGrpcTransport({ baseUrl })],
    ["Connect over HTTP/2", () => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true })],
    ["gRPC-Web over HTTP/2", () => createGrpcWebTransport({ baseUrl, httpVersion: "2" })],
    ["Connect over HTTP/1.1 (connect-express)", () => createConnectTransport({ baseUrl, httpVersion: "1.1" })],
    ["gRPC-Web over HTTP/1.1 (connect-express)", () => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })],
  ];

  for (const [name, transport] of transports) {
    describe(name, () => {
      it("when a call sets no deadline and its handler is slow, then the client gets deadline_exceeded after the default and the handler's signal aborts with it", async () => {
        const client = createClient(ProductService, transport());
        const started = performance.now();
        const error = await failure(client.getProduct({ id: "slow" }));
        const elapsed = performance.now() - started;
        expect(error.code, error.message).to.equal(Code.DeadlineExceeded);
        expect(elapsed, "ms until the answer")
          .to.be.at.least(MAX_DEADLINE_MS)
          .and.below(MAX_DEADLINE_MS + 2000);
        const [handler] = seen;
        expect(handler?.signal.aborted, "the handler's signal aborted").to.equal(true);
        expect(ConnectError.from(handler?.signal.reason).code).to.equal(Code.DeadlineExceeded);
      });

      it("when a call sets no deadline and its handler is quick, then it succeeds and the default deadline ends with it", async () => {
        const client = createClient(ProductService, transport());
        expect((await client.getProduct({ id: "quick" })).product?.id).to.equal("quick");
        await delay(MAX_DEADLINE_MS + 50);
        const [handler] = seen;
        expect(handler?.signal.aborted, "aborted when the call completed, as without a default").to.equal(true);
        expect(ConnectError.from(handler?.signal.reason).code, "not by the default deadline").to.not.equal(
          Code.DeadlineExceeded,
        );
      });

      it("when a call sets a deadline above the maximum, then it is refused as invalid_argument before its handler runs", async () => {
        const client = createClient(ProductService, transport());
        const error = await failure(client.getProduct({ id: "slow" }, { timeoutMs: 2 * MAX_DEADLINE_MS }));
        expect(error.code).to.equal(Code.InvalidArgument);
        expect(error.rawMessage).to.equal(`timeout ${2 * MAX_DEADLINE_MS}ms must be <= ${MAX_DEADLINE_MS}`);
        expect(seen).to.be.empty;
      });

      it("when a call sets a shorter deadline, then that one ends it", async () => {
        const client = createClient(ProductService, transport());
        const error = await failure(client.getProduct({ id: "slow" }, { timeoutMs: MAX_DEADLINE_MS / 3 }));
        expect(error.code).to.equal(Code.DeadlineExceeded);
        const [handler] = seen;
        expect(handler?.timeoutMs, "the handler's context knows the client's deadline").to.be.a("number");
        expect(handler?.timeoutMs).to.be.at.most(MAX_DEADLINE_MS / 3);
        const started = performance.now();
        if (!handler?.signal.aborted)
          await new Promise((resolve) => handler?.signal.addEventListener("abort", resolve));
        // By the client's deadline, or by the client going away at it: which comes first is a race.
        expect(performance.now() - started, "ms until the handler's signal aborts").to.be.below(MAX_DEADLINE_MS);
      });
    });
  }

  describe("streaming methods have no default deadline", () => {
    const streams: [string, () => Transport][] = [
      ["gRPC (connect-es's streaming handler, HTTP/2)", () => createGrpcTransport({ baseUrl })],
      ["Connect over HTTP/1.1 (connect-express)", () => createConnectTransport({ baseUrl, httpVersion: "1.1" })],
      ["gRPC-Web over HTTP/1.1 (connect-express)", () => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })],
    ];
    for (const [name, transport] of streams) {
      it(`when a health Watch over ${name} runs for three times the default, then it is still open`, async () => {
        const client = createClient(Health, transport());
        const abort = new AbortController();
        const watch = client.watch({ service: "" }, { signal: abort.signal })[Symbol.asyncIterator]();
        try {
          const first = await watch.next();
          expect(first.done ? undefined : first.value.status).to.equal(HealthCheckResponse_ServingStatus.SERVING);
          const next = watch.next().then(
            () => "answered",
            (error: unknown) => `failed: ${ConnectError.from(error).message}`,
          );
          const outcome = await Promise.race([next, delay(3 * MAX_DEADLINE_MS).then(() => "open")]);
          expect(outcome).to.equal("open");
        } finally {
          abort.abort();
          await watch.return?.().catch(() => {});
        }
      });
    }

    it("when a reflection stream over gRPC waits three times the default between requests, then both are answered", async () => {
      const client = createClient(ServerReflection, createGrpcTransport({ baseUrl }));
      const request = { messageRequest: { case: "listServices", value: "" } } as const;
      let sendSecond: () => void = () => {};
      const secondReady = new Promise<void>((resolve) => {
        sendSecond = resolve;
      });
      const requests = (async function* () {
        yield request;
        await secondReady;
        yield request;
      })();
      const responses = client.serverReflectionInfo(requests)[Symbol.asyncIterator]();
      try {
        expect((await responses.next()).done).to.equal(false);
        await delay(3 * MAX_DEADLINE_MS);
        sendSecond();
        const second = await responses.next();
        expect(second.done ? undefined : second.value.messageResponse.case).to.equal("listServicesResponse");
      } finally {
        sendSecond();
        await responses.return?.().catch(() => {});
      }
    });
  });
});
