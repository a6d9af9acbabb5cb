import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  create,
  createFileRegistry,
  type DescMessage,
  type DescService,
  type MessageInitShape,
  setExtension,
} from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FieldDescriptorProto_Label as Label,
  MethodOptions_IdempotencyLevel,
  MethodOptionsSchema,
  FieldDescriptorProto_Type as Type,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { expect } from "chai";
import express from "express";
import { file_google_api_annotations, http as httpOption } from "#gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "#gen/google/api/http_pb.js";
import { BadRequestSchema } from "#gen/google/rpc/error_details_pb.js";
import type { HttpJsonCodec } from "./http-json.js";
import { httpRoutes } from "./http-routes.js";
import { createHttpTranscoder } from "./http-transcoder.js";

type Rule = MessageInitShape<typeof HttpRuleSchema>;
type FieldInit = { name: string; number: number; type: Type; label?: Label; typeName?: string };

const scalar = (name: string, number: number, type: Type) => ({ name, number, type, label: Label.OPTIONAL });
const repeated = (name: string, number: number, type: Type, typeName?: string) => ({
  name,
  number,
  type,
  label: Label.REPEATED,
  typeName,
});
const message = (name: string, number: number, typeName: string) => ({
  name,
  number,
  type: Type.MESSAGE,
  label: Label.OPTIONAL,
  typeName,
});

function methodOptions(rule: Rule | undefined, readOnly = false) {
  const options = create(
    MethodOptionsSchema,
    readOnly ? { idempotencyLevel: MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS } : {},
  );
  if (rule) setExtension(options, httpOption, create(HttpRuleSchema, rule));
  return options;
}

/** A service of its own, built from a descriptor, so that the transcoder is seen to know nothing of products. */
function shelfFile(methods: { name: string; input: string; output: string; rule?: Rule; readOnly?: boolean }[]) {
  const messages: Record<string, FieldInit[]> = {
    Item: [
      scalar("id", 1, Type.STRING),
      scalar("title", 2, Type.STRING),
      { name: "kind", number: 3, type: Type.ENUM, label: Label.OPTIONAL, typeName: ".test.v1.Kind" },
      scalar("copies", 4, Type.INT64),
      scalar("available", 5, Type.BOOL),
      repeated("tags", 6, Type.STRING),
    ],
    GetItemRequest: [scalar("shelf", 1, Type.STRING), scalar("id", 2, Type.STRING)],
    GetItemResponse: [message("item", 1, ".test.v1.Item"), scalar("etag", 2, Type.STRING)],
    ListItemsRequest: [
      scalar("shelf", 1, Type.STRING),
      scalar("page_size", 2, Type.INT32),
      repeated("tags", 3, Type.STRING),
      { name: "kind", number: 4, type: Type.ENUM, label: Label.OPTIONAL, typeName: ".test.v1.Kind" },
      scalar("min_price", 5, Type.DOUBLE),
      scalar("after", 6, Type.INT64),
      scalar("cursor", 7, Type.BYTES),
      scalar("verbose", 8, Type.BOOL),
    ],
    ListItemsResponse: [
      repeated("items", 1, Type.MESSAGE, ".test.v1.Item"),
      scalar("next_page_token", 2, Type.STRING),
      repeated("by_id", 3, Type.MESSAGE, ".test.v1.ListItemsResponse.ByIdEntry"),
    ],
    PutItemRequest: [scalar("shelf", 1, Type.STRING), message("item", 2, ".test.v1.Item")],
    Shelf: [scalar("name", 1, Type.STRING), scalar("capacity", 2, Type.INT32)],
    UpdateShelfRequest: [
      scalar("shelf", 1, Type.STRING),
      scalar("name", 2, Type.STRING),
      scalar("capacity", 3, Type.INT32),
    ],
  };
  const file = create(FileDescriptorProtoSchema, {
    name: "test/v1/shelf.proto",
    package: "test.v1",
    syntax: "proto3",
    dependency: ["google/api/annotations.proto"],
    enumType: [
      {
        name: "Kind",
        value: [
          { name: "KIND_UNSPECIFIED", number: 0 },
          { name: "KIND_BOOK", number: 1 },
          { name: "KIND_MAGAZINE", number: 2 },
        ],
      },
    ],
    messageType: Object.entries(messages).map(([name, field]) => ({
      name,
      field,
      nestedType:
        name === "ListItemsResponse"
          ? [
              {
                name: "ByIdEntry",
                field: [scalar("key", 1, Type.STRING), message("value", 2, ".test.v1.Item")],
                options: { mapEntry: true },
              },
            ]
          : [],
    })),
    service: [
      {
        name: "ShelfService",
        method: methods.map((m) => ({
          name: m.name,
          inputType: `.test.v1.${m.input}`,
          outputType: `.test.v1.${m.output}`,
          options: methodOptions(m.rule, m.readOnly),
        })),
      },
    ],
  });
  const registry = createFileRegistry(file, (name) =>
    name === "google/api/annotations.proto" ? file_google_api_annotations : undefined,
  );
  const service = registry.getService("test.v1.ShelfService");
  if (!service) throw new Error("no ShelfService");
  const schema = (name: string): DescMessage => {
    const desc = registry.getMessage(`test.v1.${name}`);
    if (!desc) throw new Error(`no ${name}`);
    return desc;
  };
  return { service, schema };
}

