import {
  create,
  type DescField,
  type DescMessage,
  fromJson,
  type JsonObject,
  type JsonValue,
  type Message,
  type MessageShape,
  toJson,
} from "@bufbuild/protobuf";
import type { FieldViolation } from "../errors.js";

/**
 * The REST JSON of one message type, for when its protobuf JSON is not what clients of the REST API
 * send and expect (another field naming, decimals as numbers, lenient input).
 */
export interface HttpJsonCodec<Desc extends DescMessage = DescMessage> {
  /** The message type this codec reads and writes. */
  readonly message: Desc;
  /** What the message is, in the "invalid <subject>: …" errors about it, e.g. "product". */
  readonly subject: string;
  toJson(message: MessageShape<Desc>): JsonValue;
  /** Reads what it can; fields of the wrong JSON type are reported as violations, never thrown. */
  fromJson(json: unknown): { message: MessageShape<Desc>; violations: FieldViolation[] };
}

/** Reads and writes messages as REST JSON: see createHttpJson. */
export interface HttpJson {
  write(desc: DescMessage, message: Message): JsonValue;
  /** The JSON of one field of the message, or undefined when it is an unset message field. */
  writeField(field: DescField, message: Message): JsonValue | undefined;
  read(desc: DescMessage, json: unknown): { message: Message; violations: FieldViolation[] };
  /** Reads `json` as the value of the field and sets it on the message. */
  readField(field: DescField, message: Message, json: unknown): FieldViolation[];
  /** The codec's subject for a message type that has a codec. */
  subjectOf(desc: DescMessage): string | undefined;
}

/** Proto field names, as REST APIs commonly use, and every field, so that clients see each key. */
const WRITE = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

type Fields = Record<string, unknown>;

/**
 * Message JSON for REST: types with a codec go through it, wherever they are nested; everything else
 * is protobuf JSON (proto field names, implicit fields emitted). Messages without a codec inside are
 * handed to protobuf-es whole, so only the paths that lead to a codec are walked here.
 */
export function createHttpJson(codecs: readonly HttpJsonCodec[]): HttpJson {
  const byType = new Map(codecs.map((codec) => [codec.message.typeName, codec]));
  const walkedFields = new Map<string, DescField[]>();

  /** The fields whose values (or their insides) need a codec. */
  const codecFields = (desc: DescMessage): DescField[] => {
    let fields = walkedFields.get(desc.typeName);
    if (!fields) {
      fields = desc.fields.filter((field) => {
        const message = messageOf(field);
        return message !== undefined && (byType.has(message.typeName) || reachesCodec(message));
      });
      walkedFields.set(desc.typeName, fields);
    }
    return fields;
  };

  /** Whether a codec'd type is reachable from the message's fields, without looking inside codec'd types. */
  const reachesCodec = (root: DescMessage): boolean => {
    const seen = new Set<string>([root.typeName]);
    const pending = [root];
    for (let desc = pending.pop(); desc; desc = pending.pop()) {
      for (const field of desc.fields) {
        const message = messageOf(field);
        if (!message || seen.has(message.typeName)) continue;
        if (byType.has(message.typeName)) return true;
        seen.add(message.typeName);
        pending.push(message);
      }
    }
    return false;
  };

  const write = (desc: DescMessage, message: Message): JsonValue => {
    const codec = byType.get(desc.typeName);
    if (codec) return codec.toJson(message);
    const walked = codecFields(desc);
    if (walked.length === 0) return toJson(desc, message, WRITE);
    const rest: Fields = { ...message };
    for (const field of walked) clearOn(rest, field);
    const plain = toJson(desc, rest as Message, WRITE) as JsonObject;
    // Rebuilt in field order, as protobuf JSON would write it.
    const json: JsonObject = {};
    for (const field of desc.fields) {
      const value = walked.includes(field) ? writeValue(field, fieldValue(message, field)) : plain[field.name];
      if (value !== undefined) json[field.name] = value;
    }
    return json;
  };

  const writeValue = (field: DescField, value: unknown): JsonValue | undefined => {
    const message = messageOf(field);
    if (value === undefined || !message) return undefined;
    if (field.fieldKind === "list") return (value as Message[]).map((item) => write(message, item));
    if (field.fieldKind === "map") {
      return Object.fromEntries(Object.entries(value as Fields).map(([k, v]) => [k, write(message, v as Message)]));
    }
    return write(message, value as Message);
  };

  const read = (desc: DescMessage, json: unknown, path: string): { message: Message; violations: FieldViolation[] } => {
    const codec = byType.get(desc.typeName);
    if (codec) {
      const parsed = codec.fromJson(json);
      return { message: parsed.message, violations: prefixed(path, parsed.violations) };
    }
    const walked = codecFields(desc);
    if (walked.length === 0) return readPlain(desc, json, path);
    if (!isObject(json)) {
      return { message: create(desc), violations: [{ field: path || "body", description: "must be a JSON object" }] };
    }
    const plain: Fields = {};
    const inner: [DescField, unknown][] = [];
    for (const [key, value] of Object.entries(json)) {
      const field = walked.find((f) => f.name === key || f.jsonName === key);
      if (field) inner.push([field, value]);
      else plain[key] = value;
    }
    const result = readPlain(desc, plain, path);
    for (const [field, value] of inner) {
      // null is the default value in protobuf JSON.
      if (value === null) continue;
      result.violations.push(...readInto(field, result.message, value, join(path, field.name)));
    }
    return result;
  };

  /** Reads the value of a field, reporting violations at `path` (relative to the body). */
  const readInto = (field: DescField, target: Message, json: unknown, path: string): FieldViolation[] => {
    const message = messageOf(field);
    if (!message) {
      const parsed = readPlain(field.parent, { [field.name]: json ?? null }, path);
      setFieldValue(target, field, fieldValue(parsed.message, field));
      return parsed.violations;
    }
    const rival = field.oneof ? selectedCase(target, field.oneof.localName) : undefined;
    if (rival !== undefined && rival !== field.localName) {
      return [{ field: path, description: `cannot be set together with ${rival} (oneof ${field.oneof?.name})` }];
    }
    const violations: FieldViolation[] = [];
    const readItem = (item: unknown, itemPath: string): Message => {
      const parsed = read(message, item, itemPath);
      violations.push(...parsed.violations);
      return parsed.message;
    };
    if (field.fieldKind === "list") {
      if (!Array.isArray(json)) return [{ field: path || "body", description: "must be an array" }];
      setFieldValue(
        target,
        field,
        json.map((item, i) => readItem(item, `${path}[${i}]`)),
      );
    } else if (field.fieldKind === "map") {
      if (!isObject(json)) return [{ field: path || "body", description: "must be a JSON object" }];
      setFieldValue(
        target,
        field,
        Object.fromEntries(Object.entries(json).map(([key, item]) => [key, readItem(item, join(path, key))])),
      );
    } else {
      setFieldValue(target, field, readItem(json, path));
    }
    return violations;
  };

  return {
    write,
    writeField(field, message) {
      if (codecFields(field.parent).includes(field)) return writeValue(field, fieldValue(message, field));
      return (write(field.parent, message) as JsonObject)[field.name];
    },
    read: (desc, json) => read(desc, json, ""),
    // The body itself, null or not, goes to the codec: it may have its own answer for a missing body.
    readField: (field, message, json) => readInto(field, message, json, ""),
    subjectOf: (desc) => byType.get(desc.typeName)?.subject,
  };
}

