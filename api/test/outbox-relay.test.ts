import { expect } from "chai";
import type { Kafka } from "kafkajs";
import pg from "pg";
import { isProducerFenced } from "#platform/kafka.js";
import { JSON_HEADERS, relayEnv, startApiOn, startTestApi, type TestApi } from "../../test/support/api.js";
import { type EventWatcher, untilEventsSettled, watchEvents } from "../../test/support/events.js";
import { createTestTopics, type TestTopics, testKafka } from "../../test/support/kafka.js";
import { testLogger } from "../../test/support/logger.js";
import { seedProductJson } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";
import { createApi, type RunningApi } from "../src/api.js";
import { loadApiConfig } from "../src/config.js";
import { createKafkaEventPublisher, type KafkaEvent } from "../src/events/kafka-event-publisher.js";
import { createOutboxRelay } from "../src/events/outbox-relay.js";
import { createOutboxRelayLoop, type EventPublisher, type OutboxRelay } from "../src/events/outbox-relay-loop.js";
import { createPgOutboxStore, relayClientConfig } from "../src/events/pg-outbox-store.js";
import { createApiMetrics } from "../src/metrics.js";

const post = (api: { url: string }, body: unknown) =>
  fetch(`${api.url}/products/`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body) }).then(
    async (r) => {
      if (r.status >= 300) throw new Error(`POST /products/: ${r.status} ${await r.text()}`);
    },
  );

/** Polls a query until it holds (the relay's effects are in the database, which notifies nobody). */
async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const outboxCount = async (api: TestApi) =>
  (await api.knex.raw<{ rows: { n: number }[] }>("SELECT count(*)::int AS n FROM product_events")).rows[0]?.n ?? -1;

const metricValue = async (replica: RunningApi, name: keyof RunningApi["metrics"]) => {
  const metric = replica.metrics[name] as { get(): Promise<{ values: { value: number }[] }> };
  return (await metric.get()).values[0]?.value ?? 0;
};

