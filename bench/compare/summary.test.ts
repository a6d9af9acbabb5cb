import { expect } from "chai";
import { readCompareOptions } from "./options.js";
import {
  change,
  compareSummaryLine,
  comparisonTable,
  cpuMsPerCreate,
  type PhaseComparison,
  ratePerS,
} from "./summary.js";

const phases: PhaseComparison[] = [
  {
    phase: "rest",
    base: { creates: 30_000, seconds: 10, apiCpuSeconds: 9, errors: 0 },
    head: { creates: 33_000, seconds: 10, apiCpuSeconds: 8.25, errors: 1 },
  },
];

describe("bench:compare's arithmetic and command line", () => {
  it("when both sides measured, then rates, CPU per create and the change follow from the totals", () => {
    const [rest] = phases;
    expect(ratePerS(rest?.base ?? { creates: 0, seconds: 0, apiCpuSeconds: 0, errors: 0 })).to.equal(3000);
    expect(cpuMsPerCreate(rest?.base ?? { creates: 0, seconds: 0, apiCpuSeconds: 0, errors: 0 })).to.equal(0.3);
    expect(change(0.25, 0.3)).to.be.closeTo(-1 / 6, 1e-9);
    expect(compareSummaryLine("HEAD~1", phases)).to.equal(
      "bench:compare base=HEAD~1 rest_cpu_ms_base=0.3000 rest_cpu_ms_head=0.2500 rest_cpu_change=-0.167 rest_rate_change=0.100",
    );
  });

  it("when a side completed nothing, then its CPU per create is na rather than a number", () => {
    const empty = { creates: 0, seconds: 3, apiCpuSeconds: 1, errors: 5 };
    const table = comparisonTable([{ phase: "grpc", base: empty, head: empty }]);
    expect(table).to.match(/grpc\s+change\s+na\s+na/);
    expect(compareSummaryLine("HEAD", [{ phase: "grpc", base: empty, head: empty }])).to.contain("grpc_cpu_change=na");
  });

  it("when the table is printed, then each phase has a base, a head and a change row", () => {
    const lines = comparisonTable(phases).split("\n");
    expect(lines).to.have.length(4);
    expect(lines[3]).to.match(/^rest\s+change\s+\+10\.0%\s+-16\.7%/);
  });

  it("when flags are wrong, then the message names the flag", () => {
    expect(() => readCompareOptions(["--rounds", "0"])).to.throw(/--rounds=0/);
    expect(() => readCompareOptions(["--phases", "rest,baseline"])).to.throw(/--phases=rest,baseline/);
    expect(() => readCompareOptions(["--base", " "])).to.throw(/--base/);
    expect(readCompareOptions([]).base).to.equal("HEAD");
  });
});
