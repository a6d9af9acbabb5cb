import {
  type ConnectRouter,
  createMethodImplSpec,
  createServiceImplSpec,
  type MethodImplSpec,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import {
  createUniversalMethodHandler,
  createUniversalServiceHandlers,
  type ProtocolHandlerFactory,
  type UniversalHandlerOptions,
} from "@connectrpc/connect/protocol";
import { createHandlerFactory as createConnectHandlerFactory } from "@connectrpc/connect/protocol-connect";
import { createHandlerFactory as createGrpcWebHandlerFactory } from "@connectrpc/connect/protocol-grpc-web";
import { createGrpcHandlerFactory } from "./grpc-unary-protocol.js";

/**
 * A ConnectRouter like connect-es's `createConnectRouter`, serving gRPC, gRPC-Web and Connect in
 * the same order of preference, but with the gRPC protocol of grpc-unary-protocol.ts. The
 * adapters for HTTP/1.1 and HTTP/2 serve its `handlers`.
 */
export function createRpcRouter(options: Partial<UniversalHandlerOptions>): ConnectRouter {
  const protocolsFor = (overrides: Partial<UniversalHandlerOptions> | undefined): ProtocolHandlerFactory[] => {
    const merged = { ...options, ...overrides };
    return [createGrpcHandlerFactory(merged), createGrpcWebHandlerFactory(merged), createConnectHandlerFactory(merged)];
  };
  const protocols = protocolsFor(undefined);
  const router: ConnectRouter = {
    handlers: [],
    service(service, implementation, overrides) {
      const spec = createServiceImplSpec(service, implementation) as ServiceImplSpec;
      router.handlers.push(...createUniversalServiceHandlers(spec, overrides ? protocolsFor(overrides) : protocols));
      return router;
    },
    rpc(method, implementation, overrides) {
      const spec = createMethodImplSpec(method, implementation) as MethodImplSpec;
      router.handlers.push(createUniversalMethodHandler(spec, overrides ? protocolsFor(overrides) : protocols));
      return router;
    },
  };
  return router;
}
