import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { BadRequestSchema } from "#gen/google/rpc/error_details_pb.js";

/** The REST error body: {"error":"invalid_argument","message":"…","details":[{"field","description"}]}. */
export interface ErrorJson {
  /** The Connect code name, e.g. "not_found"; "internal" for every 500. */
  error: string;
  message: string;
  /** The field violations of a google.rpc.BadRequest detail, if the error has one. */
  details?: { field: string; description: string }[];
}

/** What a REST response to an error carries. */
export interface HttpError {
  status: number;
  body: ErrorJson;
}

/** The HTTP status of each Connect code, as the Connect protocol specifies it. */
const HTTP_STATUS: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

/**
 * The one place where errors become REST responses. Anything that is not a ConnectError is an
 * internal error; a 500 never carries its message, which may hold internals (the cause is for logs).
 */
export function toHttpError(error: unknown): HttpError {
  const connectError =
    error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, [], error);
  const status = HTTP_STATUS[connectError.code] ?? 500;
  if (status === 500) return { status, body: { error: "internal", message: "internal error" } };
  const details = connectError
    .findDetails(BadRequestSchema)
    .flatMap((d) => d.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
  return {
    status,
    body: {
      error: codeToString(connectError.code),
      message: connectError.rawMessage,
      ...(details.length > 0 ? { details } : {}),
    },
  };
}
