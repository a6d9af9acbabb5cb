/**
 * The API's CPU per create in the working tree against a git revision, both measured in the same run.
 *
 *   npm run bench:compare -- [--base HEAD] [--rounds 8] [--turn 3] [--settle 0.5] [--server-warmup 8]
 *     [--concurrency 64] [--phases rest,grpc]
 *
 * On a shared machine whose speed drifts by more than a change saves, two bench:api runs in a row
 * cannot tell a 10% gain from noise. Here both APIs run at once (each from a temporary git worktree,
 * the revision's and a commit of the working tree's, sharing this checkout's node_modules; each on
 * a fresh database, no relay), and short turns of the same closed loop alternate between them, in
 * the opposite order every round, so drift weighs on both alike. The last stdout line is a one-line summary for scripts. See
 * bench/README.md.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { disposableDatabase } from "../test/support/disposable-database.js";
import { freePorts } from "../test/support/free-port.js";
import { benchApiEnv } from "./api/api-server.js";
import { startClosedLoop } from "./api/closed-loop.js";
import { ErrorTally } from "./api/error-tally.js";
import { createGrpcLoad, createRestLoad, type Load } from "./api/loads.js";
import { DEFAULT_SERVER_NODE_ARGS } from "./api/options.js";
import { warmUpServer } from "./api/phases.js";
import { type CompareOptions, readCompareOptions } from "./compare/options.js";
import {
  compareSummaryLine,
  comparisonTable,
  emptyTotal,
  type PhaseComparison,
  type Side,
  type SideTotal,
} from "./compare/summary.js";
import { benchLog } from "./shared/bench-log.js";
import { BENCH_PORT_RANGE, BENCH_POSTGRES_URL, REPOSITORY_ROOT } from "./shared/environment.js";
import { processCpu } from "./shared/proc-cpu.js";
import { type ServiceProcess, startHttpService } from "./shared/service-process.js";
import { failureText, UsageError } from "./shared/usage-error.js";

const log = benchLog("bench:compare");

interface ComparedServer {
  side: Side;
  url: string;
  service: ServiceProcess;
}

function git(args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync("git", args, {
    cwd: REPOSITORY_ROOT,
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

/**
 * A commit of the working tree as it is (untracked files too, ignored ones not), made with an
 * index of its own: the checkout, its index and its branches stay as they are.
 */
function workingTreeCommit(scratch: string): string {
  const env = { ...process.env, GIT_INDEX_FILE: path.join(scratch, "index") };
  git(["read-tree", "HEAD"], env);
  git(["add", "--all"], env);
  const tree = git(["write-tree"], env);
  return git(["commit-tree", tree, "-p", "HEAD", "-m", "bench:compare: the working tree"], env);
}

