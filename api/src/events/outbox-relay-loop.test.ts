import { expect } from "chai";
import { pino } from "pino";
import {
  createOutboxRelayLoop,
  type EncodedEvent,
  type EventPublisher,
  type OutboxBacklog,
  type OutboxRelay,
  type OutboxRelayLoopOptions,
  type OutboxSession,
  type OutboxStore,
  type RelayMetrics,
  type RelayTiming,
} from "./outbox-relay-loop.js";
import type { OutboxRow } from "./product-persisted.js";

const POLL_MS = 1000;
const STANDBY_MS = 2000;
const GRACE_MS = 5000;
const HEARTBEAT_MS = 3000;
/** What the fake encodes a row to unless a test says otherwise. */
const EVENT_BYTES = 100;

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Lets the relay run until condition holds; fails after a few hundred turns of the event loop (no real time). */
async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 500; turn++) {
    if (condition()) return;
    await nextTurn();
  }
  throw new Error(`never happened: ${what}`);
}

/** Enough turns for anything that was going to happen without a timer or the test's help. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 50; turn++) await nextTurn();
}

const row = (id: number, productId = `product-${id}`): OutboxRow => ({
  id: String(id),
  event_id: `event-${id}`,
  product_id: productId,
  persisted_at: "2024-07-01 00:00:00.123456+00",
  // The loop never reads the product: the publisher encodes it.
  name: "",
  description: "",
  amount: "1",
  currency: "BRL",
  quantity: 1,
  availability_at: "2024-07-01 00:00:00+00",
  category: "",
  version: 1,
  created_at: "2024-07-01 00:00:00+00",
  updated_at: "2024-07-01 00:00:00+00",
});

const connectionLost = () => new Error("Connection terminated unexpectedly");

type SessionOp = "connect" | "lease" | "read" | "delete" | "heartbeat";

/**
 * The outbox table and its lease, shared by every relay of a test like one database. What each
 * relay does is written to one journal, e.g. "A publish 1,2", "A delete 1,2".
 */
class FakeOutbox {
  readonly journal: string[] = [];
  /** Ids some broker acknowledged, and ids deleted before that (must stay empty). */
  readonly acknowledged = new Set<string>();
  readonly deletedUnacknowledged: string[] = [];
  rows: OutboxRow[] = [];
  holder: FakeSession | "another process" | undefined;
  readonly sessions: FakeSession[] = [];
  /** Called at the start of every read, e.g. to deliver a notification meanwhile. */
  onRead: (() => void) | undefined;
  /** Encoded size of a row's event, by id (EVENT_BYTES when absent). */
  readonly bytes = new Map<string, number>();
  /** The broker's limit per request: a larger publish fails with MESSAGE_TOO_LARGE. */
  brokerMaxBytes = Number.POSITIVE_INFINITY;
  /** The broker's current producer epoch for the relays' transactional id; a claim starts the next. */
  epoch = 0;
  /** Heartbeats of each relay's sessions. */
  readonly heartbeats = new Map<string, number>();
  oldestAgeSeconds = 0;
  private readonly failures: { relay: string; op: SessionOp }[] = [];

  insert(...ids: number[]): void {
    this.rows.push(...ids.map((id) => row(id)));
  }

  /** Rows of one product, e.g. its versions 1 and 2 as ids 1 and 3. */
  insertVersions(productId: string, ...ids: number[]): void {
    this.rows.push(...ids.map((id) => row(id, productId)));
  }

  ids(): string[] {
    return this.rows.map((r) => r.id);
  }

  /** The next `op` of relay's session fails as if the connection dropped (and the lease with it). */
  failNext(relay: string, op: SessionOp): void {
    this.failures.push({ relay, op });
  }

  storeFor(relay: string): OutboxStore {
    return {
      connect: async () => {
        this.journal.push(`${relay} connect`);
        if (this.takeFailure(relay, "connect")) throw new Error("ECONNREFUSED");
        const session = new FakeSession(this, relay);
        this.sessions.push(session);
        return session;
      },
    };
  }

  /** NOTIFY product_events from another replica. */
  notify(): void {
    for (const session of this.sessions) if (!session.closed) session.listener?.();
  }

  loseConnection(session: FakeSession): void {
    session.closed = true;
    if (this.holder === session) this.holder = undefined;
  }

  takeFailure(relay: string, op: SessionOp): boolean {
    const index = this.failures.findIndex((f) => f.relay === relay && f.op === op);
    if (index < 0) return false;
    this.failures.splice(index, 1);
    return true;
  }

  count(entry: string): number {
    return this.journal.filter((e) => e === entry).length;
  }
}

class FakeSession implements OutboxSession {
  closed = false;
  listener: (() => void) | undefined;

  constructor(
    private readonly outbox: FakeOutbox,
    readonly relay: string,
  ) {}

