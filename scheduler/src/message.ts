import { fromBinary } from "@bufbuild/protobuf";
import type { IHeaders } from "kafkajs";
import { ProductRegistrationSchema } from "#gen/products/v1/events_pb.js";
import type { Product } from "#gen/products/v1/product_pb.js";
import { decimalText } from "#platform/decimal-text.js";
import { RecordError } from "./errors.js";

/** The parts of a Kafka record the transformation reads. */
export interface InputRecord {
  value: Buffer | null;
  headers?: IHeaders | undefined;
  /** The record's timestamp in epoch milliseconds, as kafkajs gives it. */
  timestamp: string;
}

export type ParsedRecord = { ok: true; product: Product } | { ok: false; error: RecordError };

/**
 * The seed producer's JSON message on the input topic, field by field: the input contract. `price`
 * is a JSON number as the seed sent it (100.0), or a decimal string.
 */
export interface RegistrationJson {
  productId: string;
  productName: string;
  productDescription: string;
  price: number | string;
  currency: string;
  stockQuantity: number;
  category: string;
}

/** A registration read from either format, its price as decimal text. */
type Registration = Omit<RegistrationJson, "price"> & { price: string };

const PROTOBUF_TYPES = new Set(["application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf"]);
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/;
const INT32_MAX = 2 ** 31 - 1;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Turns an input record into the product the API stores, as the seed did: id←productId,
 * name←productName, description←productDescription, pricing{amount←price, currency},
 * availability{quantity←stockQuantity, timestamp}, category. The availability timestamp is the
 * record's timestamp, not the wall clock, so a redelivered record describes the same state and the
 * API's upsert treats it as a duplicate.
 *
 * Never throws: a record that cannot become a product yields a RecordError naming the field.
 * Values the API judges (amount format, currency code, lengths, negative stock) are passed through
 * for it to decide, so the rules live in one place.
 */
export function parseRecord(record: InputRecord, maxBytes = Number.POSITIVE_INFINITY): ParsedRecord {
  try {
    const registration = readRegistration(record, maxBytes);
    return { ok: true, product: toProduct(registration, recordTime(record.timestamp)) };
  } catch (error) {
    if (error instanceof RecordError) return { ok: false, error };
    throw error;
  }
}

function readRegistration(record: InputRecord, maxBytes: number): Registration {
  const { value } = record;
  if (value === null || value.length === 0) throw new RecordError("empty_value", "record has no value");
  if (value.length > maxBytes) {
    throw new RecordError("record_too_large", `record value is ${value.length} bytes; at most ${maxBytes} are read`);
  }
  const contentType = mediaType(record.headers);
  if (contentType !== undefined && PROTOBUF_TYPES.has(contentType)) return readProtobuf(value);
  if (contentType === undefined || JSON_TYPE.test(contentType)) return readJson(value);
  throw new RecordError(
    "unsupported_content_type",
    `content-type ${JSON.stringify(contentType)} is not supported; expected application/json or application/x-protobuf`,
  );
}

function mediaType(headers: IHeaders | undefined): string | undefined {
  if (!headers) return undefined;
  for (const [name, raw] of Object.entries(headers)) {
    if (name.toLowerCase() !== "content-type" || raw === undefined) continue;
    const first = Array.isArray(raw) ? raw[0] : raw;
    if (first === undefined) return undefined;
    return first.toString().split(";")[0]?.trim().toLowerCase() || undefined;
  }
  return undefined;
}

function readProtobuf(value: Buffer): Registration {
  let message: ReturnType<typeof fromBinary<typeof ProductRegistrationSchema>>;
  try {
    message = fromBinary(ProductRegistrationSchema, value);
  } catch (error) {
    throw new RecordError(
      "invalid_protobuf",
      `value is not a products.v1.ProductRegistration: ${(error as Error).message}`,
      undefined,
      { cause: error },
    );
  }
  // Proto3 cannot tell an absent string from an empty one; an empty required one is missing.
  for (const field of ["productId", "productName", "price", "currency"] as const) {
    if (message[field] === "") throw new RecordError("missing_field", `${field}: is required`, field);
  }
  return message;
}

function readJson(value: Buffer): Registration {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(value));
  } catch (error) {
    const reason =
      error instanceof TypeError ? "value is not valid UTF-8" : `value is not JSON: ${(error as Error).message}`;
    throw new RecordError("invalid_json", reason, undefined, { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new RecordError("invalid_json", `value must be a JSON object, got ${describe(parsed)}`);
  }
  const json = parsed as Record<string, unknown>;
  const problems: RecordError[] = [];
  const field = <T>(name: keyof Registration, read: (value: unknown) => T, fallback: T, required: boolean): T => {
    const value = json[name];
    if (value === undefined || value === null) {
      if (required) problems.push(new RecordError("missing_field", `${name}: is required`, name));
      return fallback;
    }
    try {
      return read(value);
    } catch (error) {
      problems.push(new RecordError("invalid_field", `${name}: ${(error as Error).message}`, name));
      return fallback;
    }
  };
  const registration: Registration = {
    productId: field("productId", nonEmptyString, "", true),
    productName: field("productName", string, "", true),
    productDescription: field("productDescription", string, "", false),
    price: field("price", price, "", true),
    currency: field("currency", string, "", true),
    stockQuantity: field("stockQuantity", int32, 0, true),
    category: field("category", string, "", false),
  };
  const [first] = problems;
  if (first) {
    const message = problems.map((p) => p.message).join("; ");
    throw new RecordError(first.code, message, first.field);
  }
  return registration;
}

function string(value: unknown): string {
  if (typeof value !== "string") throw new Error(`expected a string, got ${describe(value)}`);
  return value;
}

function nonEmptyString(value: unknown): string {
  const text = string(value);
  if (text === "") throw new Error("must not be empty");
  return text;
}

/**
 * The seed sends price as a JSON number (100.0), read as the decimal it wrote (decimalText). A
 * decimal string is accepted as well (the protobuf JSON form) and passed through.
 */
function price(value: unknown): string {
  if (typeof value === "string") {
    if (value.trim() === "") throw new Error("must not be empty");
    return value;
  }
  if (typeof value !== "number") throw new Error(`expected a number or a decimal string, got ${describe(value)}`);
  if (!Number.isFinite(value)) throw new Error("must be a finite number");
  const text = decimalText(value);
  if (text === undefined) throw new Error(`${String(value)} is out of range for a price`);
  return text;
}

function int32(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new Error(`expected an integer, got ${describe(value)}`);
  }
  if (value < -(2 ** 31) || value > INT32_MAX) throw new Error(`${value} is out of range (at most ${INT32_MAX})`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

function recordTime(timestamp: string): number {
  const ms = Number(timestamp);
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new RecordError("invalid_field", `record timestamp ${JSON.stringify(timestamp)} is not a time`, "timestamp");
  }
  return ms;
}

/** A literal of the generated type (tsc checks every field): cheaper than create() once per record. */
function toProduct(registration: Registration, timestampMs: number): Product {
  return {
    $typeName: "products.v1.Product",
    id: registration.productId,
    name: registration.productName,
    description: registration.productDescription,
    pricing: { $typeName: "products.v1.Pricing", amount: registration.price, currency: registration.currency },
    availability: {
      $typeName: "products.v1.Availability",
      quantity: registration.stockQuantity,
      timestamp: {
        $typeName: "google.protobuf.Timestamp",
        seconds: BigInt(Math.floor(timestampMs / 1000)),
        nanos: (timestampMs % 1000) * 1_000_000,
      },
    },
    category: registration.category,
    version: 0n,
  };
}
