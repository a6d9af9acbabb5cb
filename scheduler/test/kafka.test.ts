import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { expect } from "chai";
import { pino } from "pino";
import { createEnvReader } from "../../lib/env.js";
import { createKafka, ensureTopics, readKafkaConfig } from "../../lib/kafka.js";
import { TEST_BROKERS } from "./helpers.js";

// lib/kafka.ts against the real broker; its configuration is unit-tested in lib/kafka.test.ts.
describe("lib/kafka: ensureTopics and logging on the real broker @integration", () => {
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
  const kafka = createKafka(
    readKafkaConfig(createEnvReader({ KAFKA_BROKER_URL: TEST_BROKERS }), { clientId: "kafka-test" }),
    logger,
  );
  const topics = [`test-ensure-a-${randomBytes(6).toString("hex")}`, `test-ensure-b-${randomBytes(6).toString("hex")}`];

  after(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics }).catch(() => {});
    await admin.disconnect();
  });

  it("when several processes ensure the same topics at once, then each topic exists once with its partitions", async () => {
    const results = await Promise.all([1, 2, 3].map(() => ensureTopics(kafka, topics, 2)));
    expect(results.flat().length, "topics reported as created").to.be.at.most(topics.length);

    const again = await ensureTopics(kafka, topics, 2);
    expect(again).to.deep.equal([]);

    const admin = kafka.admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics });
      expect(metadata.topics.map((t) => t.partitions.length)).to.deep.equal([2, 2]);
    } finally {
      await admin.disconnect();
    }
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
});
