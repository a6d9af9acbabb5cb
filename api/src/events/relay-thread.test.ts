import { expect } from "chai";
import { pino } from "pino";
import type { RelayMetrics } from "./outbox-relay-loop.js";
import { metricsReporter, type RelayThreadSettings, startOutboxRelayThread } from "./relay-thread.js";

interface Logged {
  level: string;
  msg: string;
  component?: string;
  err?: { message: string; stack?: string };
  exitCode?: number;
}

function captureLogger() {
  const logs: Logged[] = [];
  const logger = pino(
    { level: "debug", formatters: { level: (label: string) => ({ level: label }) } },
    { write: (line: string) => logs.push(JSON.parse(line) as Logged) },
  );
  return { logger, logs };
}

function recordingMetrics() {
  const updates: [keyof RelayMetrics, number][] = [];
  return { metrics: metricsReporter((name, value) => updates.push([name, value])), updates };
}

/** Nothing listens on port 1: the thread's relay fails to connect and says so, again and again. */
const settings: RelayThreadSettings = {
  databaseUrl: "postgres://postgres@127.0.0.1:1/none",
  kafka: {
    brokers: ["127.0.0.1:1"],
    clientId: "relay-thread-test",
    sasl: undefined,
    ssl: undefined,
    topics: { input: "in", persisted: "persisted", errors: "errors" },
    partitions: 1,
    replicationFactor: -1,
    connectionTimeoutMs: 1000,
    requestTimeoutMs: 1000,
  },
  logLevel: "info",
  pollIntervalMs: 1000,
  batchSize: 10,
  batchMaxBytes: 64 * 1024,
  leaseTimeoutMs: 3000,
  transactionalId: "relay-thread-test",
};

async function until(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("outbox relay thread", function () {
  this.timeout(30_000);

  it("when its relay logs, then the records reach this process's logger with their component and error", async () => {
    const { logger, logs } = captureLogger();
    const { metrics, updates } = recordingMetrics();
    const relay = startOutboxRelayThread(settings, logger, metrics);
    relay.start();
    try {
      await until(() => logs.some((log) => log.msg === "outbox relay failed; reconnecting"));
      const failure = logs.find((log) => log.msg === "outbox relay failed; reconnecting");
      expect(failure?.level).to.equal("warn");
      expect(failure?.component).to.equal("outbox-relay");
      expect(failure?.err?.message).to.match(/ECONNREFUSED/);
      expect(failure?.err?.stack).to.be.a("string");
      expect(relay.isActive()).to.equal(false);
      expect(updates).to.deep.include(["relayActive", 0]);
    } finally {
      await relay.stop();
    }
    expect(logs.map((log) => log.msg)).to.include("outbox relay stopped");
  });

  it("when the thread dies, then it is started again, and stop() ends it for good", async () => {
    const { logger, logs } = captureLogger();
    const { metrics } = recordingMetrics();
    // An unknown level makes the thread's logger throw as the thread starts: it exits with code 1.
    const relay = startOutboxRelayThread({ ...settings, logLevel: "no-such-level" }, logger, metrics);
    relay.start();
    try {
      await until(() => logs.filter((log) => log.msg === "outbox relay thread exited; restarting").length >= 2);
      const exits = logs.filter((log) => log.msg === "outbox relay thread exited; restarting");
      expect(exits.every((log) => log.level === "error" && log.exitCode === 1)).to.equal(true);
      expect(logs.find((log) => log.msg === "outbox relay thread failed")?.err?.message).to.match(/no-such-level/);
    } finally {
      await relay.stop();
    }
    const exitsAtStop = logs.filter((log) => log.msg === "outbox relay thread exited; restarting").length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(logs.filter((log) => log.msg === "outbox relay thread exited; restarting").length).to.equal(exitsAtStop);
  });
});
