import { CompressionTypes, type Message, type Producer } from "kafkajs";
import {
  createRandom,
  generateProduct,
  PROTOBUF_HEADERS,
  type SeedProduct,
  toProtobufValue,
  updateOf,
} from "../../scripts/seed-messages.js";
import type { Content, RecordSpec } from "./checker.js";

/** The header that ties a record on any topic (input, dead letters) to its spec. */
export const MARKER_HEADER = "x-fault-record";

/**
 * The bad records of the workload, each with the dead-letter code (kafka_dlt-exception-fqcn) the
 * scheduler must give it. Keyed by a product id of the workload, like the valid records around them.
 */
export const BAD_KINDS = {
  "random-bytes": "invalid_json",
  "not-json": "invalid_json",
  "json-array": "invalid_json",
  "invalid-utf8": "invalid_json",
  "wrong-types": "invalid_field",
  "missing-fields": "missing_field",
  "over-size": "record_too_large",
  "protobuf-garbage": "invalid_protobuf",
  "protobuf-missing-id": "missing_field",
  "unknown-content-type": "unsupported_content_type",
  "empty-value": "empty_value",
  "api-invalid": "invalid_argument",
  "future-timestamp": "invalid_argument",
  "over-size-compressed": "record_too_large",
} as const;
export type BadKind = keyof typeof BAD_KINDS;

/** Kinds that go, one each, in every group of ids; over-size-compressed needs a request of its own. */
const ROTATING_KINDS = (Object.keys(BAD_KINDS) as BadKind[]).filter((kind) => kind !== "over-size-compressed");

/** How far ahead a future-dated update is: well past MAX_CLOCK_SKEW_MS (5 min), under the broker's 1 h limit. */
export const FUTURE_MS = 30 * 60_000;
/** How far back a stale update is. */
export const STALE_MS = 60_000;

const UPDATES_PER_ID = 4;
const IDS_PER_GROUP = 5;

/** A record to produce; its timestamp is set at send time (`timestampDelta` from then), or by kafkajs. */
export interface PlannedMessage {
  spec: RecordSpec;
  message: Omit<Message, "timestamp">;
  /** Undefined: kafkajs stamps the request with one Date.now(), as for any producer that sets none. */
  timestampDelta?: number;
  /** Whether it changes its product when processed once, in order (so makes one event). */
  changes: boolean;
}

type UnmarkedSpec =
  | Omit<Extract<RecordSpec, { valid: true }>, "marker">
  | Omit<Extract<RecordSpec, { valid: false }>, "marker">;

/** One produce request. */
export interface ProduceBatch {
  messages: PlannedMessage[];
  compressed?: boolean;
}

export interface Workload {
  batches: ProduceBatch[];
  /** By marker. */
  specs: Map<string, RecordSpec>;
  /** Batches [0, bulkBatches) are sent at once; the rest at a steady rate. */
  bulkBatches: number;
  records: number;
}

export interface WorkloadOptions {
  /** Product ids (each gets 4 updates, some also a stale update, a duplicate or a bad record). */
  ids: number;
  idPrefix: string;
  /** Share of the batches sent at once before the steady phase. */
  bulkShare: number;
  /** Add a compressed record that decompresses past the broker's message limit (its dead letter is too large as it is). */
  compressedOverSize: boolean;
  seed?: number;
}

export function contentOf(product: SeedProduct): Content {
  return {
    name: product.productName,
    description: product.productDescription,
    price: String(product.price),
    currency: product.currency,
    quantity: product.stockQuantity,
    category: product.category,
  };
}

/**
 * Groups of 5 ids, one produce request each, cycling through four timestamp patterns: tied by
 * kafkajs (no timestamps), explicit and equal, increasing by 1 ms, and equal followed by a stale
 * update and an exact duplicate. Every group also carries one bad record of the next kind.
 */
export function generateWorkload(options: WorkloadOptions): Workload {
  const random = createRandom(options.seed ?? 0xfa17);
  const specs = new Map<string, RecordSpec>();
  const batches: ProduceBatch[] = [];
  let next = 0;
  const plan = (spec: UnmarkedSpec, message: Omit<Message, "timestamp">, timestampDelta?: number, changes = false) => {
    const marker = String(next++);
    const full = { ...spec, marker } as RecordSpec;
    specs.set(marker, full);
    const headers = { ...(message.headers ?? {}), [MARKER_HEADER]: marker };
    const planned: PlannedMessage = { spec: full, message: { ...message, headers }, changes };
    if (timestampDelta !== undefined) planned.timestampDelta = timestampDelta;
    return planned;
  };
  const valid = (product: SeedProduct, timestampDelta: number | undefined, changes: boolean, protobuf = false) =>
    plan(
      { id: product.productId, valid: true, content: contentOf(product) },
      protobuf
        ? { key: product.productId, value: toProtobufValue(product), headers: { ...PROTOBUF_HEADERS } }
        : { key: product.productId, value: JSON.stringify(product) },
      timestampDelta,
      changes,
    );

  let badIndex = 0;
  for (let first = 0, group = 0; first < options.ids; first += IDS_PER_GROUP, group++) {
    const pattern = group % 4;
    const messages: PlannedMessage[] = [];
    const groupIds: SeedProduct[] = [];
    for (let index = first; index < Math.min(first + IDS_PER_GROUP, options.ids); index++) {
      let product = generateProduct(index, { idPrefix: options.idPrefix, random });
      groupIds.push(product);
      for (let update = 0; update < UPDATES_PER_ID; update++) {
        if (update > 0) product = updateOf(product, random);
        const delta = pattern === 0 ? undefined : pattern === 2 ? update : 0;
        messages.push(valid(product, delta, true, pattern === 2 && update === 1));
      }
      if (pattern === 3) {
        messages.push(valid(updateOf(product, random), -STALE_MS, false));
        messages.push(valid(product, 0, false));
      }
    }
    const target = groupIds[0] as SeedProduct;
    const kind = ROTATING_KINDS[badIndex++ % ROTATING_KINDS.length] as BadKind;
    const bad = badRecord(kind, target, random);
    messages.splice(
      Math.floor(messages.length / 2),
      0,
      plan(
        { id: target.productId, valid: false, kind, expectedCode: BAD_KINDS[kind] },
        bad.message,
        bad.timestampDelta,
      ),
    );
    batches.push({ messages });
  }
  let bulkBatches = Math.max(1, Math.round(batches.length * options.bulkShare));
  if (options.compressedOverSize && batches.length > 0) {
    const target = batches[0]?.messages[0]?.spec.id ?? `${options.idPrefix}-0`;
    const product = { ...generateProduct(0, { idPrefix: options.idPrefix, random }), productId: target };
    const kind: BadKind = "over-size-compressed";
    const message = { key: target, value: JSON.stringify({ ...product, productDescription: "a".repeat(1_500_000) }) };
    const planned = plan({ id: target, valid: false, kind, expectedCode: BAD_KINDS[kind] }, message);
    // In the bulk phase, so that a partition it stalls stalls the whole run.
    batches.splice(Math.min(1, bulkBatches), 0, { messages: [planned], compressed: true });
    bulkBatches++;
  }
  return { batches, specs, bulkBatches, records: next };
}

