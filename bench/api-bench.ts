/**
 * Create throughput of the API against the same upsert done directly with `pg`.
 *
 *   npm run bench:api -- [--duration 10] [--rounds 3] [--warmup 2] [--server-warmup 10] [--concurrency 64]
 *     [--server child|inproc] [--phases baseline,rest,grpc]
 *     [--server-node-args="--max-semi-space-size=32 --cpu-prof --cpu-prof-dir=/tmp/prof"]
 *
 * Three phases over one fresh database: the raw `pg` baseline (the API's own prepared upsert
 * statement, same pool size), REST `POST /products/` and gRPC `CreateProduct` through a real server. Each phase is
 * a closed loop of `concurrency` clients writing fresh ids. The phases take turns in rounds
 * (baseline, rest, grpc, baseline, …), so that a machine whose speed drifts during the run (a
 * shared host) weighs on all of them alike. The API runs in a child process by
 * default: in-process, the load generator's own CPU per request (for gRPC about as much as the
 * server's) lands on the API's single event loop. The last stdout line is a one-line summary for
 * scripts; JSON goes to bench/results/runs/ (or --results-file). See bench/README.md for how to read the numbers and for
 * the modules under bench/api/.
 */
import os from "node:os";
import { loadApiConfig } from "../api/src/config.js";
import { disposableDatabase } from "../test/support/disposable-database.js";
import { type BenchServer, benchApiEnv, startApiServer } from "./api/api-server.js";
import { log } from "./api/log.js";
import { readApiBenchOptions } from "./api/options.js";
import { runPhases, warmUpServer } from "./api/phases.js";
import { reportApiBench } from "./api/report.js";
import { BENCH_POSTGRES_URL } from "./shared/environment.js";
import { failureText } from "./shared/usage-error.js";

async function main(): Promise<void> {
  const options = readApiBenchOptions(process.argv.slice(2));
  const database = disposableDatabase(BENCH_POSTGRES_URL, "products_bench");
  const apiEnv = benchApiEnv(database.url);
  const config = loadApiConfig(apiEnv);
  log(
    `${options.server === "inproc" ? "API and load generator share this Node process" : "API runs in a child process"}` +
      ` on ${os.availableParallelism()} cores, PostgreSQL on the same machine; database ${database.name}`,
  );
  let server: BenchServer | undefined;
  try {
    server = await startApiServer(options, apiEnv, config);
    const serverWarmUpErrors = await warmUpServer(options, server.url);
    const results = await runPhases(options, config, database.url, server);
    await server.stop();
    server = undefined;
    await reportApiBench(options, config, results, serverWarmUpErrors);
  } finally {
    await server?.stop().catch(() => {});
    await database.drop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:api: ${failureText(error)}\n`);
  process.exit(1);
});
