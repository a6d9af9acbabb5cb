import type { Product, SourcePosition } from "#gen/products/v1/product_pb.js";
import type { FieldViolation } from "../errors.js";
import { parseAmount } from "./decimal.js";
import type { ProductWrite } from "./product-repository.js";
import { isValidTimestamp, timestampToMillis, truncateToMicros } from "./timestamp.js";

export const LIMITS = {
  idLength: 128,
  nameLength: 256,
  descriptionLength: 4000,
  categoryLength: 128,
  maxQuantity: 2 ** 31 - 1,
} as const;

/**
 * How far ahead of this server's clock availability.timestamp may be. A write dated in the future
 * would make every later, truthful write STALE, so it is refused instead.
 */
export interface ClockPolicy {
  /** Milliseconds since the epoch (Date.now in production; fixed in tests). */
  now(): number;
  maxClockSkewMs: number;
}

export type ValidationResult = { ok: true; product: Product } | { ok: false; violations: FieldViolation[] };

export type WriteValidationResult = { ok: true; write: ProductWrite } | { ok: false; violations: FieldViolation[] };

// PostgreSQL text cannot hold NUL; other control characters make ids and names unprintable.
const CONTROL = /\p{Cc}/u;
const CONTROL_EXCEPT_WHITESPACE = /[^\P{Cc}\t\n\r]/u;
const CURRENCY = /^[A-Z]{3}$/;
// Kafka's legal topic names; ASCII, so JavaScript and PostgreSQL's "C" collation order them alike.
const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

/** A write as a CreateProductRequest carries it: the product, and its Kafka record if it has one. */
export interface WriteRequest {
  product?: Product | undefined;
  source?: SourcePosition | undefined;
}

/** validateProduct, and the source position when there is one: every violation of both. */
export function validateWrite(request: WriteRequest, clock?: ClockPolicy): WriteValidationResult {
  const checked = validateProduct(request.product, clock);
  const sourceViolations = request.source ? validateSource(request.source) : [];
  if (!checked.ok || sourceViolations.length > 0) {
    return { ok: false, violations: [...(checked.ok ? [] : checked.violations), ...sourceViolations] };
  }
  return { ok: true, write: { product: checked.product, source: request.source } };
}

function validateSource(source: SourcePosition): FieldViolation[] {
  const violations: FieldViolation[] = [];
  if (!TOPIC.test(source.topic)) {
    violations.push({
      field: "source.topic",
      description: "must be a Kafka topic name: 1 to 249 of a-z A-Z 0-9 . _ -",
    });
  }
  if (source.partition < 0) violations.push({ field: "source.partition", description: "must be at least 0" });
  if (source.offset < 0n) violations.push({ field: "source.offset", description: "must be at least 0" });
  return violations;
}

/**
 * Checks a product sent by a client and returns it in canonical form (amount without superfluous
 * zeros, timestamp truncated to microseconds), or every violation found. Server-set fields
 * (version, created_at, updated_at) are ignored. Without a clock, the timestamp is not checked
 * against the present (REST uses that to list content errors beside type errors).
 */
export function validateProduct(input: Product | undefined, clock?: ClockPolicy): ValidationResult {
  if (!input) return { ok: false, violations: [{ field: "product", description: "is required" }] };
  const violations: FieldViolation[] = [];
  const fail = (field: string, description: string) => violations.push({ field, description });
  const product = input;
  let canonicalAmount = "";
  checkText("id", product.id, { min: 1, max: LIMITS.idLength, control: CONTROL }, fail);
  if (product.id.trim() !== product.id) fail("id", "must not start or end with whitespace");
  checkText("name", product.name, { min: 1, max: LIMITS.nameLength, control: CONTROL }, fail);
  if (product.name.length > 0 && product.name.trim() === "") fail("name", "must not be blank");
  checkText(
    "description",
    product.description,
    { min: 0, max: LIMITS.descriptionLength, control: CONTROL_EXCEPT_WHITESPACE },
    fail,
  );
  checkText("category", product.category, { min: 0, max: LIMITS.categoryLength, control: CONTROL }, fail);

  if (!product.pricing) {
    fail("pricing", "is required");
  } else {
    if (product.pricing.amount === "") {
      fail("pricing.amount", "is required");
    } else {
      const amount = parseAmount(product.pricing.amount);
      if (amount.ok) canonicalAmount = amount.value;
      else fail("pricing.amount", amount.reason);
    }
    if (product.pricing.currency === "") fail("pricing.currency", "is required");
    else if (!CURRENCY.test(product.pricing.currency)) {
      fail("pricing.currency", 'must be an ISO 4217 code: three uppercase letters, e.g. "BRL"');
    }
  }

  if (!product.availability) {
    fail("availability", "is required");
  } else {
    const { quantity, timestamp } = product.availability;
    if (!Number.isInteger(quantity) || quantity < 0 || quantity > LIMITS.maxQuantity) {
      fail("availability.quantity", `must be an integer from 0 to ${LIMITS.maxQuantity}`);
    }
    if (!timestamp) fail("availability.timestamp", "is required");
    else if (!isValidTimestamp(timestamp)) {
      fail("availability.timestamp", "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z");
    } else if (clock && timestampToMillis(timestamp) > clock.now() + clock.maxClockSkewMs) {
      fail(
        "availability.timestamp",
        `must not be more than ${clock.maxClockSkewMs} ms ahead of the server's clock (${new Date(clock.now()).toISOString()})`,
      );
    }
  }
  const { pricing, availability } = product;
  const timestamp = availability?.timestamp;
  if (violations.length > 0 || !pricing || !availability || !timestamp) return { ok: false, violations };

  // A new message rather than a clone: server-set and unknown fields stay behind, and a literal of
  // the generated type is far cheaper than clone()'s reflection on the write path.
  return {
    ok: true,
    product: {
      $typeName: "products.v1.Product",
      id: product.id,
      name: product.name,
      description: product.description,
      pricing: { $typeName: "products.v1.Pricing", amount: canonicalAmount, currency: pricing.currency },
      availability: {
        $typeName: "products.v1.Availability",
        quantity: availability.quantity,
        timestamp: truncateToMicros(timestamp),
      },
      category: product.category,
      version: 0n,
    },
  };
}

function checkText(
  field: string,
  value: string,
  rule: { min: number; max: number; control: RegExp },
  fail: (field: string, description: string) => void,
): void {
  // Code points never outnumber UTF-16 units: count them only when the limit might be passed.
  const length = value.length <= rule.max ? value.length : codePointLength(value);
  if (!value.isWellFormed()) fail(field, "must be valid Unicode (no lone surrogates)");
  else if (rule.min > 0 && length === 0) fail(field, "is required");
  else if (length > rule.max) fail(field, `must be at most ${rule.max} characters (got ${length})`);
  else if (rule.control.test(value)) fail(field, "must not contain control characters");
}

/** Lengths count code points, as PostgreSQL's varchar(n) does. */
function codePointLength(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}
