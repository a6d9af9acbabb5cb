import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import type { Kafka, KafkaMessage, Producer } from "kafkajs";
import { startTestApi, type TestApi } from "../../test/support/api.js";
import {
  createTestProducer,
  createTestTopics,
  produceInOrder,
  readAll,
  type TestTopics,
  testKafka,
} from "../../test/support/kafka.js";
import { startTestScheduler, type TestScheduler, untilConsumed } from "../../test/support/scheduler.js";
import { seedMessage } from "../../test/support/seed.js";
import { settleAll } from "../../test/support/settle.js";
import { uniqueId } from "../../test/support/unique-names.js";
import { API_PROTOCOLS } from "../src/config.js";
import { parseDeadLetterHeaders } from "../src/dead-letter.js";

/** A reverse proxy for HTTP/1.1 that answers 413 (an HTML page, as nginx does) to bodies over limit. */
async function startBodyLimitProxy(target: string, limit: number) {
  const upstream = new URL(target);
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (body.length > limit) {
      res.writeHead(413, { "content-type": "text/html" }).end("<html><h1>413 Request Entity Too Large</h1></html>");
      return;
    }
    const forwarded = http.request(
      new URL(req.url ?? "/", upstream),
      { method: req.method, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on("error", () => res.destroy());
    forwarded.end(body);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("scheduler: API requests over a body limit @integration", () => {
  const MAX_BODY_BYTES = 4096;
  let api: TestApi;
  let kafka: Kafka;
  let topics: TestTopics;
  let producer: Producer;
  const schedulers: TestScheduler[] = [];
  const closers: (() => Promise<void>)[] = [];
  // 20 small records (their call is about 6 KB, so it is split) around one product whose request
  // alone is about 8 KB: its 4000-character description in two-byte UTF-8.
  const small = Array.from({ length: 20 }, () => uniqueId("small"));
  const big = uniqueId("big");
  let bigOffset: bigint | undefined;

  before(async () => {
    kafka = testKafka();
    await settleAll([
      startTestApi({ MAX_BODY_BYTES: String(MAX_BODY_BYTES) }).then((started) => {
        api = started;
      }),
      createTestTopics(kafka, 1).then((created) => {
        topics = created;
      }),
    ]);
    producer = await createTestProducer(kafka);
    const messages = small.map((id) => ({ key: id, value: seedMessage({ productId: id }) }));
    messages.splice(10, 0, { key: big, value: seedMessage({ productId: big, productDescription: "é".repeat(4000) }) });
    const produced = await produceInOrder(producer, topics.input, messages);
    bigOffset = produced[10]?.offset;
  });

  after(async () => {
    for (const scheduler of schedulers) await scheduler.stop();
    for (const close of closers) await close();
    await producer?.disconnect();
    await topics?.delete();
    await api?.close();
  });

  /** Runs a scheduler of its own group over the whole input topic; returns its dead letters. */
  async function consumeAll(env: Record<string, string>, apiUrl = api.url) {
    const scheduler = await startTestScheduler({ topics, apiUrl, env });
    schedulers.push(scheduler);
    await untilConsumed(scheduler, kafka, topics.input, 20_000);
    await scheduler.stop();
    const letters = (await readAll(kafka, topics.errors))
      .map((letter: KafkaMessage) => parseDeadLetterHeaders(letter.headers))
      .filter((info) => info.originalConsumerGroup === scheduler.groupId);
    return { scheduler, letters };
  }

  for (const protocol of API_PROTOCOLS) {
    it(`when a product's request alone is over the API's MAX_BODY_BYTES (${protocol}), then it is dead-lettered as record_too_large naming the limit and its size, and every record around it is persisted`, async () => {
      const { scheduler, letters } = await consumeAll({ API_PROTOCOL: protocol });
      expect(letters.map((info) => [info.originalOffset, info.code])).to.deep.equal([[bigOffset, "record_too_large"]]);
      expect(letters[0]?.message).to.match(
        /^the product's BatchCreateProducts request is \d{4} bytes, over the API's MAX_BODY_BYTES \(4096\)$/,
      );
      expect(await api.knex("products").whereIn("id", small).count({ n: "*" })).to.deep.equal([{ n: small.length }]);
      expect(await api.knex("products").where("id", big).count({ n: "*" })).to.deep.equal([{ n: 0 }]);
      const { values } = await scheduler.metrics.apiCalls.get();
      const refused = values.find((v) => v.labels.status === "resource_exhausted" && v.metricName?.endsWith("_count"));
      expect(refused?.value, "calls refused for their size").to.be.greaterThan(1);
      expect(
        values.some((v) => v.labels.status === "unknown"),
        "no call failed otherwise",
      ).to.equal(false);
    });
  }

  for (const protocol of ["connect", "grpcweb"]) {
    it(`when a proxy answers HTTP 413 (${protocol}), then the calls are split, and the product whose request alone it refuses is dead-lettered naming the proxy`, async () => {
      // Under the API's limit, over the proxy's: only the big product is refused alone.
      const proxy = await startBodyLimitProxy(api.url, 3000);
      closers.push(proxy.close);
      const { letters } = await consumeAll({ API_PROTOCOL: protocol }, proxy.url);
      expect(letters.map((info) => [info.originalOffset, info.code])).to.deep.equal([[bigOffset, "record_too_large"]]);
      expect(letters[0]?.message).to.match(
        /over the body limit of a proxy in front of the API \(it answered HTTP 413\)$/,
      );
      expect(await api.knex("products").whereIn("id", small).count({ n: "*" })).to.deep.equal([{ n: small.length }]);
    });
  }
});
