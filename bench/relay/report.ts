import { field, summaryLine } from "../shared/summary-line.js";
import type { RelayStagesResult } from "./stages.js";

const us = (value: number | undefined) => field(value, 2);

/** The stage table of `npm run bench:relay`, one line per stage, CPU µs per event. */
export function relayStageLines(result: RelayStagesResult): string[] {
  const { perEvent: cost } = result;
  const row = (stage: string, value: number | undefined, note = "") =>
    `${stage.padEnd(28)}${us(value).padStart(8)}${note ? `   ${note}` : ""}`;
  return [
    `${result.measuredEvents} events measured of ${result.events}, in ${result.batches} batches and ${result.requests} produce requests; ${field(result.bytesPerRecord)} bytes per record in them`,
    `${"stage".padEnd(28)}${"µs/event".padStart(8)}`,
    row("read batch", cost.read, "pg client: the query, the rows parsed"),
    row("event", cost.event, `toEventRecord; protobuf-es toBinary alone ${us(cost.protobuf)}`),
    row("kafkajs grouping", cost.grouping, "groupMessagesPerPartition"),
    row(
      "kafkajs encoding",
      cost.kafkaEncode,
      `the produce requests; without the three headers ${us(cost.kafkaEncodeWithoutHeaders)}`,
    ),
    row("delete batch", cost.delete, "pg client"),
    row("relay process, all stages", cost.client),
    row("PostgreSQL", cost.pg, "all its processes, over the measured batches (the reads and deletes)"),
  ];
}

export function relaySummaryLine(result: RelayStagesResult): string {
  const { perEvent: cost } = result;
  return summaryLine("relay", [
    ["events", result.measuredEvents],
    ["read_us", us(cost.read)],
    ["event_us", us(cost.event)],
    ["protobuf_us", us(cost.protobuf)],
    ["grouping_us", us(cost.grouping)],
    ["kafka_encode_us", us(cost.kafkaEncode)],
    ["kafka_encode_no_headers_us", us(cost.kafkaEncodeWithoutHeaders)],
    ["delete_us", us(cost.delete)],
    ["client_us", us(cost.client)],
    ["pg_us", us(cost.pg)],
  ]);
}
