import {
  create,
  type DescEnum,
  type DescExtension,
  type DescFile,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import {
  file_grpc_reflection_v1_reflection,
  ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "#gen/grpc/reflection/v1/reflection_pb.js";
import {
  file_grpc_reflection_v1alpha_reflection,
  ServerReflectionRequestSchema as ServerReflectionRequestV1alphaSchema,
  ServerReflectionResponseSchema as ServerReflectionResponseV1alphaSchema,
  ServerReflection as ServerReflectionV1alpha,
} from "#gen/grpc/reflection/v1alpha/reflection_pb.js";

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha), which connect-es does not ship, so that
 * tools such as buf curl, grpcurl and Postman can call the API without a copy of its .proto files.
 * Lists the services of the given files and of reflection itself, and answers with their file
 * descriptors and every transitive dependency. The index is built here, once.
 */
export function registerReflectionServices(router: ConnectRouter, files: DescFile[]): void {
  const reflection = createReflection([
    ...files,
    file_grpc_reflection_v1_reflection,
    file_grpc_reflection_v1alpha_reflection,
  ]);
  router.service(ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) yield reflection.answer(request);
    },
  });
  // v1alpha is wire-identical to v1: translate through the binary form and answer with v1.
  router.service(ServerReflectionV1alpha, {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        const response = reflection.answer(
          convert(request, ServerReflectionRequestV1alphaSchema, ServerReflectionRequestSchema),
        );
        yield convert(response, ServerReflectionResponseSchema, ServerReflectionResponseV1alphaSchema);
      }
    },
  });
}

interface Reflection {
  answer(request: ServerReflectionRequest): ServerReflectionResponse;
}

type MessageResponse = MessageInitShape<typeof ServerReflectionResponseSchema>["messageResponse"];

/** What a file_* query answers: serialized FileDescriptorProtos, the file first, then its dependencies. */
type Descriptors = Uint8Array[];

