import { expressConnectMiddleware } from "@connectrpc/connect-express";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import express, { type Express } from "express";
import type { Knex } from "knex";
import { WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import { CONTRACT_LIMITS } from "#platform/contract-limits.js";
import type { Logger } from "#platform/logger.js";
import { createBearerCheck } from "./auth.js";
import type { ApiConfig } from "./config.js";
import { migrateToLatest } from "./db/migrations.js";
import { openDatabase } from "./db/open-database.js";
import { createOutboxSignal } from "./events/outbox-signal.js";
import { startOutboxRelayThread } from "./events/relay-thread.js";
import { createDualProtocolServer, type DualProtocolServer } from "./http/dual-protocol-server.js";
import { createHttpTranscoder } from "./http/http-transcoder.js";
import { serveRpcOverHttp2 } from "./http/http2-rpc-adapter.js";
import { strictJsonOptions } from "./http/json-body.js";
import { type ApiMetrics, createApiMetrics } from "./metrics.js";
import { createProductCatalog } from "./products/product-catalog.js";
import { createProductRepository, type ProductRepository } from "./products/product-repository.js";
import { createDocsRouter } from "./rest/docs-router.js";
import { buildOpenApiDocument } from "./rest/openapi-document.js";
import { productHttp } from "./rest/product-http.js";
import { createDefaultDeadlineInterceptor } from "./rpc/default-deadline.js";
import { createAuthInterceptor, createObservabilityInterceptor } from "./rpc/interceptors.js";
import { createProductServiceImpl } from "./rpc/product-service-impl.js";
import { createRpcRouter } from "./rpc/rpc-router.js";
import { createRpcServices } from "./rpc/rpc-services.js";

export interface RunningApi {
  port: number;
  /** Base URL, e.g. http://127.0.0.1:8000 */
  url: string;
  knex: Knex;
  metrics: ApiMetrics;
  /** Graceful: stops accepting, lets in-flight requests finish, closes the pool. */
  stop(): Promise<void>;
}

/**
 * The composition root of the API: database, use cases, REST and RPC routes, one listening port.
 * Nothing runs until start(), so tests can start real instances on port 0.
 */
export function createApi(config: ApiConfig, logger: Logger) {
  return {
    async start(): Promise<RunningApi> {
      const cleanups: (() => Promise<void>)[] = [];
      try {
        const database = await openDatabase(config, logger);
        cleanups.unshift(database.close);
        const { knex } = database;
        if (config.migrateOnStart) {
          const applied = await migrateToLatest(knex);
          if (applied.length > 0) logger.info({ migrations: applied }, "applied migrations");
        }
        const metrics = createApiMetrics();
        const relay = config.outboxRelay
          ? startOutboxRelayThread(
              {
                databaseUrl: database.url,
                kafka: config.kafka,
                logLevel: config.logLevel,
                pollIntervalMs: config.outboxPollIntervalMs,
                batchSize: config.outboxBatchSize,
                batchMaxBytes: config.outboxBatchMaxBytes,
                leaseTimeoutMs: config.outboxLeaseTimeoutMs,
                transactionalId: config.outboxTransactionalId,
              },
              logger,
              metrics,
            )
          : undefined;
        if (relay) {
          relay.start();
          // Stopped after the server: requests finishing during shutdown still get their events out.
          cleanups.unshift(() => relay.stop());
        }
        const repository = createProductRepository(knex, { onEventsWritten: createOutboxSignal(knex, relay, logger) });
        const server = buildServer(config, logger, metrics, repository);
        const port = await server.listen(config.port, config.host);
        logger.info({ port, host: config.host, auth: config.apiToken !== undefined }, "api listening");
        return {
          port,
          url: `http://127.0.0.1:${port}`,
          knex,
          metrics,
          async stop() {
            logger.info("api shutting down");
            await server.close(config.shutdownTimeoutMs);
            for (const cleanup of cleanups) await cleanup();
            logger.info("api stopped");
          },
        };
      } catch (error) {
        for (const cleanup of cleanups) await cleanup().catch(() => {});
        throw error;
      }
    },
  };
}

function buildServer(
  config: ApiConfig,
  logger: Logger,
  metrics: ApiMetrics,
  repository: ProductRepository,
): DualProtocolServer {
  const isAuthorized = createBearerCheck(config.apiToken);
  const impl = createProductServiceImpl(
    createProductCatalog(repository, {
      coalescing: {
        maxInFlight: Math.min(config.dbWriteConcurrency, config.dbPoolMax),
        maxBatch: CONTRACT_LIMITS.maxBatchItems,
        maxQueued: config.dbWriteQueueMax,
        onQueueDepth: (depth) => metrics.writeQueueDepth.set(depth),
        onNotRun: (reason) => metrics.writesNotRun.inc({ reason }),
      },
      clock: { now: Date.now, maxClockSkewMs: config.maxClockSkewMs },
      onWritten: (results) => {
        for (const { outcome } of results) metrics.productWrites.inc({ outcome: outcomeLabel(outcome) });
      },
    }),
  );
  const isReady = () =>
    repository.ping().then(
      () => true,
      () => false,
    );
  const routes = createRpcServices({ products: impl, isReady });
  const rpcOptions = {
    acceptCompression: [compressionGzip, compressionBrotli],
    readMaxBytes: config.maxBodyBytes,
    // connect-es decodes JSON bodies leniently (U+FFFD for invalid UTF-8); refuse them instead.
    jsonOptions: strictJsonOptions,
    // The cap on a client's deadline, and (the interceptor) the deadline of unary calls that set none.
    maxTimeoutMs: config.maxRpcDeadlineMs,
    interceptors: [
      createObservabilityInterceptor(metrics, logger),
      createDefaultDeadlineInterceptor(config.maxRpcDeadlineMs),
      createAuthInterceptor((authorization) => isAuthorized(authorization)),
    ],
  };
  // HTTP/2 gets our router: its gRPC unary handler is the cheap one (rpc/grpc-unary-protocol.ts).
  // HTTP/1.1 carries Connect and gRPC-Web (gRPC clients use HTTP/2): connect-express serves it.
  const http2Router = createRpcRouter(rpcOptions);
  routes(http2Router);
  const app = createExpressApp(config, logger, metrics, isReady, isAuthorized, impl);
  app.use(expressConnectMiddleware({ ...rpcOptions, routes }));
  app.use((req, res) => {
    res.status(404).json({ error: "not_found", message: `no route for ${req.method} ${req.path}` });
  });
  return createDualProtocolServer({
    http1: app,
    http2: serveRpcOverHttp2(http2Router.handlers, {
      onInternalError: (error, procedure) => logger.error({ err: error, procedure }, "rpc handler failed"),
      fallback: (stream) => {
        stream.on("error", () => {});
        stream.respond({ ":status": 404, "content-type": "application/json" });
        stream.end(JSON.stringify({ error: "not_found", message: "HTTP/2 serves RPCs only; use HTTP/1.1 for REST" }));
      },
    }),
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    http2MaxConcurrentStreams: config.http2MaxConcurrentStreams,
  });
}

function outcomeLabel(outcome: WriteOutcome): string {
  return (WriteOutcome[outcome] ?? "unspecified").toLowerCase();
}

function createExpressApp(
  config: ApiConfig,
  logger: Logger,
  metrics: ApiMetrics,
  isReady: () => Promise<boolean>,
  isAuthorized: (authorization: string | undefined) => boolean,
  impl: ReturnType<typeof createProductServiceImpl>,
): Express {
  const app = express();
  app.disable("x-powered-by");
  // Hashing every response body for an ETag costs CPU on each write; clients here never revalidate.
  app.set("etag", false);
  app.set("strict routing", true);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      // RPCs are recorded by their interceptor; here only what express routed (or nothing did).
      const route = req.route?.path as string | undefined;
      if (route === undefined && res.statusCode !== 404) return;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.requests.observe(
        { protocol: "rest", route: route ?? "unmatched", status: String(res.statusCode) },
        seconds,
      );
      if (res.statusCode >= 500)
        logger.warn({ method: req.method, path: req.path, status: res.statusCode }, "request failed");
    });
    next();
  });
  // The product routes first: every create walks the layers mounted before them.
  app.use(createHttpTranscoder(productHttp, { impl, isAuthorized, maxBodyBytes: config.maxBodyBytes }));
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", async (_req, res) => {
    if (await isReady()) res.json({ status: "ready" });
    else res.status(503).json({ error: "unavailable", message: "database unavailable" });
  });
  app.get("/metrics", async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use(createDocsRouter(buildOpenApiDocument(productHttp)));
  return app;
}
