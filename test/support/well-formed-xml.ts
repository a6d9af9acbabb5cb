import { expect } from "chai";

/**
 * Asserts that `xml` is well-formed enough for any XML parser (one root element, every tag closed
 * in order, attributes quoted, no raw `<` or stray `&` in text; no comments, CDATA or doctype) and
 * returns its elements' names in document order.
 */
export function expectWellFormedXml(xml: string): string[] {
  const names: string[] = [];
  const open: string[] = [];
  const token = /<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z][a-zA-Z0-9:-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let consumed = 0;
  for (let match = token.exec(xml); match; match = token.exec(xml)) {
    consumed = token.lastIndex;
    const [, closing, name, , selfClosing, content] = match;
    if (content !== undefined) {
      expect(content, "text").not.to.match(/&(?!(lt|gt|amp|quot|apos);)/);
      continue;
    }
    if (closing) {
      expect(open.pop(), `closing </${name}>`).to.equal(name);
    } else {
      if (open.length === 0) expect(names, "a single root").to.have.length(0);
      names.push(name as string);
      if (!selfClosing) open.push(name as string);
    }
  }
  expect(consumed, `parsed up to ${JSON.stringify(xml.slice(consumed, consumed + 40))}`).to.equal(xml.length);
  expect(open, "unclosed elements").to.deep.equal([]);
  return names;
}
