import { create, toBinary } from "@bufbuild/protobuf";
import type { IHeaders } from "kafkajs";
import { ProductRegistrationSchema } from "#gen/products/v1/events_pb.js";
import type { RegistrationJson } from "../scheduler/src/message.js";

/**
 * A product registration as the original project's producer sent it: the scheduler's input
 * contract, with `price` a JSON number (at most two decimals when generated here).
 */
export type SeedProduct = RegistrationJson & { price: number };

/**
 * The seed's sample message byte for byte, as produce_message.py sent it. Kept as text because
 * JSON.stringify would print the price as `100`, not `100.0`.
 */
export const SEED_MESSAGE_JSON =
  '{"productId":"12345","productName":"Nome do Produto","productDescription":"Descrição do Produto","price":100.0,"currency":"BRL","stockQuantity":50,"category":"Categoria do Produto"}';

export const SEED_PRODUCT: SeedProduct = JSON.parse(SEED_MESSAGE_JSON) as SeedProduct;

export const MESSAGE_FORMATS = ["json", "protobuf"] as const;
export type MessageFormat = (typeof MESSAGE_FORMATS)[number];

/** Headers of a protobuf registration: the scheduler reads content-type, tools read message-type. */
export const PROTOBUF_HEADERS: IHeaders = {
  "content-type": "application/x-protobuf",
  "message-type": ProductRegistrationSchema.typeName,
};

/** A small deterministic generator (mulberry32): the same seed gives the same products. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const ITEMS = [
  ["Camiseta", "Vestuário"],
  ["Calça Jeans", "Vestuário"],
  ["Jaqueta Corta-Vento", "Vestuário"],
  ["Tênis de Corrida", "Calçados"],
  ["Sandália", "Calçados"],
  ["Caneca de Cerâmica", "Casa e Cozinha"],
  ["Garrafa Térmica", "Casa e Cozinha"],
  ["Panela de Pressão", "Casa e Cozinha"],
  ["Jogo de Toalhas", "Casa e Cozinha"],
  ["Luminária de Mesa", "Casa e Decoração"],
  ["Almofada", "Casa e Decoração"],
  ["Fone de Ouvido Bluetooth", "Eletrônicos"],
  ["Carregador Portátil", "Eletrônicos"],
  ["Teclado Mecânico", "Informática"],
  ["Mouse sem Fio", "Informática"],
  ["Mochila Executiva", "Acessórios"],
  ["Relógio Analógico", "Acessórios"],
  ["Bola de Futebol", "Esporte e Lazer"],
  ["Tapete de Yoga", "Esporte e Lazer"],
  ["Caderno Universitário", "Papelaria"],
  ["Quebra-Cabeça 1000 Peças", "Brinquedos"],
  ["Livro de Receitas", "Livros"],
] as const;
const QUALITIES = ["Azul", "Verde", "Cinza", "Bege", "Vinho", "Rosa", "Premium", "Básico", "Slim", "Compacto"];
const DETAILS = [
  "ideal para o dia a dia",
  "garantia de 12 meses",
  "produto nacional",
  "acabamento de alta qualidade",
  "leve e resistente",
  "edição limitada",
];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

/**
 * The product number `index` of a run: ids `${idPrefix}-${index}` are distinct within the run,
 * names are realistic Portuguese, prices have at most two decimals (whole cents divided by 100
 * print as such).
 */
export function generateProduct(index: number, options: { idPrefix: string; random: () => number }): SeedProduct {
  const { idPrefix, random } = options;
  const [item, category] = pick(random, ITEMS);
  const name = `${item} ${pick(random, QUALITIES)}`;
  return {
    productId: `${idPrefix}-${index}`,
    productName: name,
    productDescription: `${name}, ${pick(random, DETAILS)}`,
    price: randomPrice(random),
    currency: "BRL",
    stockQuantity: Math.floor(random() * 500),
    category,
  };
}

function randomPrice(random: () => number): number {
  return Math.round(490 + random() * 299_510) / 100;
}

/** The same product with a new stock level and, half the time, a new price: a real state change. */
export function updateOf(product: SeedProduct, random: () => number): SeedProduct {
  const stockQuantity = (product.stockQuantity + 1 + Math.floor(random() * 50)) % 1000;
  const price = random() < 0.5 ? product.price : randomPrice(random);
  return { ...product, stockQuantity, price };
}

/**
 * A JSON number as the decimal text the scheduler would derive from it (its shortest round-trip
 * form); strings pass through, so a file may give prices either way.
 */
export function priceText(price: number | string): string {
  return typeof price === "string" ? price : String(price);
}

/** The value of a protobuf record: products.v1.ProductRegistration with the price as decimal text. */
export function toProtobufValue(product: Omit<SeedProduct, "price"> & { price: number | string }): Buffer {
  return Buffer.from(
    toBinary(
      ProductRegistrationSchema,
      create(ProductRegistrationSchema, { ...product, price: priceText(product.price) }),
    ),
  );
}
