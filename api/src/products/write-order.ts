import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { SourcePosition } from "#gen/products/v1/product_pb.js";

/** What places a write in the order of writes to one product. */
export interface WriteKey {
  /** availability.timestamp, to the microsecond (as stored). */
  timestamp: Timestamp;
  /** The Kafka record it comes from; undefined for a direct write (REST, other clients). */
  source: SourcePosition | undefined;
}

/**
 * The total order of writes to one product: availability.timestamp, then the source position
 * (topic bytewise, partition, offset), a direct write coming after every write with a source at the
 * same timestamp. Records of one id share a partition, so their offsets order the writes that
 * kafkajs stamps with one Date.now(); a redelivered or replayed record is equal to itself. Returns
 * a negative number when a is older than b, 0 when equal, a positive one when newer.
 *
 * UPSERT_SQL applies the same order through writeOrderSql.
 */
export function compareWrites(a: WriteKey, b: WriteKey): number {
  return (
    compare(a.timestamp.seconds, b.timestamp.seconds) ||
    compare(Math.floor(a.timestamp.nanos / 1000), Math.floor(b.timestamp.nanos / 1000)) ||
    compare(a.source === undefined ? 1 : 0, b.source === undefined ? 1 : 0) ||
    (a.source && b.source
      ? compare(a.source.topic, b.source.topic) ||
        compare(a.source.partition, b.source.partition) ||
        compare(a.source.offset, b.source.offset)
      : 0)
  );
}

function compare<T extends string | number | bigint>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The order of compareWrites as a row value of `alias` (a products row or `excluded`), for row
 * comparison in SQL. The source columns are all NULL for a direct write; topics are COLLATE "C"
 * (bytewise, and validation keeps them ASCII, where JavaScript compares the same way).
 */
export function writeOrderSql(alias: string): string {
  return (
    `(${alias}.availability_at, ${alias}.source_topic IS NULL, coalesce(${alias}.source_topic, ''), ` +
    `coalesce(${alias}.source_partition, -1), coalesce(${alias}.source_offset, -1))`
  );
}
