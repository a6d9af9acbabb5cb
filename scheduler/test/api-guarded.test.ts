import { expect } from "chai";
import { recordCount } from "../../test/support/kafka.js";
import { usePipelineFixture } from "../../test/support/pipeline-fixture.js";
import { until, untilConsumed } from "../../test/support/scheduler.js";
import { seedMessage } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";

describe("scheduler against an API with a token and a small body limit @integration", () => {
  const TOKEN = "s3cret";
  const pipeline = usePipelineFixture({ API_TOKEN: TOKEN, MAX_BODY_BYTES: "4096" });

  it("when a chunk is larger than the API accepts, then it is split and every record is persisted", async () => {
    const ids = Array.from({ length: 60 }, () => uniqueId("big"));
    // One partition, so the 60 records (about 12 KB) arrive as one chunk.
    await pipeline.producer.send({
      topic: pipeline.topics.input,
      acks: -1,
      messages: ids.map((id) => ({ key: id, value: seedMessage({ productId: id }), partition: 0 })),
    });
    const scheduler = await pipeline.startScheduler({
      apiUrl: pipeline.api.url,
      env: { API_TOKEN: TOKEN, API_PROTOCOL: "connect", API_BATCH_MAX_BYTES: String(1024 * 1024) },
    });
    await untilConsumed(scheduler, pipeline.kafka, pipeline.topics.input);

    expect(await pipeline.api.knex("products").whereIn("id", ids).count({ n: "*" })).to.deep.equal([{ n: 60 }]);
    expect(await recordCount(pipeline.kafka, pipeline.topics.errors)).to.equal(0);
    const { values } = await scheduler.metrics.apiCalls.get();
    const refused = values.find((v) => v.labels.status === "resource_exhausted" && v.metricName?.endsWith("_count"));
    expect(refused?.value, "calls refused for their size").to.be.greaterThan(0);
  });

  it("when the token is wrong, then the records are retried, never dead-lettered", async () => {
    const scheduler = await pipeline.startScheduler({
      apiUrl: pipeline.api.url,
      env: { API_TOKEN: "wrong", API_PROTOCOL: "grpcweb", RETRY_INITIAL_DELAY_MS: "20", RETRY_MAX_DELAY_MS: "100" },
    });
    let unauthenticated = 0;
    scheduler.events.on("retrying", ({ reason }) => {
      if (reason === "unauthenticated") unauthenticated++;
    });
    await until(scheduler, "retrying", () => unauthenticated >= 3, "three unauthenticated retries");
    await scheduler.stop();
    expect(await recordCount(pipeline.kafka, pipeline.topics.errors)).to.equal(0);
  });
});
