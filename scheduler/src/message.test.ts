import { create, toBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { expect } from "chai";
import { ProductRegistrationSchema } from "#gen/products/v1/events_pb.js";
import type { RecordError } from "./errors.js";
import { type InputRecord, parseRecord } from "./message.js";

/** The seed producer's message, byte for byte as produce_message.py sent it. */
const SEED_JSON =
  '{"productId":"12345","productName":"Nome do Produto","productDescription":"Descrição do Produto","price":100.0,"currency":"BRL","stockQuantity":50,"category":"Categoria do Produto"}';
const RECORD_TIME = "1719621003254"; // 2024-06-29T00:30:03.254Z

function record(value: string | Buffer | null, headers?: InputRecord["headers"]): InputRecord {
  return { value: typeof value === "string" ? Buffer.from(value) : value, headers, timestamp: RECORD_TIME };
}

function seedWith(changes: Record<string, unknown>): string {
  const json = JSON.parse(SEED_JSON) as Record<string, unknown>;
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete json[name];
    else json[name] = value;
  }
  return JSON.stringify(json);
}

function rejection(input: InputRecord): RecordError {
  const parsed = parseRecord(input, 1024);
  if (parsed.ok) expect.fail(`accepted ${input.value?.toString()}`);
  return parsed.error;
}

describe("parseRecord: an input record becomes a product", () => {
  it("when the record holds the seed's JSON, then every field is mapped and the time is the record's", () => {
    const parsed = parseRecord(record(SEED_JSON));
    if (!parsed.ok) expect.fail(parsed.error.message);
    const { product } = parsed;
    expect(product.id).to.equal("12345");
    expect(product.name).to.equal("Nome do Produto");
    expect(product.description).to.equal("Descrição do Produto");
    expect(product.pricing?.amount).to.equal("100");
    expect(product.pricing?.currency).to.equal("BRL");
    expect(product.availability?.quantity).to.equal(50);
    expect(product.category).to.equal("Categoria do Produto");
    const timestamp = product.availability?.timestamp;
    expect(timestamp && timestampDate(timestamp).toISOString()).to.equal("2024-06-29T00:30:03.254Z");
  });

  it("when the same record is read twice, then both products are identical (no wall clock)", () => {
    const first = parseRecord(record(SEED_JSON));
    const second = parseRecord(record(SEED_JSON));
    expect(first).to.deep.equal(second);
  });

  it("when price is a JSON number, then it becomes its exact decimal text", () => {
    for (const [price, text] of [
      [19.99, "19.99"],
      [0.1, "0.1"],
      [123456789012.3456, "123456789012.3456"],
      [0, "0"],
    ] as const) {
      const parsed = parseRecord(record(seedWith({ price })));
      if (!parsed.ok) expect.fail(parsed.error.message);
      expect(parsed.product.pricing?.amount).to.equal(text);
    }
  });

  it("when price is a decimal string (the protobuf JSON form), then it is passed through", () => {
    const parsed = parseRecord(record(seedWith({ price: "19.90" })));
    if (!parsed.ok) expect.fail(parsed.error.message);
    expect(parsed.product.pricing?.amount).to.equal("19.90");
  });

  it("when description and category are absent, then they are empty", () => {
    const parsed = parseRecord(record(seedWith({ productDescription: undefined, category: null })));
    if (!parsed.ok) expect.fail(parsed.error.message);
    expect(parsed.product.description).to.equal("");
    expect(parsed.product.category).to.equal("");
  });

  it("when the content-type is application/json with parameters, then the value is read as JSON", () => {
    const parsed = parseRecord(record(SEED_JSON, { "Content-Type": Buffer.from("application/json; charset=utf-8") }));
    expect(parsed.ok).to.equal(true);
  });

  it("when the record is a protobuf ProductRegistration, then it is mapped the same way", () => {
    const value = toBinary(
      ProductRegistrationSchema,
      create(ProductRegistrationSchema, {
        productId: "p-1",
        productName: "Nome",
        productDescription: "Descrição",
        price: "19.99",
        currency: "BRL",
        stockQuantity: 7,
        category: "Cat",
      }),
    );
    const parsed = parseRecord(record(Buffer.from(value), { "content-type": Buffer.from("application/x-protobuf") }));
    if (!parsed.ok) expect.fail(parsed.error.message);
    expect(parsed.product.id).to.equal("p-1");
    expect(parsed.product.description).to.equal("Descrição");
    expect(parsed.product.pricing?.amount).to.equal("19.99");
    expect(parsed.product.availability?.quantity).to.equal(7);
    const timestamp = parsed.product.availability?.timestamp;
    expect(timestamp && timestampDate(timestamp).getTime()).to.equal(Number(RECORD_TIME));
  });
});

