import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import type { Kafka } from "kafkajs";
import { JSON_HEADERS, startTestApi, type TestApi } from "../../test/support/api.js";
import { runScopedSuffix, testRunId } from "../../test/support/env.js";
import { freeBrokerPort } from "../../test/support/free-port.js";
import { readAll, testKafka } from "../../test/support/kafka.js";
import { seedProductJson } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";

const run = promisify(execFile);

/** A broker of its own (not the shared one), so that stopping it disturbs no other test. */
async function privateBroker(port: number) {
  const dataDir = await mkdtemp(join(tmpdir(), `kafka-outage-${testRunId()}-`));
  const env = {
    ...process.env,
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(port + 1),
    KAFKA_BROKER_URL: `127.0.0.1:${port}`,
    KAFKA_DATA_DIR: dataDir,
  };
  const script = (command: string) => run("bash", ["scripts/kafka.sh", command], { env, timeout: 120_000 });
  return {
    url: `127.0.0.1:${port}`,
    start: () => script("start"),
    stop: () => script("stop"),
    async remove() {
      await script("stop").catch(() => {});
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

describe("ProductPersisted events when Kafka is down @integration", function () {
  this.timeout(180_000);
  let broker: Awaited<ReturnType<typeof privateBroker>>;
  let api: TestApi;
  let kafka: Kafka;
  let topic: string;

  before(async () => {
    topic = `test-produtos-persistidos-outage-${runScopedSuffix()}`;
    broker = await privateBroker(await freeBrokerPort());
    await broker.start();
    api = await startTestApi({
      OUTBOX_RELAY: "true",
      KAFKA_BROKER_URL: broker.url,
      TRANSFORMED_TOPIC: topic,
      KAFKA_PARTITIONS: "1",
      OUTBOX_POLL_INTERVAL_MS: "200",
    });
    kafka = testKafka(broker.url);
  });
  after(async () => {
    await api?.close();
    await broker?.remove();
  });

  it("then the API keeps accepting writes and the events go out when the broker is back", async () => {
    const before = uniqueId("before");
    expect((await post(api, before)).status).to.equal(201);
    await waitForOutboxEmpty(api);

    await broker.stop();
    const during = Array.from({ length: 5 }, () => uniqueId("during"));
    for (const id of during) expect((await post(api, id)).status).to.equal(201);
    expect((await fetch(`${api.url}/readyz`)).status).to.equal(200);
    const { rows } = await api.knex.raw("SELECT count(*)::int AS n FROM product_events");
    expect(rows[0].n).to.equal(5);

    await broker.start();
    await waitForOutboxEmpty(api);
    const keys = (await readAll(kafka, topic, 30_000)).map((m) => m.key?.toString());
    expect(keys).to.deep.equal([before, ...during]);
  });
});

function post(api: TestApi, id: string) {
  return fetch(`${api.url}/products/`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(seedProductJson({ id })),
  });
}

async function waitForOutboxEmpty(api: TestApi, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await api.knex.raw("SELECT count(*)::int AS n FROM product_events");
    if (rows[0].n === 0) return;
    if (Date.now() > deadline) throw new Error(`${rows[0].n} events still in the outbox`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
