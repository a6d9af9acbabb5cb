import {
  create,
  type DescField,
  type DescMethod,
  type DescService,
  type Message,
  type MessageShape,
  ScalarType,
} from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createServiceImplSpec, type MethodImplSpec, type ServiceImpl } from "@connectrpc/connect";
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import { BadRequestSchema } from "#gen/google/rpc/error_details_pb.js";
import { type FieldViolation, invalidArgumentMessage } from "../errors.js";
import { CALL_COMPLETED, type CallContext, createCallContext } from "../rpc/call-context.js";
import { toHttpError } from "./http-error.js";
import { createHttpJson, fieldValue, type HttpJson, type HttpJsonCodec, setFieldValue } from "./http-json.js";
import { type HttpRoute, httpRoutes } from "./http-routes.js";
import { decodeUtf8, InvalidUtf8Error, parseJson, unsupportedContentType } from "./json-body.js";

/** What a service declares about one method's REST form, beside its annotation. */
export interface HttpMethodBinding<M extends DescMethod = DescMethod> {
  /** The status of a successful call, e.g. 201 when it created something; 200 when absent. */
  successStatus?(response: MessageShape<M["output"]>): number;
}

/**
 * What the google.api.http annotations cannot say: the REST JSON of message types whose protobuf
 * JSON REST clients do not use, and per-method hooks. Declared by the service's REST module.
 */
export interface HttpBindings<S extends DescService = DescService> {
  service: S;
  codecs?: readonly HttpJsonCodec[];
  methods?: { readonly [K in keyof S["method"]]?: HttpMethodBinding<S["method"][K]> };
}

/** What createHttpTranscoder needs at runtime, beside the static bindings. */
export interface HttpTranscoderOptions<S extends DescService> {
  /** The same implementation the RPC protocols serve; missing methods answer 501. */
  impl: Partial<ServiceImpl<S>>;
  /** Largest request body read, in bytes; larger ones get 413. */
  maxBodyBytes: number;
  /**
   * Asked for methods that may have side effects (idempotency_level other than NO_SIDE_EFFECTS);
   * when it refuses, 401 with `WWW-Authenticate: Bearer`. Absent: every call may proceed.
   */
  isAuthorized?: (authorization: string | undefined) => boolean;
}

/**
 * REST for any Connect service, read from its google.api.http annotations: path variables, query
 * parameters and the body (`body: "*"`, one field, or none) become the request message, the
 * implementation's handler is called as over RPC, and the response (or its `response_body` field)
 * is written as JSON. Errors get the Connect protocol's HTTP status and a JSON body (http-error.ts).
 * Unmatched requests are passed on, so the RPC protocols can be mounted behind it.
 */
export function createHttpTranscoder<S extends DescService>(
  bindings: HttpBindings<S>,
  options: HttpTranscoderOptions<S>,
): Router {
  const { service } = bindings;
  const spec = createServiceImplSpec(service, options.impl);
  const json = createHttpJson(bindings.codecs ?? []);
  const router = express.Router({ strict: true });
  // Bytes only (decompressed, size-capped): the content type, UTF-8 and JSON are checked here.
  const readBody = express.raw({ limit: options.maxBodyBytes, type: () => true });
  const methodBindings = (bindings.methods ?? {}) as Record<string, HttpMethodBinding | undefined>;

  for (const route of httpRoutes(service)) {
    const { method } = route;
    const impl = spec.methods[method.localName] as Extract<MethodImplSpec, { kind: "unary" }>;
    const successStatus = methodBindings[method.localName]?.successStatus;
    const subject = bodySubject(route, json);
    const handlers: express.RequestHandler[] = [];
    const { isAuthorized } = options;
    if (isAuthorized && method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) {
      handlers.push((req, res, next) => {
        if (isAuthorized(req.get("authorization"))) return next();
        const { status, body } = toHttpError(new ConnectError("missing or invalid bearer token", Code.Unauthenticated));
        res.setHeader("WWW-Authenticate", "Bearer");
        sendJson(res, status, body);
      });
    }
    if (route.body !== "") handlers.push(readJsonBody(subject, readBody));
    handlers.push(async (req, res) => {
      const request = bindRequest(route, req, json, subject);
      const context = handlerContext(service, method, req, res);
      try {
        const response = create(method.output, await impl.impl(request, context));
        context.responseHeader.forEach((value, key) => {
          res.append(key, value);
        });
        const body = route.responseField
          ? json.writeField(route.responseField, response)
          : json.write(method.output, response);
        sendJson(res, successStatus?.(response) ?? 200, body);
      } finally {
        context.abort(CALL_COMPLETED);
      }
    });
    router[route.verb](route.expressPath, ...handlers);
  }

  router.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const { status, body } = toHttpError(error);
    sendJson(res, status, body);
  });
  return router;
}

