import { expect } from "chai";
import { amountFromNumber, parseAmount } from "./decimal.js";

describe("money amounts", () => {
  it("keep 19.99 as 19.99 and drop superfluous zeros", () => {
    expect(parseAmount("19.99")).to.deep.equal({ ok: true, value: "19.99" });
    expect(parseAmount("100.0")).to.deep.equal({ ok: true, value: "100" });
    expect(parseAmount("007.5000")).to.deep.equal({ ok: true, value: "7.5" });
    expect(parseAmount("0")).to.deep.equal({ ok: true, value: "0" });
    expect(parseAmount("-0.00")).to.deep.equal({ ok: true, value: "0" });
  });

  it("accept the largest NUMERIC(15,4) value", () => {
    expect(parseAmount("99999999999.9999")).to.deep.equal({ ok: true, value: "99999999999.9999" });
  });

  it("reject negatives, more than 4 decimals, too many digits and non-plain notation", () => {
    expect(parseAmount("-1").ok).to.equal(false);
    expect(parseAmount("0.00001").ok).to.equal(false);
    expect(parseAmount("100000000000").ok).to.equal(false);
    for (const text of ["1e3", "", " 1", "1.", ".5", "NaN", "Infinity", "1,5", "0x10"]) {
      expect(parseAmount(text).ok, text).to.equal(false);
    }
  });

  it("read JSON numbers exactly through their shortest form", () => {
    expect(amountFromNumber(19.99)).to.deep.equal({ ok: true, value: "19.99" });
    expect(amountFromNumber(100.0)).to.deep.equal({ ok: true, value: "100" });
    expect(amountFromNumber(0.1 + 0.2).ok).to.equal(false); // 0.30000000000000004 has 17 decimals
    expect(amountFromNumber(1e21).ok).to.equal(false);
    expect(amountFromNumber(1e-7).ok).to.equal(false);
    expect(amountFromNumber(Number.NaN).ok).to.equal(false);
    expect(amountFromNumber(Number.POSITIVE_INFINITY).ok).to.equal(false);
  });

  it("explain why an amount is rejected", () => {
    expect(parseAmount("1.23456")).to.deep.equal({ ok: false, reason: "must have at most 4 decimal places" });
    expect(parseAmount("-5")).to.deep.equal({ ok: false, reason: "must not be negative" });
  });
});
