import { expect } from "chai";
import { expectWellFormedXml } from "../../test/support/well-formed-xml.js";
import type { CpuUse as ApiCpuUse } from "../api/cpu-window.js";
import { type ConfigResult, componentCosts, limits, planCapacity } from "../capacity/model.js";
import type { CpuUse } from "../pipeline/cpu-window.js";
import { summarizePipeline } from "../pipeline/summary.js";
import { kafkaVersionIn, measureWakeCost } from "./machine.js";
import { readSuiteOptions } from "./options.js";
import { renderReport } from "./report.js";
import { indexMarkdown, stampOf } from "./report-files.js";
import type { SuiteResults } from "./results.js";
import { checkTargets } from "./targets.js";

const cpu = (use: Partial<CpuUse>): CpuUse => ({
  seconds: 10,
  bench: 0,
  api: 0,
  scheduler: 0,
  relay: 0,
  postgres: 0,
  kafka: 0,
  others: 1,
  machine: 15,
  ...use,
});

/** The quiet-machine figures: 3,375 msg/s end to end, ceilings 22,172 and 22,084, CPU 537 µs against 141. */
function pipelineRun() {
  const messages = 50_000;
  const seconds = (us: number) => (us * messages) / 1e6;
  const rate = (perSecond: number, use: Partial<CpuUse>) => ({
    messages,
    seconds: messages / perSecond,
    perSecond,
    cpu: cpu(use),
  });
  const e2e = {
    ...rate(3_375, {
      bench: seconds(58),
      api: seconds(242),
      scheduler: seconds(126),
      postgres: seconds(71),
      kafka: seconds(23),
    }),
    startupS: 2,
    rowsDoneS: 14,
    warmupEvents: 0,
    lost: 0,
    duplicates: 0,
    rows: 45_000,
    calls: undefined,
  };
  const kafkaPipe = rate(22_172, { bench: seconds(36), kafka: seconds(23) });
  const pgCeiling = { ...rate(22_084, { bench: seconds(11), postgres: seconds(71) }), concurrency: 3 };
  const latency = (ratePerS: number, p50Ms: number, p99Ms: number) => ({
    ratePerS,
    durationS: 10,
    sent: ratePerS * 10,
    sentPerS: ratePerS,
    seen: ratePerS * 10,
    lost: 0,
    p50Ms,
    p90Ms: (p50Ms + p99Ms) / 2,
    p99Ms,
    maxMs: p99Ms * 1.3,
    seenP50Ms: p50Ms,
    seenP99Ms: p99Ms,
    toWriteP50Ms: p50Ms / 2,
    toWriteP99Ms: p99Ms / 2,
    writeToEventP50Ms: p50Ms / 2,
    writeToEventP99Ms: p99Ms / 2,
    cpu: cpu({ api: 1 }),
  });
  const latencies = [latency(1000, 79, 495), latency(1687, 50, 208)];
  const final = { deadLettered: 0, rows: 65_000, expectedRows: 65_000, lost: 0, duplicates: 0, serviceWarnings: 0 };
  return {
    bench: "pipeline" as const,
    finishedAt: "2026-12-02T01:00:00.000Z",
    machine: { cores: 2, cpu: "Test CPU", node: "v20.19.0" },
    options: {
      messages,
      pipeline: "child" as const,
      relay: "inline" as const,
      latencyS: 10,
      warmupPercent: 10,
      rate: 1000,
      nodeArgs: [],
      resultsFile: undefined,
    },
    settings: {
      partitions: 3,
      partitionsConcurrently: 3,
      apiBatchSize: 500,
      apiBatchMaxBytes: 524_288,
      fetchMaxWaitMs: 25,
      fetchMinBytes: 65536,
      outboxBatchSize: 500,
      outboxPollIntervalMs: 1000,
      dbPoolMax: 20,
      apiProtocol: "grpc",
      brokers: ["127.0.0.1:9092"],
    },
    loadAtStart: [0.5, 0.5, 0.5],
    loadAtEnd: [1.5, 1, 0.7],
    workload: { records: messages, distinctIds: 45_000, updates: 5_000, expectedEvents: messages },
    preload: rate(40_000, { bench: 1, kafka: 0.5 }),
    kafkaConsume: rate(60_000, { bench: 1, kafka: 0.2 }),
    kafkaPipe,
    pgCeiling,
    e2e,
    latencies,
    final,
    ratios: { e2eToKafka: 0.15, e2eToPg: 0.15 },
    summary: summarizePipeline({ messages, e2e, kafkaPipe, pgCeiling, latencies, lost: 0 }),
  };
}