  private check(op: SessionOp): void {
    if (this.outbox.takeFailure(this.relay, op)) this.outbox.loseConnection(this);
    if (this.closed) throw connectionLost();
  }

  async tryAcquireLease(): Promise<boolean> {
    this.check("lease");
    this.outbox.holder ??= this;
    const leader = this.outbox.holder === this;
    this.outbox.journal.push(`${this.relay} lease ${leader ? "won" : "held elsewhere"}`);
    return leader;
  }

  async listen(onNotification: () => void): Promise<void> {
    this.listener = onNotification;
  }

  async readBatch(limit: number): Promise<OutboxRow[]> {
    this.outbox.onRead?.();
    this.check("read");
    const head = [...this.outbox.rows].sort((a, b) => Number(a.id) - Number(b.id)).slice(0, limit);
    // As the store promises: the oldest row of each product among them.
    const rows = head.filter((r, index) => head.findIndex((other) => other.product_id === r.product_id) === index);
    this.outbox.journal.push(`${this.relay} read ${rows.map((r) => r.id).join(",")}`);
    return rows;
  }

  async deleteIds(ids: readonly string[]): Promise<void> {
    this.check("delete");
    this.outbox.deletedUnacknowledged.push(...ids.filter((id) => !this.outbox.acknowledged.has(id)));
    this.outbox.rows = this.outbox.rows.filter((r) => !ids.includes(r.id));
    this.outbox.journal.push(`${this.relay} delete ${ids.join(",")}`);
  }

  async heartbeat(): Promise<OutboxBacklog> {
    this.check("heartbeat");
    this.outbox.heartbeats.set(this.relay, (this.outbox.heartbeats.get(this.relay) ?? 0) + 1);
    return { pending: this.outbox.rows.length, oldestAgeSeconds: this.outbox.oldestAgeSeconds };
  }

  async close(): Promise<void> {
    this.outbox.loseConnection(this);
  }
}

/**
 * How the broker answers a publish: ack; fail (retriable; as the Kafka publisher does, the epoch
 * ends with it); hang until the test acks it or the publisher is released.
 */
type Outcome = "ack" | "fail" | "hang";

const protocolError = (type: string, message: string) => Object.assign(new Error(message), { type, retriable: false });

/**
 * A broker with transactions: acknowledges by default; the test scripts failures and publishes
 * that hang. A claim starts the next epoch of the shared transactional id; a publish in an older
 * epoch is refused (fenced), also one that was hanging when another relay claimed.
 */
class FakePublisher implements EventPublisher {
  readonly outcomes: Outcome[] = [];
  failForever = false;
  claimFails = 0;
  /** No epoch: never claimed, or released. */
  closed = true;
  private epoch: number | undefined;
  private hanging: { ack: () => void; fail: (error: Error) => void } | undefined;

  constructor(
    private readonly outbox: FakeOutbox,
    private readonly relay: string,
  ) {}

  encode = (r: OutboxRow): EncodedEvent => ({ row: r, bytes: this.outbox.bytes.get(r.id) ?? EVENT_BYTES });

  async claim(): Promise<void> {
    if (this.epoch !== undefined) return;
    if (this.claimFails > 0) {
      this.claimFails--;
      await nextTurn();
      throw Object.assign(new Error("Connection error: ECONNREFUSED"), { retriable: true });
    }
    this.epoch = ++this.outbox.epoch;
    this.closed = false;
    this.outbox.journal.push(`${this.relay} claim`);
  }

  /** Journaled as "A publish 1,2|3": one transaction, its produce requests separated by |. */
  publish(requests: readonly (readonly EncodedEvent[])[]): Promise<void> {
    const events = requests.flat();
    const ids = events.map((e) => e.row.id);
    this.outbox.journal.push(
      `${this.relay} publish ${requests.map((r) => r.map((e) => e.row.id).join(",")).join("|")}`,
    );
    if (this.epoch === undefined) return Promise.reject(new Error("publish before claim"));
    const epoch = this.epoch;
    const fenced = () => epoch !== this.outbox.epoch;
    const fence = () => {
      this.outbox.journal.push(`${this.relay} fenced ${ids.join(",")}`);
      this.epoch = undefined;
      return protocolError("INVALID_PRODUCER_EPOCH", "Producer attempted an operation with an old epoch");
    };
    const acknowledge = () => {
      for (const id of ids) this.outbox.acknowledged.add(id);
      this.outbox.journal.push(`${this.relay} ack ${ids.join(",")}`);
    };
    // On a later turn, as a broker's answer would be (so a loop that never stops retrying cannot starve the test's timers).
    const later = (error: Error) =>
      nextTurn().then(() => {
        throw error;
      });
    if (fenced()) return later(fence());
    const largest = Math.max(...requests.map((r) => r.reduce((sum, e) => sum + e.bytes, 0)));
    if (largest > this.outbox.brokerMaxBytes) {
      this.epoch = undefined;
      return later(
        protocolError("MESSAGE_TOO_LARGE", "The request included a message larger than the max message size"),
      );
    }
    const outcome = this.failForever ? "fail" : (this.outcomes.shift() ?? "ack");
    if (outcome === "fail") {
      this.epoch = undefined;
      return later(Object.assign(new Error("Connection error: ECONNREFUSED"), { retriable: true }));
    }
    if (outcome === "hang") {
      return new Promise((resolve, reject) => {
        this.hanging = {
          ack: () => {
            if (fenced()) {
              reject(fence());
              return;
            }
            acknowledge();
            resolve();
          },
          fail: reject,
        };
      });
    }
    acknowledge();
    return Promise.resolve();
  }

