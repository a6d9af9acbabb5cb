import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * Gives every unary RPC a deadline of deadlineMs (MAX_RPC_DEADLINE_MS): connect-es sets one only
 * when the client sends grpc-timeout or connect-timeout-ms (and maxTimeoutMs merely refuses longer
 * ones), so a call without one could run forever. When it passes, the signal the handler sees
 * aborts with deadline_exceeded, and the client gets that answer even from a handler that ignores
 * its signal. A client's own deadline is never longer (longer ones are refused before interceptors
 * run), so it still ends the call first. The time counts from the interceptor, after the request
 * was read; the handler's context.timeoutMs() still reports only a client's deadline.
 *
 * Streaming methods (health Watch, reflection) are long-lived by design and get none.
 */
export function createDefaultDeadlineInterceptor(deadlineMs: number): Interceptor {
  return (next) => async (req) => {
    if (req.method.methodKind !== "unary") return next(req);
    const controller = new AbortController();
    const timer = setTimeout(() => {
      const message = `the operation timed out: the server allows calls at most ${deadlineMs} ms`;
      controller.abort(new ConnectError(message, Code.DeadlineExceeded));
    }, deadlineMs);
    // Everything that aborted the handler's signal still does: the client's deadline, the client
    // going away, the call's completion.
    const forward = () => controller.abort(req.signal.reason);
    if (req.signal.aborted) forward();
    else req.signal.addEventListener("abort", forward, { once: true });
    const ended = new Promise<never>((_, reject) => {
      const fail = () => reject(ConnectError.from(controller.signal.reason));
      if (controller.signal.aborted) fail();
      else controller.signal.addEventListener("abort", fail, { once: true });
    });
    try {
      return await Promise.race([next({ ...req, signal: controller.signal }), ended]);
    } finally {
      clearTimeout(timer);
    }
  };
}