/**
 * What `res.status(status).json(body)` sends, written with Node's own calls: on every answer
 * express's `json` and `send` also look up app settings, re-parse the content type to set its
 * charset and check the request's freshness, none of which applies here (no ETags, no caching).
 */
function sendJson(res: Response, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  if (!res.hasHeader("Content-Type")) res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(text));
  res.end(text);
}

/**
 * Sets req.body to the JSON of a request body: application/json (or +json) in UTF-8 only, so that
 * a cross-site text/plain POST cannot write, and no byte is replaced by U+FFFD. A request without
 * a body (and without a content type) leaves it undefined.
 */
function readJsonBody(subject: string, readBody: express.RequestHandler): express.RequestHandler {
  const refuse = (res: Response, status: number, error: ConnectError) => {
    sendJson(res, status, toHttpError(error).body);
  };
  return (req, res, next) => {
    const contentType = req.get("content-type");
    const declaresBody = req.get("transfer-encoding") !== undefined || Number(req.get("content-length") ?? 0) > 0;
    if (contentType !== undefined || declaresBody) {
      const unsupported = unsupportedContentType(contentType);
      // 415 with invalid_argument, as 413 carries resource_exhausted: the Connect code, the HTTP status.
      if (unsupported) return refuse(res, 415, new ConnectError(unsupported, Code.InvalidArgument));
    }
    readBody(req, res, (error?: unknown) => {
      if (error !== undefined) return bodyReadFailed(error, res, next, refuse);
      const bytes: unknown = req.body;
      if (!(bytes instanceof Uint8Array)) {
        req.body = undefined;
        return next();
      }
      try {
        // An empty body is an empty object, as express.json reads it.
        req.body = bytes.length === 0 ? {} : parseJson(decodeUtf8(bytes));
      } catch (cause) {
        const violation =
          cause instanceof InvalidUtf8Error
            ? { field: cause.field ?? "body", description: "is not valid UTF-8" }
            : { field: "body", description: "is not valid JSON" };
        return next(invalidArgument(subject, [violation]));
      }
      next();
    });
  };
}

/** body-parser's errors, which carry an HTTP status, as REST errors; anything else is internal. */
function bodyReadFailed(
  error: unknown,
  res: Response,
  next: NextFunction,
  refuse: (res: Response, status: number, error: ConnectError) => void,
): void {
  const { type, status } = error as { type?: unknown; status?: unknown };
  if (type === "entity.too.large") {
    // 413 rather than resource_exhausted's 429: the request itself is at fault, not the rate.
    refuse(res, 413, new ConnectError("request body too large", Code.ResourceExhausted));
    return;
  }
  if (type === "encoding.unsupported") {
    const encoding = String((error as { encoding?: unknown }).encoding ?? "");
    const message = `content-encoding ${encoding} is not supported; use gzip, deflate, br or identity`;
    refuse(res, 415, new ConnectError(message, Code.InvalidArgument));
    return;
  }
  if (typeof status === "number" && status >= 400 && status < 500) {
    const message = `unreadable request body: ${error instanceof Error ? error.message : String(error)}`;
    refuse(res, 400, new ConnectError(message, Code.InvalidArgument));
    return;
  }
  next(error);
}

/** Names what a route's request is in its invalid_argument errors: the body's codec subject, or "request". */
function bodySubject(route: HttpRoute, json: HttpJson): string {
  const bodyType = route.body === "*" ? route.method.input : route.bodyField?.message;
  return (bodyType && json.subjectOf(bodyType)) ?? "request";
}

/**
 * Path variables first, then query parameters (only for fields neither the path nor the body
 * binds; unknown names and repeated singular parameters are ignored), then the body.
 */
