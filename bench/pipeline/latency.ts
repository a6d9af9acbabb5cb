import { setTimeout as delay } from "node:timers/promises";
import type { Message, Producer } from "kafkajs";
import { createRandom, generateProduct } from "../../scripts/seed-messages.js";
import { ascending, percentile } from "../shared/stats.js";
import { type CallStats, openCallWindow } from "./call-stats.js";
import { type CpuUse, openCpuWindow } from "./cpu-window.js";
import type { EventObserver } from "./event-observer.js";
import { log } from "./log.js";
import { everySecond, IDLE_TIMEOUT_MS, rateMeter } from "./progress.js";
import type { Pipeline } from "./services.js";

export interface LatencyResult {
  ratePerS: number;
  durationS: number;
  sent: number;
  /** Rate the load generator achieved over its sending window. */
  sentPerS: number;
  seen: number;
  lost: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The same, to when the bench's consumer saw the event (includes its fetch wait). */
  seenP50Ms: number;
  seenP99Ms: number;
  /** Record time → start of the transaction that wrote the row: Kafka, scheduler, RPC, API. */
  toWriteP50Ms: number;
  toWriteP99Ms: number;
  /** Start of that transaction → event record time: the write, its commit, NOTIFY, relay. */
  writeToEventP50Ms: number;
  writeToEventP99Ms: number;
  cpu: CpuUse | undefined;
  /** The scheduler's calls over the phase: how far batching goes at this rate (absent in older results). */
  calls?: CallStats | undefined;
}

/**
 * The Java producer's default linger.ms since Kafka 4.0 (KIP-1030); kafkajs has none, and one
 * request per record would measure the broker's per-request cost instead of the pipeline.
 */
const PRODUCER_LINGER_MS = 5;

/**
 * Open-loop load: records are due at fixed times whatever the pipeline does, and carry their due
 * time as record timestamp, so a stall anywhere (this process included) shows up as latency
 * instead of slowing the load (no coordinated omission). Records that fall due while a request is
 * in flight, or within PRODUCER_LINGER_MS of the last one, go together in the next one.
 */
export async function measureLatency(
  producer: Producer,
  topic: string,
  observer: EventObserver,
  pipeline: Pipeline,
  expected: Map<string, number>,
  load: { rate: number; durationS: number; idPrefix: string; partitionWorkers: number },
): Promise<LatencyResult> {
  const total = load.rate * load.durationS;
  const random = createRandom(load.rate);
  const dueMs = new Map<string, number>();
  const label = `latency ${load.rate}/s`;
  let sent = 0;
  let queued = 0;
  const cpu = await openCpuWindow(pipeline.services);
  const calls = await openCallWindow(pipeline, load.partitionWorkers);
  const meter = rateMeter();
  const stop = everySecond(
    () =>
      `[${label}] sent ${sent}/${total} (${meter(sent)}/s), events ${dueMs.size - observer.missing(expected, dueMs.keys())}`,
  );
  const startMs = Date.now() + 20;
  let lastSendMs = 0;
  try {
    while (sent < total) {
      // Records due meanwhile wait for the next request, as a producer's linger makes them.
      const lingered = Date.now() - lastSendMs;
      if (lingered < PRODUCER_LINGER_MS) await delay(PRODUCER_LINGER_MS - lingered);
      lastSendMs = Date.now();
      const due = Math.min(total, Math.floor(((Date.now() - startMs) * load.rate) / 1000) + 1);
      const messages: Message[] = [];
      for (; queued < due; queued++) {
        const product = generateProduct(queued, { idPrefix: load.idPrefix, random });
        const timestamp = startMs + Math.floor((queued * 1000) / load.rate);
        dueMs.set(product.productId, timestamp);
        expected.set(product.productId, 1);
        messages.push({ key: product.productId, value: JSON.stringify(product), timestamp: String(timestamp) });
      }
      if (messages.length === 0) continue;
      await Promise.race([producer.send({ topic, acks: -1, messages }), pipeline.failed]);
      sent += messages.length;
    }
    const sendSeconds = (Date.now() - startMs) / 1000;
    let lastMissing = -1;
    let lastChange = Date.now();
    for (;;) {
      const missing = observer.missing(expected, dueMs.keys());
      if (missing === 0) break;
      if (missing !== lastMissing) {
        lastMissing = missing;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > IDLE_TIMEOUT_MS) {
        log(`[${label}] no new event for ${IDLE_TIMEOUT_MS} ms; ${missing} missing`);
        break;
      }
      await Promise.race([delay(20), pipeline.failed]);
    }
    const latencies: number[] = [];
    const seenLatencies: number[] = [];
    const toWrite: number[] = [];
    const writeToEvent: number[] = [];
    for (const [id, due] of dueMs) {
      const event = observer.byId.get(id);
      if (!event) continue;
      latencies.push(event.eventMs - due);
      seenLatencies.push(event.seenMs - due);
      if (event.persistedMs !== undefined) {
        toWrite.push(event.persistedMs - due);
        writeToEvent.push(event.eventMs - event.persistedMs);
      }
    }
    const sorted = ascending(latencies);
    const seenSorted = ascending(seenLatencies);
    const toWriteSorted = ascending(toWrite);
    const writeToEventSorted = ascending(writeToEvent);
    return {
      ratePerS: load.rate,
      durationS: load.durationS,
      sent,
      sentPerS: sent / sendSeconds,
      seen: sorted.length,
      lost: observer.missing(expected, dueMs.keys()),
      p50Ms: percentile(sorted, 0.5),
      p90Ms: percentile(sorted, 0.9),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted.at(-1) ?? 0,
      seenP50Ms: percentile(seenSorted, 0.5),
      seenP99Ms: percentile(seenSorted, 0.99),
      toWriteP50Ms: percentile(toWriteSorted, 0.5),
      toWriteP99Ms: percentile(toWriteSorted, 0.99),
      writeToEventP50Ms: percentile(writeToEventSorted, 0.5),
      writeToEventP99Ms: percentile(writeToEventSorted, 0.99),
      cpu: await cpu(),
      calls: await calls(),
    };
  } finally {
    stop();
  }
}
