import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "#gen/health/v1/health_pb.js";
import { ProductService } from "#gen/products/v1/product_service_pb.js";
import { sleep } from "#platform/backoff.js";

const WATCH_INTERVAL_MS = 5000;

/**
 * grpc.health.v1.Health: the server ("") and ProductService are SERVING while the database
 * answers, NOT_SERVING otherwise, the same rule as GET /readyz.
 */
export function registerHealthService(router: ConnectRouter, isReady: () => Promise<boolean>): void {
  const known = new Set(["", ProductService.typeName]);
  const status = async (service: string) => {
    if (!known.has(service)) throw new ConnectError(`unknown service ${JSON.stringify(service)}`, Code.NotFound);
    return (await isReady()) ? Status.SERVING : Status.NOT_SERVING;
  };
  router.service(Health, {
    async check(request) {
      return { status: await status(request.service) };
    },
    async list() {
      const current = await status("");
      return { statuses: Object.fromEntries([...known].map((service) => [service, { status: current }])) };
    },
    async *watch(request, context: HandlerContext) {
      let last: Status | undefined;
      while (!context.signal.aborted) {
        const current = known.has(request.service) ? await status(request.service) : Status.SERVICE_UNKNOWN;
        if (current !== last) yield { status: current };
        last = current;
        await sleep(WATCH_INTERVAL_MS, context.signal);
      }
    },
  });
}
