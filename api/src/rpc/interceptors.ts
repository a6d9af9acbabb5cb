import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { ProductService } from "#gen/products/v1/product_service_pb.js";
import type { Logger } from "#platform/logger.js";
import type { ApiMetrics } from "../metrics.js";

/**
 * ProductService methods that may change data need the bearer token; its NO_SIDE_EFFECTS methods,
 * health checks and reflection stay open.
 */
export function createAuthInterceptor(isAuthorized: (authorization: string | null) => boolean): Interceptor {
  return (next) => async (req) => {
    const isWrite =
      req.service.typeName === ProductService.typeName &&
      req.method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
    if (isWrite && !isAuthorized(req.header.get("authorization"))) {
      throw new ConnectError("missing or invalid bearer token", Code.Unauthenticated);
    }
    return next(req);
  };
}

/** Records every RPC in the request histogram and logs failures with their cause (never sent to clients). */
export function createObservabilityInterceptor(metrics: ApiMetrics, logger: Logger): Interceptor {
  return (next) => async (req) => {
    const contentType = req.header.get("content-type") ?? "";
    const protocol = contentType.startsWith("application/grpc-web")
      ? "grpc-web"
      : contentType.startsWith("application/grpc")
        ? "grpc"
        : "connect";
    const route = `/${req.service.typeName}/${req.method.name}`;
    const stop = metrics.requests.startTimer({ protocol, route });
    try {
      const response = await next(req);
      stop({ status: "ok" });
      return response;
    } catch (error) {
      const connectError = ConnectError.from(error);
      stop({ status: codeToString(connectError.code) });
      const level = connectError.code === Code.Internal || connectError.code === Code.Unknown ? "error" : "debug";
      logger[level](
        { procedure: route, protocol, code: codeToString(connectError.code), err: connectError.cause ?? connectError },
        "rpc failed",
      );
      throw error;
    }
  };
}
