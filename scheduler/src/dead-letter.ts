import type { IHeaders, KafkaMessage, Producer } from "kafkajs";
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
 *
 * Binary numbers are not readable in kcat or a UI at a glance; use parseDeadLetterHeaders (or any
 * Spring consumer) to decode them. The original record's own headers are kept (content-type tells a
 * reader how to decode the value), and its key and value bytes are copied unchanged.
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
} as const;

/** A record given up on, with where it came from and why. */
export interface DeadLetter {
  topic: string;
  partition: number;
  message: KafkaMessage;
  error: RecordError;
  /** Processing attempts made, including the one that failed for good. */
  attempts: number;
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
   * producer); throws DeadLetterPublishError otherwise.
   */
  publish(letters: readonly DeadLetter[]): Promise<void>;
}

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
            value: letter.message.value,
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
  const headers: IHeaders = { ...(message.headers ?? {}) };
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
