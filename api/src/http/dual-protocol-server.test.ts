import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { expect } from "chai";
import { createDualProtocolServer, type DualProtocolServer } from "./dual-protocol-server.js";

describe("dual-protocol server limits", function () {
  this.timeout(10_000);
  let server: DualProtocolServer;
  let port: number;
  let openStreams: number;
  let mostOpen: number;
  const clients: http2.ClientHttp2Session[] = [];

  beforeEach(async () => {
    openStreams = 0;
    mostOpen = 0;
    server = createDualProtocolServer({
      http1: (_req, res) => res.end("ok"),
      // Answers once the request body has ended; a stream whose body never ends stays open.
      http2: (stream) => {
        openStreams++;
        mostOpen = Math.max(mostOpen, openStreams);
        stream.on("error", () => {});
        stream.once("close", () => openStreams--);
        stream.resume();
        stream.once("end", () => {
          if (stream.destroyed) return;
          stream.respond({ ":status": 200 });
          stream.end("ok");
        });
      },
      headersTimeoutMs: 1000,
      requestTimeoutMs: 1000,
      http2MaxConcurrentStreams: 10,
    });
    port = await server.listen(0, "127.0.0.1");
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await server.close(0);
  });

  function connect(): http2.ClientHttp2Session {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on("error", () => {});
    clients.push(client);
    return client;
  }

  /** A POST whose headers are sent and whose body never ends. */
  function halfSent(client: http2.ClientHttp2Session): http2.ClientHttp2Stream {
    const stream = client.request({ ":method": "POST", ":path": "/slow" }, { endStream: false });
    stream.on("error", () => {});
    stream.write("partial");
    return stream;
  }

  it("resets an HTTP/2 stream whose request does not finish within REQUEST_TIMEOUT_MS", async () => {
    const stream = halfSent(connect());
    const started = Date.now();
    await once(stream, "close");
    expect(Date.now() - started).to.be.within(800, 2000);
    expect(stream.rstCode).to.equal(http2.constants.NGHTTP2_CANCEL);
  });

  it("lets a complete HTTP/2 request finish", async () => {
    const stream = connect().request({ ":method": "POST", ":path": "/fast" });
    stream.end("body");
    const [headers] = (await once(stream, "response")) as [http2.IncomingHttpHeaders];
    expect(headers[":status"]).to.equal(200);
  });

  it("holds at most maxConcurrentStreams streams of one session open", async () => {
    const client = connect();
    await once(client, "remoteSettings");
    expect(client.remoteSettings.maxConcurrentStreams).to.equal(10);
    const streams = Array.from({ length: 25 }, () => halfSent(client));
    await delay(500);
    expect(mostOpen).to.equal(10);
    // Past the timeout the held ones are reset, and the queued ones get their turn.
    await Promise.all(streams.map((s) => once(s, "close")));
    expect(mostOpen).to.equal(10);
  });

  it("answers 408 to HTTP/1.1 headers that trickle in past HEADERS_TIMEOUT_MS, close to it", async () => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {});
    await once(socket, "connect");
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n");
    const started = Date.now();
    const trickle = setInterval(() => socket.write("X-Slow: 1\r\n"), 200);
    try {
      let answer = "";
      socket.on("data", (chunk: Buffer) => {
        answer += chunk.toString("latin1");
      });
      await once(socket, "close");
      expect(answer).to.match(/^HTTP\/1\.1 408 /);
      expect(Date.now() - started).to.be.within(900, 2000);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });
});
