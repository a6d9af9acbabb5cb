import { toBinary } from "@bufbuild/protobuf";
import type { IHeaders, Message } from "kafkajs";
import { type ProductPersisted, ProductPersistedSchema } from "#gen/products/v1/events_pb.js";
import { type ProductColumns, productWithId, sourceFromColumns } from "../products/product-repository.js";
import { parseTimestamp } from "../products/timestamp.js";

/**
 * A row of the product_events outbox table as the relay reads it (pg-outbox-store.ts): the event's
 * own columns, and the product as the write stored it, in the columns a products row has (id apart).
 */
export interface OutboxRow extends Omit<ProductColumns, "id"> {
  id: string;
  event_id: string;
  product_id: string;
  /** Text, as the database's type parsers return timestamps (microseconds kept). */
  persisted_at: string;
}

export const EVENT_CONTENT_TYPE = "application/x-protobuf";

/**
 * The Kafka record of a ProductPersisted event: keyed by product id so that one product's events
 * stay in one partition, in order; headers say how to decode it and carry the id to dedupe on.
 */
export function toEventRecord(row: OutboxRow): Message {
  const product = productWithId(row.product_id, row);
  const persistedAt = parseTimestamp(row.persisted_at);
  const source = sourceFromColumns(row);
  const event: ProductPersisted = {
    $typeName: "products.v1.ProductPersisted",
    eventId: row.event_id,
    product,
    version: product.version,
    ...(persistedAt ? { persistedAt } : {}),
    ...(source ? { source } : {}),
  };
  const headers: IHeaders = {
    "content-type": EVENT_CONTENT_TYPE,
    "message-type": ProductPersistedSchema.typeName,
    "event-id": row.event_id,
  };
  const value = toBinary(ProductPersistedSchema, event);
  // A Buffer over the encoded bytes, not a copy of them.
  return { key: row.product_id, value: Buffer.from(value.buffer, value.byteOffset, value.byteLength), headers };
}
