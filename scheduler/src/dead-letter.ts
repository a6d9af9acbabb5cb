import type { ICustomPartitioner, IHeaders, KafkaMessage, Producer } from "kafkajs";
import { classifyKafkaError, type KafkaErrorClass } from "#platform/kafka.js";
import type { RecordError } from "./errors.js";

/**
 * Header names of Spring Kafka's DeadLetterPublishingRecoverer (KafkaHeaders.DLT_*), so existing
 * tooling reads our dead letters. Encodings follow Spring too, for the same reason:
 *
 * | header                              | value                                              |
 * |-------------------------------------|----------------------------------------------------|
 * | kafka_dlt-original-topic            | UTF-8 topic name                                   |
 * | kafka_dlt-original-partition        | 4-byte big-endian signed int (Java int)            |
 * | kafka_dlt-original-offset           | 8-byte big-endian signed long                      |
 * | kafka_dlt-original-timestamp        | 8-byte big-endian signed long, epoch milliseconds  |
 * | kafka_dlt-original-timestamp-type   | UTF-8 "CreateTime" or "LogAppendTime"              |
 * | kafka_dlt-original-consumer-group   | UTF-8 group id                                     |
 * | kafka_dlt-exception-fqcn            | UTF-8 error code, e.g. "invalid_json" (a code, not a Java class) |
 * | kafka_dlt-exception-message         | UTF-8 message naming the field                     |
 * | kafka_dlt-exception-cause-fqcn      | UTF-8 name of the underlying error, when there is one |
 * | x-attempts                          | UTF-8 decimal: processing attempts, e.g. "1"       |
 * | x-failed-at                         | UTF-8 ISO 8601 time the record was given up        |
 * | x-truncated                         | UTF-8 "true" when the value and the original headers were left out |
 * | x-original-value-bytes              | UTF-8 decimal: the original value's size, with x-truncated |
 *
 * Binary numbers are not readable in kcat or a UI at a glance; use parseDeadLetterHeaders (or any
 * Spring consumer) to decode them. The original record's own headers are kept (content-type tells a
 * reader how to decode the value), and its key and value bytes are copied unchanged, unless the
 * letter is truncated: a dead letter larger than the error topic accepts is published with an empty
 * value and without the original headers, so that it still carries the reason and the coordinates
 * from which an operator fetches the original while the input topic retains it.
 */
export const DLT_HEADERS = {
  originalTopic: "kafka_dlt-original-topic",
  originalPartition: "kafka_dlt-original-partition",
  originalOffset: "kafka_dlt-original-offset",
  originalTimestamp: "kafka_dlt-original-timestamp",
  originalTimestampType: "kafka_dlt-original-timestamp-type",
  originalConsumerGroup: "kafka_dlt-original-consumer-group",
  exceptionFqcn: "kafka_dlt-exception-fqcn",
  exceptionMessage: "kafka_dlt-exception-message",
  exceptionCauseFqcn: "kafka_dlt-exception-cause-fqcn",
  attempts: "x-attempts",
  failedAt: "x-failed-at",
  truncated: "x-truncated",
  originalValueBytes: "x-original-value-bytes",
} as const;

/** A record given up on, with where it came from and why. */
export interface DeadLetter {
  topic: string;
  partition: number;
  message: KafkaMessage;
  error: RecordError;
  /** Processing attempts made, including the one that failed for good. */
  attempts: number;
  /** Publish without the value and the original headers: the full letter is larger than the error topic accepts. */
  truncated?: boolean;
}

/** Publishing failed; the records were not dead-lettered and their offsets must not move. */
export class DeadLetterPublishError extends Error {
  /** What the broker's refusal means: only `retriable` can succeed as it is (platform/kafka.ts). */
  readonly kafkaErrorClass: KafkaErrorClass;

  constructor(count: number, options: { cause: unknown }) {
    super(`could not publish ${count} dead letter(s): ${(options.cause as Error)?.message ?? options.cause}`, options);
    this.name = "DeadLetterPublishError";
    this.kafkaErrorClass = classifyKafkaError(options.cause);
  }
}

export interface DeadLetterPublisher {
  /**
   * Resolves only when the broker has acknowledged every record (acks=-1 through an idempotent
   * producer); throws DeadLetterPublishError otherwise. The letters of one call must come from one
   * input partition: they then go to one partition of the error topic (deadLetterPartitioner), as
   * one record batch that the broker takes or refuses whole.
   */
  publish(letters: readonly DeadLetter[]): Promise<void>;
}

/**
 * The error topic's partition of a dead letter: the original partition (modulo the error topic's
 * partitions), as Spring's DeadLetterPublishingRecoverer does. A publish then appends one record
 * batch to one partition, all or nothing. With the key's partition, one publish could span several
 * partitions; a refusal of one of them (too large) fails the whole request, kafkajs rewinds the
 * idempotent sequence of every partition in it, and the partitions the broker did append would
 * refuse every later send as out of order.
 */
export const deadLetterPartitioner: ICustomPartitioner =
  () =>
  ({ partitionMetadata, message }) => {
    const raw = message.headers?.[DLT_HEADERS.originalPartition];
    const original = Buffer.isBuffer(raw) && raw.length === 4 ? raw.readInt32BE(0) : 0;
    return Math.abs(original) % Math.max(1, partitionMetadata.length);
  };

