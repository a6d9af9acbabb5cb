import { EventEmitter } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { expect } from "chai";
import { KafkaJSProtocolError, type KafkaMessage } from "kafkajs";
import { pino } from "pino";
import { WriteOutcome } from "#gen/products/v1/product_service_pb.js";
import { type ItemResult, type ProductApi, requestBytes, type SourcedProduct } from "./api-client.js";
import {
  type ChunkProcessorDeps,
  type Clock,
  createChunkProcessor,
  type PartitionPort,
  systemClock,
} from "./chunk-processor.js";
import { type DeadLetter, DeadLetterPublishError, type DeadLetterPublisher } from "./dead-letter.js";
import { parseRecord } from "./message.js";
import { createSchedulerMetrics } from "./metrics.js";
import type { CommittedEvent, DeadLetteredEvent, RetryingEvent, SchedulerEventMap } from "./scheduler-events.js";

const TOPIC = "cadastro-produtos";
const PARTITION = 3;
const HEARTBEAT_MS = 40;
/** With the jitter pinned at 1, attempt n waits exactly min(1000, 100·2^(n-1)) ms. */
const RETRY = { initialDelayMs: 100, maxDelayMs: 1000 };

/** A record at offset whose product id is id; null gives a value that is not JSON. */
function record(offset: number, id: string | null): KafkaMessage {
  const value =
    id === null
      ? "{"
      : JSON.stringify({
          productId: id,
          productName: `name ${id}`,
          productDescription: "description",
          price: 10.5,
          currency: "BRL",
          stockQuantity: 1,
          category: "category",
        });
  return {
    key: Buffer.from(id ?? "bad"),
    value: Buffer.from(value),
    timestamp: "1719621003254",
    attributes: 0,
    offset: String(offset),
    headers: {},
  } as KafkaMessage;
}

/** Records at offsets 0, 1, … with the given ids. */
function records(...ids: (string | null)[]): KafkaMessage[] {
  return ids.map((id, offset) => record(offset, id));
}

const persisted = (ids: readonly string[]): ItemResult[] =>
  ids.map(() => ({ ok: true, outcome: WriteOutcome.CREATED, version: 1n }));

const refused = (code: Code, message = "refused") => new ConnectError(message, code);

/** The API: answer decides each call from the product ids sent and the call's number (1-based). */
class FakeApi implements Pick<ProductApi, "batchCreate"> {
  readonly calls: string[][] = [];
  /** Each call's source positions, as "topic/partition/offset". */
  readonly sources: string[][] = [];
  answer: (ids: string[], call: number) => ItemResult[] | Promise<ItemResult[]> = persisted;

  async batchCreate(writes: readonly SourcedProduct[]): Promise<ItemResult[]> {
    const ids = writes.map(({ product }) => product.id);
    this.calls.push(ids);
    this.sources.push(writes.map(({ source }) => `${source.topic}/${source.partition}/${source.offset}`));
    // A processor that never gives up would spin on microtasks and hang mocha instead of failing.
    if (this.calls.length > 1000) throw new Error("more than 1000 API calls: the processor loops");
    // Answers later, as a call over the network does.
    await Promise.resolve();
    return this.answer(ids, this.calls.length);
  }
}

/** The error topic: onPublish sees each publish's number (1-based) and may throw. */
class FakeDeadLetters implements DeadLetterPublisher {
  readonly publishes: DeadLetter[][] = [];
  onPublish: (publish: number) => void = () => {};

  async publish(letters: readonly DeadLetter[]): Promise<void> {
    this.publishes.push([...letters]);
    if (this.publishes.length > 1000) throw new Error("more than 1000 publishes: the processor loops");
    this.onPublish(this.publishes.length);
  }
}

/** The consumer group: records offsets and heartbeats; the hooks may throw as a rebalance does. */
class FakePartition implements PartitionPort {
  running = true;
  stale = false;
  readonly resolved: string[] = [];
  readonly commits: string[] = [];
  heartbeats = 0;
  onHeartbeat: () => void = () => {};
  onCommit: () => void = () => {};

  resolveOffset(offset: string): void {
    this.resolved.push(offset);
  }

  async commitOffset(next: string): Promise<void> {
    this.onCommit();
    this.commits.push(next);
  }

  async heartbeat(): Promise<void> {
    this.heartbeats++;
    this.onHeartbeat();
  }

  isRunning(): boolean {
    return this.running;
  }

  isStale(): boolean {
    return this.stale;
  }
}

/** Time that moves only when slept on; tick() fires the interval timers as if an interval passed. */
class FakeClock implements Clock {
  readonly sleeps: number[] = [];
  readonly tickers = new Set<() => void>();
  onSleep: () => void = () => {};
  private time = 0;

  now(): number {
    return this.time;
  }

  async sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    this.sleeps.push(ms);
    if (this.sleeps.length > 10_000) throw new Error("more than 10000 sleeps: the processor loops");
    this.time += ms;
    this.onSleep();
  }

  every(_ms: number, tick: () => void): () => void {
    this.tickers.add(tick);
    return () => this.tickers.delete(tick);
  }

  tick(): void {
    for (const tick of this.tickers) tick();
  }
}

