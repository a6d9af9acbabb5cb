/**
 * Prints the coverage of the last `npm run test:coverage` per folder and in total: lines, branches
 * and functions, from c8's coverage/coverage-summary.json (coverage/index.html has it per line).
 * Exits 1 if there is no report.
 *
 *   node --import tsx test/support/coverage-summary.ts
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const REPORT = path.join(ROOT, "coverage/coverage-summary.json");
const METRICS = ["lines", "branches", "functions"] as const;

type Metric = (typeof METRICS)[number];
type Count = { total: number; covered: number };
type Summary = Record<Metric, Count>;

function empty(): Summary {
  return { lines: { total: 0, covered: 0 }, branches: { total: 0, covered: 0 }, functions: { total: 0, covered: 0 } };
}

/** `92.5% (370/400)`; a folder with nothing to count is fully covered, as istanbul reports it. */
function percent({ total, covered }: Count): string {
  const pct = total === 0 ? 100 : (100 * covered) / total;
  return `${pct.toFixed(1)}% (${covered}/${total})`;
}

let report: Record<string, Summary>;
try {
  report = JSON.parse(await readFile(REPORT, "utf8")) as Record<string, Summary>;
} catch (error) {
  process.stderr.write(`coverage-summary: cannot read ${REPORT} (run npm run test:coverage): ${error}\n`);
  process.exit(1);
}

const folders = new Map<string, Summary>();
for (const [file, summary] of Object.entries(report)) {
  if (file === "total") continue;
  const folder = path.relative(ROOT, path.dirname(file)) || ".";
  const sum = folders.get(folder) ?? empty();
  for (const metric of METRICS) {
    sum[metric].total += summary[metric].total;
    sum[metric].covered += summary[metric].covered;
  }
  folders.set(folder, sum);
}
const total = report.total;
if (!total) {
  process.stderr.write(`coverage-summary: ${REPORT} has no total\n`);
  process.exit(1);
}

const rows = [
  ["folder", ...METRICS],
  ...[...folders]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([folder, sum]) => [folder, ...METRICS.map((m) => percent(sum[m]))]),
  ["total", ...METRICS.map((m) => percent(total[m]))],
];
const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
const line = (row: string[]) =>
  row
    .map((cell, column) => cell.padEnd(widths[column] ?? 0))
    .join("  ")
    .trimEnd();
process.stdout.write(`\n${rows.map(line).join("\n")}\n\n`);
// One line to find in a CI log.
process.stdout.write(`coverage total: ${METRICS.map((m) => `${m} ${percent(total[m])}`).join(", ")}\n`);
