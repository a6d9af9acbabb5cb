import http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";

export type Http2StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

export interface Http2RpcOptions {
  /** Answers streams whose path is not an RPC. */
  fallback: Http2StreamHandler;
  /** Told about failures that no client sees (the handler itself broke, or the response could not be written). */
  onInternalError(error: unknown, procedure: string): void;
}

const { HTTP2_HEADER_AUTHORITY, HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS } = http2.constants;

/**
 * Serves RPC handlers (gRPC, Connect and gRPC-Web) on raw HTTP/2 streams.
 *
 * It does what connect-node's `connectNodeAdapter` does for HTTP/2, minus per-call costs that
 * showed in the API's profile: Node's http2 compatibility layer, a second async generator around
 * the request body, a wait for every write's callback, and an abort (with a freshly built
 * DOMException) of every request signal, even of calls that completed. The request signal here
 * aborts only when the client goes away before the response is complete.
 */
export function serveRpcOverHttp2(handlers: readonly UniversalHandler[], options: Http2RpcOptions): Http2StreamHandler {
  const byPath = new Map(handlers.map((handler) => [handler.requestPath, handler]));
  return (stream, headers) => {
    const path = first(headers[HTTP2_HEADER_PATH]) ?? "";
    const queryStart = path.indexOf("?");
    const handler = byPath.get(queryStart === -1 ? path : path.slice(0, queryStart));
    if (handler === undefined) {
      options.fallback(stream, headers);
      return;
    }
    // Without a listener, a stream error (a reset while writing, say) would be thrown as an uncaught exception.
    stream.on("error", () => {});
    const authority = first(headers[HTTP2_HEADER_AUTHORITY]) ?? headers.host;
    if (authority === undefined) {
      respondEmpty(stream, 400);
      return;
    }
    const abort = new AbortController();
    let complete = false;
    stream.once("close", () => {
      if (!complete) abort.abort(resetError(stream.rstCode));
    });
    const request: UniversalServerRequest = {
      httpVersion: "2.0",
      method: first(headers[HTTP2_HEADER_METHOD]) ?? "",
      url: `http://${authority}${path}`,
      header: toWebHeaders(headers),
      // Connect reads the body to its end; if it stops early, the stream must stay open for the answer.
      body: stream.iterator({ destroyOnReturn: false }),
      signal: abort.signal,
    };
    handler(request)
      .then((response) => writeResponse(stream, response))
      .then(() => {
        complete = true;
      })
      .catch((error: unknown) => {
        if (stream.destroyed) return; // the client left: there is nobody to tell
        options.onInternalError(error, handler.requestPath);
        if (!stream.headersSent) respondEmpty(stream, 500);
        else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      });
  };
}

function respondEmpty(stream: http2.ServerHttp2Stream, status: number): void {
  stream.respond({ [HTTP2_HEADER_STATUS]: status }, { endStream: true });
}

async function writeResponse(stream: http2.ServerHttp2Stream, response: UniversalServerResponse): Promise<void> {
  const body = response.body?.[Symbol.asyncIterator]();
  let writing = false;
  try {
    // The first chunk comes before the headers are sent: handlers may still set response headers until then.
    let chunk = await body?.next();
    if (stream.destroyed) throw clientLeft();
    const hasBody = chunk !== undefined && chunk.done !== true;
    const { trailer } = response;
    const head = toNodeHeaders(response.header);
    head[HTTP2_HEADER_STATUS] = response.status;
    writing = true;
    stream.respond(head, { endStream: !hasBody && trailer === undefined, waitForTrailers: trailer !== undefined });
    // Read when asked: the trailers (grpc-status) are final only once the body is done.
    if (trailer !== undefined) stream.once("wantTrailers", () => stream.sendTrailers(toNodeHeaders(trailer)));
    writing = false;
    while (chunk !== undefined && chunk.done !== true && body !== undefined) {
      writing = true;
      if (stream.destroyed) throw clientLeft();
      if (!stream.write(chunk.value)) await drained(stream);
      writing = false;
      chunk = await body.next();
    }
    if (hasBody || trailer !== undefined) stream.end();
  } catch (error) {
    // Tell the handler its response could not be written, so it can stop and release what it holds.
    if (writing) body?.throw?.(error).catch(() => {});
    throw error;
  } finally {
    body?.return?.().catch(() => {});
  }
}

function clientLeft(): ConnectError {
  return new ConnectError("client closed the stream", Code.Canceled);
}

function drained(stream: http2.ServerHttp2Stream): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.destroyed) return reject(clientLeft());
    const onDrain = () => {
      stream.off("close", onClose);
      resolve();
    };
    const onClose = () => {
      stream.off("drain", onDrain);
      reject(clientLeft());
    };
    stream.once("drain", onDrain);
    stream.once("close", onClose);
  });
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function toWebHeaders(headers: http2.IncomingHttpHeaders): Headers {
  const result = new Headers();
  for (const name in headers) {
    if (name.startsWith(":")) continue;
    const value = headers[name];
    if (typeof value === "string") result.append(name, value);
    else if (value !== undefined) for (const item of value) result.append(name, item);
  }
  return result;
}

function toNodeHeaders(headers: Headers | undefined): http2.OutgoingHttpHeaders {
  const result: http2.OutgoingHttpHeaders = {};
  headers?.forEach((value, name) => {
    const previous = result[name];
    // Headers yields each set-cookie on its own; every other name comes once, its values joined.
    result[name] =
      previous === undefined ? value : [...(Array.isArray(previous) ? previous : [String(previous)]), value];
  });
  return result;
}

/** The error a handler sees when its client resets the stream (RFC 9113 §7 codes, as connect-node maps them). */
function resetError(rstCode: number | undefined): ConnectError {
  const { constants } = http2;
  const code =
    rstCode === constants.NGHTTP2_CANCEL || rstCode === constants.NGHTTP2_NO_ERROR || rstCode === undefined
      ? Code.Canceled
      : rstCode === constants.NGHTTP2_REFUSED_STREAM
        ? Code.Unavailable
        : rstCode === constants.NGHTTP2_ENHANCE_YOUR_CALM
          ? Code.ResourceExhausted
          : Code.Internal;
  return new ConnectError(`client closed the stream (http/2 code 0x${(rstCode ?? 0).toString(16)})`, code);
}
