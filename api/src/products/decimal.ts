import { decimalText } from "#platform/decimal-text.js";

/**
 * Money amounts travel as decimal strings and are stored as NUMERIC(15,4), so "19.99" stays
 * "19.99". Fifteen significant digits is also what a JSON number holds exactly, which keeps the
 * REST body's numeric amount lossless.
 */
export const AMOUNT_MAX_SCALE = 4;
export const AMOUNT_MAX_PRECISION = 15;
const AMOUNT_MAX_INTEGER_DIGITS = AMOUNT_MAX_PRECISION - AMOUNT_MAX_SCALE;

const PLAIN_DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

export type ParsedAmount = { ok: true; value: string } | { ok: false; reason: string };

/** Validates a decimal string and returns its canonical form (no superfluous zeros). */
export function parseAmount(text: string): ParsedAmount {
  const match = PLAIN_DECIMAL.exec(text);
  if (!match) return { ok: false, reason: 'must be a decimal number in plain notation, e.g. "19.99"' };
  const [, sign, integerDigits = "", fractionDigits = ""] = match;
  const integer = integerDigits.replace(/^0+(?=\d)/, "");
  const fraction = fractionDigits.replace(/0+$/, "");
  const isZero = /^0*$/.test(integer + fraction);
  if (sign && !isZero) return { ok: false, reason: "must not be negative" };
  if (fraction.length > AMOUNT_MAX_SCALE) {
    return { ok: false, reason: `must have at most ${AMOUNT_MAX_SCALE} decimal places` };
  }
  if (integer.length > AMOUNT_MAX_INTEGER_DIGITS) {
    return { ok: false, reason: `must be less than 10^${AMOUNT_MAX_INTEGER_DIGITS}` };
  }
  return { ok: true, value: fraction ? `${integer}.${fraction}` : integer };
}

/**
 * Converts a JSON number to a decimal string. Number's shortest round-trip form is exact for
 * every amount we accept, so 19.99 becomes "19.99" and non-finite or huge values are rejected.
 */
export function amountFromNumber(value: number): ParsedAmount {
  if (!Number.isFinite(value)) return { ok: false, reason: "must be a finite number" };
  const text = decimalText(value);
  if (text === undefined) {
    return Math.abs(value) < 1
      ? { ok: false, reason: `must have at most ${AMOUNT_MAX_SCALE} decimal places` }
      : { ok: false, reason: `must be less than 10^${AMOUNT_MAX_INTEGER_DIGITS}` };
  }
  return parseAmount(text);
}
