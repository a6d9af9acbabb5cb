import { expect } from "chai";
import { KafkaJSProtocolError, type KafkaMessage, type Producer } from "kafkajs";
import {
  createDeadLetterPublisher,
  DeadLetterPublishError,
  DLT_HEADERS,
  deadLetterHeaders,
  deadLetterPartitioner,
  parseDeadLetterHeaders,
} from "./dead-letter.js";
import { RecordError } from "./errors.js";

describe("dead-letter headers", () => {
  const message = {
    key: Buffer.from("k"),
    value: Buffer.from("{"),
    timestamp: "1719621003254",
    attributes: 0,
    offset: "4294967301",
    headers: { "content-type": Buffer.from("application/json") },
  } as KafkaMessage;
  const error = new RecordError("invalid_json", "value is not JSON", undefined, { cause: new SyntaxError("x") });
  const headers = deadLetterHeaders(
    { topic: "cadastro-produtos", partition: 2, message, error, attempts: 1 },
    "scheduler",
    new Date("2024-07-01T00:00:00.000Z"),
  );

  it("when built, then partition, offset and timestamp are big-endian binary like Spring Kafka's", () => {
    expect(headers[DLT_HEADERS.originalPartition]).to.deep.equal(Buffer.from([0, 0, 0, 2]));
    expect(headers[DLT_HEADERS.originalOffset]).to.deep.equal(Buffer.from([0, 0, 0, 1, 0, 0, 0, 5]));
    expect((headers[DLT_HEADERS.originalTimestamp] as Buffer).readBigInt64BE()).to.equal(1719621003254n);
  });

  it("when built, then the original headers are kept and the text headers are set", () => {
    expect(headers["content-type"]).to.deep.equal(Buffer.from("application/json"));
    expect(headers[DLT_HEADERS.originalTimestampType]).to.equal("CreateTime");
    expect(headers[DLT_HEADERS.exceptionFqcn]).to.equal("invalid_json");
    expect(headers[DLT_HEADERS.exceptionCauseFqcn]).to.equal("SyntaxError");
    expect(headers[DLT_HEADERS.failedAt]).to.equal("2024-07-01T00:00:00.000Z");
  });

  it("when read back as a consumer sees them (Buffers), then they decode to the original values", () => {
    const received = Object.fromEntries(
      Object.entries(headers).map(([name, value]) => [
        name,
        Buffer.isBuffer(value) ? value : Buffer.from(String(value)),
      ]),
    );
    expect(parseDeadLetterHeaders(received)).to.deep.equal({
      originalTopic: "cadastro-produtos",
      originalPartition: 2,
      originalOffset: 4294967301n,
      originalTimestamp: 1719621003254n,
      originalTimestampType: "CreateTime",
      originalConsumerGroup: "scheduler",
      code: "invalid_json",
      message: "value is not JSON",
      causeName: "SyntaxError",
      attempts: 1,
      failedAt: "2024-07-01T00:00:00.000Z",
      truncated: false,
      originalValueBytes: undefined,
    });
  });

  it("when the letter is truncated, then the original headers are left out, the coordinates and reason kept, and the original size said", () => {
    const truncated = deadLetterHeaders(
      { topic: "cadastro-produtos", partition: 2, message, error, attempts: 1, truncated: true },
      "scheduler",
      new Date("2024-07-01T00:00:00.000Z"),
    );
    expect(truncated).to.not.have.property("content-type");
    expect(truncated[DLT_HEADERS.truncated]).to.equal("true");
    expect(truncated[DLT_HEADERS.originalValueBytes]).to.equal("1");
    const received = Object.fromEntries(
      Object.entries(truncated).map(([name, value]) => [
        name,
        Buffer.isBuffer(value) ? value : Buffer.from(String(value)),
      ]),
    );
    expect(parseDeadLetterHeaders(received)).to.include({
      originalTopic: "cadastro-produtos",
      originalPartition: 2,
      originalOffset: 4294967301n,
      code: "invalid_json",
      message: "value is not JSON",
      truncated: true,
      originalValueBytes: 1,
    });
  });
});

describe("deadLetterPartitioner", () => {
  const partitionMetadata = [0, 1, 2].map((partitionId) => ({
    partitionId,
    leader: 1,
    partitionErrorCode: 0,
    replicas: [1],
    isr: [1],
  }));
  const partitionOf = (originalPartition: number, keys: string[]) =>
    keys.map((key) => {
      const message = { key, value: "v", headers: { [DLT_HEADERS.originalPartition]: int32(originalPartition) } };
      return deadLetterPartitioner()({ topic: "erro-produtos", partitionMetadata, message });
    });
  const int32 = (value: number) => {
    const buffer = Buffer.alloc(4);
    buffer.writeInt32BE(value);
    return buffer;
  };

  it("when letters of one input partition have different keys, then they all go to the same partition of the error topic: the original one, modulo its partitions", () => {
    expect(partitionOf(1, ["a", "b", "c", "d"])).to.deep.equal([1, 1, 1, 1]);
    expect(partitionOf(4, ["a", "b"])).to.deep.equal([1, 1]);
  });
});

describe("createDeadLetterPublisher", () => {
  const letter = {
    topic: "cadastro-produtos",
    partition: 0,
    message: { key: null, value: Buffer.from("x"), timestamp: "0", attributes: 0, offset: "0" } as KafkaMessage,
    error: new RecordError("invalid_json", "value is not JSON"),
    attempts: 1,
  };
  const sending = (sent: unknown[]) =>
    ({
      send: async (record: unknown) => {
        sent.push(record);
        return [];
      },
    }) as unknown as Producer;
  const refusing = (error: Error) => ({ send: () => Promise.reject(error) }) as unknown as Producer;

  it("when the broker refuses the dead letter for its size, then the publish error says too_large", async () => {
    const tooLarge = new KafkaJSProtocolError({
      message: "The request included a message larger than the max message size the server will accept",
      type: "MESSAGE_TOO_LARGE",
      code: 10,
      retriable: false,
    } as unknown as string);
    const publisher = createDeadLetterPublisher(refusing(tooLarge), { topic: "erro-produtos", groupId: "g" });
    const error = await publisher.publish([letter]).then(
      () => expect.fail("published"),
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(DeadLetterPublishError).with.property("kafkaErrorClass", "too_large");
  });

  it("when a letter is truncated, then its value is empty (not a tombstone) and the rest as usual", async () => {
    const sent: { messages: { key: unknown; value: Buffer }[] }[] = [];
    const publisher = createDeadLetterPublisher(sending(sent), { topic: "erro-produtos", groupId: "g" });
    await publisher.publish([letter, { ...letter, truncated: true }]);
    const values = sent[0]?.messages.map((m) => m.value);
    expect(values).to.deep.equal([Buffer.from("x"), Buffer.alloc(0)]);
  });

  it("when the broker is away, then the publish error is retriable", async () => {
    const publisher = createDeadLetterPublisher(refusing(new Error("connect ECONNREFUSED")), {
      topic: "erro-produtos",
      groupId: "g",
    });
    const error = await publisher.publish([letter]).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(DeadLetterPublishError).with.property("kafkaErrorClass", "retriable");
  });
});
