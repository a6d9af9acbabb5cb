import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import {
  BatchCreateProductsResultSchema,
  CreateProductResponseSchema,
  ProductService,
} from "#gen/products/v1/product_service_pb.js";
import type { ProductCatalog } from "../products/product-catalog.js";
import { toConnectError } from "./connect-errors.js";

export type ProductServiceImpl = ServiceImpl<typeof ProductService>;

/**
 * ProductService over Connect, gRPC and gRPC-Web. Handlers only translate: the use cases decide.
 * REST calls these same handlers (http/http-transcoder.ts with rest/product-http.ts).
 */
export function createProductServiceImpl(catalog: ProductCatalog): ProductServiceImpl {
  return {
    async createProduct(request, context) {
      // Aborted when the client goes away or the deadline passes (REST: when the request closes).
      const result = await guard(() => catalog.create(request.product, context.signal));
      return create(CreateProductResponseSchema, result);
    },
    async batchCreateProducts(request) {
      const items = await guard(() => catalog.createMany(request.requests.map((r) => r.product)));
      return {
        results: items.map((item) =>
          create(BatchCreateProductsResultSchema, {
            result: item.ok
              ? { case: "response", value: item.result }
              : {
                  case: "error",
                  value: {
                    code: item.error.code,
                    message: item.error.message,
                    fieldViolations: [...item.error.violations],
                  },
                },
          }),
        ),
      };
    },
    async getProduct(request) {
      return { product: await guard(() => catalog.get(request.id)) };
    },
    async listProducts(request) {
      return guard(() => catalog.list(request.pageSize, request.pageToken));
    },
  };
}

export function registerProductService(router: ConnectRouter, impl: ProductServiceImpl): void {
  router.service(ProductService, impl);
}

async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toConnectError(error);
  }
}
