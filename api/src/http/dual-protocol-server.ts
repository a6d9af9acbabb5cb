import { once } from "node:events";
import http, { type RequestListener } from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import type { Http2StreamHandler } from "./http2-rpc-adapter.js";

/** Every HTTP/2 connection opens with this preface; no HTTP/1.x request starts with "PRI ". */
const HTTP2_PREFACE_START = Buffer.from("PRI ");

export interface DualProtocolServerOptions {
  /** Serves HTTP/1.1 requests (express: REST, docs, Connect and gRPC-Web). */
  http1: RequestListener;
  /** Serves cleartext HTTP/2 requests (gRPC, Connect and gRPC-Web over h2c). */
  http2: Http2StreamHandler;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** HTTP/2: streams one session may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  http2MaxConcurrentStreams?: number;
  /** Idle time after which HTTP/2 sessions are closed. */
  idleTimeoutMs?: number;
}

/** nghttp2's buffers per session (Node's default is 10); beyond it new streams are refused. */
const HTTP2_MAX_SESSION_MEMORY_MB = 32;

export interface DualProtocolServer {
  /** Resolves with the bound port (useful with port 0). */
  listen(port: number, host: string): Promise<number>;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to timeoutMs, then closes
   * what is left.
   */
  close(timeoutMs: number): Promise<void>;
}

/**
 * One port for HTTP/1.1 and HTTP/2 with prior knowledge (h2c). Express cannot speak HTTP/2, so
 * each connection is routed by its first bytes: the HTTP/2 preface goes to Node's http2 server,
 * anything else to the HTTP/1.1 server.
 */
export function createDualProtocolServer(options: DualProtocolServerOptions): DualProtocolServer {
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const h1 = http.createServer(
    {
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      keepAliveTimeout: 5_000,
      // Node checks both timeouts only this often (30 s by default), so they would fire up to that late.
      connectionsCheckingInterval: Math.min(1_000, options.headersTimeoutMs / 4, options.requestTimeoutMs / 4),
    },
    options.http1,
  );
  // h1 never listens itself: connections are handed to it. Node starts the tracking behind
  // headersTimeout, requestTimeout and closeIdleConnections() on "listening", so start it here.
  h1.emit("listening");
  const h2 = http2.createServer({
    maxSessionMemory: HTTP2_MAX_SESSION_MEMORY_MB,
    settings: { maxConcurrentStreams: options.http2MaxConcurrentStreams ?? 100 },
  });
  h2.on("stream", (stream, headers) => {
    resetUnfinishedRequest(stream, options.requestTimeoutMs);
    options.http2(stream, headers);
  });
  // A session without activity for this long is destroyed (Node's behaviour with no "timeout" listener).
  h2.setTimeout(idleTimeoutMs);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const sockets = new Set<net.Socket>();
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // A client that connects and sends nothing must not hold the socket forever.
    socket.setTimeout(options.headersTimeoutMs, () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < HTTP2_PREFACE_START.length && HTTP2_PREFACE_START.subarray(0, head.length).equals(head)) return;
      socket.off("data", onData);
      socket.pause();
      socket.setTimeout(0);
      socket.unshift(head);
      if (head.subarray(0, HTTP2_PREFACE_START.length).equals(HTTP2_PREFACE_START)) {
        // The session reads the native handle; Node feeds it the unshifted bytes first (nodejs/node#35475).
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });

  return {
    async listen(port, host) {
      listener.listen(port, host);
      await once(listener, "listening");
      return (listener.address() as net.AddressInfo).port;
    },
    async close(timeoutMs) {
      listener.close();
      for (const session of sessions) session.close();
      const deadline = Date.now() + timeoutMs;
      while (sockets.size > 0 && Date.now() < deadline) {
        h1.closeIdleConnections();
        await delay(25);
      }
      for (const socket of sockets) socket.destroy();
      h1.close();
    },
  };
}

/**
 * HTTP/1.1's requestTimeout for HTTP/2: a stream whose request has not been fully received (no
 * END_STREAM from the client) within timeoutMs is reset, so half-sent streams cannot pile up.
 */
function resetUnfinishedRequest(stream: http2.ServerHttp2Stream, timeoutMs: number): void {
  if (stream.state.remoteClose) return;
  const timer = setTimeout(() => {
    if (stream.destroyed || stream.state.remoteClose) return;
    stream.close(http2.constants.NGHTTP2_CANCEL);
  }, timeoutMs);
  timer.unref();
  stream.once("end", () => clearTimeout(timer));
  stream.once("close", () => clearTimeout(timer));
}
