/**
 * The errors the API can answer with. Codes are Connect/gRPC code names; each edge (REST, RPC) maps
 * them in one place. The cause is for logs only and never reaches a client.
 */
export type ErrorCode =
  | "invalid_argument"
  | "not_found"
  | "unauthenticated"
  | "unavailable"
  | "resource_exhausted"
  | "deadline_exceeded"
  /** The caller went away (client closed, deadline passed) before the work ran; nothing was done. */
  | "canceled"
  | "internal";

export interface FieldViolation {
  /** Path of the field, e.g. "pricing.currency". */
  field: string;
  description: string;
}

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly violations: readonly FieldViolation[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ApiError";
  }
}

/**
 * `subject` names what was invalid: "product" for a product's fields (and a product body), "request"
 * for everything else a call carries (page_size, page_token, id, the batch itself).
 */
export function invalidArgument(
  violations: readonly FieldViolation[],
  subject: "product" | "request" = "product",
): ApiError {
  return new ApiError("invalid_argument", invalidArgumentMessage(subject, violations), violations);
}

/**
 * "invalid <subject>: <field>: <description>; …", the one wording of every invalid_argument, so
 * that errors raised at the HTTP edge read like the use cases' own.
 */
export function invalidArgumentMessage(subject: string, violations: readonly FieldViolation[]): string {
  return `invalid ${subject}: ${violations.map((v) => `${v.field}: ${v.description}`).join("; ")}`;
}

/** Turns anything thrown into an ApiError; unknown errors become a bare "internal". */
export function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return new ApiError("internal", "internal error", [], { cause: error });
}
