import { connect } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import type { Kafka } from "kafkajs";

/**
 * The high watermark of each partition of `topic`: the offset after its last record, committed or
 * not. Tests need it to know when a reader has seen everything published so far, and kafkajs cannot
 * give it: admin.fetchTopicOffsets always asks for read_committed, which answers the last stable
 * offset. That one stays before a transaction until the commit marker is written, and the broker
 * writes the marker after it has answered the commit. So right after the relay committed (and
 * deleted its outbox rows), the LSO may still be before the events: a reader that stops there
 * misses them. A read_committed reader passes the high watermark only once every transaction
 * below it is decided, so waiting for that is exact.
 *
 * One ListOffsets v2 request per partition leader, with isolation_level 0 (read_uncommitted),
 * written by hand: kafkajs does not let the admin choose the isolation level. Asked again for up to
 * `retryForMs` while it fails, as when a restarted broker has not taken its leaderships back yet.
 */
export async function highWatermarks(kafka: Kafka, topic: string, retryForMs = 10_000): Promise<Map<number, bigint>> {
  const deadline = Date.now() + retryForMs;
  for (;;) {
    try {
      return await askLeaders(kafka, topic);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await delay(200);
    }
  }
}

async function askLeaders(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  let leaders: Map<string, number[]>;
  try {
    const [{ brokers }, { topics }] = await Promise.all([
      admin.describeCluster(),
      admin.fetchTopicMetadata({ topics: [topic] }),
    ]);
    leaders = new Map();
    for (const { partitionId, leader } of topics[0]?.partitions ?? []) {
      const broker = brokers.find((b) => b.nodeId === leader);
      if (!broker) throw new Error(`${topic}[${partitionId}] has no leader among the brokers (leader ${leader})`);
      const address = `${broker.host}:${broker.port}`;
      leaders.set(address, [...(leaders.get(address) ?? []), partitionId]);
    }
  } finally {
    await admin.disconnect();
  }
  const answers = await Promise.all(
    [...leaders].map(([address, partitions]) => listEndOffsets(address, topic, partitions)),
  );
  return new Map(answers.flatMap((answer) => [...answer]));
}

const LIST_OFFSETS = { apiKey: 2, apiVersion: 2 } as const;
/** ListOffsets' timestamp for "the end of the partition". */
const LATEST = -1n;

async function listEndOffsets(address: string, topic: string, partitions: number[]): Promise<Map<number, bigint>> {
  const request = new Writer()
    .int16(LIST_OFFSETS.apiKey)
    .int16(LIST_OFFSETS.apiVersion)
    .int32(1) // correlation id: one request per connection
    .string("tests-high-watermarks")
    .int32(-1) // replica id: a client
    .int8(0) // isolation level: read_uncommitted
    .int32(1)
    .string(topic)
    .int32(partitions.length);
  for (const partition of partitions) request.int32(partition).int64(LATEST);
  const response = new Reader(await exchange(address, request.framed()));
  response.int32(); // correlation id
  response.int32(); // throttle time
  const ends = new Map<number, bigint>();
  for (let topics = response.int32(); topics > 0; topics--) {
    response.string();
    for (let count = response.int32(); count > 0; count--) {
      const partition = response.int32();
      const errorCode = response.int16();
      response.int64(); // timestamp
      const offset = response.int64();
      if (errorCode !== 0)
        throw new Error(`ListOffsets for ${topic}[${partition}] at ${address}: error code ${errorCode}`);
      ends.set(partition, offset);
    }
  }
  return ends;
}

/** Sends one size-prefixed request and returns the response's body, without its size. */
function exchange(address: string, request: Buffer): Promise<Buffer> {
  const separator = address.lastIndexOf(":");
  const socket = connect({ host: address.slice(0, separator), port: Number(address.slice(separator + 1)) });
  return new Promise<Buffer>((resolve, reject) => {
    let received = Buffer.alloc(0);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no ListOffsets answer from ${address} in 10 s`)));
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4 && received.length >= 4 + received.readInt32BE(0)) {
        resolve(received.subarray(4, 4 + received.readInt32BE(0)));
        socket.end();
      }
    });
    socket.on("close", () => reject(new Error(`${address} closed the connection before answering ListOffsets`)));
    socket.write(request);
  });
}

class Writer {
  private readonly parts: Buffer[] = [];
  int8(value: number) {
    return this.push(1, (b) => b.writeInt8(value));
  }
  int16(value: number) {
    return this.push(2, (b) => b.writeInt16BE(value));
  }
  int32(value: number) {
    return this.push(4, (b) => b.writeInt32BE(value));
  }
  int64(value: bigint) {
    return this.push(8, (b) => b.writeBigInt64BE(value));
  }
  string(value: string) {
    const bytes = Buffer.from(value, "utf8");
    this.int16(bytes.length);
    this.parts.push(bytes);
    return this;
  }
  /** The request with its int32 size in front. */
  framed(): Buffer {
    const body = Buffer.concat(this.parts);
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    return Buffer.concat([size, body]);
  }
  private push(size: number, write: (buffer: Buffer) => void) {
    const buffer = Buffer.alloc(size);
    write(buffer);
    this.parts.push(buffer);
    return this;
  }
}

class Reader {
  private at = 0;
  constructor(private readonly buffer: Buffer) {}
  int16() {
    return this.advance(2, this.buffer.readInt16BE(this.at));
  }
  int32() {
    return this.advance(4, this.buffer.readInt32BE(this.at));
  }
  int64() {
    return this.advance(8, this.buffer.readBigInt64BE(this.at));
  }
  string() {
    const length = this.int16();
    return this.advance(length, this.buffer.toString("utf8", this.at, this.at + length));
  }
  private advance<T>(size: number, value: T): T {
    this.at += size;
    return value;
  }
}
