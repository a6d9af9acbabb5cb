import { create, toBinary } from "@bufbuild/protobuf";
import type { IHeaders, Message } from "kafkajs";
import { ProductPersistedSchema } from "#gen/products/v1/events_pb.js";
import { ProductRow } from "../db/product-model.js";
import { rowToProduct, sourceOf } from "../products/product-repository.js";
import { parseTimestamp } from "../products/timestamp.js";

/** A row of the product_events outbox table. */
export interface OutboxRow {
  id: string;
  event_id: string;
  product_id: string;
  /** The products row as written, as JSON (see the upsert statement). */
  product: Record<string, unknown>;
  /** Text, as the database's type parsers return timestamps (microseconds kept). */
  persisted_at: string;
}

export const EVENT_CONTENT_TYPE = "application/x-protobuf";

/**
 * The Kafka record of a ProductPersisted event: keyed by product id so that one product's events
 * stay in one partition, in order; headers say how to decode it and carry the id to dedupe on.
 */
export function toEventRecord(row: OutboxRow): Message {
  const stored = ProductRow.fromDatabaseJson(row.product);
  const product = rowToProduct(stored);
  const persistedAt = parseTimestamp(row.persisted_at);
  const source = sourceOf(stored);
  const event = create(ProductPersistedSchema, {
    eventId: row.event_id,
    product,
    version: product.version,
    ...(persistedAt ? { persistedAt } : {}),
    ...(source ? { source } : {}),
  });
  const headers: IHeaders = {
    "content-type": EVENT_CONTENT_TYPE,
    "message-type": ProductPersistedSchema.typeName,
    "event-id": row.event_id,
  };
  return { key: row.product_id, value: Buffer.from(toBinary(ProductPersistedSchema, event)), headers };
}
