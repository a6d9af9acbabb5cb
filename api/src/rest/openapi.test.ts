import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { expect } from "chai";
import { ProductService } from "#gen/products/v1/product_service_pb.js";
import { startTestApi, type TestApi } from "../../../test/support/api.js";
import { seedProductJson } from "../../../test/support/seed.js";
import { uniqueId } from "../../../test/support/unique-names.js";
import { httpRoutes } from "../http/http-routes.js";
import { AMOUNT_MAX_PRECISION, AMOUNT_MAX_SCALE } from "../products/decimal.js";
import { MAX_PAGE_SIZE } from "../products/product-catalog.js";
import { LIMITS } from "../products/validation.js";
import type { OpenApiDocument } from "./openapi-document.js";

/** Where ajv files the document, so that its "#/components/..." references resolve. */
const DOCUMENT_ID = "https://product-api.test/openapi.json";

type Verb = "get" | "post" | "put" | "patch" | "delete";

/** Checks real responses and request bodies against the document the server publishes. */
function createDocumentChecker(document: OpenApiDocument) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats.default(ajv);
  // The document's own fields are not JSON Schema; only the schemas they hold are compiled.
  for (const field of Object.keys(document)) ajv.addKeyword(field);
  ajv.addSchema({ ...document, $id: DOCUMENT_ID });
  const validator = (pointer: string): ValidateFunction => {
    const validate = ajv.getSchema(`${DOCUMENT_ID}#${pointer}`);
    if (!validate) throw new Error(`nothing at ${pointer}`);
    return validate;
  };
  const pointerTo = (...parts: string[]) =>
    parts.map((p) => `/${p.replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");

  return {
    /** Asserts that the status is documented for the operation and that the body matches its schema. */
    expectResponse(path: string, verb: Verb, response: Response, body: unknown): void {
      const status = String(response.status);
      const documented = document.paths[path]?.[verb]?.responses[status];
      expect(documented, `${verb.toUpperCase()} ${path} documents status ${status}`).to.not.equal(undefined);
      const [mediaType = ""] = (response.headers.get("content-type") ?? "").split(";");
      expect(Object.keys(documented?.content ?? {})).to.include(mediaType);
      const validate = validator(pointerTo("paths", path, verb, "responses", status, "content", mediaType, "schema"));
      expect(validate(body), ajv.errorsText(validate.errors)).to.equal(true);
    },
    /** Whether the value matches #/components/schemas/<name>. */
    matches(name: string, value: unknown): boolean {
      return validator(pointerTo("components", "schemas", name))(value) === true;
    },
  };
}

async function postProduct(api: TestApi, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${api.url}/products/`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { response, body: (await response.json()) as Record<string, unknown> };
}

async function getJson(url: string) {
  const response = await fetch(url);
  return { response, body: (await response.json()) as Record<string, unknown> };
}

