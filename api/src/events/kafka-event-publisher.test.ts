import { createRequire } from "node:module";
import { expect } from "chai";
import { LIMITS } from "../products/validation.js";
import { createKafkaEventPublisher, recordBytes } from "./kafka-event-publisher.js";
import type { OutboxRow } from "./product-persisted.js";

/** kafkajs's own encoder of a record in a v2 record batch (not part of its typed API). */
const encodeRecord = createRequire(import.meta.url)("kafkajs/src/protocol/recordBatch/record/v0/index.js") as (record: {
  key: Buffer;
  value: Buffer;
  headers: Record<string, string | undefined>;
  offsetDelta: number;
  timestampDelta: number;
}) => { size(): number };

/** 𝄞 is one character for validation and four bytes in UTF-8: the largest a valid product can be. */
const largest = (characters: number) => "𝄞".repeat(characters);

const largestRow: OutboxRow = {
  id: "9223372036854775807",
  event_id: "4f9c2b8e-3d1a-4e5f-9a7b-6c8d0e1f2a3b",
  product_id: largest(LIMITS.idLength),
  name: largest(LIMITS.nameLength),
  description: largest(LIMITS.descriptionLength),
  amount: "99999999999.9999",
  currency: "BRL",
  quantity: 2147483647,
  availability_at: "2024-07-01 00:00:00.123456+00",
  category: largest(LIMITS.categoryLength),
  version: Number.MAX_SAFE_INTEGER,
  created_at: "2024-07-01 00:00:00.123456+00",
  updated_at: "2024-07-01 00:00:00.123456+00",
  persisted_at: "2024-07-01 00:00:00.123456+00",
};

describe("Kafka event publisher: record sizes", () => {
  const publisher = createKafkaEventPublisher({
    kafka: undefined as never,
    topic: "unused",
    partitions: 1,
    replicationFactor: -1,
    transactionalId: "unused",
  });

  it("when a product is as large as validation allows, then its event is under 20 KiB, far below a batch's bytes and the broker's 1 MiB", () => {
    const event = publisher.encode(largestRow);
    expect(event.bytes).to.be.below(20 * 1024);
    expect(event.bytes).to.be.above(18_000);
  });

  it("then the size counted for a record is never below what kafkajs encodes for it in a record batch", () => {
    for (const row of [largestRow, { ...largestRow, product_id: "p" }]) {
      const { message } = publisher.encode(row);
      const encoded = encodeRecord({
        key: Buffer.from(message.key as string),
        value: message.value as Buffer,
        headers: message.headers as Record<string, string>,
        offsetDelta: 2 ** 31 - 1,
        timestampDelta: 2 ** 40,
      }).size();
      expect(recordBytes(message)).to.be.at.least(encoded);
      expect(recordBytes(message) - encoded, "and close to it").to.be.below(64);
    }
  });
});