const { service: ShelfService, schema } = shelfFile([
  {
    name: "GetItem",
    input: "GetItemRequest",
    output: "GetItemResponse",
    rule: { pattern: { case: "get", value: "/shelves/{shelf}/items/{id}" }, responseBody: "item" },
    readOnly: true,
  },
  {
    name: "ListItems",
    input: "ListItemsRequest",
    output: "ListItemsResponse",
    rule: {
      pattern: { case: "get", value: "/shelves/{shelf}/items" },
      additionalBindings: [{ pattern: { case: "get", value: "/items" } }],
    },
    readOnly: true,
  },
  {
    name: "PutItem",
    input: "PutItemRequest",
    output: "Item",
    rule: { pattern: { case: "put", value: "/shelves/{shelf}/items" }, body: "item" },
  },
  {
    name: "UpdateShelf",
    input: "UpdateShelfRequest",
    output: "Shelf",
    rule: { pattern: { case: "patch", value: "/shelves/{shelf}" }, body: "*" },
  },
  {
    name: "ReplaceItem",
    input: "PutItemRequest",
    output: "Item",
    rule: { pattern: { case: "post", value: "/shelves/{shelf}/replace" }, body: "*" },
  },
  {
    name: "ArchiveShelf",
    input: "UpdateShelfRequest",
    output: "Shelf",
    rule: { pattern: { case: "post", value: "/shelves/{shelf}/archive" } },
  },
  { name: "Ping", input: "Shelf", output: "Shelf" },
]);

/** Items as {"ID","Title"}: a REST shape that is not protobuf JSON. */
const itemCodec: HttpJsonCodec = {
  message: schema("Item"),
  subject: "item",
  toJson: (item) => ({ ID: (item as any).id, Title: (item as any).title }),
  fromJson(json) {
    const body = (json ?? {}) as Record<string, unknown>;
    const violations = typeof body.ID === "string" ? [] : [{ field: "ID", description: "must be a string" }];
    return {
      message: create(schema("Item"), {
        id: typeof body.ID === "string" ? body.ID : "",
        title: String(body.Title ?? ""),
      }),
      violations,
    };
  },
};

const TOKEN = "Bearer let-me-in";

