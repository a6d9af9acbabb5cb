import { expect } from "chai";
import { createSchedulerMetrics, startMetricsServer } from "./metrics.js";

describe("scheduler /healthz and the unfinished-records gauges", () => {
  let now = 0;
  const metrics = createSchedulerMetrics(() => now);
  let healthy = true;
  let server: Awaited<ReturnType<typeof startMetricsServer>> | undefined;
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${server?.port}${path}`);
    return { status: response.status, text: await response.text() };
  };

  before(async () => {
    server = await startMetricsServer(metrics, () => healthy, { port: 0, host: "127.0.0.1", stuckAfterMs: 60_000 });
  });

  after(async () => {
    await server?.close();
  });

  it("when the group assigns partitions, then each reads 0 records and 0 seconds until a batch arrives", async () => {
    metrics.unfinished.assigned({ "cadastro-produtos": [0, 1] });
    const { status, text } = await get("/healthz");
    expect(status).to.equal(200);
    expect(JSON.parse(text)).to.deep.equal({
      status: "ok",
      stuck: false,
      partitions: [
        { topic: "cadastro-produtos", partition: 0, unfinishedRecords: 0, oldestUnfinishedAgeSeconds: 0 },
        { topic: "cadastro-produtos", partition: 1, unfinishedRecords: 0, oldestUnfinishedAgeSeconds: 0 },
      ],
    });
    const scrape = (await get("/metrics")).text;
    expect(scrape).to.include('scheduler_unfinished_records{topic="cadastro-produtos",partition="1"} 0');
    expect(scrape).to.include(
      'scheduler_oldest_unfinished_record_age_seconds{topic="cadastro-produtos",partition="1"} 0',
    );
  });

  it("when a partition's oldest unfinished record waits longer than PARTITION_STUCK_AFTER_MS, then /healthz says stuck but still answers 200 (a restart would not help), and the gauges show it", async () => {
    now = 1_000;
    metrics.unfinished.started("cadastro-produtos", 1, 7);
    now = 62_000;
    const { status, text } = await get("/healthz");
    expect(status, "liveness stays green").to.equal(200);
    const body = JSON.parse(text);
    expect(body).to.include({ status: "ok", stuck: true });
    expect(body.partitions[1]).to.deep.equal({
      topic: "cadastro-produtos",
      partition: 1,
      unfinishedRecords: 7,
      oldestUnfinishedAgeSeconds: 61,
    });
    const scrape = (await get("/metrics")).text;
    expect(scrape).to.include('scheduler_unfinished_records{topic="cadastro-produtos",partition="1"} 7');
    expect(scrape).to.include(
      'scheduler_oldest_unfinished_record_age_seconds{topic="cadastro-produtos",partition="1"} 61',
    );
  });

  it("when the records are finished, then the partition is no longer stuck", async () => {
    metrics.unfinished.ended("cadastro-produtos", 1);
    expect(JSON.parse((await get("/healthz")).text)).to.include({ stuck: false });
  });

  it("when a rebalance keeps a partition with a batch in progress, then it keeps its count and age, and a partition given away is dropped", async () => {
    now = 100_000;
    metrics.unfinished.started("cadastro-produtos", 0, 3);
    now = 105_000;
    metrics.unfinished.assigned({ "cadastro-produtos": [0, 2] });
    expect(metrics.unfinished.snapshot()).to.deep.equal([
      { topic: "cadastro-produtos", partition: 0, unfinishedRecords: 3, oldestUnfinishedAgeSeconds: 5 },
      { topic: "cadastro-produtos", partition: 2, unfinishedRecords: 0, oldestUnfinishedAgeSeconds: 0 },
    ]);
    metrics.unfinished.ended("cadastro-produtos", 0);
  });

  it("when the consumer has died, then /healthz answers 503", async () => {
    healthy = false;
    const { status, text } = await get("/healthz");
    expect(status).to.equal(503);
    expect(JSON.parse(text)).to.include({ status: "consumer stopped" });
  });
});
