import { create } from "@bufbuild/protobuf";
import { AvailabilitySchema, PricingSchema, type Product, ProductSchema } from "#gen/products/v1/product_pb.js";
import type { FieldViolation } from "../errors.js";
import { numberLiteral } from "../http/json-body.js";
import { amountFromNumber, parseAmount } from "../products/decimal.js";
import { formatTimestamp, parseTimestamp } from "../products/timestamp.js";
import { LIMITS } from "../products/validation.js";

/**
 * The REST body of a product, the original project's shape:
 * {"id","name","description","pricing":{"amount":100.0,"currency"},"availability":{"quantity","timestamp"},"category"}
 * plus the server-set "version", "created_at" and "updated_at" on output. Amounts are JSON numbers
 * (exact: see decimal.ts; checked as written) and also accepted as decimal strings. A type, not an interface: it is a JsonValue.
 */
export type ProductJson = {
  id: string;
  name: string;
  description: string;
  pricing: { amount: number; currency: string };
  availability: { quantity: number; timestamp: string };
  category: string;
  version: number;
  created_at: string;
  updated_at: string;
};

/** A stored product in the REST shape; amounts as exact JSON numbers, timestamps to the microsecond. */
export function productToJson(product: Product): ProductJson {
  return {
    id: product.id,
    name: product.name,
    description: product.description,
    pricing: { amount: Number(product.pricing?.amount ?? 0), currency: product.pricing?.currency ?? "" },
    availability: {
      quantity: product.availability?.quantity ?? 0,
      timestamp: product.availability?.timestamp ? formatTimestamp(product.availability.timestamp) : "",
    },
    category: product.category,
    version: Number(product.version),
    created_at: product.createdAt ? formatTimestamp(product.createdAt) : "",
    updated_at: product.updatedAt ? formatTimestamp(product.updatedAt) : "",
  };
}

export interface ParsedProduct {
  /** What could be read; fields of the wrong type are left empty. */
  product: Product;
  /** Fields of the wrong JSON type or unreadable form. */
  violations: FieldViolation[];
}

/**
 * Reads a REST body into a Product, reporting wrong JSON types per field. Content rules (lengths,
 * currency, ranges) are left to validateProduct, which RPC requests go through too.
 */
export function productFromJson(body: unknown): ParsedProduct {
  const violations: FieldViolation[] = [];
  const fail = (field: string, description: string) => {
    violations.push({ field, description });
  };
  if (!isObject(body)) {
    return { product: create(ProductSchema), violations: [{ field: "body", description: "must be a JSON object" }] };
  }

  const text = (field: string, value: unknown): string => {
    if (value === undefined || value === null) return "";
    if (typeof value === "string") return value;
    fail(field, "must be a string");
    return "";
  };

  const product = create(ProductSchema, {
    id: text("id", body.id),
    name: text("name", body.name),
    description: text("description", body.description),
    category: text("category", body.category),
  });

  if (body.pricing !== undefined && body.pricing !== null) {
    if (!isObject(body.pricing)) fail("pricing", "must be an object");
    else {
      const { amount, currency } = body.pricing;
      let decimal = "";
      if (typeof amount === "number" || typeof amount === "string") {
        const parsed = typeof amount === "number" ? numberAmount(body.pricing, amount) : parseAmount(amount);
        if (parsed.ok) decimal = parsed.value;
        else fail("pricing.amount", parsed.reason);
      } else if (amount !== undefined && amount !== null) {
        fail("pricing.amount", "must be a number");
      } else fail("pricing.amount", "is required");
      product.pricing = create(PricingSchema, { amount: decimal, currency: text("pricing.currency", currency) });
    }
  }

  if (body.availability !== undefined && body.availability !== null) {
    if (!isObject(body.availability)) fail("availability", "must be an object");
    else {
      const { quantity, timestamp } = body.availability;
      let count = 0;
      if (quantity === undefined || quantity === null) fail("availability.quantity", "is required");
      else if (typeof quantity !== "number" || !Number.isInteger(quantity))
        fail("availability.quantity", "must be an integer");
      else if (quantity < 0 || quantity > LIMITS.maxQuantity) {
        fail("availability.quantity", `must be from 0 to ${LIMITS.maxQuantity}`);
      } else count = quantity;
      let observedAt: ReturnType<typeof parseTimestamp>;
      if (typeof timestamp === "string") {
        observedAt = parseTimestamp(timestamp);
        if (!observedAt) {
          fail(
            "availability.timestamp",
            'must be an RFC 3339 date-time, e.g. "2024-06-29T00:30:03.254878Z" (no offset means UTC)',
          );
        }
      } else if (timestamp !== undefined && timestamp !== null) {
        fail("availability.timestamp", "must be a string");
      }
      product.availability = create(AvailabilitySchema, {
        quantity: count,
        ...(observedAt ? { timestamp: observedAt } : {}),
      });
    }
  }

  return { product, violations };
}

/**
 * A JSON number amount checked as written, like a decimal string: 19.999999999999999 is refused
 * rather than rounded to 20, and exponent forms are refused as for strings. Values that were not
 * parsed from text (no literal) are checked by their shortest round-trip form.
 */
function numberAmount(pricing: object, amount: number) {
  const literal = numberLiteral(pricing, "amount");
  return literal === undefined ? amountFromNumber(amount) : parseAmount(literal);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
