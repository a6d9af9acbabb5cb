import { type Logger, pino } from "pino";
import { createApi } from "../../api/src/api.js";
import { loadApiConfig } from "../../api/src/config.js";
import { loadSchedulerConfig } from "../../scheduler/src/config.js";
import { createScheduler } from "../../scheduler/src/scheduler.js";
import { freePorts } from "../../test/support/free-port.js";
import { BENCH_PORT_RANGE } from "../shared/environment.js";
import { type ServiceProcess, spawnService, startHttpService } from "../shared/service-process.js";
import type { ServicePid } from "./cpu-window.js";
import { groupSettled, type MemberAssignment } from "./group-settled.js";
import { untilMetric } from "./metrics-text.js";
import type { PipelineMode, RelayMode } from "./options.js";
import type { Settings } from "./settings.js";

/** The API (with its outbox relay) and the scheduler, wherever they run. */
export interface Pipeline {
  mode: PipelineMode;
  /** Epoch ms at which the first scheduler joined its consumer group, from its log. */
  joined: Promise<number>;
  /**
   * Epoch ms at which every scheduler had joined and their latest assignments split the partitions
   * between them (each partition once): the group has settled.
   */
  settled: Promise<number>;
  /** Rejects if a service dies before stop(). */
  failed: Promise<never>;
  /** The service processes whose CPU is the pipeline's (this one's pid, in-process). */
  services: ServicePid[];
  /** The API process each scheduler calls, by name, in scheduler order. */
  schedulerApis: string[];
  warnings: () => number;
  /** The services' Prometheus metrics, as text, all processes concatenated. */
  metrics(): Promise<string>;
  /** Each API process's metrics by name ("api#1", …): which one holds the relay. */
  apiMetrics(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/** How many of each service run (child mode): the capacity bench varies them, the pipeline bench runs one each. */
export interface Topology {
  apiReplicas: number;
  schedulers: number;
}

export interface PipelineStartOptions {
  pipeline: PipelineMode;
  relay: RelayMode;
  nodeArgs: readonly string[];
}

type LogSink = ReturnType<typeof createLogSink>;

/**
 * Log lines of the services, parsed: a scheduler's "joined the consumer group" (with its
 * assignment) starts the clock; warnings and errors are echoed to stderr and counted (a healthy
 * run has none).
 */
function createLogSink(service: string, onJoined: (epochMs: number, assignment: MemberAssignment) => void) {
  let warnings = 0;
  return {
    warnings: () => warnings,
    line(text: string) {
      let entry: { level?: string; msg?: string; time?: string; assignment?: MemberAssignment } | undefined;
      try {
        entry = JSON.parse(text) as typeof entry;
      } catch {
        process.stderr.write(`[${service}] ${text}\n`);
        return;
      }
      if (entry?.msg === "joined the consumer group") {
        onJoined(Date.parse(entry.time ?? "") || Date.now(), entry.assignment ?? {});
      }
      if (entry?.level === "warn" || entry?.level === "error" || entry?.level === "fatal") {
        warnings++;
        if (warnings <= 20) process.stderr.write(`[${service}] ${text.slice(0, 2000)}\n`);
      }
    },
  };
}

/** Which API replica scheduler `index` calls: round-robin, starting with the replicas that do not hold the relay. */
export function apiReplicaFor(index: number, replicas: number, firstHoldsRelay: boolean): number {
  return (firstHoldsRelay ? index + 1 : index) % replicas;
}

/**
 * Starts the APIs and the schedulers on the bench's topics and database, as `options.pipeline`
 * says: child processes by default (as deployed), or one of each in this process. Their other
 * settings come from this process's environment.
 *
 * With several API replicas (inline relay), the first one is started alone until its relay holds
 * the lease, so that the relay's place is known; the schedulers then call the others first. The
 * scheduler's API_URL is one URL and its gRPC calls share one HTTP/2 connection, so a TCP balancer
 * would pin each scheduler to one replica anyway: the bench gives each its replica directly.
 */
export async function startPipeline(
  options: PipelineStartOptions,
  settings: Settings,
  topics: { input: string; persisted: string; errors: string },
  databaseUrl: string,
  tag: string,
  topology: Topology = { apiReplicas: 1, schedulers: 1 },
): Promise<Pipeline> {
  let onJoined: (epochMs: number) => void = () => {};
  const joined = new Promise<number>((resolve) => {
    onJoined = resolve;
  });
  let onSettled: (epochMs: number) => void = () => {};
  const settled = new Promise<number>((resolve) => {
    onSettled = resolve;
  });
  const assignments: (MemberAssignment | undefined)[] = Array.from({ length: topology.schedulers }, () => undefined);
  const schedulerLog = (index: number) =>
    createLogSink(topology.schedulers > 1 ? `scheduler#${index + 1}` : "scheduler", (ms, assignment) => {
      onJoined(ms);
      assignments[index] = assignment;
      if (groupSettled(assignments, topics.input, settings.partitions)) onSettled(Date.now());
    });
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
    if (topology.apiReplicas !== 1 || topology.schedulers !== 1)
      throw new Error("inproc runs one API and one scheduler");
    const apiLog = createLogSink("api", () => {});
    const oneSchedulerLog = schedulerLog(0);
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
      sinkLogger("scheduler", "info", oneSchedulerLog),
    );
    try {
      await scheduler.start();
    } catch (error) {
      await api.stop();
      throw error;
    }
    const metrics = async () =>
      `${await api.metrics.registry.metrics()}\n${await scheduler.metrics.registry.metrics()}`;
    return {
      mode: "inproc",
      joined,
      settled,
      failed: new Promise<never>(() => {}),
      services: [
        { name: "api", role: "api", pid: process.pid },
        { name: "scheduler", role: "scheduler", pid: process.pid },
      ],
      schedulerApis: ["api"],
      warnings: () => apiLog.warnings() + oneSchedulerLog.warnings(),
      metrics,
      apiMetrics: async () => ({ api: await api.metrics.registry.metrics() }),
      async stop() {
        await scheduler.stop();
        await api.stop();
      },
    };
  }

