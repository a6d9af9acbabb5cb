import type { createEnvReader } from "./env.js";

/**
 * The limits of the products.v1.ProductService contract, in one place for its server (the API)
 * and its client (the scheduler). The ones an operator may change are read from the same variable
 * by both services, so a deployment that sets it once for both never disagrees with itself; each
 * service's config loader then rejects settings that could not work together at startup.
 */
export const CONTRACT_LIMITS = {
  /** Items in one BatchCreateProducts call: fixed, part of the contract. */
  maxBatchItems: 1000,
  /** MAX_BODY_BYTES: the largest request body the API accepts, REST and RPC alike. */
  maxBodyBytes: { variable: "MAX_BODY_BYTES", default: 1024 * 1024, min: 1024, max: 64 * 1024 * 1024 },
  /** MAX_RPC_DEADLINE_MS: the longest deadline an RPC client may ask for, and that of unary RPCs asking none. */
  maxRpcDeadlineMs: { variable: "MAX_RPC_DEADLINE_MS", default: 30_000, min: 100, max: 600_000 },
} as const;

type EnvReader = ReturnType<typeof createEnvReader>;

/** The contract limits as this deployment sets them, read with the caller's env reader. */
export function readContractLimits(read: EnvReader): { maxBodyBytes: number; maxRpcDeadlineMs: number } {
  const { maxBodyBytes, maxRpcDeadlineMs } = CONTRACT_LIMITS;
  return {
    maxBodyBytes: read.int(maxBodyBytes.variable, maxBodyBytes.default, maxBodyBytes.min, maxBodyBytes.max),
    maxRpcDeadlineMs: read.int(
      maxRpcDeadlineMs.variable,
      maxRpcDeadlineMs.default,
      maxRpcDeadlineMs.min,
      maxRpcDeadlineMs.max,
    ),
  };
}
