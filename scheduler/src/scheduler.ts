import { EventEmitter } from "node:events";
import type { Consumer, Kafka, Producer, RetryOptions } from "kafkajs";
import { createIdempotentProducer, createKafka } from "#platform/kafka.js";
import type { Logger } from "#platform/logger.js";
import { createProductApi, type ProductApi } from "./api-client.js";
import { createBatchHandler } from "./batch-handler.js";
import type { SchedulerConfig } from "./config.js";
import { createDeadLetterPublisher, deadLetterPartitioner } from "./dead-letter.js";
import { createSchedulerMetrics, type MetricsServer, type SchedulerMetrics, startMetricsServer } from "./metrics.js";
import type { SchedulerEventMap } from "./scheduler-events.js";

export interface Scheduler {
  /** Connects, joins the consumer group and starts consuming; resolves once the group is joined. */
  start(): Promise<void>;
  /**
   * Stops consuming: the chunk in flight finishes and is committed, retries end, unfinished records
   * stay uncommitted for the next owner of the partition. Then leaves the group and disconnects.
   */
  stop(): Promise<void>;
  /** committed, dead-lettered, retrying: for observers such as tests and tools. */
  readonly events: EventEmitter<SchedulerEventMap>;
  readonly metrics: SchedulerMetrics;
  /** The next offset this instance committed for the partition, if it committed any. */
  committedOffset(topic: string, partition: number): bigint | undefined;
  /** Port of /metrics and /healthz once started; undefined when disabled. */
  readonly metricsPort: number | undefined;
}

export interface SchedulerOptions {
  /**
   * A client for the dead-letter producer (main's, already used for ensureTopics); one is created
   * otherwise. The consumer always gets its own, with KAFKA_CLIENT_RETRY.
   */
  kafka?: Kafka;
  /**
   * Called when the consumer died and kafkajs will not restart it (a non-retriable error). The
   * process should exit non-zero so its supervisor restarts it.
   */
  onFatal?: (error: Error) => void;
}

/**
 * kafkajs retry of the consumer's client (connections, metadata, the group coordinator). Its
 * defaults (5 retries, waits growing to 30 s) give up during a broker restart and then wait up to
 * 30 s to restart the consumer; a crash also leaves the old member in the group, which the
 * restarted consumer waits out for a session timeout. Waits capped at 2 s, for about a minute in
 * all, ride out a broker restart with the same member and use the broker within ~2 s of its return.
 */
const KAFKA_CLIENT_RETRY: RetryOptions = {
  initialRetryTime: 300,
  maxRetryTime: 2_000,
  retries: 30,
};

/**
 * The consumer's: the same, restarting after any retriable crash (kafkajs's default, explicit). A
 * crash kafkajs does not restart is a CRASH with restart false: the process exits (onFatal).
 */
const CONSUMER_RETRY: RetryOptions = { ...KAFKA_CLIENT_RETRY, restartOnFailure: async () => true };

/**
 * The scheduler's composition: Kafka consumer (input topic) → batch handler → API client, plus the
 * dead-letter producer and metrics. Nothing connects until start(), so tests run real instances.
 */
export function createScheduler(config: SchedulerConfig, logger: Logger, options: SchedulerOptions = {}): Scheduler {
  const events = new EventEmitter<SchedulerEventMap>();
  const metrics = createSchedulerMetrics();
  const committed = new Map<string, bigint>();
  events.on("committed", ({ topic, partition, offset }) => committed.set(`${topic}\u0000${partition}`, offset));
  const stopping = new AbortController();
  let consumer: Consumer | undefined;
  let producer: Producer | undefined;
  let api: ProductApi | undefined;
  let metricsServer: MetricsServer | undefined;
  let healthy = false;
  let stopped: Promise<void> | undefined;

  async function shutdown(): Promise<void> {
    stopping.abort();
    healthy = false;
    await consumer?.disconnect().catch((error: unknown) => logger.warn({ err: error }, "consumer disconnect failed"));
    await producer?.disconnect().catch((error: unknown) => logger.warn({ err: error }, "producer disconnect failed"));
    api?.close();
    await metricsServer?.close();
  }

  return {
    events,
    metrics,
    committedOffset: (topic, partition) => committed.get(`${topic}\u0000${partition}`),
    get metricsPort() {
      return metricsServer?.port;
    },

    async start() {
      const kafka = options.kafka ?? createKafka(config.kafka, logger);
      // Its own client: kafkajs applies a client's retry to every cluster it makes, and the
      // idempotent producer keeps its own retry.
      const consumerKafka = createKafka(config.kafka, logger, KAFKA_CLIENT_RETRY);
      try {
        api = createProductApi(config.api);
        producer = createIdempotentProducer(kafka, { createPartitioner: deadLetterPartitioner });
        consumer = consumerKafka.consumer({
          groupId: config.groupId,
          sessionTimeout: config.sessionTimeoutMs,
          heartbeatInterval: config.heartbeatIntervalMs,
          maxWaitTimeInMs: config.fetchMaxWaitMs,
          minBytes: config.fetchMinBytes,
          allowAutoTopicCreation: false,
          retry: CONSUMER_RETRY,
        });
        const { CRASH, GROUP_JOIN } = consumer.events;
        consumer.on(GROUP_JOIN, ({ payload }) => {
          metrics.lag.reset();
          metrics.unfinished.assigned(payload.memberAssignment);
          logger.info({ groupId: payload.groupId, assignment: payload.memberAssignment }, "joined the consumer group");
        });
        consumer.on(CRASH, ({ payload }) => {
          if (payload.restart) {
            logger.warn({ err: payload.error }, "consumer crashed; kafkajs restarts it from the committed offsets");
            return;
          }
          healthy = false;
          logger.fatal({ err: payload.error }, "consumer crashed and will not restart");
          options.onFatal?.(payload.error);
        });

        await producer.connect();
        await consumer.connect();
        await consumer.subscribe({ topics: [config.kafka.topics.input], fromBeginning: true });
        const deadLetters = createDeadLetterPublisher(producer, {
          topic: config.kafka.topics.errors,
          groupId: config.groupId,
        });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: config.partitionsConcurrently,
          eachBatch: createBatchHandler({
            api,
            deadLetters,
            config,
            logger,
            metrics,
            events,
            stopping: stopping.signal,
          }),
        });
        healthy = true;
        if (config.metricsPort > 0) {
          metricsServer = await startMetricsServer(metrics, () => healthy, {
            port: config.metricsPort,
            host: config.metricsHost,
            stuckAfterMs: config.stuckAfterMs,
          });
        }
        logger.info(
          {
            topic: config.kafka.topics.input,
            groupId: config.groupId,
            api: config.api.url,
            protocol: config.api.protocol,
            metricsPort: metricsServer?.port,
          },
          "scheduler started",
        );
      } catch (error) {
        await shutdown();
        throw error;
      }
    },

    stop() {
      stopped ??= (async () => {
        logger.info("scheduler stopping");
        await shutdown();
        logger.info("scheduler stopped");
      })();
      return stopped;
    },
  };
}
