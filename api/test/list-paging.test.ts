import { expect } from "chai";
import pg from "pg";
import { JSON_HEADERS, startTestApi, type TestApi } from "../../test/support/api.js";
import { testDatabaseUrl } from "../../test/support/env.js";
import { seedProductJson } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";

interface Page {
  ids: string[];
  token: string;
}

describe("ListProducts paging while transactions are open @integration", () => {
  let api: TestApi;
  const clients: pg.Client[] = [];
  before(async () => {
    api = await startTestApi();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.end().catch(() => {});
  });
  after(async () => {
    await api?.close();
  });

  const create = async (id: string) => {
    const response = await fetch(`${api.url}/products/`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify(seedProductJson({ id })),
    });
    expect(response.status, `create ${id}`).to.equal(201);
  };
  const page = async (token: string, pageSize = 1): Promise<Page> => {
    const query = `page_size=${pageSize}${token ? `&page_token=${token}` : ""}`;
    const response = await fetch(`${api.url}/products/?${query}`);
    expect(response.status).to.equal(200);
    const body = (await response.json()) as { products: { id: string }[]; next_page_token: string };
    return { ids: body.products.map((p) => p.id), token: body.next_page_token };
  };
  /** Pages from `token` to the last page, as a client does; returns the ids and the last token it was given. */
  const pageToEnd = async (token: string) => {
    const ids: string[] = [];
    let resume = token;
    for (let next = token, pages = 0; pages < 1000; pages++) {
      const current = await page(next);
      ids.push(...current.ids);
      if (!current.token) break;
      resume = next = current.token;
    }
    return { ids, resume };
  };
  /** A session of its own on `url` with a transaction open that has a transaction id. */
  const openTransaction = async (url: string, sql: string, values: unknown[] = []) => {
    const client = new pg.Client({ connectionString: url });
    clients.push(client);
    await client.connect();
    await client.query("BEGIN");
    await client.query(sql, values);
    return client;
  };

  it("when a product's transaction commits after a client paged past products created after it, then the client resuming from its last page token gets it, in order", async () => {
    const [first, second, late, after1, after2] = ["first", "second", "late", "after-1", "after-2"].map((n) =>
      uniqueId(n),
    ) as [string, string, string, string, string];
    await create(first);
    await create(second);
    // A writer whose transaction started (and took its id) before the next two creates, and commits after them.
    const writer = await openTransaction(
      api.database.url,
      `INSERT INTO products (id, name, amount, currency, quantity, availability_at)
       VALUES ($1, 'Nome do Produto', 1, 'BRL', 1, '2024-06-29T00:00:00Z')`,
      [late],
    );
    await create(after1);
    await create(after2);
    const byId = await fetch(`${api.url}/products/${after2}`);
    expect(byId.status, "GetProduct sees a committed product at once").to.equal(200);

    const before = await pageToEnd("");
    expect(before.ids, "listed while the writer is open").to.not.include.members([late]);
    expect(before.ids, "products created after the open writer wait for it").to.not.include.members([after1, after2]);

    await writer.query("COMMIT");
    const resumed = await pageToEnd(before.resume);
    const all = [...before.ids, ...resumed.ids.filter((id) => !before.ids.includes(id))];
    expect(all, "every product, each once, in creation order").to.deep.equal([first, second, late, after1, after2]);
  });

  it("when a transaction is open in another database on the server, then it holds nothing back here", async () => {
    // The server's own database (TEST_DATABASE_URL), not the API's.
    await openTransaction(testDatabaseUrl(), "SELECT pg_current_xact_id()");
    const id = uniqueId("fresh");
    await create(id);
    // Listed without waiting for the other database's transaction (which stays open until the test ends).
    let listed = false;
    while (!listed) listed = (await pageToEnd("")).ids.includes(id);
    expect(listed).to.equal(true);
  });

  it("when a transaction of this database is open, then products created after it are listed once it ends", async () => {
    const id = uniqueId("held");
    const writer = await openTransaction(api.database.url, "SELECT pg_current_xact_id()");
    await create(id);
    expect((await page("", 500)).ids).to.not.include(id);
    await writer.query("ROLLBACK");
    expect((await page("", 500)).ids).to.include(id);
  });
});
