import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError, createContextKey, createContextValues } from "@connectrpc/connect";
import { expect } from "chai";
import { ProductService } from "#gen/products/v1/product_service_pb.js";
import { CALL_COMPLETED, type CallContextInit, createCallContext } from "./call-context.js";

const init = (more: Partial<CallContextInit> = {}): CallContextInit => ({
  service: ProductService,
  method: ProductService.method.createProduct,
  protocolName: "grpc",
  requestMethod: "POST",
  url: "http://localhost/products.v1.ProductService/CreateProduct",
  requestHeader: new Headers({ authorization: "Bearer t" }),
  ...more,
});

const reasonOf = (signal: AbortSignal) => ConnectError.from(signal.reason);

describe("a unary call's context (createCallContext)", () => {
  it("describes the call, with the request headers as given and empty response headers by default", () => {
    const requestHeader = new Headers({ authorization: "Bearer t" });
    const key = createContextKey("none");
    const values = createContextValues().set(key, "set");
    const context = createCallContext(init({ requestHeader, contextValues: values }));
    expect(context.method).to.equal(ProductService.method.createProduct);
    expect(context.service).to.equal(ProductService);
    expect([context.protocolName, context.requestMethod]).to.deep.equal(["grpc", "POST"]);
    expect(context.requestHeader).to.equal(requestHeader);
    expect([...context.responseHeader, ...context.responseTrailer]).to.deep.equal([]);
    expect(context.values.get(key)).to.equal("set");
    expect(context.timeoutMs()).to.equal(undefined);
    expect(context.signal.aborted).to.equal(false);
  });

  it("when the call ends, aborts its signal once, with the first reason", () => {
    const context = createCallContext(init());
    context.abort(CALL_COMPLETED);
    context.abort(new ConnectError("later", Code.Internal));
    expect(context.signal.reason).to.equal(CALL_COMPLETED);
  });

  it("when the client goes away, aborts with the request signal's reason", () => {
    const request = new AbortController();
    const context = createCallContext(init({ requestSignal: request.signal }));
    request.abort(new ConnectError("client closed the stream", Code.Canceled));
    expect(reasonOf(context.signal).code).to.equal(Code.Canceled);
    expect(reasonOf(context.signal).rawMessage).to.equal("client closed the stream");
  });

  it("when the client has already gone, starts aborted", () => {
    const request = new AbortController();
    request.abort(new ConnectError("gone", Code.Canceled));
    const context = createCallContext(init({ requestSignal: request.signal }));
    expect(reasonOf(context.signal).rawMessage).to.equal("gone");
  });

  it("when the server shuts down, aborts with the shutdown signal's reason", () => {
    const shutdown = new AbortController();
    const context = createCallContext(
      init({ requestSignal: new AbortController().signal, shutdownSignal: shutdown.signal }),
    );
    shutdown.abort(new ConnectError("shutting down", Code.Unavailable));
    expect(reasonOf(context.signal).code).to.equal(Code.Unavailable);
  });

  it("once ended, no longer follows the request signal", () => {
    const request = new AbortController();
    const context = createCallContext(init({ requestSignal: request.signal }));
    context.abort(CALL_COMPLETED);
    request.abort(new ConnectError("gone", Code.Canceled));
    expect(context.signal.reason).to.equal(CALL_COMPLETED);
  });

  it("when the client's deadline passes, aborts with deadline_exceeded, and reports the time left until then", async () => {
    const context = createCallContext(init({ timeoutMs: 50 }));
    const left = context.timeoutMs();
    expect(left).to.be.within(40, 50);
    await delay(80);
    expect(reasonOf(context.signal).code).to.equal(Code.DeadlineExceeded);
    expect(context.timeoutMs()).to.be.below(0);
  });

  it("with a deadline of zero, starts aborted", () => {
    const context = createCallContext(init({ timeoutMs: 0 }));
    expect(reasonOf(context.signal).code).to.equal(Code.DeadlineExceeded);
  });

  it("when the call ends before its deadline, stops the timer", async () => {
    const context = createCallContext(init({ timeoutMs: 30 }));
    context.abort(CALL_COMPLETED);
    await delay(60);
    expect(context.signal.reason).to.equal(CALL_COMPLETED);
  });
});
