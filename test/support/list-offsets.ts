import { connect } from "node:net";

const LIST_OFFSETS = { apiKey: 2, apiVersion: 2 } as const;
/** ListOffsets' timestamp for "the end of the partition". */
const LATEST = -1n;

/**
 * The high watermark of each of `partitions` of `topic`, asked of their leader at `address`
 * ("host:port"): one ListOffsets v2 request with isolation_level 0 (read_uncommitted), written by
 * hand because kafkajs's admin always asks for read_committed (see highWatermarks in kafka.ts).
 */
export async function listEndOffsets(
  address: string,
  topic: string,
  partitions: number[],
): Promise<Map<number, bigint>> {
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
