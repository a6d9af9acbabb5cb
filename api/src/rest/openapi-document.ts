import { createRequire } from "node:module";
import { type DescField, type DescMessage, type DescService, ScalarType } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence, MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { type HttpRoute, type HttpVerb, httpRoutes } from "../http/http-routes.js";
import type { HttpBindings, HttpMethodBinding } from "../http/http-transcoder.js";

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1). */
export type JsonSchema = Record<string, unknown>;

/** The parts of OpenAPI 3.1 this document uses. */
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
  paths: Record<string, Partial<Record<HttpVerb, OpenApiOperation>>>;
  components: {
    schemas: Record<string, JsonSchema>;
    securitySchemes: Record<string, { type: string; scheme: string; description: string }>;
  };
}

/** What a method's operation says beyond what its annotation and descriptors give. */
export interface OpenApiMethodDocs {
  description?: string;
  /** The success statuses the method answers, each with its meaning; `{"200": "OK."}` when absent. */
  responses?: Record<string, string>;
}

/** The two JSON shapes of a message type with a codec: what clients send, and what the server writes. */
export interface OpenApiMessageSchemas {
  message: DescMessage;
  input: { name: string; schema: JsonSchema; example?: unknown };
  output: { name: string; schema: JsonSchema };
}

/**
 * A service's REST declaration (what its transcoder takes) with what only the document needs. The
 * generated code carries no proto comments, so descriptions are declared here too.
 */
export interface OpenApiDeclaration<S extends DescService = DescService> extends HttpBindings<S> {
  /** The API's name: the document's title. */
  title: string;
  /** What the service does. */
  description: string;
  /** Said after "Request bodies are read as JSON whatever their content type." */
  bodyNote?: string;
  /** The schemas of the message types that have a codec, which descriptors cannot give. */
  schemas?: readonly OpenApiMessageSchemas[];
  /** JSON Schema keywords (descriptions, bounds) added to fields, by "<message type name>.<field name>". */
  fields?: Readonly<Record<string, JsonSchema>>;
  methods?: { readonly [K in keyof S["method"]]?: HttpMethodBinding<S["method"][K]> & OpenApiMethodDocs };
}

const nodeRequire = createRequire(import.meta.url);
const PACKAGE_VERSION = (nodeRequire("../../../package.json") as { version: string }).version;

const JSON_TYPE = "application/json";
const SECURITY_SCHEME = "bearer";
const OPERATIONS_TAG = "operations";

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

type Direction = "input" | "output";

/**
 * The OpenAPI 3.1 document of the REST API. Paths, verbs, parameters and response shapes are
 * derived from the same google.api.http annotations the transcoder serves (httpRoutes) and the
 * message descriptors; what they cannot say comes from the service's declaration, the same object
 * the transcoder takes, so the document cannot drift from the server.
 */
