import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { expect } from "chai";
import { SourcePositionSchema } from "#gen/products/v1/product_pb.js";
import { compareWrites, type WriteKey } from "./write-order.js";

const at = (seconds: number, micros = 0) => create(TimestampSchema, { seconds: BigInt(seconds), nanos: micros * 1000 });
const kafka = (seconds: number, topic: string, partition: number, offset: bigint, micros = 0): WriteKey => ({
  timestamp: at(seconds, micros),
  source: create(SourcePositionSchema, { topic, partition, offset }),
});
const direct = (seconds: number, micros = 0): WriteKey => ({ timestamp: at(seconds, micros), source: undefined });

describe("the order of writes (compareWrites)", () => {
  it("orders by availability timestamp first, to the microsecond, whatever the source", () => {
    expect(compareWrites(kafka(10, "t", 0, 99n), kafka(11, "t", 0, 1n))).to.be.below(0);
    expect(compareWrites(direct(10), kafka(10, "t", 0, 0n, 1))).to.be.below(0);
    expect(compareWrites(kafka(10, "t", 0, 0n, 2), direct(10, 1))).to.be.above(0);
  });

  it("when timestamps tie, then by offset within a partition: a replayed record equals itself", () => {
    expect(compareWrites(kafka(10, "t", 0, 11n), kafka(10, "t", 0, 13n))).to.be.below(0);
    expect(compareWrites(kafka(10, "t", 0, 13n), kafka(10, "t", 0, 13n))).to.equal(0);
    expect(
      compareWrites(kafka(10, "t", 0, 2n ** 62n), kafka(10, "t", 0, 2n ** 62n + 1n)),
      "offsets past 2^53",
    ).to.be.below(0);
  });

  it("when timestamps tie across partitions or topics, then by topic name (bytewise), then partition", () => {
    expect(compareWrites(kafka(10, "t", 2, 0n), kafka(10, "t", 1, 99n))).to.be.above(0);
    expect(compareWrites(kafka(10, "B", 9, 9n), kafka(10, "a", 0, 0n)), "uppercase before lowercase").to.be.below(0);
  });

  it("when a direct write ties with a Kafka write, then the direct one is newer; two direct writes tie", () => {
    expect(compareWrites(direct(10), kafka(10, "t", 0, 0n))).to.be.above(0);
    expect(compareWrites(kafka(10, "zzz", 2 ** 31 - 1, 2n ** 63n - 1n), direct(10))).to.be.below(0);
    expect(compareWrites(direct(10), direct(10))).to.equal(0);
  });
});
