import { type Logger, pino } from "pino";
import { createApi } from "../../api/src/api.js";
import { loadApiConfig } from "../../api/src/config.js";
import { loadSchedulerConfig } from "../../scheduler/src/config.js";
import { createScheduler } from "../../scheduler/src/scheduler.js";
import { freePorts } from "../../test/support/free-port.js";
import { type ServiceProcess, spawnService, startHttpService } from "../shared/service-process.js";
import type { PipelineBenchOptions, PipelineMode } from "./options.js";
import type { Settings } from "./settings.js";

/** The API (with its outbox relay) and the scheduler, wherever they run. */
export interface Pipeline {
  mode: PipelineMode;
  /** Epoch ms at which the scheduler joined its consumer group, from its log. */
  joined: Promise<number>;
  /** Rejects if a service dies before stop(). */
  failed: Promise<never>;
  /** Processes whose CPU is the pipeline's (this one, in-process). */
  pids: { api: number; scheduler: number; relay?: number };
  warnings: () => number;
  /** The services' Prometheus metrics, as text. */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

type LogSink = ReturnType<typeof createLogSink>;

/**
 * Log lines of the services, parsed: the scheduler's "joined the consumer group" starts the clock;
 * warnings and errors are echoed to stderr and counted (a healthy run has none).
 */
function createLogSink(service: string, onJoined: (epochMs: number) => void) {
  let warnings = 0;
  return {
    warnings: () => warnings,
    line(text: string) {
      let entry: { level?: string; msg?: string; time?: string } | undefined;
      try {
        entry = JSON.parse(text) as typeof entry;
      } catch {
        process.stderr.write(`[${service}] ${text}\n`);
        return;
      }
      if (entry?.msg === "joined the consumer group") onJoined(Date.parse(entry.time ?? "") || Date.now());
      if (entry?.level === "warn" || entry?.level === "error" || entry?.level === "fatal") {
        warnings++;
        if (warnings <= 20) process.stderr.write(`[${service}] ${text.slice(0, 2000)}\n`);
      }
    },
  };
}

/**
 * Starts the API and the scheduler on the bench's topics and database, as --pipeline says: child
 * processes by default (as deployed), or both in this process. Their other settings come from
 * this process's environment.
 */
export async function startPipeline(
  options: PipelineBenchOptions,
  settings: Settings,
  topics: { input: string; persisted: string; errors: string },
  databaseUrl: string,
  tag: string,
): Promise<Pipeline> {
  let onJoined: (epochMs: number) => void = () => {};
  const joined = new Promise<number>((resolve) => {
    onJoined = resolve;
  });
  const apiLog = createLogSink("api", () => {});
  const schedulerLog = createLogSink("scheduler", (ms) => onJoined(ms));
  const shared = {
    ...process.env,
    KAFKA_BROKER_URL: settings.kafka.brokers.join(","),
    TOPIC_NAME: topics.input,
    TRANSFORMED_TOPIC: topics.persisted,
    ERROR_TOPIC_NAME: topics.errors,
    KAFKA_PARTITIONS: String(settings.partitions),
  };
  const apiEnv = {
    ...shared,
    HOST: "127.0.0.1",
    DATABASE_URL: databaseUrl,
    OUTBOX_RELAY: "true",
    LOG_LEVEL: "warn",
    SHUTDOWN_TIMEOUT_MS: "5000",
  };
  const schedulerEnv = {
    ...shared,
    KAFKA_GROUP_ID: `bench-scheduler-${tag}`,
    METRICS_PORT: "0",
    // info: the group join is logged at info; per-record logs are debug.
    LOG_LEVEL: "info",
    SHUTDOWN_TIMEOUT_MS: "10000",
  };

  if (options.pipeline === "inproc") {
    const sinkLogger = (service: string, level: string, sink: LogSink): Logger =>
      pino(
        {
          level,
          base: { service },
          timestamp: pino.stdTimeFunctions.isoTime,
          formatters: { level: (label) => ({ level: label }) },
        },
        { write: (text: string) => sink.line(text.trimEnd()) },
      );
    const api = await createApi(loadApiConfig({ ...apiEnv, PORT: "0" }), sinkLogger("api", "warn", apiLog)).start();
    const scheduler = createScheduler(
      loadSchedulerConfig({ ...schedulerEnv, API_URL: api.url }),
      sinkLogger("scheduler", "info", schedulerLog),
    );
    try {
      await scheduler.start();
    } catch (error) {
      await api.stop();
      throw error;
    }
    return {
      mode: "inproc",
      joined,
      failed: new Promise<never>(() => {}),
      pids: { api: process.pid, scheduler: process.pid },
      warnings: () => apiLog.warnings() + schedulerLog.warnings(),
      metrics: async () => `${await api.metrics.registry.metrics()}\n${await scheduler.metrics.registry.metrics()}`,
      async stop() {
        await scheduler.stop();
        await api.stop();
      },
    };
  }

  const separate = options.relay === "separate";
  const [apiPort, metricsPort, relayPort] = await freePorts(separate ? 3 : 2);
  const startApi = async (port: number | undefined, sink: LogSink, relay: boolean) => {
    const url = `http://127.0.0.1:${port}`;
    const service = await startHttpService("api/src/main.ts", url, {
      env: { ...apiEnv, PORT: String(port), OUTBOX_RELAY: String(relay) },
      // The flags `npm run api` starts the API with, then any from --node-args.
      nodeArgs: ["--max-semi-space-size=32", ...options.nodeArgs],
      onLine: sink.line,
    });
    return { ...service, url };
  };
  const api = await startApi(apiPort, apiLog, !separate);
  let relay: (ServiceProcess & { url: string }) | undefined;
  try {
    if (separate) {
      relay = await startApi(
        relayPort,
        createLogSink("relay", () => {}),
        true,
      );
    }
  } catch (error) {
    await api.stop();
    throw error;
  }
  const scheduler = spawnService("scheduler/src/main.ts", {
    env: { ...schedulerEnv, API_URL: api.url, METRICS_PORT: String(metricsPort), METRICS_HOST: "127.0.0.1" },
    nodeArgs: options.nodeArgs,
    onLine: schedulerLog.line,
  });
  const text = (url: string) => fetch(url).then((res) => res.text());
  return {
    mode: "child",
    joined,
    failed: Promise.race([api.failed, scheduler.failed, ...(relay ? [relay.failed] : [])]),
    pids: { api: api.pid, scheduler: scheduler.pid, ...(relay ? { relay: relay.pid } : {}) },
    warnings: () => apiLog.warnings() + schedulerLog.warnings(),
    metrics: async () =>
      [
        await text(`${api.url}/metrics`),
        await text(`http://127.0.0.1:${metricsPort}/metrics`),
        relay ? await text(`${relay.url}/metrics`) : "",
      ].join("\n"),
    async stop() {
      await scheduler.stop();
      await api.stop();
      await relay?.stop();
    },
  };
}
