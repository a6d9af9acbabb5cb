import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { expect } from "chai";
import { Health, HealthCheckResponse_ServingStatus } from "#gen/health/v1/health_pb.js";
import { ProductService } from "#gen/products/v1/product_service_pb.js";
import { startTestApi, type TestApi } from "../../test/support/api.js";
import { seedProductJson } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";

describe("bearer token auth @integration", () => {
  describe("when API_TOKEN is set", () => {
    let api: TestApi;
    before(async () => {
      api = await startTestApi({ API_TOKEN: "s3cret-token" });
    });
    after(async () => {
      await api?.close();
    });

    const post = (id: string, authorization?: string) =>
      fetch(`${api.url}/products/`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
        body: JSON.stringify(seedProductJson({ id })),
      });
    const count = async (id: string) =>
      (await api.knex.raw("SELECT count(*)::int AS n FROM products WHERE id = ?", [id])).rows[0].n as number;

    it("then a REST write without or with a wrong token gets 401 and writes nothing", async () => {
      const id = uniqueId();
      for (const authorization of [undefined, "Bearer wrong", "Basic czNjcmV0LXRva2Vu", "s3cret-token"]) {
        const response = await post(id, authorization);
        expect(response.status, String(authorization)).to.equal(401);
        expect(await response.json()).to.deep.equal({
          error: "unauthenticated",
          message: "missing or invalid bearer token",
        });
      }
      expect(await count(id)).to.equal(0);
    });

    it("then a REST write with the token succeeds", async () => {
      const id = uniqueId();
      expect((await post(id, "Bearer s3cret-token")).status).to.equal(201);
      expect(await count(id)).to.equal(1);
    });

    it("then reads stay open", async () => {
      expect((await fetch(`${api.url}/products/`)).status).to.equal(200);
      const client = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
      expect((await client.listProducts({})).products).to.be.an("array");
    });

    it("then health checks stay open", async () => {
      const health = createClient(Health, createGrpcTransport({ baseUrl: api.url }));
      expect((await health.check({})).status).to.equal(HealthCheckResponse_ServingStatus.SERVING);
      expect(Object.keys((await health.list({})).statuses)).to.have.members(["", "products.v1.ProductService"]);
    });

    it("then CreateProduct and BatchCreateProducts need the token", async () => {
      const client = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
      const product = { ...seedProductJson(), id: uniqueId() };
      const request = {
        product: {
          id: product.id,
          name: product.name,
          pricing: { amount: "1", currency: "BRL" },
          availability: { quantity: 1, timestamp: { seconds: 1n, nanos: 0 } },
        },
      };
      for (const call of [
        () => client.createProduct(request),
        () => client.batchCreateProducts({ requests: [request] }),
        () => client.createProduct(request, { headers: { authorization: "Bearer nope" } }),
      ]) {
        const error = await call().catch((e: unknown) => ConnectError.from(e));
        expect(error).to.be.instanceOf(ConnectError).with.property("code", Code.Unauthenticated);
      }
      expect(await count(product.id)).to.equal(0);
      const ok = await client.createProduct(request, { headers: { authorization: "Bearer s3cret-token" } });
      expect(ok.product?.version).to.equal(1n);
    });
  });

  describe("when API_TOKEN is not set", () => {
    let api: TestApi;
    before(async () => {
      api = await startTestApi();
    });
    after(async () => {
      await api?.close();
    });

    it("then writes need no token", async () => {
      const response = await fetch(`${api.url}/products/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(seedProductJson({ id: uniqueId() })),
      });
      expect(response.status).to.equal(201);
    });

    // A cross-site form or fetch may send text/plain without a CORS preflight: it must not write.
    it("then a text/plain POST (what a cross-site page can send) is refused with 415", async () => {
      const id = uniqueId();
      const response = await fetch(`${api.url}/products/`, {
        method: "POST",
        body: JSON.stringify(seedProductJson({ id })),
      });
      expect(response.status).to.equal(415);
      expect((await fetch(`${api.url}/products/${id}`)).status).to.equal(404);
    });
  });
});
