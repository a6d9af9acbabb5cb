import type { JsonReadOptions, JsonWriteOptions } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

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

/** The bytes as text, or InvalidArgument: a replacement character would store something never sent. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new ConnectError("request body is not valid UTF-8", Code.InvalidArgument);
  }
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
 * JSON.parse, but keeping each number's literal text (numberLiteral): Node 20's JSON.parse has no
 * source access in revivers. Duplicate keys keep the last value, as JSON.parse does.
 */
export function parseJson(text: string): unknown {
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
