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
  /** Records behind the partition's high watermark, when a batch arrives and after each commit. */
  lag: Gauge<"topic" | "partition">;
  /** Records handed to the processor and not finished yet, per partition: the two gauges and /healthz. */
  unfinished: UnfinishedRecords;
}

/** One partition's unfinished records, as /healthz and the gauges report them. */
export interface PartitionProgress {
  topic: string;
  partition: number;
  /** Records fetched and not yet persisted or dead-lettered. */
  unfinishedRecords: number;
  /** Seconds since the oldest of them was handed to the processor; 0 when there is none. */
  oldestUnfinishedAgeSeconds: number;
}

/**
 * What each partition's batch in progress still holds, and since when. A partition that waits for
 * the API (or the broker) shows its age growing at every scrape, long before any commit; offsets
 * and the lag move only when records finish.
 */
export class UnfinishedRecords {
  private readonly partitions = new Map<string, { topic: string; partition: number; count: number; since: number }>();

  constructor(private readonly now: () => number) {}

  /** A batch of count records was handed to the processor now. */
  started(topic: string, partition: number, count: number): void {
    this.partitions.set(key(topic, partition), { topic, partition, count, since: this.now() });
  }

  /** Of the batch in progress, count records are still unfinished. */
  left(topic: string, partition: number, count: number): void {
    const entry = this.partitions.get(key(topic, partition));
    if (entry) entry.count = count;
  }

  /** The batch is over: finished, or the partition is no longer processed here. */
  ended(topic: string, partition: number): void {
    this.left(topic, partition, 0);
  }

  /**
   * The group gave this member these partitions: the others are dropped, new ones read 0 until a
   * batch arrives, and one kept through the rebalance keeps its batch in progress.
   */
  assigned(assignment: Readonly<Record<string, readonly number[]>>): void {
    const previous = new Map(this.partitions);
    this.partitions.clear();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const id = key(topic, partition);
        this.partitions.set(id, previous.get(id) ?? { topic, partition, count: 0, since: 0 });
      }
    }
  }

  snapshot(): PartitionProgress[] {
    const now = this.now();
    return [...this.partitions.values()].map(({ topic, partition, count, since }) => ({
      topic,
      partition,
      unfinishedRecords: count,
      oldestUnfinishedAgeSeconds: count > 0 ? Math.max(0, now - since) / 1000 : 0,
    }));
  }
}

function key(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/**
 * A registry of its own, so several schedulers in one test process do not collide. `now` is the
 * clock of the unfinished records' ages.
 */
export function createSchedulerMetrics(now: () => number = Date.now): SchedulerMetrics {
  const registry = new Registry();
  const unfinished = new UnfinishedRecords(now);
  const labelNames = ["topic", "partition"] as const;
  /** A gauge read from the unfinished records at each scrape, so it moves while nothing commits. */
  const progressGauge = (name: string, help: string, value: (progress: PartitionProgress) => number) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const progress of unfinished.snapshot()) {
          this.set({ topic: progress.topic, partition: String(progress.partition) }, value(progress));
        }
      },
    });
  progressGauge(
    "scheduler_unfinished_records",
    "Records fetched and not yet persisted or dead-lettered, per partition",
    (progress) => progress.unfinishedRecords,
  );
  progressGauge(
    "scheduler_oldest_unfinished_record_age_seconds",
    "Seconds since the oldest record fetched and not yet persisted or dead-lettered was handed over, per partition; 0 when none",
    (progress) => progress.oldestUnfinishedAgeSeconds,
  );
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
      help: "Records between the committed offset and the high watermark, per partition (when a batch arrives and after each commit)",
      labelNames,
      registers: [registry],
    }),
    unfinished,
  };
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * GET /metrics (Prometheus text) and GET /healthz: 200 while the consumer runs, 503 after it died.
 * /healthz also reports each partition's unfinished records and `stuck` when one has waited longer
 * than stuckAfterMs, without failing: it is a liveness probe, and a scheduler that waits for a down
 * API is doing its job; a restart would change nothing. Alert on the age gauge instead.
 */
export async function startMetricsServer(
  metrics: SchedulerMetrics,
  isHealthy: () => boolean,
  options: { port: number; host: string; stuckAfterMs: number },
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/metrics") {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else if (req.method === "GET" && req.url === "/healthz") {
      const healthy = isHealthy();
      const partitions = metrics.unfinished.snapshot();
      const stuck = partitions.some((p) => p.oldestUnfinishedAgeSeconds * 1000 > options.stuckAfterMs);
      res
        .writeHead(healthy ? 200 : 503, { "content-type": "application/json" })
        .end(JSON.stringify({ status: healthy ? "ok" : "consumer stopped", stuck, partitions }));
    } else {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not_found" }));
    }
  });
  server.keepAliveTimeout = 5_000;
  server.listen(options.port, options.host);
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
