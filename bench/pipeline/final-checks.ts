import type { Kafka } from "kafkajs";
import pg from "pg";
import { countRows } from "./end-to-end.js";
import type { EventObserver } from "./event-observer.js";

export interface FinalChecks {
  deadLettered: number;
  rows: number;
  expectedRows: number;
  lost: number;
  duplicates: number;
  /** Warnings and errors the services logged. */
  serviceWarnings: number;
}

/** After every phase: dead letters, rows against products sent, events lost or published twice. */
export async function finalChecks(
  kafka: Kafka,
  errorsTopic: string,
  databaseUrl: string,
  observer: EventObserver,
  expected: ReadonlyMap<string, number>,
  serviceWarnings: number,
): Promise<FinalChecks> {
  const admin = kafka.admin();
  await admin.connect();
  let deadLettered = 0;
  try {
    for (const { high, low } of await admin.fetchTopicOffsets(errorsTopic)) deadLettered += Number(high) - Number(low);
  } finally {
    await admin.disconnect();
  }
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const duplicates = observer.duplicates(expected);
    return {
      deadLettered,
      rows: await countRows(db),
      expectedRows: expected.size,
      lost: observer.missing(expected),
      duplicates,
      serviceWarnings,
    };
  } finally {
    await db.end();
  }
}
