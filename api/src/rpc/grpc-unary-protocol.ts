import { Code, ConnectError, type MethodImplSpec } from "@connectrpc/connect";
import {
  assertByteStreamRequest,
  compressionNegotiate,
  createAsyncIterable,
  createMethodSerializationLookup,
  type EnvelopedMessage,
  encodeEnvelope,
  envelopeCompress,
  envelopeDecompress,
  invokeUnaryImplementation,
  type ProtocolHandlerFactory,
  type UniversalHandler,
  type UniversalHandlerOptions,
  type UniversalServerRequest,
  type UniversalServerResponse,
  uResponseMethodNotAllowed,
  uResponseUnsupportedMediaType,
  validateUniversalHandlerOptions,
} from "@connectrpc/connect/protocol";
import {
  contentTypeJson,
  contentTypeProto,
  createHandlerFactory as createStockGrpcHandlerFactory,
  grpcStatusOk,
  headerAcceptEncoding,
  headerContentType,
  headerEncoding,
  headerGrpcStatus,
  headerTimeout,
  parseContentType,
  parseTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import { CALL_COMPLETED, createCallContext } from "./call-context.js";

/** Envelope header: one byte of flags, four bytes of message length (gRPC over HTTP/2, "Length-Prefixed-Message"). */
const ENVELOPE_HEADER_BYTES = 5;

/**
 * The gRPC protocol for connect-es routers, with unary methods served by a direct handler.
 *
 * connect-es serves every gRPC call, unary ones too, through a chain of eight async-generator
 * transforms; on this API that chain cost more CPU than the rest of a CreateProduct call
 * (bench/README.md). A unary call is one request message and one response message, so this
 * handler reads the body, decodes its single envelope and writes one envelope back, the way
 * connect-es's own Connect-protocol unary handler does. Everything else is connect-es's:
 * serialization and its limits, compression, deadlines, interceptors, the handler context and
 * the trailers (grpc-status, grpc-message, grpc-status-details-bin). Streaming methods are served
 * by connect-es's handler unchanged. The test sends this handler and connect-es's the same valid and
 * faulty requests and requires the same answers, so an upgrade of connect-es that changes them
 * shows up there.
 */
export function createGrpcHandlerFactory(options: Partial<UniversalHandlerOptions>): ProtocolHandlerFactory {
  const opt = validateUniversalHandlerOptions(options);
  const stock = createStockGrpcHandlerFactory(options);
  const factory = (spec: MethodImplSpec): UniversalHandler => {
    const stockHandler = stock(spec);
    if (spec.kind !== "unary") return stockHandler;
    const { protocolNames, service, method, requestPath, allowedMethods, supportedContentType } = stockHandler;
    return Object.assign(createUnaryHandler(opt, spec), {
      protocolNames,
      service,
      method,
      requestPath,
      allowedMethods,
      supportedContentType,
    });
  };
  return Object.assign(factory, { protocolName: stock.protocolName });
}

function createUnaryHandler(opt: UniversalHandlerOptions, spec: MethodImplSpec & { kind: "unary" }) {
  const serialization = createMethodSerializationLookup(spec.method, opt.binaryOptions, opt.jsonOptions, opt);
  return async function handleUnaryGrpc(req: UniversalServerRequest): Promise<UniversalServerResponse> {
    assertByteStreamRequest(req);
    const type = parseContentType(req.header.get(headerContentType));
    if (type === undefined) return uResponseUnsupportedMediaType;
    if (req.method !== "POST") return uResponseMethodNotAllowed;
    const timeout = parseTimeout(req.header.get(headerTimeout), opt.maxTimeoutMs);
    const context = createCallContext({
      service: spec.method.parent,
      method: spec.method,
      requestMethod: req.method,
      protocolName: "grpc",
      timeoutMs: timeout.timeoutMs,
      requestSignal: req.signal,
      shutdownSignal: opt.shutdownSignal,
      requestHeader: req.header,
      url: req.url,
      responseHeader: new Headers({ [headerContentType]: type.binary ? contentTypeProto : contentTypeJson }),
      responseTrailer: new Headers({ [headerGrpcStatus]: grpcStatusOk }),
      contextValues: req.contextValues,
    });
    const compression = compressionNegotiate(
      opt.acceptCompression,
      req.header.get(headerEncoding),
      req.header.get(headerAcceptEncoding),
      headerAcceptEncoding,
    );
    if (compression.response) context.responseHeader.set(headerEncoding, compression.response.name);
    let body: Uint8Array[] = [];
    try {
      if (compression.error) throw compression.error;
      if (timeout.error) throw timeout.error;
      const envelope = await readSingleEnvelope(req.body, opt.readMaxBytes);
      const { data } = await envelopeDecompress(envelope, compression.request, opt.readMaxBytes);
      const input = serialization.getI(type.binary).parse(data);
      const output = await invokeUnaryImplementation(spec, context, input, opt.interceptors);
      const response = await envelopeCompress(
        { flags: 0, data: serialization.getO(type.binary).serialize(output) },
        compression.response,
        opt.compressMinBytes,
      );
      body = [encodeEnvelope(response.flags, response.data)];
      context.abort(CALL_COMPLETED);
    } catch (error) {
      context.abort(error);
      setTrailerStatus(
        context.responseTrailer,
        error instanceof ConnectError
          ? error
          : new ConnectError("internal error", Code.Internal, undefined, undefined, error),
      );
    }
    return {
      status: 200,
      header: context.responseHeader,
      body: createAsyncIterable(body),
      trailer: context.responseTrailer,
    };
  };
}

/**
 * Reads the one envelope a unary request body holds. Faults get connect-es's codes and messages,
 * except that bytes after the message are refused as an extra message as soon as they arrive,
 * even when they would not make a whole envelope (connect-es: "incomplete envelope").
 */
async function readSingleEnvelope(body: AsyncIterable<Uint8Array>, readMaxBytes: number): Promise<EnvelopedMessage> {
  const chunks: Uint8Array[] = [];
  let received = 0;
  let messageEnd: number | undefined;
  for await (const chunk of body) {
    chunks.push(chunk);
    received += chunk.byteLength;
    if (messageEnd === undefined && received >= ENVELOPE_HEADER_BYTES) {
      const head = concat(chunks, received);
      const length = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(1);
      if (length > readMaxBytes) {
        throw new ConnectError(
          `message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`,
          Code.ResourceExhausted,
        );
      }
      messageEnd = ENVELOPE_HEADER_BYTES + length;
    }
    if (messageEnd !== undefined && received > messageEnd) {
      throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
    }
  }
  if (received === 0) {
    throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  }
  if (messageEnd === undefined || received < messageEnd) {
    throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  }
  const bytes = concat(chunks, received);
  return { flags: bytes[0] as number, data: bytes.subarray(ENVELOPE_HEADER_BYTES, messageEnd) };
}

/** Joins the chunks, and keeps the result as the only chunk so that the next call copies nothing again. */
function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  chunks.splice(0, chunks.length, bytes);
  return bytes;
}