describe("parseRecord: a record that can never become a product is a classified error", () => {
  it("when the value is not JSON, then invalid_json", () => {
    const error = rejection(record('{"productId": "1", '));
    expect(error.code).to.equal("invalid_json");
    expect(error.message).to.match(/not JSON/);
  });

  it("when the value is not UTF-8, then invalid_json", () => {
    expect(rejection(record(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))).code).to.equal("invalid_json");
  });

  it("when the JSON is not an object, then invalid_json naming what it is", () => {
    const error = rejection(record("[1,2]"));
    expect(error.code).to.equal("invalid_json");
    expect(error.message).to.match(/an array/);
  });

  it("when a required field is missing or null, then missing_field naming it", () => {
    for (const field of ["productId", "productName", "price", "currency", "stockQuantity"]) {
      for (const absent of [undefined, null]) {
        const error = rejection(record(seedWith({ [field]: absent })));
        expect(error.code, field).to.equal("missing_field");
        expect(error.field).to.equal(field);
        expect(error.message).to.equal(`${field}: is required`);
      }
    }
  });

  it("when a field has the wrong type, then invalid_field naming it and the type", () => {
    const cases: [string, unknown, RegExp][] = [
      ["productId", 12345, /productId: expected a string, got number 12345/],
      ["productId", "", /productId: must not be empty/],
      ["productName", ["a"], /productName: expected a string, got an array/],
      ["price", "", /price: must not be empty/],
      ["price", true, /price: expected a number or a decimal string, got boolean true/],
      ["price", 1e21, /price: 1e\+21 is out of range/],
      ["stockQuantity", "fifty", /stockQuantity: expected an integer, got "fifty"/],
      ["stockQuantity", 1.5, /stockQuantity: expected an integer/],
      ["stockQuantity", 2 ** 31, /stockQuantity: 2147483648 is out of range/],
      ["category", { a: 1 }, /category: expected a string, got an object/],
    ];
    for (const [field, value, message] of cases) {
      const error = rejection(record(seedWith({ [field]: value })));
      expect(error.code, `${field}=${JSON.stringify(value)}`).to.equal("invalid_field");
      expect(error.field).to.equal(field);
      expect(error.message).to.match(message);
    }
  });

  it("when several fields are bad, then the message names each of them", () => {
    const error = rejection(record(seedWith({ productId: undefined, price: "x", stockQuantity: "y" })));
    expect(error.code).to.equal("missing_field");
    expect(error.message).to.equal('productId: is required; stockQuantity: expected an integer, got "y"');
  });

  it("when the record has no value, then empty_value", () => {
    expect(rejection(record(null)).code).to.equal("empty_value");
    expect(rejection(record("")).code).to.equal("empty_value");
  });

  it("when the value is larger than the limit, then record_too_large without reading it", () => {
    expect(rejection(record(Buffer.alloc(2048, 0x20))).code).to.equal("record_too_large");
  });

  it("when the content-type is neither JSON nor protobuf, then unsupported_content_type", () => {
    const error = rejection(record(SEED_JSON, { "content-type": "text/csv" }));
    expect(error.code).to.equal("unsupported_content_type");
    expect(error.message).to.match(/text\/csv/);
  });

  it("when a protobuf record does not decode, then invalid_protobuf", () => {
    const error = rejection(record(Buffer.from([0x0a, 0x05, 0x61]), { "content-type": "application/x-protobuf" }));
    expect(error.code).to.equal("invalid_protobuf");
    expect(error.cause).to.be.instanceOf(Error);
  });

  it("when a protobuf record lacks a required field, then missing_field naming it", () => {
    const value = toBinary(ProductRegistrationSchema, create(ProductRegistrationSchema, { productId: "p-1" }));
    const error = rejection(record(Buffer.from(value), { "content-type": "application/x-protobuf" }));
    expect(error.code).to.equal("missing_field");
    expect(error.field).to.equal("productName");
  });
});
