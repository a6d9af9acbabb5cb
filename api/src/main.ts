import { createLogger } from "#platform/logger.js";
import { runMain, stopOnSignals } from "#platform/run-main.js";
import { createApi } from "./api.js";
import { loadApiConfig } from "./config.js";

runMain("api", async () => {
  const config = loadApiConfig();
  const logger = createLogger("api", config.logLevel, config.logFormat);
  const api = await createApi(config, logger).start();
  // The server's own grace period, then the relay's and the pool's.
  stopOnSignals(() => api.stop(), logger, config.shutdownTimeoutMs + 10_000);
});
