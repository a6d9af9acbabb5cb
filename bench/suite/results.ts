import type { ApiResultsFile } from "../api/report.js";
import type { CapacityResultsFile } from "../capacity/report.js";
import type { PipelineResultsFile } from "../pipeline/report.js";
import type { GitInfo, MachineInfo, Versions } from "./machine.js";

/** bench/results/<stamp>.json: one `npm run bench`, every bench's full results and where they ran. */
export interface SuiteResults {
  stamp: string;
  startedAt: string;
  finishedAt: string;
  /** `--quick`: a smoke run that proves the benches work, not a measurement. */
  quick: boolean;
  /** The arguments each bench ran with. */
  commands: Record<string, string[]>;
  machine: MachineInfo;
  versions: Versions;
  git: GitInfo;
  pipeline?: PipelineResultsFile;
  api?: ApiResultsFile;
  capacity?: CapacityResultsFile;
  /** Benches that exited non-zero, with their exit codes. */
  failures: { bench: string; exitCode: number | null }[];
  /** Each bench's `bench:… key=value` lines, as printed. */
  summaryLines: string[];
}
