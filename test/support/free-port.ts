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

export interface PortRange {
  first: number;
  last: number;
}

/**
 * `count` distinct free ports from `range` (the test range by default), tried in random order so
 * that runs in parallel seldom pick the same ones. `avoid` excludes ports already handed out.
 */
export async function freePorts(
  count: number,
  avoid: readonly number[] = [],
  range: PortRange = TEST_PORT_RANGE,
): Promise<number[]> {
  const { first, last } = range;
  const candidates = shuffledRange(first, last).filter((p) => !avoid.includes(p));
  const ports: number[] = [];
  for (const port of candidates) {
    if (ports.length === count) break;
    if (await isPortFree(port)) ports.push(port);
  }
  if (ports.length < count) throw new Error(`only ${ports.length} of ${count} free ports in ${first}-${last}`);
  return ports;
}

/** A port for a broker of scripts/kafka.sh, which also listens on port + 1 (its controller). */
export async function freeBrokerPort(range: PortRange = TEST_PORT_RANGE): Promise<number> {
  const { first, last } = range;
  for (const port of shuffledRange(first, last - 1)) {
    if ((await isPortFree(port)) && (await isPortFree(port + 1))) return port;
  }
  throw new Error(`no two consecutive free ports in ${first}-${last}`);
}

function shuffledRange(first: number, last: number): number[] {
  const ports = Array.from({ length: last - first + 1 }, (_, i) => first + i);
  for (let i = ports.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [ports[i], ports[j]] = [ports[j] as number, ports[i] as number];
  }
  return ports;
}
