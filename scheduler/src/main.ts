import { createKafka, ensureTopics } from "#platform/kafka.js";
import { createLogger } from "#platform/logger.js";
import { runMain, stopOnSignals } from "#platform/run-main.js";
import { loadSchedulerConfig } from "./config.js";
import { createScheduler } from "./scheduler.js";

runMain("scheduler", async () => {
  const config = loadSchedulerConfig();
  const logger = createLogger("scheduler", config.logLevel, config.logFormat);
  const kafka = createKafka(config.kafka, logger);
  const { input, persisted, errors } = config.kafka.topics;
  const created = await ensureTopics(kafka, [input, persisted, errors], config.kafka.partitions, {
    replicationFactor: config.kafka.replicationFactor,
  });
  if (created.length > 0) logger.info({ topics: created, partitions: config.kafka.partitions }, "created topics");

  const scheduler = createScheduler(config, logger, {
    kafka,
    onFatal: () => process.exit(1),
  });
  await scheduler.start();

  // A chunk in flight gets the API deadline to finish; past the timeout, exit anyway: the records
  // not committed are read again by whoever gets the partition.
  stopOnSignals(() => scheduler.stop(), logger, config.shutdownTimeoutMs);
});
