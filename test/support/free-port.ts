import { randomInt } from "node:crypto";
import net from "node:net";

/** The ports tests may start their own servers on (brokers, embedded PostgreSQL, services). */
export const TEST_PORT_RANGE = { first: 19200, last: 19299 } as const;

/** Resolves true if nothing listens on 127.0.0.1:port and it can be bound. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * `count` distinct free ports from the test range, tried in random order so that test runs in
 * parallel seldom pick the same ones. `avoid` excludes ports already handed out.
 */
export async function freePorts(count: number, avoid: readonly number[] = []): Promise<number[]> {
  const { first, last } = TEST_PORT_RANGE;
  const candidates = Array.from({ length: last - first + 1 }, (_, i) => first + i).filter((p) => !avoid.includes(p));
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [candidates[i], candidates[j]] = [candidates[j] as number, candidates[i] as number];
  }
  const ports: number[] = [];
  for (const port of candidates) {
    if (ports.length === count) break;
    if (await isPortFree(port)) ports.push(port);
  }
  if (ports.length < count) throw new Error(`only ${ports.length} of ${count} free ports in ${first}-${last}`);
  return ports;
}