describe("OpenAPI document and docs @integration", () => {
  let api: TestApi;
  let document: OpenApiDocument;
  let checker: ReturnType<typeof createDocumentChecker>;

  before(async () => {
    api = await startTestApi();
    document = (await (await fetch(`${api.url}/openapi.json`)).json()) as OpenApiDocument;
    checker = createDocumentChecker(document);
  });

  after(async () => {
    await api?.close();
  });

  describe("the document", () => {
    it("when /openapi.json is requested, then it is JSON", async () => {
      const response = await fetch(`${api.url}/openapi.json`);
      expect(response.status).to.equal(200);
      expect(response.headers.get("content-type")).to.match(/^application\/json\b/);
      await response.json();
    });

    it("when read, then it is an OpenAPI 3.1 document that names the other protocols", () => {
      expect(document.openapi).to.match(/^3\.1\.\d+$/);
      expect(document.info.title).to.be.a("string").and.not.equal("");
      expect(document.info.version).to.be.a("string").and.not.equal("");
      expect(document.info.description).to.include("Connect").and.include("gRPC").and.include("gRPC-Web");
      expect(document.paths).to.be.an("object");
      expect(document.components.schemas).to.include.all.keys(
        "Product",
        "ProductInput",
        "ListProductsResponse",
        "Error",
      );
      expect(document.components.securitySchemes.bearer).to.include({ type: "http", scheme: "bearer" });
    });

    it("when compared with httpRoutes(), then every route is documented with its RPC name and path parameters", () => {
      const routes = httpRoutes(ProductService);
      expect(routes).to.not.have.length(0);
      for (const route of routes) {
        const operation = document.paths[route.template]?.[route.verb];
        expect(operation, `${route.verb.toUpperCase()} ${route.template}`).to.not.equal(undefined);
        expect(operation?.operationId).to.equal(route.method.name);
        expect(operation?.summary).to.be.a("string").and.not.equal("");
        for (const [, name] of route.template.matchAll(/\{(\w+)\}/g)) {
          const parameter = operation?.parameters?.find((p) => p.name === name);
          expect(parameter, `{${name}}`).to.deep.include({ in: "path", required: true });
        }
      }
    });

    it("when ListProducts is read, then its query parameters come from the request message", () => {
      const parameters = document.paths["/products/"]?.get?.parameters ?? [];
      const byName = Object.fromEntries(parameters.map((p) => [p.name, p]));
      expect(byName.page_size).to.deep.include({ in: "query", required: false });
      expect(byName.page_size?.schema).to.include({ type: "integer" });
      expect(byName.page_token?.schema).to.include({ type: "string" });
    });

    it("when writes are read, then they need the bearer scheme and reads do not", () => {
      expect(document.paths["/products/"]?.post?.security).to.deep.equal([{ bearer: [] }]);
      expect(document.paths["/products/"]?.get?.security).to.equal(undefined);
      expect(document.paths["/products/{id}"]?.get?.security).to.equal(undefined);
    });

    it("when product limits are read, then they are the validation code's", () => {
      const input = document.components.schemas.ProductInput as {
        properties: Record<string, { maxLength?: number; properties?: Record<string, Record<string, unknown>> }>;
      };
      expect(input.properties.id?.maxLength).to.equal(LIMITS.idLength);
      expect(input.properties.name?.maxLength).to.equal(LIMITS.nameLength);
      expect(input.properties.description?.maxLength).to.equal(LIMITS.descriptionLength);
      expect(input.properties.category?.maxLength).to.equal(LIMITS.categoryLength);
      expect(input.properties.availability?.properties?.quantity).to.include({ maximum: LIMITS.maxQuantity });
    });

    it("when every $ref is followed, then it resolves", () => {
      const refs: string[] = [];
      const walk = (node: unknown): void => {
        if (Array.isArray(node)) node.forEach(walk);
        else if (typeof node === "object" && node !== null) {
          for (const [key, value] of Object.entries(node)) {
            if (key === "$ref" && typeof value === "string") refs.push(value);
            else walk(value);
          }
        }
      };
      walk(document);
      expect(refs).to.not.have.length(0);
      for (const ref of refs) {
        const target = ref
          .replace(/^#\//, "")
          .split("/")
          .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], document);
        expect(target, ref).to.be.an("object");
      }
    });
  });

  describe("real responses", () => {
    it("when a new product is posted, then 201 and the body is a Product", async () => {
      const product = seedProductJson({ id: uniqueId() });
      expect(checker.matches("ProductInput", product), "the original producer's body is a ProductInput").to.equal(true);
      const { response, body } = await postProduct(api, product);
      expect(response.status).to.equal(201);
      checker.expectResponse("/products/", "post", response, body);
    });

    it("when the same product is posted again, then 200 and the body is a Product", async () => {
      const product = seedProductJson({ id: uniqueId() });
      await postProduct(api, product);
      const { response, body } = await postProduct(api, product);
      expect(response.status).to.equal(200);
      checker.expectResponse("/products/", "post", response, body);
    });

    it("when a product is read, then 200 and the body is a Product", async () => {
      const id = uniqueId();
      await postProduct(api, seedProductJson({ id }));
      const { response, body } = await getJson(`${api.url}/products/${id}`);
      expect(response.status).to.equal(200);
      checker.expectResponse("/products/{id}", "get", response, body);
    });

    it("when a missing product is read, then 404 and the body is an Error", async () => {
      const { response, body } = await getJson(`${api.url}/products/${uniqueId("missing")}`);
      expect(response.status).to.equal(404);
      checker.expectResponse("/products/{id}", "get", response, body);
    });

    it("when products are listed page by page, then every page is a ListProductsResponse", async () => {
      await postProduct(api, seedProductJson({ id: uniqueId() }));
      await postProduct(api, seedProductJson({ id: uniqueId() }));
      const first = await getJson(`${api.url}/products/?page_size=1`);
      expect(first.response.status).to.equal(200);
      checker.expectResponse("/products/", "get", first.response, first.body);
      expect(first.body.next_page_token).to.be.a("string").and.not.equal("");

      const token = encodeURIComponent(String(first.body.next_page_token));
      const second = await getJson(`${api.url}/products/?page_size=1&page_token=${token}`);
      checker.expectResponse("/products/", "get", second.response, second.body);
    });

    it("when a page size is out of range, then 400 and the body is an Error, as the parameter's schema says", async () => {
      const { response, body } = await getJson(`${api.url}/products/?page_size=${MAX_PAGE_SIZE + 1}`);
      expect(response.status).to.equal(400);
      checker.expectResponse("/products/", "get", response, body);
      const pageSize = document.paths["/products/"]?.get?.parameters?.find((p) => p.name === "page_size");
      expect(pageSize?.schema).to.include({ maximum: MAX_PAGE_SIZE });
    });

    it("when an invalid product is posted, then 400 and the body is an Error naming each field", async () => {
      const product = seedProductJson({
        id: uniqueId(),
        name: "",
        pricing: { amount: "1.23456", currency: "brl" },
      });
      const { response, body } = await postProduct(api, product);
      expect(response.status).to.equal(400);
      checker.expectResponse("/products/", "post", response, body);
      const fields = (body.details as { field: string }[]).map((d) => d.field);
      expect(fields).to.include.members(["name", "pricing.amount", "pricing.currency"]);
    });

    describe("when edge-case products are posted, then the server and ProductInput agree", () => {
      const max = 10 ** (AMOUNT_MAX_PRECISION - AMOUNT_MAX_SCALE);
      const tooPrecise = `0.${"1".repeat(AMOUNT_MAX_SCALE + 1)}`;
      const cases: [string, Record<string, unknown>, boolean][] = [
        ["a decimal-string amount", { pricing: { amount: "19.99", currency: "BRL" } }, true],
        ["an amount with superfluous zeros", { pricing: { amount: "0019.9900000", currency: "BRL" } }, true],
        ["the longest name (lengths count code points)", { name: "😀".repeat(LIMITS.nameLength) }, true],
        [
          "the largest quantity",
          { availability: { quantity: LIMITS.maxQuantity, timestamp: "2024-06-29T00:30:03Z" } },
          true,
        ],
        ["a timestamp with an offset", { availability: { quantity: 1, timestamp: "2024-06-29T00:30:03+03:00" } }, true],
        ["a name one too long", { name: "😀".repeat(LIMITS.nameLength + 1) }, false],
        ["a too precise string amount", { pricing: { amount: tooPrecise, currency: "BRL" } }, false],
        ["a too large number amount", { pricing: { amount: max, currency: "BRL" } }, false],
        ["a negative amount", { pricing: { amount: -1, currency: "BRL" } }, false],
        ["a lowercase currency", { pricing: { amount: 1, currency: "brl" } }, false],
        ["a negative quantity", { availability: { quantity: -1, timestamp: "2024-06-29T00:30:03Z" } }, false],
        [
          "a quantity one too large",
          { availability: { quantity: LIMITS.maxQuantity + 1, timestamp: "2024-06-29T00:30:03Z" } },
          false,
        ],
        ["no pricing", { pricing: undefined }, false],
      ];
      for (const [label, overrides, valid] of cases) {
        it(`${label}: ${valid ? "accepted" : "rejected"}`, async () => {
          const product = seedProductJson({ id: uniqueId(), ...overrides });
          expect(checker.matches("ProductInput", product), "ProductInput").to.equal(valid);
          const { response, body } = await postProduct(api, product);
          expect(response.status, JSON.stringify(body)).to.equal(valid ? 201 : 400);
          checker.expectResponse("/products/", "post", response, body);
        });
      }
    });

    it("when the probes and metrics are requested, then they answer as documented", async () => {
      for (const path of ["/healthz", "/readyz"]) {
        const { response, body } = await getJson(`${api.url}${path}`);
        expect(response.status).to.equal(200);
        checker.expectResponse(path, "get", response, body);
      }
      const metrics = await fetch(`${api.url}/metrics`);
      checker.expectResponse("/metrics", "get", metrics, await metrics.text());
    });
  });

  describe("with a token and a small body limit", () => {
    let guarded: TestApi;

    before(async () => {
      guarded = await startTestApi({ API_TOKEN: "secret", MAX_BODY_BYTES: "1024" });
    });

    after(async () => {
      await guarded?.close();
    });

    it("when a write has no token, then 401 and the body is an Error", async () => {
      const { response, body } = await postProduct(guarded, seedProductJson({ id: uniqueId() }));
      expect(response.status).to.equal(401);
      expect(response.headers.get("www-authenticate")).to.equal("Bearer");
      checker.expectResponse("/products/", "post", response, body);
    });

    it("when a body is larger than the limit, then 413 and the body is an Error", async () => {
      const product = seedProductJson({ id: uniqueId(), description: "x".repeat(2048) });
      const { response, body } = await postProduct(guarded, product, { authorization: "Bearer secret" });
      expect(response.status).to.equal(413);
      checker.expectResponse("/products/", "post", response, body);
    });
  });

  describe("Swagger UI", () => {
    for (const page of ["/docs", "/docs/"]) {
      it(`when ${page} is requested, then it answers the page itself, not a redirect`, async () => {
        const response = await fetch(`${api.url}${page}`, { redirect: "manual" });
        expect(response.status).to.equal(200);
        expect(response.headers.get("content-type")).to.match(/^text\/html\b/);
        expect(await response.text()).to.include('<div id="swagger-ui">');
      });

      it(`when ${page} is loaded, then every asset it references is served from /docs/`, async () => {
        const response = await fetch(`${api.url}${page}`, { redirect: "manual" });
        const html = await response.text();
        const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map(
          (m) => new URL(m[1] ?? "", `${api.url}${page}`).href,
        );
        expect(assets.some((a) => a.endsWith("/swagger-ui-bundle.js"))).to.equal(true);
        expect(assets.some((a) => a.endsWith("/swagger-ui.css"))).to.equal(true);
        for (const asset of assets) {
          expect(asset.startsWith(`${api.url}/docs/`), asset).to.equal(true);
          const served = await fetch(asset, { redirect: "manual" });
          expect(served.status, asset).to.equal(200);
          expect((await served.arrayBuffer()).byteLength, asset).to.be.greaterThan(0);
          if (asset.endsWith(".js")) expect(served.headers.get("content-type"), asset).to.match(/javascript/);
          if (asset.endsWith(".css")) expect(served.headers.get("content-type"), asset).to.match(/^text\/css\b/);
        }
      });
    }

    it("when the page's script runs, then it loads /openapi.json", async () => {
      const scriptUrl = `${api.url}/docs/swagger-initializer.js`;
      const script = await (await fetch(scriptUrl)).text();
      const [, documentUrl = ""] = /"([^"]*openapi\.json)", document\.currentScript\.src/.exec(script) ?? [];
      expect(new URL(documentUrl, scriptUrl).href).to.equal(`${api.url}/openapi.json`);
    });

    it("when a file of swagger-ui-dist that the page does not use is requested, then 404", async () => {
      const response = await fetch(`${api.url}/docs/index.html`);
      expect(response.status).to.equal(404);
      await response.body?.cancel();
    });
  });
});
