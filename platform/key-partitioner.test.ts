import { expect } from "chai";
import { Partitioners, type PartitionMetadata } from "kafkajs";
import { keyPartitioner, murmur2 } from "./key-partitioner.js";

/** org.apache.kafka.common.utils.Utils.murmur2 of the UTF-8 bytes, printed by kafka-clients 4.4.0. */
const JAVA_MURMUR2: [string, number][] = [
  ["", 275646681],
  ["a", -1563381124],
  ["ab", 316155434],
  ["abc", 479470107],
  ["21", -973932308],
  ["foobar", -790332482],
  ["a-little-bit-long-string", -985981536],
  ["a-little-bit-longer-string", -1486304829],
  ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
  ["produto-ção-ü", -2044316435],
  ["PROD-000123", -2081521417],
];

const partitions = (count: number, leaderless: number[] = []): PartitionMetadata[] =>
  Array.from({ length: count }, (_, partitionId) => ({
    partitionErrorCode: 0,
    partitionId,
    leader: leaderless.includes(partitionId) ? -1 : 1,
    replicas: [1],
    isr: [1],
  }));

describe("keyPartitioner", () => {
  it("hashes as Kafka's Java client does, for every length's tail and for UTF-8", () => {
    for (const [key, expected] of JAVA_MURMUR2) expect(murmur2(Buffer.from(key)), key).to.equal(expected);
  });

  it("puts every key, string or bytes, on the partition kafkajs's DefaultPartitioner picks", () => {
    const ours = keyPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    let seed = 7;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(Array.from({ length: random() % 40 }, () => random() % 256));
      const key = i % 2 === 0 ? bytes : `product-${random()}-ção`;
      const partitionMetadata = partitions(1 + (i % 12));
      const args = { topic: "t", partitionMetadata, message: { key, value: null } };
      expect(ours(args), String(key)).to.equal(theirs(args));
    }
  });

  it("keeps a record's own partition, and spreads keyless records over the partitions with a leader", () => {
    const partitioner = keyPartitioner();
    const partitionMetadata = partitions(4, [1]);
    expect(partitioner({ topic: "t", partitionMetadata, message: { key: "k", value: null, partition: 3 } })).to.equal(
      3,
    );
    const chosen = Array.from({ length: 30 }, () =>
      partitioner({ topic: "t", partitionMetadata, message: { value: "v" } }),
    );
    expect(new Set(chosen)).to.deep.equal(new Set([0, 2, 3]));
  });
});
