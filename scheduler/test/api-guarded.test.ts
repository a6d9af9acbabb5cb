import { expect } from "chai";
import type { Kafka, Producer } from "kafkajs";
import { startTestApi, type TestApi } from "../../test/support/api.js";
import {
  createTestProducer,
  createTestTopics,
  recordCount,
  type TestTopics,
  testKafka,
} from "../../test/support/kafka.js";
import { startTestScheduler, type TestScheduler, until, untilConsumed } from "../../test/support/scheduler.js";
import { seedMessage } from "../../test/support/seed.js";
import { settleAll } from "../../test/support/settle.js";
import { uniqueId } from "../../test/support/unique-names.js";

describe("scheduler against an API with a token and a small body limit @integration", () => {
  const TOKEN = "s3cret";
  let api: TestApi;
  let kafka: Kafka;
  let topics: TestTopics;
  let producer: Producer;
  const schedulers: TestScheduler[] = [];

  before(async () => {
    kafka = testKafka();
    await settleAll([
      startTestApi({ API_TOKEN: TOKEN, MAX_BODY_BYTES: "4096" }).then((started) => {
        api = started;
      }),
      createTestTopics(kafka).then((created) => {
        topics = created;
      }),
    ]);
    producer = await createTestProducer(kafka);
  });

  after(async () => {
    for (const scheduler of schedulers) await scheduler.stop();
    await producer?.disconnect();
    await topics?.delete();
    await api?.close();
  });

  it("when a chunk is larger than the API accepts, then it is split and every record is persisted", async () => {
    const ids = Array.from({ length: 60 }, () => uniqueId("big"));
    // One partition, so the 60 records (about 12 KB) arrive as one chunk.
    await producer.send({
      topic: topics.input,
      acks: -1,
      messages: ids.map((id) => ({ key: id, value: seedMessage({ productId: id }), partition: 0 })),
    });
    const scheduler = await startTestScheduler({
      topics,
      apiUrl: api.url,
      env: { API_TOKEN: TOKEN, API_PROTOCOL: "connect", API_BATCH_MAX_BYTES: String(1024 * 1024) },
    });
    schedulers.push(scheduler);
    await untilConsumed(scheduler, kafka, topics.input);

    expect(await api.knex("products").whereIn("id", ids).count({ n: "*" })).to.deep.equal([{ n: 60 }]);
    expect(await recordCount(kafka, topics.errors)).to.equal(0);
    const { values } = await scheduler.metrics.apiCalls.get();
    const refused = values.find((v) => v.labels.status === "resource_exhausted" && v.metricName?.endsWith("_count"));
    expect(refused?.value, "calls refused for their size").to.be.greaterThan(0);
  });

  it("when the token is wrong, then the records are retried, never dead-lettered", async () => {
    const scheduler = await startTestScheduler({
      topics,
      apiUrl: api.url,
      env: { API_TOKEN: "wrong", API_PROTOCOL: "grpcweb", RETRY_INITIAL_DELAY_MS: "20", RETRY_MAX_DELAY_MS: "100" },
    });
    schedulers.push(scheduler);
    let unauthenticated = 0;
    scheduler.events.on("retrying", ({ reason }) => {
      if (reason === "unauthenticated") unauthenticated++;
    });
    await until(scheduler, "retrying", () => unauthenticated >= 3, "three unauthenticated retries");
    await scheduler.stop();
    expect(await recordCount(kafka, topics.errors)).to.equal(0);
  });
});
