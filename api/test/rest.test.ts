import { gzipSync } from "node:zlib";
import { expect } from "chai";
import { startTestApi, type TestApi } from "../../test/support/api.js";
import { seedProductJson } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";

async function post(api: TestApi, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${api.url}/products/`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** POSTs bytes as they are: what fetch would not send from a string (invalid UTF-8, number literals). */
async function postBytes(api: TestApi, body: Uint8Array | string, headers: Record<string, string>) {
  const response = await fetch(`${api.url}/products/`, { method: "POST", headers, body });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** The seed body's JSON with `"MARK"`-quoted placeholders replaced by raw text or bytes. */
function seedBytes(id: string, overrides: Record<string, unknown>, raw: Record<string, Uint8Array | string>): Buffer {
  let parts = [Buffer.from(JSON.stringify(seedProductJson({ id, ...overrides })))];
  for (const [mark, value] of Object.entries(raw)) {
    parts = parts.flatMap((part) => {
      const at = part.indexOf(`"${mark}"`);
      if (at < 0) return [part];
      return [part.subarray(0, at), Buffer.from(value), part.subarray(at + mark.length + 2)];
    });
  }
  return Buffer.concat(parts);
}

async function stored(api: TestApi, id: string): Promise<number> {
  const { rows } = await api.knex.raw("SELECT count(*)::int AS n FROM products WHERE id = ?", [id]);
  return rows[0].n;
}

async function get(api: TestApi, path: string) {
  const response = await fetch(`${api.url}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** api_product_writes_total by outcome, as /metrics shows it. */
async function writesByOutcome(api: TestApi): Promise<Record<string, number>> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const [, outcome, value] of text.matchAll(/^api_product_writes_total\{outcome="(\w+)"\} (\d+)$/gm)) {
    counts[outcome as string] = Number(value);
  }
  return counts;
}

