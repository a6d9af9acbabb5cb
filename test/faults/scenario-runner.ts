import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type { Kafka } from "kafkajs";
import { ensureTopics } from "#platform/kafka.js";
import { describeError } from "#platform/run-main.js";
import { type DisposableDatabase, disposableDatabase } from "../support/disposable-database.js";
import { runScopedDatabasePrefix, runScopedSuffix, testDatabaseUrl } from "../support/env.js";
import { createTestProducer, readAllRecords } from "../support/kafka.js";
import { catchUpSeconds } from "./catch-up.js";
import { check, type DirectWrite } from "./checker.js";
import { progressOf, readOutcome, readRows, startSampler, withClient } from "./observe.js";
import { allocatePorts, type Broker, Service } from "./processes.js";
import { buildChecks, type Check, type ScenarioResult } from "./report.js";
import type { Scenario, ScenarioContext } from "./scenarios.js";
import { generateWorkload, type SendProgress, sendBatches } from "./workload.js";

export interface RunSettings {
  broker: Broker;
  kafka: Kafka;
  /** Product ids per scenario (each with 4 updates and more). */
  ids: number;
  logDir: string;
  /** Ports handed out so far in this run. */
  ports: Set<number>;
  progress(text: string): void;
  /** Every service started, for the last-resort cleanup of an interrupted run. */
  services: Set<Service>;
  databases: Set<DisposableDatabase>;
}

/** How long the pipeline gets to finish everything once the producer and the fault are done. */
const DRAIN_DEADLINE_MS = 120_000;
/** Nominal rate for catch-up when a scenario has no steady phase: everything is backlog. */
const NOMINAL_RATE = 100;

