import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect } from "chai";
import { testDatabaseUrl } from "../../test/support/env.js";
import { REPOSITORY_ROOT } from "../shared/environment.js";

const run = promisify(execFile);

describe("npm run bench:compare, the working tree's API against a revision's @integration", function () {
  this.timeout(120_000);

  it("measures both APIs in alternating turns, prints the table and the summary line, and removes its worktree", async () => {
    const { stdout } = await run(
      process.execPath,
      [
        "--import",
        "tsx",
        "bench/compare-bench.ts",
        ...["--base", "HEAD", "--rounds", "1", "--turn", "0.5", "--settle", "0.2", "--server-warmup", "0"],
        ...["--phases", "rest", "--concurrency", "4"],
      ],
      { cwd: REPOSITORY_ROOT, env: { ...process.env, BENCH_POSTGRES_URL: testDatabaseUrl() } },
    );
    const lines = stdout.trim().split("\n");
    expect(lines.slice(0, 4).map((line) => line.split(/\s+/).slice(0, 2).join(" "))).to.deep.equal([
      "phase side",
      "rest base",
      "rest head",
      "rest change",
    ]);
    const summary = lines.at(-1) ?? "";
    expect(summary).to.match(
      /^bench:compare base=HEAD rest_cpu_ms_base=\d+\.\d{4} rest_cpu_ms_head=\d+\.\d{4} rest_cpu_change=-?\d+\.\d{3} rest_rate_change=-?\d+\.\d{3}$/,
    );
    const { stdout: worktrees } = await run("git", ["worktree", "list"], { cwd: REPOSITORY_ROOT });
    expect(worktrees).not.to.contain("bench-compare-");
  });

  it("refuses a revision that does not exist, naming it", async () => {
    const failure = await run(
      process.execPath,
      ["--import", "tsx", "bench/compare-bench.ts", "--base", "no-such-rev"],
      {
        cwd: REPOSITORY_ROOT,
      },
    ).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(failure?.code).to.equal(1);
    expect(failure?.stderr).to.contain("--base=no-such-rev: not a git revision of this repository");
  });
});
