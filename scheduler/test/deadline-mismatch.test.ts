import { expect } from "chai";
import { recordCount } from "../../test/support/kafka.js";
import { usePipelineFixture } from "../../test/support/pipeline-fixture.js";
import { untilConsumed } from "../../test/support/scheduler.js";
import { seedMessage } from "../../test/support/seed.js";
import { uniqueId } from "../../test/support/unique-names.js";

const API_MAX_DEADLINE_MS = 1000;
const FAST_RETRIES = { RETRY_INITIAL_DELAY_MS: "20", RETRY_MAX_DELAY_MS: "100" };

// The fault of issue item 3: API_TIMEOUT_MS above the API's MAX_RPC_DEADLINE_MS makes the API refuse
// every call as invalid_argument, which is the deployment's fault, not any record's.
describe("scheduler whose deadline the API refuses @integration", () => {
  const pipeline = usePipelineFixture({ MAX_RPC_DEADLINE_MS: String(API_MAX_DEADLINE_MS) });

  it("when API_TIMEOUT_MS exceeds the API's MAX_RPC_DEADLINE_MS, then valid records are retried as invalid_argument, never dead-lettered, and persisted once the timeout is fixed", async () => {
    const ids = Array.from({ length: 5 }, () => uniqueId("deadline"));
    await pipeline.producer.send({
      topic: pipeline.topics.input,
      acks: -1,
      messages: ids.map((id) => ({ key: id, value: seedMessage({ productId: id }) })),
    });

    // The scheduler reads a larger MAX_RPC_DEADLINE_MS than the API, so its startup check passes.
    const misconfigured = await pipeline.startScheduler({
      apiUrl: pipeline.api.url,
      env: { ...FAST_RETRIES, API_TIMEOUT_MS: "2000", MAX_RPC_DEADLINE_MS: "5000" },
    });
    const deadLettered: string[] = [];
    let refusals = 0;
    // Ends at the first dead letter too, so a scheduler that drops the records fails on what it did.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no three invalid_argument retries in 15 s")), 15_000);
      const check = () => {
        if (refusals < 3 && deadLettered.length === 0) return;
        clearTimeout(timer);
        resolve();
      };
      misconfigured.events.on("retrying", ({ reason }) => {
        if (reason === "invalid_argument") refusals++;
        check();
      });
      misconfigured.events.on("dead-lettered", ({ offset, message }) => {
        deadLettered.push(`${offset}: ${message}`);
        check();
      });
    });
    await misconfigured.stop();
    expect(deadLettered, "records dead-lettered").to.deep.equal([]);
    expect(await recordCount(pipeline.kafka, pipeline.topics.errors), "records in the error topic").to.equal(0);
    const retries = (await misconfigured.metrics.retries.get()).values.find(
      (value) => value.labels.reason === "invalid_argument",
    );
    expect(retries?.value, "scheduler_retries_total{reason=invalid_argument}").to.be.at.least(3);
    expect(await pipeline.api.knex("products").whereIn("id", ids).count({ n: "*" })).to.deep.equal([{ n: 0 }]);

    const fixed = await pipeline.startScheduler({
      apiUrl: pipeline.api.url,
      groupId: misconfigured.groupId,
      env: { ...FAST_RETRIES, API_TIMEOUT_MS: String(API_MAX_DEADLINE_MS) },
    });
    await untilConsumed(fixed, pipeline.kafka, pipeline.topics.input);
    expect(await pipeline.api.knex("products").whereIn("id", ids).count({ n: "*" })).to.deep.equal([{ n: ids.length }]);
    expect(await recordCount(pipeline.kafka, pipeline.topics.errors), "records in the error topic").to.equal(0);
  });
});
