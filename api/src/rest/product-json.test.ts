import { expect } from "chai";
import { seedProductJson } from "../../../test/support/seed.js";
import { validateProduct } from "../products/validation.js";
import { productFromJson, productToJson } from "./product-json.js";

describe("REST product JSON", () => {
  it("maps the original project's body to a Product and back", () => {
    const parsed = productFromJson(seedProductJson());
    expect(parsed.violations).to.deep.equal([]);
    const checked = validateProduct(parsed.product);
    expect(checked.ok).to.equal(true);
    if (!checked.ok) return;
    const json = productToJson(checked.product);
    expect(json).to.deep.include({
      id: "12345",
      name: "Nome do Produto",
      description: "Descrição do Produto",
      pricing: { amount: 100, currency: "BRL" },
      availability: { quantity: 50, timestamp: "2024-06-29T00:30:03.254878Z" },
      category: "Categoria do Produto",
    });
  });

  it("accepts the amount as a decimal string and keeps it exact", () => {
    const parsed = productFromJson(seedProductJson({ pricing: { amount: "19.99", currency: "BRL" } }));
    expect(parsed.product.pricing?.amount).to.equal("19.99");
    expect(JSON.stringify(productToJson(parsed.product).pricing)).to.equal('{"amount":19.99,"currency":"BRL"}');
  });

  it("names each field of the wrong JSON type", () => {
    const parsed = productFromJson({
      id: 12345,
      name: ["x"],
      pricing: { amount: true, currency: 1 },
      availability: { quantity: "50", timestamp: 1719621003 },
    });
    expect(parsed.violations.map((v) => v.field)).to.have.members([
      "id",
      "name",
      "pricing.amount",
      "pricing.currency",
      "availability.quantity",
      "availability.timestamp",
    ]);
  });

  it("rejects a body that is not an object, fractional quantities and unreadable timestamps", () => {
    expect(productFromJson([1, 2]).violations).to.deep.equal([{ field: "body", description: "must be a JSON object" }]);
    expect(productFromJson("text").violations[0]?.field).to.equal("body");
    const parsed = productFromJson(seedProductJson({ availability: { quantity: 1.5, timestamp: "29/06/2024" } }));
    expect(parsed.violations.map((v) => v.field)).to.deep.equal(["availability.quantity", "availability.timestamp"]);
  });
});
