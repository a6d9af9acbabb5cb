/**
 * Why a record can never be processed, whatever the retries. Codes are stable: they are the
 * `kafka_dlt-exception-fqcn` header of the dead letter, so tooling and alerts can match on them.
 */
export type RecordErrorCode =
  /** The record has no value (a tombstone). */
  | "empty_value"
  /** The value is larger than MAX_RECORD_BYTES, or the product's API request alone over a body limit. */
  | "record_too_large"
  /** The content-type header names a format we do not read. */
  | "unsupported_content_type"
  /** The value is not UTF-8 JSON, or not a JSON object. */
  | "invalid_json"
  /** The value is not a products.v1.ProductRegistration in protobuf binary. */
  | "invalid_protobuf"
  | "missing_field"
  /** A field has the wrong type or a value that cannot be represented. */
  | "invalid_field"
  /** The API rejected the product (its message names the fields). */
  | "invalid_argument";

export class RecordError extends Error {
  constructor(
    readonly code: RecordErrorCode,
    message: string,
    /** The first offending field, e.g. "price"; undefined when the record as a whole is bad. */
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RecordError";
  }
}
