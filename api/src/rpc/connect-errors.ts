import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "#gen/google/rpc/error_details_pb.js";
import { ApiError, asApiError, type ErrorCode } from "../errors.js";

const CODES: Record<ErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  unauthenticated: Code.Unauthenticated,
  unavailable: Code.Unavailable,
  resource_exhausted: Code.ResourceExhausted,
  deadline_exceeded: Code.DeadlineExceeded,
  canceled: Code.Canceled,
  internal: Code.Internal,
};

/**
 * The one place where API errors become Connect errors. Field violations travel as a standard
 * google.rpc.BadRequest detail, which grpcurl, buf curl and gRPC clients in any language decode.
 */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  // Work skipped because its call ended answers with why the call ended (canceled, deadline_exceeded).
  if (error instanceof ApiError && error.code === "canceled" && error.cause instanceof ConnectError) return error.cause;
  const apiError: ApiError = asApiError(error);
  const details =
    apiError.violations.length > 0
      ? [{ desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [...apiError.violations] }) }]
      : [];
  return new ConnectError(apiError.message, CODES[apiError.code], undefined, details, apiError.cause);
}
