import { create, type JsonReadOptions, type JsonWriteOptions } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "#gen/google/rpc/error_details_pb.js";

/** What a REST body must be declared as; named in the 415 answer. */
export const JSON_MEDIA_TYPE = "application/json";

const JSON_TYPE = /^application\/(?:json|[!#$%&'*.^`|~\w-]+\+json)$/;

/**
 * Why a request's content-type is not one the REST body reader takes, or undefined when it is:
 * application/json or application/*+json, with no charset or utf-8. Any other type is refused so
 * that a cross-site form or text/plain POST (no CORS preflight) cannot write.
 */
export function unsupportedContentType(header: string | undefined): string | undefined {
  const [type = "", ...params] = (header ?? "").split(";");
  const expected = `content-type must be ${JSON_MEDIA_TYPE}`;
  if (!JSON_TYPE.test(type.trim().toLowerCase())) return header ? `${expected}, not ${type.trim()}` : expected;
  for (const param of params) {
    const [name = "", value = ""] = param.split("=");
    if (name.trim().toLowerCase() !== "charset") continue;
    const charset = value
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .toLowerCase();
    if (charset !== "utf-8" && charset !== "utf8") return `charset must be utf-8, not ${charset}`;
  }
  return undefined;
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** A body that is not valid UTF-8; `field` is the JSON path of the string holding the first bad byte. */
export class InvalidUtf8Error extends ConnectError {
  constructor(readonly field: string | undefined) {
    const violation = { field: field ?? "body", description: "is not valid UTF-8" };
    const detail = { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [violation] }) };
    super(`request body is not valid UTF-8${field ? ` in ${field}` : ""}`, Code.InvalidArgument, undefined, [detail]);
  }
}

/**
 * The bytes as text, or InvalidUtf8Error naming the JSON string that holds the first invalid
 * sequence: a replacement character would store something the client never sent.
 */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    const offset = firstInvalidUtf8(bytes);
    const position = strictDecoder.decode(bytes.subarray(0, offset)).length;
    throw new InvalidUtf8Error(jsonPathAt(lenientDecoder.decode(bytes), position));
  }
}

/** The offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] ?? 0;
    if (lead < 0x80) {
      i++;
      continue;
    }
    const length =
      lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    if (length === 0) return i;
    // The second byte's range excludes overlong forms, surrogates and code points above U+10FFFF.
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    const second = bytes[i + 1];
    if (second === undefined || second < low || second > high) return i;
    for (let k = 2; k < length; k++) {
      const next = bytes[i + k];
      if (next === undefined || (next & 0xc0) !== 0x80) return i;
    }
    i += length;
  }
  return bytes.length;
}

/**
 * connect-es handler `jsonOptions` whose JSON serialization refuses invalid UTF-8. Its handler
 * options type omits `textDecoder`, which createJsonSerialization reads from these options; the
 * RPC tests check that it is used. ignoreUnknownFields is connect-es's default.
 */
export const strictJsonOptions: Partial<JsonReadOptions & JsonWriteOptions> = Object.assign(
  { ignoreUnknownFields: true },
  { textDecoder: { decode: (input?: Uint8Array) => decodeUtf8(input ?? new Uint8Array()) } },
);

/** The source text of the number parsed at holder[key], recorded by parseJson. */
const numberTexts = new WeakMap<object, Map<string, string>>();

/**
 * The literal text of a JSON number that parseJson read, e.g. "19.999999999999999" where the value
 * is 20, for codecs that must not accept what the double rounded. Undefined for other values.
 */
export function numberLiteral(holder: object, key: string): string | undefined {
  return numberTexts.get(holder)?.get(key);
}

const WHITESPACE = /[ \t\n\r]*/y;
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON strings must not hold raw control characters.
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?/y;
const MAX_DEPTH = 512;

/**
 * JSON.parse, but keeping the literal text (numberLiteral) of numbers that String(value) would not
 * give back, such as 19.999999999999999 or 1e2: Node 20's JSON.parse has no source access in
 * revivers. Texts without such numbers (the usual case) go to JSON.parse, ten times faster.
 */
export function parseJson(text: string): unknown {
  return hasInexactNumber(text) ? parseKeepingLiterals(text) : JSON.parse(text);
}

const STRING_OR_NUMBER = /"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*/g;

/**
 * Whether a number in the text differs from String(its value) other than by trailing fractional
 * zeros (100.0 is 100): only those numbers need their literal, the others' value says it all.
 */
function hasInexactNumber(text: string): boolean {
  STRING_OR_NUMBER.lastIndex = 0;
  for (let match = STRING_OR_NUMBER.exec(text); match; match = STRING_OR_NUMBER.exec(text)) {
    const token = match[0];
    if (token.startsWith('"')) continue;
    const trimmed = token.includes(".") && !/[eE]/.test(token) ? token.replace(/\.?0+$/, "") : token;
    if (String(Number(trimmed)) !== trimmed) return true;
  }
  return false;
}