/** protobuf-es's reader, with its error as a violation of the field at `path` (or of the body). */
function readPlain(desc: DescMessage, json: unknown, path: string): { message: Message; violations: FieldViolation[] } {
  try {
    return { message: fromJson(desc, (json ?? {}) as JsonValue), violations: [] };
  } catch (error) {
    const description = error instanceof Error ? error.message : String(error);
    return { message: create(desc), violations: [{ field: path || "body", description }] };
  }
}

function join(path: string, name: string): string {
  return path === "" ? name : `${path}.${name}`;
}

function prefixed(path: string, violations: FieldViolation[]): FieldViolation[] {
  return path === ""
    ? violations
    : violations.map((v) => ({ field: `${path}.${v.field}`, description: v.description }));
}

/** The message type a field holds: singular, repeated or as map values. */
function messageOf(field: DescField): DescMessage | undefined {
  switch (field.fieldKind) {
    case "message":
      return field.message;
    case "list":
      return field.listKind === "message" ? field.message : undefined;
    case "map":
      return field.mapKind === "message" ? field.message : undefined;
    default:
      return undefined;
  }
}

type OneofValue = { case: string | undefined; value?: unknown } | undefined;

/** A field's value, reading oneofs through their case. */
export function fieldValue(message: Message, field: DescField): unknown {
  const fields = message as unknown as Fields;
  if (!field.oneof) return fields[field.localName];
  const selected = fields[field.oneof.localName] as OneofValue;
  return selected?.case === field.localName ? selected.value : undefined;
}

function selectedCase(message: Message, oneofName: string): string | undefined {
  return ((message as unknown as Fields)[oneofName] as OneofValue)?.case;
}

/** Sets a field's value, selecting its oneof case. */
export function setFieldValue(message: Message, field: DescField, value: unknown): void {
  const fields = message as unknown as Fields;
  if (field.oneof) fields[field.oneof.localName] = { case: field.localName, value };
  else fields[field.localName] = value;
}

/** Resets a field on a shallow copy, assigning rather than mutating what the original shares. */
function clearOn(copy: Fields, field: DescField): void {
  if (field.oneof) {
    if ((copy[field.oneof.localName] as OneofValue)?.case === field.localName)
      copy[field.oneof.localName] = { case: undefined };
    return;
  }
  copy[field.localName] = field.fieldKind === "list" ? [] : field.fieldKind === "map" ? {} : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