describe("REST API @integration", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => {
    await api?.close();
  });

  describe("POST /products/ (an idempotent upsert keyed by id)", () => {
    it("when the id is new, then it stores the seed body and answers 201 with version 1", async () => {
      const { status, body } = await post(api, seedProductJson());
      expect(status).to.equal(201);
      expect(body).to.deep.include({
        id: "12345",
        name: "Nome do Produto",
        description: "Descrição do Produto",
        pricing: { amount: 100, currency: "BRL" },
        availability: { quantity: 50, timestamp: "2024-06-29T00:30:03.254878Z" },
        category: "Categoria do Produto",
        version: 1,
      });
      expect(body.created_at).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(body.updated_at).to.equal(body.created_at);
    });

    it("when the same content is sent again, then it answers 200 with the same version", async () => {
      const id = uniqueId();
      const first = await post(api, seedProductJson({ id }));
      const again = await post(api, seedProductJson({ id }));
      expect(again.status).to.equal(200);
      expect(again.body).to.deep.equal(first.body);
    });

    it("when the content changes, then it updates and increments the version", async () => {
      const id = uniqueId();
      const first = await post(api, seedProductJson({ id }));
      const changed = await post(
        api,
        seedProductJson({ id, availability: { quantity: 49, timestamp: "2024-06-29T00:31:00Z" } }),
      );
      expect(changed.status).to.equal(200);
      expect(changed.body.version).to.equal(2);
      expect(changed.body.availability).to.deep.equal({ quantity: 49, timestamp: "2024-06-29T00:31:00.000000Z" });
      expect(changed.body.created_at).to.equal(first.body.created_at);
      expect(changed.body.updated_at > first.body.updated_at).to.equal(true);
    });

    it("when the write is older than the stored availability, then the newer data is kept", async () => {
      const id = uniqueId();
      await post(api, seedProductJson({ id, availability: { quantity: 10, timestamp: "2024-07-01T00:00:00Z" } }));
      const late = await post(
        api,
        seedProductJson({ id, name: "Old name", availability: { quantity: 99, timestamp: "2024-06-30T00:00:00Z" } }),
      );
      expect(late.status).to.equal(200);
      expect(late.body).to.deep.include({ name: "Nome do Produto", version: 1 });
      expect(late.body.availability.quantity).to.equal(10);
    });

    it("when availability.timestamp is beyond MAX_CLOCK_SKEW_MS ahead, then 400 names it and nothing is stored", async () => {
      const id = uniqueId("future");
      const future = new Date(Date.now() + 300_000 + 60_000).toISOString();
      const { status, body } = await post(
        api,
        seedProductJson({ id, availability: { quantity: 1, timestamp: future } }),
      );
      expect(status).to.equal(400);
      expect(body.error).to.equal("invalid_argument");
      expect(body.details.map((d: { field: string }) => d.field)).to.deep.equal(["availability.timestamp"]);
      const { rows } = await api.knex.raw("SELECT count(*)::int AS n FROM products WHERE id = ?", [id]);
      expect(rows[0].n).to.equal(0);
      // Within the skew is a producer's clock being slightly ahead: accepted.
      const near = new Date(Date.now() + 60_000).toISOString();
      expect(
        (await post(api, seedProductJson({ id, availability: { quantity: 1, timestamp: near } }))).status,
      ).to.equal(201);
    });

    it("counts stale writes in api_product_writes_total", async () => {
      const id = uniqueId();
      const before = await writesByOutcome(api);
      await post(api, seedProductJson({ id, availability: { quantity: 10, timestamp: "2024-07-01T00:00:00Z" } }));
      await post(api, seedProductJson({ id, availability: { quantity: 10, timestamp: "2024-07-01T00:00:00Z" } }));
      await post(api, seedProductJson({ id, availability: { quantity: 9, timestamp: "2024-06-30T00:00:00Z" } }));
      await post(api, seedProductJson({ id, availability: { quantity: 9, timestamp: "2024-06-30T00:00:00Z" } }));
      await post(api, seedProductJson({ id, availability: { quantity: 8, timestamp: "2024-07-02T00:00:00Z" } }));
      const after = await writesByOutcome(api);
      const delta = (outcome: string) => (after[outcome] ?? 0) - (before[outcome] ?? 0);
      expect({
        created: delta("created"),
        unchanged: delta("unchanged"),
        stale: delta("stale"),
        updated: delta("updated"),
      }).to.deep.equal({ created: 1, unchanged: 1, stale: 2, updated: 1 });
    });

    it("when 50 clients create the same id at once, then none fails and one row holds version 1", async () => {
      const id = uniqueId();
      const results = await Promise.all(Array.from({ length: 50 }, () => post(api, seedProductJson({ id }))));
      expect(results.map((r) => r.status).sort()).to.deep.equal([...Array(49).fill(200), 201]);
      expect(new Set(results.map((r) => r.body.version))).to.deep.equal(new Set([1]));
      const { rows } = await api.knex.raw("SELECT count(*)::int AS n FROM products WHERE id = ?", [id]);
      expect(rows[0].n).to.equal(1);
    });

    it("when 50 clients send different content for one id at once, then none fails and every change counts once", async () => {
      const id = uniqueId();
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          post(api, seedProductJson({ id, availability: { quantity: i, timestamp: "2024-06-29T00:00:00Z" } })),
        ),
      );
      expect(results.every((r) => r.status === 200 || r.status === 201)).to.equal(true);
      const stored = await get(api, `/products/${id}`);
      expect(stored.body.version).to.be.within(1, 50);
      expect(stored.body.version).to.equal(Math.max(...results.map((r) => r.body.version)));
    });

    it("keeps 19.99 exact whether sent as a number or a string", async () => {
      const asNumber = await post(
        api,
        seedProductJson({ id: uniqueId(), pricing: { amount: 19.99, currency: "USD" } }),
      );
      const asString = await post(
        api,
        seedProductJson({ id: uniqueId(), pricing: { amount: "1234567.8901", currency: "EUR" } }),
      );
      expect(asNumber.body.pricing).to.deep.equal({ amount: 19.99, currency: "USD" });
      expect(asString.body.pricing).to.deep.equal({ amount: 1234567.8901, currency: "EUR" });
      const { rows } = await api.knex.raw("SELECT amount::text AS amount FROM products WHERE id = ?", [
        asNumber.body.id,
      ]);
      expect(rows[0].amount).to.equal("19.9900");
    });

    it("round-trips Unicode and stores SQL-looking text verbatim", async () => {
      const id = "ação'; DROP TABLE products; --";
      const name = "Café ☕ 🙂 ñ 東京 Ω";
      const created = await post(api, seedProductJson({ id, name, description: "Robert'); DELETE FROM products;--" }));
      expect(created.status).to.equal(201);
      const read = await get(api, `/products/${encodeURIComponent(id)}`);
      expect(read.body).to.deep.include({ id, name, description: "Robert'); DELETE FROM products;--" });
    });
  });

  describe("GET /products/{id}", () => {
    it("when the product exists, then it answers 200 with it", async () => {
      const id = uniqueId();
      const created = await post(api, seedProductJson({ id }));
      const read = await get(api, `/products/${id}`);
      expect(read.status).to.equal(200);
      expect(read.body).to.deep.equal(created.body);
    });

    it("when it does not, then it answers 404 with a JSON error", async () => {
      const read = await get(api, "/products/does-not-exist");
      expect(read.status).to.equal(404);
      expect(read.body).to.deep.equal({ error: "not_found", message: 'product "does-not-exist" not found' });
    });
  });

  describe("GET /products/", () => {
    it("pages through every product once, in creation order", async () => {
      const ids = Array.from({ length: 7 }, () => uniqueId("page"));
      for (const id of ids) await post(api, seedProductJson({ id }));
      const seen: string[] = [];
      let token = "";
      let pages = 0;
      do {
        const page = await get(api, `/products/?page_size=3${token ? `&page_token=${token}` : ""}`);
        expect(page.status).to.equal(200);
        expect(page.body.products.length).to.be.at.most(3);
        seen.push(...page.body.products.map((p: { id: string }) => p.id));
        token = page.body.next_page_token;
        pages++;
      } while (token && pages < 100);
      expect(new Set(seen).size).to.equal(seen.length);
      expect(seen.filter((id) => id.startsWith("page-"))).to.deep.equal(ids);
    });

    it("defaults to 50 per page", async () => {
      const page = await get(api, "/products/");
      expect(page.status).to.equal(200);
      expect(page.body.products.length).to.be.at.most(50);
      expect(page.body).to.have.keys(["products", "next_page_token"]);
    });

    it("rejects a page size above 500, a non-integer page size and a forged token", async () => {
      const tooBig = await get(api, "/products/?page_size=501");
      expect(tooBig.status).to.equal(400);
      expect(tooBig.body.details).to.deep.equal([
        { field: "page_size", description: "must be an integer from 1 to 500" },
      ]);
      expect(tooBig.body.message).to.equal("invalid request: page_size: must be an integer from 1 to 500");
      const notANumber = await get(api, "/products/?page_size=ten");
      expect(notANumber.body).to.deep.equal({
        error: "invalid_argument",
        message: "invalid request: page_size: must be an integer",
        details: [{ field: "page_size", description: "must be an integer" }],
      });
      const forged = await get(api, "/products/?page_token=bm90LWEtdG9rZW4");
      expect(forged.status).to.equal(400);
      expect(forged.body).to.deep.equal({
        error: "invalid_argument",
        message: "invalid request: page_token: is not a token returned by a previous page",
        details: [{ field: "page_token", description: "is not a token returned by a previous page" }],
      });
    });
  });

  describe("bad input", () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ["a missing id", { id: undefined }, "id"],
      ["an id over 128 characters", { id: "x".repeat(129) }, "id"],
      ["an id with a control character", { id: "a\u0007b" }, "id"],
      ["a missing name", { name: undefined }, "name"],
      ["a name over 256 characters", { name: "n".repeat(257) }, "name"],
      ["a description over 4000 characters", { description: "d".repeat(4001) }, "description"],
      ["a category over 128 characters", { category: "c".repeat(129) }, "category"],
      ["missing pricing", { pricing: undefined }, "pricing"],
      ["a lower-case currency", { pricing: { amount: 1, currency: "brl" } }, "pricing.currency"],
      ["a currency that is not three letters", { pricing: { amount: 1, currency: "REAL" } }, "pricing.currency"],
      ["a negative amount", { pricing: { amount: -1, currency: "BRL" } }, "pricing.amount"],
      ["an amount with 5 decimals", { pricing: { amount: 1.00001, currency: "BRL" } }, "pricing.amount"],
      ["an amount that is not a number", { pricing: { amount: "abc", currency: "BRL" } }, "pricing.amount"],
      ["a missing amount", { pricing: { currency: "BRL" } }, "pricing.amount"],
      ["missing availability", { availability: undefined }, "availability"],
      [
        "a negative quantity",
        { availability: { quantity: -1, timestamp: "2024-06-29T00:00:00Z" } },
        "availability.quantity",
      ],
      [
        "a quantity over 2^31-1",
        { availability: { quantity: 2 ** 31, timestamp: "2024-06-29T00:00:00Z" } },
        "availability.quantity",
      ],
      [
        "a fractional quantity",
        { availability: { quantity: 1.5, timestamp: "2024-06-29T00:00:00Z" } },
        "availability.quantity",
      ],
      [
        "an unparseable timestamp",
        { availability: { quantity: 1, timestamp: "29/06/2024" } },
        "availability.timestamp",
      ],
      ["a missing timestamp", { availability: { quantity: 1 } }, "availability.timestamp"],
      ["a name of the wrong type", { name: 42 }, "name"],
    ];
    for (const [what, overrides, field] of cases) {
      it(`when the body has ${what}, then 400 names ${field} and nothing is written`, async () => {
        const id = typeof overrides.id === "string" ? overrides.id : uniqueId("bad");
        const body = seedProductJson({ id, ...overrides });
        const { status, body: error } = await post(api, body);
        expect(status).to.equal(400);
        expect(error.error).to.equal("invalid_argument");
        expect(error.message)
          .to.be.a("string")
          .and.match(/^invalid product: /)
          .and.not.match(/select|insert|stack|at \w+ \(/i);
        expect(error.details.map((d: { field: string }) => d.field)).to.include(field);
        for (const detail of error.details) expect(detail.description).to.be.a("string").with.length.above(3);
        const { rows } = await api.knex.raw("SELECT count(*)::int AS n FROM products WHERE id = ?", [id]);
        expect(rows[0].n).to.equal(0);
      });
    }

    it("when a string holds invalid UTF-8, then 400 names its field and nothing is written", async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ name: "BAD" }, "name"],
        [{ pricing: { amount: 1, currency: "BAD" } }, "pricing.currency"],
      ];
      for (const [overrides, field] of cases) {
        for (const bytes of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
          const id = uniqueId("utf8");
          const body = seedBytes(id, overrides, { BAD: Buffer.from([0x22, 0x41, ...bytes, 0x42, 0x22]) });
          const { status, body: error } = await postBytes(api, body, { "content-type": "application/json" });
          expect(status, `bytes ${bytes}`).to.equal(400);
          expect(error).to.deep.equal({
            error: "invalid_argument",
            message: `invalid product: ${field}: is not valid UTF-8`,
            details: [{ field, description: "is not valid UTF-8" }],
          });
          expect(await stored(api, id)).to.equal(0);
        }
      }
    });

    it("when the content type is not JSON, then 415 names application/json and nothing is written", async () => {
      const types = [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=iso-8859-1",
        "application/jsonx",
      ];
      for (const type of types) {
        const id = uniqueId("type");
        const { status, body } = await postBytes(api, JSON.stringify(seedProductJson({ id })), {
          "content-type": type,
        });
        expect(status, type).to.equal(415);
        expect(body.error, type).to.equal("invalid_argument");
        expect(body.message, type).to.match(/^(content-type must be application\/json|charset must be utf-8)/);
        expect(await stored(api, id)).to.equal(0);
      }
      const id = uniqueId("type");
      const untyped = await fetch(`${api.url}/products/`, {
        method: "POST",
        body: new Blob([JSON.stringify(seedProductJson({ id }))]),
      });
      expect(untyped.status).to.equal(415);
      expect(await untyped.json()).to.deep.equal({
        error: "invalid_argument",
        message: "content-type must be application/json",
      });
      expect(await stored(api, id)).to.equal(0);
    });

    it("accepts application/json with a utf-8 charset and application/*+json", async () => {
      for (const type of [
        "application/json; charset=utf-8",
        'Application/JSON;Charset="UTF-8"',
        "application/merge-patch+json",
      ]) {
        const { status } = await postBytes(api, JSON.stringify(seedProductJson({ id: uniqueId("type") })), {
          "content-type": type,
        });
        expect(status, type).to.equal(201);
      }
    });

    it("when the content-encoding is unsupported, then 415, not 500; gzip is read", async () => {
      const id = uniqueId("encoding");
      const json = JSON.stringify(seedProductJson({ id }));
      const refused = await postBytes(api, json, {
        "content-type": "application/json",
        "content-encoding": "compress",
      });
      expect(refused.status).to.equal(415);
      expect(refused.body).to.deep.equal({
        error: "invalid_argument",
        message: "content-encoding compress is not supported; use gzip, deflate, br or identity",
      });
      expect(await stored(api, id)).to.equal(0);
      const gzipped = await postBytes(api, gzipSync(json), {
        "content-type": "application/json",
        "content-encoding": "gzip",
      });
      expect(gzipped.status).to.equal(201);
    });

    it("when a gzip body is corrupt, then 400, not 500", async () => {
      const { status, body } = await postBytes(api, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01]), {
        "content-type": "application/json",
        "content-encoding": "gzip",
      });
      expect(status).to.equal(400);
      expect(body.error).to.equal("invalid_argument");
      expect(body.message).to.match(/^unreadable request body: /);
    });

    const literals: [string, string, number | undefined][] = [
      ["19.99", "19.9900", 19.99],
      ["100.0", "100.0000", 100],
      ["0.0001", "0.0001", 0.0001],
      ["19.999999999999999", "", undefined],
      ["1.00001", "", undefined],
      ["1e2", "", undefined],
      ["12345678901234567", "", undefined],
    ];
    for (const [literal, column, answered] of literals) {
      it(`when pricing.amount is the JSON number ${literal}, then it is ${answered === undefined ? "refused, not rounded" : "stored exactly"}`, async () => {
        const id = uniqueId("amount");
        const body = seedBytes(id, { pricing: { amount: "AMOUNT", currency: "BRL" } }, { AMOUNT: literal });
        const { status, body: answer } = await postBytes(api, body, { "content-type": "application/json" });
        if (answered === undefined) {
          expect(status).to.equal(400);
          expect(answer.details.map((d: { field: string }) => d.field)).to.deep.equal(["pricing.amount"]);
          expect(await stored(api, id)).to.equal(0);
          return;
        }
        expect(status).to.equal(201);
        expect(answer.pricing.amount).to.equal(answered);
        const { rows } = await api.knex.raw("SELECT amount::text AS amount FROM products WHERE id = ?", [id]);
        expect(rows[0].amount).to.equal(column);
      });
    }

    it("when the JSON is malformed, then 400", async () => {
      const { status, body } = await post(api, '{"id": "x",');
      expect(status).to.equal(400);
      expect(body).to.deep.equal({
        error: "invalid_argument",
        message: "invalid product: body: is not valid JSON",
        details: [{ field: "body", description: "is not valid JSON" }],
      });
    });

    it("when the body is larger than 1 MiB, then 413", async () => {
      const { status, body } = await post(api, seedProductJson({ description: "x".repeat(1024 * 1024 + 1) }));
      expect(status).to.equal(413);
      expect(body.error).to.equal("resource_exhausted");
    });

    it("when the route does not exist, then 404 JSON", async () => {
      const { status, body } = await get(api, "/nothing-here");
      expect(status).to.equal(404);
      expect(body.error).to.equal("not_found");
    });
  });

  describe("operations endpoints", () => {
    it("GET /healthz and /readyz answer 200 while the database is up", async () => {
      expect((await get(api, "/healthz")).body).to.deep.equal({ status: "ok" });
      expect((await get(api, "/readyz")).body).to.deep.equal({ status: "ready" });
    });

    it("GET /metrics counts requests by route and status in Prometheus format", async () => {
      await get(api, "/products/missing");
      const text = await (await fetch(`${api.url}/metrics`)).text();
      expect(text).to.match(
        /api_request_duration_seconds_count\{[^}]*route="\/products\/:id"[^}]*status="404"[^}]*\} \d+/,
      );
      expect(text).to.include("process_cpu_user_seconds_total");
    });
  });
});