function bindRequest(route: HttpRoute, req: Request, json: HttpJson, subject: string): Message {
  const input = route.method.input;
  const violations: FieldViolation[] = [];
  let request: Message;
  if (route.body === "*") {
    const parsed = json.read(input, req.body);
    request = parsed.message;
    violations.push(...parsed.violations);
  } else {
    request = create(input);
  }
  for (const field of route.pathFields) {
    bindParam(request, field, String(req.params[field.name] ?? ""), violations);
  }
  if (route.body !== "*") {
    for (const [name, value] of Object.entries(req.query)) {
      const field = input.fields.find((f) => f.name === name);
      if (!field || field === route.bodyField || route.pathFields.includes(field)) continue;
      if (field.fieldKind === "list" && (field.listKind === "scalar" || field.listKind === "enum")) {
        const values = Array.isArray(value) ? value : [value];
        if (values.every((v) => typeof v === "string")) bindParam(request, field, values, violations);
      } else if ((field.fieldKind === "scalar" || field.fieldKind === "enum") && typeof value === "string") {
        bindParam(request, field, value, violations);
      }
    }
  }
  if (route.bodyField) violations.push(...json.readField(route.bodyField, request, req.body));
  if (violations.length > 0) throw invalidArgument(subject, violations);
  return request;
}

function bindParam(request: Message, field: DescField, text: string | string[], violations: FieldViolation[]): void {
  if (Array.isArray(text)) {
    const values: unknown[] = [];
    for (const item of text) {
      const parsed = parseParam(field, item);
      if (parsed.ok) values.push(parsed.value);
      else violations.push({ field: field.name, description: parsed.description });
    }
    setFieldValue(request, field, [...((fieldValue(request, field) as unknown[] | undefined) ?? []), ...values]);
    return;
  }
  const parsed = parseParam(field, text);
  if (parsed.ok) setFieldValue(request, field, parsed.value);
  else violations.push({ field: field.name, description: parsed.description });
}

type Parsed = { ok: true; value: unknown } | { ok: false; description: string };

const SIGNED = /^-?\d+$/;
const UNSIGNED = /^\d+$/;
const DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * A path or query parameter in the form protobuf JSON gives the field's type. Numbers are checked
 * for their form only: ranges are the service's to check, as it does for RPC requests.
 */
function parseParam(field: DescField, text: string): Parsed {
  if (field.enum) {
    const byName = field.enum.values.find((v) => v.name === text);
    if (byName) return { ok: true, value: byName.number };
    if (SIGNED.test(text)) return { ok: true, value: Number(text) };
    return { ok: false, description: `must be one of ${field.enum.values.map((v) => v.name).join(", ")}` };
  }
  if (field.scalar === undefined) return { ok: false, description: "cannot be given as a parameter" };
  switch (field.scalar) {
    case ScalarType.STRING:
      return { ok: true, value: text };
    case ScalarType.BOOL:
      if (text === "true" || text === "false") return { ok: true, value: text === "true" };
      return { ok: false, description: "must be true or false" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return SIGNED.test(text) ? { ok: true, value: Number(text) } : { ok: false, description: "must be an integer" };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64: {
      const unsigned = field.scalar === ScalarType.UINT64 || field.scalar === ScalarType.FIXED64;
      if (!(unsigned ? UNSIGNED : SIGNED).test(text)) {
        return { ok: false, description: unsigned ? "must be a non-negative integer" : "must be an integer" };
      }
      return { ok: true, value: "longAsString" in field && field.longAsString ? text : BigInt(text) };
    }
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      if (text === "NaN" || text === "Infinity" || text === "-Infinity" || DECIMAL.test(text)) {
        return { ok: true, value: Number(text) };
      }
      return { ok: false, description: "must be a number" };
    case ScalarType.BYTES:
      return BASE64.test(text) ? { ok: true, value: base64Decode(text) } : { ok: false, description: "must be base64" };
    default:
      return { ok: false, description: "cannot be given as a parameter" };
  }
}

function invalidArgument(subject: string, violations: FieldViolation[]): ConnectError {
  const detail = { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: violations }) };
  return new ConnectError(invalidArgumentMessage(subject, violations), Code.InvalidArgument, undefined, [detail]);
}

/** A context like the RPC protocols give handlers, aborted when the client goes away or the call ends. */
function handlerContext(service: DescService, method: DescMethod, req: Request, res: Response): CallContext {
  const requestHeader = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const item of value) requestHeader.append(name, item);
    else if (value !== undefined) requestHeader.append(name, value);
  }
  const context = createCallContext({
    service,
    method,
    protocolName: "rest",
    requestMethod: req.method,
    url: `${req.protocol}://${req.get("host") ?? "localhost"}${req.originalUrl}`,
    requestHeader,
  });
  res.once("close", () => {
    if (!res.writableFinished) context.abort(new ConnectError("the client closed the request", Code.Canceled));
  });
  return context;
}
