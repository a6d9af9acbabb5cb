import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { expect } from "chai";
import { ProductSchema } from "#gen/products/v1/product_pb.js";
import { ProductService, WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import { JSON_HEADERS, startTestApi, type TestApi } from "../../test/support/api.js";
import { uniqueId } from "../../test/support/unique-names.js";

const AT = new Date("2024-06-29T00:30:03.254Z");
const TOPIC = "cadastro-produtos";

function product(id: string, quantity: number, at = AT) {
  return create(ProductSchema, {
    id,
    name: "Nome do Produto",
    pricing: { amount: "19.99", currency: "BRL" },
    availability: { quantity, timestamp: timestampFromDate(at) },
  });
}

const from = (offset: number, partition = 0, topic = TOPIC) => ({ topic, partition, offset: BigInt(offset) });

describe("the order of writes to one product @integration", () => {
  let api: TestApi;
  let client: ReturnType<typeof createClient<typeof ProductService>>;
  before(async () => {
    // The relay stays off: every event a write adds stays in the outbox, where the test counts it.
    api = await startTestApi();
    client = createClient(ProductService, createGrpcTransport({ baseUrl: api.url }));
  });
  after(async () => {
    await api?.close();
  });

  const batch = async (...requests: { product: ReturnType<typeof product>; source?: ReturnType<typeof from> }[]) => {
    const { results } = await client.batchCreateProducts({ requests });
    return results.map((r) => (r.result.case === "response" ? r.result.value : expect.fail(JSON.stringify(r))));
  };
  const rowOf = async (id: string) =>
    (
      await api
        .knex("products")
        .select("quantity", "version", "source_topic", "source_partition", "source_offset")
        .where({ id })
    )[0];
  const eventsOf = async (id: string) =>
    (
      await api
        .knex("product_events")
        .where({ product_id: id })
        .orderBy("id")
        .select("version", "quantity", api.knex.raw("source_offset::text AS source_offset"))
    ).map((e: { version: number; quantity: number; source_offset: string | null }) => ({
      version: e.version,
      quantity: e.quantity,
      offset: e.source_offset,
    }));

  describe("when four updates of one id share a timestamp (kafkajs stamps one produce request with one Date.now())", () => {
    const id = uniqueId("tied");
    const updates = [1, 2, 3, 4].map((quantity, i) => ({ product: product(id, quantity), source: from(10 + i) }));

    it("then they apply in offset order: version 4, one event each", async () => {
      const results = await batch(...updates);
      expect(results.map((r) => r.outcome)).to.deep.equal([
        WriteOutcome.CREATED,
        WriteOutcome.UPDATED,
        WriteOutcome.UPDATED,
        WriteOutcome.UPDATED,
      ]);
      expect(await rowOf(id)).to.deep.equal({
        quantity: 4,
        version: 4,
        source_topic: TOPIC,
        source_partition: 0,
        source_offset: 13,
      });
      expect(await eventsOf(id)).to.deep.equal(
        [1, 2, 3, 4].map((n) => ({ version: n, quantity: n, offset: String(9 + n) })),
      );
    });

    it("then a replay, in one call or record by record, changes nothing and adds no event", async () => {
      const replayed = await batch(...updates);
      expect(replayed.map((r) => r.outcome)).to.deep.equal([
        WriteOutcome.STALE,
        WriteOutcome.STALE,
        WriteOutcome.STALE,
        WriteOutcome.UNCHANGED,
      ]);
      for (const update of updates) await batch(update);
      expect(await rowOf(id)).to.include({ quantity: 4, version: 4, source_offset: 13 });
      expect(await eventsOf(id)).to.have.length(4);
    });

    it("then a late copy of an older update does not overwrite the newer one", async () => {
      const [late] = await batch({ product: product(id, 2), source: from(11) });
      expect(late?.outcome).to.equal(WriteOutcome.STALE);
      expect(late?.product?.availability?.quantity, "the stored product, answered").to.equal(4);
      expect(await rowOf(id)).to.include({ quantity: 4, version: 4 });
      expect(await eventsOf(id)).to.have.length(4);
    });

    it("then an older timestamp stays stale whatever its offset", async () => {
      const [older] = await batch({ product: product(id, 9, new Date(AT.getTime() - 1)), source: from(99) });
      expect(older?.outcome).to.equal(WriteOutcome.STALE);
      expect(await rowOf(id)).to.include({ quantity: 4, version: 4 });
    });
  });

  describe("when tied writes come from several partitions or topics, in any arrival order", () => {
    // x on partition 0, y on partition 1, x again on partition 2: the newest is x from partition 2.
    const writes = (id: string) => ({
      x0: { product: product(id, 1), source: from(5, 0) },
      y1: { product: product(id, 2), source: from(5, 1) },
      x2: { product: product(id, 1), source: from(5, 2) },
    });

    it("then the row ends as the newest write, and a replay in another order changes nothing", async () => {
      const [a, b] = [uniqueId("order-a"), uniqueId("order-b")];
      const wa = writes(a);
      const wb = writes(b);
      // a: x0, then x2 (same content from a newer record: UNCHANGED, the row's source moves on), then y1 (stale).
      expect((await batch(wa.x0, wa.x2, wa.y1)).map((r) => r.outcome)).to.deep.equal([
        WriteOutcome.CREATED,
        WriteOutcome.UNCHANGED,
        WriteOutcome.STALE,
      ]);
      // b: y1, x0 (stale), x2 (newer).
      expect((await batch(wb.y1, wb.x0, wb.x2)).map((r) => r.outcome)).to.deep.equal([
        WriteOutcome.CREATED,
        WriteOutcome.STALE,
        WriteOutcome.UPDATED,
      ]);
      const newest = { quantity: 1, source_topic: TOPIC, source_partition: 2, source_offset: 5 };
      expect(await rowOf(a)).to.deep.equal({ ...newest, version: 1 });
      expect(await rowOf(b)).to.deep.equal({ ...newest, version: 2 });
      expect(await eventsOf(a), "no event for the record that changed no content").to.have.length(1);

      await batch(wa.y1, wa.x2, wa.x0);
      await batch(wb.x2, wb.y1, wb.x0);
      expect(await rowOf(a)).to.deep.equal({ ...newest, version: 1 });
      expect(await rowOf(b)).to.deep.equal({ ...newest, version: 2 });
    });

    it("then topics are ordered by name, bytewise, before partitions", async () => {
      const id = uniqueId("topics");
      await batch({ product: product(id, 1), source: from(1, 9, "B-topic") });
      const [results] = await batch({ product: product(id, 2), source: from(0, 0, "a-topic") });
      expect(results?.outcome, '"a-topic" sorts after "B-topic"').to.equal(WriteOutcome.UPDATED);
      const [older] = await batch({ product: product(id, 3), source: from(7, 7, "B-topic") });
      expect(older?.outcome).to.equal(WriteOutcome.STALE);
    });
  });

  describe("when writes have no source (REST, other clients)", () => {
    it("then one tied with a write from Kafka is newer: it applies, and a replay of the topic cannot undo it", async () => {
      const id = uniqueId("direct");
      await batch({ product: product(id, 1), source: from(3) });
      const direct = await client.createProduct({ product: product(id, 7) });
      expect(direct.outcome).to.equal(WriteOutcome.UPDATED);
      const [replayed] = await batch({ product: product(id, 1), source: from(3) });
      expect(replayed?.outcome).to.equal(WriteOutcome.STALE);
      const [next] = await batch({ product: product(id, 8), source: from(4) });
      expect(next?.outcome, "a later record with the same timestamp too").to.equal(WriteOutcome.STALE);
      expect(await rowOf(id)).to.deep.include({ quantity: 7, version: 2, source_topic: null });
    });

    it("then a retried request changes nothing, and a different product with the same timestamp applies: the last to arrive wins", async () => {
      const id = uniqueId("rest");
      const body = (quantity: number) => ({
        id,
        name: "Nome do Produto",
        pricing: { amount: 19.99, currency: "BRL" },
        availability: { quantity, timestamp: AT.toISOString() },
      });
      const post = async (quantity: number) => {
        const response = await fetch(`${api.url}/products/`, {
          method: "POST",
          headers: JSON_HEADERS,
          body: JSON.stringify(body(quantity)),
        });
        return {
          status: response.status,
          body: (await response.json()) as { version: number; availability: { quantity: number } },
        };
      };
      expect((await post(1)).status).to.equal(201);
      const retried = await post(1);
      expect([retried.status, retried.body.version]).to.deep.equal([200, 1]);
      const changed = await post(2);
      expect([changed.status, changed.body.version, changed.body.availability.quantity]).to.deep.equal([200, 2, 2]);
      const back = await post(1);
      expect([back.body.version, back.body.availability.quantity]).to.deep.equal([3, 1]);
      expect(await eventsOf(id)).to.have.length(3);
    });
  });

  it("refuses a source that is not a Kafka position, naming its fields", async () => {
    const error = await client
      .createProduct({
        product: product(uniqueId("bad-source"), 1),
        source: { topic: "no spaces", partition: -1, offset: -2n },
      })
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(error?.code).to.equal(Code.InvalidArgument);
    expect(error?.rawMessage)
      .to.match(/source\.topic/)
      .and.match(/source\.partition/)
      .and.match(/source\.offset/);
  });
});