function apiRun() {
  const phase = (name: "baseline" | "rest" | "grpc", perSecond: number, use: Partial<ApiCpuUse>) => ({
    name,
    creates: perSecond * 10,
    seconds: 10,
    perSecond,
    p50Ms: 20,
    p99Ms: 80,
    meanMs: 25,
    maxMs: 120,
    errors: 0,
    errorSamples: [],
    cpu: { bench: 0, apiChild: 0, postgres: 0, machine: 19, ...use },
    roundsPerSecond: [perSecond, perSecond],
    ratioToBaseline: perSecond / 2_800,
  });
  return {
    bench: "api" as const,
    finishedAt: "2026-12-02T01:10:00.000Z",
    options: {
      durationS: 10,
      rounds: 2,
      warmupS: 2,
      serverWarmupS: 10,
      concurrency: 64,
      server: "child" as const,
      serverNodeArgs: [],
      phases: ["baseline" as const, "rest" as const, "grpc" as const],
      resultsFile: undefined,
    },
    dbPoolMax: 20,
    serverWarmUpErrors: { count: 0, samples: [] },
    machine: { cores: 2, cpu: "Test CPU", node: "v20.19.0" },
    sql: { name: "upsert", text: "INSERT …" },
    phases: [
      phase("baseline", 2_800, { bench: 4, postgres: 8 }),
      phase("rest", 2_300, { bench: 3, apiChild: 8.05, postgres: 7 }),
      phase("grpc", 2_100, { bench: 2, apiChild: 7.35, postgres: 6 }),
    ],
    summary: {
      baselinePerS: 2_800,
      restPerS: 2_300,
      grpcPerS: 2_100,
      restRatio: 2_300 / 2_800,
      grpcRatio: 0.75,
      restP99Ms: 80,
      grpcP99Ms: 80,
      restCpuMs: 0.35,
      grpcCpuMs: 0.35,
      baselineCpuMs: 0.43,
    },
  };
}

function capacityRun() {
  const config = (schedulers: number, apiReplicas: number, perSecond: number, processes: Record<string, number>) => {
    const apis = Object.entries(processes).filter(([name]) => name.startsWith("api"));
    const result: ConfigResult = {
      schedulers,
      apiReplicas,
      messages: 20_000,
      seconds: 20_000 / perSecond,
      perSecond,
      feedPerS: 15_000,
      lost: 0,
      duplicates: 0,
      startupS: 3,
      relayOn: apiReplicas > 1 ? "api#1" : "api",
      schedulerApis: Array.from({ length: schedulers }, (_, i) =>
        apiReplicas > 1 ? `api#${(i % 2) + 1 === 1 ? 2 : 1}` : "api",
      ),
      cpu: cpu({
        api: apis.reduce((sum, [, s]) => sum + s, 0),
        scheduler: 2.4,
        postgres: 1.4,
        kafka: 0.4,
        bench: 1,
        processes,
      }),
      calls: undefined,
    };
    return result;
  };
  const results = [
    config(1, 1, 3_300, { api: 4.8, scheduler: 2.4 }),
    config(1, 2, 3_500, { "api#1": 1.2, "api#2": 3.8, scheduler: 2.4 }),
  ];
  const costs = componentCosts(results);
  if (!costs) throw new Error("no costs");
  return {
    bench: "capacity" as const,
    finishedAt: "2026-12-02T01:20:00.000Z",
    options: { messages: 20_000, configs: [], nodeArgs: [], resultsFile: undefined },
    machine: { cores: 2, cpu: "Test CPU", node: "v20.19.0" },
    partitions: 3,
    partitionsConcurrently: 3,
    results,
    costs,
    plans: [10_000, 50_000, 100_000].map((rate) => planCapacity(costs, rate)),
    limits: limits(costs, 2, 64),
  };
}

function suite(overrides: Partial<SuiteResults> = {}): SuiteResults {
  const pipeline = pipelineRun();
  const api = apiRun();
  return {
    stamp: "2026-12-02T010000Z",
    startedAt: "2026-12-02T01:00:00.000Z",
    finishedAt: "2026-12-02T01:25:00.000Z",
    quick: false,
    commands: { pipeline: ["--messages", "50000"], api: [], capacity: [] },
    machine: {
      cores: 2,
      cpuModel: "Test CPU @ 3.0GHz",
      memoryGiB: 7.8,
      os: "Linux 6.1",
      loadBefore: [0.42, 0.5, 0.6],
      loadAfter: [1.9, 1.2, 0.8],
    },
    versions: { node: "v20.19.0", kafkajs: "2.2.4", postgres: "15.20", kafka: "4.4.0" },
    git: { commit: "0123456789abcdef0123456789abcdef01234567", dirty: false },
    pipeline,
    api,
    capacity: capacityRun(),
    failures: [],
    summaryLines: ["bench:pipeline messages=50000 e2e_per_s=3375", "bench:api baseline_per_s=2800"],
    ...overrides,
  };
}

