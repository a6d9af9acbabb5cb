import http from "node:http";
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import pg from "pg";
import { ProductSchema } from "#gen/products/v1/product_pb.js";
import {
  CreateProductRequestSchema,
  CreateProductResponseSchema,
  WriteOutcome,
} from "#gen/products/v1/product_service_pb.js";
import type { ApiConfig } from "../../api/src/config.js";
import { pgTypes } from "../../api/src/db/database.js";
import { UPSERT_STATEMENT, upsertBindings } from "../../api/src/products/product-repository.js";
import { parseTimestamp } from "../../api/src/products/timestamp.js";
import type { ApiBenchOptions, PhaseName } from "./options.js";

/** One way of creating a product, driven by the closed loop: a phase's load generator. */
export interface Load {
  create(id: string): Promise<void>;
  close(): Promise<void>;
}

/** The seed body's content; only the id changes per create. */
const SEED = {
  name: "Nome do Produto",
  description: "Descrição do Produto",
  amount: 19.99,
  currency: "BRL",
  quantity: 5,
  timestamp: "2024-06-29T00:30:03.254878",
  category: "Categoria do Produto",
};
const SEED_TIMESTAMP = parseTimestamp(SEED.timestamp);
if (!SEED_TIMESTAMP) throw new Error(`unreadable seed timestamp ${SEED.timestamp}`);

/** The seed as the API's validated product: what the gRPC request carries and the baseline binds. */
const SEED_PRODUCT = create(ProductSchema, {
  name: SEED.name,
  description: SEED.description,
  pricing: { amount: String(SEED.amount), currency: SEED.currency },
  availability: { quantity: SEED.quantity, timestamp: SEED_TIMESTAMP },
  category: SEED.category,
});

export function createLoad(
  phase: PhaseName,
  options: ApiBenchOptions,
  config: ApiConfig,
  databaseUrl: string,
  apiUrl: string,
): Load {
  switch (phase) {
    case "baseline":
      return createBaselineLoad(config, databaseUrl);
    case "rest":
      return createRestLoad(apiUrl, options.concurrency);
    case "grpc":
      return createGrpcLoad(apiUrl, options.concurrency);
  }
}

/**
 * The ceiling: the API's own prepared statement and bindings (single-row arrays) through a pool of
 * the API's size and settings, so PostgreSQL does the same work as behind the API.
 */
function createBaselineLoad(config: ApiConfig, databaseUrl: string): Load {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: config.dbPoolMax,
    connectionTimeoutMillis: config.dbConnectTimeoutMs,
    statement_timeout: config.dbStatementTimeoutMs,
    options: "-c TimeZone=UTC",
    types: pgTypes,
  });
  return {
    async create(id) {
      const { rows } = await pool.query<{ id: string; inserted: boolean }>({
        ...UPSERT_STATEMENT,
        values: upsertBindings([{ product: { ...SEED_PRODUCT, id } }]),
      });
      if (rows.length !== 1 || rows[0]?.id !== id || rows[0].inserted !== true) {
        throw new Error(`baseline: expected one inserted row, got ${rows.length}`);
      }
    },
    close: () => pool.end(),
  };
}

/** `POST /products/` with the seed body over keep-alive HTTP/1.1; expects 201 and the created product. */
export function createRestLoad(apiUrl: string, concurrency: number): Load {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const { hostname, port } = new URL(apiUrl);
  return {
    create(id) {
      const body = JSON.stringify({
        id,
        name: SEED.name,
        description: SEED.description,
        pricing: { amount: SEED.amount, currency: SEED.currency },
        availability: { quantity: SEED.quantity, timestamp: SEED.timestamp },
        category: SEED.category,
      });
      return new Promise<void>((resolve, reject) => {
        const req = http.request(
          {
            agent,
            hostname,
            port,
            method: "POST",
            path: "/products/",
            headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("error", reject);
            res.on("end", () => {
              const text = Buffer.concat(chunks).toString("utf8");
              if (res.statusCode !== 201) {
                reject(new Error(`rest: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
              } else if ((JSON.parse(text) as { id?: unknown }).id !== id) {
                reject(new Error("rest: response is not the created product"));
              } else {
                resolve();
              }
            });
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    },
    async close() {
      agent.destroy();
    },
  };
}

/**
 * gRPC over h2c with a lean client: a few HTTP/2 sessions, each request one length-prefixed
 * CreateProductRequest, the answer checked from its trailers and decoded. Like h2load or ghz, it
 * keeps the load generator's CPU small, since it shares the machine's two cores with the server
 * (the generated Connect client costs about 0.7 ms of CPU per call; it is tested in api/test).
 */
export function createGrpcLoad(apiUrl: string, concurrency: number): Load {
  const sessions = Array.from({ length: Math.max(1, Math.ceil(concurrency / 16)) }, () => http2.connect(apiUrl));
  for (const session of sessions) session.on("error", () => {});
  let next = 0;
  return {
    create(id) {
      const message = toBinary(
        CreateProductRequestSchema,
        create(CreateProductRequestSchema, { product: { ...SEED_PRODUCT, id } }),
      );
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      const session = sessions[next++ % sessions.length] as http2.ClientHttp2Session;
      return new Promise<void>((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/products.v1.ProductService/CreateProduct",
          "content-type": "application/grpc+proto",
          te: "trailers",
        });
        const chunks: Buffer[] = [];
        let status: string | undefined;
        let statusMessage: string | undefined;
        stream.on("response", (headers) => {
          status = headers["grpc-status"] as string | undefined;
          statusMessage = headers["grpc-message"] as string | undefined;
        });
        stream.on("trailers", (trailers) => {
          status = trailers["grpc-status"] as string | undefined;
          statusMessage = trailers["grpc-message"] as string | undefined;
        });
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("error", reject);
        stream.on("end", () => {
          if (status !== "0") return reject(new Error(`grpc: status ${status}: ${statusMessage ?? ""}`));
          const body = Buffer.concat(chunks);
          const response = fromBinary(CreateProductResponseSchema, body.subarray(5, 5 + body.readUInt32BE(1)));
          if (response.outcome !== WriteOutcome.CREATED || response.product?.id !== id) {
            return reject(new Error(`grpc: expected CREATED, got ${WriteOutcome[response.outcome]}`));
          }
          resolve();
        });
        stream.end(frame);
      });
    },
    async close() {
      for (const session of sessions) session.close();
    },
  };
}
