import { createRequire } from "node:module";
import path from "node:path";
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import express, { type Router } from "express";
import { ProductSchema } from "#gen/products/v1/product_pb.js";
import { ProductService } from "#gen/products/v1/product_service_pb.js";
import { AMOUNT_MAX_PRECISION, AMOUNT_MAX_SCALE } from "../products/decimal.js";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "../products/product-catalog.js";
import { LIMITS } from "../products/validation.js";
import { type RestRoute, restRoutes } from "./rest-routes.js";

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1). */
export type JsonSchema = Record<string, unknown>;

export interface OpenApiResponse {
  description: string;
  headers?: Record<string, { description: string; schema: JsonSchema }>;
  content?: Record<string, { schema: JsonSchema }>;
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  parameters?: {
    name: string;
    in: "path" | "query";
    required: boolean;
    description?: string;
    schema: JsonSchema;
  }[];
  requestBody?: {
    required: boolean;
    content: Record<string, { schema: JsonSchema; example?: unknown }>;
  };
  responses: Record<string, OpenApiResponse>;
  security?: Record<string, string[]>[];
}

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description: string };
  tags: { name: string; description: string }[];
  paths: Record<string, Partial<Record<RestRoute["verb"], OpenApiOperation>>>;
  components: {
    schemas: Record<string, JsonSchema>;
    securitySchemes: Record<string, { type: string; scheme: string; description: string }>;
  };
}

const nodeRequire = createRequire(import.meta.url);
const PACKAGE_VERSION = (nodeRequire("../../../package.json") as { version: string }).version;

const JSON_TYPE = "application/json";
const SECURITY_SCHEME = "bearer";
const OPERATIONS_TAG = "operations";
const AMOUNT_MAX_INTEGER_DIGITS = AMOUNT_MAX_PRECISION - AMOUNT_MAX_SCALE;

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

/**
 * What the protobuf descriptors cannot say: the generated code carries no comments, so method
 * descriptions and the documentation of request and response fields are kept here, by full name.
 */
const METHOD_DESCRIPTIONS: Record<string, string> = {
  CreateProduct:
    "Creates the product, or updates it when the id exists and the content differs: an idempotent upsert. " +
    "A write whose `availability.timestamp` is older than the stored one changes nothing. " +
    "Answers 201 when the product was created, 200 otherwise, always with the product as stored.",
  GetProduct: "Returns one product.",
  ListProducts: "Lists products in creation order, one page at a time.",
};

const FIELD_SCHEMAS: Record<string, JsonSchema> = {
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
};

/**
 * The OpenAPI 3.1 document of the REST API. Paths, verbs, parameters and response shapes are
 * derived from the same google.api.http annotations the REST router is built from (restRoutes),
 * and product limits come from the validation code, so the document cannot drift from the server.
 */
export function createOpenApiDocument(): OpenApiDocument {
  const routes = restRoutes();
  const schemas: Record<string, JsonSchema> = {
    ProductInput: productSchema("input"),
    Product: productSchema("output"),
    FieldViolation: {
      type: "object",
      required: ["field", "description"],
      properties: {
        field: { type: "string", description: 'Path of the field, e.g. "pricing.currency".' },
        description: { type: "string" },
      },
    },
    Error: {
      type: "object",
      required: ["error", "message"],
      properties: {
        error: {
          type: "string",
          description: "A Connect/gRPC code name.",
          examples: ["invalid_argument", "not_found", "unauthenticated", "resource_exhausted", "unavailable"],
        },
        message: { type: "string", description: "For humans; do not parse." },
        details: {
          type: "array",
          description: "One entry per invalid field (invalid_argument only).",
          items: ref("FieldViolation"),
        },
      },
    },
  };
  const paths: OpenApiDocument["paths"] = {};
  for (const route of routes) {
    paths[route.template] = { ...paths[route.template], [route.verb]: routeOperation(route, schemas) };
  }
  Object.assign(paths, operationalPaths());

  return {
    openapi: "3.1.0",
    info: {
      title: "Product API",
      version: PACKAGE_VERSION,
      description: serviceDescription(routes),
    },
    tags: [
      { name: ProductService.name, description: `The REST mapping of \`${ProductService.typeName}\`.` },
      { name: OPERATIONS_TAG, description: "Probes and metrics for orchestrators and Prometheus." },
    ],
    paths,
    components: {
      schemas,
      securitySchemes: {
        [SECURITY_SCHEME]: {
          type: "http",
          scheme: "bearer",
          description:
            "`Authorization: Bearer <token>`. Writes need it only when the server runs with `API_TOKEN` set; " +
            "reads never do.",
        },
      },
    },
  };
}

