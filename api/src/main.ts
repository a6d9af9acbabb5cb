import { createLogger } from "../../lib/logger.js";
import { runMain } from "../../lib/run-main.js";
import { createApi } from "./api.js";
import { loadApiConfig } from "./config.js";

runMain("api", async () => {
  const config = loadApiConfig();
  const logger = createLogger("api", config.logLevel);
  const api = await createApi(config, logger).start();
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutdown requested");
    api.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
});
