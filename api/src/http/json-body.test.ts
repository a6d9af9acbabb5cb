import { expect } from "chai";
import {
  decodeUtf8,
  InvalidUtf8Error,
  jsonPathAt,
  numberLiteral,
  parseJson,
  unsupportedContentType,
} from "./json-body.js";

describe("parseJson", () => {
  const valid = [
    "{}",
    "[]",
    "0",
    "-0",
    '"x"',
    "true",
    "false",
    "null",
    ' { "a" : [ 1 , 2.5e-3 , -0.0 , "b\\u00e9\\n" , { } , [ ] , null , true ] } ',
    '{"a":1,"a":2}',
    '{"__proto__":{"x":1}}',
    '"\\ud83d\\ude42 \\" \\\\ \\/ \\b\\f\\r\\t"',
    '{"é":"☕"}',
    "1E+2",
  ];
  for (const text of valid) {
    it(`reads ${text} as JSON.parse does, with and without an inexact number beside it`, () => {
      expect(parseJson(text)).to.deep.equal(JSON.parse(text));
      // 1e2 is kept as written, so the literal-keeping parser reads the whole text.
      expect(parseJson(`[${text},1e2]`)).to.deep.equal(JSON.parse(`[${text},1e2]`));
    });
  }

  const invalid = [
    "",
    " ",
    "{",
    '{"a":1,}',
    "[1,]",
    "01",
    "1.",
    ".5",
    "+1",
    "NaN",
    "'a'",
    '"a',
    '"\t"',
    '"\\x"',
    "{a:1}",
    "tru",
    "nulll",
    "[1] 2",
    '{"a" 1}',
  ];
  for (const text of invalid) {
    it(`refuses ${JSON.stringify(text)}, as JSON.parse does`, () => {
      expect(() => JSON.parse(text)).to.throw(SyntaxError);
      expect(() => parseJson(text)).to.throw(SyntaxError);
      expect(() => parseJson(`[1e2,${text}]`)).to.throw(SyntaxError);
    });
  }

  it("keeps each number's literal text beside its value, the last one for a repeated key", () => {
    const json = parseJson('{"pricing":{"amount":19.999999999999999,"n":1e2},"list":[100.0],"d":1,"d":2.50}') as {
      pricing: Record<string, unknown>;
      list: unknown[];
    } & Record<string, unknown>;
    expect(json.pricing.amount).to.equal(20);
    expect(numberLiteral(json.pricing, "amount")).to.equal("19.999999999999999");
    expect(numberLiteral(json.pricing, "n")).to.equal("1e2");
    expect(numberLiteral(json.list, "0")).to.equal("100.0");
    expect(numberLiteral(json, "d")).to.equal("2.50");
    expect(numberLiteral(json, "pricing")).to.equal(undefined);
    expect(numberLiteral({ amount: 1 }, "amount")).to.equal(undefined);
  });

  it("needs no literal when every number is what String(value) gives, up to trailing fractional zeros", () => {
    const json = parseJson('{"a":100.0,"b":19.99,"c":[0.0,10.50,1e+21,-5]}') as Record<string, unknown>;
    expect(json).to.deep.equal({ a: 100, b: 19.99, c: [0, 10.5, 1e21, -5] });
    expect(numberLiteral(json, "a")).to.equal(undefined);
    for (const inexact of ["19.999999999999999", "1e2", "1E2", "-0", "0.1000000000000000055511151231257827"]) {
      const parsed = parseJson(`{"a":${inexact}}`) as object;
      expect(numberLiteral(parsed, "a"), inexact).to.equal(inexact);
    }
  });

  it("forgets a literal when a repeated key is not a number the second time", () => {
    const json = parseJson('{"a":1.0,"a":"x"}') as object;
    expect(numberLiteral(json, "a")).to.equal(undefined);
  });

  it("makes __proto__ an own property, never the prototype", () => {
    const json = parseJson('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(json)).to.equal(Object.prototype);
    expect(Object.keys(json)).to.deep.equal(["__proto__"]);
    expect((json as { polluted?: unknown }).polluted).to.equal(undefined);
  });

  it("keeping literals, refuses nesting deeper than 512 levels instead of overflowing the stack", () => {
    expect(parseJson(`${"[".repeat(512)}1e2${"]".repeat(512)}`)).to.be.an("array");
    expect(() => parseJson(`${"[".repeat(100_000)}1e2${"]".repeat(100_000)}`)).to.throw(SyntaxError);
  });
});

describe("decodeUtf8", () => {
  it("decodes UTF-8, keeping a leading U+FEFF", () => {
    expect(decodeUtf8(Buffer.from("\ufeffCafé ☕ 🙂 \ufffd"))).to.equal("\ufeffCafé ☕ 🙂 \ufffd");
  });

  it("refuses invalid sequences with invalid_argument, naming the JSON string that holds the first", () => {
    const bytes = (before: string, bad: number[], after: string) =>
      Buffer.concat([Buffer.from(before), Uint8Array.from(bad), Buffer.from(after)]);
    const invalid = [[0xff], [0xc3], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]];
    for (const bad of invalid) {
      const cases: [Buffer, string | undefined][] = [
        [bytes('{"name":"é☕', bad, 'x","b":"\u00ff"}'), "name"],
        [bytes('{"a":[1,{"b":"🙂"},{"c":"', bad, '"}]}'), "a[2].c"],
        [bytes('{"p":{"k', bad, '":1}}'), "p"],
        [bytes("", bad, ""), undefined],
        [bytes('{"a":1', bad, "}"), undefined],
      ];
      for (const [input, field] of cases) {
        const error = (() => {
          try {
            decodeUtf8(input);
          } catch (e) {
            return e;
          }
          return undefined;
        })();
        expect(error, `${bad} ${input}`).to.be.instanceOf(InvalidUtf8Error).with.property("field", field);
        expect((error as InvalidUtf8Error).rawMessage).to.equal(
          `request body is not valid UTF-8${field ? ` in ${field}` : ""}`,
        );
      }
    }
  });
});

describe("jsonPathAt", () => {
  it("names the string at a position, and nothing outside strings", () => {
    const text = '{"a": {"b": ["x", "yz"]}, "c\\"": "w", "d": 1}';
    expect(jsonPathAt(text, text.indexOf("yz") + 1)).to.equal("a.b[1]");
    expect(jsonPathAt(text, text.indexOf('"w"'))).to.equal('c"');
    expect(jsonPathAt(text, text.indexOf("1}"))).to.equal(undefined);
    expect(jsonPathAt(text, 0)).to.equal(undefined);
  });
});

describe("unsupportedContentType", () => {
  it("accepts application/json and application/*+json, without a charset or in UTF-8", () => {
    for (const type of [
      "application/json",
      "Application/JSON",
      "application/json; charset=utf-8",
      'application/json;charset="UTF-8"',
      "application/json; charset=utf8",
      "application/problem+json",
    ]) {
      expect(unsupportedContentType(type), type).to.equal(undefined);
    }
  });

  it("names what it expects for anything else", () => {
    expect(unsupportedContentType(undefined)).to.equal("content-type must be application/json");
    expect(unsupportedContentType("text/plain; charset=utf-8")).to.equal(
      "content-type must be application/json, not text/plain",
    );
    expect(unsupportedContentType("application/x-www-form-urlencoded")).to.match(/must be application\/json/);
    expect(unsupportedContentType("application/jsonp")).to.match(/must be application\/json/);
    expect(unsupportedContentType("application/+json")).to.match(/must be application\/json/);
    expect(unsupportedContentType("application/json; charset=latin1")).to.equal("charset must be utf-8, not latin1");
  });
});
