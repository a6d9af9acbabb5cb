import { expect } from "chai";
import { ConfigError } from "#platform/env.js";
import { loadSchedulerConfig, normaliseApiUrl } from "./config.js";

describe("scheduler configuration", () => {
  it("when nothing is set, then the seed's defaults apply", () => {
    const config = loadSchedulerConfig({});
    expect(config.kafka.brokers).to.deep.equal(["localhost:9092"]);
    expect(config.kafka.topics).to.deep.equal({
      input: "cadastro-produtos",
      persisted: "produtos-persistidos",
      errors: "erro-produtos",
    });
    expect(config.kafka.partitions).to.equal(3);
    expect(config.partitionsConcurrently).to.equal(3);
    expect(config.groupId).to.equal("scheduler");
    expect(config.api).to.deep.equal({
      url: "http://localhost:8000",
      protocol: "grpc",
      token: undefined,
      timeoutMs: 10_000,
    });
    expect(config.metricsPort).to.equal(9464);
  });

  it("when nothing is set, then a dead instance's partitions move within 10 s and a backoff waits at most 2 s", () => {
    const config = loadSchedulerConfig({});
    expect(config.sessionTimeoutMs).to.equal(6_000);
    expect(config.heartbeatIntervalMs).to.equal(1_000);
    expect(config.retry).to.deep.equal({ initialDelayMs: 200, maxDelayMs: 2_000 });
  });

  it("when nothing is set, then a fetch waits up to 25 ms for 64 KiB, and a fetch of nothing is refused", () => {
    const config = loadSchedulerConfig({});
    expect(config.fetchMaxWaitMs).to.equal(25);
    expect(config.fetchMinBytes).to.equal(65_536);
    expect(loadSchedulerConfig({ KAFKA_FETCH_MIN_BYTES: "1" }).fetchMinBytes).to.equal(1);
    expect(() => loadSchedulerConfig({ KAFKA_FETCH_MIN_BYTES: "0" })).to.throw(ConfigError, /KAFKA_FETCH_MIN_BYTES/);
  });

  it("when API_URL is the seed's collection URL, then only its origin is kept", () => {
    expect(normaliseApiUrl("http://api:8000/products/")).to.equal("http://api:8000");
    expect(normaliseApiUrl("http://api:8000/products")).to.equal("http://api:8000");
    expect(normaliseApiUrl("http://api:8000/")).to.equal("http://api:8000");
    expect(normaliseApiUrl("https://gw.example/catalog/products/?x=1")).to.equal("https://gw.example/catalog");
    expect(normaliseApiUrl("https://gw.example/catalog/")).to.equal("https://gw.example/catalog");
    expect(normaliseApiUrl("ftp://api:8000")).to.equal(undefined);
    expect(normaliseApiUrl("api:8000")).to.equal(undefined);
  });

  it("when several variables are wrong, then one error names each with the expected form", () => {
    const env = {
      API_URL: "not a url",
      API_PROTOCOL: "soap",
      API_BATCH_SIZE: "5000",
      KAFKA_BROKER_URL: "localhost,kafka:9092",
      TOPIC_NAME: "bad topic",
      KAFKA_SASL_MECHANISM: "gssapi",
      KAFKA_HEARTBEAT_INTERVAL_MS: "20000",
    };
    let error: unknown;
    try {
      loadSchedulerConfig(env);
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(ConfigError);
    const text = (error as ConfigError).problems.join("\n");
    for (const name of [
      "API_URL",
      "API_PROTOCOL",
      "API_BATCH_SIZE",
      "KAFKA_BROKER_URL",
      "TOPIC_NAME",
      "KAFKA_SASL_MECHANISM",
      "KAFKA_HEARTBEAT_INTERVAL_MS",
    ]) {
      expect(text).to.include(`${name}`);
    }
  });

  it("when the scheduler's limits exceed the API's, then the configuration is refused, naming both variables", () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadSchedulerConfig(env);
        return "";
      } catch (error) {
        return (error as ConfigError).problems.join("\n");
      }
    };
    expect(problems({ API_TIMEOUT_MS: "40000" })).to.include(
      "API_TIMEOUT_MS=40000: expected at most the API's MAX_RPC_DEADLINE_MS (30000)",
    );
    expect(problems({ API_TIMEOUT_MS: "40000", MAX_RPC_DEADLINE_MS: "60000" })).to.equal("");
    expect(problems({ API_BATCH_MAX_BYTES: String(2 * 1024 * 1024) })).to.include(
      "API_BATCH_MAX_BYTES=2097152: expected at most the API's MAX_BODY_BYTES (1048576)",
    );
    expect(problems({ MAX_RECORD_BYTES: "600000" })).to.include(
      "MAX_RECORD_BYTES=600000: expected at most API_BATCH_MAX_BYTES (524288)",
    );
    expect(problems({})).to.equal("");
  });
});
