import { expect } from "chai";
import { catchUpSeconds, type ProgressSample } from "./catch-up.js";

/** Samples every 250 ms from t=0 of a counter that stalls from `stallFrom` to `resumeAt` (ms). */
function stalled(options: { rate: number; stallFrom: number; resumeAt: number; until: number; catchUpRate?: number }) {
  const samples: ProgressSample[] = [];
  let done = 0;
  let offered = 0;
  for (let t = 0; t <= options.until; t += 250) {
    offered = (options.rate * t) / 1000;
    if (t < options.stallFrom) done = offered;
    else if (t >= options.resumeAt)
      done = Math.min(offered, done + ((options.catchUpRate ?? options.rate * 4) * 250) / 1000);
    samples.push({ t, done, backlog: offered - done });
  }
  return samples;
}

describe("fault suite catch-up", () => {
  it("when processing resumes at once after the fault, then catch-up is 0", () => {
    const samples = stalled({ rate: 100, stallFrom: 2_000, resumeAt: 5_000, until: 12_000 });
    expect(catchUpSeconds(samples, 5_000, 100)).to.equal(0);
  });

  it("when processing resumes 7 s after the process is back, then catch-up is 7 s", () => {
    const samples = stalled({ rate: 100, stallFrom: 2_000, resumeAt: 12_000, until: 20_000 });
    // Within one sampling step: it resumed between the samples at 11.75 s and 12 s.
    expect(catchUpSeconds(samples, 5_000, 100)).to.be.closeTo(7, 0.25);
  });

  it("when it never resumes, then there is no catch-up", () => {
    const samples = stalled({ rate: 100, stallFrom: 2_000, resumeAt: 99_000, until: 20_000 });
    expect(catchUpSeconds(samples, 5_000, 100)).to.equal(undefined);
  });

  it("when it resumes below half the offered rate, then it has not caught up until the backlog is small", () => {
    const samples = stalled({ rate: 100, stallFrom: 2_000, resumeAt: 5_000, until: 12_000, catchUpRate: 20 });
    expect(catchUpSeconds(samples, 5_000, 100)).to.equal(undefined);
  });

  it("when the backlog builds up only after the crash (a standby taking over), then catch-up ends once it is worked off", () => {
    // Crash at 5 s with nothing waiting yet; the standby takes over 2 s later.
    const samples = stalled({ rate: 100, stallFrom: 5_000, resumeAt: 7_000, until: 20_000 });
    expect(catchUpSeconds(samples, 5_000, 100)).to.be.closeTo(2, 0.25);
  });

  it("when nothing is waiting, then it has caught up, and failed looks are skipped", () => {
    const samples: ProgressSample[] = [
      { t: 1_000, done: undefined, backlog: undefined },
      { t: 1_250, done: 50, backlog: 0 },
    ];
    expect(catchUpSeconds(samples, 1_000, 100)).to.equal(0.25);
  });
});
