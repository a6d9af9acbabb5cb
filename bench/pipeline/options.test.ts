import { expect } from "chai";
import { UsageError } from "../shared/usage-error.js";
import { DEFAULT_WARMUP_PERCENT, readPipelineBenchOptions, warmupEvents } from "./options.js";

describe("bench:pipeline options", () => {
  it("when no warm-up is given, then the default share of events warms the services up", () => {
    expect(readPipelineBenchOptions([]).warmupPercent).to.equal(DEFAULT_WARMUP_PERCENT);
    expect(warmupEvents(50_000, DEFAULT_WARMUP_PERCENT)).to.equal(5_000);
    expect(warmupEvents(1_001, 10)).to.equal(101);
  });

  it("when --warmup-percent 0 is given, then the clock starts at the group join", () => {
    expect(readPipelineBenchOptions(["--warmup-percent", "0"]).warmupPercent).to.equal(0);
    expect(warmupEvents(50_000, 0)).to.equal(0);
  });

  it("when --warmup-percent is not an integer from 0 to 50, then the flag is named", () => {
    for (const value of ["51", "-1", "ten", "2.5"]) {
      expect(() => readPipelineBenchOptions([`--warmup-percent=${value}`]), value).to.throw(
        UsageError,
        `--warmup-percent=${value}: expected an integer from 0 to 50`,
      );
    }
  });
});
