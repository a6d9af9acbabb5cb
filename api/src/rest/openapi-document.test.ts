import { create, createFileRegistry, type MessageInitShape, setExtension } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_timestamp,
  FieldDescriptorProto_Label as Label,
  MethodOptions_IdempotencyLevel,
  MethodOptionsSchema,
  FieldDescriptorProto_Type as Type,
} from "@bufbuild/protobuf/wkt";
import { expect } from "chai";
import { file_google_api_annotations, http as httpOption } from "#gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "#gen/google/api/http_pb.js";
import { buildOpenApiDocument, type OpenApiDeclaration } from "./openapi-document.js";
import { productHttp } from "./product-http.js";

const field = (name: string, number: number, type: Type, more: { label?: Label; typeName?: string } = {}) => ({
  name,
  number,
  type,
  label: Label.OPTIONAL,
  ...more,
});

function method(name: string, input: string, output: string, rule: MessageInitShape<typeof HttpRuleSchema>) {
  const readOnly = rule.pattern?.case === "get";
  const options = create(
    MethodOptionsSchema,
    readOnly ? { idempotencyLevel: MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS } : {},
  );
  setExtension(options, httpOption, create(HttpRuleSchema, rule));
  return { name, inputType: `.test.v1.${input}`, outputType: `.test.v1.${output}`, options };
}

/** A service with a field of every kind the transcoder reads and writes, and a type with a codec (Part). */
const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "test/v1/things.proto",
    package: "test.v1",
    syntax: "proto3",
    dependency: ["google/api/annotations.proto", "google/protobuf/timestamp.proto"],
    enumType: [
      {
        name: "Kind",
        value: [
          { name: "KIND_UNSPECIFIED", number: 0 },
          { name: "KIND_BIG", number: 1 },
        ],
      },
    ],
    messageType: [
      {
        name: "Thing",
        field: [
          field("id", 1, Type.STRING),
          field("count", 2, Type.INT64),
          field("kind", 3, Type.ENUM, { typeName: ".test.v1.Kind" }),
          field("labels", 4, Type.MESSAGE, { label: Label.REPEATED, typeName: ".test.v1.Thing.LabelsEntry" }),
          field("created", 5, Type.MESSAGE, { typeName: ".google.protobuf.Timestamp" }),
          field("parts", 6, Type.MESSAGE, { label: Label.REPEATED, typeName: ".test.v1.Part" }),
        ],
        nestedType: [
          {
            name: "LabelsEntry",
            field: [field("key", 1, Type.STRING), field("value", 2, Type.STRING)],
            options: { mapEntry: true },
          },
        ],
      },
      { name: "Part", field: [field("name", 1, Type.STRING)] },
      { name: "GetThingRequest", field: [field("id", 1, Type.STRING)] },
      {
        name: "ListThingsRequest",
        field: [
          field("after", 1, Type.UINT64),
          field("kind", 2, Type.ENUM, { typeName: ".test.v1.Kind" }),
          field("deep", 3, Type.BOOL),
          field("tags", 4, Type.STRING, { label: Label.REPEATED }),
          field("near", 5, Type.DOUBLE),
        ],
      },
      {
        name: "ListThingsResponse",
        field: [field("things", 1, Type.MESSAGE, { label: Label.REPEATED, typeName: ".test.v1.Thing" })],
      },
    ],
    service: [
      {
        name: "ThingService",
        method: [
          method("GetThing", "GetThingRequest", "Thing", { pattern: { case: "get", value: "/things/{id}" } }),
          method("ListThings", "ListThingsRequest", "ListThingsResponse", {
            pattern: { case: "get", value: "/things" },
          }),
          method("PutThing", "Thing", "Thing", { pattern: { case: "put", value: "/things/{id}" }, body: "*" }),
        ],
      },
    ],
  }),
  (name) =>
    ({
      "google/api/annotations.proto": file_google_api_annotations,
      "google/protobuf/timestamp.proto": file_google_protobuf_timestamp,
    })[name],
);

