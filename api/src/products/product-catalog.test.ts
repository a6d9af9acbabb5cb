import { create } from "@bufbuild/protobuf";
import { expect } from "chai";
import { type Product, ProductSchema } from "#gen/products/v1/product_pb.js";
import { WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import { ApiError } from "../errors.js";
import { createProductCatalog, decodePageToken, encodePageToken } from "./product-catalog.js";
import type { ProductRepository, ResultDetail, WriteResult } from "./product-repository.js";
import { parseTimestamp } from "./timestamp.js";

const NOW = Date.parse("2024-06-29T12:00:00Z");

function product(id: string, timestamp: string): { product: Product } {
  return {
    product: create(ProductSchema, {
      id,
      name: "Nome do Produto",
      pricing: { amount: "1", currency: "BRL" },
      availability: { quantity: 1, timestamp: parseTimestamp(timestamp) },
    }),
  };
}

/** Stores nothing: answers STALE for ids starting with "stale", CREATED for the rest. */
function fakeRepository(written: string[], details: (ResultDetail | undefined)[] = []): ProductRepository {
  return {
    async upsert(writes, detail) {
      details.push(detail);
      written.push(...writes.map((w) => w.product.id));
      return writes.map(({ product: p }) => ({
        product: p,
        outcome: p.id.startsWith("stale") ? WriteOutcome.STALE : WriteOutcome.CREATED,
      }));
    },
    async get() {
      return undefined;
    },
    async list() {
      return { products: [] };
    },
    async ping() {},
  };
}

describe("product catalog", () => {
  const setup = () => {
    const written: string[] = [];
    const seen: WriteResult[] = [];
    const details: (ResultDetail | undefined)[] = [];
    const catalog = createProductCatalog(fakeRepository(written, details), {
      coalescing: { maxInFlight: 1, maxBatch: 10, maxQueued: 100 },
      clock: { now: () => NOW, maxClockSkewMs: 300_000 },
      onWritten: (results) => seen.push(...results),
    });
    return { catalog, written, seen, details };
  };

  it("refuses a future-dated single create before writing it", async () => {
    const { catalog, written } = setup();
    const error = await catalog.create(product("a", "2024-06-29T12:10:00Z")).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ApiError);
    expect((error as ApiError).code).to.equal("invalid_argument");
    expect(written).to.deep.equal([]);
  });

  it("refuses only the future-dated item of a batch and writes the others", async () => {
    const { catalog, written } = setup();
    const results = await catalog.createMany([
      product("a", "2024-06-29T11:00:00Z"),
      product("b", "2024-06-29T12:10:00Z"),
      product("c", "2024-06-29T12:04:59Z"),
    ]);
    expect(results.map((r) => r.ok)).to.deep.equal([true, false, true]);
    const refused = results[1];
    expect(refused?.ok === false && refused.error.code).to.equal("invalid_argument");
    expect(written).to.deep.equal(["a", "c"]);
  });

  it("asks the repository for full products unless the batch asks for outcomes only", async () => {
    const { catalog, details } = setup();
    await catalog.create(product("one", "2024-06-29T11:00:00Z"));
    await catalog.createMany([product("a", "2024-06-29T11:00:00Z")]);
    await catalog.createMany([product("b", "2024-06-29T11:00:00Z")], "outcome");
    expect(details).to.deep.equal(["full", "full", "outcome"]);
  });

  it("reports every write's outcome, stale ones included", async () => {
    const { catalog, seen } = setup();
    await catalog.create(product("new", "2024-06-29T11:00:00Z"));
    await catalog.createMany([product("stale-1", "2024-06-29T11:00:00Z"), product("new-2", "2024-06-29T11:00:00Z")]);
    expect(seen.map((r) => r.outcome)).to.deep.equal([WriteOutcome.CREATED, WriteOutcome.STALE, WriteOutcome.CREATED]);
  });

  it("reads back the page tokens it makes, and refuses others, the (created_at, id) tokens of earlier versions included", () => {
    const cursor = { createdXid: "18446744073709551615", id: "12345" };
    expect(decodePageToken(encodePageToken(cursor))).to.deep.equal(cursor);
    const token = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    for (const forged of [
      token(["2024-06-29T00:30:03.254878Z", "12345"]),
      token(["18446744073709551616", "12345"]),
      token(["-1", "12345"]),
      token(["12", "12345", "x"]),
      "bm90LWEtdG9rZW4",
    ]) {
      expect(() => decodePageToken(forged), forged).to.throw(ApiError, "page_token");
    }
  });
});
