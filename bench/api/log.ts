import { benchLog } from "../shared/bench-log.js";

/** Progress of `npm run bench:api`, on stderr. */
export const log = benchLog("bench:api");
