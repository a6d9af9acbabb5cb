import http from "node:http";
import type http2 from "node:http2";
import https from "node:https";
import { toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import type { Product } from "#gen/products/v1/product_pb.js";
import {
  type BatchCreateProductsRequest,
  BatchCreateProductsRequestSchema,
  ProductService,
  ResultView,
  type WriteOutcome,
} from "#gen/products/v1/product_service_pb.js";
import type { SchedulerConfig } from "./config.js";

/**
 * A product to upsert and the input record it comes from: the API orders writes with equal
 * availability timestamps by this position, so a replayed record changes nothing.
 */
export interface SourcedProduct {
  product: Product;
  source: { topic: string; partition: number; offset: bigint };
}

/** What the API did with one product of a batch. */
export type ItemResult =
  | { ok: true; outcome: WriteOutcome; version: bigint }
  | { ok: false; code: string; message: string };

/** The scheduler's view of the product API. */
export interface ProductApi {
  /**
   * Upserts the products in order, in one API transaction, and returns one result per product.
   * Throws a ConnectError when the call as a whole fails; see isPermanentItemError.
   */
  batchCreate(writes: readonly SourcedProduct[]): Promise<ItemResult[]>;
  /** Closes pooled connections. */
  close(): void;
}

/**
 * The generated Connect client over the configured protocol. gRPC needs HTTP/2 (h2c for http://
 * URLs); Connect and gRPC-Web use HTTP/1.1, which is why one picks them: they pass through proxies
 * and load balancers that do not speak HTTP/2. Binary protobuf on all three. Every call carries a
 * deadline (timeoutMs) and, when a token is configured, "Authorization: Bearer <token>".
 */
export function createProductApi(config: SchedulerConfig["api"]): ProductApi {
  const interceptors: Interceptor[] = [];
  const { token } = config;
  if (token !== undefined) {
    interceptors.push((next) => (request) => {
      request.header.set("authorization", `Bearer ${token}`);
      return next(request);
    });
  }
  const { transport, close } = createTransport(config, interceptors);
  const client = createClient(ProductService, transport);
  return {
    async batchCreate(writes) {
      const response = await client.batchCreateProducts(batchRequest(writes), { timeoutMs: config.timeoutMs });
      if (response.results.length !== writes.length) {
        throw new ConnectError(
          `BatchCreateProducts answered ${response.results.length} results for ${writes.length} products`,
          Code.Internal,
        );
      }
      return response.results.map((item): ItemResult => {
        switch (item.result.case) {
          case "response":
            return {
              ok: true,
              outcome: item.result.value.outcome,
              version: item.result.value.product?.version ?? 0n,
            };
          case "error":
            return { ok: false, code: item.result.value.code, message: item.result.value.message };
          default:
            return { ok: false, code: "internal", message: "BatchCreateProducts answered an empty result" };
        }
      });
    },
    close,
  };
}

/**
 * connect-node 2.2 can destroy an idle HTTP/2 session on GOAWAY (an API restarting gracefully)
 * after it has removed its own error listeners, so the error is uncaught and kills the process
 * (connectrpc/connect-es#1768). Every session this manager opens gets a listener of its own; the
 * manager still sees and handles the errors, and the next call reconnects.
 */
class GoawaySafeSessionManager extends Http2SessionManager {
  private readonly guarded = new WeakSet<http2.ClientHttp2Session>();

  override async connect() {
    const state = await super.connect();
    this.guardSession();
    return state;
  }

  override async request(...args: Parameters<Http2SessionManager["request"]>) {
    const stream = await super.request(...args);
    this.guardSession();
    return stream;
  }

  private guardSession(): void {
    const session = (this as unknown as { s: { conn?: http2.ClientHttp2Session } }).s.conn;
    if (session && !this.guarded.has(session)) {
      this.guarded.add(session);
      session.on("error", () => {});
    }
  }
}

function createTransport(
  config: SchedulerConfig["api"],
  interceptors: Interceptor[],
): { transport: Transport; close: () => void } {
  // No compression: between services on one network, gzip costs both sides more CPU than the
  // bytes it saves (about 5 % of the scheduler's CPU, decompressing responses).
  const common = { baseUrl: config.url, useBinaryFormat: true, interceptors, acceptCompression: [] };
  if (config.protocol === "grpc") {
    const sessionManager = new GoawaySafeSessionManager(config.url, { idleConnectionTimeoutMs: 60_000 });
    return {
      transport: createGrpcTransport({ ...common, sessionManager }),
      close: () => sessionManager.abort(),
    };
  }
  const agent = config.url.startsWith("https:")
    ? new https.Agent({ keepAlive: true })
    : new http.Agent({ keepAlive: true });
  const options = { ...common, httpVersion: "1.1" as const, nodeOptions: { agent } };
  return {
    transport: config.protocol === "connect" ? createConnectTransport(options) : createGrpcWebTransport(options),
    close: () => agent.destroy(),
  };
}

/**
 * Item results that say the product is wrong, so retrying cannot help: the record is dead-lettered.
 * A call that fails as a whole is always retried instead, whatever its code: the API reports a
 * product's faults per item, so a call-level invalid_argument is the deployment's (a deadline above
 * MAX_RPC_DEADLINE_MS, a batch above its limit), and internal or unknown are the API's own.
 */
export function isPermanentItemError(code: string): boolean {
  return code === "invalid_argument" || code === "out_of_range";
}

/** connect-es's answer for a request over readMaxBytes (the API's MAX_BODY_BYTES), on every protocol. */
const OVER_READ_MAX_BYTES = /^message size (?:\d+ )?is larger than configured readMaxBytes (\d+)$/;

/**
 * When a failed call was refused for the size of its request, the limit that refused it, in words
 * for a dead letter; undefined for any other failure (resource_exhausted for load, say). The API
 * answers resource_exhausted with connect-es's readMaxBytes message over gRPC, gRPC-Web and
 * Connect alike; a proxy's HTTP 413 without a gRPC or Connect error body reaches connect-es's
 * clients as unknown "HTTP 413" on every protocol. (A 413 whose body is a JSON error, over the
 * Connect protocol, shows its message instead: it cannot be told apart and is retried.)
 */
export function sizeRefusal(error: ConnectError): string | undefined {
  if (error.code === Code.ResourceExhausted) {
    const limit = OVER_READ_MAX_BYTES.exec(error.rawMessage)?.[1];
    return limit === undefined ? undefined : `the API's MAX_BODY_BYTES (${limit})`;
  }
  if (error.code === Code.Unknown && error.rawMessage === "HTTP 413") {
    return "the body limit of a proxy in front of the API (it answered HTTP 413)";
  }
  return undefined;
}

/**
 * The BatchCreateProducts request for these products. RESULT_VIEW_OUTCOME: the scheduler reads only
 * each result's outcome and version, so the API need not build, encode and send the products back.
 * Literals of the generated types (tsc checks them), so the client's create() has nothing to convert.
 */
export function batchRequest(writes: readonly SourcedProduct[]): BatchCreateProductsRequest {
  return {
    $typeName: "products.v1.BatchCreateProductsRequest",
    requests: writes.map(({ product, source }) => ({
      $typeName: "products.v1.CreateProductRequest",
      product,
      source: { $typeName: "products.v1.SourcePosition", ...source },
    })),
    resultView: ResultView.OUTCOME,
  };
}

/** Bytes of the BatchCreateProducts request that carries these products (protobuf binary, as sent). */
export function requestBytes(writes: readonly SourcedProduct[]): number {
  return toBinary(BatchCreateProductsRequestSchema, batchRequest(writes)).length;
}
