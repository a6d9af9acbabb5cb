import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, createFileRegistry, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  MethodOptions_IdempotencyLevel,
} from "@bufbuild/protobuf/wkt";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { expect } from "chai";
import {
  ServerReflection,
  type ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "#gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflectionResponseSchema as ServerReflectionResponseV1alphaSchema,
  ServerReflection as ServerReflectionV1alpha,
} from "#gen/grpc/reflection/v1alpha/reflection_pb.js";
import { file_health_v1_health } from "#gen/health/v1/health_pb.js";
import { file_products_v1_product_service } from "#gen/products/v1/product_service_pb.js";
import { startTestApi, type TestApi } from "../../../test/support/api.js";
import { uniqueId } from "../../../test/support/unique-names.js";
import { registerReflectionServices } from "./reflection.js";

type ReflectionRequest = MessageInitShape<typeof ServerReflectionRequestSchema>;

const EXPECTED_SERVICES = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "products.v1.ProductService",
];
/** google.api.http, declared in google/api/annotations.proto as an extension of MethodOptions. */
const HTTP_RULE_EXTENSION = 72295728;

describe("gRPC server reflection", () => {
  const transport = createRouterTransport((router) =>
    registerReflectionServices(router, [file_products_v1_product_service, file_health_v1_health]),
  );
  const v1 = createClient(ServerReflection, transport);
  const v1alpha = createClient(ServerReflectionV1alpha, transport);
  const reflect = (...requests: ReflectionRequest[]) => collect(v1.serverReflectionInfo(streamOf(requests)));

  it("when asked to list services, then lists the API's services, health and both reflection versions", async () => {
    const [response] = await reflect({ host: "api.test", messageRequest: { case: "listServices", value: "" } });
    expect(response?.validHost).to.equal("api.test");
    expect(response?.originalRequest?.messageRequest.case).to.equal("listServices");
    expect(response?.messageResponse.case).to.equal("listServicesResponse");
    const names =
      response?.messageResponse.case === "listServicesResponse" ? response.messageResponse.value.service : [];
    expect(names.map((service) => service.name)).to.have.members(EXPECTED_SERVICES);
  });

  it("when asked for the file containing ProductService, then answers with a descriptor set that rebuilds it", async () => {
    const [response] = await reflect({
      messageRequest: { case: "fileContainingSymbol", value: "products.v1.ProductService" },
    });
    const files = fileDescriptors(response);
    expect(files[0]?.name, "the requested file comes first").to.equal("products/v1/product_service.proto");
    expect(new Set(files.map((file) => file.name)).size, "each file once").to.equal(files.length);
    expect(files.map((file) => file.name)).to.include.members([
      "google/api/annotations.proto",
      "google/api/http.proto",
      "google/protobuf/descriptor.proto",
      "google/protobuf/timestamp.proto",
      "products/v1/product.proto",
    ]);

    // The answer comes first (as grpc-go sends it); the dependencies after it are in dependency order.
    const inDependencyOrder = [...files.slice(1), ...files.slice(0, 1)];
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: inDependencyOrder }));
    const service = registry.getService("products.v1.ProductService");
    const getProduct = service?.methods.find((method) => method.name === "GetProduct");
    expect(getProduct?.input.typeName).to.equal("products.v1.GetProductRequest");
    expect(getProduct?.output.typeName).to.equal("products.v1.GetProductResponse");
    expect(getProduct?.idempotency).to.equal(MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS);
    const product = registry.getMessage("products.v1.Product");
    expect(product?.field.createdAt?.message?.typeName).to.equal("google.protobuf.Timestamp");
  });

  it("when asked for methods, fields, oneofs, nested types and enum values, then answers with their file", async () => {
    const symbols: Record<string, string> = {
      "products.v1.ProductService.GetProduct": "products/v1/product_service.proto",
      "products.v1.Product": "products/v1/product.proto",
      "products.v1.Product.created_at": "products/v1/product.proto",
      "products.v1.BatchCreateProductsResult.result": "products/v1/product_service.proto",
      "products.v1.WriteOutcome": "products/v1/product_service.proto",
      "products.v1.WRITE_OUTCOME_CREATED": "products/v1/product_service.proto",
      "grpc.health.v1.HealthCheckResponse.ServingStatus": "health/v1/health.proto",
      "grpc.health.v1.HealthCheckResponse.SERVING": "health/v1/health.proto",
      "grpc.health.v1.HealthListResponse.StatusesEntry": "health/v1/health.proto",
      "google.protobuf.Timestamp": "google/protobuf/timestamp.proto",
      "google.api.http": "google/api/annotations.proto",
      "grpc.reflection.v1alpha.ServerReflection": "grpc/reflection/v1alpha/reflection.proto",
    };
    const responses = await reflect(
      ...Object.keys(symbols).map(
        (symbol): ReflectionRequest => ({
          messageRequest: { case: "fileContainingSymbol", value: symbol },
        }),
      ),
    );
    const answered = Object.fromEntries(
      responses.map((response) => [response.originalRequest?.messageRequest.value, fileDescriptors(response)[0]?.name]),
    );
    expect(answered).to.deep.equal(symbols);
  });

  it("when the symbol is unknown, then answers NOT_FOUND and keeps the stream open", async () => {
    const [unknown, known] = await reflect(
      { messageRequest: { case: "fileContainingSymbol", value: "products.v1.NoSuchThing" } },
      { messageRequest: { case: "fileContainingSymbol", value: "products.v1.Product" } },
    );
    expect(unknown?.messageResponse).to.deep.include({ case: "errorResponse" });
    expect(unknown?.messageResponse.value).to.deep.include({
      errorCode: Code.NotFound,
      errorMessage: 'symbol "products.v1.NoSuchThing" not found',
    });
    expect(fileDescriptors(known)[0]?.name).to.equal("products/v1/product.proto");
  });

  it("when asked by filename, then answers with the file and its dependencies, or NOT_FOUND", async () => {
    const [product, missing] = await reflect(
      { messageRequest: { case: "fileByFilename", value: "products/v1/product.proto" } },
      { messageRequest: { case: "fileByFilename", value: "products/v1/missing.proto" } },
    );
    expect(fileDescriptors(product).map((file) => file.name)).to.deep.equal([
      "products/v1/product.proto",
      "google/protobuf/timestamp.proto",
    ]);
    expect(missing?.messageResponse.value).to.deep.include({ errorCode: Code.NotFound });
  });

  it("when asked about extensions of MethodOptions, then answers with google.api.http and its file", async () => {
    const [byNumber, numbers, unknownNumber, unknownType] = await reflect(
      {
        messageRequest: {
          case: "fileContainingExtension",
          value: { containingType: "google.protobuf.MethodOptions", extensionNumber: HTTP_RULE_EXTENSION },
        },
      },
      { messageRequest: { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" } },
      {
        messageRequest: {
          case: "fileContainingExtension",
          value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 1 },
        },
      },
      { messageRequest: { case: "allExtensionNumbersOfType", value: "products.v1.NoSuchThing" } },
    );
    expect(fileDescriptors(byNumber)[0]?.name).to.equal("google/api/annotations.proto");
    expect(numbers?.messageResponse.value).to.deep.include({
      baseTypeName: "google.protobuf.MethodOptions",
      extensionNumber: [HTTP_RULE_EXTENSION],
    });
    expect(unknownNumber?.messageResponse.value).to.deep.include({ errorCode: Code.NotFound });
    expect(unknownType?.messageResponse.value).to.deep.include({ errorCode: Code.NotFound });
  });

  it("when asked over v1alpha, then answers exactly as v1", async () => {
    const requests = [
      { messageRequest: { case: "listServices", value: "" } },
      { messageRequest: { case: "fileContainingSymbol", value: "products.v1.ProductService" } },
      { messageRequest: { case: "fileContainingSymbol", value: "products.v1.NoSuchThing" } },
    ] satisfies ReflectionRequest[];
    const alpha = await collect(v1alpha.serverReflectionInfo(streamOf(requests)));
    const current = await reflect(...requests);
    expect(alpha.map((response) => response.$typeName)).to.deep.equal(
      requests.map(() => "grpc.reflection.v1alpha.ServerReflectionResponse"),
    );
    expect(alpha.map((response) => toBinary(ServerReflectionResponseV1alphaSchema, response))).to.deep.equal(
      current.map((response) => toBinary(ServerReflectionResponseSchema, response)),
    );
  });
});

