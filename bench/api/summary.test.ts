import { expect } from "chai";
import type { CpuUse } from "./cpu-window.js";
import { apiSummaryLine, summarizeApi } from "./summary.js";

const cpu = (use: Partial<CpuUse>): CpuUse => ({ bench: 0, apiChild: 0, postgres: 0, machine: 9, ...use });

const phases = [
  { name: "baseline", creates: 10_000, perSecond: 2_800, p99Ms: 60, cpu: cpu({ bench: 1, postgres: 2 }) },
  { name: "rest", creates: 8_000, perSecond: 2_240, p99Ms: 80.123, cpu: cpu({ bench: 1, apiChild: 2.8, postgres: 2 }) },
  { name: "grpc", creates: 7_000, perSecond: 2_100, p99Ms: 96, cpu: cpu({ bench: 1, apiChild: 2.45, postgres: 2 }) },
];

describe("api summary", () => {
  it("when a run is summarised, then the line keeps the old fields and adds CPU per create", () => {
    expect(apiSummaryLine(summarizeApi(phases))).to.equal(
      "bench:api baseline_per_s=2800 rest_per_s=2240 grpc_per_s=2100 rest_ratio=0.80 grpc_ratio=0.75" +
        " rest_p99_ms=80.12 grpc_p99_ms=96.00 rest_cpu_ms=0.350 grpc_cpu_ms=0.350 baseline_cpu_ms=0.300",
    );
  });

  it("when the API ran in-process (no child CPU), then its CPU fields say na", () => {
    const inproc = phases.map((phase) =>
      phase.name === "baseline" ? phase : { ...phase, cpu: cpu({ bench: 3, apiChild: undefined }) },
    );
    expect(apiSummaryLine(summarizeApi(inproc))).to.match(/ rest_cpu_ms=na grpc_cpu_ms=na baseline_cpu_ms=0\.300$/);
  });

  it("when only some phases ran, then the others are 0 and their CPU na", () => {
    const line = apiSummaryLine(summarizeApi(phases.slice(1, 2)));
    expect(line).to.include("baseline_per_s=0 rest_per_s=2240 grpc_per_s=0 rest_ratio=0.00");
    expect(line).to.include("grpc_cpu_ms=na baseline_cpu_ms=na");
  });
});
