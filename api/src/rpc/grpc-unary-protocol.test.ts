import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { expect } from "chai";
import { ProductSchema } from "#gen/products/v1/product_pb.js";
import { CreateProductRequestSchema, ProductService } from "#gen/products/v1/product_service_pb.js";
import { serveRpcOverHttp2 } from "../http/http2-rpc-adapter.js";
import { createRpcRouter } from "./rpc-router.js";

const READ_MAX_BYTES = 4096;
const CREATE = "/products.v1.ProductService/CreateProduct";

/** A ProductService whose CreateProduct behaves according to the product id it is sent. */
function routes(router: ConnectRouter): void {
  router.service(ProductService, {
    async createProduct(request, context) {
      context.responseHeader.set("x-handler", "header");
      context.responseTrailer.set("x-handler-trailer", "trailer");
      context.responseHeader.set("x-deadline", context.timeoutMs() === undefined ? "none" : "set");
      const product = request.product ?? create(ProductSchema);
      switch (product.id) {
        case "plain-error":
          throw new Error("a bug, not for clients");
        case "connect-error":
          throw new ConnectError("no such thing: é", Code.NotFound, { "x-error-meta": "m" }, [
            { desc: ProductSchema, value: { id: "detail" } },
          ]);
        case "big":
          return { product: { ...product, description: "x".repeat(3000) } };
        default:
          return { product };
      }
    },
  });
}

const addHeader: Interceptor = (next) => async (request) => {
  const response = await next(request);
  response.header.set("x-intercepted", request.method.name);
  return response;
};

const options = {
  acceptCompression: [compressionGzip, compressionBrotli],
  readMaxBytes: READ_MAX_BYTES,
  maxTimeoutMs: 10_000,
  interceptors: [addHeader],
};

interface RawCall {
  method?: string;
  headers?: http2.OutgoingHttpHeaders;
  /** Several chunks are sent as separate DATA frames. */
  body?: Uint8Array | Uint8Array[];
}

/** What a client can observe of a response, by where it arrived. */
interface Observed {
  headers: Record<string, unknown>;
  trailers: Record<string, unknown>;
  body: string;
}

const OBSERVED_HEADERS = [
  ":status",
  "content-type",
  "grpc-encoding",
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "x-error-meta",
  "x-handler",
  "x-handler-trailer",
  "x-deadline",
  "x-intercepted",
];

function pick(headers: http2.IncomingHttpHeaders): Record<string, unknown> {
  return Object.fromEntries(OBSERVED_HEADERS.filter((name) => headers[name] !== undefined).map((n) => [n, headers[n]]));
}

