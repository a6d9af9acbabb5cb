import { SEED_PRODUCT } from "../../scripts/seed-messages.js";

/** The seed producer's JSON message, with field overrides (undefined removes the field). */
export function seedMessage(overrides: Record<string, unknown> = {}): string {
  const json: Record<string, unknown> = { ...SEED_PRODUCT };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete json[name];
    else json[name] = value;
  }
  return JSON.stringify(json);
}

/** The original project's REST body, as its producer sent it. */
export function seedProductJson(overrides: Record<string, unknown> = {}) {
  return {
    id: "12345",
    name: "Nome do Produto",
    description: "Descrição do Produto",
    pricing: { amount: 100.0, currency: "BRL" },
    availability: { quantity: 50, timestamp: "2024-06-29T00:30:03.254878" },
    category: "Categoria do Produto",
    ...overrides,
  };
}
