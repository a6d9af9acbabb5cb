import { benchLog } from "../shared/bench-log.js";

/** Progress of `npm run bench:pipeline`, on stderr. */
export const log = benchLog("bench:pipeline");
