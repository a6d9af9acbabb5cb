import { create } from "@bufbuild/protobuf";
import { expect } from "chai";
import { ProductSchema } from "#gen/products/v1/product_pb.js";
import { WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import { ApiError } from "../errors.js";
import type { ProductWrite, WriteResult } from "./product-repository.js";
import { createWriteCoalescer } from "./write-coalescer.js";

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const product = (id: string): ProductWrite => ({ product: create(ProductSchema, { id }) });
const created = ({ product: p }: ProductWrite): WriteResult => ({ product: p, outcome: WriteOutcome.CREATED });

/** An upsert whose statements finish only when the test says so, recording each batch. */
function controllableUpsert() {
  const batches: string[][] = [];
  const finishers: (() => void)[] = [];
  const upsert = (writes: readonly ProductWrite[]) =>
    new Promise<WriteResult[]>((resolve) => {
      batches.push(writes.map((w) => w.product.id));
      finishers.push(() => resolve(writes.map(created)));
    });
  return { upsert, batches, finishNext: () => finishers.shift()?.() };
}

describe("write coalescer (group commit)", () => {
  it("when idle, then each write goes out at once on its own", async () => {
    const db = controllableUpsert();
    const write = createWriteCoalescer(db.upsert, { maxInFlight: 2, maxBatch: 10 });
    const a = write(product("a"));
    const b = write(product("b"));
    expect(db.batches).to.deep.equal([["a"], ["b"]]);
    db.finishNext();
    db.finishNext();
    expect((await a).product.id).to.equal("a");
    expect((await b).product.id).to.equal("b");
  });

  it("when every statement is busy, then waiting writes share the next statement, up to maxBatch", async () => {
    const db = controllableUpsert();
    const write = createWriteCoalescer(db.upsert, { maxInFlight: 1, maxBatch: 3 });
    const results = ["a", "b", "c", "d", "e"].map((id) => write(product(id)));
    expect(db.batches).to.deep.equal([["a"]]);
    db.finishNext();
    await results[0];
    await nextTurn();
    expect(db.batches).to.deep.equal([["a"], ["b", "c", "d"]]);
    db.finishNext();
    await results[3];
    await nextTurn();
    db.finishNext();
    const all = await Promise.all(results);
    expect(db.batches).to.deep.equal([["a"], ["b", "c", "d"], ["e"]]);
    expect(all.map((r) => r.product.id)).to.deep.equal(["a", "b", "c", "d", "e"]);
  });

  it("when a shared statement fails, then the writes are retried alone so one bad write fails only itself", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const write = createWriteCoalescer(
      async (writes) => {
        if (calls++ === 0) await gate; // holds the first statement so the next two share one
        if (writes.some((w) => w.product.id === "bad")) throw new Error("constraint violated");
        return writes.map(created);
      },
      { maxInFlight: 1, maxBatch: 10 },
    );
    const blocker = write(product("first"));
    const good = write(product("good"));
    const bad = write(product("bad"));
    release();
    await blocker;
    expect((await good).product.id).to.equal("good");
    const error = await bad.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(Error).with.property("message", "constraint violated");
  });

  it("when the database is unavailable, then every write of the statement gets that error without retries", async () => {
    let calls = 0;
    const write = createWriteCoalescer(
      async () => {
        calls++;
        throw new ApiError("unavailable", "database unavailable, retry later");
      },
      { maxInFlight: 1, maxBatch: 10 },
    );
    const results = await Promise.allSettled(["a", "b", "c"].map((id) => write(product(id))));
    expect(results.every((r) => r.status === "rejected")).to.equal(true);
    expect(calls).to.equal(2); // "a" alone, then "b" and "c" together
  });
});