/** A JSON parser that records number literals; duplicate keys keep the last value, as in JSON.parse. */
function parseKeepingLiterals(text: string): unknown {
  let pos = 0;
  const fail = (): never => {
    throw new SyntaxError(pos >= text.length ? "unexpected end of JSON" : `unexpected input at position ${pos}`);
  };
  const skip = () => {
    WHITESPACE.lastIndex = pos;
    WHITESPACE.test(text);
    pos = WHITESPACE.lastIndex;
  };
  const token = (pattern: RegExp): string => {
    pattern.lastIndex = pos;
    const match = pattern.exec(text);
    if (!match) return fail();
    pos = pattern.lastIndex;
    return match[0];
  };
  const string = (): string => {
    const quoted = token(STRING);
    return quoted.includes("\\") ? (JSON.parse(quoted) as string) : quoted.slice(1, -1);
  };
  const expect = (literal: string) => {
    if (!text.startsWith(literal, pos)) fail();
    pos += literal.length;
  };
  const set = (holder: Record<string, unknown>, key: string, value: unknown, literal: string | undefined) => {
    // "__proto__" is an own property in JSON.parse's result, not the prototype.
    if (key === "__proto__")
      Object.defineProperty(holder, key, { value, enumerable: true, writable: true, configurable: true });
    else holder[key] = value;
    const texts = numberTexts.get(holder);
    if (literal !== undefined) {
      if (texts) texts.set(key, literal);
      else numberTexts.set(holder, new Map([[key, literal]]));
    } else texts?.delete(key);
  };

  // Returns the value and, for a number, its literal.
  const value = (depth: number): [unknown, string | undefined] => {
    skip();
    const char = text[pos];
    if (char === "{") {
      if (depth >= MAX_DEPTH) fail();
      pos++;
      const object: Record<string, unknown> = {};
      skip();
      if (text[pos] === "}") {
        pos++;
        return [object, undefined];
      }
      for (;;) {
        skip();
        const key = string();
        skip();
        expect(":");
        const [item, literal] = value(depth + 1);
        set(object, key, item, literal);
        skip();
        if (text[pos] === ",") pos++;
        else if (text[pos] === "}") {
          pos++;
          return [object, undefined];
        } else fail();
      }
    }
    if (char === "[") {
      if (depth >= MAX_DEPTH) fail();
      pos++;
      const array: unknown[] = [];
      skip();
      if (text[pos] === "]") {
        pos++;
        return [array, undefined];
      }
      for (;;) {
        const [item, literal] = value(depth + 1);
        set(array as unknown as Record<string, unknown>, String(array.length), item, literal);
        skip();
        if (text[pos] === ",") pos++;
        else if (text[pos] === "]") {
          pos++;
          return [array, undefined];
        } else fail();
      }
    }
    if (char === '"') return [string(), undefined];
    if (char === "t") {
      expect("true");
      return [true, undefined];
    }
    if (char === "f") {
      expect("false");
      return [false, undefined];
    }
    if (char === "n") {
      expect("null");
      return [null, undefined];
    }
    const literal = token(NUMBER);
    return [Number(literal), literal];
  };

  const [result] = value(0);
  skip();
  if (pos < text.length) fail();
  return result;
}

/**
 * The path ("pricing.currency", "items[2].name") of the JSON string, key or value, that covers
 * the character at `position`; undefined when it is outside any string or the text is not JSON
 * up to there.
 */
export function jsonPathAt(text: string, position: number): string | undefined {
  let pos = 0;
  const skip = () => {
    WHITESPACE.lastIndex = pos;
    WHITESPACE.test(text);
    pos = WHITESPACE.lastIndex;
  };
  // Throws (found or not) to unwind as soon as the position is passed.
  const found = (path: string | undefined): never => {
    throw new PathFound(path);
  };
  const string = (path: string): string => {
    STRING.lastIndex = pos;
    const match = STRING.exec(text);
    const end = match ? STRING.lastIndex : text.length;
    if (position >= pos && position < end) found(path || undefined);
    if (!match) return found(undefined);
    pos = end;
    return match[0].includes("\\") ? (JSON.parse(match[0]) as string) : match[0].slice(1, -1);
  };
  const walk = (path: string): void => {
    skip();
    if (pos > position) found(undefined);
    const char = text[pos];
    if (char === "{" || char === "[") {
      pos++;
      const close = char === "{" ? "}" : "]";
      for (let index = 0; ; index++) {
        skip();
        if (text[pos] === close) {
          pos++;
          return;
        }
        if (char === "{") {
          const key = string(path);
          const child = path ? `${path}.${key}` : key;
          skip();
          if (text[pos] !== ":") found(undefined);
          pos++;
          walk(child);
        } else walk(`${path}[${index}]`);
        skip();
        if (text[pos] === ",") pos++;
        else if (text[pos] !== close) found(undefined);
      }
    }
    if (char === '"') {
      string(path);
      return;
    }
    NUMBER.lastIndex = pos;
    const literal = /true|false|null/y;
    literal.lastIndex = pos;
    if (NUMBER.test(text)) pos = NUMBER.lastIndex;
    else if (literal.test(text)) pos = literal.lastIndex;
    else found(undefined);
  };
  try {
    walk("");
  } catch (signal) {
    if (signal instanceof PathFound) return signal.path;
    return undefined;
  }
  return undefined;
}

class PathFound {
  constructor(readonly path: string | undefined) {}
}
