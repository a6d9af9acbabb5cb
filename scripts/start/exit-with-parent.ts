/**
 * Preloaded (`node --import`) into the services `npm start` runs. Their stdin is a pipe from
 * npm start that it never writes to: its end means npm start is gone (even killed with SIGKILL),
 * and the service then stops as on SIGTERM instead of running on, orphaned.
 */
import { dropOutputWhenReaderIsGone } from "./orphan-output.js";

dropOutputWhenReaderIsGone();
const stopSelf = () => process.kill(process.pid, "SIGTERM");
process.stdin.on("end", stopSelf);
process.stdin.on("error", stopSelf);
process.stdin.resume();
// Watching stdin is no reason to keep the process alive.
(process.stdin as { unref?: () => void }).unref?.();
