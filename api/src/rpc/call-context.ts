import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, createContextValues, type HandlerContext } from "@connectrpc/connect";

export interface CallContextInit {
  service: DescService;
  method: DescMethod;
  protocolName: string;
  requestMethod: string;
  url: string;
  /** Used as is, not copied. */
  requestHeader: Headers;
  responseHeader?: Headers;
  responseTrailer?: Headers;
  contextValues?: ContextValues;
  /** The client's deadline: the signal aborts with deadline_exceeded when it passes, and timeoutMs() reports it. */
  timeoutMs?: number;
  /** Aborted when the client goes away. */
  requestSignal?: AbortSignal;
  /** Aborted when the server shuts down. */
  shutdownSignal?: AbortSignal;
}

/**
 * The reason a call's signal aborts when the call ends normally. Aborting a signal without a
 * reason makes Node build a DOMException (with a stack trace) on every call; this says the same
 * thing for free.
 */
export const CALL_COMPLETED = new ConnectError("the call has completed", Code.Canceled);

/** A unary call's HandlerContext, with the means to end it. */
export interface CallContext extends HandlerContext {
  /** Ends the call: the signal aborts with `reason` (the first wins), the timer stops, linked signals are let go. */
  abort(reason: unknown): void;
}

/**
 * The context of a unary call served by this API's own handlers (the gRPC unary protocol and the
 * REST transcoder). It behaves as connect-es's createHandlerContext does (one signal, aborted by
 * the client going away, the deadline or the end of the call), for about half its CPU: that one
 * links a deadline signal and a second controller and copies every header list, and on Node 20
 * each AbortSignal costs microseconds to build, to listen to and to abort (bench/README.md).
 */
export function createCallContext(init: CallContextInit): CallContext {
  const controller = new AbortController();
  const { signal } = controller;
  const { timeoutMs: clientTimeoutMs } = init;
  let timer: NodeJS.Timeout | undefined;
  const unlinks: (() => void)[] = [];
  const abort = (reason: unknown) => {
    if (signal.aborted) return;
    clearTimeout(timer);
    for (const unlink of unlinks) unlink();
    controller.abort(reason);
  };
  let timeoutMs: () => number | undefined = () => undefined;
  if (clientTimeoutMs !== undefined) {
    const deadline = Date.now() + clientTimeoutMs;
    timeoutMs = () => deadline - Date.now();
    const expire = () => abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    if (clientTimeoutMs <= 0) expire();
    else timer = setTimeout(expire, clientTimeoutMs);
  }
  for (const linked of [init.requestSignal, init.shutdownSignal]) {
    if (linked === undefined || signal.aborted) continue;
    if (linked.aborted) {
      abort(linked.reason);
      continue;
    }
    const onAbort = () => abort(linked.reason);
    linked.addEventListener("abort", onAbort, { once: true });
    unlinks.push(() => linked.removeEventListener("abort", onAbort));
  }
  return {
    service: init.service,
    method: init.method,
    protocolName: init.protocolName,
    requestMethod: init.requestMethod,
    url: init.url,
    signal,
    timeoutMs,
    requestHeader: init.requestHeader,
    responseHeader: init.responseHeader ?? new Headers(),
    responseTrailer: init.responseTrailer ?? new Headers(),
    values: init.contextValues ?? createContextValues(),
    abort,
  };
}
