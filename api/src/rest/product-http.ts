import { type Product, ProductSchema } from "#gen/products/v1/product_pb.js";
import { ProductService, WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import type { FieldViolation } from "../errors.js";
import type { HttpJsonCodec } from "../http/http-json.js";
import { AMOUNT_MAX_PRECISION, AMOUNT_MAX_SCALE } from "../products/decimal.js";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "../products/product-catalog.js";
import { LIMITS, validateProduct } from "../products/validation.js";
import type { JsonSchema, OpenApiDeclaration } from "./openapi-document.js";
import { productFromJson, productToJson } from "./product-json.js";

const AMOUNT_MAX_INTEGER_DIGITS = AMOUNT_MAX_PRECISION - AMOUNT_MAX_SCALE;

/** Products in the original project's REST shape (product-json.ts) rather than protobuf JSON. */
const productJson: HttpJsonCodec<typeof ProductSchema> = {
  message: ProductSchema,
  subject: "product",
  toJson: productToJson,
  fromJson(json) {
    const { product, violations } = productFromJson(json);
    return { message: product, violations: violations.length > 0 ? withContentRules(violations, product) : [] };
  },
};

/**
 * A body with fields of the wrong type never reaches validateProduct, so its content rules are
 * applied here to the fields that had the right type: one 400 names every invalid field.
 */
function withContentRules(typeErrors: FieldViolation[], product: Product): FieldViolation[] {
  const checked = validateProduct(product);
  const reported = new Set(typeErrors.map((v) => v.field));
  const more = checked.ok
    ? []
    : checked.violations.filter((v) => ![...reported].some((f) => v.field === f || v.field.startsWith(`${f}.`)));
  return [...typeErrors, ...more];
}

/**
 * ProductService over REST, beside its google.api.http annotations: the product JSON, 201 for a
 * created product, and the documentation the descriptors cannot carry. Both the transcoder and the
 * OpenAPI document are built from this one declaration.
 */
export const productHttp: OpenApiDeclaration<typeof ProductService> = {
  service: ProductService,
  title: "Product API",
  description: "Registers and reads products.",
  bodyNote: "Amounts may be JSON numbers or decimal strings; responses send numbers.",
  codecs: [productJson],
  schemas: [
    {
      message: ProductSchema,
      input: {
        name: "ProductInput",
        schema: productSchema("input"),
        example: {
          id: "12345",
          name: "Nome do Produto",
          description: "Descrição do Produto",
          pricing: { amount: 100.0, currency: "BRL" },
          availability: { quantity: 50, timestamp: "2024-06-29T00:30:03.254878" },
          category: "Categoria do Produto",
        },
      },
      output: { name: "Product", schema: productSchema("output") },
    },
  ],
  methods: {
    createProduct: {
      successStatus: (response) => (response.outcome === WriteOutcome.CREATED ? 201 : 200),
      description:
        "Creates the product, or updates it when the id exists and the content differs: an idempotent upsert. " +
        "A write whose `availability.timestamp` is older than the stored one changes nothing. " +
        "With an equal timestamp, a REST write is newer than a write from Kafka (so replaying the topic never " +
        "undoes it), and among REST writes the last to arrive wins: a retried request changes nothing, a " +
        "different product with the same timestamp replaces the stored one. " +
        "Answers 201 when the product was created, 200 otherwise, always with the product as stored.",
      responses: {
        "201": "Created: the id was new. The product as stored.",
        "200": "Updated, or unchanged (same content, or a stale availability.timestamp). The product as stored.",
      },
    },
    getProduct: { description: "Returns one product." },
    listProducts: {
      description:
        "Lists products in the order they were created (by creating transaction, then id), one page at a time. " +
        "A page never passes a product that may still appear: a product created while an older write transaction " +
        "of the database is still open is listed once that one ends (usually within milliseconds; " +
        "`GET /products/{id}` sees it at once). So a client that pages on later from the last `next_page_token` " +
        "it got misses no product, however late its transaction committed.",
    },
  },
  fields: {
    "products.v1.ListProductsRequest.page_size": {
      description: `Products per page, 1 to ${MAX_PAGE_SIZE}; 0 or absent means ${DEFAULT_PAGE_SIZE}.`,
      minimum: 0,
      maximum: MAX_PAGE_SIZE,
    },
    "products.v1.ListProductsRequest.page_token": {
      description: "`next_page_token` of the previous page; absent or empty for the first page.",
    },
    "products.v1.ListProductsResponse.next_page_token": {
      description: "Pass as `page_token` to get the next page; empty on the last page.",
    },
    "products.v1.GetProductRequest.id": { description: "The product's id." },
  },
};

/**
 * The request shape (as clients send it, leniently read) or the response shape (as stored) of
 * product-json.ts, with the limits of the validation code.
 */
function productSchema(shape: "input" | "output"): JsonSchema {
  const input = shape === "input";
  const text = (maxLength: number, description: string, required: boolean): JsonSchema => ({
    type: "string",
    ...(input && required ? { minLength: 1 } : {}),
    maxLength,
    description,
  });
  const timestamp = (description: string): JsonSchema => ({ type: "string", format: "date-time", description });
  const amountLimits = `at least 0, less than 10^${AMOUNT_MAX_INTEGER_DIGITS}, at most ${AMOUNT_MAX_SCALE} decimal places`;
  const amountNumber: JsonSchema = {
    type: "number",
    minimum: 0,
    exclusiveMaximum: 10 ** AMOUNT_MAX_INTEGER_DIGITS,
    description: `Exact, read as written (plain notation, no exponent): ${amountLimits}.`,
    examples: [19.99],
  };
  const properties: Record<string, JsonSchema> = {
    id: text(
      LIMITS.idLength,
      "Chosen by the client; creates are upserts keyed by it. No control characters, no leading or trailing whitespace.",
      true,
    ),
    name: text(LIMITS.nameLength, "Not blank; no control characters.", true),
    description: text(LIMITS.descriptionLength, "No control characters other than tab and line breaks.", false),
    pricing: {
      type: "object",
      required: ["amount", "currency"],
      properties: {
        amount: input
          ? {
              description: `A JSON number or a decimal string in plain notation (e.g. "19.99"): ${amountLimits}.`,
              oneOf: [
                amountNumber,
                {
                  type: "string",
                  pattern: `^0*\\d{1,${AMOUNT_MAX_INTEGER_DIGITS}}(\\.\\d{1,${AMOUNT_MAX_SCALE}}0*)?$`,
                  examples: ["19.99"],
                },
              ],
            }
          : amountNumber,
        currency: {
          type: "string",
          pattern: "^[A-Z]{3}$",
          description: "ISO 4217 code: three uppercase letters.",
          examples: ["BRL"],
        },
      },
    },
    availability: {
      type: "object",
      required: ["quantity", "timestamp"],
      properties: {
        quantity: {
          type: "integer",
          format: "int32",
          minimum: 0,
          maximum: LIMITS.maxQuantity,
          description: "Units in stock.",
          examples: [50],
        },
        timestamp: input
          ? {
              type: "string",
              description:
                "When this stock level was observed: an RFC 3339 date-time. Without an offset " +
                '(e.g. "2024-06-29T00:30:03.254878") it is read as UTC. Kept to the microsecond. ' +
                "A write older than the stored one never overwrites it.",
              examples: ["2024-06-29T00:30:03.254878Z", "2024-06-29T00:30:03.254878"],
            }
          : timestamp("When this stock level was observed, in UTC, to the microsecond."),
      },
    },
    category: text(LIMITS.categoryLength, "No control characters.", false),
  };
  if (input) {
    return {
      type: "object",
      description:
        "A product as sent by a client. Server-set fields (version, created_at, updated_at) are ignored if sent.",
      required: ["id", "name", "pricing", "availability"],
      properties,
    };
  }
  return {
    type: "object",
    description: "A product as stored.",
    required: [...Object.keys(properties), "version", "created_at", "updated_at"],
    properties: {
      ...properties,
      version: {
        type: "integer",
        format: "int64",
        minimum: 1,
        description: "1 on insert, +1 on every write that changes the product.",
      },
      created_at: timestamp("When the product was first stored."),
      updated_at: timestamp("Time of the last write that changed the product."),
    },
  };
}
