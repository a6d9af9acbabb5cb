import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { expect } from "chai";
import { BatchCreateProductsRequestSchema, ResultView } from "#gen/products/v1/product_service_pb.js";
import { batchRequest, requestBytes, type SourcedProduct } from "./api-client.js";
import { parseRecord } from "./message.js";

function sourced(offset: number): SourcedProduct {
  const value = JSON.stringify({
    productId: `p-${offset}`,
    productName: "Nome",
    productDescription: "Descrição",
    price: 19.99,
    currency: "BRL",
    stockQuantity: 5,
    category: "Categoria",
  });
  const parsed = parseRecord({ value: Buffer.from(value), timestamp: "1719620000000" }, 1_000_000);
  if (!parsed.ok) throw parsed.error;
  return { product: parsed.product, source: { topic: "in", partition: 2, offset: BigInt(offset) } };
}

describe("BatchCreateProducts request", () => {
  it("asks for outcomes only: the scheduler reads nothing else of the results", () => {
    expect(batchRequest([sourced(1)]).resultView).to.equal(ResultView.OUTCOME);
  });

  it("carries every product and its source, and requestBytes is its encoded size", () => {
    const writes = [sourced(7), sourced(8)];
    const bytes = toBinary(BatchCreateProductsRequestSchema, batchRequest(writes));
    const decoded = fromBinary(BatchCreateProductsRequestSchema, bytes);
    expect(decoded.requests.map((r) => r.product?.id)).to.deep.equal(["p-7", "p-8"]);
    expect(decoded.requests.map((r) => r.product?.pricing?.amount)).to.deep.equal(["19.99", "19.99"]);
    expect(decoded.requests.map((r) => [r.source?.topic, r.source?.partition, r.source?.offset])).to.deep.equal([
      ["in", 2, 7n],
      ["in", 2, 8n],
    ]);
    expect(requestBytes(writes)).to.equal(bytes.length);
  });
});
