import type { ComparedPhase } from "./options.js";

export type Side = "base" | "head";

/** What one side measured in one phase, summed over its turns. */
export interface SideTotal {
  creates: number;
  seconds: number;
  /** CPU seconds of the API process over the measured windows. */
  apiCpuSeconds: number;
  errors: number;
}

export interface PhaseComparison {
  phase: ComparedPhase;
  base: SideTotal;
  head: SideTotal;
}

export const emptyTotal = (): SideTotal => ({ creates: 0, seconds: 0, apiCpuSeconds: 0, errors: 0 });

export const ratePerS = (t: SideTotal) => (t.seconds > 0 ? t.creates / t.seconds : 0);
export const cpuMsPerCreate = (t: SideTotal) => (t.creates > 0 ? (t.apiCpuSeconds * 1000) / t.creates : Number.NaN);

/** head ÷ base − 1: −0.10 is 10% less. */
export function change(head: number, base: number): number {
  return base > 0 && Number.isFinite(head) ? head / base - 1 : Number.NaN;
}

const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : "na");
const signed = (x: number) => (Number.isNaN(x) ? "na" : `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`);

/** The table for people: each phase, each side, and the change from base to head. */
export function comparisonTable(phases: readonly PhaseComparison[]): string {
  const rows = [["phase", "side", "creates/s", "API ms/create", "errors"]];
  for (const { phase, base, head } of phases) {
    for (const [side, t] of [
      ["base", base],
      ["head", head],
    ] as const) {
      rows.push([phase, side, fixed(ratePerS(t), 0), fixed(cpuMsPerCreate(t), 4), String(t.errors)]);
    }
    rows.push([
      phase,
      "change",
      signed(change(ratePerS(head), ratePerS(base))),
      signed(change(cpuMsPerCreate(head), cpuMsPerCreate(base))),
      "",
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) => r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  "))
    .join("\n");
}

/** The last stdout line, for scripts: per phase, both sides' API CPU per create and the change. */
export function compareSummaryLine(base: string, phases: readonly PhaseComparison[]): string {
  const fields = [`base=${base}`];
  for (const { phase, base: b, head: h } of phases) {
    fields.push(
      `${phase}_cpu_ms_base=${fixed(cpuMsPerCreate(b), 4)}`,
      `${phase}_cpu_ms_head=${fixed(cpuMsPerCreate(h), 4)}`,
      `${phase}_cpu_change=${fixed(change(cpuMsPerCreate(h), cpuMsPerCreate(b)), 3)}`,
      `${phase}_rate_change=${fixed(change(ratePerS(h), ratePerS(b)), 3)}`,
    );
  }
  return `bench:compare ${fields.join(" ")}`;
}