async function main(): Promise<void> {
  const options = readCompareOptions(process.argv.slice(2));
  let base: string;
  try {
    base = git(["rev-parse", "--verify", `${options.base}^{commit}`]);
  } catch {
    throw new UsageError(`--base=${options.base}: not a git revision of this repository`);
  }
  const lockChanged = git(["diff", "--name-only", base, "--", "package-lock.json"]) !== "";
  if (lockChanged) log(`package-lock.json differs from ${options.base}: the base runs on this checkout's dependencies`);

  const scratch = await mkdtemp(path.join(os.tmpdir(), "bench-compare-"));
  const databases = [
    disposableDatabase(BENCH_POSTGRES_URL, "products_compare"),
    disposableDatabase(BENCH_POSTGRES_URL, "products_compare"),
  ];
  const worktrees: string[] = [];
  const servers: ComparedServer[] = [];
  try {
    // Both sides run from a worktree of their own, so that they differ in nothing but their code.
    const sides: [Side, string][] = [
      ["base", base],
      ["head", workingTreeCommit(scratch)],
    ];
    for (const [side, commit] of sides) {
      const worktree = path.join(scratch, side);
      git(["worktree", "add", "--detach", "--quiet", worktree, commit]);
      worktrees.push(worktree);
      await symlink(path.join(REPOSITORY_ROOT, "node_modules"), path.join(worktree, "node_modules"), "dir");
    }
    log(`base ${options.base} (${base.slice(0, 12)}) and head (this working tree) in worktrees under ${scratch}`);
    const ports = await freePorts(2, [], BENCH_PORT_RANGE);
    for (const [i, [side]] of sides.entries()) {
      const url = `http://127.0.0.1:${ports[i]}`;
      const env = { PATH: process.env.PATH, ...benchApiEnv(databases[i]?.url ?? ""), PORT: String(ports[i]) };
      const entry = path.join(worktrees[i] ?? "", "api/src/main.ts");
      servers.push({
        side,
        url,
        service: await startHttpService(entry, url, { env, nodeArgs: DEFAULT_SERVER_NODE_ARGS }),
      });
    }
    for (const server of servers) {
      log(`warming up the ${server.side} API`);
      await warmUpServer(options, server.url);
    }
    const results = await compare(options, servers);
    process.stdout.write(`${comparisonTable(results)}\n`);
    process.stdout.write(`${compareSummaryLine(options.base, results)}\n`);
  } finally {
    await Promise.all(servers.map((s) => s.service.stop().catch(() => {})));
    await Promise.all(databases.map((d) => d.drop().catch(() => {})));
    for (const worktree of worktrees) {
      try {
        git(["worktree", "remove", "--force", worktree]);
      } catch {
        // Removed below with the scratch folder; prune forgets it.
      }
    }
    await rm(scratch, { recursive: true, force: true });
    git(["worktree", "prune"]);
  }
}

/** The rounds: each phase, each side in turn (base first in even rounds, head first in odd ones). */
async function compare(options: CompareOptions, servers: ComparedServer[]): Promise<PhaseComparison[]> {
  const totals = new Map(options.phases.map((phase) => [phase, { base: emptyTotal(), head: emptyTotal() }]));
  const loads = new Map<string, Load>();
  const loadFor = (server: ComparedServer, phase: string) => {
    const key = `${server.side} ${phase}`;
    let load = loads.get(key);
    if (!load) {
      load =
        phase === "rest"
          ? createRestLoad(server.url, options.concurrency)
          : createGrpcLoad(server.url, options.concurrency);
      loads.set(key, load);
    }
    return load;
  };
  try {
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const phase of options.phases) {
        for (const server of order) {
          const total = totals.get(phase)?.[server.side];
          if (total)
            await turn(
              `${server.side} ${phase} ${round + 1}/${options.rounds}`,
              loadFor(server, phase),
              server,
              options,
              total,
            );
        }
      }
    }
  } finally {
    await Promise.all([...loads.values()].map((load) => load.close()));
  }
  return options.phases.map((phase) => ({
    phase,
    ...(totals.get(phase) ?? { base: emptyTotal(), head: emptyTotal() }),
  }));
}

/** One turn: settleS of load, then turnS measured (the creates that end inside it, the API's CPU). */
async function turn(
  label: string,
  load: Load,
  server: ComparedServer,
  options: CompareOptions,
  total: SideTotal,
): Promise<void> {
  const errors = new ErrorTally();
  let measuring = false;
  let creates = 0;
  const loop = startClosedLoop(
    label,
    options.concurrency,
    (id) => load.create(id),
    () => {
      if (measuring) creates++;
    },
    errors,
    () => (measuring ? "measure" : "settle"),
  );
  try {
    await delay(options.settleS * 1000);
    const cpuBefore = await processCpu(server.service.pid);
    const started = performance.now();
    measuring = true;
    await delay(options.turnS * 1000);
    measuring = false;
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = await processCpu(server.service.pid);
    if (!cpuBefore || !cpuAfter) throw new Error(`the ${server.side} API (pid ${server.service.pid}) is gone`);
    total.creates += creates;
    total.seconds += seconds;
    total.apiCpuSeconds += cpuAfter.seconds - cpuBefore.seconds;
  } finally {
    await loop.stop();
    total.errors += errors.count;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:compare: ${failureText(error)}\n`);
  process.exit(1);
});
