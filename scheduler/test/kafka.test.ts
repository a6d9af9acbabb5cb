import { Writable } from "node:stream";
import { expect } from "chai";
import type { Kafka } from "kafkajs";
import { pino } from "pino";
import { createEnvReader } from "#platform/env.js";
import { createKafka, ensureTopics, readKafkaConfig } from "#platform/kafka.js";
import { testBrokers } from "../../test/support/env.js";
import { randomSuffix, withAdmin } from "./helpers.js";

// platform/kafka.ts against the real broker; its configuration is unit-tested in platform/kafka.test.ts.
describe("platform/kafka: ensureTopics and logging on the real broker @integration", () => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: "info" },
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        callback();
      },
    }),
  );
  let kafka: Kafka;
  let topics: string[];

  before(() => {
    kafka = createKafka(
      readKafkaConfig(createEnvReader({ KAFKA_BROKER_URL: testBrokers() }), { clientId: "kafka-test" }),
      logger,
    );
    topics = [`test-ensure-a-${randomSuffix()}`, `test-ensure-b-${randomSuffix()}`];
  });

  after(async () => {
    // Only those that exist: the test may have failed before creating them.
    await withAdmin(kafka, async (admin) => {
      const existing = new Set(await admin.listTopics());
      const created = topics.filter((topic) => existing.has(topic));
      if (created.length > 0) await admin.deleteTopics({ topics: created });
    });
  });

  it("when several processes ensure the same topics at once, then each topic exists once with its partitions", async () => {
    const results = await Promise.all([1, 2, 3].map(() => ensureTopics(kafka, topics, 2)));
    expect(results.flat().length, "topics reported as created").to.be.at.most(topics.length);

    const again = await ensureTopics(kafka, topics, 2);
    expect(again).to.deep.equal([]);

    const metadata = await withAdmin(kafka, (admin) => admin.fetchTopicMetadata({ topics }));
    expect(metadata.topics.map((t) => t.partitions.length)).to.deep.equal([2, 2]);
  });

  it("when kafkajs logs, then the line goes through our logger with its namespace, level and fields", () => {
    lines.length = 0;
    kafka.logger().namespace("Probe").warn("broker said hello", { broker: "b-1" });
    kafka.logger().debug("below the level");
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({
      level: 40,
      component: "kafkajs",
      namespace: "Probe",
      broker: "b-1",
      msg: "broker said hello",
    });
  });

  it("when a broker answers one request with an error kafkajs retries, then it is a warning, other errors stay errors", () => {
    lines.length = 0;
    kafka
      .logger()
      .namespace("Connection")
      .error("Response GroupCoordinator(key: 10, version: 2)", { error: "loading" });
    kafka.logger().namespace("Consumer").error("Crash: KafkaJSNumberOfRetriesExceeded", {});
    expect(lines.map((line) => [line.namespace, line.level])).to.deep.equal([
      ["Connection", 40],
      ["Consumer", 50],
    ]);
  });
});
