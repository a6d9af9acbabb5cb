import { expect } from "chai";
import type { Kafka } from "kafkajs";
import { createLogger } from "#platform/logger.js";
import { JSON_HEADERS, startTestApi, type TestApi } from "../../test/support/api.js";
import { testBrokers } from "../../test/support/env.js";
import { type EventWatcher, untilEventsSettled, watchEvents } from "../../test/support/events.js";
import { createTestTopics, type TestTopics, testKafka } from "../../test/support/kafka.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/postgres.js";
import { seedProductJson } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";
import { createApi, type RunningApi } from "../src/api.js";
import { loadApiConfig } from "../src/config.js";

async function eventually(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const post = (url: string, body: unknown) =>
  fetch(`${url}/products/`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body) }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as Record<string, any>,
  }));

describe("ProductPersisted events (transactional outbox) @integration", () => {
  let kafka: Kafka;
  let topics: TestTopics;
  let api: TestApi;
  let watcher: EventWatcher;
  const relayEnv = () => ({
    OUTBOX_RELAY: "true",
    KAFKA_BROKER_URL: testBrokers(),
    TRANSFORMED_TOPIC: topics.persisted,
    OUTBOX_POLL_INTERVAL_MS: "500",
  });

  before(async () => {
    kafka = testKafka();
    topics = await createTestTopics(kafka);
    api = await startTestApi(relayEnv());
    watcher = await watchEvents(kafka, topics.persisted);
  });
  after(async () => {
    await watcher?.stop();
    await api?.close();
    await topics?.delete();
  });

  it("when a product is created, then one event keyed by its id carries it, with the headers to decode it", async () => {
    const id = uniqueId("event");
    const created = await post(api.url, seedProductJson({ id }));
    const [record] = (await watcher.until((all) => all.some((e) => e.key === id), `the event of ${id}`)).filter(
      (e) => e.key === id,
    );
    expect(record?.headers["content-type"]).to.equal("application/x-protobuf");
    expect(record?.headers["message-type"]).to.equal("products.v1.ProductPersisted");
    expect(record?.headers["event-id"]).to.match(/^[0-9a-f-]{36}$/);
    const { event } = record!;
    expect(event.eventId).to.equal(record?.headers["event-id"]);
    expect(event.version).to.equal(1n);
    expect(event.product?.id).to.equal(id);
    expect(event.product?.description).to.equal("Descrição do Produto");
    expect(event.product?.pricing?.amount).to.equal("100");
    expect(event.product?.availability?.timestamp?.nanos).to.equal(254878000);
    expect(event.persistedAt).to.not.equal(undefined);
    expect(created.body.version).to.equal(1);
    // The relay deletes what Kafka acknowledged: the outbox drains.
    await eventually(async () => (await api.knex.raw("SELECT count(*)::int AS n FROM product_events")).rows[0].n === 0);
  });

  it("when a write changes nothing, then no event is published", async () => {
    const id = uniqueId("same");
    const marker = uniqueId("marker");
    await post(api.url, seedProductJson({ id }));
    await post(api.url, seedProductJson({ id }));
    await post(api.url, seedProductJson({ id, availability: { quantity: 1, timestamp: "2000-01-01T00:00:00Z" } }));
    await post(api.url, seedProductJson({ id: marker }));
    // Every event written so far, published and seen: the marker's alone could overtake id's on another partition.
    const all = await untilEventsSettled(watcher, api.database.url);
    expect(all.filter((e) => e.key === marker)).to.have.length(1);
    expect(all.filter((e) => e.key === id)).to.have.length(1);
  });

  it("when one product is updated several times, then its events arrive in order, one per version", async () => {
    const id = uniqueId("order");
    for (let quantity = 1; quantity <= 5; quantity++) {
      await post(
        api.url,
        seedProductJson({ id, availability: { quantity, timestamp: `2024-07-0${quantity}T00:00:00Z` } }),
      );
    }
    const mine = (
      await watcher.until((all) => all.filter((e) => e.key === id).length >= 5, `five events of ${id}`)
    ).filter((e) => e.key === id);
    expect(mine.map((e) => e.event.version)).to.deep.equal([1n, 2n, 3n, 4n, 5n]);
    expect(mine.map((e) => e.event.product?.availability?.quantity)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(new Set(mine.map((e) => e.event.eventId)).size).to.equal(5);
  });

  describe("when two API replicas share one database", () => {
    let database: TestDatabase;
    const replicas: RunningApi[] = [];
    const startReplica = async () => {
      const config = loadApiConfig({
        PORT: "0",
        HOST: "127.0.0.1",
        DATABASE_URL: database.url,
        LOG_LEVEL: "silent",
        ...relayEnv(),
      });
      const replica = await createApi(config, createLogger("api", "silent")).start();
      replicas.push(replica);
      return replica;
    };
    const isActiveRelay = async (replica: RunningApi) =>
      ((await replica.metrics.relayActive.get()).values[0]?.value ?? 0) === 1;

    before(async () => {
      database = await createTestDatabase();
    });
    after(async () => {
      for (const replica of replicas) await replica.stop();
      await database?.drop();
    });

    it("then one relay publishes each event once, and the other takes over when it stops", async () => {
      const first = await startReplica();
      await eventually(() => isActiveRelay(first));
      const second = await startReplica();
      expect(await isActiveRelay(second)).to.equal(false);

      const ids = Array.from({ length: 10 }, (_, i) => uniqueId(`replica${i % 2}`));
      await Promise.all(ids.map((id, i) => post(i % 2 ? second.url : first.url, seedProductJson({ id }))));
      const all = await watcher.until(
        (events) => ids.every((id) => events.some((e) => e.key === id)),
        "an event of each product",
      );
      for (const id of ids)
        expect(
          all.filter((e) => e.key === id),
          id,
        ).to.have.length(1);

      await first.stop();
      replicas.splice(replicas.indexOf(first), 1);
      const late = uniqueId("takeover");
      await post(second.url, seedProductJson({ id: late }));
      const later = await watcher.until((events) => events.some((e) => e.key === late), `the event of ${late}`);
      expect(later.filter((e) => e.key === late)).to.have.length(1);
      await eventually(() => isActiveRelay(second));
    });
  });
});