function serviceDescription(routes: RestRoute[]): string {
  const mapped = new Set(routes.map((r) => r.method));
  const rpcOnly = ProductService.methods.filter((m) => !mapped.has(m)).map((m) => `\`${m.name}\``);
  return [
    "Registers and reads products.",
    "",
    `The same service, \`${ProductService.typeName}\`, is also served over Connect, gRPC and gRPC-Web on the same ` +
      "port (HTTP/1.1 and cleartext HTTP/2), e.g. " +
      `\`POST /${ProductService.typeName}/${ProductService.method.getProduct.name}\` with a JSON body for Connect. ` +
      "gRPC server reflection is enabled, so grpcurl and buf curl need no proto files." +
      (rpcOnly.length > 0 ? ` Only available over RPC: ${rpcOnly.join(", ")}.` : ""),
    "",
    "Request bodies are read as JSON whatever their content type. Amounts may be JSON numbers or decimal " +
      "strings; responses send numbers.",
  ].join("\n");
}

/** The request shape (as clients send it, leniently read) or the response shape (as stored). */
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
    description: `Exact: ${amountLimits}.`,
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

/** Mirrors createRestRouter: what it reads, whom it asks for a token and which statuses it answers. */
function routeOperation(route: RestRoute, schemas: Record<string, JsonSchema>): OpenApiOperation {
  const { method } = route;
  const input = method.input;
  const pathParams = [...route.template.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? "");
  const parameters: NonNullable<OpenApiOperation["parameters"]> = pathParams.map((name) => {
    const field = requireField(input, name);
    return { name, in: "path", required: true, schema: fieldSchema(field) };
  });
  if (route.body === "") {
    for (const field of input.fields) {
      if (field.fieldKind !== "scalar" || pathParams.includes(field.name)) continue;
      parameters.push({ name: field.name, in: "query", required: false, schema: fieldSchema(field) });
    }
  }
  for (const parameter of parameters) {
    const { description, ...schema } = parameter.schema;
    parameter.schema = schema;
    if (typeof description === "string") parameter.description = description;
  }

  const isWrite = method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
  const isValidated = route.body !== "" || parameters.some((p) => p.in === "query");
  const successSchema = responseSchema(route, schemas);
  const responses: Record<string, OpenApiResponse> = {};
  if (method === ProductService.method.createProduct) {
    responses["201"] = jsonResponse("Created: the id was new. The product as stored.", successSchema);
    responses["200"] = jsonResponse(
      "Updated, or unchanged (same content, or a stale availability.timestamp). The product as stored.",
      successSchema,
    );
  } else {
    responses["200"] = jsonResponse("OK.", successSchema);
  }
  if (isValidated) {
    responses["400"] = errorResponse("Invalid request: `details` names every invalid field.");
  }
  if (isWrite) {
    responses["401"] = {
      ...errorResponse("Missing or wrong bearer token (only when the server has `API_TOKEN`)."),
      headers: { "WWW-Authenticate": { description: "Always `Bearer`.", schema: { type: "string" } } },
    };
  }
  if (pathParams.length > 0) responses["404"] = errorResponse("Not found.");
  if (route.body !== "") responses["413"] = errorResponse("Request body larger than the server's `MAX_BODY_BYTES`.");
  responses["503"] = errorResponse("Database unavailable; retry later.");

  const description = METHOD_DESCRIPTIONS[method.name];
  return {
    operationId: method.name,
    summary: summaryOf(method.name),
    ...(description ? { description } : {}),
    tags: [ProductService.name],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body !== "" ? { requestBody: requestBody(route) } : {}),
    responses,
    ...(isWrite ? { security: [{ [SECURITY_SCHEME]: [] }] } : {}),
  };
}

function requestBody(route: RestRoute): NonNullable<OpenApiOperation["requestBody"]> {
  const field = route.method.input.fields.find((f) => f.name === route.body);
  // The router has a body codec for products only; anything else would be documented wrongly.
  if (field?.message?.typeName !== ProductSchema.typeName) {
    throw new Error(`no OpenAPI schema for the body "${route.body}" of ${route.method.name}`);
  }
  return {
    required: true,
    content: {
      [JSON_TYPE]: {
        schema: ref("ProductInput"),
        example: {
          id: "12345",
          name: "Nome do Produto",
          description: "Descrição do Produto",
          pricing: { amount: 100.0, currency: "BRL" },
          availability: { quantity: 50, timestamp: "2024-06-29T00:30:03.254878" },
          category: "Categoria do Produto",
        },
      },
    },
  };
}

/** The response field named by response_body, or the whole response message under its own name. */
function responseSchema(route: RestRoute, schemas: Record<string, JsonSchema>): JsonSchema {
  const output = route.method.output;
  if (route.responseBody !== "") return fieldSchema(requireField(output, route.responseBody));
  schemas[output.name] ??= {
    type: "object",
    required: output.fields.map((f) => f.name),
    properties: Object.fromEntries(output.fields.map((f) => [f.name, fieldSchema(f)])),
  };
  return ref(output.name);
}

