import { once } from "node:events";
import net from "node:net";
import { setTimeout as delay } from "node:timers/promises";

/** Polls the API's /readyz until it answers 200: a service at LOG_LEVEL silent or warn says nothing when it listens. */
export async function waitUntilReady(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ready = await fetch(`${url}/readyz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ready) return;
    await delay(100);
  }
  throw new Error(`api at ${url} not ready after ${timeoutMs} ms`);
}

/** A port that was free a moment ago, for a child process that must be told its port. */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address() as net.AddressInfo;
  probe.close();
  await once(probe, "close");
  return port;
}
