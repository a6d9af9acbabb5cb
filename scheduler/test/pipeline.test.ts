import { create, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { expect } from "chai";
import type { Kafka, Producer } from "kafkajs";
import { ProductRegistrationSchema } from "#gen/products/v1/events_pb.js";
import { relayEnv, startTestApi, type TestApi } from "../../test/support/api.js";
import { type EventWatcher, type SeenEvent, untilEventsSettled, watchEvents } from "../../test/support/events.js";
import {
  createTestProducer,
  createTestTopics,
  produceInOrder,
  readAll,
  type TestTopics,
  testKafka,
} from "../../test/support/kafka.js";
import { startTestScheduler, type TestScheduler, untilConsumed } from "../../test/support/scheduler.js";
import { seedMessage } from "../../test/support/seed.js";
import { settleAll } from "../../test/support/settle.js";
import { uniqueId } from "../../test/support/unique-names.js";
import { parseDeadLetterHeaders } from "../src/dead-letter.js";

interface ProductRow {
  id: string;
  name: string;
  description: string;
  amount: string;
  currency: string;
  quantity: number;
  /** availability_at in epoch milliseconds. */
  availability_ms: number;
  category: string;
  version: number;
  updated_at: string;
}

const PROTOBUF = { "content-type": "application/x-protobuf" };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The event is a decodable ProductPersisted keyed by the row's id, carrying the row as stored. */
function expectEventOfRow(seen: SeenEvent | undefined, row: ProductRow | undefined): void {
  expect(seen, "the event").to.not.equal(undefined);
  expect(row, "the row").to.not.equal(undefined);
  const { key, headers, event } = seen!;
  expect(key, "record key").to.equal(row!.id);
  expect(headers, "record headers").to.include({
    "content-type": "application/x-protobuf",
    "message-type": "products.v1.ProductPersisted",
    "event-id": event.eventId,
  });
  expect(event.eventId).to.match(UUID);
  expect(event.version, "event version").to.equal(BigInt(row!.version));
  expect(event.persistedAt, "persisted_at").to.not.equal(undefined);
  const product = event.product;
  expect({
    id: product?.id,
    name: product?.name,
    description: product?.description,
    amount: Number(product?.pricing?.amount),
    currency: product?.pricing?.currency,
    quantity: product?.availability?.quantity,
    availabilityMs: product?.availability?.timestamp && timestampMs(product.availability.timestamp),
    category: product?.category,
    version: product?.version,
  }).to.deep.equal({
    id: row!.id,
    name: row!.name,
    description: row!.description,
    amount: Number(row!.amount),
    currency: row!.currency,
    quantity: row!.quantity,
    availabilityMs: row!.availability_ms,
    category: row!.category,
    version: BigInt(row!.version),
  });
}

/** Each product's events are exactly its versions 1..n, in order, with distinct event ids; no others. */
function expectOneEventPerVersion(all: SeenEvent[], rows: { id: string; version: number }[]): void {
  const versionsByKey = new Map<string, bigint[]>();
  for (const { key, event } of all) {
    expect(event.product?.id, "an event's key is its product id").to.equal(key);
    versionsByKey.set(key ?? "", [...(versionsByKey.get(key ?? "") ?? []), event.version]);
  }
  expect([...versionsByKey.keys()].sort(), "products with events").to.deep.equal(rows.map((r) => r.id).sort());
  for (const { id, version } of rows) {
    const expected = Array.from({ length: version }, (_, i) => BigInt(i + 1));
    expect(versionsByKey.get(id), `versions published for ${id}`).to.deep.equal(expected);
  }
  expect(new Set(all.map((e) => e.event.eventId)).size, "distinct event ids").to.equal(all.length);
}

describe("scheduler: cadastro-produtos → API → PostgreSQL @integration", () => {
  let api: TestApi;
  let kafka: Kafka;
  let topics: TestTopics;
  let producer: Producer;
  let scheduler: TestScheduler;
  let events: EventWatcher;

  before(async () => {
    kafka = testKafka();
    topics = await createTestTopics(kafka);
    await settleAll([
      startTestApi(relayEnv(topics.persisted)).then((started) => {
        api = started;
      }),
      watchEvents(kafka, topics.persisted).then((watcher) => {
        events = watcher;
      }),
      createTestProducer(kafka).then((connected) => {
        producer = connected;
      }),
    ]);
    // Small API batches, so a handful of records already spans several chunks.
    scheduler = await startTestScheduler({ topics, apiUrl: api.url, env: { API_BATCH_SIZE: "3" } });
  });

  after(async () => {
    await scheduler?.stop();
    await producer?.disconnect();
    await events?.stop();
    await api?.close();
    await topics?.delete();
  });

  const rowsOf = (id: string): Promise<ProductRow[]> =>
    api
      .knex("products")
      .select("*", api.knex.raw("(extract(epoch from availability_at) * 1000)::int8 AS availability_ms"))
      .where({ id });

  /** Once the scheduler committed: every event of the writes so far, published and seen. */
  const settled = () => untilEventsSettled(events, api.database.url);

  it("when the seed's JSON message arrives, then one row holds the transformed product at the record's time, and one event carries it", async () => {
    const id = uniqueId("seed");
    const timestamp = Date.parse("2024-06-29T00:30:03.254Z");
    await produceInOrder(producer, topics.input, [
      { key: id, value: seedMessage({ productId: id }), timestamp: String(timestamp) },
    ]);
    await untilConsumed(scheduler, kafka, topics.input);

    const rows = await rowsOf(id);
    expect(rows).to.have.length(1);
    const [row] = rows;
    expect(row).to.include({
      id,
      name: "Nome do Produto",
      description: "Descrição do Produto",
      amount: "100.0000",
      currency: "BRL",
      quantity: 50,
      category: "Categoria do Produto",
    });
    expect(row?.availability_ms).to.equal(timestamp);
    expect(row?.version).to.equal(1);

    await settled();
    const published = events.of(id);
    expect(published, "events keyed by the product id").to.have.length(1);
    expectEventOfRow(published[0], row);
    const product = published[0]?.event.product;
    expect(product?.description).to.equal("Descrição do Produto");
    expect(product?.pricing?.amount).to.equal("100");
    expect(product?.availability?.quantity).to.equal(50);
    expect(timestampMs(product!.availability!.timestamp!), "availability = the record's timestamp").to.equal(timestamp);
    expect(published[0]?.event.version).to.equal(1n);
  });

  it("when a protobuf ProductRegistration arrives, then one row holds the same product, and one event carries it", async () => {
    const id = uniqueId("proto");
    const timestamp = Date.parse("2024-07-01T12:00:00.5Z");
    const value = toBinary(
      ProductRegistrationSchema,
      create(ProductRegistrationSchema, {
        productId: id,
        productName: "Produto protobuf",
        productDescription: "Descrição",
        price: "19.99",
        currency: "BRL",
        stockQuantity: 7,
        category: "Categoria",
      }),
    );
    await produceInOrder(producer, topics.input, [
      { key: id, value: Buffer.from(value), headers: PROTOBUF, timestamp: String(timestamp) },
    ]);
    await untilConsumed(scheduler, kafka, topics.input);

    const rows = await rowsOf(id);
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ name: "Produto protobuf", amount: "19.9900", quantity: 7, version: 1 });
    expect(rows[0]?.availability_ms).to.equal(timestamp);

    await settled();
    const published = events.of(id);
    expect(published, "events keyed by the product id").to.have.length(1);
    expectEventOfRow(published[0], rows[0]);
    expect(published[0]?.event.product?.pricing?.amount).to.equal("19.99");
    expect(published[0]?.event.product?.description).to.equal("Descrição");
  });

  it("when records cannot be processed, then each is dead-lettered with its bytes and why, publishes nothing, and the valid one after them is persisted and published", async () => {
    const key = uniqueId("bad");
    const bad = [
      { value: Buffer.from('{"productId": "x", "price": '), code: "invalid_json", reason: /not JSON/ },
      {
        value: Buffer.from(seedMessage({ productId: key, stockQuantity: "fifty" })),
        code: "invalid_field",
        reason: /stockQuantity/,
      },
      {
        value: Buffer.from(seedMessage({ productId: key, price: undefined })),
        code: "missing_field",
        reason: /price: is required/,
      },
      {
        value: Buffer.from(seedMessage({ productId: key, currency: "brl" })),
        code: "invalid_argument",
        reason: /pricing\.currency/,
      },
      {
        value: Buffer.from([0x0a, 0x7f, 0x01]),
        headers: PROTOBUF,
        code: "invalid_protobuf",
        reason: /ProductRegistration/,
      },
    ];
    const valid = { key, value: seedMessage({ productId: key }) };
    const timestamp = String(Date.now() - 1000);
    const produced = await produceInOrder(producer, topics.input, [
      ...bad.map(({ value, headers }) => ({ key, value, timestamp, ...(headers ? { headers } : {}) })),
      { ...valid, timestamp },
    ]);
    await untilConsumed(scheduler, kafka, topics.input);

    const rows = await rowsOf(key);
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ quantity: 50, currency: "BRL", version: 1 });
    const letters = (await readAll(kafka, topics.errors)).filter((m) => m.key?.toString() === key);
    expect(letters).to.have.length(bad.length);
    for (const [index, expected] of bad.entries()) {
      const letter = letters[index];
      const info = parseDeadLetterHeaders(letter?.headers);
      expect(letter?.value, expected.code).to.deep.equal(expected.value);
      expect(info).to.include({
        originalTopic: topics.input,
        originalPartition: produced[index]?.partition,
        originalOffset: produced[index]?.offset,
        originalTimestamp: BigInt(timestamp),
        originalTimestampType: "CreateTime",
        originalConsumerGroup: scheduler.groupId,
        code: expected.code,
        attempts: 1,
      });
      expect(info.message).to.match(expected.reason);
      expect(Date.parse(info.failedAt)).to.be.closeTo(Date.now(), 60_000);
    }
    expect(letters[4]?.headers?.["content-type"]?.toString()).to.equal("application/x-protobuf");

    await settled();
    const published = events.of(key);
    expect(published, "events keyed by the id: the valid record's only").to.have.length(1);
    expectEventOfRow(published[0], rows[0]);
    expect(events.of("x"), "events of the unparseable record").to.be.empty;
  });

  it("when one id is updated several times, then the updates apply and are published in order, and only distinct states count", async () => {
    const id = uniqueId("updates");
    const t0 = Date.now() - 60_000;
    const update = (stockQuantity: number, at: number) => ({
      key: id,
      value: seedMessage({ productId: id, stockQuantity }),
      timestamp: String(at),
    });
    // Eight records: with API batches of 3, the updates span several calls.
    await produceInOrder(producer, topics.input, [
      update(1, t0 + 1000),
      update(2, t0 + 2000),
      update(2, t0 + 2000), // a duplicate: changes nothing
      update(3, t0 + 3000),
      update(4, t0 + 4000),
      update(9, t0), // older than what is stored: changes nothing
      update(5, t0 + 5000),
      update(6, t0 + 6000),
    ]);
    await untilConsumed(scheduler, kafka, topics.input);

    const [row] = await rowsOf(id);
    expect(row?.quantity).to.equal(6);
    expect(row?.availability_ms).to.equal(t0 + 6000);
    expect(row?.version).to.equal(6);

    await settled();
    const published = events.of(id);
    expect(
      published.map((e) => e.event.version),
      "versions in publication order",
    ).to.deep.equal([1n, 2n, 3n, 4n, 5n, 6n]);
    expect(published.map((e) => e.event.product?.availability?.quantity)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(published.map((e) => timestampMs(e.event.product!.availability!.timestamp!))).to.deep.equal(
      [1, 2, 3, 4, 5, 6].map((n) => t0 + n * 1000),
    );
    expect(new Set(published.map((e) => e.partition)).size, "partitions the product's events use").to.equal(1);
    expect(new Set(published.map((e) => e.event.eventId)).size, "distinct event ids").to.equal(6);
    expectEventOfRow(published.at(-1), row);
  });

  it("when one id is updated four times with one timestamp (as kafkajs stamps one produce request), then they apply in offset order, once each", async () => {
    const id = uniqueId("tied");
    const at = String(Date.now() - 30_000);
    // With API batches of 3, the four updates span two calls.
    const produced = await produceInOrder(
      producer,
      topics.input,
      [1, 2, 3, 4].map((stockQuantity) => ({
        key: id,
        value: seedMessage({ productId: id, stockQuantity }),
        timestamp: at,
      })),
    );
    await untilConsumed(scheduler, kafka, topics.input);

    const [row] = await rowsOf(id);
    expect(row?.quantity, "the last record's stock").to.equal(4);
    expect(row?.version).to.equal(4);
    const [source] = await api.knex("products").select("source_partition", "source_offset").where({ id });
    expect(source, "the row's source position: the last record's").to.deep.equal({
      source_partition: produced[3]?.partition,
      source_offset: Number(produced[3]?.offset),
    });

    await settled();
    const published = events.of(id);
    expect(published.map((e) => e.event.product?.availability?.quantity)).to.deep.equal([1, 2, 3, 4]);
    expect(published.map((e) => e.event.source?.offset)).to.deep.equal(produced.map((p) => p.offset));
    expect(
      published.every(
        (e) => e.event.source?.topic === topics.input && e.event.source.partition === produced[0]?.partition,
      ),
    ).to.equal(true);
  });

  it("when a second consumer group replays the topic, then no row changes and no event is published", async () => {
    const before = await api.knex("products").select("id", "version", "updated_at").orderBy("id");
    expect(before.length).to.be.greaterThan(3);
    const eventsBefore = await settled();
    expectOneEventPerVersion(eventsBefore, before);

    const replay = await startTestScheduler({ topics, apiUrl: api.url });
    try {
      await untilConsumed(replay, kafka, topics.input);
    } finally {
      await replay.stop();
    }
    const { values } = await replay.metrics.records.get();
    const persisted = values.find((v) => v.labels.outcome === "persisted")?.value ?? 0;
    expect(persisted, "records the replay sent to the API").to.be.greaterThan(before.length);

    const after = await api.knex("products").select("id", "version", "updated_at").orderBy("id");
    expect(after).to.deep.equal(before);
    const eventsAfter = await settled();
    expect(eventsAfter.length, "events after the replay").to.equal(eventsBefore.length);
    expectOneEventPerVersion(eventsAfter, after);
  });
});
