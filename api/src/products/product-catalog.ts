import type { Product } from "#gen/products/v1/product_pb.js";
import { CONTRACT_LIMITS } from "#platform/contract-limits.js";
import { ApiError, asApiError, invalidArgument } from "../errors.js";
import type { ListCursor, ProductRepository, WriteResult } from "./product-repository.js";
import { parseTimestamp } from "./timestamp.js";
import { type ClockPolicy, validateProduct } from "./validation.js";
import { createWriteCoalescer, type WriteCoalescerOptions } from "./write-coalescer.js";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export type BatchItemResult = { ok: true; result: WriteResult } | { ok: false; error: ApiError };

/**
 * The product use cases. REST and RPC entry points both call these, so validation and upsert
 * semantics live in exactly one place.
 */
export interface ProductCatalog {
  /** Writes one product; `signal` aborting (the client gone) while it waits for a statement skips it. */
  create(product: Product | undefined, signal?: AbortSignal): Promise<WriteResult>;
  /** Validates each item; writes the valid ones in order, in one transaction. */
  createMany(products: readonly (Product | undefined)[]): Promise<BatchItemResult[]>;
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
  const upsert = async (products: readonly Product[]) => {
    const results = await repository.upsert(products);
    options.onWritten?.(results);
    return results;
  };
  const write = createWriteCoalescer(upsert, options.coalescing);
  const validate = (input: Product | undefined) => validateProduct(input, options.clock);
  return {
    async create(input, signal) {
      const checked = validate(input);
      if (!checked.ok) throw invalidArgument(checked.violations);
      return write(checked.product, signal);
    },

    async createMany(inputs) {
      if (inputs.length > CONTRACT_LIMITS.maxBatchItems) {
        throw invalidArgument(
          [{ field: "requests", description: `must hold at most ${CONTRACT_LIMITS.maxBatchItems} items` }],
          "request",
        );
      }
      const checked = inputs.map((input) => validate(input));
      const valid = checked.flatMap((c) => (c.ok ? [c.product] : []));
      const written = valid.length > 0 ? await upsert(valid) : [];
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

export function encodePageToken(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString("base64url");
}

export function decodePageToken(token: string): ListCursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === "string")) {
      const [createdAt, id] = value as [string, string];
      if (parseTimestamp(createdAt)) return { createdAt, id };
    }
  } catch {
    // fall through to the error below
  }
  throw invalidArgument(
    [{ field: "page_token", description: "is not a token returned by a previous page" }],
    "request",
  );
}
