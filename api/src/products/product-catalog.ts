import type { Product } from "#gen/products/v1/product_pb.js";
import { CONTRACT_LIMITS } from "#platform/contract-limits.js";
import { ApiError, asApiError, invalidArgument } from "../errors.js";
import type { ListCursor, ProductRepository, ProductWrite, ResultDetail, WriteResult } from "./product-repository.js";
import { type ClockPolicy, validateWrite, type WriteRequest } from "./validation.js";
import { createWriteCoalescer, type WriteCoalescerOptions } from "./write-coalescer.js";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export type BatchItemResult = { ok: true; result: WriteResult } | { ok: false; error: ApiError };

/**
 * The product use cases. REST and RPC entry points both call these, so validation and upsert
 * semantics live in exactly one place.
 */
export interface ProductCatalog {
  /**
   * Validates and writes one product (with its Kafka source position, if it has one); `signal`
   * aborting (the client gone) while it waits for a statement skips it.
   */
  create(request: WriteRequest, signal?: AbortSignal): Promise<WriteResult>;
  /**
   * Validates each item; writes the valid ones in order, in one transaction. With "outcome" the
   * results' products hold only id and version.
   */
  createMany(requests: readonly WriteRequest[], detail?: ResultDetail): Promise<BatchItemResult[]>;
  get(id: string): Promise<Product>;
  list(pageSize: number, pageToken: string): Promise<{ products: Product[]; nextPageToken: string }>;
}

export interface ProductCatalogOptions {
  coalescing: WriteCoalescerOptions;
  clock: ClockPolicy;
  /** Told every write's results, e.g. to count outcomes: a STALE write is persisted, yet changes nothing. */
  onWritten?: (results: readonly WriteResult[]) => void;
}

export function createProductCatalog(repository: ProductRepository, options: ProductCatalogOptions): ProductCatalog {
  const upsert = async (writes: readonly ProductWrite[], detail: ResultDetail = "full") => {
    const results = await repository.upsert(writes, detail);
    options.onWritten?.(results);
    return results;
  };
  const write = createWriteCoalescer(upsert, options.coalescing);
  const validate = (request: WriteRequest) => validateWrite(request, options.clock);
  return {
    async create(request, signal) {
      const checked = validate(request);
      if (!checked.ok) throw invalidArgument(checked.violations);
      return write(checked.write, signal);
    },

    async createMany(inputs, detail = "full") {
      if (inputs.length > CONTRACT_LIMITS.maxBatchItems) {
        throw invalidArgument(
          [{ field: "requests", description: `must hold at most ${CONTRACT_LIMITS.maxBatchItems} items` }],
          "request",
        );
      }
      const checked = inputs.map((input) => validate(input));
      const valid = checked.flatMap((c) => (c.ok ? [c.write] : []));
      const written = valid.length > 0 ? await upsert(valid, detail) : [];
      let next = 0;
      return checked.map((c): BatchItemResult => {
        if (!c.ok) return { ok: false, error: invalidArgument(c.violations) };
        const result = written[next++];
        return result ? { ok: true, result } : { ok: false, error: asApiError(new Error("missing batch result")) };
      });
    },

    async get(id) {
      if (id === "") throw invalidArgument([{ field: "id", description: "is required" }], "request");
      const product = await repository.get(id);
      if (!product) throw new ApiError("not_found", `product ${JSON.stringify(id)} not found`);
      return product;
    },

    async list(pageSize, pageToken) {
      if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
        throw invalidArgument(
          [{ field: "page_size", description: `must be an integer from 1 to ${MAX_PAGE_SIZE}` }],
          "request",
        );
      }
      const after = pageToken === "" ? undefined : decodePageToken(pageToken);
      const page = await repository.list(pageSize || DEFAULT_PAGE_SIZE, after);
      return { products: page.products, nextPageToken: page.next ? encodePageToken(page.next) : "" };
    },
  };
}

/** An xid8 in decimal: 1 to 20 digits, within 2^64. */
const XID8 = /^\d{1,20}$/;

export function encodePageToken(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdXid, cursor.id])).toString("base64url");
}

/** Reads a token of encodePageToken; the (created_at, id) tokens of earlier versions are refused. */
export function decodePageToken(token: string): ListCursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === "string")) {
      const [createdXid, id] = value as [string, string];
      if (XID8.test(createdXid) && BigInt(createdXid) < 2n ** 64n) return { createdXid, id };
    }
  } catch {
    // fall through to the error below
  }
  throw invalidArgument(
    [{ field: "page_token", description: "is not a token returned by a previous page" }],
    "request",
  );
}
