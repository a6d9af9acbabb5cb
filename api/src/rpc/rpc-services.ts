import type { ConnectRouter } from "@connectrpc/connect";
import { file_health_v1_health } from "#gen/health/v1/health_pb.js";
import { file_products_v1_product_service } from "#gen/products/v1/product_service_pb.js";
import { registerHealthService } from "./health.js";
import { type ProductServiceImpl, registerProductService } from "./product-service-impl.js";
import { registerReflectionServices } from "./reflection.js";

export interface RpcServiceDependencies {
  products: ProductServiceImpl;
  isReady: () => Promise<boolean>;
}

/** Every RPC service, defined once and served over Connect, gRPC and gRPC-Web on HTTP/1.1 and HTTP/2. */
export function createRpcServices(deps: RpcServiceDependencies) {
  return (router: ConnectRouter) => {
    registerProductService(router, deps.products);
    registerHealthService(router, deps.isReady);
    registerReflectionServices(router, [file_products_v1_product_service, file_health_v1_health]);
  };
}