export function createDeadLetterPublisher(
  producer: Producer,
  options: { topic: string; groupId: string; now?: () => Date },
): DeadLetterPublisher {
  const now = options.now ?? (() => new Date());
  return {
    async publish(letters) {
      if (letters.length === 0) return;
      const failedAt = now();
      try {
        await producer.send({
          topic: options.topic,
          acks: -1,
          messages: letters.map((letter) => ({
            key: letter.message.key,
            // Empty rather than null: a null value is a tombstone to compaction and to readers.
            value: letter.truncated ? Buffer.alloc(0) : letter.message.value,
            headers: deadLetterHeaders(letter, options.groupId, failedAt),
          })),
        });
      } catch (error) {
        throw new DeadLetterPublishError(letters.length, { cause: error });
      }
    },
  };
}

export function deadLetterHeaders(letter: DeadLetter, groupId: string, failedAt: Date): IHeaders {
  const { message, error } = letter;
  const headers: IHeaders = letter.truncated ? {} : { ...(message.headers ?? {}) };
  headers[DLT_HEADERS.originalTopic] = letter.topic;
  headers[DLT_HEADERS.originalPartition] = int32(letter.partition);
  headers[DLT_HEADERS.originalOffset] = int64(BigInt(message.offset));
  headers[DLT_HEADERS.originalTimestamp] = int64(BigInt(message.timestamp));
  headers[DLT_HEADERS.originalTimestampType] = timestampType(message);
  headers[DLT_HEADERS.originalConsumerGroup] = groupId;
  headers[DLT_HEADERS.exceptionFqcn] = error.code;
  headers[DLT_HEADERS.exceptionMessage] = error.message;
  const cause = error.cause as { name?: unknown } | undefined;
  if (typeof cause?.name === "string") headers[DLT_HEADERS.exceptionCauseFqcn] = cause.name;
  headers[DLT_HEADERS.attempts] = String(letter.attempts);
  headers[DLT_HEADERS.failedAt] = failedAt.toISOString();
  if (letter.truncated) {
    headers[DLT_HEADERS.truncated] = "true";
    headers[DLT_HEADERS.originalValueBytes] = String(message.value?.length ?? 0);
  }
  return headers;
}

/** The dead-letter headers of a record read back from the error topic, decoded. */
export interface DeadLetterInfo {
  originalTopic: string;
  originalPartition: number;
  originalOffset: bigint;
  originalTimestamp: bigint;
  originalTimestampType: string;
  originalConsumerGroup: string;
  code: string;
  message: string;
  causeName: string | undefined;
  attempts: number;
  failedAt: string;
  /** The value and the original headers were left out: fetch the original at its coordinates. */
  truncated: boolean;
  /** With truncated: the original value's size in bytes. */
  originalValueBytes: number | undefined;
}

export function parseDeadLetterHeaders(headers: IHeaders | undefined): DeadLetterInfo {
  const bytes = (name: string): Buffer => {
    const raw = headers?.[name];
    const value = Array.isArray(raw) ? raw.at(-1) : raw;
    if (value === undefined) throw new Error(`dead letter has no ${name} header`);
    return Buffer.isBuffer(value) ? value : Buffer.from(value);
  };
  const text = (name: string) => bytes(name).toString("utf8");
  return {
    originalTopic: text(DLT_HEADERS.originalTopic),
    originalPartition: bytes(DLT_HEADERS.originalPartition).readInt32BE(0),
    originalOffset: bytes(DLT_HEADERS.originalOffset).readBigInt64BE(0),
    originalTimestamp: bytes(DLT_HEADERS.originalTimestamp).readBigInt64BE(0),
    originalTimestampType: text(DLT_HEADERS.originalTimestampType),
    originalConsumerGroup: text(DLT_HEADERS.originalConsumerGroup),
    code: text(DLT_HEADERS.exceptionFqcn),
    message: text(DLT_HEADERS.exceptionMessage),
    causeName:
      headers?.[DLT_HEADERS.exceptionCauseFqcn] === undefined ? undefined : text(DLT_HEADERS.exceptionCauseFqcn),
    attempts: Number(text(DLT_HEADERS.attempts)),
    failedAt: text(DLT_HEADERS.failedAt),
    truncated: headers?.[DLT_HEADERS.truncated] !== undefined && text(DLT_HEADERS.truncated) === "true",
    originalValueBytes:
      headers?.[DLT_HEADERS.originalValueBytes] === undefined
        ? undefined
        : Number(text(DLT_HEADERS.originalValueBytes)),
  };
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function int64(value: bigint): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigInt64BE(value);
  return buffer;
}

/**
 * kafkajs does not type it, but keeps the record batch's attributes on each message: bit 3 set
 * means the broker stamped the time (LogAppendTime).
 */
function timestampType(message: KafkaMessage): string {
  const context = (message as { batchContext?: { timestampType?: number } }).batchContext;
  return context?.timestampType === 1 ? "LogAppendTime" : "CreateTime";
}
