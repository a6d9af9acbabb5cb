import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { REPOSITORY_ROOT } from "./environment.js";

/** Where one bench's own runs go (gitignored); `npm run bench` combines them into bench/results/<time>.json. */
export const RUNS_DIR = path.join(REPOSITORY_ROOT, "bench", "results", "runs");

/**
 * Writes a run's full results to `file` (--results-file), or to bench/results/runs/<bench>-<time>.json,
 * for comparing runs later; returns the path relative to the repository root, for the report.
 */
export async function writeResultsFile(
  bench: string,
  finishedAt: Date,
  results: object,
  file = path.join(RUNS_DIR, `${bench}-${finishedAt.toISOString().replace(/[:.]/g, "-")}.json`),
): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  return path.relative(REPOSITORY_ROOT, path.resolve(file));
}