export async function runScenario(scenario: Scenario, settings: RunSettings): Promise<ScenarioResult> {
  const startedAt = Date.now();
  const { kafka, broker } = settings;
  const say = (text: string) => settings.progress(`${scenario.name}: ${text}`);
  const suffix = runScopedSuffix();
  const topics = {
    input: `faults-${scenario.name}-input-${suffix}`,
    persisted: `faults-${scenario.name}-persisted-${suffix}`,
    errors: `faults-${scenario.name}-errors-${suffix}`,
  };
  const database = disposableDatabase(testDatabaseUrl(), runScopedDatabasePrefix("faults"));
  settings.databases.add(database);
  const result: ScenarioResult = {
    name: scenario.name,
    summary: scenario.summary,
    seconds: 0,
    backs: [],
    drained: false,
    checks: [],
    notes: [],
    harnessErrors: [],
    logs: path.join(settings.logDir, `${scenario.name}-*.log`),
  };
  const apis: Service[] = [];
  const schedulers: Service[] = [];
  const directWrites: DirectWrite[] = [];
  let group = `faults-${scenario.name}-${suffix}`;
  let replay: { rows: Map<string, number>; events: number } | undefined;
  const backs: { what: string; at: number }[] = [];

  const onUnplannedExit = (service: Service, what: string) => {
    result.notes.push(what);
    say(`${what}; restarting it, as a supervisor would`);
    void delay(1_000)
      .then(() => service.start())
      .catch((error: unknown) => result.harnessErrors.push(`restarting ${service.name}: ${(error as Error).message}`));
  };
  const service = (
    name: string,
    entry: "api/src/main.ts" | "scheduler/src/main.ts",
    port: number,
    env: Record<string, string>,
    readyPath: string,
    upLine?: string,
  ) => {
    const created = new Service(
      {
        ...(upLine === undefined ? {} : { upLine }),
        name,
        entry,
        env,
        port,
        readyUrl: `http://127.0.0.1:${port}${readyPath}`,
        logFile: path.join(settings.logDir, `${scenario.name}-${name}.log`),
      },
      onUnplannedExit,
    );
    settings.services.add(created);
    return created;
  };
  const kafkaEnv = {
    KAFKA_BROKER_URL: broker.url,
    TOPIC_NAME: topics.input,
    TRANSFORMED_TOPIC: topics.persisted,
    ERROR_TOPIC_NAME: topics.errors,
    LOG_FORMAT: "json",
  };
  const startApi = async () => {
    const [port] = (await allocatePorts(1, settings.ports)) as [number];
    const api = service(
      `api-${apis.length + 1}`,
      "api/src/main.ts",
      port,
      { ...kafkaEnv, PORT: String(port), HOST: "127.0.0.1", DATABASE_URL: database.url },
      "/readyz",
    );
    await api.start();
    apis.push(api);
    return api;
  };
  const startScheduler = async (groupId: string) => {
    const [port] = (await allocatePorts(1, settings.ports)) as [number];
    const target = apis.at(-1) as Service;
    const scheduler = service(
      `scheduler-${schedulers.length + 1}`,
      "scheduler/src/main.ts",
      port,
      {
        ...kafkaEnv,
        KAFKA_GROUP_ID: groupId,
        API_URL: `http://127.0.0.1:${target.spec.port}`,
        METRICS_PORT: String(port),
        METRICS_HOST: "127.0.0.1",
      },
      "/healthz",
      // kafkajs's consumer starting to join: the group then waits out a killed member's session.
      '"msg":"Starting"',
    );
    const joined = scheduler.waitForLine("joined the consumer group", 90_000);
    joined.catch(() => {});
    await scheduler.start();
    schedulers.push(scheduler);
    await joined;
    return scheduler;
  };
  const relayActive = async (api: Service) => {
    const text = await fetch(`http://127.0.0.1:${api.spec.port}/metrics`).then((res) => res.text());
    return /^api_outbox_relay_active 1$/m.test(text);
  };

  const sampler = { current: undefined as ReturnType<typeof startSampler> | undefined };
  const producer = await createTestProducer(kafka);
  const stopProducing = new AbortController();
  try {
    say("starting");
    await ensureTopics(kafka, Object.values(topics), 3);
    await startApi();
    for (let replica = 1; replica < (scenario.apis ?? 1); replica++) {
      // The first replica's relay is active before the next starts, so the scheduler writes through a standby.
      await until(() => relayActive(apis[0] as Service), 30_000, "the first API's relay to be active");
      await startApi();
    }
    await startScheduler(group);
    const samples = startSampler({ kafka, topics, databaseUrl: database.url, groupId: () => group });
    sampler.current = samples;

    const workload = generateWorkload({
      ids: settings.ids,
      idPrefix: scenario.name,
      bulkShare: scenario.steadySeconds > 0 ? 0.4 : 1,
      compressedOverSize: true,
    });
    const progress: SendProgress = { sent: 0, resends: 0 };
    const bulk = workload.batches.slice(0, workload.bulkBatches);
    const steady = workload.batches.slice(workload.bulkBatches);
    say(`sending ${bulk.reduce((n, b) => n + b.messages.length, 0)} records at once`);
    await sendBatches(producer, topics.input, bulk, progress, { signal: stopProducing.signal });
    const warm = await untilDrained(samples, 60_000);
    if (!warm) result.notes.push("the first records were not all processed within 60 s, before the fault");

    const ctx: ScenarioContext = {
      broker,
      apis,
      schedulers,
      addScheduler: () => startScheduler(group),
      async replayWithNewGroup() {
        replay = {
          rows: new Map((await readRows(database.url)).map((row) => [row.id, row.version])),
          events: (await readAllRecords(kafka, [topics.persisted], 60_000)).length,
        };
        group = `faults-${scenario.name}-replay-${suffix}`;
        return startScheduler(group);
      },
      withDatabase: (work) => withClient(database.url, work),
      withServer: (work) => withClient(testDatabaseUrl(), work),
      databaseName: database.name,
      back(what, at = Date.now()) {
        backs.push({ what, at });
        say(`back: ${what}${at < Date.now() - 500 ? ` (up ${((Date.now() - at) / 1000).toFixed(1)} s ago)` : ""}`);
      },
      note(text) {
        result.notes.push(text);
        say(text);
      },
      progress: say,
      directWrites,
      relayActive,
    };

    const steadyRecords = steady.reduce((n, b) => n + b.messages.length, 0);
    const steadyChanges = steady.reduce((n, b) => n + b.messages.filter((m) => m.changes).length, 0);
    const inputRate = scenario.steadySeconds > 0 ? steadyRecords / scenario.steadySeconds : NOMINAL_RATE;
    const eventRate = scenario.steadySeconds > 0 ? steadyChanges / scenario.steadySeconds : NOMINAL_RATE;
    const runFault = async () => {
      try {
        await scenario.fault?.(ctx);
      } catch (error) {
        result.harnessErrors.push(`fault: ${describeError(error).split("\n")[0]}`);
        say(`fault failed: ${(error as Error).message}`);
      }
    };
    if (scenario.steadySeconds > 0) {
      say(`sending ${steadyRecords} more records over ${scenario.steadySeconds} s, with the fault`);
      const interval = (scenario.steadySeconds * 1000) / Math.max(1, steady.length);
      let nextAt = Date.now();
      const pace = async () => {
        const wait = nextAt - Date.now();
        nextAt += interval;
        if (wait > 0) await delay(wait);
      };
      await Promise.all([
        sendBatches(producer, topics.input, steady, progress, { signal: stopProducing.signal, pace }),
        runFault(),
      ]);
    } else {
      await runFault();
    }
    if (progress.resends > 0) result.notes.push(`${progress.resends} produce requests sent again (broker down)`);

    say("waiting for everything to be processed");
    result.drained = await untilDrained(samples, DRAIN_DEADLINE_MS);
    if (!result.drained) {
      const last = samples.latest();
      result.notes.push(
        `not drained after ${DRAIN_DEADLINE_MS / 1000} s: committed ${last?.committed} of ${last?.inputEnd} input records, ${last?.outbox} outbox rows`,
      );
    }
    await samples.stop();

    const progressSamples = progressOf(samples.samples);
    for (const back of backs) {
      const input = catchUpSeconds(progressSamples.input, back.at, inputRate) ?? null;
      const events = catchUpSeconds(progressSamples.events, back.at, eventRate) ?? null;
      result.backs.push({ what: back.what, at: new Date(back.at).toISOString(), input, events });
    }
    if (result.backs.length > 0) {
      result.catchUpSeconds = result.backs.some((b) => b.input === null || b.events === null)
        ? null
        : Math.max(...result.backs.map((b) => Math.max(b.input as number, b.events as number)));
    }

    say("reading the topics and the rows");
    for (const scheduler of schedulers) await scheduler.stop();
    for (const api of apis) await api.stop();
    const outcome = await readOutcome(kafka, topics);
    const rows = await readRows(database.url);
    const checked = check({ inputTopic: topics.input, specs: workload.specs, ...outcome, rows, directWrites });
    result.counts = checked.counts;
    const sentMarkers = new Set(outcome.input.map((record) => record.marker));
    if (sentMarkers.size < workload.records) {
      result.harnessErrors.push(
        `only ${sentMarkers.size} of the workload's ${workload.records} records reached the input topic`,
      );
    }
    result.examples = checked.examples;
    const extra: Check[] = [];
    if (replay) {
      const before = replay;
      const changed = rows.filter((row) => before.rows.get(row.id) !== row.version).length;
      const newEvents = outcome.events.length - before.events;
      extra.push(
        changed === 0 && newEvents === 0
          ? { name: "replay changed nothing", ok: true }
          : {
              name: "replay changed nothing",
              ok: false,
              detail: `${changed} rows changed version, ${newEvents} new events`,
            },
      );
    }
    result.checks = buildChecks(checked.counts, {
      drained: result.drained,
      catchUpTarget: scenario.catchUpTarget,
      catchUpSeconds: result.catchUpSeconds,
      extra,
    });
  } catch (error) {
    result.harnessErrors.push(describeError(error).split("\n").slice(0, 3).join(" | "));
    say(`failed: ${(error as Error).message}`);
  } finally {
    stopProducing.abort();
    await sampler.current?.stop().catch(() => {});
    await producer.disconnect().catch(() => {});
    for (const part of [...schedulers, ...apis]) {
      await part.stop().catch(() => {});
      part.close();
      settings.services.delete(part);
    }
    await database.drop().catch((error: unknown) => result.notes.push(`dropping ${database.name}: ${error}`));
    settings.databases.delete(database);
  }
  result.seconds = Math.round((Date.now() - startedAt) / 1000);
  return result;
}

/**
 * Whether, within timeoutMs, the group committed everything in the input and the outbox emptied,
 * in a sample begun after this call: one already under way may have read the input's end before
 * the last sends, and so have seen an empty pipeline before the records arrived.
 */
async function untilDrained(sampler: ReturnType<typeof startSampler>, timeoutMs: number): Promise<boolean> {
  const calledAt = Date.now();
  const deadline = calledAt + timeoutMs;
  let seen = sampler.samples.length;
  while (Date.now() < deadline) {
    const fresh = sampler.samples.slice(seen);
    seen += fresh.length;
    if (
      fresh.some(
        (s) =>
          s.t >= calledAt &&
          s.committed !== undefined &&
          s.inputEnd !== undefined &&
          s.committed >= s.inputEnd &&
          s.outbox === 0,
      )
    ) {
      return true;
    }
    await delay(200);
  }
  return false;
}

async function until(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(200);
  }
}