describe("outbox relay against PostgreSQL and Kafka @integration", function () {
  this.timeout(180_000);
  let kafka: Kafka;
  let topics: TestTopics;
  let writer: TestApi;
  let watcher: EventWatcher;
  const replicas: RunningApi[] = [];

  before(async () => {
    kafka = testKafka();
    topics = await createTestTopics(kafka);
    // Writes only: its relay is off, as during a Kafka outage.
    writer = await startTestApi();
    watcher = await watchEvents(kafka, topics.persisted);
  });
  after(async () => {
    for (const replica of replicas) await replica.stop();
    await watcher?.stop();
    await writer?.close();
    await topics?.delete();
  });

  describe("when 600 products with 4,000-character accented descriptions were written while no relay ran", () => {
    const ids = Array.from({ length: 600 }, (_, i) => uniqueId(`large${i}`));
    const description = "çãõéíúâê".repeat(500);

    before(async () => {
      for (let i = 0; i < ids.length; i += 50) {
        await Promise.all(ids.slice(i, i + 50).map((id) => post(writer, seedProductJson({ id, description }))));
      }
      expect(await outboxCount(writer)).to.equal(600);
    });

    it("then a relay that starts publishes all 600 events, in requests the broker accepts", async () => {
      const replica = await startApiOn(writer.database.url, 0, topics.persisted);
      replicas.push(replica);
      const all = await watcher.until(
        (events) => ids.every((id) => events.some((e) => e.key === id)),
        "the 600 events",
        120_000,
      );
      const mine = all.filter((e) => ids.includes(e.key ?? ""));
      expect(mine).to.have.length(600);
      expect(mine.every((e) => e.event.product?.description === description)).to.equal(true);
      await until("the outbox drained", async () => (await outboxCount(writer)) === 0);
      expect(await metricValue(replica, "eventPublishFailures"), "no request refused").to.equal(0);
      await replica.stop();
      replicas.splice(replicas.indexOf(replica), 1);
    });
  });

  describe("when the relay's batches are set larger than the broker accepts", () => {
    const ids = Array.from({ length: 600 }, (_, i) => uniqueId(`huge${i}`));
    const description = "çãõéíúâê".repeat(500);

    before(async () => {
      for (let i = 0; i < ids.length; i += 50) {
        await Promise.all(ids.slice(i, i + 50).map((id) => post(writer, seedProductJson({ id, description }))));
      }
    });

    it("then a batch the broker refuses as too large is halved until it passes, and every event is published", async () => {
      const config = loadApiConfig({
        PORT: "0",
        HOST: "127.0.0.1",
        DATABASE_URL: writer.database.url,
        LOG_LEVEL: "silent",
        OUTBOX_BATCH_MAX_BYTES: String(16 * 1024 * 1024),
        ...relayEnv(topics.persisted),
      });
      const replica = await createApi(config, testLogger("api")).start();
      replicas.push(replica);
      await watcher.until((events) => ids.every((id) => events.some((e) => e.key === id)), "the 600 events", 120_000);
      await until("the outbox drained", async () => (await outboxCount(writer)) === 0);
      expect(await metricValue(replica, "eventPublishFailures"), "refused, then halved").to.be.above(0);
      await replica.stop();
      replicas.splice(replicas.indexOf(replica), 1);
    });
  });

  describe("when a deposed relay wakes up with the batch it held", () => {
    const relays: OutboxRelay[] = [];
    after(async () => {
      for (const relay of relays) await relay.stop();
    });

    it("then the broker refuses it: the newer versions the next leader published stay the last ones", async () => {
      await until("no relay on the database", async () => (await relayBackends(writer.database.url)).length === 0);
      const transactionalId = loadApiConfig(relayEnv(topics.persisted)).outboxTransactionalId;
      const id = uniqueId("fenced");
      let gate: (() => void) | undefined;
      const opened = new Promise<void>((resolve) => {
        gate = resolve;
      });
      let held: readonly (readonly KafkaEvent[])[] | undefined;
      let heldOutcome: Promise<unknown> | undefined;
      const real = createKafkaEventPublisher({
        kafka,
        topic: topics.persisted,
        partitions: 3,
        replicationFactor: -1,
        transactionalId,
      });
      // Relay A as a frozen process: its publish waits at the gate, and no heartbeat notices anything.
      const gated: EventPublisher<KafkaEvent> = {
        ...real,
        publish(events) {
          if (held) return real.publish(events);
          held = events;
          const outcome = opened.then(() => real.publish(events));
          heldOutcome = outcome.then(
            () => "acknowledged",
            (error: unknown) => error,
          );
          return outcome;
        },
      };
      const a = createOutboxRelayLoop(
        {
          store: createPgOutboxStore({
            databaseUrl: writer.database.url,
            logger: testLogger("relay-a"),
            leaseTimeoutMs: 600_000,
          }),
          publisher: gated,
          logger: testLogger("relay-a"),
          metrics: createApiMetrics(),
        },
        { batchSize: 100, maxBatchBytes: 512 * 1024, pollIntervalMs: 200, heartbeatMs: 200_000 },
      );
      relays.push(a);
      a.start();
      await until("relay A active", async () => a.isActive());
      await post(writer, seedProductJson({ id, availability: { quantity: 1, timestamp: "2024-07-01T00:00:00Z" } }));
      a.wake();
      await until("A holding p@1", async () => held !== undefined);

      // PostgreSQL ends A's session (as after its lease timeout): the lease is free for B.
      const [pid] = await relayBackends(writer.database.url);
      await queryOnce(writer.database.url, `SELECT pg_terminate_backend(${pid})`);
      const b = createOutboxRelay({
        databaseUrl: writer.database.url,
        kafka,
        topic: topics.persisted,
        partitions: 3,
        replicationFactor: -1,
        logger: testLogger("relay-b"),
        metrics: createApiMetrics(),
        pollIntervalMs: 200,
        batchSize: 100,
        batchMaxBytes: 512 * 1024,
        leaseTimeoutMs: 3000,
        transactionalId,
      });
      relays.push(b);
      b.start();
      await watcher.until((events) => events.some((e) => e.key === id), "p@1 published by B", 30_000);
      await post(writer, seedProductJson({ id, availability: { quantity: 2, timestamp: "2024-07-02T00:00:00Z" } }));
      b.wake();
      await watcher.until((events) => events.some((e) => e.key === id && e.event.version === 2n), "p@2 from B", 30_000);

      gate?.();
      const outcome = await heldOutcome;
      const events = await untilEventsSettled(watcher, writer.database.url);
      expect(events.filter((e) => e.key === id).map((e) => e.event.version)).to.deep.equal([1n, 2n]);
      expect(isProducerFenced(outcome), `A's publish: ${String(outcome)}`).to.equal(true);
      await until("A no longer active", async () => !a.isActive());
    });
  });

  describe("the relay's session", () => {
    it("then PostgreSQL is told to end it when the peer or the process stops answering, and the client gives up hung queries", async () => {
      const client = new pg.Client(relayClientConfig(writer.database.url, 6000));
      await client.connect();
      try {
        const settings: Record<string, string> = {};
        for (const name of [
          "tcp_keepalives_idle",
          "tcp_keepalives_interval",
          "tcp_keepalives_count",
          "tcp_user_timeout",
          "statement_timeout",
          "idle_in_transaction_session_timeout",
          "idle_session_timeout",
        ]) {
          settings[name] = (await client.query(`SHOW ${name}`)).rows[0]?.[name];
        }
        expect(settings).to.deep.equal({
          tcp_keepalives_idle: "3",
          tcp_keepalives_interval: "1",
          tcp_keepalives_count: "3",
          tcp_user_timeout: "6000",
          statement_timeout: "6s",
          idle_in_transaction_session_timeout: "6s",
          idle_session_timeout: "6s",
        });
      } finally {
        await client.end();
      }
      const config = relayClientConfig(writer.database.url, 6000);
      expect([config.keepAlive, config.query_timeout, config.connectionTimeoutMillis]).to.deep.equal([
        true,
        6000,
        6000,
      ]);
    });

    it("when the leader's process stops answering (frozen), then PostgreSQL ends its session and a standby gets the lease", async () => {
      await until("no relay on the database", async () => (await relayBackends(writer.database.url)).length === 0);
      const store = createPgOutboxStore({
        databaseUrl: writer.database.url,
        logger: testLogger("relay"),
        leaseTimeoutMs: 3000,
      });
      const frozen = await store.connect();
      const standby = await store.connect();
      try {
        expect(await frozen.tryAcquireLease()).to.equal(true);
        expect(await standby.tryAcquireLease()).to.equal(false);
        // The frozen session sends nothing more; the standby asks, as a standby does.
        await until("the standby holding the lease", () => standby.tryAcquireLease(), 30_000);
      } finally {
        await frozen.close().catch(() => {});
        await standby.close();
      }
    });

    it("then a row an earlier version wrote, the product as a jsonb document, reads back as a row with columns does", async () => {
      await until("no relay on the database", async () => (await relayBackends(writer.database.url)).length === 0);
      await writer.knex.raw("DELETE FROM product_events");
      const id = uniqueId("document");
      await post(writer, seedProductJson({ id, description: 'çã " \\ 𝄞' }));
      // A record's position past 2^53, which only text keeps exact.
      await writer.knex.raw(
        "UPDATE product_events SET source_topic = 'cadastro-produtos', source_partition = 2, source_offset = 9007199254740993 WHERE product_id = ?",
        [id],
      );
      // The row as the upsert wrote it before the product's columns existed.
      await writer.knex.raw(
        `INSERT INTO product_events (product_id, version, persisted_at, product)
         SELECT product_id || '-document', version, persisted_at, jsonb_build_object(
           'id', product_id, 'name', name, 'description', description, 'amount', amount::text,
           'currency', currency, 'quantity', quantity, 'availability_at', availability_at, 'category', category,
           'version', version, 'created_at', created_at, 'updated_at', updated_at, 'source_topic', source_topic,
           'source_partition', source_partition, 'source_offset', source_offset::text)
         FROM product_events WHERE product_id = ?`,
        [id],
      );
      const session = await createPgOutboxStore({
        databaseUrl: writer.database.url,
        logger: testLogger("relay"),
        leaseTimeoutMs: 5000,
      }).connect();
      try {
        const [columns, document] = await session.readBatch(10);
        expect(columns?.source_offset).to.equal("9007199254740993");
        expect(columns?.description).to.equal('çã " \\ 𝄞');
        expect(document?.product_id).to.equal(`${id}-document`);
        expect(document).to.deep.equal({
          ...columns,
          id: document?.id,
          event_id: document?.event_id,
          product_id: `${id}-document`,
        });
      } finally {
        await session.close();
        await writer.knex.raw("DELETE FROM product_events");
      }
    });

    it("then a batch holds the oldest row of each product only, in id order, and the heartbeat measures the backlog", async () => {
      await until("no relay on the database", async () => (await relayBackends(writer.database.url)).length === 0);
      await writer.knex.raw("DELETE FROM product_events");
      await writer.knex.raw(
        `INSERT INTO product_events (product_id, version, product, persisted_at)
         SELECT product_id, version, '{}'::jsonb, now() - interval '30 seconds'
         FROM (VALUES ('p', 1), ('q', 1), ('p', 2), ('r', 1), ('q', 2), ('p', 3)) AS v(product_id, version)`,
      );
      const store = createPgOutboxStore({
        databaseUrl: writer.database.url,
        logger: testLogger("relay"),
        leaseTimeoutMs: 5000,
      });
      const session = await store.connect();
      try {
        const firsts = (await session.readBatch(10)).map((row) => row.product_id);
        expect(firsts).to.deep.equal(["p", "q", "r"]);
        expect(
          (await session.readBatch(2)).map((row) => row.product_id),
          "among the first rows only",
        ).to.deep.equal(["p", "q"]);
        const backlog = await session.heartbeat();
        expect(backlog.pending).to.equal(6);
        expect(backlog.oldestAgeSeconds).to.be.within(30, 300);
      } finally {
        await session.close();
        await writer.knex.raw("DELETE FROM product_events");
      }
    });
  });
});

/** Backends of this database holding the relay's advisory lock. */
async function relayBackends(databaseUrl: string): Promise<number[]> {
  const rows = await queryOnce(
    databaseUrl,
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = ${0x70726f64}
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  return rows.map((row) => Number(row.pid));
}

async function queryOnce(databaseUrl: string, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}
