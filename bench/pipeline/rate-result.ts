import { perSecond } from "../shared/stats.js";
import type { CpuUse } from "./cpu-window.js";

/** A throughput phase: how many messages in how long, and the CPU it took. */
export interface RateResult {
  messages: number;
  seconds: number;
  perSecond: number;
  cpu?: CpuUse | undefined;
}

export function rateResult(messages: number, seconds: number, cpu?: CpuUse): RateResult {
  return { messages, seconds, perSecond: perSecond(messages, seconds), ...(cpu === undefined ? {} : { cpu }) };
}
