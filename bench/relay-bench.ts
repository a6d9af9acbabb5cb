/**
 * The outbox relay's CPU per event, stage by stage, without a broker: what reading, encoding and
 * deleting one event costs in this process, with the relay's own functions and kafkajs's encoders.
 *
 *   npm run bench:relay -- [--records 30000] [--batch-size OUTBOX_BATCH_SIZE]
 *     [--request-bytes OUTBOX_BATCH_MAX_BYTES] [--warmup-batches 2] [--repeat 5]
 *
 * Progress on stderr; the stage table on stdout, ending with one `bench:relay …` line.
 */
import os from "node:os";
import { loadApiConfig } from "../api/src/config.js";
import { relayStageLines, relaySummaryLine } from "./relay/report.js";
import { measureRelayStages } from "./relay/stages.js";
import { benchLog } from "./shared/bench-log.js";
import { BENCH_POSTGRES_URL } from "./shared/environment.js";
import { writeResultsFile } from "./shared/results-file.js";
import { failureText, integerFlag, parseArgsOrThrowUsage, UsageError } from "./shared/usage-error.js";

const log = benchLog("bench:relay");
const PARTITIONS = 3;

async function main(): Promise<void> {
  const api = loadApiConfig({ ...process.env, DATABASE_URL: BENCH_POSTGRES_URL });
  const { values } = parseArgsOrThrowUsage(process.argv.slice(2), {
    records: { type: "string", default: "30000" },
    "batch-size": { type: "string", default: String(api.outboxBatchSize) },
    "request-bytes": { type: "string", default: String(api.outboxBatchMaxBytes) },
    "warmup-batches": { type: "string", default: "2" },
    repeat: { type: "string", default: "5" },
  });
  const options = {
    records: integerFlag("records", values.records),
    batchSize: integerFlag("batch-size", values["batch-size"]),
    maxRequestBytes: integerFlag("request-bytes", values["request-bytes"]),
    warmupBatches: integerFlag("warmup-batches", values["warmup-batches"], 0),
    repeat: integerFlag("repeat", values.repeat),
    partitions: PARTITIONS,
    databaseServerUrl: BENCH_POSTGRES_URL,
  };
  log(
    `${os.availableParallelism()} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(
        " ",
      )}; ${options.records} records through the repository, then batches of ${options.batchSize} in requests of at most ${options.maxRequestBytes} bytes`,
  );
  const result = await measureRelayStages({
    ...options,
    onBatch: (batch, events) => log(`batch ${batch}: ${events} events read, encoded and deleted`),
  });
  const finishedAt = new Date();
  const file = await writeResultsFile("relay", finishedAt, {
    bench: "relay",
    finishedAt: finishedAt.toISOString(),
    options,
    machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model, node: process.version },
    result,
  });
  process.stdout.write(`${[...relayStageLines(result), `results: ${file}`, relaySummaryLine(result)].join("\n")}\n`);
}

main().then(
  () => process.exit(),
  (error: unknown) => {
    process.stderr.write(`bench:relay: ${failureText(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
