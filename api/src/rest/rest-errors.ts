import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { BadRequestSchema } from "#gen/google/rpc/error_details_pb.js";
import type { FieldViolation } from "../errors.js";
import { toConnectError } from "../rpc/connect-errors.js";

/** The REST error body: {"error":"invalid_argument","message":"…","details":[{"field","description"}]}. */
export interface ErrorJson {
  error: string;
  message: string;
  details?: FieldViolation[];
}

const HTTP_STATUS: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.NotFound]: 404,
  [Code.ResourceExhausted]: 413,
  [Code.Unavailable]: 503,
  [Code.DeadlineExceeded]: 504,
  [Code.Unimplemented]: 501,
};

/** The one place where errors become REST responses; internal causes are never included. */
export function toRestError(error: unknown): { status: number; body: ErrorJson } {
  const connectError = error instanceof ConnectError ? error : toConnectError(error);
  const status = HTTP_STATUS[connectError.code] ?? 500;
  const details = connectError
    .findDetails(BadRequestSchema)
    .flatMap((d) => d.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
  return {
    status,
    body: {
      error: status === 500 ? "internal" : codeToString(connectError.code),
      message: status === 500 ? "internal error" : connectError.rawMessage,
      ...(details.length > 0 ? { details } : {}),
    },
  };
}