/** Fakes for every port, the processor over them, and what it reported. */
function setup(overrides: { config?: Partial<ChunkProcessorDeps["config"]>; clock?: Clock } = {}) {
  const api = new FakeApi();
  const deadLetters = new FakeDeadLetters();
  const partition = new FakePartition();
  const clock = new FakeClock();
  const stopping = new AbortController();
  const metrics = createSchedulerMetrics(() => (overrides.clock ?? clock).now());
  const events = new EventEmitter<SchedulerEventMap>();
  const committed: CommittedEvent[] = [];
  const retrying: RetryingEvent[] = [];
  const deadLettered: DeadLetteredEvent[] = [];
  events.on("committed", (event) => committed.push(event));
  events.on("retrying", (event) => retrying.push(event));
  events.on("dead-lettered", (event) => deadLettered.push(event));
  const logs: { level: number; msg: string; reason?: string; err?: { message?: string } }[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const processor = createChunkProcessor({
    api,
    deadLetters,
    config: {
      batchSize: 100,
      batchMaxBytes: 1024 * 1024,
      maxRecordBytes: 1024 * 1024,
      retry: RETRY,
      heartbeatIntervalMs: HEARTBEAT_MS,
      ...overrides.config,
    },
    logger,
    metrics,
    events,
    stopping: stopping.signal,
    clock: overrides.clock ?? clock,
    random: () => 1,
  });
  /** Processes messages as one fetched batch; lastOffset defaults to the last message's. */
  const process = (messages: KafkaMessage[], lastOffset = messages.at(-1)?.offset ?? "0") =>
    processor.processBatch(
      { topic: TOPIC, partition: PARTITION, messages, lastOffset, highWatermark: String(BigInt(lastOffset) + 11n) },
      partition,
    );
  const count = async (metric: "records" | "retries", labels: Record<string, string>) =>
    (await metrics[metric].get()).values.find((value) =>
      Object.entries(labels).every(([name, label]) => (value.labels as Record<string, unknown>)[name] === label),
    )?.value ?? 0;
  const apiCalls = async (status: string) =>
    (await metrics.apiCalls.get()).values.find(
      (value) => value.metricName === "scheduler_api_call_duration_seconds_count" && value.labels.status === status,
    )?.value ?? 0;
  return {
    api,
    deadLetters,
    partition,
    clock,
    stopping,
    metrics,
    events,
    committed,
    retrying,
    deadLettered,
    logs,
    process,
    count,
    apiCalls,
  };
}

/** What the broker answers for a record batch above the error topic's max.message.bytes. */
const tooLarge = (count: number) =>
  new DeadLetterPublishError(count, {
    cause: new KafkaJSProtocolError({
      message: "The request included a message larger than the max message size the server will accept",
      type: "MESSAGE_TOO_LARGE",
      code: 10,
      retriable: false,
    } as unknown as string),
  });

/** The error topic's size check: the bytes of a publish, as the fake counts them (values only). */
const valueBytes = (letters: readonly DeadLetter[]) =>
  letters.reduce((sum, letter) => sum + (letter.truncated ? 0 : (letter.message.value?.length ?? 0)), 0);

/** The offsets and codes of what was published to the error topic, publish by publish. */
const published = (publishes: DeadLetter[][]) =>
  publishes.map((letters) => letters.map((letter) => `${letter.message.offset}:${letter.error.code}`));

describe("chunk processor: records → API → dead letters → commits", () => {
  const created = { ok: true, outcome: WriteOutcome.CREATED, version: 1n } as const;
  const rebalance = new Error("The group is rebalancing, so a rejoin is needed");
  const thrownBy = async (work: Promise<void>): Promise<unknown> => {
    try {
      await work;
    } catch (error) {
      return error;
    }
    return expect.fail("resolved, expected a rejection");
  };

  describe("when everything succeeds", () => {
    it("when every product is persisted, then one call carries the chunk in order, its last offset is resolved and the next one committed, and the member heartbeats", async () => {
      const t = setup();
      await t.process(records("a", "b", "c"));
      expect(t.api.calls).to.deep.equal([["a", "b", "c"]]);
      expect(t.partition.resolved).to.deep.equal(["2"]);
      expect(t.partition.commits).to.deep.equal(["3"]);
      expect(t.committed).to.deep.equal([{ topic: TOPIC, partition: PARTITION, offset: 3n }]);
      expect(t.partition.heartbeats).to.equal(1);
      expect(t.deadLetters.publishes).to.be.empty;
      expect(t.retrying).to.be.empty;
      expect(await t.count("records", { outcome: "persisted" })).to.equal(3);
      expect(await t.apiCalls("ok")).to.equal(1);
      const lag = (await t.metrics.lag.get()).values[0];
      expect(lag?.labels).to.deep.equal({ topic: TOPIC, partition: String(PARTITION) });
      expect(lag?.value, "high watermark 13 minus next offset 3").to.equal(10);
    });

    it("when records share a timestamp, then each product carries its record's topic, partition and offset, which order them at the API", async () => {
      const t = setup({ config: { batchSize: 2 } });
      await t.process([record(40, "a"), record(41, "a"), record(42, "b")]);
      expect(t.api.sources).to.deep.equal([
        [`${TOPIC}/${PARTITION}/40`, `${TOPIC}/${PARTITION}/41`],
        [`${TOPIC}/${PARTITION}/42`],
      ]);
    });

    it("when the batch holds more than batchSize records, then it is sent in chunks, each committed after its call", async () => {
      const t = setup({ config: { batchSize: 2 } });
      await t.process(records("a", "b", "c", "d", "e"));
      expect(t.api.calls).to.deep.equal([["a", "b"], ["c", "d"], ["e"]]);
      expect(t.partition.resolved).to.deep.equal(["1", "3", "4"]);
      expect(t.partition.commits).to.deep.equal(["2", "4", "5"]);
    });

    it("when the batch holds more than batchMaxBytes, then a chunk ends before the record that would exceed it", async () => {
      const [first] = records("a");
      const size = (first?.value?.length ?? 0) + (first?.key?.length ?? 0) + 64;
      const t = setup({ config: { batchMaxBytes: 2 * size + 1 } });
      await t.process(records("a", "b", "c", "d", "e"));
      expect(t.api.calls).to.deep.equal([["a", "b"], ["c", "d"], ["e"]]);
    });

    it("when kafkajs filtered control records after the last message, then the commit covers them too", async () => {
      const t = setup();
      await t.process(records("a", "b"), "7");
      expect(t.partition.resolved).to.deep.equal(["1"]);
      expect(t.partition.commits).to.deep.equal(["8"]);
    });
  });

  describe("permanent errors: dead letter at once", () => {
    for (const [what, code] of [
      ["is not JSON", "invalid_json"],
      ["is a tombstone", "empty_value"],
    ] as const) {
      it(`when a record ${what}, then it is dead-lettered as ${code} without an API call, and the records around it are persisted and committed`, async () => {
        const messages = records("a", null, "c");
        if (code === "empty_value") (messages[1] as { value: Buffer | null }).value = null;
        const t = setup();
        await t.process(messages);
        expect(t.api.calls).to.deep.equal([["a", "c"]]);
        expect(published(t.deadLetters.publishes)).to.deep.equal([[`1:${code}`]]);
        const letter = t.deadLetters.publishes[0]?.[0];
        expect(letter).to.include({ topic: TOPIC, partition: PARTITION, attempts: 1 });
        expect(t.deadLettered).to.have.length(1);
        expect(t.deadLettered[0]).to.include({ topic: TOPIC, partition: PARTITION, offset: "1", code });
        expect(t.partition.commits).to.deep.equal(["3"]);
        expect(t.retrying).to.be.empty;
        expect(await t.count("records", { outcome: "dead_lettered" })).to.equal(1);
        expect(await t.count("records", { outcome: "persisted" })).to.equal(2);
      });
    }

    for (const code of ["invalid_argument", "out_of_range"]) {
      it(`when the API answers ${code} for one product, then only that record is dead-lettered, with the API's message, in one call`, async () => {
        const t = setup();
        t.api.answer = (ids) =>
          ids.map((id) => (id === "b" ? { ok: false, code, message: "price: must be positive" } : created));
        await t.process(records("a", "b", "c"));
        expect(t.api.calls).to.have.length(1);
        expect(published(t.deadLetters.publishes)).to.deep.equal([["1:invalid_argument"]]);
        expect(t.deadLetters.publishes[0]?.[0]?.error.message).to.equal("price: must be positive");
        expect(t.deadLetters.publishes[0]?.[0]?.attempts).to.equal(1);
        expect(t.partition.commits).to.deep.equal(["3"]);
        expect(t.retrying).to.be.empty;
      });
    }

    it("when a product is rejected on a later attempt, then its dead letter counts the attempts made", async () => {
      const t = setup();
      t.api.answer = (ids, call) => {
        if (call === 1) throw refused(Code.Unavailable);
        return [{ ok: false, code: "invalid_argument", message: `${ids[0]}: bad` }];
      };
      await t.process(records("a"));
      expect(t.deadLetters.publishes[0]?.[0]?.attempts).to.equal(2);
      expect(t.partition.commits).to.deep.equal(["1"]);
    });

    it("when a rejected record follows one that is still pending, then its dead letter waits until the record before it is finished", async () => {
      const t = setup();
      const order: string[] = [];
      t.api.answer = (ids, call) => {
        order.push(`call ${call}`);
        if (call === 1) throw refused(Code.Unavailable);
        return persisted(ids);
      };
      t.deadLetters.onPublish = () => order.push("publish");
      await t.process(records("a", null));
      expect(order).to.deep.equal(["call 1", "call 2", "publish"]);
      expect(t.partition.commits).to.deep.equal(["2"]);
    });
  });

  describe("a whole call refused as invalid_argument or out_of_range: the deployment's fault, retried", () => {
    for (const code of [Code.InvalidArgument, Code.OutOfRange]) {
      it(`when the whole call is refused as ${codeToString(code)}, then the chunk is retried whole until the API accepts it, never replayed per product nor dead-lettered`, async () => {
        const t = setup();
        t.api.answer = (ids, call) => {
          if (call <= 2) throw refused(code, "requests: must hold at most 1000 items");
          return persisted(ids);
        };
        await t.process(records("a", "b", "c"));
        expect(t.api.calls).to.deep.equal([
          ["a", "b", "c"],
          ["a", "b", "c"],
          ["a", "b", "c"],
        ]);
        expect(t.retrying.map((event) => [event.offset, event.attempt, event.reason])).to.deep.equal([
          ["0", 1, codeToString(code)],
          ["0", 2, codeToString(code)],
        ]);
        expect(t.deadLetters.publishes).to.be.empty;
        expect(t.partition.commits).to.deep.equal(["3"]);
        expect(await t.count("records", { outcome: "persisted" })).to.equal(3);
      });
    }

    it("when a call of one product is refused as invalid_argument, then it is retried like a larger call, not dead-lettered", async () => {
      const t = setup();
      t.api.answer = (ids, call) => {
        if (call === 1) throw refused(Code.InvalidArgument);
        return persisted(ids);
      };
      await t.process(records("a"));
      expect(t.api.calls).to.deep.equal([["a"], ["a"]]);
      expect(t.retrying.map((event) => event.reason)).to.deep.equal(["invalid_argument"]);
      expect(t.deadLetters.publishes).to.be.empty;
      expect(t.partition.commits).to.deep.equal(["1"]);
    });

    it("when the API refuses the call's deadline (API_TIMEOUT_MS above its MAX_RPC_DEADLINE_MS), then the records are retried until the scheduler stops, logged at error level with the API's message, and nothing is dead-lettered or committed", async () => {
      const t = setup();
      const apiMessage = "timeout 2000ms must be <= 1000";
      t.api.answer = () => Promise.reject(refused(Code.InvalidArgument, apiMessage));
      t.events.on("retrying", ({ attempt }) => {
        if (attempt === 8) t.stopping.abort();
      });
      await t.process(records("a", "b", "c"));
      expect(t.api.calls).to.have.length(8);
      expect(new Set(t.api.calls.map((ids) => ids.join())), "always the whole chunk").to.deep.equal(new Set(["a,b,c"]));
      expect(t.retrying.map((event) => event.delayMs)).to.deep.equal([100, 200, 400, 800, 1000, 1000, 1000, 1000]);
      expect(t.retrying.every((event) => event.reason === "invalid_argument" && event.offset === "0")).to.equal(true);
      expect(t.deadLetters.publishes).to.be.empty;
      expect(t.deadLettered).to.be.empty;
      expect(t.partition.commits).to.be.empty;
      expect(await t.count("retries", { reason: "invalid_argument" })).to.equal(8);
      expect(await t.count("records", { outcome: "dead_lettered" })).to.equal(0);
      const retryLogs = t.logs.filter((log) => log.msg === "transient failure, retrying");
      expect(retryLogs.map((log) => log.level)).to.deep.equal(retryLogs.map(() => 50));
      expect(retryLogs[0]?.err?.message).to.equal(`[invalid_argument] ${apiMessage}`);
    });
  });

  describe("resource_exhausted: halve the call", () => {
    it("when a call is refused as resource_exhausted, then it is halved until the halves are accepted, and nothing is retried", async () => {
      const t = setup();
      t.api.answer = (ids) => {
        if (ids.length > 2) throw refused(Code.ResourceExhausted);
        return persisted(ids);
      };
      await t.process(records("a", "b", "c", "d", "e"));
      expect(t.api.calls).to.deep.equal([["a", "b", "c", "d", "e"], ["a", "b", "c"], ["a", "b"], ["c"], ["d", "e"]]);
      expect(t.partition.commits).to.deep.equal(["5"]);
      expect(t.retrying).to.be.empty;
      expect(await t.apiCalls("resource_exhausted")).to.equal(2);
      expect(await t.apiCalls("ok")).to.equal(3);
    });

    it("when even one product is refused as resource_exhausted not for its size (load), then the halving ends at that record, which is retried as transient and never dead-lettered", async () => {
      const t = setup();
      t.api.answer = (ids, call) => {
        if (call <= 2) throw refused(Code.ResourceExhausted);
        return persisted(ids);
      };
      await t.process(records("a", "b"));
      expect(t.api.calls, "the second half waits for the retry").to.deep.equal([["a", "b"], ["a"], ["a", "b"]]);
      expect(t.retrying.map((event) => [event.offset, event.attempt, event.reason])).to.deep.equal([
        ["0", 1, "resource_exhausted"],
      ]);
      expect(t.deadLetters.publishes).to.be.empty;
      expect(t.partition.commits).to.deep.equal(["2"]);
    });
  });

  describe("refused for its size: split the call, dead-letter only a product too large alone", () => {
    const refusals = [
      {
        by: "the API (connect-es's readMaxBytes answer)",
        error: () => refused(Code.ResourceExhausted, "message size 5042 is larger than configured readMaxBytes 4096"),
        reason: /^the product's BatchCreateProducts request is \d+ bytes, over the API's MAX_BODY_BYTES \(4096\)$/,
      },
      {
        by: "the API over the Connect protocol (no size in its answer)",
        error: () => refused(Code.ResourceExhausted, "message size is larger than configured readMaxBytes 4096"),
        reason: /over the API's MAX_BODY_BYTES \(4096\)$/,
      },
      {
        by: "a proxy (HTTP 413, which connect-es reports as unknown)",
        error: () => refused(Code.Unknown, "HTTP 413"),
        reason: /over the body limit of a proxy in front of the API \(it answered HTTP 413\)$/,
      },
    ];
    for (const { by, error, reason } of refusals) {
      it(`when calls are refused for their size by ${by}, then they are halved, the product too large alone is dead-lettered as record_too_large with its size and the limit, and its neighbours are persisted`, async () => {
        const t = setup();
        t.api.answer = (ids) => {
          if (ids.includes("big") || ids.length > 2) throw error();
          return persisted(ids);
        };
        await t.process(records("a", "b", "big", "c", "d"));
        expect(t.api.calls).to.deep.equal([
          ["a", "b", "big", "c", "d"],
          ["a", "b", "big"],
          ["a", "b"],
          ["big"],
          ["c", "d"],
        ]);
        expect(published(t.deadLetters.publishes)).to.deep.equal([["2:record_too_large"]]);
        const letter = t.deadLetters.publishes[0]?.[0];
        expect(letter?.error.message).to.match(reason);
        const parsed = parseRecord(record(2, "big"));
        const source = { topic: TOPIC, partition: PARTITION, offset: 2n };
        const bytes = parsed.ok ? requestBytes([{ product: parsed.product, source }]) : 0;
        expect(letter?.error.message, "the size of the product's request").to.include(` ${bytes} bytes`);
        expect(letter?.attempts).to.equal(1);
        expect(t.partition.commits).to.deep.equal(["5"]);
        expect(t.retrying).to.be.empty;
        expect(await t.count("records", { outcome: "persisted" })).to.equal(4);
      });
    }

    it("when a call is refused with another unknown error, then it is retried whole, neither split nor dead-lettered", async () => {
      const t = setup();
      t.api.answer = (ids, call) => {
        if (call === 1) throw refused(Code.Unknown, "HTTP 500");
        return persisted(ids);
      };
      await t.process(records("a", "b"));
      expect(t.api.calls).to.deep.equal([
        ["a", "b"],
        ["a", "b"],
      ]);
      expect(t.deadLetters.publishes).to.be.empty;
    });
  });

  describe("transient errors: retry with backoff and heartbeats, never dead-letter", () => {
    const operatorCodes = [
      Code.Unauthenticated,
      Code.PermissionDenied,
      Code.Unimplemented,
      Code.InvalidArgument,
      Code.OutOfRange,
    ];
    const transientCodes = [Code.Unavailable, Code.DeadlineExceeded, Code.Internal, Code.Unknown, Code.Aborted];
    const otherCodes = [Code.Canceled, Code.FailedPrecondition, Code.AlreadyExists, Code.NotFound, Code.DataLoss];
    for (const code of [...transientCodes, ...operatorCodes, ...otherCodes]) {
      const name = codeToString(code);
      const level = operatorCodes.includes(code) ? "error" : "warn";
      it(`when the call fails with ${name}, then it is retried with a growing backoff, heartbeating through it, logged at ${level} and never dead-lettered`, async () => {
        const t = setup();
        t.api.answer = (ids, call) => {
          if (call <= 3) throw refused(code);
          return persisted(ids);
        };
        await t.process(records("a", "b"));
        expect(t.api.calls).to.have.length(4);
        expect(t.retrying).to.deep.equal(
          [100, 200, 400].map((delayMs, index) => ({
            topic: TOPIC,
            partition: PARTITION,
            offset: "0",
            attempt: index + 1,
            delayMs,
            reason: name,
          })),
        );
        const slept = t.clock.sleeps.reduce((sum, ms) => sum + ms, 0);
        expect(slept, "the backoffs are waited out in full").to.equal(700);
        expect(Math.max(...t.clock.sleeps), "no sleep longer than a heartbeat interval").to.equal(HEARTBEAT_MS);
        // A heartbeat before each sleep and at the end of each backoff, then one after the commit.
        expect(t.partition.heartbeats).to.equal(t.clock.sleeps.length + 3 + 1);
        expect(t.deadLetters.publishes).to.be.empty;
        expect(t.partition.commits).to.deep.equal(["2"]);
        expect(await t.count("retries", { reason: name })).to.equal(3);
        expect(await t.apiCalls(name)).to.equal(3);
        const levels = t.logs.filter((log) => log.msg === "transient failure, retrying").map((log) => log.level);
        expect(levels).to.deep.equal([1, 2, 3].map(() => (level === "error" ? 50 : 40)));
      });
    }

    it("when the backoff reaches its cap, then later attempts wait the cap", async () => {
      const t = setup();
      t.api.answer = (ids, call) => {
        if (call <= 6) throw refused(Code.Unavailable);
        return persisted(ids);
      };
      await t.process(records("a"));
      expect(t.retrying.map((event) => event.delayMs)).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
    });

    it("when a call succeeds after failures, then the next failure of the same chunk backs off from the initial delay again", async () => {
      const t = setup();
      t.api.answer = (ids, call) => {
        if (call <= 4 || call === 6) throw refused(Code.Unavailable);
        if (call === 5)
          return ids.map((id) => (id === "a" ? created : { ok: false, code: "unavailable", message: "" }));
        return persisted(ids);
      };
      await t.process(records("a", "b"));
      expect(t.retrying.map((event) => [event.offset, event.attempt, event.delayMs])).to.deep.equal([
        ["0", 1, 100],
        ["0", 2, 200],
        ["0", 3, 400],
        ["0", 4, 800],
        ["1", 1, 100],
        ["1", 2, 200],
      ]);
      expect(t.partition.commits).to.deep.equal(["1", "2"]);
    });

    it("when a chunk succeeds after failures, then the next chunk's first failure waits the initial delay", async () => {
      const t = setup({ config: { batchSize: 1 } });
      t.api.answer = (ids, call) => {
        if (call <= 5 || call === 7) throw refused(Code.Unavailable);
        return persisted(ids);
      };
      await t.process(records("a", "b"));
      expect(t.retrying.map((event) => [event.offset, event.delayMs])).to.deep.equal([
        ["0", 100],
        ["0", 200],
        ["0", 400],
        ["0", 800],
        ["0", 1000],
        ["1", 100],
      ]);
    });

    it("when a dead letter is rejected on a later attempt after a reset, then its x-attempts still counts every call", async () => {
      const t = setup();
      t.api.answer = (ids, call) => {
        if (call === 1) throw refused(Code.Unavailable);
        if (call === 2)
          return ids.map((id) => (id === "a" ? created : { ok: false, code: "unavailable", message: "" }));
        return [{ ok: false, code: "invalid_argument", message: `${ids[0]}: bad` }];
      };
      await t.process(records("a", "b"));
      expect(t.deadLetters.publishes[0]?.[0]?.attempts).to.equal(3);
      expect(t.partition.commits).to.deep.equal(["1", "2"]);
    });

    it("when a product's result is transient, then the records before it are committed and it and those after it are sent again after a backoff", async () => {
      const t = setup();
      t.api.answer = (ids, call) =>
        call === 1
          ? ids.map((id) => (id === "b" ? { ok: false, code: "unavailable", message: "database down" } : created))
          : persisted(ids);
      await t.process(records("a", "b", "c"));
      expect(t.api.calls).to.deep.equal([
        ["a", "b", "c"],
        ["b", "c"],
      ]);
      expect(t.partition.resolved).to.deep.equal(["0", "2"]);
      expect(t.partition.commits).to.deep.equal(["1", "3"]);
      expect(t.retrying.map((event) => [event.offset, event.reason])).to.deep.equal([["1", "unavailable"]]);
      expect(t.deadLetters.publishes).to.be.empty;
    });

    it("when the API answers fewer results than products, then the records without one are retried as internal", async () => {
      const t = setup();
      t.api.answer = (ids, call) => (call === 1 ? persisted(ids.slice(0, 1)) : persisted(ids));
      await t.process(records("a", "b"));
      expect(t.api.calls).to.deep.equal([["a", "b"], ["b"]]);
      expect(t.retrying.map((event) => [event.offset, event.reason])).to.deep.equal([["1", "internal"]]);
      expect(t.partition.commits).to.deep.equal(["1", "2"]);
    });

    it("when the API call is slow, then the member heartbeats at every interval during it, and the timer ends with the call", async () => {
      const t = setup();
      t.api.answer = (ids) => {
        expect(t.clock.tickers.size, "a heartbeat timer during the call").to.equal(1);
        t.clock.tick();
        t.clock.tick();
        t.clock.tick();
        return persisted(ids);
      };
      await t.process(records("a"));
      expect(t.partition.heartbeats, "three during the call, one after the commit").to.equal(4);
      expect(t.clock.tickers.size, "no heartbeat timer after the call").to.equal(0);
    });
  });

  describe("dead-letter publishing", () => {
    it("when publishing a dead letter fails, then it is retried as transient until the broker acknowledges it, the records behind it wait, and persisted records are not sent again", async () => {
      const t = setup();
      t.deadLetters.onPublish = (publish) => {
        if (publish <= 2) throw new DeadLetterPublishError(1, { cause: new Error("broker down") });
      };
      await t.process(records("a", null, "c"));
      expect(t.api.calls).to.deep.equal([["a", "c"]]);
      expect(published(t.deadLetters.publishes)).to.deep.equal([
        ["1:invalid_json"],
        ["1:invalid_json"],
        ["1:invalid_json"],
      ]);
      expect(t.partition.commits).to.deep.equal(["1", "3"]);
      expect(t.retrying.map((event) => [event.offset, event.attempt, event.reason])).to.deep.equal([
        ["1", 1, "dead_letter_publish"],
        ["1", 2, "dead_letter_publish"],
      ]);
      expect(
        t.deadLettered.map((event) => event.offset),
        "reported once, when acknowledged",
      ).to.deep.equal(["1"]);
      expect(await t.count("records", { outcome: "dead_lettered" })).to.equal(1);
    });

    it("when the API and the dead-letter publish both fail, then the API's failure is the reason reported", async () => {
      const t = setup();
      t.api.answer = (ids, call) => {
        if (call === 1) throw refused(Code.Unavailable);
        return persisted(ids);
      };
      t.deadLetters.onPublish = (publish) => {
        if (publish === 1) throw new DeadLetterPublishError(1, { cause: new Error("broker down") });
      };
      await t.process(records(null, "b"));
      expect(t.retrying.map((event) => event.reason)).to.deep.equal(["unavailable"]);
      expect(t.partition.commits).to.deep.equal(["2"]);
    });

    it("when publishing a dead letter is slow, then the member heartbeats at every interval during it, and the timer ends with the publish", async () => {
      const t = setup();
      t.deadLetters.onPublish = () => {
        expect(t.clock.tickers.size, "a heartbeat timer during the publish").to.equal(1);
        t.clock.tick();
        t.clock.tick();
      };
      await t.process(records(null));
      expect(t.partition.heartbeats, "two during the publish, one after the commit").to.equal(3);
      expect(t.clock.tickers.size, "no heartbeat timer after the publish").to.equal(0);
      expect(t.partition.commits).to.deep.equal(["1"]);
    });

    it("when the error topic refuses a dead letter as too large, then it is published truncated (no value, reason and coordinates kept), and the partition moves on without a retry", async () => {
      const t = setup();
      const messages = records("a", null, "c");
      (messages[1] as { value: Buffer }).value = Buffer.from(`{${"x".repeat(5000)}`);
      t.deadLetters.onPublish = (publish) => {
        const letters = t.deadLetters.publishes[publish - 1] ?? [];
        if (valueBytes(letters) > 4096) throw tooLarge(letters.length);
      };
      await t.process(messages);
      expect(
        t.deadLetters.publishes.map((letters) => letters.map((l) => [l.message.offset, !!l.truncated])),
      ).to.deep.equal([[["1", false]], [["1", true]]]);
      const letter = t.deadLetters.publishes[1]?.[0];
      expect(letter).to.include({ topic: TOPIC, partition: PARTITION, attempts: 1 });
      expect(letter?.error.code).to.equal("invalid_json");
      expect(t.deadLettered.map((event) => [event.offset, event.code, event.truncated])).to.deep.equal([
        ["1", "invalid_json", true],
      ]);
      expect(t.partition.commits).to.deep.equal(["3"]);
      expect(t.retrying).to.be.empty;
      expect(await t.count("records", { outcome: "dead_lettered" })).to.equal(1);
    });

    it("when several dead letters together are too large, then they are halved until they fit, in offset order, and only the one too large alone is truncated", async () => {
      const t = setup();
      const messages = records(null, null, null, null);
      (messages[2] as { value: Buffer }).value = Buffer.from(`{${"x".repeat(5000)}`);
      t.deadLetters.onPublish = (publish) => {
        const letters = t.deadLetters.publishes[publish - 1] ?? [];
        if (valueBytes(letters) > 4096) throw tooLarge(letters.length);
      };
      await t.process(messages);
      const accepted = t.deadLetters.publishes.filter((letters) => valueBytes(letters) <= 4096);
      expect(
        accepted.map((letters) => letters.map((l) => `${l.message.offset}${l.truncated ? " truncated" : ""}`)),
      ).to.deep.equal([["0", "1"], ["2 truncated"], ["3"]]);
      expect(t.deadLettered.map((event) => [event.offset, event.truncated])).to.deep.equal([
        ["0", false],
        ["1", false],
        ["2", true],
        ["3", false],
      ]);
      expect(t.partition.commits).to.deep.equal(["4"]);
      expect(t.retrying).to.be.empty;
    });

    it("when even the truncated dead letter is refused as too large, then it is retried at error level as dead_letter_too_large, and nothing is committed past it", async () => {
      const t = setup();
      t.deadLetters.onPublish = (publish) => {
        const letters = t.deadLetters.publishes[publish - 1] ?? [];
        throw tooLarge(letters.length);
      };
      t.events.on("retrying", ({ attempt }) => {
        if (attempt === 3) t.stopping.abort();
      });
      await t.process(records("a", null, "c"));
      expect(t.retrying.map((event) => [event.offset, event.reason])).to.deep.equal([
        ["1", "dead_letter_too_large"],
        ["1", "dead_letter_too_large"],
        ["1", "dead_letter_too_large"],
      ]);
      expect(t.partition.commits).to.deep.equal(["1"]);
      expect(t.deadLettered).to.be.empty;
      const levels = t.logs.filter((log) => log.msg === "transient failure, retrying").map((log) => log.level);
      expect(levels).to.deep.equal([50, 50, 50]);
    });

    it("when the dead-letter publisher throws anything else, then it is thrown to kafkajs and nothing is committed", async () => {
      const bug = new TypeError("bug");
      const t = setup();
      t.deadLetters.onPublish = () => {
        throw bug;
      };
      expect(await thrownBy(t.process(records(null, "b")))).to.equal(bug);
      expect(t.partition.commits).to.be.empty;
      expect(t.deadLettered).to.be.empty;
      expect(t.retrying).to.be.empty;
    });
  });

  describe("stuck partitions: unfinished records and their age, before any commit", () => {
    /** The partition's gauges as a scrape reads them. */
    const gauges = async (t: ReturnType<typeof setup>) => {
      const read = async (name: string) =>
        (await t.metrics.registry.getSingleMetric(name)?.get())?.values.map((v) => [v.labels.partition, v.value]);
      return {
        unfinished: await read("scheduler_unfinished_records"),
        age: await read("scheduler_oldest_unfinished_record_age_seconds"),
        lag: await read("scheduler_consumer_lag"),
      };
    };

    it("when the API is down, then the partition's unfinished records and the age of the oldest grow at every scrape while nothing commits, and read 0 once they are finished", async () => {
      const t = setup();
      const scrapes: Awaited<ReturnType<typeof gauges>>[] = [];
      t.api.answer = async (ids, call) => {
        scrapes.push(await gauges(t));
        if (call <= 3) throw refused(Code.Unavailable);
        return persisted(ids);
      };
      await t.process(records("a", "b"));
      const p = String(PARTITION);
      expect(scrapes.map((scrape) => scrape.unfinished)).to.deep.equal([1, 2, 3, 4].map(() => [[p, 2]]));
      expect(
        scrapes.map((scrape) => scrape.age),
        "seconds waited so far: 0, then 0.1, 0.3, 0.7",
      ).to.deep.equal([0, 0.1, 0.3, 0.7].map((age) => [[p, age]]));
      expect(scrapes[0]?.lag, "the lag from the batch's first record, before any commit").to.deep.equal([[p, 12]]);
      expect(t.partition.commits).to.deep.equal(["2"]);
      expect(await gauges(t)).to.deep.include({ unfinished: [[p, 0]], age: [[p, 0]] });
    });

    it("when part of the batch is committed, then the count drops to the records left and the age stays the batch's", async () => {
      const t = setup({ config: { batchSize: 1 } });
      const seen: [number, number][] = [];
      t.api.answer = (ids, call) => {
        const progress = t.metrics.unfinished.snapshot()[0];
        seen.push([progress?.unfinishedRecords ?? -1, progress?.oldestUnfinishedAgeSeconds ?? -1]);
        if (call === 2) throw refused(Code.Unavailable);
        return persisted(ids);
      };
      await t.process(records("a", "b", "c"));
      expect(seen).to.deep.equal([
        [3, 0],
        [2, 0],
        [2, 0.1],
        [1, 0.1],
      ]);
    });

    it("when the batch ends without finishing (the scheduler stops), then the partition reads 0: nothing of it waits here any more", async () => {
      const t = setup();
      t.api.answer = () => Promise.reject(refused(Code.Unavailable));
      t.clock.onSleep = () => t.stopping.abort();
      await t.process(records("a", "b"));
      expect(t.partition.commits).to.be.empty;
      expect(t.metrics.unfinished.snapshot()).to.deep.equal([
        { topic: TOPIC, partition: PARTITION, unfinishedRecords: 0, oldestUnfinishedAgeSeconds: 0 },
      ]);
    });
  });

  describe("rebalances, stops and errors for kafkajs", () => {
    it("when the API throws something that is not a ConnectError (a bug), then it is thrown to kafkajs without a commit", async () => {
      const bug = new TypeError("cannot read properties of undefined");
      const t = setup();
      t.api.answer = () => Promise.reject(bug);
      expect(await thrownBy(t.process(records("a")))).to.equal(bug);
      expect(t.partition.commits).to.be.empty;
      expect(t.retrying).to.be.empty;
    });

    it("when the commit fails, then the error is thrown to kafkajs and the next chunk is not sent", async () => {
      const t = setup({ config: { batchSize: 2 } });
      t.partition.onCommit = () => {
        throw rebalance;
      };
      expect(await thrownBy(t.process(records("a", "b", "c", "d")))).to.equal(rebalance);
      expect(t.api.calls).to.deep.equal([["a", "b"]]);
      expect(t.committed).to.be.empty;
    });

    it("when a heartbeat during a call fails, then the call's outcome is still committed and the heartbeat after the commit throws the rebalance", async () => {
      const t = setup();
      t.api.answer = (ids) => {
        t.clock.tick();
        return persisted(ids);
      };
      t.partition.onHeartbeat = () => {
        throw rebalance;
      };
      expect(await thrownBy(t.process(records("a")))).to.equal(rebalance);
      expect(t.partition.heartbeats, "one during the call, one after the commit").to.equal(2);
      expect(t.partition.commits).to.deep.equal(["1"]);
    });

    it("when the consumer stops during a call that then fails, then the finished prefix is committed, nothing is retried and the next chunk is not started", async () => {
      const t = setup({ config: { batchSize: 2 } });
      t.api.answer = () => {
        t.partition.running = false;
        return [created, { ok: false, code: "unavailable", message: "database down" }];
      };
      await t.process(records("a", "b", "c", "d"));
      expect(t.api.calls).to.deep.equal([["a", "b"]]);
      expect(t.partition.commits).to.deep.equal(["1"]);
      expect(t.retrying).to.be.empty;
      expect(t.clock.sleeps).to.be.empty;
    });

    it("when a heartbeat during a backoff reports a rebalance, then it is thrown to kafkajs and nothing more is sent or committed", async () => {
      const t = setup();
      t.api.answer = () => [created, { ok: false, code: "unavailable", message: "database down" }];
      t.partition.onHeartbeat = () => {
        throw rebalance;
      };
      expect(await thrownBy(t.process(records("a", "b")))).to.equal(rebalance);
      expect(t.api.calls).to.have.length(1);
      expect(t.partition.commits).to.deep.equal(["1"]);
      expect(t.clock.sleeps).to.be.empty;
    });

    it("when the consumer stops during a backoff, then the wait ends, no further call is made and the unfinished records stay uncommitted", async () => {
      const t = setup();
      t.api.answer = () => Promise.reject(refused(Code.Unavailable));
      t.clock.onSleep = () => {
        t.partition.running = false;
      };
      await t.process(records("a", "b"));
      expect(t.api.calls).to.have.length(1);
      expect(t.clock.sleeps).to.deep.equal([HEARTBEAT_MS]);
      expect(t.partition.resolved).to.be.empty;
      expect(t.partition.commits).to.be.empty;
    });

    it("when the scheduler stops during a backoff, then the wait ends, no further call is made and the unfinished records stay uncommitted", async () => {
      const t = setup();
      t.api.answer = () => Promise.reject(refused(Code.Unavailable));
      t.clock.onSleep = () => t.stopping.abort();
      await t.process(records("a", "b"));
      expect(t.api.calls).to.have.length(1);
      expect(t.clock.sleeps).to.deep.equal([HEARTBEAT_MS]);
      expect(t.partition.commits).to.be.empty;
    });

    it("when the scheduler stops during a long backoff on the system clock, then processBatch returns at once", async () => {
      const t = setup({
        clock: systemClock,
        config: { retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 }, heartbeatIntervalMs: 30_000 },
      });
      t.api.answer = () => Promise.reject(refused(Code.Unavailable));
      const waiting = new Promise((resolve) => t.events.once("retrying", resolve));
      const started = Date.now();
      const processing = t.process(records("a"));
      await waiting;
      t.stopping.abort();
      await processing;
      expect(Date.now() - started).to.be.lessThan(1000);
      expect(t.api.calls).to.have.length(1);
      expect(t.partition.commits).to.be.empty;
    });

    it("when the scheduler has stopped before the batch, then nothing is sent or committed", async () => {
      const t = setup();
      t.stopping.abort();
      await t.process(records("a"));
      expect(t.api.calls).to.be.empty;
      expect(t.partition.commits).to.be.empty;
    });

    it("when the consumer is not running when the batch arrives, then nothing is sent or committed", async () => {
      const t = setup();
      t.partition.running = false;
      await t.process(records("a"));
      expect(t.api.calls).to.be.empty;
      expect(t.partition.commits).to.be.empty;
    });

    it("when the partition becomes stale during a chunk, then the chunk is committed and the next one is not started", async () => {
      const t = setup({ config: { batchSize: 2 } });
      t.api.answer = (ids) => {
        t.partition.stale = true;
        return persisted(ids);
      };
      await t.process(records("a", "b", "c", "d"));
      expect(t.api.calls).to.deep.equal([["a", "b"]]);
      expect(t.partition.commits).to.deep.equal(["2"]);
    });
  });
});