export function buildOpenApiDocument(declaration: OpenApiDeclaration): OpenApiDocument {
  const { service } = declaration;
  const routes = httpRoutes(service);
  const schemas: Record<string, JsonSchema> = {};
  for (const { input, output } of declaration.schemas ?? []) {
    schemas[input.name] = input.schema;
    schemas[output.name] = output.schema;
  }
  Object.assign(schemas, errorSchemas());
  const derive = createSchemaDeriver(declaration, schemas);
  const paths: OpenApiDocument["paths"] = {};
  const bindings = new Map<string, number>();
  for (const route of routes) {
    const seen = bindings.get(route.method.name) ?? 0;
    bindings.set(route.method.name, seen + 1);
    const operationId = seen === 0 ? route.method.name : `${route.method.name}${seen + 1}`;
    paths[route.template] = {
      ...paths[route.template],
      [route.verb]: routeOperation(route, operationId, declaration, derive),
    };
  }
  Object.assign(paths, operationalPaths());

  return {
    openapi: "3.1.0",
    info: { title: declaration.title, version: PACKAGE_VERSION, description: serviceDescription(declaration, routes) },
    tags: [
      { name: service.name, description: `The REST mapping of \`${service.typeName}\`.` },
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

function serviceDescription(declaration: OpenApiDeclaration, routes: HttpRoute[]): string {
  const { service } = declaration;
  const mapped = new Set(routes.map((r) => r.method));
  const rpcOnly = service.methods.filter((m) => !mapped.has(m)).map((m) => `\`${m.name}\``);
  const example =
    service.methods.find((m) => m.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) ?? service.methods[0];
  return [
    declaration.description,
    "",
    `The same service, \`${service.typeName}\`, is also served over Connect, gRPC and gRPC-Web on the same ` +
      "port (HTTP/1.1 and cleartext HTTP/2)" +
      (example ? `, e.g. \`POST /${service.typeName}/${example.name}\` with a JSON body for Connect` : "") +
      ". gRPC server reflection is enabled, so grpcurl and buf curl need no proto files." +
      (rpcOnly.length > 0 ? ` Only available over RPC: ${rpcOnly.join(", ")}.` : ""),
    "",
    `Request bodies are read as JSON whatever their content type.${declaration.bodyNote ? ` ${declaration.bodyNote}` : ""}`,
  ].join("\n");
}

function errorSchemas(): Record<string, JsonSchema> {
  return {
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
}

/** Mirrors createHttpTranscoder: what it reads, whom it asks for a token and which statuses it answers. */
function routeOperation(
  route: HttpRoute,
  operationId: string,
  declaration: OpenApiDeclaration,
  derive: SchemaDeriver,
): OpenApiOperation {
  const { method } = route;
  const parameters: NonNullable<OpenApiOperation["parameters"]> = route.pathFields.map((field) => ({
    name: field.name,
    in: "path",
    required: true,
    schema: derive.field(field, "input"),
  }));
  if (route.body !== "*") {
    for (const field of method.input.fields) {
      if (!isParameter(field) || route.pathFields.includes(field) || field === route.bodyField) continue;
      parameters.push({ name: field.name, in: "query", required: false, schema: derive.field(field, "input") });
    }
  }
  for (const parameter of parameters) {
    const { description, ...schema } = parameter.schema;
    parameter.schema = schema;
    if (typeof description === "string") parameter.description = description;
  }

  const isWrite = method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
  const isValidated =
    route.body !== "" ||
    parameters.some((p) => p.in === "query") ||
    route.pathFields.some((f) => f.fieldKind !== "scalar" || f.scalar !== ScalarType.STRING);
  const successSchema = route.responseField
    ? derive.field(route.responseField, "output")
    : derive.message(method.output, "output");
  const docs: OpenApiMethodDocs | undefined = (
    declaration.methods as Record<string, OpenApiMethodDocs | undefined> | undefined
  )?.[method.localName];
  const responses: Record<string, OpenApiResponse> = {};
  for (const [status, description] of Object.entries(docs?.responses ?? { "200": "OK." })) {
    responses[status] = jsonResponse(description, successSchema);
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
  if (route.pathFields.length > 0) responses["404"] = errorResponse("Not found.");
  if (route.body !== "") responses["413"] = errorResponse("Request body larger than the server's `MAX_BODY_BYTES`.");
  responses["503"] = errorResponse(
    isWrite
      ? "Database unavailable, or too many writes waiting (`DB_WRITE_QUEUE_MAX`); nothing was written, retry later."
      : "Database unavailable; retry later.",
  );

  return {
    operationId,
    summary: summaryOf(method.name),
    ...(docs?.description ? { description: docs.description } : {}),
    tags: [method.parent.name],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body !== "" ? { requestBody: requestBody(route, declaration, derive) } : {}),
    responses,
    ...(isWrite ? { security: [{ [SECURITY_SCHEME]: [] }] } : {}),
  };
}

/** The fields the transcoder reads from path and query: scalars and enums, single or repeated. */
function isParameter(field: DescField): boolean {
  return (
    field.fieldKind === "scalar" ||
    field.fieldKind === "enum" ||
    (field.fieldKind === "list" && (field.listKind === "scalar" || field.listKind === "enum"))
  );
}

function requestBody(
  route: HttpRoute,
  declaration: OpenApiDeclaration,
  derive: SchemaDeriver,
): NonNullable<OpenApiOperation["requestBody"]> {
  const bodyType = route.body === "*" ? route.method.input : route.bodyField?.message;
  const schema = route.bodyField ? derive.field(route.bodyField, "input") : derive.message(route.method.input, "input");
  const declared = declaration.schemas?.find((s) => s.message.typeName === bodyType?.typeName);
  return {
    required: true,
    content: {
      [JSON_TYPE]: { schema, ...(declared?.input.example !== undefined ? { example: declared.input.example } : {}) },
    },
  };
}

interface SchemaDeriver {
  /** The JSON the transcoder reads or writes for a field, with the declaration's additions. */
  field(field: DescField, direction: Direction): JsonSchema;
  /** A message's schema: a reference to its declared or derived component, or a well-known type's inline form. */
  message(desc: DescMessage, direction: Direction): JsonSchema;
}

/**
 * Schemas as createHttpJson writes and reads: declared components for codec'd types, protobuf JSON
 * (proto field names, every implicit field written) for the rest. Fails, naming the type, for a
 * codec'd type without declared schemas and for well-known types it does not describe.
 */
function createSchemaDeriver(declaration: OpenApiDeclaration, schemas: Record<string, JsonSchema>): SchemaDeriver {
  const declared = new Map((declaration.schemas ?? []).map((s) => [s.message.typeName, s]));
  const codecTypes = new Set((declaration.codecs ?? []).map((c) => c.message.typeName));
  const componentOwners = new Map<string, string>();

  const message = (desc: DescMessage, direction: Direction): JsonSchema => {
    const shapes = declared.get(desc.typeName);
    if (shapes) return ref(shapes[direction].name);
    if (codecTypes.has(desc.typeName)) {
      throw new Error(`no OpenAPI schema for ${desc.typeName}: it has a codec, so declare its schemas`);
    }
    const wellKnown = wellKnownSchema(desc);
    if (wellKnown) return wellKnown;
    // Clients may leave out any field they send, and codec'd types inside differ by direction.
    const suffix = direction === "input" ? "Input" : "";
    const owner = `${desc.typeName}${suffix}`;
    let name = `${desc.name}${suffix}`;
    if (name in schemas && componentOwners.get(name) !== owner) name = owner;
    if (!(name in schemas)) {
      componentOwners.set(name, owner);
      // Set before the fields are derived, so that a recursive type refers to itself.
      schemas[name] = {};
      const required =
        direction === "output"
          ? desc.fields
              .filter(
                (f) =>
                  f.fieldKind === "list" ||
                  f.fieldKind === "map" ||
                  (f.presence === FeatureSet_FieldPresence.IMPLICIT && f.oneof === undefined),
              )
              .map((f) => f.name)
          : [];
      schemas[name] = {
        type: "object",
        ...(required.length > 0 ? { required } : {}),
        properties: Object.fromEntries(desc.fields.map((f) => [f.name, field(f, direction)])),
      };
    }
    return ref(name);
  };

  const value = (f: DescField, direction: Direction): JsonSchema => {
    if (f.fieldKind === "scalar") return scalarSchema(f.scalar);
    if (f.fieldKind === "enum") return { type: "string", enum: f.enum.values.map((v) => v.name) };
    if (f.fieldKind === "message") return message(f.message, direction);
    if (f.fieldKind === "list") {
      if (f.listKind === "scalar") return scalarSchema(f.scalar);
      if (f.listKind === "enum") return { type: "string", enum: f.enum.values.map((v) => v.name) };
      return message(f.message, direction);
    }
    if (f.mapKind === "scalar") return scalarSchema(f.scalar);
    if (f.mapKind === "enum") return { type: "string", enum: f.enum.values.map((v) => v.name) };
    return message(f.message, direction);
  };

  const field = (f: DescField, direction: Direction): JsonSchema => {
    const extra = declaration.fields?.[`${f.parent.typeName}.${f.name}`] ?? {};
    if (f.fieldKind === "list") return { type: "array", items: value(f, direction), ...extra };
    if (f.fieldKind === "map") return { type: "object", additionalProperties: value(f, direction), ...extra };
    return { ...value(f, direction), ...extra };
  };

  return { field, message };
}

function scalarSchema(scalar: ScalarType): JsonSchema {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", minimum: 0, maximum: 2 ** 32 - 1 };
    // protobuf JSON writes 64-bit integers as strings, so that no client loses precision.
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", pattern: "^-?\\d+$" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", pattern: "^\\d+$" };
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return { oneOf: [{ type: "number" }, { enum: ["NaN", "Infinity", "-Infinity"] }] };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
  }
}

/** The protobuf JSON of the well-known types that have a special one; undefined for other messages. */
function wellKnownSchema(desc: DescMessage): JsonSchema | undefined {
  if (!desc.typeName.startsWith("google.protobuf.")) return undefined;
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?\\d+(\\.\\d{1,9})?s$" };
    case "google.protobuf.FieldMask":
      return { type: "string" };
    case "google.protobuf.Empty":
    case "google.protobuf.Struct":
      return { type: "object" };
    case "google.protobuf.ListValue":
      return { type: "array" };
    case "google.protobuf.Value":
      return {};
    default: {
      const wrapped = desc.typeName.endsWith("Value") && desc.fields.length === 1 ? desc.fields[0] : undefined;
      if (wrapped?.fieldKind === "scalar") return scalarSchema(wrapped.scalar);
      throw new Error(`no OpenAPI schema for the well-known type ${desc.typeName}`);
    }
  }
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
