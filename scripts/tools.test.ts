import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import type { Kafka } from "kafkajs";
import { createIdempotentProducer, ensureTopics } from "#platform/kafka.js";
import { startTestApi, type TestApi } from "../test/support/api.js";
import { runScopedSuffix, testBrokers } from "../test/support/env.js";
import { createTestTopics, readAll, type TestTopics, testKafka, withAdmin } from "../test/support/kafka.js";
import { type CommandResult, runCommand } from "../test/support/run-command.js";
import { startTestScheduler, type TestScheduler } from "../test/support/scheduler.js";
import { SEED_MESSAGE_JSON } from "./seed-messages.js";

type RunResult = CommandResult;

/** Runs `tsx scripts/<tool>.ts` as a user would, with the Kafka variables pointing at the test broker. */
function run(tool: "produce" | "consume", args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runCommand(process.execPath, ["--import", "tsx", `scripts/${tool}.ts`, ...args], {
    env: { ...process.env, KAFKA_BROKER_URL: testBrokers(), LOG_LEVEL: "warn", ...env },
    timeoutMs: 25_000,
  });
}

/** The JSON lines of consume's output. */
function records(result: RunResult): Record<string, any>[] {
  expect(result.code, result.stderr).to.equal(0);
  return result.stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line));
}

describe("npm run produce / npm run consume @integration", () => {
  let kafka: Kafka;
  const created: string[] = [];

  /** A topic of its own for one test, deleted at the end. */
  async function freshTopic(): Promise<string> {
    const topic = `test-tools-${runScopedSuffix()}`;
    await ensureTopics(kafka, [topic], 3);
    created.push(topic);
    return topic;
  }

  before(() => {
    kafka = testKafka();
  });
  after(async () => {
    if (created.length > 0) await withAdmin(kafka, (admin) => admin.deleteTopics({ topics: created }));
  });

  it("when produce runs without flags, then the seed's sample message is on TOPIC_NAME byte for byte, keyed 12345", async () => {
    const topic = await freshTopic();
    const result = await run("produce", [], { TOPIC_NAME: topic });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(
      new RegExp(`^produce: sent 1 json message to ${topic} \\(partition \\d, offset 0\\)`),
    );

    const [record, ...others] = await readAll(kafka, topic);
    expect(others).to.have.length(0);
    expect(record?.key?.toString()).to.equal("12345");
    expect(record?.value?.toString()).to.equal(SEED_MESSAGE_JSON);
  });

  it("when produce is asked for 100 products, then 100 records with distinct keys carry them", async () => {
    const topic = await freshTopic();
    const result = await run("produce", ["--count", "100"], { TOPIC_NAME: topic });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^produce: sent 100 json messages to /);

    const all = await readAll(kafka, topic);
    expect(all).to.have.length(100);
    const keys = new Set(all.map((record) => record.key?.toString()));
    expect(keys.size).to.equal(100);
    for (const record of all) {
      const product = JSON.parse(record.value?.toString() ?? "");
      expect(product.productId).to.equal(record.key?.toString());
      expect(product).to.include.keys("productName", "productDescription", "currency", "stockQuantity", "category");
      expect(String(product.price)).to.match(/^\d+(\.\d{1,2})?$/);
    }
  });

  it("when produce reads a file, then each object is sent keyed by its productId", async () => {
    const topic = await freshTopic();
    const dir = await mkdtemp(path.join(os.tmpdir(), "produce-"));
    try {
      const file = path.join(dir, "products.json");
      const products = [JSON.parse(SEED_MESSAGE_JSON), { ...JSON.parse(SEED_MESSAGE_JSON), productId: "67890" }];
      await writeFile(file, JSON.stringify(products));
      const result = await run("produce", ["--file", file, "--format", "protobuf"], { TOPIC_NAME: topic });
      expect(result.code, result.stderr).to.equal(0);

      const lines = records(await run("consume", ["--topic", topic, "--from-beginning", "--max", "2"]));
      expect(lines.map((line) => line.key).sort()).to.deep.equal(["12345", "67890"]);
      for (const line of lines) {
        expect(line.headers).to.deep.equal({
          "content-type": "application/x-protobuf",
          "message-type": "products.v1.ProductRegistration",
        });
        expect(line.valueType).to.equal("products.v1.ProductRegistration");
        expect(line.value).to.deep.equal({
          productId: line.key,
          productName: "Nome do Produto",
          productDescription: "Descrição do Produto",
          price: "100",
          currency: "BRL",
          stockQuantity: 50,
          category: "Categoria do Produto",
        });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("when flags, files or settings are wrong, then the tools exit 2 naming the problem", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "produce-"));
    const file = path.join(dir, "bad.json");
    await writeFile(file, JSON.stringify([{ productId: "1", stockQuantity: "many" }]));
    try {
      const cases: [RunResult, RegExp][] = await Promise.all(
        (
          [
            [run("produce", ["--count", "0"]), /--count=0: expected an integer from 1/],
            [run("produce", ["--file", file, "--format", "protobuf"]), /bad\.json\[0\]\.stockQuantity: expected/],
            [run("produce", [], { KAFKA_BROKER_URL: "no-port" }), /KAFKA_BROKER_URL="no-port"/],
            [run("consume", ["--max", "many"]), /--max=many: expected a positive integer/],
            [run("consume", ["--topic", "no spaces"]), /--topic="no spaces": expected a Kafka topic name/],
          ] as const
        ).map(async ([result, reason]) => [await result, reason] as [RunResult, RegExp]),
      );
      for (const [result, reason] of cases) {
        expect(result.code, result.stderr).to.equal(2);
        expect(result.stderr).to.match(reason);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe("consume --until-end", () => {
    it("when the topic is empty, then it exits 0 at once without joining a group", async () => {
      const topic = await freshTopic();
      const started = Date.now();
      const result = await run("consume", ["--topic", topic, "--from-beginning", "--until-end"]);
      expect(records(result)).to.have.length(0);
      expect(result.stderr).to.match(/0 records from .*; stopped: nothing to read before the end/);
      // No group join (which takes seconds): only a metadata and an offsets request.
      expect(Date.now() - started).to.be.below(10_000);
    });

    it("when -e is given with --from-beginning, then every record on every partition is printed once and it exits 0", async () => {
      const topic = await freshTopic();
      expect((await run("produce", ["--count", "30"], { TOPIC_NAME: topic })).code).to.equal(0);
      const result = await run("consume", ["--topic", topic, "--from-beginning", "-e"]);
      const lines = records(result);
      expect(lines).to.have.length(30);
      expect(new Set(lines.map((line) => `${line.partition}:${line.offset}`)).size).to.equal(30);
      expect(new Set(lines.map((line) => line.partition)))
        .to.have.property("size")
        .above(1);
      expect(result.stderr).to.match(/30 records from .*; stopped: reached the end/);
    });

    it("when the records were written in transactions (as the outbox relay writes), then -e prints them all and stops after the last commit marker", async () => {
      const topic = await freshTopic();
      const producer = createIdempotentProducer(kafka, { transactionalId: `test-tools-${runScopedSuffix()}` });
      await producer.connect();
      try {
        for (let i = 0; i < 3; i++) {
          const transaction = await producer.transaction();
          await transaction.send({
            topic,
            messages: [
              { key: `a${i}`, value: "{}" },
              { key: `b${i}`, value: "{}" },
            ],
          });
          await transaction.commit();
        }
      } finally {
        await producer.disconnect();
      }
      const result = await run("consume", ["--topic", topic, "--from-beginning", "-e"]);
      expect(records(result)).to.have.length(6);
      expect(result.stderr).to.match(/6 records from .*; stopped: reached the end/);
    });

    it("when it starts at the latest offset (no --from-beginning), then there is nothing to read and it exits 0", async () => {
      const topic = await freshTopic();
      expect((await run("produce", ["--count", "3"], { TOPIC_NAME: topic })).code).to.equal(0);
      const result = await run("consume", ["--topic", topic, "--until-end"]);
      expect(records(result)).to.have.length(0);
      expect(result.stderr).to.match(/stopped: nothing to read before the end/);
    });

    it("when a group has committed part of the topic, then -e prints only the rest", async () => {
      const topic = await freshTopic();
      const group = `test-consume-${runScopedSuffix()}`;
      // One key, one partition: the first five records are the first five offsets.
      const dir = await mkdtemp(path.join(os.tmpdir(), "produce-"));
      try {
        const file = path.join(dir, "same-key.json");
        await writeFile(file, JSON.stringify(Array.from({ length: 12 }, () => JSON.parse(SEED_MESSAGE_JSON))));
        expect((await run("produce", ["--file", file], { TOPIC_NAME: topic })).code).to.equal(0);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      const first = records(
        await run("consume", ["--topic", topic, "--from-beginning", "--group", group, "--max", "5"]),
      );
      expect(first.map((line) => line.offset)).to.deep.equal([0, 1, 2, 3, 4]);
      const rest = records(await run("consume", ["--topic", topic, "--group", group, "-e"]));
      expect(rest.map((line) => line.offset)).to.deep.equal([5, 6, 7, 8, 9, 10, 11]);
    });
  });

  describe("with the pipeline running (scheduler → API → outbox relay)", () => {
    let topics: TestTopics;
    let api: TestApi;
    let scheduler: TestScheduler;

    before(async () => {
      topics = await createTestTopics(kafka);
      api = await startTestApi({
        OUTBOX_RELAY: "true",
        KAFKA_BROKER_URL: testBrokers(),
        TRANSFORMED_TOPIC: topics.persisted,
        OUTBOX_POLL_INTERVAL_MS: "200",
      });
      scheduler = await startTestScheduler({ topics, apiUrl: api.url });
    });
    after(async () => {
      await scheduler?.stop();
      await api?.close();
      await topics?.delete();
    });

    it("when the seed message is produced, then consume prints its ProductPersisted event decoded, with its headers", async () => {
      const produced = await run("produce", [], { TOPIC_NAME: topics.input });
      expect(produced.code, produced.stderr).to.equal(0);

      const [event, ...more] = records(
        await run("consume", ["--from-beginning", "--max", "1", "--timeout-ms", "20000"], {
          TRANSFORMED_TOPIC: topics.persisted,
        }),
      );
      expect(more).to.have.length(0);
      expect(event).to.include({ topic: topics.persisted, key: "12345", valueType: "products.v1.ProductPersisted" });
      expect(event?.headers).to.include({
        "content-type": "application/x-protobuf",
        "message-type": "products.v1.ProductPersisted",
      });
      expect(event?.value.eventId).to.equal(event?.headers["event-id"]);
      expect(event?.value.version).to.equal("1");
      expect(event?.value.product).to.deep.include({
        id: "12345",
        name: "Nome do Produto",
        description: "Descrição do Produto",
        pricing: { amount: "100", currency: "BRL" },
        category: "Categoria do Produto",
      });
      expect(event?.value.product.availability.quantity).to.equal(50);
    });

    it("when a record is dead-lettered, then consume shows Spring's binary headers as numbers", async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), "produce-"));
      try {
        const file = path.join(dir, "incomplete.json");
        await writeFile(file, JSON.stringify({ productId: "no-name", price: 1.5, currency: "BRL", stockQuantity: 1 }));
        const produced = await run("produce", ["--file", file], { TOPIC_NAME: topics.input });
        expect(produced.code, produced.stderr).to.equal(0);

        const [letter] = records(
          await run("consume", ["--topic", topics.errors, "--from-beginning", "--max", "1", "--timeout-ms", "20000"]),
        );
        expect(letter).to.include({ key: "no-name", valueType: "json" });
        expect(letter?.value).to.deep.equal({ productId: "no-name", price: 1.5, currency: "BRL", stockQuantity: 1 });
        const headers = letter?.headers;
        expect(headers["kafka_dlt-original-topic"]).to.equal(topics.input);
        expect(headers["kafka_dlt-original-partition"]).to.be.a("number").within(0, 2);
        expect(headers["kafka_dlt-original-offset"]).to.be.a("number").at.least(0);
        expect(headers["kafka_dlt-original-timestamp"])
          .to.be.a("number")
          .within(Date.now() - 60_000, Date.now());
        expect(headers["kafka_dlt-exception-fqcn"]).to.equal("missing_field");
        expect(headers["kafka_dlt-exception-message"]).to.match(/productName/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
