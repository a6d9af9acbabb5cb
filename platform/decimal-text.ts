/**
 * A JSON number as the decimal its producer wrote. A double's shortest round-trip text (String(n))
 * is exactly that decimal for up to 15 significant digits — the most a price holds — so 19.99
 * gives "19.99", never 19.989999…. Undefined when JavaScript would write it with an exponent
 * (too large or too small for a price); the caller says which rule that breaks.
 */
export function decimalText(value: number): string | undefined {
  const text = String(value);
  return /e/i.test(text) ? undefined : text;
}
