import { expect } from "chai";
import type { CpuUse } from "../pipeline/cpu-window.js";
import { type ConfigResult, componentCosts, limits, planCapacity } from "./model.js";

const cpu = (use: Partial<CpuUse>): CpuUse => ({
  seconds: 10,
  bench: 0,
  api: 0,
  scheduler: 0,
  relay: 0,
  postgres: 0,
  kafka: 0,
  others: 3,
  machine: 20,
  ...use,
});

const run = (config: Partial<ConfigResult>): ConfigResult => ({
  schedulers: 1,
  apiReplicas: 1,
  messages: 10_000,
  seconds: 3,
  perSecond: 3_333,
  feedPerS: 20_000,
  lost: 0,
  duplicates: 0,
  startupS: 2,
  relayOn: "api",
  schedulerApis: ["api"],
  cpu: undefined,
  calls: undefined,
  ...config,
});

describe("capacity model", () => {
  // µs per message at 10,000 messages: seconds × 100.
  const oneByOne = run({ cpu: cpu({ api: 2.4, scheduler: 1.2, postgres: 0.7, kafka: 0.2, bench: 0.5 }) });
  const relayOnItsOwn = run({
    apiReplicas: 2,
    relayOn: "api#1",
    schedulerApis: ["api#2"],
    cpu: cpu({ api: 2.5, scheduler: 1.2, postgres: 0.7, kafka: 0.2, processes: { "api#1": 0.6, "api#2": 1.9 } }),
  });

  it("when no run had the relay apart, then the API's cost includes it and the relay is unknown", () => {
    expect(componentCosts([oneByOne])).to.deep.include({
      scheduler: 120,
      api: 240,
      relay: undefined,
      postgres: 70,
      kafka: 20,
      source: "medians of 1×1",
    });
  });

  it("when a run had the relay in a replica that served no scheduler, then the API and the relay are apart", () => {
    const costs = componentCosts([oneByOne, relayOnItsOwn]);
    expect(costs?.relay).to.be.closeTo(60, 1e-9);
    // The API and relay together: the median of 240 and 250; less the relay's 60.
    expect(costs?.api).to.be.closeTo(185, 1e-9);
    expect(costs?.scheduler).to.equal(120);
    expect(costs?.source).to.equal("medians of 1×1, 1×2; the relay apart in 1×2");
  });

  it("takes each component's median over the topologies, so one noisy run does not move it", () => {
    const noisy = run({ schedulers: 2, cpu: cpu({ api: 2.4, scheduler: 1.2, postgres: 0.7, kafka: 3.5 }) });
    const calm = run({ schedulers: 3, cpu: cpu({ api: 2.4, scheduler: 1.2, postgres: 0.7, kafka: 0.3 }) });
    expect(componentCosts([oneByOne, noisy, calm])?.kafka).to.be.closeTo(30, 1e-9);
  });

  it("when nothing measured CPU, then there is no model", () => {
    expect(componentCosts([run({})])).to.equal(undefined);
  });

  it("sizes instances, partitions and cores for a rate at 70% of each core", () => {
    const costs = { scheduler: 120, api: 190, relay: 60, postgres: 70, kafka: 20, source: "test" };
    const plan = planCapacity(costs, 10_000);
    // 1.2 cores of scheduler / 0.7 → 2 instances; 1.9 cores of API → 3 replicas.
    expect(plan).to.deep.include({ ratePerS: 10_000, schedulers: 2, apiReplicas: 3, relayFits: true });
    // A partition: 0.7e6 / (120 + 190 + 70) = 1,842 msg/s → 6 partitions; 2 instances × 3 = 6.
    expect(plan.partitions).to.equal(6);
    expect(plan.relayCores).to.be.closeTo(0.6, 1e-9);
    expect(plan.postgresCores).to.be.closeTo(1, 1e-9);
    expect(plan.totalCores).to.be.closeTo(4.6 / 0.7, 1e-9);
    const big = planCapacity(costs, 100_000);
    expect(big.relayFits, "one relay at 6 cores").to.equal(false);
    expect(big.partitions).to.equal(Math.ceil(100_000 / (0.7e6 / 380)));
  });

  it("lists the limits that more instances do not lift, lowest first", () => {
    const costs = { scheduler: 120, api: 190, relay: 60, postgres: 70, kafka: 20, source: "test" };
    const found = limits(costs, 2, 64);
    expect(found.map((l) => Math.round(l.maxRatePerS))).to.deep.equal([1_842, 4_348, 11_667, 640_000]);
    expect(found[2]?.what).to.match(/relay/);
  });
});
