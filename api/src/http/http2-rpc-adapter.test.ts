import { createHash } from "node:crypto";
import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  contentTypeMatcher,
  createAsyncIterable,
  type UniversalHandler,
  type UniversalHandlerFn,
  type UniversalServerRequest,
} from "@connectrpc/connect/protocol";
import { expect } from "chai";
import { ProductService } from "#gen/products/v1/product_service_pb.js";
import { serveRpcOverHttp2 } from "./http2-rpc-adapter.js";

/** A handler for `path` that does whatever the test needs; the adapter only looks at requestPath. */
function handler(path: string, fn: UniversalHandlerFn): UniversalHandler {
  return Object.assign(fn, {
    requestPath: path,
    protocolNames: ["test"],
    service: ProductService,
    method: ProductService.method.getProduct,
    allowedMethods: ["POST"],
    supportedContentType: contentTypeMatcher(/.*/),
  });
}

async function* chunks(count: number, size: number, onEnd: () => void = () => {}) {
  for (let i = 0; i < count; i++) yield new Uint8Array(size).fill(i % 251);
  onEnd();
}

describe("gRPC, Connect and gRPC-Web over raw HTTP/2 streams (serveRpcOverHttp2)", () => {
  let server: http2.Http2Server;
  let session: http2.ClientHttp2Session;
  const internalErrors: { error: unknown; procedure: string }[] = [];
  const seen: UniversalServerRequest[] = [];
  const bodyEnded: string[] = [];
  const LARGE = { count: 40, size: 64 * 1024 };

  before(async () => {
    const trailer = new Headers();
    const handlers = [
      handler("/test/Echo", async (request) => {
        seen.push(request);
        let body = "";
        for await (const chunk of request.body as AsyncIterable<Uint8Array>) body += Buffer.from(chunk).toString();
        const header = new Headers({ "content-type": "text/plain" });
        header.append("set-cookie", "a=1");
        header.append("set-cookie", "b=2");
        return { status: 200, header, body: createAsyncIterable([Buffer.from(body)]) };
      }),
      handler("/test/Large", async () => ({
        status: 200,
        header: new Headers({ "content-type": "application/octet-stream" }),
        // The trailer is set when the body ends: it must be read after, not when the headers go out.
        body: chunks(LARGE.count, LARGE.size, () => trailer.set("x-done", "yes")),
        trailer,
      })),
      handler("/test/NoBody", async () => ({ status: 204 })),
      handler("/test/Slow", async (request) => {
        seen.push(request);
        await once(request.signal, "abort");
        return { status: 200 };
      }),
      handler("/test/Endless", async () => ({
        status: 200,
        body: (async function* () {
          try {
            for (;;) {
              yield new Uint8Array(1024);
              await delay(5);
            }
          } finally {
            bodyEnded.push("Endless");
          }
        })(),
      })),
      handler("/test/Broken", async () => {
        throw new Error("handler bug");
      }),
    ];
    server = http2.createServer();
    server.on(
      "stream",
      serveRpcOverHttp2(handlers, {
        fallback: (stream) => stream.respond({ ":status": 404 }, { endStream: true }),
        onInternalError: (error, procedure) => internalErrors.push({ error, procedure }),
      }),
    );
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });

  after(async () => {
    session?.close();
    server?.close();
  });

  beforeEach(() => {
    internalErrors.length = 0;
    seen.length = 0;
  });

  /** One request; resolves with what arrived once the stream is closed. */
  async function call(path: string, headers: http2.OutgoingHttpHeaders = {}, body = "") {
    const stream = session.request({ ":method": "POST", ":path": path, ...headers });
    const received: Buffer[] = [];
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    stream.on("response", (h) => {
      responseHeaders = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (chunk: Buffer) => received.push(chunk));
    stream.end(body);
    await once(stream, "close");
    return { headers: responseHeaders, trailers, body: Buffer.concat(received) };
  }

  it("hands the handler the method, the URL with its query, the headers and the body", async () => {
    const response = await call("/test/Echo?x=1", { "x-multi": ["a", "b"], "content-type": "text/plain" }, "héllo");
    expect(response.headers[":status"]).to.equal(200);
    expect(response.body.toString()).to.equal("héllo");
    expect(response.headers["set-cookie"]).to.deep.equal(["a=1", "b=2"]);
    const [request] = seen;
    expect(request?.method).to.equal("POST");
    expect(request?.httpVersion).to.equal("2.0");
    expect(new URL(request?.url ?? "").pathname + new URL(request?.url ?? "").search).to.equal("/test/Echo?x=1");
    expect(request?.header.get("x-multi")).to.equal("a, b");
    expect([...(request?.header.keys() ?? [])].filter((name) => name.startsWith(":"))).to.deep.equal([]);
  });

  it("writes a body larger than the flow-control window in full, then the trailers set while it was written", async () => {
    const response = await call("/test/Large");
    const expected = createHash("sha256");
    for (let i = 0; i < LARGE.count; i++) expected.update(new Uint8Array(LARGE.size).fill(i % 251));
    expect(response.body.byteLength).to.equal(LARGE.count * LARGE.size);
    expect(createHash("sha256").update(response.body).digest("hex")).to.equal(expected.digest("hex"));
    expect(response.trailers?.["x-done"]).to.equal("yes");
  });

  it("ends a response with neither body nor trailers with its headers", async () => {
    const response = await call("/test/NoBody");
    expect(response.headers[":status"]).to.equal(204);
    expect(response.body.byteLength).to.equal(0);
    expect(response.trailers).to.equal(undefined);
  });

  it("when the client cancels, then the handler's request signal aborts with canceled", async () => {
    const stream = session.request({ ":method": "POST", ":path": "/test/Slow" });
    stream.on("error", () => {});
    stream.end();
    while (seen.length === 0) await delay(5);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    const [request] = seen;
    if (request === undefined) throw new Error("the handler did not run");
    if (!request.signal.aborted) await once(request.signal, "abort");
    expect(request.signal.reason).to.be.instanceOf(ConnectError);
    expect((request.signal.reason as ConnectError).code).to.equal(Code.Canceled);
    expect(internalErrors).to.deep.equal([]);
  });

  it("leaves the request signal of a completed call alone", async () => {
    await call("/test/Echo", {}, "done");
    await delay(10);
    expect(seen[0]?.signal.aborted).to.equal(false);
  });

  it("when the client goes away while the body is written, then the handler's body is stopped", async () => {
    const stream = session.request({ ":method": "POST", ":path": "/test/Endless" });
    stream.on("error", () => {});
    stream.end();
    await once(stream, "data");
    stream.close(http2.constants.NGHTTP2_CANCEL);
    for (let i = 0; i < 100 && bodyEnded.length === 0; i++) await delay(10);
    expect(bodyEnded).to.deep.equal(["Endless"]);
    expect(internalErrors).to.deep.equal([]);
  });

  it("when a handler fails, then the client gets a bare 500 and the failure is reported", async () => {
    const response = await call("/test/Broken");
    expect(response.headers[":status"]).to.equal(500);
    expect(response.body.byteLength).to.equal(0);
    expect(internalErrors).to.have.length(1);
    expect(internalErrors[0]?.procedure).to.equal("/test/Broken");
    expect(String(internalErrors[0]?.error)).to.contain("handler bug");
  });

  it("sends a path no handler serves to the fallback", async () => {
    const response = await call("/not/There");
    expect(response.headers[":status"]).to.equal(404);
  });
});