describe("bench report", () => {
  it("states the machine, the versions, the load before and after and the commit", () => {
    const { markdown } = renderReport(suite(), "2026-12-02T010000Z");
    expect(markdown).to.include("# Benchmark report 2026-12-02T010000Z");
    expect(markdown).to.include("2 × Test CPU @ 3.0GHz");
    expect(markdown).to.include("before 0.42 / 0.50 / 0.60, after 1.90 / 1.20 / 0.80");
    expect(markdown).to.include("Node v20.19.0, PostgreSQL 15.20, Kafka 4.4.0, kafkajs 2.2.4");
    expect(markdown).to.include("0123456789abcdef0123456789abcdef01234567 (clean)");
    expect(markdown).not.to.include("Quick smoke run");
    expect(markdown).not.to.include("CPU per wake-up");
  });

  it("when the wake-up cost was measured, then the machine table and the latency section give it", () => {
    const wakeCost = { timerUs: 298.4, pgRoundTripIdleUs: 1417, pgRoundTripBusyUs: 482.2 };
    const { markdown } = renderReport(suite({ machine: { ...suite().machine, wakeCost } }), "x");
    expect(markdown).to.include(
      "| CPU per wake-up | timer 298 µs; PostgreSQL round trip 1,417 µs every 25 ms, 482 µs back to back |",
    );
    const latency = markdown.slice(markdown.indexOf("## Latency"), markdown.indexOf("## CPU"));
    expect(latency).to.include("costs the client 1,417 µs against 482 µs back to back");
  });

  it("when the issue's figures are given, then the targets fail and pass as the issue says", () => {
    const { markdown } = renderReport(suite(), "x");
    const row = (target: RegExp) => markdown.split("\n").find((line) => target.test(line)) ?? "";
    expect(row(/end to end ≥ 0.6×/)).to.match(/3,375 of 11,064 msg\/s: 0\.31×.*\*\*FAIL\*\*/);
    expect(row(/CPU per message ≤ 2×/)).to.match(/520 µs against 141 µs: 3\.69×.*\*\*FAIL\*\*/);
    expect(row(/p99 ≤ 100 ms/)).to.match(/495 ms.*\*\*FAIL\*\*/);
    expect(row(/REST ≥ 0.8×/)).to.match(/2,300 of 2,800 creates\/s: 0\.82×; API CPU 0\.350 ms per create \| pass/);
    expect(row(/gRPC ≥ 0.8×/)).to.match(/0\.75×.*\*\*FAIL\*\*/);
    expect(markdown).to.include("bench:pipeline messages=50000 e2e_per_s=3375");
  });

  it("links every chart it draws, and each is a well-formed SVG with the run's bars", () => {
    const { markdown, charts } = renderReport(suite(), "2026-12-02T010000Z");
    expect(charts.map((c) => c.file)).to.deep.equal([
      "pipeline-throughput.svg",
      "api-throughput.svg",
      "latency.svg",
      "pipeline-cpu.svg",
      "api-cpu.svg",
      "capacity-throughput.svg",
      "capacity-cpu.svg",
    ]);
    for (const { file, svg } of charts) {
      expect(markdown).to.include(`](2026-12-02T010000Z/${file})`);
      expect(expectWellFormedXml(svg)[0]).to.equal("svg");
    }
    const svg = (file: string) => charts.find((c) => c.file === file)?.svg ?? "";
    expect(svg("pipeline-throughput.svg")).to.include("<title>composed ceiling: 11,064 msg/s</title>");
    expect(svg("pipeline-throughput.svg")).to.include("<title>end to end: 3,375 msg/s</title>");
    expect(svg("api-throughput.svg")).to.include("<title>gRPC CreateProduct: 2,100 creates/s</title>");
    expect(svg("latency.svg")).to.include("<title>1,000 msg/s, p99: 495 ms</title>");
    expect(svg("pipeline-cpu.svg")).to.include("<title>end to end, api: 242 µs/msg</title>");
    expect(svg("pipeline-cpu.svg")).to.include("<title>ceilings&apos; sum, kafka: 23 µs/msg</title>");
    expect(svg("capacity-throughput.svg")).to.include("<title>1×2: 3,500 msg/s</title>");
  });

  it("has the per-process CPU table, the capacity table and the model's plan", () => {
    const { markdown } = renderReport(suite(), "x");
    expect(markdown).to.include("| end to end | 58 | 242 | 126 | 0 | 71 | 23 | 520 |");
    expect(markdown).to.include("| rest | 0.130 | 0.350 | 0.304 |");
    expect(markdown).to.match(/\| 1×2 \| 3,500 \| 15,000 \|.*\| api#1 \| api#1 60, api#2 190, scheduler 120 \| 0 \|/);
    expect(markdown).to.include("relay 60 µs");
    expect(markdown).to.match(/\| 100,000 \| \d+ \| \d+ \| \d+ \| 6\.00 — \*\*too much for one\*\* \|/);
    expect(markdown).to.include("What saturates first");
  });

  it("when the run was quick or the machine busy, then the report says its numbers are not to be trusted", () => {
    const { markdown } = renderReport(
      suite({ quick: true, machine: { ...suite().machine, loadBefore: [4.5, 3, 2] } }),
      "x",
    );
    expect(markdown).to.include("Quick smoke run");
    expect(markdown).to.include("The machine was busy when the run started (load 4.50 on 2 cores)");
  });

  it("when a bench failed or did not run, then the report names the failure and leaves out its sections", () => {
    const { markdown, charts } = renderReport(
      suite({ api: undefined, capacity: undefined, failures: [{ bench: "api", exitCode: 1 }] }),
      "x",
    );
    expect(markdown).to.include("**Failed:** api (exit 1)");
    expect(markdown).not.to.include("single creates");
    expect(markdown).not.to.include("## Capacity");
    expect(charts.map((c) => c.file)).to.deep.equal(["pipeline-throughput.svg", "latency.svg", "pipeline-cpu.svg"]);
  });
});

describe("bench targets", () => {
  it("when latency was not measured at 1,000 msg/s, then that target is n/a rather than a pass", () => {
    const summary = { ...pipelineRun().summary, latencyRatePerS: 500, p99Ms: 20 };
    const p99 = checkTargets(summary, undefined).find((c) => c.target.startsWith("p99"));
    expect(p99?.pass).to.equal(undefined);
    expect(p99?.measured).to.include("not measured at 1,000 msg/s");
  });
});

describe("npm run bench options", () => {
  it("when quick, then every bench gets small sizes that --messages and --duration override", () => {
    const options = readSuiteOptions(["--quick", "--messages", "8000"]);
    expect(options.args.pipeline).to.deep.equal(["--messages", "8000", "--latency-s", "3"]);
    expect(options.args.api).to.include("--duration");
    expect(options.only).to.deep.equal(["pipeline", "api", "capacity"]);
  });

  it("runs the defaults of each bench unless told otherwise, in the suite's order", () => {
    const options = readSuiteOptions(["--only", "api,pipeline", "--duration", "20"]);
    expect(options.only).to.deep.equal(["pipeline", "api"]);
    expect(options.args).to.deep.equal({ pipeline: [], api: ["--duration", "20"], capacity: [] });
  });

  it("refuses an unknown bench", () => {
    expect(() => readSuiteOptions(["--only", "pipeline,disk"])).to.throw(/--only=pipeline,disk/);
  });
});

describe("report files", () => {
  it("names a run by its start, sortable and valid as a file name", () => {
    expect(stampOf(new Date("2026-12-02T01:05:33.123Z"))).to.equal("2026-12-02T010533Z");
  });

  it("lists the reports newest first, the latest linked on top", () => {
    const index = indexMarkdown(["2026-11-30T100000Z", "2026-12-02T010533Z"]);
    expect(index).to.include("Latest: [2026-12-02T010533Z](2026-12-02T010533Z.md)");
    expect(index.indexOf("- [2026-12-02T010533Z]")).to.be.lessThan(index.indexOf("- [2026-11-30T100000Z]"));
    expect(indexMarkdown([])).to.include("No report yet");
  });
});

describe("kafkaVersionIn", () => {
  it("reads the version from a broker's class path or its jars' names", () => {
    expect(kafkaVersionIn("java -cp /root/.cache/product-ingestion/kafka-4.4.0/libs/* kafka.Kafka")).to.equal("4.4.0");
    expect(kafkaVersionIn("-cp /opt/kafka_2.13-3.7.0/libs/x.jar kafka.Kafka")).to.equal("3.7.0");
    expect(kafkaVersionIn("kafka-clients-4.0.0.jar kafka-raft-4.0.0.jar")).to.equal("4.0.0");
    expect(kafkaVersionIn("-cp /opt/kafka/libs/* kafka.Kafka")).to.equal(undefined);
  });
});

describe("measureWakeCost against the bench's PostgreSQL @integration", function () {
  this.timeout(30_000);

  it("gives CPU per timer wake and per round trip, idle and back to back, in µs", async () => {
    const cost = await measureWakeCost();
    for (const value of [cost.timerUs, cost.pgRoundTripIdleUs, cost.pgRoundTripBusyUs]) {
      // µs, not ms or ns: no wake or round trip costs under a µs or over a second of CPU.
      expect(value).to.be.a("number").greaterThan(1).and.lessThan(1_000_000);
    }
  });
});