function badRecord(
  kind: BadKind,
  product: SeedProduct,
  random: () => number,
): { message: Omit<Message, "timestamp">; timestampDelta?: number } {
  const key = product.productId;
  const json = (value: unknown) => ({ key, value: JSON.stringify(value) });
  switch (kind) {
    case "random-bytes": {
      const bytes = Buffer.alloc(48);
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
      bytes[0] = 0xff; // never UTF-8, so never JSON by chance
      return { message: { key, value: bytes } };
    }
    case "not-json":
      return { message: { key, value: "{productId: not json" } };
    case "json-array":
      return { message: json([product]) };
    case "invalid-utf8": {
      const [head, tail] = JSON.stringify({ ...product, productName: "@@" }).split("@@") as [string, string];
      return {
        message: { key, value: Buffer.concat([Buffer.from(head), Buffer.from([0xc3, 0x28]), Buffer.from(tail)]) },
      };
    }
    case "wrong-types":
      return { message: json({ ...product, price: true, stockQuantity: "12" }) };
    case "missing-fields": {
      const { productName: _name, price: _price, ...rest } = product;
      return { message: json(rest) };
    }
    case "over-size":
      return { message: json({ ...product, productDescription: "x".repeat(200_000) }) };
    case "protobuf-garbage":
      return {
        message: {
          key,
          value: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
          headers: { ...PROTOBUF_HEADERS },
        },
      };
    case "protobuf-missing-id":
      return {
        message: { key, value: toProtobufValue({ ...product, productId: "" }), headers: { ...PROTOBUF_HEADERS } },
      };
    case "unknown-content-type":
      return {
        message: { key, value: `${product.productId},${product.price}`, headers: { "content-type": "text/csv" } },
      };
    case "empty-value":
      return { message: { key, value: null } };
    case "api-invalid":
      return { message: json({ ...product, currency: "brl" }) };
    case "future-timestamp":
      return { message: json(updateOf(product, random)), timestampDelta: FUTURE_MS };
    case "over-size-compressed":
      throw new Error("over-size-compressed goes in a request of its own");
  }
}

/** The request as sent now: explicit timestamps are relative to this moment. */
export function toMessages(batch: ProduceBatch, now = Date.now()): Message[] {
  return batch.messages.map(({ message, timestampDelta }) =>
    timestampDelta === undefined ? { ...message } : { ...message, timestamp: String(now + timestampDelta) },
  );
}

export interface SendProgress {
  /** Records acknowledged so far (a resent request counts once). */
  sent: number;
  /** Requests sent again after a failure (the broker was down): their records may be in the topic twice. */
  resends: number;
}

/**
 * Sends the batches in order, each as one acks=-1 request, retrying a failed request until it is
 * acknowledged (the broker may be down for a while) or `signal` aborts. `pace` is the wait before
 * each request, for the steady phase.
 */
export async function sendBatches(
  producer: Producer,
  topic: string,
  batches: readonly ProduceBatch[],
  progress: SendProgress,
  options: { signal: AbortSignal; pace?: () => Promise<void> },
): Promise<void> {
  for (const batch of batches) {
    await options.pace?.();
    for (let attempt = 1; ; attempt++) {
      if (options.signal.aborted) return;
      try {
        await producer.send({
          topic,
          acks: -1,
          messages: toMessages(batch),
          ...(batch.compressed ? { compression: CompressionTypes.GZIP } : {}),
        });
        break;
      } catch {
        progress.resends++;
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 200 * attempt)));
      }
    }
    progress.sent += batch.messages.length;
  }
}

/**
 * A 4,000-character description (the API's longest) of accented letters, about 7,200 UTF-8 bytes:
 * a relay batch of them is larger than the broker's default message limit.
 */
export function longAccentedDescription(seed: number): string {
  const letters = "áâãàçéêíóôõúÁÂÃÇÉÊÍÓÔÕÚ";
  let text = `#${seed} `;
  for (let i = 0; text.length < 4000; i++) {
    text += letters[(seed * 7 + i * 5) % letters.length];
    if (i % 7 === 6) text += " ";
  }
  return text.slice(0, 4000);
}
