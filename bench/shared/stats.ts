/** Samples in ascending order, as percentile() expects them. */
export function ascending(samples: Iterable<number>): Float64Array {
  return Float64Array.from(samples).sort();
}

/** The nearest-rank q-quantile (0 < q ≤ 1) of ascending samples; 0 when there are none. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

export function mean(samples: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] ?? 0;
  return samples.length > 0 ? sum / samples.length : 0;
}

/** count / seconds, and 0 for an empty window rather than Infinity or NaN. */
export function perSecond(count: number, seconds: number): number {
  return seconds > 0 ? count / seconds : 0;
}