function thingDeclaration(): OpenApiDeclaration {
  const service = registry.getService("test.v1.ThingService");
  const part = registry.getMessage("test.v1.Part");
  if (!service || !part) throw new Error("descriptor not built");
  return {
    service,
    title: "Things",
    description: "Keeps things.",
    codecs: [
      {
        message: part,
        subject: "part",
        toJson: () => ({}),
        fromJson: () => ({ message: create(part), violations: [] }),
      },
    ],
    schemas: [
      {
        message: part,
        input: { name: "PartInput", schema: { type: "string" }, example: "wheel" },
        output: { name: "PartOutput", schema: { type: "string" } },
      },
    ],
    fields: { "test.v1.GetThingRequest.id": { description: "The thing's id." } },
  };
}

describe("OpenAPI document (buildOpenApiDocument)", () => {
  const document = buildOpenApiDocument(thingDeclaration());
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

  it("when a message has no codec, then its schema is its protobuf JSON, with proto names and every implicit field required", () => {
    expect(document.components.schemas.Thing).to.deep.equal({
      type: "object",
      required: ["id", "count", "kind", "labels", "parts"],
      properties: {
        id: { type: "string" },
        count: { type: "string", pattern: "^-?\\d+$" },
        kind: { type: "string", enum: ["KIND_UNSPECIFIED", "KIND_BIG"] },
        labels: { type: "object", additionalProperties: { type: "string" } },
        created: { type: "string", format: "date-time" },
        parts: { type: "array", items: ref("PartOutput") },
      },
    });
  });

  it('when a body is "*", then its schema is the input shape: nothing required, codec types in their input form', () => {
    const put = document.paths["/things/{id}"]?.put;
    expect(put?.requestBody?.content["application/json"]?.schema).to.deep.equal(ref("ThingInput"));
    const input = document.components.schemas.ThingInput as { required?: unknown; properties: Record<string, unknown> };
    expect(input.required).to.equal(undefined);
    expect(input.properties.parts).to.deep.equal({ type: "array", items: ref("PartInput") });
    expect(
      put?.parameters?.map((p) => p.name),
      "no query parameters with a whole-request body",
    ).to.deep.equal(["id"]);
    expect(Object.keys(put?.responses ?? {})).to.have.members(["200", "400", "401", "404", "413", "503"]);
    expect(put?.security).to.deep.equal([{ bearer: [] }]);
  });

  it("when a method has no body, then every field the path does not bind is a query parameter in its JSON form", () => {
    const list = document.paths["/things"]?.get;
    const schemas = Object.fromEntries((list?.parameters ?? []).map((p) => [`${p.in} ${p.name}`, p.schema]));
    expect(schemas).to.deep.equal({
      "query after": { type: "string", pattern: "^\\d+$" },
      "query kind": { type: "string", enum: ["KIND_UNSPECIFIED", "KIND_BIG"] },
      "query deep": { type: "boolean" },
      "query tags": { type: "array", items: { type: "string" } },
      "query near": { oneOf: [{ type: "number" }, { enum: ["NaN", "Infinity", "-Infinity"] }] },
    });
    expect(Object.keys(list?.responses ?? {})).to.have.members(["200", "400", "503"]);
    expect(list?.security).to.equal(undefined);
  });

  it("when fields are documented in the declaration, then parameters carry the description", () => {
    const id = document.paths["/things/{id}"]?.get?.parameters?.[0];
    expect(id).to.deep.equal({
      name: "id",
      in: "path",
      required: true,
      description: "The thing's id.",
      schema: { type: "string" },
    });
  });

  it("when a type has a codec but no declared schemas, then building fails naming it", () => {
    expect(() => buildOpenApiDocument({ ...thingDeclaration(), schemas: [] })).to.throw(/test\.v1\.Part/);
  });

  it("when built from productHttp, then CreateProduct documents the statuses its successStatus answers", () => {
    const create = buildOpenApiDocument(productHttp).paths["/products/"]?.post;
    expect(Object.keys(create?.responses ?? {})).to.include.members(["200", "201"]);
    expect(create?.requestBody?.content["application/json"]?.example).to.deep.include({ id: "12345" });
  });
});