  isHanging(): boolean {
    return this.hanging !== undefined;
  }

  ackHanging(): void {
    const hanging = this.hanging;
    this.hanging = undefined;
    hanging?.ack();
  }

  async release(): Promise<void> {
    this.closed = true;
    this.epoch = undefined;
    this.hanging?.fail(new Error("The producer is disconnected"));
    this.hanging = undefined;
  }
}

/** Waits end only when the test says so (or their signal aborts); jitter is at its ceiling. */
class FakeTiming implements RelayTiming {
  private readonly pending: { ms: number; end: () => void }[] = [];

  constructor(
    private readonly journal: string[],
    private readonly relay: string,
  ) {}

  random = () => 1;

  sleep = (ms: number, signal: AbortSignal): Promise<void> => {
    this.journal.push(`${this.relay} wait ${ms}`);
    if (signal.aborted || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = {
        ms,
        end: () => {
          this.pending.splice(this.pending.indexOf(entry), 1);
          signal.removeEventListener("abort", entry.end);
          resolve();
        },
      };
      this.pending.push(entry);
      signal.addEventListener("abort", entry.end, { once: true });
    });
  };

  isWaiting(ms: number): boolean {
    return this.pending.some((entry) => entry.ms === ms);
  }

  /** Waits until the relay sleeps ms, then lets that time pass. */
  async elapse(ms: number): Promise<void> {
    await eventually(() => this.isWaiting(ms), `a wait of ${ms} ms`);
    this.pending.find((entry) => entry.ms === ms)?.end();
  }

  endAll(): void {
    for (const entry of [...this.pending]) entry.end();
  }
}

class FakeMetrics implements RelayMetrics {
  published = 0;
  failures = 0;
  readonly active: number[] = [];
  readonly pending: number[] = [];
  readonly oldestAge: number[] = [];
  eventsPublished = {
    inc: (count: number) => {
      this.published += count;
    },
  };
  eventPublishFailures = {
    inc: () => {
      this.failures++;
    },
  };
  relayActive = {
    set: (value: number) => {
      this.active.push(value);
    },
  };
  outboxPending = {
    set: (value: number) => {
      this.pending.push(value);
    },
  };
  outboxOldestAgeSeconds = {
    set: (value: number) => {
      this.oldestAge.push(value);
    },
  };
}

interface LogRecord {
  level: number;
  msg: string;
  maxBytes?: number;
  events?: number;
  attempt?: number;
  backoffMs?: number;
  pending?: number;
  err?: { message: string };
}

interface TestRelay {
  relay: OutboxRelay;
  publisher: FakePublisher;
  timing: FakeTiming;
  metrics: FakeMetrics;
  logs: LogRecord[];
}

