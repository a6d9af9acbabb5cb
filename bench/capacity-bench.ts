/**
 * How the pipeline's throughput and CPU per message change with more scheduler instances and API
 * replicas, each a separate process, and what that says about sizing a larger installation.
 *
 *   npm run bench:capacity -- [--messages 20000] [--configs 1x1,2x1,3x1,1x2,2x2,3x2] [--node-args="…"]
 *
 * Per topology (schedulers × API replicas), on fresh topics, database and consumer group: start
 * the APIs (the first holds the relay; schedulers call the others first), start the schedulers,
 * wait until the group has settled, then produce the workload and time it until every event is
 * on the persisted topic. CPU is counted per process. From the measured CPU per message of each
 * component the report sizes schedulers, partitions, API replicas and PostgreSQL cores for given
 * rates (bench/capacity/model.ts; the reasoning is in bench/README.md). Progress on stderr; the
 * report on stdout, ending with one `bench:capacity …` line per topology.
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { destination, pino } from "pino";
import { createKafka } from "#platform/kafka.js";
import { log } from "./capacity/log.js";
import type { ConfigResult } from "./capacity/model.js";
import { readCapacityBenchOptions } from "./capacity/options.js";
import { configName, reportCapacityBench } from "./capacity/report.js";
import { measureConfig } from "./capacity/run-config.js";
import { readSettings } from "./pipeline/settings.js";
import { generateWorkload } from "./pipeline/workload.js";
import { failureText, UsageError } from "./shared/usage-error.js";

const benchLogger = pino({ level: "warn", base: { service: "bench" } }, destination(2));

async function main(): Promise<void> {
  const options = readCapacityBenchOptions(process.argv.slice(2));
  const settings = readSettings();
  const tag = randomBytes(4).toString("hex");
  const kafka = createKafka({ ...settings.kafka, clientId: "capacity-bench" }, benchLogger);
  log(
    `${os.availableParallelism()} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}; ${settings.partitions} partitions; ` +
      `topologies ${options.configs.map(configName).join(", ")} (schedulers×API replicas)`,
  );
  const workload = generateWorkload(options.messages, tag, settings.partitions);
  const results: ConfigResult[] = [];
  for (const [index, config] of options.configs.entries()) {
    log(`[${index + 1}/${options.configs.length}] ${configName(config)}: ${workload.records.length} records`);
    const result = await measureConfig(kafka, settings, workload, config, tag, options.nodeArgs);
    log(`[${configName(config)}] ${Math.round(result.perSecond)} msg/s, relay on ${result.relayOn ?? "?"}`);
    results.push(result);
  }
  await reportCapacityBench(options, settings.partitions, settings.partitionsConcurrently, results);
}

main().then(
  () => process.exit(),
  (error: unknown) => {
    process.stderr.write(`bench:capacity: ${failureText(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