function createReflection(roots: DescFile[]): Reflection {
  const descriptorsByFilename = new Map<string, Descriptors>();
  const descriptorsBySymbol = new Map<string, Descriptors>();
  const extensionsByExtendee = new Map<string, Map<number, Descriptors>>();
  const messageNames = new Set<string>();
  const encoded = new Map<DescFile, Uint8Array>();
  const encode = (file: DescFile) => {
    const bytes = encoded.get(file) ?? toBinary(FileDescriptorProtoSchema, file.proto);
    encoded.set(file, bytes);
    return bytes;
  };

  const indexExtension = (extension: DescExtension, descriptors: Descriptors) => {
    descriptorsBySymbol.set(extension.typeName, descriptors);
    const byNumber = extensionsByExtendee.get(extension.extendee.typeName) ?? new Map<number, Descriptors>();
    extensionsByExtendee.set(extension.extendee.typeName, byNumber.set(extension.number, descriptors));
  };
  // Enum values are scoped like C++ enumerators: as siblings of their enum, not children.
  const indexEnum = (descEnum: DescEnum, descriptors: Descriptors) => {
    descriptorsBySymbol.set(descEnum.typeName, descriptors);
    const scope = descEnum.parent?.typeName ?? descEnum.file.proto.package;
    for (const value of descEnum.values) {
      descriptorsBySymbol.set(scope === "" ? value.name : `${scope}.${value.name}`, descriptors);
    }
  };
  const indexMessage = (message: DescMessage, descriptors: Descriptors) => {
    descriptorsBySymbol.set(message.typeName, descriptors);
    messageNames.add(message.typeName);
    for (const field of message.fields) descriptorsBySymbol.set(`${message.typeName}.${field.name}`, descriptors);
    for (const oneof of message.oneofs) descriptorsBySymbol.set(`${message.typeName}.${oneof.name}`, descriptors);
    for (const nested of message.nestedMessages) indexMessage(nested, descriptors);
    // protobuf-es hides the synthetic map entry messages, but they are symbols of the file all the same.
    for (const entry of message.proto.nestedType.filter((nested) => nested.options?.mapEntry)) {
      descriptorsBySymbol.set(`${message.typeName}.${entry.name}`, descriptors);
    }
    for (const nested of message.nestedEnums) indexEnum(nested, descriptors);
    for (const nested of message.nestedExtensions) indexExtension(nested, descriptors);
  };
  const indexFile = (file: DescFile) => {
    if (descriptorsByFilename.has(file.proto.name)) return;
    const descriptors = fileWithDependencies(file).map(encode);
    descriptorsByFilename.set(file.proto.name, descriptors);
    for (const service of file.services) {
      descriptorsBySymbol.set(service.typeName, descriptors);
      for (const method of service.methods) descriptorsBySymbol.set(`${service.typeName}.${method.name}`, descriptors);
    }
    for (const message of file.messages) indexMessage(message, descriptors);
    for (const descEnum of file.enums) indexEnum(descEnum, descriptors);
    for (const extension of file.extensions) indexExtension(extension, descriptors);
    for (const dependency of file.dependencies) indexFile(dependency);
  };
  for (const file of roots) indexFile(file);
  const serviceNames = [...new Set(roots.flatMap((file) => file.services.map((service) => service.typeName)))];

  const fileResponse = (descriptors: Descriptors | undefined, notFound: string): MessageResponse =>
    descriptors === undefined
      ? errorResponse(Code.NotFound, notFound)
      : { case: "fileDescriptorResponse", value: { fileDescriptorProto: descriptors } };

  const respond = (request: ServerReflectionRequest): MessageResponse => {
    const { messageRequest } = request;
    switch (messageRequest.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: serviceNames.map((name) => ({ name })) } };
      case "fileByFilename":
        return fileResponse(
          descriptorsByFilename.get(messageRequest.value),
          `file ${JSON.stringify(messageRequest.value)} not found`,
        );
      case "fileContainingSymbol": {
        const symbol = messageRequest.value.replace(/^\./, "");
        return fileResponse(descriptorsBySymbol.get(symbol), `symbol ${JSON.stringify(symbol)} not found`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = messageRequest.value;
        return fileResponse(
          extensionsByExtendee.get(containingType)?.get(extensionNumber),
          `extension ${extensionNumber} of ${JSON.stringify(containingType)} not found`,
        );
      }
      case "allExtensionNumbersOfType": {
        const typeName = messageRequest.value;
        if (!messageNames.has(typeName))
          return errorResponse(Code.NotFound, `type ${JSON.stringify(typeName)} not found`);
        const numbers = [...(extensionsByExtendee.get(typeName)?.keys() ?? [])].sort((a, b) => a - b);
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: typeName, extensionNumber: numbers } };
      }
      case undefined:
        return errorResponse(Code.InvalidArgument, "the request names no query (e.g. list_services)");
    }
  };

  return {
    answer(request) {
      return create(ServerReflectionResponseSchema, {
        validHost: request.host,
        originalRequest: request,
        messageResponse: respond(request),
      });
    },
  };
}

/**
 * The file first, then its transitive dependencies, each once and each before its dependents.
 * Clients such as grpcurl take the first file as the answer to file_containing_symbol.
 */
function fileWithDependencies(file: DescFile): DescFile[] {
  const ordered: DescFile[] = [];
  const seen = new Set<DescFile>([file]);
  const visit = (current: DescFile) => {
    for (const dependency of current.dependencies) {
      if (seen.has(dependency)) continue;
      seen.add(dependency);
      visit(dependency);
      ordered.push(dependency);
    }
  };
  visit(file);
  return [file, ...ordered];
}

function errorResponse(code: Code, message: string): MessageResponse {
  return { case: "errorResponse", value: { errorCode: code, errorMessage: message } };
}

function convert<From extends DescMessage, To extends DescMessage>(
  message: MessageShape<From>,
  from: From,
  to: To,
): MessageShape<To> {
  return fromBinary(to, toBinary(from, message));
}
