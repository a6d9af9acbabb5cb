import { expect } from "chai";
import type { CpuUse } from "./cpu-window.js";
import { composedCeiling, pipelineSummaryLine, summarizePipeline } from "./summary.js";

/** CPU seconds by role over a window; `others` must never count. */
function cpu(roles: Partial<CpuUse>): CpuUse {
  return {
    seconds: 1,
    bench: 0,
    api: 0,
    scheduler: 0,
    relay: 0,
    postgres: 0,
    kafka: 0,
    others: 5,
    machine: 10,
    ...roles,
  };
}

function fields(line: string): Record<string, string> {
  const [name, ...pairs] = line.split(" ");
  expect(name).to.equal("bench:pipeline");
  return Object.fromEntries(
    pairs.map((pair) => {
      expect(pair).to.match(/^[a-z0-9_]+=(-?\d+(\.\d+)?|na)$/);
      return pair.split("=") as [string, string];
    }),
  );
}

const run = {
  messages: 50_000,
  // 400 µs/msg by the pipeline's processes; others are not counted.
  e2e: { messages: 50_000, perSecond: 3_375, cpu: cpu({ bench: 2, api: 10, scheduler: 5, postgres: 2, kafka: 1 }) },
  // 60 µs/msg and 80 µs/msg.
  kafkaPipe: { messages: 50_000, perSecond: 22_000, cpu: cpu({ bench: 2, kafka: 1 }) },
  pgCeiling: { messages: 50_000, perSecond: 22_000, cpu: cpu({ bench: 1, postgres: 3 }) },
  latencies: [
    { ratePerS: 1000, p50Ms: 79.4, p99Ms: 495.2 },
    { ratePerS: 1687, p50Ms: 50, p99Ms: 208 },
  ],
  lost: 0,
};

describe("pipeline summary", () => {
  it("composes the ceilings as 1 / (1/kafka + 1/pg)", () => {
    expect(composedCeiling(22_000, 22_000)).to.equal(11_000);
    expect(composedCeiling(30_000, 15_000)).to.be.closeTo(10_000, 1e-9);
    expect(composedCeiling(0, 15_000)).to.equal(0);
  });

  it("when a run is summarised, then the line keeps the old fields and adds the composed ceiling and CPU ones", () => {
    const line = pipelineSummaryLine(summarizePipeline(run));
    expect(fields(line)).to.deep.equal({
      messages: "50000",
      e2e_per_s: "3375",
      kafka_ceiling_per_s: "22000",
      pg_ceiling_per_s: "22000",
      p50_ms: "79",
      p99_ms: "495",
      lost: "0",
      composed_ceiling_per_s: "11000",
      composed_ratio: "0.31",
      cpu_us_per_msg: "400",
      ceiling_cpu_us_per_msg: "140",
      cpu_ratio: "2.86",
    });
    // The fields scripts already read stay first, in their order.
    expect(line).to.match(/^bench:pipeline messages=\S+ e2e_per_s=\S+ kafka_ceiling_per_s=\S+ pg_ceiling_per_s=\S+ /);
  });

  it("when a window has no CPU figures (no /proc), then its fields say na instead of going missing", () => {
    const line = pipelineSummaryLine(summarizePipeline({ ...run, e2e: { ...run.e2e, cpu: undefined } }));
    expect(fields(line)).to.include({ cpu_us_per_msg: "na", ceiling_cpu_us_per_msg: "140", cpu_ratio: "na" });
  });

  it("takes the latency at the first offered rate", () => {
    const summary = summarizePipeline(run);
    expect(summary.latencyRatePerS).to.equal(1000);
    expect(summary.p99Ms).to.equal(495.2);
  });
});