  const separate = options.relay === "separate";
  const ports = await freePorts(topology.apiReplicas + topology.schedulers + (separate ? 1 : 0), [], BENCH_PORT_RANGE);
  const nextPort = () => ports.shift() as number;
  const sinks: LogSink[] = [];
  const apis: (ServiceProcess & { url: string; name: string; role: "api" | "relay" })[] = [];
  const schedulers: (ServiceProcess & { name: string; metricsUrl: string; api: string })[] = [];
  const stopAll = async () => {
    for (const scheduler of schedulers.splice(0)) await scheduler.stop();
    for (const api of apis.splice(0)) await api.stop();
  };
  const startApi = async (name: string, role: "api" | "relay", relay: boolean) => {
    const port = nextPort();
    const url = `http://127.0.0.1:${port}`;
    const sink = createLogSink(name, () => {});
    sinks.push(sink);
    const service = await startHttpService("api/src/main.ts", url, {
      env: { ...apiEnv, PORT: String(port), OUTBOX_RELAY: String(relay) },
      // The flags `npm run api` starts the API with, then any from --node-args.
      nodeArgs: ["--max-semi-space-size=32", ...options.nodeArgs],
      onLine: sink.line,
    });
    apis.push({ ...service, url, name, role });
    return url;
  };
  const apiName = (index: number) => (topology.apiReplicas > 1 ? `api#${index + 1}` : "api");
  try {
    for (let index = 0; index < topology.apiReplicas; index++) {
      const url = await startApi(apiName(index), "api", !separate);
      if (index === 0 && !separate && topology.apiReplicas > 1) {
        await untilMetric(`${url}/metrics`, "api_outbox_relay_active", (value) => value === 1);
      }
    }
    if (separate) await startApi("relay", "relay", true);
    for (let index = 0; index < topology.schedulers; index++) {
      const port = nextPort();
      const name = topology.schedulers > 1 ? `scheduler#${index + 1}` : "scheduler";
      const sink = schedulerLog(index);
      sinks.push(sink);
      const api = apis[apiReplicaFor(index, topology.apiReplicas, !separate)] as (typeof apis)[number];
      const service = spawnService("scheduler/src/main.ts", {
        env: { ...schedulerEnv, API_URL: api.url, METRICS_PORT: String(port), METRICS_HOST: "127.0.0.1" },
        nodeArgs: options.nodeArgs,
        onLine: sink.line,
      });
      schedulers.push({ ...service, name, metricsUrl: `http://127.0.0.1:${port}/metrics`, api: api.name });
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  const text = (url: string) => fetch(url).then((res) => res.text());
  const all = [...apis, ...schedulers];
  return {
    mode: "child",
    joined,
    settled,
    failed: Promise.race(all.map((service) => service.failed)),
    services: [
      ...apis.map(({ name, role, pid }) => ({ name, role, pid })),
      ...schedulers.map(({ name, pid }) => ({ name, role: "scheduler" as const, pid })),
    ],
    schedulerApis: schedulers.map((scheduler) => scheduler.api),
    warnings: () => sinks.reduce((sum, sink) => sum + sink.warnings(), 0),
    metrics: async () =>
      (
        await Promise.all([
          ...apis.map((api) => text(`${api.url}/metrics`)),
          ...schedulers.map((s) => text(s.metricsUrl).catch(() => "")),
        ])
      ).join("\n"),
    apiMetrics: async () =>
      Object.fromEntries(await Promise.all(apis.map(async (api) => [api.name, await text(`${api.url}/metrics`)]))),
    stop: stopAll,
  };
}
