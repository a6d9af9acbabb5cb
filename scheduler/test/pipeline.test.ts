import { create, toBinary } from "@bufbuild/protobuf";
import { expect } from "chai";
import type { Kafka, Producer } from "kafkajs";
import { ProductRegistrationSchema } from "#gen/products/v1/events_pb.js";
import { startTestApi, type TestApi, uniqueId } from "../../api/test/test-api.js";
import { parseDeadLetterHeaders } from "../src/dead-letter.js";
import {
  createTestProducer,
  createTestTopics,
  produceInOrder,
  readAll,
  seedMessage,
  startTestScheduler,
  type TestScheduler,
  type TestTopics,
  testKafka,
  untilConsumed,
} from "./helpers.js";

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

describe("scheduler: cadastro-produtos → API → PostgreSQL @integration", () => {
  let api: TestApi;
  let kafka: Kafka;
  let topics: TestTopics;
  let producer: Producer;
  let scheduler: TestScheduler;

  before(async () => {
    kafka = testKafka();
    [api, topics] = await Promise.all([startTestApi(), createTestTopics(kafka)]);
    producer = await createTestProducer(kafka);
    // Small API batches, so a handful of records already spans several chunks.
    scheduler = await startTestScheduler({ topics, apiUrl: api.url, env: { API_BATCH_SIZE: "3" } });
  });

  after(async () => {
    await scheduler?.stop();
    await producer?.disconnect();
    await topics?.delete();
    await api?.close();
  });

  const rowsOf = (id: string): Promise<ProductRow[]> =>
    api
      .knex("products")
      .select("*", api.knex.raw("(extract(epoch from availability_at) * 1000)::int8 AS availability_ms"))
      .where({ id });

  // The events these writes publish to topics.persisted (the API's outbox) get their assertions
  // here once the relay exists: one ProductPersisted per changed row, keyed by product id.

  it("when the seed's JSON message arrives, then one row holds the transformed product at the record's time", async () => {
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
  });

  it("when a protobuf ProductRegistration arrives, then one row holds the same product", async () => {
    const id = uniqueId("proto");
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
    await produceInOrder(producer, topics.input, [{ key: id, value: Buffer.from(value), headers: PROTOBUF }]);
    await untilConsumed(scheduler, kafka, topics.input);

    const rows = await rowsOf(id);
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ name: "Produto protobuf", amount: "19.9900", quantity: 7, version: 1 });
  });

  it("when records cannot be processed, then each is dead-lettered with its bytes and why, and the valid one after them is persisted", async () => {
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

    expect(await rowsOf(key)).to.have.length(1);
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
  });

  it("when one id is updated several times, then the updates apply in order and only distinct states count", async () => {
    const id = uniqueId("updates");
    const t0 = Date.now() - 60_000;
    const update = (stockQuantity: number, at: number) => ({
      key: id,
      value: seedMessage({ productId: id, stockQuantity }),
      timestamp: String(at),
    });
    await produceInOrder(producer, topics.input, [
      update(1, t0 + 1000),
      update(2, t0 + 2000),
      update(2, t0 + 2000), // a duplicate: changes nothing
      update(3, t0 + 3000),
      update(9, t0), // older than what is stored: changes nothing
    ]);
    await untilConsumed(scheduler, kafka, topics.input);

    const [row] = await rowsOf(id);
    expect(row?.quantity).to.equal(3);
    expect(row?.availability_ms).to.equal(t0 + 3000);
    expect(row?.version).to.equal(3);
  });

  it("when a second consumer group replays the topic, then no row changes", async () => {
    const before = await api.knex("products").select("id", "version", "updated_at").orderBy("id");
    expect(before.length).to.be.greaterThan(3);

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
  });
});
