import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_DATABASE_URL } from "../../test/support/env.js";
import type { PortRange } from "../../test/support/free-port.js";

/** The repository root: services are started from there and results are written under it. */
export const REPOSITORY_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The PostgreSQL server the benches create their databases on (BENCH_POSTGRES_URL). */
export const BENCH_POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? DEFAULT_DATABASE_URL;

/**
 * Where the benches' services listen (BENCH_PORTS, `first-last`): apart from the tests' range, so
 * a bench and a test run on one machine do not take each other's ports.
 */
export const BENCH_PORT_RANGE: PortRange = parsePortRange(process.env.BENCH_PORTS ?? "19850-19899");

export function parsePortRange(text: string): PortRange {
  const match = /^(\d+)-(\d+)$/.exec(text.trim());
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (!match || first < 1024 || last > 65535 || first > last) {
    throw new Error(`BENCH_PORTS=${JSON.stringify(text)}: expected a port range such as 19850-19899`);
  }
  return { first, last };
}
