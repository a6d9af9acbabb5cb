import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { REPOSITORY_ROOT } from "../shared/environment.js";
import { renderReport } from "./report.js";
import type { SuiteResults } from "./results.js";

export const RESULTS_DIR = path.join(REPOSITORY_ROOT, "bench", "results");
export const REPORTS_DIR = path.join(REPOSITORY_ROOT, "bench", "reports");

/** bench/{results,reports}/ for a measurement; their quick/ folders (gitignored) for a smoke run. */
export function outputDirs(quick: boolean): { results: string; reports: string } {
  return quick
    ? { results: path.join(RESULTS_DIR, "quick"), reports: path.join(REPORTS_DIR, "quick") }
    : { results: RESULTS_DIR, reports: REPORTS_DIR };
}

/** 2026-12-02T01:05:33.123Z → 2026-12-02T010533Z: sortable, and a valid file name everywhere. */
export function stampOf(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace(/:/g, "")}Z`;
}

/**
 * Writes <stamp>.md and its charts in <stamp>/ beside it; for a measurement, also rewrites the
 * index (bench/reports/README.md, newest first), which the project README links. Returns the
 * report's path relative to the repository root.
 */
export async function writeReport(results: SuiteResults, reportsDir: string): Promise<string> {
  const { markdown, charts } = renderReport(results, results.stamp);
  await mkdir(path.join(reportsDir, results.stamp), { recursive: true });
  for (const { file, svg } of charts) await writeFile(path.join(reportsDir, results.stamp, file), svg);
  const file = path.join(reportsDir, `${results.stamp}.md`);
  await writeFile(file, markdown);
  if (!results.quick) await writeIndex(reportsDir);
  return path.relative(REPOSITORY_ROOT, file);
}

export function indexMarkdown(reports: string[]): string {
  const newestFirst = [...reports].sort().reverse();
  const [latest] = newestFirst;
  return [
    "# Benchmark reports",
    "",
    "Written by `npm run bench` (see [bench/README.md](../README.md)): one Markdown file per run with its",
    "charts in the folder of the same name, and the run's full results in `bench/results/<same name>.json`.",
    "",
    latest ? `Latest: [${latest}](${latest}.md)` : "No report yet: the first one is to be measured on a quiet machine.",
    "",
    ...newestFirst.map((name) => `- [${name}](${name}.md)`),
    "",
  ].join("\n");
}

async function writeIndex(reportsDir: string): Promise<void> {
  const names = (await readdir(reportsDir))
    .filter((name) => name.endsWith(".md") && name !== "README.md")
    .map((name) => name.slice(0, -3));
  await writeFile(path.join(reportsDir, "README.md"), indexMarkdown(names));
}
