import { expect } from "chai";
import type { Kafka, Producer } from "kafkajs";
import { startTestApi, type TestApi } from "../../test/support/api.js";
import {
  createTestProducer,
  createTestTopics,
  produceInOrder,
  readAll,
  type TestTopics,
  testKafka,
} from "../../test/support/kafka.js";
import { startTestScheduler, type TestScheduler, untilConsumed } from "../../test/support/scheduler.js";
import { seedMessage } from "../../test/support/seed.js";
import { settleAll } from "../../test/support/settle.js";
import { uniqueId } from "../../test/support/unique-names.js";
import { parseDeadLetterHeaders } from "../src/dead-letter.js";

describe("scheduler: dead letters larger than the error topic accepts @integration", () => {
  /** The error topic's max.message.bytes: far below the input topic's, as with a compressed input. */
  const ERROR_TOPIC_MAX_BYTES = 4096;
  let api: TestApi;
  let kafka: Kafka;
  let topics: TestTopics;
  let producer: Producer;
  let scheduler: TestScheduler | undefined;

  before(async () => {
    kafka = testKafka();
    await settleAll([
      startTestApi().then((started) => {
        api = started;
      }),
      createTestTopics(kafka, 2, { errorTopicConfig: { "max.message.bytes": String(ERROR_TOPIC_MAX_BYTES) } }).then(
        (created) => {
          topics = created;
        },
      ),
    ]);
    producer = await createTestProducer(kafka);
  });

  after(async () => {
    await scheduler?.stop();
    await producer?.disconnect();
    await topics?.delete();
    await api?.close();
  });

  it("when a bad record is too large for the error topic, then its dead letter goes without its value but with its reason and coordinates, and every partition moves on", async () => {
    const [first, other] = [uniqueId("before"), uniqueId("after")];
    const big = Buffer.from(`not json ${"x".repeat(2 * ERROR_TOPIC_MAX_BYTES)}`);
    const small = (n: number) => Buffer.from(`not json either ${n}`);
    // Keys of their own, as records of one partition have. By key (murmur2, 2 partitions) the big
    // one's letter would go to partition 0 and the others' to 1: the broker would append those,
    // refuse the big one, and every later send to partition 1 would be out of sequence.
    const keys = { small1: "bad-3", big: "bad-1", small2: "bad-4" };
    const produced = await produceInOrder(producer, topics.input, [
      { key: first, value: seedMessage({ productId: first }), partition: 0 },
      { key: keys.small1, value: small(1), partition: 0 },
      { key: keys.big, value: big, partition: 0 },
      { key: keys.small2, value: small(2), partition: 0 },
      { key: other, value: seedMessage({ productId: other }), partition: 0 },
    ]);
    const elsewhere = uniqueId("elsewhere");
    await producer.send({
      topic: topics.input,
      acks: -1,
      messages: [{ key: elsewhere, value: seedMessage({ productId: elsewhere }), partition: 1 }],
    });

    scheduler = await startTestScheduler({ topics, apiUrl: api.url });
    await untilConsumed(scheduler, kafka, topics.input);

    const rows = await api.knex("products").whereIn("id", [first, other, elsewhere]).pluck("id");
    expect(rows).to.have.members([first, other, elsewhere]);
    const letters = (await readAll(kafka, topics.errors)).map((letter) => ({
      letter,
      info: parseDeadLetterHeaders(letter.headers),
    }));
    expect(
      letters.map(({ letter, info }) => [letter.key?.toString(), info.originalOffset, info.truncated]),
      "one dead letter per bad record, in offset order, only the big one truncated",
    ).to.deep.equal([
      [keys.small1, produced[1]?.offset, false],
      [keys.big, produced[2]?.offset, true],
      [keys.small2, produced[3]?.offset, false],
    ]);
    const [whole, truncated] = letters;
    expect(whole?.letter.value).to.deep.equal(small(1));
    expect(whole?.info).to.include({ code: "invalid_json", originalPartition: 0 });
    expect(truncated?.letter.value?.length, "the value is left out").to.equal(0);
    expect(truncated?.info).to.include({
      truncated: true,
      originalValueBytes: big.length,
      originalTopic: topics.input,
      originalPartition: 0,
      originalConsumerGroup: scheduler.groupId,
      code: "invalid_json",
    });
    expect(truncated?.info.message, "the whole reason").to.match(/not JSON/);
    const { values } = await scheduler.metrics.records.get();
    expect(values.find((v) => v.labels.outcome === "dead_lettered")?.value).to.equal(3);
  });
});
