import {
  create,
  type DescField,
  type DescMessage,
  type DescMethod,
  getOption,
  type Message,
  ScalarType,
} from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import { http as httpRule } from "#gen/google/api/annotations_pb.js";
import type { HttpRule } from "#gen/google/api/http_pb.js";
import { type Product, ProductSchema } from "#gen/products/v1/product_pb.js";
import { ProductService, WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import { ApiError, type FieldViolation, invalidArgument } from "../errors.js";
import { validateProduct } from "../products/validation.js";
import type { ProductServiceImpl } from "../rpc/product-service-impl.js";
import { type ProductJson, productFromJson, productToJson } from "./product-json.js";
import { toRestError } from "./rest-errors.js";

/** A REST route derived from a method's google.api.http annotation. */
export interface RestRoute {
  method: DescMethod;
  verb: "get" | "post" | "put" | "patch" | "delete";
  /** The annotation's path template, e.g. "/products/{id}". */
  template: string;
  /** Express form of the template, e.g. "/products/:id". */
  expressPath: string;
  /** Request field read from the body ("*" for the whole request), or "" for none. */
  body: string;
  /** Response field sent as the body, or "" for the whole response. */
  responseBody: string;
}

/** Every ProductService method that has an HTTP mapping: the single source of REST routes and of the OpenAPI document. */
export function restRoutes(): RestRoute[] {
  return ProductService.methods.flatMap((method) => {
    const rule: HttpRule = getOption(method, httpRule);
    if (rule.pattern.case === undefined || rule.pattern.case === "custom") return [];
    const template = rule.pattern.value;
    return [
      {
        method,
        verb: rule.pattern.case,
        template,
        expressPath: template.replace(/\{(\w+)\}/g, ":$1"),
        body: rule.body,
        responseBody: rule.responseBody,
      },
    ];
  });
}

export interface RestRouterOptions {
  impl: ProductServiceImpl;
  isAuthorized: (authorization: string | undefined) => boolean;
  maxBodyBytes: number;
}

/**
 * Serves each annotated method as JSON over HTTP/1.1 by calling the same handler the RPC
 * protocols use. Products use the original project's JSON shape (product-json.ts); other
 * messages use proto field names.
 */
export function createRestRouter(options: RestRouterOptions): Router {
  const router = express.Router({ strict: true });
  // Any content type is read as JSON: `curl -d` without a header must work too.
  const parseJson = express.json({ limit: options.maxBodyBytes, type: () => true, strict: false });
  for (const route of restRoutes()) {
    const handlers: express.RequestHandler[] = [];
    if (route.method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) {
      handlers.push((req, res, next) => {
        if (options.isAuthorized(req.get("authorization"))) return next();
        res
          .status(401)
          .set("WWW-Authenticate", "Bearer")
          .json({ error: "unauthenticated", message: "missing or invalid bearer token" });
      });
    }
    if (route.body !== "") handlers.push(parseJson);
    handlers.push(async (req, res) => {
      const request = readRequest(route, req);
      const call = options.impl[route.method.localName as keyof ProductServiceImpl] as unknown as (
        request: Message,
      ) => Promise<Message>;
      const response = await call(request);
      const created = route.method === ProductService.method.createProduct && isCreated(response);
      res.status(created ? 201 : 200).json(writeResponse(route, response));
    });
    router[route.verb](route.expressPath, ...handlers);
  }
  router.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const { status, body } = toRestError(bodyParserError(error) ?? error);
    res.status(status).json(body);
  });
  return router;
}

function readRequest(route: RestRoute, req: Request): Message {
  const input = route.method.input;
  const violations: FieldViolation[] = [];
  const request = create(input) as Message & Record<string, unknown>;
  for (const [name, value] of Object.entries(req.params)) setScalar(input, request, name, String(value), violations);
  if (route.body === "") {
    for (const [name, value] of Object.entries(req.query)) {
      // Path parameters win: GET /products/a?id=b reads product "a".
      if (typeof value === "string" && !(name in req.params) && input.fields.some((f) => f.name === name)) {
        setScalar(input, request, name, value, violations);
      }
    }
  } else {
    const field = input.fields.find((f) => f.name === route.body);
    if (field?.message?.typeName !== ProductSchema.typeName) throw new Error(`no REST body codec for ${route.body}`);
    const parsed = productFromJson(req.body);
    if (parsed.violations.length > 0) violations.push(...mergeViolations(parsed.violations, parsed.product));
    request[field.localName] = parsed.product;
  }
  // A body is a product; path and query parameters are the request's own fields.
  if (violations.length > 0) throw invalidArgument(violations, route.body === "" ? "request" : "product");
  return request;
}

/** Type errors first, then content rules for fields that had the right type (validateProduct). */
function mergeViolations(typeErrors: FieldViolation[], product: Product): FieldViolation[] {
  const checked = validateProduct(product);
  const reported = new Set(typeErrors.map((v) => v.field));
  const more = checked.ok
    ? []
    : checked.violations.filter((v) => ![...reported].some((f) => v.field === f || v.field.startsWith(`${f}.`)));
  return [...typeErrors, ...more];
}

function setScalar(
  desc: DescMessage,
  message: Record<string, unknown>,
  name: string,
  value: string,
  violations: FieldViolation[],
): void {
  const field: DescField | undefined = desc.fields.find((f) => f.name === name);
  if (field?.fieldKind !== "scalar") return;
  if (isIntegerScalar(field)) {
    if (!/^-?\d+$/.test(value)) {
      violations.push({ field: name, description: "must be an integer" });
      return;
    }
    message[field.localName] = Number(value);
    return;
  }
  message[field.localName] = value;
}

function isIntegerScalar(field: DescField): boolean {
  return (
    field.fieldKind === "scalar" &&
    [ScalarType.INT32, ScalarType.UINT32, ScalarType.SINT32, ScalarType.FIXED32, ScalarType.SFIXED32].includes(
      field.scalar,
    )
  );
}

function writeResponse(route: RestRoute, response: Message): unknown {
  const record = response as unknown as Record<string, unknown>;
  if (route.responseBody !== "") {
    const field = route.method.output.fields.find((f) => f.name === route.responseBody);
    return encode(field ? record[field.localName] : undefined);
  }
  const json: Record<string, unknown> = {};
  for (const field of route.method.output.fields) json[field.name] = encode(record[field.localName]);
  return json;
}

/** Products in the REST shape; lists of products as arrays; scalars as they are. */
function encode(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(encode);
  if (isProduct(value)) return productToJson(value) satisfies ProductJson;
  return value;
}

function isProduct(value: unknown): value is Product {
  return typeof value === "object" && value !== null && (value as Message).$typeName === ProductSchema.typeName;
}

function isCreated(response: Message): boolean {
  return (response as unknown as { outcome?: WriteOutcome }).outcome === WriteOutcome.CREATED;
}

/** express.json's errors: malformed JSON and oversized bodies. */
function bodyParserError(error: unknown) {
  const type = (error as { type?: unknown }).type;
  if (type === "entity.parse.failed") {
    return invalidArgument([{ field: "body", description: "is not valid JSON" }]);
  }
  if (type === "entity.too.large") {
    return new ApiError("resource_exhausted", "request body too large");
  }
  return undefined;
}
