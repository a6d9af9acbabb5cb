import { create } from "@bufbuild/protobuf";
import { expect } from "chai";
import { ProductSchema } from "#gen/products/v1/product_pb.js";
import { WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import { ApiError } from "../errors.js";
import type { ProductWrite, WriteResult } from "./product-repository.js";
import { createWriteCoalescer, type NotRunReason } from "./write-coalescer.js";

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
    const write = createWriteCoalescer(db.upsert, { maxInFlight: 2, maxBatch: 10, maxQueued: 100 });
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
    const write = createWriteCoalescer(db.upsert, { maxInFlight: 1, maxBatch: 3, maxQueued: 100 });
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
      { maxInFlight: 1, maxBatch: 10, maxQueued: 100 },
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
      { maxInFlight: 1, maxBatch: 10, maxQueued: 100 },
    );
    const results = await Promise.allSettled(["a", "b", "c"].map((id) => write(product(id))));
    expect(results.every((r) => r.status === "rejected")).to.equal(true);
    expect(calls).to.equal(2); // "a" alone, then "b" and "c" together
  });

  describe("a bounded queue, and writes whose client has gone", () => {
    const outcome = (write: Promise<WriteResult>) =>
      write.then(
        (result) => result.product.id,
        (error: unknown) => error,
      );
    const setup = (maxQueued: number) => {
      const db = controllableUpsert();
      const depths: number[] = [];
      const notRun: NotRunReason[] = [];
      const write = createWriteCoalescer(db.upsert, {
        maxInFlight: 1,
        maxBatch: 10,
        maxQueued,
        onQueueDepth: (depth) => depths.push(depth),
        onNotRun: (reason) => notRun.push(reason),
      });
      return { db, write, depths, notRun };
    };

    it("when maxQueued writes are waiting, then a new one is refused at once as unavailable, never written, and the waiting ones still run", async () => {
      const t = setup(2);
      const running = t.write(product("a"));
      const queued = [t.write(product("b")), t.write(product("c"))];
      const refused = await outcome(t.write(product("d")));
      expect(refused).to.be.instanceOf(ApiError).with.property("code", "unavailable");
      expect((refused as ApiError).message).to.equal("too many writes waiting (2); nothing was written, retry later");
      expect(t.notRun).to.deep.equal(["queue_full"]);
      t.db.finishNext();
      await running;
      await nextTurn();
      t.db.finishNext();
      expect(await Promise.all(queued.map(outcome))).to.deep.equal(["b", "c"]);
      expect(t.db.batches).to.deep.equal([["a"], ["b", "c"]]);
      expect(t.depths, "depth after each change").to.deep.equal([0, 1, 2, 0]);
    });

    it("when a waiting write's signal aborts, then it is answered canceled at once, with the signal's reason, and never reaches the database", async () => {
      const t = setup(10);
      const running = t.write(product("a"));
      const client = new AbortController();
      const gone = outcome(t.write(product("b"), client.signal));
      const stays = t.write(product("c"), new AbortController().signal);
      const reason = new Error("the client closed the request");
      client.abort(reason);
      const error = await gone;
      expect(error).to.be.instanceOf(ApiError).with.property("code", "canceled");
      expect((error as ApiError).cause).to.equal(reason);
      expect(t.notRun).to.deep.equal(["client_gone"]);
      t.db.finishNext();
      await running;
      await nextTurn();
      t.db.finishNext();
      expect((await stays).product.id).to.equal("c");
      expect(t.db.batches).to.deep.equal([["a"], ["c"]]);
    });

    it("when the signal has aborted before the write, then it is answered canceled without queueing", async () => {
      const t = setup(10);
      const error = await outcome(t.write(product("a"), AbortSignal.abort()));
      expect(error).to.be.instanceOf(ApiError).with.property("code", "canceled");
      expect(t.db.batches).to.be.empty;
    });

    it("when a write is already in a statement, then aborting its signal changes nothing: it runs and is answered", async () => {
      const t = setup(10);
      const client = new AbortController();
      const running = t.write(product("a"), client.signal);
      client.abort();
      t.db.finishNext();
      expect((await running).product.id).to.equal("a");
      expect(t.notRun).to.be.empty;
    });

    it("when a waiting write is aborted, then its place in the queue is free for a new one", async () => {
      const t = setup(1);
      const running = t.write(product("a"));
      const client = new AbortController();
      const gone = outcome(t.write(product("b"), client.signal));
      expect(await outcome(t.write(product("c")))).to.have.property("code", "unavailable");
      client.abort();
      await gone;
      const next = t.write(product("d"));
      t.db.finishNext();
      await running;
      await nextTurn();
      t.db.finishNext();
      expect((await next).product.id).to.equal("d");
      expect(t.db.batches).to.deep.equal([["a"], ["d"]]);
    });
  });
});
