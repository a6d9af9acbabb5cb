import { mean } from "../shared/stats.js";
import { field, summaryLine } from "../shared/summary-line.js";
import type { OutboxDesign, OutboxDesignCost } from "./designs.js";

type Figures = Omit<OutboxDesignCost, "design" | "events">;

export interface OutboxDesignSummary extends Figures {
  design: OutboxDesign;
  events: number;
  rounds: number;
  /** Lowest and highest PostgreSQL µs per event over the rounds. */
  pgRange: [number, number];
  /** PostgreSQL µs per event beyond the upsert without events (none), when none was measured. */
  pgForEvent: number | undefined;
}

export interface OutboxSummary {
  designs: OutboxDesignSummary[];
  /** Designs not measured, and why. */
  skipped: [OutboxDesign, string][];
}

const FIGURES: (keyof Figures)[] = [
  "writePg",
  "writeClient",
  "walBytes",
  "relayPg",
  "relayClient",
  "vacuumPg",
  "pg",
  "client",
];

/** Each design's runs as their means, in the order the designs were first run. */
export function summarise(
  runs: readonly OutboxDesignCost[],
  skipped: ReadonlyMap<OutboxDesign, string>,
): OutboxSummary {
  const order = [...new Set(runs.map((run) => run.design))];
  const designs = order.map((design): OutboxDesignSummary => {
    const mine = runs.filter((run) => run.design === design);
    const figures = Object.fromEntries(FIGURES.map((key) => [key, mean(mine.map((run) => run[key]))])) as Figures;
    const pgs = mine.map((run) => run.pg);
    return {
      design,
      events: mine[0]?.events ?? 0,
      rounds: mine.length,
      ...figures,
      pgRange: [Math.min(...pgs), Math.max(...pgs)],
      pgForEvent: undefined,
    };
  });
  const none = designs.find((d) => d.design === "none");
  for (const summary of designs) if (none && summary !== none) summary.pgForEvent = summary.pg - none.pg;
  return { designs, skipped: [...skipped] };
}

const us = (value: number | undefined) => field(value, 1);

/** The table of `npm run bench:outbox`: CPU µs per event (means over the rounds), WAL bytes per event. */
export function outboxTableLines(summary: OutboxSummary): string[] {
  const columns = [
    "write pg",
    "write client",
    "WAL B",
    "relay pg",
    "relay client",
    "vacuum pg",
    "pg",
    "client",
    "pg/event",
  ];
  const lines = [
    `${"design".padEnd(9)}${columns.map((c) => c.padStart(13)).join("")}   (µs of CPU per event; pg/event: beyond the upsert alone)`,
  ];
  for (const d of summary.designs) {
    const cells = [d.writePg, d.writeClient, d.walBytes, d.relayPg, d.relayClient, d.vacuumPg, d.pg, d.client];
    const text = cells.map((value, i) => (i === 2 ? field(value) : us(value)).padStart(13)).join("");
    const range = d.rounds > 1 ? `   pg ${us(d.pgRange[0])}–${us(d.pgRange[1])} over ${d.rounds} rounds` : "";
    lines.push(`${d.design.padEnd(9)}${text}${us(d.pgForEvent).padStart(13)}${range}`);
  }
  for (const [design, why] of summary.skipped) lines.push(`${design.padEnd(9)}not measured: ${why}`);
  return lines;
}

export function outboxSummaryLine(summary: OutboxSummary): string {
  const fields: [string, string | number][] = [["events", summary.designs[0]?.events ?? 0]];
  for (const d of summary.designs) {
    fields.push([`${d.design}_pg_us`, us(d.pg)], [`${d.design}_client_us`, us(d.client)]);
    fields.push([`${d.design}_wal_bytes`, field(d.walBytes)]);
  }
  for (const [design] of summary.skipped) fields.push([`${design}_pg_us`, "na"]);
  return summaryLine("outbox", fields);
}
