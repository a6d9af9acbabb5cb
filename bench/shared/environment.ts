import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_DATABASE_URL } from "../../test/support/env.js";

/** The repository root: services are started from there and results are written under it. */
export const REPOSITORY_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The PostgreSQL server the benches create their databases on (BENCH_POSTGRES_URL). */
export const BENCH_POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? DEFAULT_DATABASE_URL;