describe("gRPC server reflection over HTTP/2 with buf curl @integration", () => {
  let api: TestApi;

  before(async () => {
    api = await startTestApi();
  });

  after(async () => {
    await api?.close();
  });

  it("when buf curl lists services, then it sees every service", async () => {
    const result = await bufCurl("--list-services", api.url);
    expect(result.exitCode, result.stderr).to.equal(0);
    expect(result.stdout.trim().split("\n")).to.have.members(EXPECTED_SERVICES);
  });

  it("when buf curl lists methods, then it sees every ProductService method", async () => {
    const result = await bufCurl("--list-methods", api.url);
    expect(result.exitCode, result.stderr).to.equal(0);
    expect(result.stdout.trim().split("\n")).to.include.members([
      "grpc.health.v1.Health/Check",
      "products.v1.ProductService/CreateProduct",
      "products.v1.ProductService/GetProduct",
      "products.v1.ProductService/ListProducts",
    ]);
  });

  it("when buf curl gets an unknown product, then the not_found answer is decoded through reflection", async () => {
    const result = await bufCurl("-d", '{"id":"x"}', `${api.url}/products.v1.ProductService/GetProduct`);
    expect(result.exitCode).to.not.equal(0);
    expect(JSON.parse(result.stderr)).to.deep.include({ code: "not_found", message: 'product "x" not found' });
  });

  it("when buf curl creates a product, then buf curl gets it back", async () => {
    const product = newProduct();
    const created = await bufCurl(
      "-d",
      JSON.stringify({ product }),
      `${api.url}/products.v1.ProductService/CreateProduct`,
    );
    expect(created.exitCode, created.stderr).to.equal(0);
    expect(JSON.parse(created.stdout)).to.deep.include({ outcome: "WRITE_OUTCOME_CREATED" });

    const got = await bufCurl(
      "-d",
      JSON.stringify({ id: product.id }),
      `${api.url}/products.v1.ProductService/GetProduct`,
    );
    expect(got.exitCode, got.stderr).to.equal(0);
    expect(JSON.parse(got.stdout).product).to.deep.include({ ...product, version: "1" });
  });

  it("when buf curl reflects over grpc-v1alpha, then it can call ProductService", async () => {
    const product = newProduct();
    const created = await bufCurl(
      "--reflect-protocol",
      "grpc-v1alpha",
      "-d",
      JSON.stringify({ product }),
      `${api.url}/products.v1.ProductService/CreateProduct`,
    );
    expect(created.exitCode, created.stderr).to.equal(0);
    expect(JSON.parse(created.stdout)).to.deep.include({ outcome: "WRITE_OUTCOME_CREATED" });
    const procedures = (await api.metrics.requests.get()).values.map((value) => value.labels.route);
    expect(procedures).to.include("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
  });
});

function newProduct() {
  return {
    id: uniqueId(),
    name: "Reflected product",
    pricing: { amount: "19.99", currency: "BRL" },
    availability: { quantity: 5, timestamp: "2024-06-29T00:30:03.254878Z" },
    category: "tests",
  };
}

async function* streamOf<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const collected: T[] = [];
  for await (const item of items) collected.push(item);
  return collected;
}

function fileDescriptors(response: ServerReflectionResponse | undefined) {
  expect(response?.messageResponse.case).to.equal("fileDescriptorResponse");
  const encoded =
    response?.messageResponse.case === "fileDescriptorResponse"
      ? response.messageResponse.value.fileDescriptorProto
      : [];
  return encoded.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
}

const BUF = fileURLToPath(new URL("../../../node_modules/.bin/buf", import.meta.url));
const execFileAsync = promisify(execFile);

/** Runs buf curl over gRPC with h2c and schema from reflection; a failed RPC is a result, not an exception. */
async function bufCurl(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(
      BUF,
      ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args],
      { timeout: 20_000 },
    );
    return { exitCode: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== "number") throw error;
    return { exitCode: failed.code, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}
