import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from "kafkajs";
import { ConfigError, createEnvReader, type Env } from "./env.js";
import { classifyKafkaError, type KafkaConfig, readKafkaConfig } from "./kafka.js";

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
