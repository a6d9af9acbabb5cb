import { collectDefaultMetrics, Histogram, Registry } from "prom-client";

export interface ApiMetrics {
  registry: Registry;
  /**
   * Every request, REST and RPC: route is the REST route template or the RPC procedure, status the
   * HTTP status (REST) or the Connect code name (RPC, "ok" on success).
   */
  requests: Histogram<"protocol" | "route" | "status">;
}

export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Histogram({
    name: "api_request_duration_seconds",
    help: "Requests handled, by protocol (rest, connect, grpc, grpc-web), route or procedure, and status.",
    labelNames: ["protocol", "route", "status"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return { registry, requests };
}
