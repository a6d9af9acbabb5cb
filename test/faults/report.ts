import type { CheckCounts, CheckResult } from "./checker.js";

/** One target or promise, checked in one scenario. */
export interface Check {
  name: string;
  ok: boolean;
  /** What was seen, when it failed. */
  detail?: string;
}

export interface ScenarioResult {
  name: string;
  summary: string;
  seconds: number;
  counts?: CheckCounts;
  examples?: CheckResult["examples"];
  /** Seconds from the faulted part being back to the normal rate again; null if it never got there. */
  catchUpSeconds?: number | null;
  backs: { what: string; at: string; input: number | null; events: number | null }[];
  drained: boolean;
  checks: Check[];
  notes: string[];
  /** Problems of the harness itself (a fault it could not inject, a part that would not start). */
  harnessErrors: string[];
  logs: string;
}

/** The targets the suite enforces, in the order it prints them. */
export const TARGET_NAMES = [
  "0 lost",
  "0 wrong final states",
  "0 valid records dead-lettered",
  "drained",
  "no duplicate back in version",
  "catch-up ≤ 10 s",
] as const;

export function buildChecks(
  counts: CheckCounts,
  options: { drained: boolean; catchUpTarget: boolean; catchUpSeconds: number | null | undefined; extra?: Check[] },
): Check[] {
  const zero = (name: string, fields: (keyof CheckCounts)[]): Check => {
    const bad = fields.filter((field) => counts[field] > 0);
    return bad.length === 0
      ? { name, ok: true }
      : { name, ok: false, detail: bad.map((field) => `${field} ${counts[field]}`).join(", ") };
  };
  const checks: Check[] = [
    zero("0 lost", ["lost"]),
    zero("0 wrong final states", ["wrong"]),
    zero("0 valid records dead-lettered", ["validDeadLettered"]),
    options.drained
      ? { name: "drained", ok: true }
      : { name: "drained", ok: false, detail: "not finished by the deadline" },
    zero("no duplicate back in version", ["backwards"]),
  ];
  if (options.catchUpTarget) {
    const seconds = options.catchUpSeconds;
    checks.push(
      seconds !== null && seconds !== undefined && seconds <= 10
        ? { name: "catch-up ≤ 10 s", ok: true }
        : {
            name: "catch-up ≤ 10 s",
            ok: false,
            detail: seconds == null ? "never back to the normal rate" : `${seconds.toFixed(1)} s`,
          },
    );
  }
  checks.push(
    zero("dead letters: the bad records, with their reasons", ["wrongReason", "strayDeadLetters"]),
    zero("every change published once per version", ["missingEvents", "wrongEvents", "eventIdMismatches"]),
    zero("distinct events in version order", ["orderViolations"]),
    zero("every record known to the workload", ["unknownRecords"]),
    ...(options.extra ?? []),
  );
  return checks;
}

const COLUMNS: [string, (r: ScenarioResult) => string][] = [
  ["scenario", (r) => r.name],
  ["sent", (r) => String(r.counts?.sent ?? "—")],
  ["persisted", (r) => String(r.counts?.persisted ?? "—")],
  ["dead-lettered", (r) => String(r.counts?.deadLettered ?? "—")],
  ["lost", (r) => String(r.counts?.lost ?? "—")],
  ["wrong", (r) => String(r.counts?.wrong ?? "—")],
  ["events", (r) => String(r.counts?.events ?? "—")],
  ["duplicates", (r) => String(r.counts?.duplicates ?? "—")],
  ["order", (r) => (r.counts ? `${r.counts.orderViolations}/${r.counts.backwards}` : "—")],
  [
    "catch-up s",
    (r) => (r.catchUpSeconds === undefined ? "—" : r.catchUpSeconds === null ? "never" : r.catchUpSeconds.toFixed(1)),
  ],
  ["result", (r) => (passed(r) ? "pass" : "FAIL")],
];

export function passed(result: ScenarioResult): boolean {
  return result.harnessErrors.length === 0 && result.checks.length > 0 && result.checks.every((check) => check.ok);
}

/** The table (one row per scenario), then each scenario's failed checks with examples. */
export function formatReport(results: readonly ScenarioResult[]): string {
  const rows = [COLUMNS.map(([title]) => title), ...results.map((r) => COLUMNS.map(([, cell]) => cell(r)))];
  const widths = COLUMNS.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  const line = (row: string[]) =>
    row
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join("  ");
  const out = [line(rows[0] ?? []), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line), ""];
  out.push("order: distinct events out of version order / duplicates that go back in version");
  out.push(
    `targets in every scenario: ${TARGET_NAMES.join(", ")} (catch-up where a crashed process or the broker came back)`,
  );
  out.push("");
  for (const result of results) {
    const failed = result.checks.filter((check) => !check.ok);
    if (failed.length === 0 && result.harnessErrors.length === 0) continue;
    out.push(`${result.name}: FAILED`);
    for (const error of result.harnessErrors) out.push(`  harness: ${error}`);
    for (const check of failed) out.push(`  ${check.name}: ${check.detail ?? "failed"}`);
    for (const [count, examples] of Object.entries(result.examples ?? {})) {
      for (const example of examples ?? []) out.push(`    e.g. ${count}: ${example}`);
    }
    for (const note of result.notes) out.push(`  note: ${note}`);
    out.push(`  logs: ${result.logs}`);
  }
  return out.join("\n");
}
