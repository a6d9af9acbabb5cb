/** A number for a summary line: `na` when it could not be measured (no /proc), so that no field goes missing. */
export function field(value: number | undefined, digits = 0): string {
  return value === undefined || !Number.isFinite(value) ? "na" : value.toFixed(digits);
}

/** `bench:<name> key=value …`: one line, space-separated, no spaces inside values, for scripts. */
export function summaryLine(bench: string, fields: readonly (readonly [string, string | number])[]): string {
  return [`bench:${bench}`, ...fields.map(([key, value]) => `${key}=${value}`)].join(" ");
}
