import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { REPOSITORY_ROOT } from "./environment.js";

/**
 * Writes a run's full results to bench/results/<bench>-<time>.json (gitignored), for comparing
 * runs later; returns the path relative to the repository root, for the report.
 */
export async function writeResultsFile(bench: string, finishedAt: Date, results: object): Promise<string> {
  const file = path.join(
    REPOSITORY_ROOT,
    "bench",
    "results",
    `${bench}-${finishedAt.toISOString().replace(/[:.]/g, "-")}.json`,
  );
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  return path.relative(REPOSITORY_ROOT, file);
}
