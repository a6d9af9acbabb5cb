/**
 * `npm run bench:report -- bench/results/<stamp>.json`: renders that run's report again (after a
 * change to the report's code), into bench/reports/ (or reports/quick/ for a quick run).
 */
import { readFile } from "node:fs/promises";
import { failureText, UsageError } from "./shared/usage-error.js";
import { outputDirs, writeReport } from "./suite/report-files.js";
import type { SuiteResults } from "./suite/results.js";

async function main(): Promise<void> {
  const [file, ...rest] = process.argv.slice(2);
  if (!file || rest.length > 0) throw new UsageError("usage: npm run bench:report -- bench/results/<stamp>.json");
  const results = JSON.parse(await readFile(file, "utf8")) as SuiteResults;
  process.stdout.write(`report: ${await writeReport(results, outputDirs(results.quick).reports)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:report: ${failureText(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