/** The JSON the REST router reads or writes for a field; fails for kinds it does not handle. */
function fieldSchema(field: DescField): JsonSchema {
  const extra = FIELD_SCHEMAS[`${field.parent.typeName}.${field.name}`] ?? {};
  const unsupported = () => new Error(`no OpenAPI schema for ${field.parent.typeName}.${field.name}`);
  const messageRef = (message: DescMessage): JsonSchema => {
    if (message.typeName !== ProductSchema.typeName) throw unsupported();
    return ref("Product");
  };
  switch (field.fieldKind) {
    case "scalar":
      return { ...scalarSchema(field.scalar, unsupported), ...extra };
    case "message":
      return { ...messageRef(field.message), ...extra };
    case "list":
      if (field.listKind === "message") return { type: "array", items: messageRef(field.message), ...extra };
      if (field.listKind === "scalar")
        return { type: "array", items: scalarSchema(field.scalar, unsupported), ...extra };
      throw unsupported();
    default:
      throw unsupported();
  }
}

function scalarSchema(scalar: ScalarType, unsupported: () => Error): JsonSchema {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", minimum: 0, maximum: 2 ** 32 - 1 };
    default:
      // 64-bit integers are bigints, which res.json cannot write; bools and bytes are not read from queries.
      throw unsupported();
  }
}

function requireField(message: DescMessage, name: string): DescField {
  const field = message.fields.find((f) => f.name === name);
  if (!field) throw new Error(`${message.typeName} has no field "${name}"`);
  return field;
}

function jsonResponse(description: string, schema: JsonSchema): OpenApiResponse {
  return { description, content: { [JSON_TYPE]: { schema } } };
}

function errorResponse(description: string): OpenApiResponse {
  return jsonResponse(description, ref("Error"));
}

/** "ListProducts" → "List products". */
function summaryOf(methodName: string): string {
  const words = methodName.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function operationalPaths(): OpenApiDocument["paths"] {
  const status = (value: string): JsonSchema => ({
    type: "object",
    required: ["status"],
    properties: { status: { const: value } },
  });
  const operation = (operationId: string, summary: string, responses: Record<string, OpenApiResponse>) => ({
    operationId,
    summary,
    tags: [OPERATIONS_TAG],
    responses,
  });
  return {
    "/healthz": {
      get: operation("CheckLiveness", "Liveness: the process serves requests", {
        "200": jsonResponse("Alive.", status("ok")),
      }),
    },
    "/readyz": {
      get: operation("CheckReadiness", "Readiness: the database answers", {
        "200": jsonResponse("Ready.", status("ready")),
        "503": errorResponse("Database unavailable."),
      }),
    },
    "/metrics": {
      get: operation("GetMetrics", "Prometheus metrics", {
        "200": {
          description: "Prometheus text exposition format.",
          content: { "text/plain": { schema: { type: "string" } } },
        },
      }),
    },
  };
}

/** Only what the page below loads (and the source maps developer tools ask for). */
const SWAGGER_UI_ASSETS = new Set([
  "swagger-ui.css",
  "swagger-ui.css.map",
  "index.css",
  "swagger-ui-bundle.js",
  "swagger-ui-bundle.js.map",
  "favicon-16x16.png",
  "favicon-32x32.png",
]);

/**
 * The page at /docs or /docs/, with URLs relative to it (so it also works behind a proxy that mounts
 * the API under a prefix): from /docs they need the "docs/" segment, from /docs/ they must not have it.
 */
function docsPage(assets: "docs/" | "./"): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Product API</title>
    <link rel="stylesheet" href="${assets}swagger-ui.css">
    <link rel="stylesheet" href="${assets}index.css">
    <link rel="icon" type="image/png" href="${assets}favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="${assets}favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${assets}swagger-ui-bundle.js"></script>
    <script src="${assets}swagger-initializer.js"></script>
  </body>
</html>
`;
}

// Resolved against the script's own URL, which is the same whether the page is /docs or /docs/.
const DOCS_INITIALIZER = `const documentUrl = new URL("../openapi.json", document.currentScript.src).href;
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: documentUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
`;

/**
 * GET /openapi.json (built once, at construction) and GET /docs (or /docs/): Swagger UI served from the
 * swagger-ui-dist package, so the docs work offline and need no CDN.
 */
export function createDocsRouter(): Router {
  const document = JSON.stringify(createOpenApiDocument());
  const assetsDir = path.dirname(nodeRequire.resolve("swagger-ui-dist/package.json"));
  const router = express.Router({ strict: true });
  router.get("/openapi.json", (_req, res) => {
    res.type("json").send(document);
  });
  // Both answer the page itself: a redirect would cost a round trip and break clients that do not follow it.
  const pageAtDocs = docsPage("docs/");
  const pageUnderDocs = docsPage("./");
  router.get("/docs", (_req, res) => {
    res.type("html").send(pageAtDocs);
  });
  router.get("/docs/", (_req, res) => {
    res.type("html").send(pageUnderDocs);
  });
  router.get("/docs/swagger-initializer.js", (_req, res) => {
    res.type("js").send(DOCS_INITIALIZER);
  });
  router.get("/docs/:asset", (req, res, next) => {
    if (!SWAGGER_UI_ASSETS.has(req.params.asset)) return next();
    res.sendFile(req.params.asset, { root: assetsDir, maxAge: "1h" });
  });
  return router;
}
