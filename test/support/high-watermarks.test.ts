import { setTimeout as delay } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { expect } from "chai";
import type { Kafka, Producer } from "kafkajs";
import { ProductPersistedSchema } from "#gen/products/v1/events_pb.js";
import { createIdempotentProducer } from "#platform/kafka.js";
import { runScopedSuffix } from "./env.js";
import { type EventWatcher, watchEvents } from "./events.js";
import { createTestTopics, highWatermarks, readAllRecords, type TestTopics, testKafka, withAdmin } from "./kafka.js";

const eventRecord = (id: string) => ({
  key: id,
  value: Buffer.from(toBinary(ProductPersistedSchema, create(ProductPersistedSchema, { eventId: `event-${id}` }))),
});

describe("high watermarks of a transactional topic @integration", () => {
  let kafka: Kafka;
  let topics: TestTopics;
  let producer: Producer;
  let events: EventWatcher | undefined;

  before(async () => {
    kafka = testKafka();
    topics = await createTestTopics(kafka, 1);
    producer = createIdempotentProducer(kafka, { transactionalId: `high-watermarks-${runScopedSuffix()}` });
    await producer.connect();
  });

  after(async () => {
    await events?.stop();
    await producer?.disconnect();
    await topics?.delete();
  });

  it("when a transaction is open, then the high watermark counts its records and kafkajs's admin answers the offset before them", async () => {
    const transaction = await producer.transaction();
    await transaction.send({ topic: topics.persisted, acks: -1, messages: [eventRecord("a"), eventRecord("b")] });
    try {
      expect(await highWatermarks(kafka, topics.persisted)).to.deep.equal(new Map([[0, 2n]]));
      const [lastStable] = await withAdmin(kafka, (admin) => admin.fetchTopicOffsets(topics.persisted));
      expect(lastStable?.high, "fetchTopicOffsets: the last stable offset").to.equal("0");
    } finally {
      await transaction.commit();
    }
  });

  it("when a transaction is still open, then a reader waits for its commit and then sees its records", async () => {
    events = await watchEvents(kafka, topics.persisted);
    await events.untilCaughtUp();
    const transaction = await producer.transaction();
    await transaction.send({ topic: topics.persisted, acks: -1, messages: [eventRecord("c")] });
    // This is the moment right after a commit was answered, held open: the records are written and
    // the LSO is still before them. A reader bounded by the LSO would resolve now without them.
    const caughtUp = events.untilCaughtUp();
    const early = await Promise.race([caughtUp.then(() => "caught up"), delay(1_000).then(() => "waiting")]);
    await transaction.commit();
    expect(early, "before the commit").to.equal("waiting");
    expect((await caughtUp).map((e) => e.key)).to.deep.equal(["a", "b", "c"]);
    expect(await readAllRecords(kafka, [topics.persisted])).to.have.length(3);
  });
});