async function startServer(server: http2.Http2Server) {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return {
    async call({ method = "POST", headers = {}, body }: RawCall): Promise<Observed> {
      const stream = session.request({
        ":method": method,
        ":path": CREATE,
        "content-type": "application/grpc+proto",
        te: "trailers",
        ...headers,
      });
      const chunks: Buffer[] = [];
      const observed: Observed = { headers: {}, trailers: {}, body: "" };
      stream.on("response", (h) => {
        observed.headers = pick(h);
      });
      stream.on("trailers", (t) => {
        observed.trailers = pick(t);
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      for (const chunk of Array.isArray(body) ? body : [body]) {
        if (chunk === undefined) continue;
        stream.write(chunk);
        await new Promise((resolve) => setImmediate(resolve));
      }
      stream.end();
      await once(stream, "close");
      observed.body = Buffer.concat(chunks).toString("hex");
      return observed;
    },
    async close() {
      session.close();
      server.close();
      await once(server, "close");
    },
  };
}

function envelope(data: Uint8Array, flags = 0): Buffer {
  const frame = Buffer.alloc(5 + data.byteLength);
  frame.writeUInt8(flags, 0);
  frame.writeUInt32BE(data.byteLength, 1);
  frame.set(data, 5);
  return frame;
}

function request(id: string): Uint8Array {
  return toBinary(CreateProductRequestSchema, create(CreateProductRequestSchema, { product: { id, name: "Nome" } }));
}

/** Requests, valid and faulty, that both implementations must answer identically. */
const CASES: Record<string, RawCall> = {
  "a binary request": { body: envelope(request("p1")) },
  "a JSON request": {
    headers: { "content-type": "application/grpc+json" },
    body: envelope(
      Buffer.from(
        toJsonString(CreateProductRequestSchema, create(CreateProductRequestSchema, { product: { id: "j" } })),
      ),
    ),
  },
  "a message split across DATA frames": {
    body: [
      envelope(request("split")).subarray(0, 2),
      envelope(request("split")).subarray(2, 7),
      envelope(request("split")).subarray(7),
    ],
  },
  "content-type application/grpc": { headers: { "content-type": "application/grpc" }, body: envelope(request("p2")) },
  "a handler's ConnectError with details and metadata": { body: envelope(request("connect-error")) },
  "a handler's plain Error": { body: envelope(request("plain-error")) },
  "an empty body": { body: new Uint8Array(0) },
  "two messages": { body: Buffer.concat([envelope(request("a")), envelope(request("b"))]) },
  "a truncated envelope header": { body: envelope(request("p3")).subarray(0, 3) },
  "a truncated message": { body: envelope(request("p3")).subarray(0, 9) },
  "a message over readMaxBytes": { body: envelope(new Uint8Array(READ_MAX_BYTES + 1)) },
  "bytes that are not a CreateProductRequest": { body: envelope(Buffer.from([0xff, 0xff, 0xff])) },
  "a gzip-compressed request": {
    headers: { "grpc-encoding": "gzip" },
    body: envelope(gzipSync(request("zipped")), 1),
  },
  "a compressed message without grpc-encoding": { body: envelope(gzipSync(request("zipped")), 1) },
  "an unsupported grpc-encoding": { headers: { "grpc-encoding": "snappy" }, body: envelope(request("p4")) },
  "a response large enough to compress": {
    headers: { "grpc-accept-encoding": "gzip" },
    body: envelope(request("big")),
  },
  "a valid grpc-timeout": { headers: { "grpc-timeout": "5S" }, body: envelope(request("p5")) },
  "a malformed grpc-timeout": { headers: { "grpc-timeout": "soon" }, body: envelope(request("p6")) },
  "a grpc-timeout over the maximum": { headers: { "grpc-timeout": "11S" }, body: envelope(request("p7")) },
  "an unsupported content-type": { headers: { "content-type": "text/plain" }, body: envelope(request("p8")) },
  "a GET": { method: "GET" },
};

describe("gRPC unary protocol handler", () => {
  let stock: Awaited<ReturnType<typeof startServer>>;
  let ours: Awaited<ReturnType<typeof startServer>>;

  before(async () => {
    // connect-es's own gRPC handler, through its own Node adapter: the reference.
    stock = await startServer(http2.createServer(connectNodeAdapter({ ...options, routes })));
    const router = createRpcRouter(options);
    routes(router);
    const server = http2.createServer();
    server.on(
      "stream",
      serveRpcOverHttp2(router.handlers, {
        fallback: (stream) => stream.respond({ ":status": 404 }, { endStream: true }),
        onInternalError: () => {},
      }),
    );
    ours = await startServer(server);
  });

  after(async () => {
    await stock?.close();
    await ours?.close();
  });

  for (const [name, call] of Object.entries(CASES)) {
    it(`answers ${name} exactly as connect-es's gRPC handler does`, async () => {
      const expected = await stock.call(call);
      const actual = await ours.call(call);
      expect(actual).to.deep.equal(expected);
    });
  }

  it("covers success, handler errors and protocol errors among the compared cases", async () => {
    const statuses = new Set<unknown>();
    for (const call of Object.values(CASES)) {
      const { headers, trailers } = await ours.call(call);
      statuses.add(trailers["grpc-status"] ?? headers["grpc-status"] ?? headers[":status"]);
    }
    // ok, invalid_argument, not_found, resource_exhausted, unimplemented, internal, and HTTP 415/405
    expect([...statuses].map(String).sort()).to.include.members(["0", "3", "5", "8", "12", "13", "405", "415"]);
  });
});
