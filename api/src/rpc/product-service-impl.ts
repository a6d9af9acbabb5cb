import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import {
  type BatchCreateProductsResult,
  BatchCreateProductsResultSchema,
  CreateProductResponseSchema,
  ProductService,
  ResultView,
} from "#gen/products/v1/product_service_pb.js";
import type { ApiError } from "../errors.js";
import type { ProductCatalog } from "../products/product-catalog.js";
import type { WriteResult } from "../products/product-repository.js";
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
      const result = await guard(() => catalog.create(request, context.signal));
      return create(CreateProductResponseSchema, result);
    },
    async batchCreateProducts(request) {
      const detail = request.resultView === ResultView.OUTCOME ? "outcome" : "full";
      const items = await guard(() => catalog.createMany(request.requests, detail));
      return { results: items.map((item) => (item.ok ? writtenResult(item.result) : failedResult(item.error))) };
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

/**
 * A literal of the generated type (tsc checks its fields): this runs once per written product,
 * where create()'s reflection showed in profiles.
 */
function writtenResult(result: WriteResult): BatchCreateProductsResult {
  return {
    $typeName: "products.v1.BatchCreateProductsResult",
    result: {
      case: "response",
      value: { $typeName: "products.v1.CreateProductResponse", product: result.product, outcome: result.outcome },
    },
  };
}

function failedResult(error: ApiError): BatchCreateProductsResult {
  return create(BatchCreateProductsResultSchema, {
    result: {
      case: "error",
      value: { code: error.code, message: error.message, fieldViolations: [...error.violations] },
    },
  });
}