describe("outbox relay loop", function () {
  // No real waits: a test that takes longer is stuck.
  this.timeout(2000);
  let outbox: FakeOutbox;
  let started: TestRelay[];

  const startRelay = (name = "A", options: Partial<OutboxRelayLoopOptions> = {}): TestRelay => {
    const publisher = new FakePublisher(outbox, name);
    const timing = new FakeTiming(outbox.journal, name);
    const metrics = new FakeMetrics();
    const logs: LogRecord[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    const relay = createOutboxRelayLoop(
      { store: outbox.storeFor(name), publisher, logger, metrics, timing },
      { batchSize: 100, maxBatchBytes: 100_000, pollIntervalMs: POLL_MS, heartbeatMs: HEARTBEAT_MS, ...options },
    );
    relay.start();
    const testRelay = { relay, publisher, timing, metrics, logs };
    started.push(testRelay);
    return testRelay;
  };

  const stopRelay = async ({ relay, timing }: TestRelay) => {
    const stopping = relay.stop();
    timing.endAll();
    await stopping;
  };

  beforeEach(() => {
    outbox = new FakeOutbox();
    started = [];
  });
  afterEach(async () => {
    for (const relay of started) await stopRelay(relay);
  });
  const expectNothingDeletedUnacknowledged = () =>
    expect(outbox.deletedUnacknowledged, "rows deleted before the broker acknowledged them").to.deep.equal([]);

  describe("when it holds the lease", () => {
    it("when the outbox is empty, then it waits the poll interval before reading again", async () => {
      const a = startRelay();
      await eventually(() => a.timing.isWaiting(POLL_MS), "the idle wait");
      expect(a.relay.isActive()).to.equal(true);
      expect(a.metrics.active).to.deep.equal([1]);
      expect(a.logs.map((l) => l.msg)).to.include("outbox relay active");
      outbox.insert(1);
      await settle();
      expect(outbox.count("A read ")).to.equal(1);
      expect(a.publisher.closed).to.equal(false);

      await a.timing.elapse(POLL_MS);
      await eventually(() => outbox.count("A delete 1") === 1, "the row published after the poll interval");
    });

    it("when a notification arrives during the idle wait, then it reads at once", async () => {
      startRelay();
      await eventually(() => outbox.count("A read ") === 1, "the first read");
      outbox.insert(1);
      outbox.notify();
      await eventually(() => outbox.count("A delete 1") === 1, "the row published without waiting");
    });

    it("when wake() is called during the idle wait, then it reads at once", async () => {
      const a = startRelay();
      await eventually(() => a.timing.isWaiting(POLL_MS), "the idle wait");
      outbox.insert(1);
      a.relay.wake();
      await eventually(() => outbox.count("A delete 1") === 1, "the row published without waiting");
    });

    it("when a notification arrives during a read that finds nothing, then it reads again without waiting", async () => {
      const a = startRelay();
      outbox.onRead = () => {
        outbox.onRead = undefined;
        a.relay.wake();
      };
      await eventually(() => a.timing.isWaiting(POLL_MS), "the idle wait");
      expect(outbox.journal.filter((e) => e !== `A wait ${HEARTBEAT_MS}`)).to.deep.equal([
        "A connect",
        "A lease won",
        "A claim",
        "A read ",
        "A read ",
        "A wait 1000",
      ]);
    });

    it("when rows are waiting, then each batch is published in id order and deleted only after the broker acknowledged it", async () => {
      outbox.insert(4, 2, 5, 1, 3);
      const a = startRelay("A", { batchSize: 2 });
      await eventually(() => outbox.rows.length === 0, "the outbox drained");
      expect(outbox.journal.filter((e) => e !== "A read " && !e.includes(" wait "))).to.deep.equal([
        "A connect",
        "A lease won",
        "A claim",
        "A read 1,2",
        "A publish 1,2",
        "A ack 1,2",
        "A delete 1,2",
        "A read 3,4",
        "A publish 3,4",
        "A ack 3,4",
        "A delete 3,4",
        "A read 5",
        "A publish 5",
        "A ack 5",
        "A delete 5",
      ]);
      expect(a.metrics.published).to.equal(5);
      expect(a.metrics.failures).to.equal(0);
      expectNothingDeletedUnacknowledged();
    });

    it("when publishing fails, then the batch is read again and retried with growing backoff, kept until acknowledged, and each failure counted", async () => {
      outbox.insert(1, 2);
      const a = startRelay();
      a.publisher.outcomes.push("fail", "fail", "fail");
      for (const backoffMs of [250, 500, 1000]) {
        await a.timing.elapse(backoffMs);
        expect(outbox.ids()).to.deep.equal(["1", "2"]);
      }
      await eventually(() => outbox.rows.length === 0, "the batch published at the fourth attempt");
      expect(outbox.count("A publish 1,2")).to.equal(4);
      expect(outbox.count("A read 1,2"), "read again before each attempt").to.equal(4);
      expect(outbox.count("A claim"), "a new epoch before each read").to.equal(4);
      expect(a.metrics.failures).to.equal(3);
      expect(a.metrics.published).to.equal(2);
      expectNothingDeletedUnacknowledged();
      const retries = a.logs.filter((l) => l.msg === "event publish failed; retrying");
      expect(retries.map((l) => [l.attempt, l.backoffMs, l.pending])).to.deep.equal([
        [1, 250, 2],
        [2, 500, 2],
        [3, 1000, 2],
      ]);
      expect(retries[0]?.err?.message).to.equal("Connection error: ECONNREFUSED");
    });

    it("when publishing keeps failing, then the backoff stops growing at its cap", async () => {
      outbox.insert(1);
      const a = startRelay("A", { publishBackoff: { initialDelayMs: 250, maxDelayMs: 1000 } });
      a.publisher.failForever = true;
      for (const backoffMs of [250, 500, 1000, 1000, 1000]) await a.timing.elapse(backoffMs);
      expect(outbox.ids()).to.deep.equal(["1"]);
    });
  });

  describe("when batches are large", () => {
    it("when the events of a batch exceed maxBatchBytes, then they go out in one transaction of produce requests of at most that many bytes, deleted once acknowledged", async () => {
      outbox.insert(1, 2, 3, 4, 5);
      for (const id of ["1", "2", "3", "4", "5"]) outbox.bytes.set(id, 400);
      outbox.bytes.set("3", 1500);
      startRelay("A", { maxBatchBytes: 1000 });
      await eventually(() => outbox.rows.length === 0, "the outbox drained");
      expect(outbox.journal.filter((e) => e.includes("publish") || e.includes("delete"))).to.deep.equal([
        "A publish 1,2|3|4,5",
        "A delete 1,2,3,4,5",
      ]);
      expect(outbox.count("A read 1,2,3,4,5"), "one read").to.equal(1);
      expectNothingDeletedUnacknowledged();
    });

    it("when the broker refuses a publish as too large, then the batch is halved until it passes, without waiting, and everything is published", async () => {
      outbox.insert(1, 2, 3, 4, 5, 6, 7, 8);
      for (const id of outbox.ids()) outbox.bytes.set(id, 300);
      outbox.brokerMaxBytes = 1000;
      const a = startRelay("A", { maxBatchBytes: 100_000 });
      await eventually(() => outbox.rows.length === 0, "the outbox drained");
      expect(outbox.journal.filter((e) => e.includes("publish") || e.includes("delete"))).to.deep.equal([
        "A publish 1,2,3,4,5,6,7,8",
        "A publish 1,2,3,4|5,6,7,8",
        "A publish 1,2|3,4|5,6|7,8",
        "A delete 1,2,3,4,5,6,7,8",
      ]);
      expect(
        outbox.journal.filter((e) => /wait (250|500)$/.test(e)),
        "no backoff",
      ).to.deep.equal([]);
      const halvings = a.logs.filter((l) => l.msg === "the broker refused the batch as too large; halving it");
      expect(halvings.map((l) => [l.events, l.maxBytes])).to.deep.equal([
        [8, 1200],
        [4, 600],
      ]);
      expect(a.metrics.failures).to.equal(2);
      expect(a.metrics.published).to.equal(8);
    });

    it("when the broker refuses a single event as too large, then it is kept and retried with backoff, logged as an error", async () => {
      outbox.insert(1);
      outbox.bytes.set("1", 300);
      outbox.brokerMaxBytes = 100;
      const a = startRelay();
      for (const backoffMs of [250, 500]) await a.timing.elapse(backoffMs);
      await eventually(() => outbox.count("A publish 1") === 3, "a third attempt");
      expect(outbox.ids()).to.deep.equal(["1"]);
      const errors = a.logs.filter((l) => l.msg === "the broker refuses a single event as too large");
      expect(errors.map((l) => l.level)).to.deep.equal([50, 50]);
    });
  });

  describe("when one product has several versions waiting", () => {
    it("then a batch holds its oldest only, and the next version goes in a later batch", async () => {
      outbox.insertVersions("p", 1, 3);
      outbox.insert(2);
      startRelay();
      await eventually(() => outbox.rows.length === 0, "the outbox drained");
      expect(outbox.journal.filter((e) => e.includes("publish"))).to.deep.equal(["A publish 1,2", "A publish 3"]);
    });
  });

  describe("when the broker acknowledged a batch but the delete failed", () => {
    it("then the next session deletes those rows before anything else, and they are not published again", async () => {
      outbox.insertVersions("p", 1, 2);
      outbox.failNext("A", "delete");
      const a = startRelay();
      await eventually(() => a.timing.isWaiting(500), "the reconnect backoff");
      expect(outbox.ids()).to.deep.equal(["1", "2"]);
      await a.timing.elapse(500);
      await eventually(() => outbox.rows.length === 0, "the outbox drained");
      const second = outbox.journal.slice(outbox.journal.lastIndexOf("A connect"));
      expect(second.filter((e) => !e.includes(" wait ") && e !== "A read ")).to.deep.equal([
        "A connect",
        "A delete 1",
        "A lease won",
        "A claim",
        "A read 2",
        "A publish 2",
        "A ack 2",
        "A delete 2",
      ]);
      expect(outbox.count("A publish 1"), "published once").to.equal(1);
      expect(a.logs.map((l) => l.msg)).to.include("deleted the events acknowledged before the session failed");
      expect(a.metrics.published).to.equal(2);
    });
  });

  describe("when another relay claims the publisher", () => {
    it("when a deposed relay's publish was held while the new leader published newer versions, then the broker refuses it and the old relay drops its leadership", async () => {
      const a = startRelay("A");
      await eventually(() => a.timing.isWaiting(POLL_MS), "A active and idle");
      const b = startRelay("B");
      await eventually(() => b.timing.isWaiting(STANDBY_MS), "B standby");
      outbox.insertVersions("p", 1);
      a.publisher.outcomes.push("hang");
      a.relay.wake();
      await eventually(() => a.publisher.isHanging(), "A's publish of p@1 in flight");
      // A's process freezes; PostgreSQL ends its session and the lease goes to B.
      outbox.loseConnection(outbox.sessions.find((s) => s.relay === "A")!);
      await b.timing.elapse(STANDBY_MS);
      await eventually(() => outbox.rows.length === 0, "B published p@1");
      outbox.insertVersions("p", 2);
      b.relay.wake();
      await eventually(() => outbox.count("B ack 2") === 1, "B published p@2");

      a.publisher.ackHanging();
      await eventually(() => a.timing.isWaiting(500), "A's reconnect backoff");
      expect(outbox.journal.filter((e) => e.includes(" ack ") || e.includes(" fenced "))).to.deep.equal([
        "B ack 1",
        "B ack 2",
        "A fenced 1",
      ]);
      expect(a.relay.isActive()).to.equal(false);
      expect(a.publisher.closed, "its epoch given up").to.equal(true);
      expect(a.logs.find((l) => l.msg === "outbox relay failed; reconnecting")?.err?.message).to.match(
        /^another relay claimed the publisher: this one is no longer the leader/,
      );
      expect(a.metrics.published).to.equal(0);
      expect(b.relay.isActive()).to.equal(true);
    });

    it("when it is fenced while its session still holds the lease, then it gives the lease up, reconnects, and claims anew before reading", async () => {
      outbox.insert(1);
      const a = startRelay();
      a.publisher.outcomes.push("hang");
      await eventually(() => a.publisher.isHanging(), "the publish in flight");
      outbox.epoch++; // another process claimed the transactional id
      a.publisher.ackHanging();
      await eventually(() => a.timing.isWaiting(500), "the reconnect backoff");
      expect(outbox.holder, "the lease given up").to.equal(undefined);
      await a.timing.elapse(500);
      await eventually(() => outbox.rows.length === 0, "published after claiming anew");
      expect(outbox.journal.filter((e) => !e.includes(" wait ") && e !== "A read ")).to.deep.equal([
        "A connect",
        "A lease won",
        "A claim",
        "A read 1",
        "A publish 1",
        "A fenced 1",
        "A connect",
        "A lease won",
        "A claim",
        "A read 1",
        "A publish 1",
        "A ack 1",
        "A delete 1",
      ]);
    });

    it("when a failure ends the publisher's epoch, then it claims a new one before reading the batch again", async () => {
      outbox.insert(1);
      const a = startRelay();
      a.publisher.outcomes.push("fail");
      await a.timing.elapse(250);
      await eventually(() => outbox.rows.length === 0, "published at the second attempt");
      expect(outbox.journal.filter((e) => !e.includes(" wait ") && e !== "A read ")).to.deep.equal([
        "A connect",
        "A lease won",
        "A claim",
        "A read 1",
        "A publish 1",
        "A claim",
        "A read 1",
        "A publish 1",
        "A ack 1",
        "A delete 1",
      ]);
      expect(outbox.count("A connect"), "the session kept").to.equal(1);
    });

    it("when claiming fails (the broker is down), then it retries with backoff and keeps the session and the lease", async () => {
      outbox.insert(1);
      const a = startRelay();
      a.publisher.claimFails = 2;
      for (const backoffMs of [250, 500]) await a.timing.elapse(backoffMs);
      await eventually(() => outbox.rows.length === 0, "published once claimed");
      expect(outbox.count("A connect")).to.equal(1);
      expect(a.metrics.failures).to.equal(2);
    });
  });

  describe("the heartbeat", () => {
    it("while leader, then it reports the backlog every heartbeat interval, and a standby reports none", async () => {
      outbox.holder = "another process";
      const b = startRelay("B");
      await eventually(() => b.timing.isWaiting(STANDBY_MS), "B standby");
      expect(b.metrics.pending).to.deep.equal([]);
      outbox.holder = undefined;
      outbox.insert(1, 2, 3);
      outbox.oldestAgeSeconds = 42;
      const a = startRelay("A");
      a.publisher.outcomes.push("hang");
      await eventually(() => a.publisher.isHanging(), "a publish in flight");
      expect(a.metrics.pending).to.deep.equal([3]);
      expect(a.metrics.oldestAge).to.deep.equal([42]);
      outbox.insert(4);
      await a.timing.elapse(HEARTBEAT_MS);
      await eventually(() => a.metrics.pending.length === 2, "the next heartbeat");
      expect(a.metrics.pending).to.deep.equal([3, 4]);
      await stopRelay(a);
      expect(a.metrics.pending.at(-1), "0 once no longer the active relay").to.equal(0);
      expect(a.metrics.oldestAge.at(-1)).to.equal(0);
    });

    it("when it fails while a publish hangs, then the publish is cut short, nothing is deleted, and leadership is dropped", async () => {
      outbox.insert(1, 2);
      const a = startRelay();
      a.publisher.outcomes.push("hang");
      await eventually(() => a.publisher.isHanging(), "the publish in flight");
      outbox.failNext("A", "heartbeat");
      await a.timing.elapse(HEARTBEAT_MS);
      await eventually(() => a.timing.isWaiting(500), "the reconnect backoff");
      expect(a.publisher.isHanging()).to.equal(false);
      expect(a.relay.isActive()).to.equal(false);
      expect(outbox.ids()).to.deep.equal(["1", "2"]);
      expect(outbox.journal.filter((e) => e.includes("delete"))).to.deep.equal([]);
      expect(a.logs.find((l) => l.msg === "outbox relay failed; reconnecting")?.err?.message).to.equal(
        "Connection terminated unexpectedly",
      );
    });

    it("when it fails while idle, then the idle wait ends and leadership is dropped", async () => {
      const a = startRelay();
      await eventually(() => a.timing.isWaiting(POLL_MS), "the idle wait");
      outbox.failNext("A", "heartbeat");
      await a.timing.elapse(HEARTBEAT_MS);
      await eventually(() => a.timing.isWaiting(500), "the reconnect backoff");
      expect(a.relay.isActive()).to.equal(false);
    });
  });

  describe("when the connection (and with it the lease) is lost", () => {
    for (const phase of ["read", "publish", "delete"] as const) {
      it(`when it happens during the ${phase}, then leadership is dropped, it reconnects with backoff, and the next leader publishes the batch`, async () => {
        const a = startRelay("A");
        await eventually(() => a.timing.isWaiting(POLL_MS), "A active and idle");
        const b = startRelay("B");
        await eventually(() => b.timing.isWaiting(STANDBY_MS), "B standby");
        outbox.insert(1, 2);
        if (phase === "publish") a.publisher.outcomes.push("hang");
        else outbox.failNext("A", phase);
        a.relay.wake();
        if (phase === "publish") {
          await eventually(() => a.publisher.isHanging(), "the publish in flight");
          outbox.loseConnection(outbox.sessions.find((s) => s.relay === "A")!);
          a.publisher.ackHanging();
        }

        await eventually(() => a.timing.isWaiting(500), "A's reconnect backoff");
        expect(a.relay.isActive()).to.equal(false);
        expect(a.metrics.active).to.deep.equal([1, 0]);
        const failure = a.logs.find((l) => l.msg === "outbox relay failed; reconnecting");
        expect(failure?.err?.message).to.equal("Connection terminated unexpectedly");
        expect(outbox.ids(), "kept in the outbox").to.deep.equal(["1", "2"]);
        expect(a.metrics.published, "acknowledged by the broker").to.equal(phase === "read" ? 0 : 2);

        await b.timing.elapse(STANDBY_MS);
        await eventually(() => outbox.rows.length === 0, "B published the batch");
        expect(
          outbox.journal.filter((e) => e.startsWith("B ") && e !== "B read " && !e.includes(" wait ")),
        ).to.deep.equal([
          "B connect",
          "B lease held elsewhere",
          "B lease won",
          "B claim",
          "B read 1,2",
          "B publish 1,2",
          "B ack 1,2",
          "B delete 1,2",
        ]);
        expect(b.metrics.published).to.equal(2);
        expectNothingDeletedUnacknowledged();

        await a.timing.elapse(500);
        await eventually(() => outbox.count("A lease held elsewhere") === 1, "A back as a standby");
        expect(a.relay.isActive()).to.equal(false);
      });
    }

    it("when connecting keeps failing, then it retries with growing backoff, logging each attempt", async () => {
      outbox.failNext("A", "connect");
      outbox.failNext("A", "connect");
      outbox.failNext("A", "connect");
      const a = startRelay();
      for (const backoffMs of [500, 1000, 2000]) await a.timing.elapse(backoffMs);
      await eventually(() => a.relay.isActive(), "the relay active on the fourth connection");
      const failures = a.logs.filter((l) => l.msg === "outbox relay failed; reconnecting");
      expect(failures.map((l) => [l.attempt, l.err?.message])).to.deep.equal([
        [1, "ECONNREFUSED"],
        [2, "ECONNREFUSED"],
        [3, "ECONNREFUSED"],
      ]);
      expect(a.metrics.active).to.deep.equal([0, 0, 0, 1]);
    });

    it("when it had been the leader, then the reconnect backoff starts again from its base", async () => {
      outbox.failNext("A", "connect");
      outbox.failNext("A", "connect");
      const a = startRelay();
      await a.timing.elapse(500);
      await a.timing.elapse(1000);
      await eventually(() => a.timing.isWaiting(POLL_MS), "the relay active and idle");
      outbox.failNext("A", "read");
      a.relay.wake();
      await eventually(() => !a.relay.isActive(), "leadership dropped");
      await a.timing.elapse(500);
      await eventually(() => a.relay.isActive(), "the relay active again");
    });
  });

  describe("when another process holds the lease", () => {
    it("then it stays standby, reads and publishes nothing, and asks again after the standby interval", async () => {
      outbox.holder = "another process";
      outbox.insert(1);
      const a = startRelay();
      await eventually(() => a.timing.isWaiting(STANDBY_MS), "the standby wait");
      await a.timing.elapse(STANDBY_MS);
      await eventually(() => outbox.count("A lease held elsewhere") === 2, "a second request for the lease");
      expect(outbox.journal.filter((e) => e.includes("read") || e.includes("publish"))).to.deep.equal([]);
      expect(a.relay.isActive()).to.equal(false);
      expect(a.metrics.active).to.deep.equal([]);
      expect(outbox.count("A connect"), "one connection for all its requests").to.equal(1);

      outbox.holder = undefined;
      await a.timing.elapse(STANDBY_MS);
      await eventually(() => outbox.rows.length === 0, "the row published once the lease is free");
      expect(a.relay.isActive()).to.equal(true);
    });
  });

  describe("when stopped", () => {
    it("when idle, then it returns without waiting for the poll interval and closes everything", async () => {
      const a = startRelay();
      await eventually(() => a.timing.isWaiting(POLL_MS), "the idle wait");
      await a.relay.stop();
      expect(a.relay.isActive()).to.equal(false);
      expect(a.metrics.active).to.deep.equal([1, 0]);
      expect(a.publisher.closed).to.equal(true);
      expect(outbox.sessions.every((s) => s.closed)).to.equal(true);
      expect(a.logs.at(-1)?.msg).to.equal("outbox relay stopped");
    });

    it("when a publish is being retried, then it returns at once and the rows stay in the outbox", async () => {
      outbox.insert(1, 2);
      const a = startRelay();
      a.publisher.failForever = true;
      await eventually(() => a.timing.isWaiting(250), "the first publish backoff");
      await a.relay.stop();
      expect(outbox.ids()).to.deep.equal(["1", "2"]);
      expect(outbox.journal.filter((e) => e.includes("delete"))).to.deep.equal([]);
      expect(a.publisher.closed).to.equal(true);
      expect(a.relay.isActive()).to.equal(false);
      expect(outbox.sessions.every((s) => s.closed)).to.equal(true);
    });

    it("when the broker acknowledges the publish in progress within the grace period, then the batch is deleted before stop returns", async () => {
      outbox.insert(1, 2);
      const a = startRelay();
      a.publisher.outcomes.push("hang");
      await eventually(() => a.publisher.isHanging(), "the publish in flight");
      let stopped = false;
      const stopping = a.relay.stop().then(() => {
        stopped = true;
      });
      await settle();
      expect(stopped).to.equal(false);
      expect(a.timing.isWaiting(GRACE_MS)).to.equal(true);
      a.publisher.ackHanging();
      await stopping;
      expect(outbox.rows).to.deep.equal([]);
      expect(a.metrics.published).to.equal(2);
      expectNothingDeletedUnacknowledged();
      expect(outbox.count("A read 1,2")).to.equal(1);
      expect(a.publisher.closed).to.equal(true);
    });

    it("when the publish in progress hangs (broker down), then it gives up after the grace period and keeps the rows", async () => {
      outbox.insert(1, 2);
      const a = startRelay();
      a.publisher.outcomes.push("hang");
      await eventually(() => a.publisher.isHanging(), "the publish in flight");
      let stopped = false;
      const stopping = a.relay.stop().then(() => {
        stopped = true;
      });
      await settle();
      expect(stopped).to.equal(false);
      expect(a.publisher.closed, "the producer is left to finish during the grace").to.equal(false);
      await a.timing.elapse(GRACE_MS);
      await stopping;
      expect(a.publisher.closed).to.equal(true);
      expect(outbox.ids()).to.deep.equal(["1", "2"]);
      expect(a.metrics.published).to.equal(0);
      expect(a.metrics.active.at(-1)).to.equal(0);
    });

    it("when it was never started, then stop returns at once", async () => {
      const publisher = new FakePublisher(outbox, "A");
      const relay = createOutboxRelayLoop(
        {
          store: outbox.storeFor("A"),
          publisher,
          logger: pino({ level: "silent" }),
          metrics: new FakeMetrics(),
          timing: new FakeTiming(outbox.journal, "A"),
        },
        { batchSize: 1, maxBatchBytes: 1000, pollIntervalMs: POLL_MS },
      );
      await relay.stop();
      expect(outbox.journal).to.deep.equal([]);
      expect(publisher.closed).to.equal(true);
    });
  });
});