describe("REST transcoding of google.api.http annotations (createHttpTranscoder)", () => {
  let server: http.Server;
  let base: string;
  const calls: { method: string; request: any; context: HandlerContext }[] = [];
  let failWith: unknown;

  const record = (method: string) => (request: any, context: HandlerContext) => {
    calls.push({ method, request, context });
    if (failWith !== undefined) throw failWith;
  };
  const handlers: Record<string, (request: any, context: HandlerContext) => unknown> = {
    getItem(request: any, context: HandlerContext) {
      record("getItem")(request, context);
      context.responseHeader.set("etag", '"v1"');
      return { item: { id: request.id, title: `on ${request.shelf}` }, etag: "v1" };
    },
    listItems(request: any, context: HandlerContext) {
      record("listItems")(request, context);
      const item = create(schema("Item"), { id: "a", title: "A", copies: 3n, tags: ["x"] });
      return { items: [item], nextPageToken: "", byId: { a: item } };
    },
    putItem(request: any, context: HandlerContext) {
      record("putItem")(request, context);
      return request.item;
    },
    replaceItem(request: any, context: HandlerContext) {
      record("replaceItem")(request, context);
      return request.item ?? {};
    },
    updateShelf(request: any, context: HandlerContext) {
      record("updateShelf")(request, context);
      return { name: request.name, capacity: request.capacity };
    },
    ping: () => ({}),
  };
  // ServiceImpl is typed for generated services; a descriptor built at runtime has no method types.
  const impl = handlers as unknown as Partial<ServiceImpl<DescService>>;

  const fetchJson = async (path: string, init: RequestInit = {}) => {
    const response = await fetch(`${base}${path}`, init);
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) };
  };
  const send = (verb: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetchJson(path, {
      method: verb,
      headers: { "content-type": "application/json", authorization: TOKEN, ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  before(async () => {
    const app = express();
    app.set("strict routing", true);
    app.use(
      "/plain",
      createHttpTranscoder(
        { service: ShelfService },
        {
          impl,
          maxBodyBytes: 256,
          isAuthorized: (authorization) => authorization === TOKEN,
        },
      ),
    );
    app.use(
      "/codec",
      createHttpTranscoder(
        { service: ShelfService, codecs: [itemCodec], methods: { putItem: { successStatus: () => 201 } } },
        { impl, maxBodyBytes: 256 },
      ),
    );
    app.use((req, res) => {
      res.status(404).json({ passedOn: `${req.method} ${req.originalUrl}` });
    });
    server = http.createServer(app).listen(0, "127.0.0.1");
    await once(server, "listening");
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    calls.length = 0;
    failWith = undefined;
  });

  const lastCall = () => {
    const call = calls.at(-1);
    if (!call) throw new Error("the handler was not called");
    return call;
  };

  describe("binding", () => {
    it("when a path has variables, then they fill the request's fields, decoded", async () => {
      const { status, headers, body } = await fetchJson("/plain/shelves/s%201/items/i%2F2?id=ignored");
      expect(status).to.equal(200);
      expect(lastCall().request).to.deep.include({ shelf: "s 1", id: "i/2" });
      // response_body: only the item, as protobuf JSON with proto names and every implicit field.
      expect(body).to.deep.equal({
        id: "i/2",
        title: "on s 1",
        kind: "KIND_UNSPECIFIED",
        copies: "0",
        available: false,
        tags: [],
      });
      expect(headers.get("etag"), "headers the handler set").to.equal('"v1"');
    });

    it("when query parameters name request fields, then they are read in the field's type", async () => {
      const query =
        "page_size=5&tags=a&tags=b&kind=KIND_BOOK&min_price=1.5&after=9007199254740993&cursor=AQI=&verbose=true" +
        "&shelf=not-the-path&unknown=1";
      const { status } = await fetchJson(`/plain/shelves/s1/items?${query}`);
      expect(status).to.equal(200);
      const { request } = lastCall();
      expect(request).to.deep.include({
        shelf: "s1",
        pageSize: 5,
        tags: ["a", "b"],
        kind: 1,
        minPrice: 1.5,
        after: 9007199254740993n,
        verbose: true,
      });
      expect([...request.cursor]).to.deep.equal([1, 2]);
    });

    it("when a method has additional bindings, then each one is served", async () => {
      expect((await fetchJson("/plain/items?page_size=2")).status).to.equal(200);
      expect(lastCall().request).to.deep.include({ shelf: "", pageSize: 2 });
    });

    it("when parameters are not of their field's form, then 400 names each and the handler is not called", async () => {
      const { status, body } = await fetchJson("/plain/items?page_size=ten&kind=NOPE&min_price=x&verbose=yes");
      expect(status).to.equal(400);
      expect(body).to.deep.equal({
        error: "invalid_argument",
        message:
          "invalid request: page_size: must be an integer; kind: must be one of KIND_UNSPECIFIED, KIND_BOOK, " +
          "KIND_MAGAZINE; min_price: must be a number; verbose: must be true or false",
        details: [
          { field: "page_size", description: "must be an integer" },
          { field: "kind", description: "must be one of KIND_UNSPECIFIED, KIND_BOOK, KIND_MAGAZINE" },
          { field: "min_price", description: "must be a number" },
          { field: "verbose", description: "must be true or false" },
        ],
      });
      expect(calls).to.have.length(0);
    });

    it("when the body names a field, then the body is that field and the path fills the rest; the query does not", async () => {
      const { status, body } = await send("PUT", "/plain/shelves/s1/items?item=x", { id: "i1", title: "T", copies: 7 });
      expect(status).to.equal(200);
      expect(lastCall().request.shelf).to.equal("s1");
      expect(lastCall().request.item).to.deep.include({ id: "i1", title: "T", copies: 7n });
      expect(body).to.deep.include({ id: "i1", title: "T", copies: "7" });
    });

    it('when the body is "*", then it is the whole request and path variables win over its fields', async () => {
      const { status, body } = await send("PATCH", "/plain/shelves/s1", { shelf: "other", name: "N", capacity: 3 });
      expect(status).to.equal(200);
      expect(lastCall().request).to.deep.include({ shelf: "s1", name: "N", capacity: 3 });
      expect(body).to.deep.equal({ name: "N", capacity: 3 });
    });

    it("when a body is not the protobuf JSON of its type, then 400 names the body", async () => {
      const { status, body } = await send("PATCH", "/plain/shelves/s1", { capacity: "lots" });
      expect(status).to.equal(400);
      expect(body.error).to.equal("invalid_argument");
      expect(body.message).to.match(/^invalid request: body: /);
      expect(body.details).to.have.length(1);
      expect(body.details[0].field).to.equal("body");
      expect(calls).to.have.length(0);
    });

    it("when a body is malformed JSON, then 400; when it is larger than maxBodyBytes, then 413", async () => {
      expect(await send("PATCH", "/plain/shelves/s1", '{"name":')).to.deep.include({
        status: 400,
        body: {
          error: "invalid_argument",
          message: "invalid request: body: is not valid JSON",
          details: [{ field: "body", description: "is not valid JSON" }],
        },
      });
      expect(await send("PATCH", "/plain/shelves/s1", { name: "x".repeat(300) })).to.deep.include({
        status: 413,
        body: { error: "resource_exhausted", message: "request body too large" },
      });
      expect(calls).to.have.length(0);
    });

    it("when the handler runs, then it gets a context like the RPC protocols give", async () => {
      await fetchJson("/plain/shelves/s1/items/i1", { headers: { "x-request-id": "r-1" } });
      const { context } = lastCall();
      expect(context.method.name).to.equal("GetItem");
      expect(context.service.typeName).to.equal("test.v1.ShelfService");
      expect(context.requestMethod).to.equal("GET");
      expect(context.requestHeader.get("x-request-id")).to.equal("r-1");
      expect(context.url).to.equal(`${base}/plain/shelves/s1/items/i1`);
      expect(context.signal.aborted, "aborted once the call is over").to.equal(true);
    });
  });

  describe("codecs and method hooks", () => {
    it("when a type has a codec, then bodies of that type are read by it and its subject names the errors", async () => {
      const ok = await send("PUT", "/codec/shelves/s1/items", { ID: "i1", Title: "T" });
      expect(ok).to.deep.include({ status: 201, body: { ID: "i1", Title: "T" } });
      expect(lastCall().request.item).to.deep.include({ id: "i1", title: "T" });

      const bad = await send("PUT", "/codec/shelves/s1/items", { Title: "T" });
      expect(bad).to.deep.include({
        status: 400,
        body: {
          error: "invalid_argument",
          message: "invalid item: ID: must be a string",
          details: [{ field: "ID", description: "must be a string" }],
        },
      });
      expect((await send("PUT", "/codec/shelves/s1/items", "{")).body.message).to.equal(
        "invalid item: body: is not valid JSON",
      );
    });

    it("when a type with a codec is inside a response, in lists and maps too, then it is written by the codec", async () => {
      const { status, body } = await fetchJson("/codec/shelves/s1/items");
      expect(status).to.equal(200);
      expect(body).to.deep.equal({
        items: [{ ID: "a", Title: "A" }],
        next_page_token: "",
        by_id: { a: { ID: "a", Title: "A" } },
      });
      expect(Object.keys(body), "in field order").to.deep.equal(["items", "next_page_token", "by_id"]);
    });

    it("when a type with a codec is inside a body, then that part is read by the codec and violations name their path", async () => {
      const ok = await send("POST", "/codec/shelves/s1/replace", { shelf: "ignored", item: { ID: "i1", Title: "T" } });
      expect(ok).to.deep.include({ status: 200, body: { ID: "i1", Title: "T" } });
      expect(lastCall().request).to.deep.include({ shelf: "s1" });
      expect(lastCall().request.item).to.deep.include({ id: "i1", title: "T" });

      await send("POST", "/codec/shelves/s1/replace", { item: null });
      expect(lastCall().request.item, "null is protobuf JSON's unset").to.equal(undefined);

      expect(await send("POST", "/codec/shelves/s1/replace", { item: { Title: "T" } })).to.deep.include({
        status: 400,
        body: {
          error: "invalid_argument",
          message: "invalid request: item.ID: must be a string",
          details: [{ field: "item.ID", description: "must be a string" }],
        },
      });
    });

    it("when successStatus is declared, then it sets the status; otherwise 200", async () => {
      expect((await send("PUT", "/codec/shelves/s1/items", { ID: "i" })).status).to.equal(201);
      expect((await send("PUT", "/plain/shelves/s1/items", { id: "i" })).status).to.equal(200);
    });
  });

  describe("errors", () => {
    const cases: [Code, number, string][] = [
      [Code.InvalidArgument, 400, "invalid_argument"],
      [Code.FailedPrecondition, 400, "failed_precondition"],
      [Code.OutOfRange, 400, "out_of_range"],
      [Code.Unauthenticated, 401, "unauthenticated"],
      [Code.PermissionDenied, 403, "permission_denied"],
      [Code.NotFound, 404, "not_found"],
      [Code.AlreadyExists, 409, "already_exists"],
      [Code.Aborted, 409, "aborted"],
      [Code.ResourceExhausted, 429, "resource_exhausted"],
      [Code.Canceled, 499, "canceled"],
      [Code.Unimplemented, 501, "unimplemented"],
      [Code.Unavailable, 503, "unavailable"],
      [Code.DeadlineExceeded, 504, "deadline_exceeded"],
    ];
    for (const [code, status, name] of cases) {
      it(`when the handler fails with ${name}, then ${status} with the code's name and the message`, async () => {
        failWith = new ConnectError("it went wrong", code);
        expect(await fetchJson("/plain/shelves/s1/items/i1")).to.deep.include({
          status,
          body: { error: name, message: "it went wrong" },
        });
      });
    }

    it("when the error carries field violations, then they are the details", async () => {
      const fieldViolations = [{ field: "id", description: "is taken" }];
      failWith = new ConnectError("invalid request: id: is taken", Code.InvalidArgument, undefined, [
        { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations }) },
      ]);
      const { body } = await fetchJson("/plain/shelves/s1/items/i1");
      expect(body).to.deep.equal({
        error: "invalid_argument",
        message: "invalid request: id: is taken",
        details: fieldViolations,
      });
    });

    for (const [label, error] of [
      ["an Internal ConnectError", new ConnectError("pool exhausted at db.ts:12", Code.Internal)],
      ["a DataLoss ConnectError", new ConnectError("checksum mismatch", Code.DataLoss)],
      ["anything else", new Error("SELECT * FROM secrets")],
    ] as const) {
      it(`when the handler throws ${label}, then 500 without its message`, async () => {
        failWith = error;
        expect(await fetchJson("/plain/shelves/s1/items/i1")).to.deep.include({
          status: 500,
          body: { error: "internal", message: "internal error" },
        });
      });
    }

    it("when the method is not implemented, then 501", async () => {
      expect(await send("POST", "/plain/shelves/s1/archive", "")).to.deep.include({
        status: 501,
        body: { error: "unimplemented", message: "test.v1.ShelfService.ArchiveShelf is not implemented" },
      });
    });
  });

  describe("auth", () => {
    it("when isAuthorized refuses, then methods with side effects get 401 and reads stay open", async () => {
      for (const authorization of ["", "Bearer wrong"]) {
        const refused = await send("PATCH", "/plain/shelves/s1", { name: "N" }, { authorization });
        expect(refused.status).to.equal(401);
        expect(refused.headers.get("www-authenticate")).to.equal("Bearer");
        expect(refused.body).to.deep.equal({ error: "unauthenticated", message: "missing or invalid bearer token" });
      }
      // The token is checked before the body is read: a refused client learns nothing about its body.
      expect((await send("PATCH", "/plain/shelves/s1", "x".repeat(300), { authorization: "" })).status).to.equal(401);
      expect(calls).to.have.length(0);
      expect((await fetchJson("/plain/shelves/s1/items/i1")).status).to.equal(200);
    });
  });

  describe("unknown routes", () => {
    for (const [verb, path] of [
      ["GET", "/plain/nothing-here"],
      ["DELETE", "/plain/shelves/s1"],
      ["GET", "/plain/shelves/s1/items/"],
      ["GET", "/plain/shelves/s1/items/i1/more"],
      ["POST", "/plain/test.v1.ShelfService/Ping"],
    ] as const) {
      it(`when ${verb} ${path} matches no binding, then it is passed on untouched`, async () => {
        const { status, body } = await fetchJson(path, { method: verb });
        expect(status).to.equal(404);
        expect(body).to.deep.equal({ passedOn: `${verb} ${path}` });
        expect(calls).to.have.length(0);
      });
    }
  });
});

