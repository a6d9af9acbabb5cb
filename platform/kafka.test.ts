import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { expect } from "chai";
import { type Kafka, KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from "kafkajs";
import { pino } from "pino";
import { runScopedSuffix } from "../test/support/env.js";
import { testKafka, withAdmin } from "../test/support/kafka.js";
import { ConfigError, createEnvReader, type Env } from "./env.js";
import {
  classifyKafkaError,
  createKafka,
  ensureTopics,
  isProducerFenced,
  type KafkaConfig,
  readKafkaConfig,
} from "./kafka.js";

function read(env: Env): KafkaConfig {
  const reader = createEnvReader(env);
  const config = readKafkaConfig(reader, { clientId: "test" });
  reader.done();
  return config;
}

function problems(env: Env): string[] {
  try {
    read(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return expect.fail("accepted the configuration");
}

describe("readKafkaConfig", () => {
  it("when KAFKA_BROKER_URL lists several brokers, then each is kept, trimmed", () => {
    expect(read({ KAFKA_BROKER_URL: "kafka-1:9092, kafka-2:9093,[::1]:9094" }).brokers).to.deep.equal([
      "kafka-1:9092",
      "kafka-2:9093",
      "[::1]:9094",
    ]);
  });

  it("when a broker has no port, then the problem names the variable and the form", () => {
    expect(problems({ KAFKA_BROKER_URL: "kafka-1" })[0]).to.match(/^KAFKA_BROKER_URL="kafka-1": expected .*host:port/);
  });

  it("when SASL is configured, then mechanism, user and password are required together", () => {
    expect(
      read({ KAFKA_SASL_MECHANISM: "SCRAM-SHA-512", KAFKA_SASL_USERNAME: "u", KAFKA_SASL_PASSWORD: "p" }).sasl,
    ).to.deep.equal({ mechanism: "scram-sha-512", username: "u", password: "p" });
    expect(problems({ KAFKA_SASL_MECHANISM: "plain" })).to.have.length(2);
    expect(problems({ KAFKA_SASL_USERNAME: "u" })[0]).to.match(/^KAFKA_SASL_MECHANISM: required/);
  });

  it("when KAFKA_SSL_CA_FILE is set, then TLS is on with that CA; an unreadable file is a problem", () => {
    const dir = mkdtempSync(join(tmpdir(), "kafka-test-"));
    try {
      const file = join(dir, "ca.pem");
      writeFileSync(file, "-----BEGIN CERTIFICATE-----\n");
      expect(read({ KAFKA_SSL_CA_FILE: file }).ssl).to.deep.equal({ ca: "-----BEGIN CERTIFICATE-----\n" });
      expect(read({ KAFKA_SSL: "true" }).ssl).to.deep.equal({ ca: undefined });
      expect(read({}).ssl).to.equal(undefined);
      expect(problems({ KAFKA_SSL_CA_FILE: join(dir, "missing.pem") })[0]).to.match(/^KAFKA_SSL_CA_FILE=.*cannot read/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe("classifyKafkaError", () => {
  const protocolError = (type: string) =>
    new KafkaJSProtocolError({ message: type, type, code: 0, retriable: false } as unknown as string);

  it("when the broker refuses a record or batch for its size, then too_large, also wrapped in retry errors", () => {
    expect(classifyKafkaError(protocolError("MESSAGE_TOO_LARGE"))).to.equal("too_large");
    expect(classifyKafkaError(protocolError("RECORD_LIST_TOO_LARGE"))).to.equal("too_large");
    const wrapped = new KafkaJSNumberOfRetriesExceeded(protocolError("MESSAGE_TOO_LARGE"), {
      retryCount: 5,
      retryTime: 100,
    });
    expect(classifyKafkaError(wrapped)).to.equal("too_large");
  });

  it("when no retry can fix the request (authorisation, an invalid topic), then fatal", () => {
    expect(classifyKafkaError(protocolError("TOPIC_AUTHORIZATION_FAILED"))).to.equal("fatal");
    expect(classifyKafkaError(protocolError("INVALID_TOPIC_EXCEPTION"))).to.equal("fatal");
  });

  it("when the broker is away or busy, or the error is not Kafka's, then retriable", () => {
    expect(classifyKafkaError(protocolError("NOT_LEADER_FOR_PARTITION"))).to.equal("retriable");
    expect(classifyKafkaError(new KafkaJSConnectionError("Connection error: connect ECONNREFUSED"))).to.equal(
      "retriable",
    );
    expect(classifyKafkaError(new Error("socket hang up"))).to.equal("retriable");
    expect(classifyKafkaError(undefined)).to.equal("retriable");
  });
});

describe("isProducerFenced", () => {
  const protocolError = (type: string, message = type) =>
    new KafkaJSProtocolError({ message, type, code: 0, retriable: false } as unknown as string);

  it("when another producer took over the transactional id (or the broker expired ours), then true, also wrapped", () => {
    expect(isProducerFenced(protocolError("INVALID_PRODUCER_EPOCH"))).to.equal(true);
    expect(isProducerFenced(protocolError("INVALID_PRODUCER_ID_MAPPING"))).to.equal(true);
    expect(isProducerFenced(protocolError("KAFKAJS_UNKNOWN_ERROR_CODE", "Unknown error code 90"))).to.equal(true);
    const wrapped = new KafkaJSNumberOfRetriesExceeded(protocolError("INVALID_PRODUCER_EPOCH"), {
      retryCount: 1,
      retryTime: 100,
    });
    expect(isProducerFenced(wrapped)).to.equal(true);
  });

  it("when the failure is anything else, then false", () => {
    expect(isProducerFenced(protocolError("MESSAGE_TOO_LARGE"))).to.equal(false);
    expect(isProducerFenced(protocolError("KAFKAJS_UNKNOWN_ERROR_CODE", "Unknown error code 91"))).to.equal(false);
    expect(isProducerFenced(new KafkaJSConnectionError("Connection error: connect ECONNREFUSED"))).to.equal(false);
    expect(isProducerFenced(undefined)).to.equal(false);
  });
});

describe("createKafka", () => {
  /** A client logging into `lines`; creating it connects to nothing, so no broker is needed. */
  const loggingKafka = () => {
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
    return { lines, kafka: createKafka(read({ KAFKA_BROKER_URL: "127.0.0.1:9" }), logger) };
  };

  it("when kafkajs logs, then the line goes through our logger with its namespace, level and fields", () => {
    const { lines, kafka } = loggingKafka();
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
    const { lines, kafka } = loggingKafka();
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

  it("when a transaction begins while the coordinator completes the previous one, then kafkajs's retries are not warnings", () => {
    const { lines, kafka } = loggingKafka();
    const error =
      "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing";
    kafka.logger().namespace("Connection").error("Response AddPartitionsToTxn(key: 24, version: 1)", { error });
    kafka.logger().namespace("Producer").error("Failed to send messages: …", { retryCount: 0, error });
    kafka.logger().namespace("Producer").error(`Failed to send messages: ${error}`, { retryCount: 0, retryTime: 17 });
    kafka.logger().namespace("Producer").error("Failed to send messages: …", { error: "Connection refused" });
    expect(lines.map((line) => [line.namespace, line.level])).to.deep.equal([["Producer", 50]]);
  });
});

describe("ensureTopics on the real broker @integration", () => {
  let kafka: Kafka;
  let topics: string[];

  before(() => {
    kafka = testKafka();
    topics = [`test-ensure-a-${runScopedSuffix()}`, `test-ensure-b-${runScopedSuffix()}`];
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
});
