import { expect } from "chai";
import type { Kafka, Producer } from "kafkajs";
import type { RunningApi } from "../../api/src/api.js";
import { createTestDatabase, type TestDatabase, uniqueId } from "../../api/test/test-api.js";
import {
  createTestProducer,
  createTestTopics,
  queryDatabase,
  recordCount,
  seedMessage,
  startApiOn,
  startTestScheduler,
  type TestScheduler,
  type TestTopics,
  testKafka,
  until,
  untilConsumed,
  withAdmin,
} from "./helpers.js";

// Fast retries, and the shortest session the broker allows, so an outage longer than the session
// costs only a few seconds of test time.
const SESSION_TIMEOUT_MS = 6000;
const RETRY_ENV = {
  RETRY_INITIAL_DELAY_MS: "50",
  RETRY_MAX_DELAY_MS: "300",
  API_TIMEOUT_MS: "2000",
  KAFKA_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
  KAFKA_HEARTBEAT_INTERVAL_MS: "1000",
};

describe("scheduler while the API is down @integration", () => {
  let database: TestDatabase;
  let api: RunningApi | undefined;
  let port: number;
  let kafka: Kafka;
  let topics: TestTopics;
  let producer: Producer;
  let scheduler: TestScheduler | undefined;

  before(async () => {
    kafka = testKafka();
    database = await createTestDatabase();
    [api, topics] = await Promise.all([startApiOn(database.url, 0), createTestTopics(kafka)]);
    port = api.port;
    producer = await createTestProducer(kafka);
  });

  after(async () => {
    await scheduler?.stop();
    await producer?.disconnect();
    await topics?.delete();
    await api?.stop();
    await database?.drop();
  });

  const produce = (count: number) =>
    producer.send({
      topic: topics.input,
      acks: -1,
      messages: Array.from({ length: count }, () => {
        const id = uniqueId("outage");
        return { key: id, value: seedMessage({ productId: id }) };
      }),
    });
  const rowCount = async () =>
    Number((await queryDatabase<{ n: string }>(database.url, "SELECT count(*) AS n FROM products"))[0]?.n);
  const groupMembers = async (groupId: string) => {
    const { groups } = await withAdmin(kafka, (admin) => admin.describeGroups([groupId]));
    return { state: groups[0]?.state, members: groups[0]?.members.map((m) => m.memberId) };
  };
  const stopApi = async () => {
    await api?.stop();
    api = undefined;
  };

  it("when the API stops mid-stream for longer than the session timeout, then the consumer keeps its partitions, nothing is dead-lettered and everything is persisted after it returns", async () => {
    scheduler = await startTestScheduler({ topics, apiUrl: `http://127.0.0.1:${port}`, env: RETRY_ENV });
    await produce(10);
    await untilConsumed(scheduler, kafka, topics.input);
    expect(await rowCount()).to.equal(10);
    const membersBefore = await groupMembers(scheduler.groupId);

    await stopApi();
    const outageStarted = Date.now();
    await produce(20);
    await until(
      scheduler,
      "retrying",
      () => Date.now() - outageStarted > SESSION_TIMEOUT_MS + 1000,
      "retries for longer than the session timeout",
      SESSION_TIMEOUT_MS + 10_000,
    );
    expect(await groupMembers(scheduler.groupId), "group members after the outage").to.deep.equal(membersBefore);

    api = await startApiOn(database.url, port);
    await untilConsumed(scheduler, kafka, topics.input);
    expect(await rowCount()).to.equal(30);
    expect(await recordCount(kafka, topics.errors)).to.equal(0);
  });

  it("when the scheduler stops while the API is down, then the records stay uncommitted and the next instance persists them", async () => {
    const running = scheduler as TestScheduler;
    await stopApi();
    await produce(5);
    await until(running, "retrying", () => true, "a retry while the API is down");
    const stopStarted = Date.now();
    await running.stop();
    expect(Date.now() - stopStarted, "stop() during a backoff").to.be.lessThan(5_000);

    const committed = await withAdmin(kafka, (admin) =>
      admin.fetchOffsets({ groupId: running.groupId, topics: [topics.input] }),
    );
    const ends = await withAdmin(kafka, (admin) => admin.fetchTopicOffsets(topics.input));
    const behind = ends.filter(
      ({ partition, high }) =>
        BigInt(committed[0]?.partitions.find((p) => p.partition === partition)?.offset ?? "0") < BigInt(high),
    );
    expect(behind, "partitions with uncommitted records").to.not.be.empty;

    api = await startApiOn(database.url, port);
    scheduler = await startTestScheduler({
      topics,
      apiUrl: `http://127.0.0.1:${port}`,
      groupId: running.groupId,
      env: RETRY_ENV,
    });
    await untilConsumed(scheduler, kafka, topics.input);
    expect(await rowCount()).to.equal(35);
    expect(await recordCount(kafka, topics.errors)).to.equal(0);
  });
});
