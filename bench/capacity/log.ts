import { benchLog } from "../shared/bench-log.js";

/** Progress of `npm run bench:capacity`, on stderr. */
export const log = benchLog("bench:capacity");
