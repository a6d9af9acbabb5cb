import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface SchedulerMetrics {
  registry: Registry;
  /** Records finished, by outcome: persisted or dead_lettered. */
  records: Counter<"outcome">;
  /** Backoff waits after a transient failure, by reason (API code, or dead_letter_publish). */
  retries: Counter<"reason">;
  apiCalls: Histogram<"status">;
  /** Records behind the partition's high watermark after the last commit. */
  lag: Gauge<"topic" | "partition">;
}

/** A registry of its own, so several schedulers in one test process do not collide. */
export function createSchedulerMetrics(): SchedulerMetrics {
  const registry = new Registry();
  return {
    registry,
    records: new Counter({
      name: "scheduler_records_total",
      help: "Input records finished, by outcome (persisted, dead_lettered)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    retries: new Counter({
      name: "scheduler_retries_total",
      help: "Backoff waits after transient failures, by reason",
      labelNames: ["reason"],
      registers: [registry],
    }),
    apiCalls: new Histogram({
      name: "scheduler_api_call_duration_seconds",
      help: "BatchCreateProducts calls, by status (ok or the Connect code)",
      labelNames: ["status"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    lag: new Gauge({
      name: "scheduler_consumer_lag",
      help: "Records between the last committed offset and the high watermark, per partition",
      labelNames: ["topic", "partition"],
      registers: [registry],
    }),
  };
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** GET /metrics (Prometheus text) and GET /healthz (200 while the consumer runs, 503 after it died). */
export async function startMetricsServer(
  metrics: SchedulerMetrics,
  isHealthy: () => boolean,
  port: number,
  host: string,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/metrics") {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else if (req.method === "GET" && req.url === "/healthz") {
      const healthy = isHealthy();
      res
        .writeHead(healthy ? 200 : 503, { "content-type": "application/json" })
        .end(JSON.stringify({ status: healthy ? "ok" : "consumer stopped" }));
    } else {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not_found" }));
    }
  });
  server.keepAliveTimeout = 5_000;
  server.listen(port, host);
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
