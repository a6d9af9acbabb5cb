import { randomBytes } from "node:crypto";
import pg from "pg";

/** A database for one test run or benchmark: its URL, and drop() to remove it. */
export interface DisposableDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/**
 * A fresh database name (`<prefix>_<random>`) on the server of `serverUrl`. Nothing is created here:
 * the API creates a missing database when it opens it (open-database.ts); drop() removes it.
 */
export function disposableDatabase(serverUrl: string, prefix: string): DisposableDatabase {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const admin = new pg.Client({ connectionString: serverUrl });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}
