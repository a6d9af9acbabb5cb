import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { expect } from "chai";
import { type Product, ProductSchema, SourcePositionSchema } from "#gen/products/v1/product_pb.js";
import { parseTimestamp } from "./timestamp.js";
import { validateProduct, validateWrite } from "./validation.js";

type ProductInit = Exclude<MessageInitShape<typeof ProductSchema>, Product>;

function product(overrides: ProductInit = {}): Product {
  return create(ProductSchema, {
    id: "12345",
    name: "Nome do Produto",
    description: "Descrição do Produto",
    pricing: { amount: "100.0", currency: "BRL" },
    availability: { quantity: 50, timestamp: parseTimestamp("2024-06-29T00:30:03.254878") },
    category: "Categoria do Produto",
    ...overrides,
  });
}

function fieldsOf(input: Product | undefined): string[] {
  const result = validateProduct(input);
  return result.ok ? [] : result.violations.map((v) => v.field);
}

describe("product validation", () => {
  it("accepts the original project's sample and canonicalises it", () => {
    const result = validateProduct(product({ version: 7n }));
    expect(result.ok).to.equal(true);
    if (!result.ok) return;
    expect(result.product.pricing?.amount).to.equal("100");
    expect(result.product.version).to.equal(0n); // server-set fields are ignored
    expect(result.product.description).to.equal("Descrição do Produto");
  });

  it("requires the product, id, name, pricing and availability", () => {
    expect(fieldsOf(undefined)).to.deep.equal(["product"]);
    expect(fieldsOf(create(ProductSchema))).to.have.members(["id", "name", "pricing", "availability"]);
    expect(fieldsOf(product({ pricing: { amount: "", currency: "" }, availability: { quantity: 1 } }))).to.have.members(
      ["pricing.amount", "pricing.currency", "availability.timestamp"],
    );
  });

  it("bounds text fields, counting characters rather than UTF-16 units", () => {
    expect(fieldsOf(product({ id: "x".repeat(129) }))).to.deep.equal(["id"]);
    expect(fieldsOf(product({ id: "é".repeat(128) }))).to.deep.equal([]);
    expect(fieldsOf(product({ name: "🙂".repeat(256) }))).to.deep.equal([]);
    expect(fieldsOf(product({ name: "n".repeat(257) }))).to.deep.equal(["name"]);
    expect(fieldsOf(product({ description: "d".repeat(4001) }))).to.deep.equal(["description"]);
    expect(fieldsOf(product({ category: "c".repeat(129) }))).to.deep.equal(["category"]);
  });

  it("rejects unprintable ids and names, blank names and lone surrogates", () => {
    expect(fieldsOf(product({ id: "a\u0000b" }))).to.deep.equal(["id"]);
    expect(fieldsOf(product({ id: " padded " }))).to.deep.equal(["id"]);
    expect(fieldsOf(product({ name: "   " }))).to.deep.equal(["name"]);
    expect(fieldsOf(product({ name: "bad\ud800" }))).to.deep.equal(["name"]);
    expect(fieldsOf(product({ description: "line one\nline two\ttab" }))).to.deep.equal([]);
    expect(fieldsOf(product({ description: "nul\u0000" }))).to.deep.equal(["description"]);
  });

  it("stores SQL-looking text as ordinary text", () => {
    expect(fieldsOf(product({ id: "1'; DROP TABLE products; --" }))).to.deep.equal([]);
  });

  it("checks currency, amount and quantity", () => {
    expect(fieldsOf(product({ pricing: { amount: "1", currency: "brl" } }))).to.deep.equal(["pricing.currency"]);
    expect(fieldsOf(product({ pricing: { amount: "1", currency: "REAL" } }))).to.deep.equal(["pricing.currency"]);
    expect(fieldsOf(product({ pricing: { amount: "-1", currency: "BRL" } }))).to.deep.equal(["pricing.amount"]);
    expect(fieldsOf(product({ pricing: { amount: "1.00001", currency: "BRL" } }))).to.deep.equal(["pricing.amount"]);
    const timestamp = parseTimestamp("2024-06-29T00:00:00Z");
    expect(fieldsOf(product({ availability: { quantity: -1, timestamp } }))).to.deep.equal(["availability.quantity"]);
    expect(fieldsOf(product({ availability: { quantity: 2 ** 31 - 1, timestamp } }))).to.deep.equal([]);
  });

  it("rejects timestamps outside google.protobuf.Timestamp's range", () => {
    const result = fieldsOf(
      product({ availability: { quantity: 1, timestamp: { seconds: 253402300800n, nanos: 0 } } }),
    );
    expect(result).to.deep.equal(["availability.timestamp"]);
  });

  it("truncates timestamps to microseconds", () => {
    const result = validateProduct(
      product({ availability: { quantity: 1, timestamp: parseTimestamp("2024-06-29T00:00:00.123456789Z") } }),
    );
    expect(result.ok && result.product.availability?.timestamp?.nanos).to.equal(123456000);
  });

  describe("with a clock", () => {
    const now = Date.parse("2024-06-29T12:00:00Z");
    const clock = { now: () => now, maxClockSkewMs: 300_000 };
    const at = (text: string) =>
      validateProduct(product({ availability: { quantity: 1, timestamp: parseTimestamp(text) } }), clock);

    it("accepts timestamps in the past, now, and up to the allowed skew ahead", () => {
      expect(at("2024-06-29T00:30:03.254878").ok).to.equal(true);
      expect(at("2024-06-29T12:00:00Z").ok).to.equal(true);
      expect(at("2024-06-29T12:05:00Z").ok).to.equal(true);
    });

    it("rejects a timestamp further ahead of the clock than the allowed skew", () => {
      const result = at("2024-06-29T12:05:00.001Z");
      expect(result.ok).to.equal(false);
      if (result.ok) return;
      expect(result.violations.map((v) => v.field)).to.deep.equal(["availability.timestamp"]);
      expect(result.violations[0]?.description).to.contain("300000 ms ahead");
      expect(at("9999-12-31T23:59:59Z").ok).to.equal(false);
    });

    it("reads the clock at each validation", () => {
      let current = now;
      const moving = { now: () => current, maxClockSkewMs: 0 };
      const later = product({ availability: { quantity: 1, timestamp: parseTimestamp("2024-06-29T12:00:01Z") } });
      expect(validateProduct(later, moving).ok).to.equal(false);
      current += 1000;
      expect(validateProduct(later, moving).ok).to.equal(true);
    });
  });

  it("takes a write's Kafka source position as it is, and names each invalid part of it", () => {
    const source = { topic: "cadastro-produtos.v2_A", partition: 0, offset: 0n };
    const ok = validateWrite({ product: product(), source: create(SourcePositionSchema, source) });
    expect(ok.ok && ok.write.source).to.deep.include(source);
    const none = validateWrite({ product: product() });
    expect(none.ok && none.write.source, "a direct write").to.equal(undefined);
    const bad = validateWrite({
      product: product({ name: "" }),
      source: create(SourcePositionSchema, { topic: "a/b", partition: -1, offset: -1n }),
    });
    expect(bad.ok ? [] : bad.violations.map((v) => v.field)).to.deep.equal([
      "name",
      "source.topic",
      "source.partition",
      "source.offset",
    ]);
    for (const topic of ["", "x".repeat(250), "café"]) {
      const result = validateWrite({ product: product(), source: create(SourcePositionSchema, { topic }) });
      expect(result.ok, JSON.stringify(topic)).to.equal(false);
    }
  });
});
