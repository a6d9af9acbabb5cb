import { expect } from "chai";
import { backoffDelay, sleep } from "./backoff.js";

describe("backoff", () => {
  const options = { initialDelayMs: 100, maxDelayMs: 1000 };

  it("when attempts grow, then the ceiling doubles up to the cap", () => {
    const ceilings = [1, 2, 3, 4, 5, 50].map((attempt) => backoffDelay(attempt, options, () => 1));
    expect(ceilings).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
  });

  it("when jitter is drawn, then the delay lies anywhere from 0 to the ceiling (full jitter)", () => {
    expect(backoffDelay(3, options, () => 0)).to.equal(0);
    expect(backoffDelay(3, options, () => 0.5)).to.equal(200);
  });

  it("when the signal aborts, then sleep resolves at once", async () => {
    const controller = new AbortController();
    const started = Date.now();
    const sleeping = sleep(60_000, controller.signal);
    controller.abort();
    await sleeping;
    expect(Date.now() - started).to.be.lessThan(1000);
  });
});