describe("google.api.http annotations (httpRoutes)", () => {
  it("when a service is annotated, then every binding is a route, in declaration order, with its fields", () => {
    const routes = httpRoutes(ShelfService);
    expect(routes.map((r) => `${r.verb} ${r.template} ${r.expressPath}`)).to.deep.equal([
      "get /shelves/{shelf}/items/{id} /shelves/:shelf/items/:id",
      "get /shelves/{shelf}/items /shelves/:shelf/items",
      "get /items /items",
      "put /shelves/{shelf}/items /shelves/:shelf/items",
      "patch /shelves/{shelf} /shelves/:shelf",
      "post /shelves/{shelf}/replace /shelves/:shelf/replace",
      "post /shelves/{shelf}/archive /shelves/:shelf/archive",
    ]);
    expect(routes[0]?.pathFields.map((f) => f.name)).to.deep.equal(["shelf", "id"]);
    expect(routes[0]?.responseField?.name).to.equal("item");
    expect(routes[3]?.bodyField?.name).to.equal("item");
  });

  const unservable: [string, Rule, RegExp][] = [
    ["a variable that names no field", { pattern: { case: "get", value: "/shelves/{nope}" } }, /"nope" is not a field/],
    ["a variable with a pattern", { pattern: { case: "get", value: "/{shelf=shelves/*}" } }, /unsupported path/],
    ["a nested field path", { pattern: { case: "get", value: "/shelves/{shelf.name}" } }, /unsupported path/],
    ["a custom verb", { pattern: { case: "custom", value: { kind: "HEAD", path: "/x" } } }, /need one of get/],
    ["a path without a leading slash", { pattern: { case: "get", value: "shelves" } }, /must start with "\/"/],
    ["a body field that does not exist", { pattern: { case: "post", value: "/x" }, body: "nope" }, /"nope"/],
    [
      "a response_body that does not exist",
      { pattern: { case: "get", value: "/x" }, responseBody: "nope" },
      /response_body/,
    ],
  ];
  for (const [label, rule, message] of unservable) {
    it(`when an annotation has ${label}, then httpRoutes throws naming the method`, () => {
      const { service } = shelfFile([{ name: "Broken", input: "GetItemRequest", output: "Shelf", rule }]);
      expect(() => httpRoutes(service)).to.throw(/^test\.v1\.ShelfService\.Broken: /);
      expect(() => httpRoutes(service)).to.throw(message);
    });
  }
});
