import { setTimeout as delay } from "node:timers/promises";
import type pg from "pg";
import type { DirectWrite } from "./checker.js";
import type { Broker, Service } from "./processes.js";
import { longAccentedDescription } from "./workload.js";

/** What a scenario's fault may use: the running parts, and ways to report what it did. */
export interface ScenarioContext {
  broker: Broker;
  apis: Service[];
  schedulers: Service[];
  /** Starts one more scheduler in the same group, on the API the first one uses. */
  addScheduler(): Promise<Service>;
  /** Starts a scheduler with a group of its own (a replay from the beginning); the drain then waits for it. */
  replayWithNewGroup(): Promise<Service>;
  /** A connection to the run's database (for locks), closed after `work`. */
  withDatabase<T>(work: (client: pg.Client) => Promise<T>): Promise<T>;
  /** A connection to the server's maintenance database (for pg_terminate_backend), closed after `work`. */
  withServer<T>(work: (client: pg.Client) => Promise<T>): Promise<T>;
  databaseName: string;
  /** The moment (now, unless given) the faulted part is back: catch-up is measured from here. */
  back(what: string, at?: number): void;
  note(text: string): void;
  progress(text: string): void;
  /** Writes through REST, counted by the checker like records. */
  directWrites: DirectWrite[];
  /** Whether the API answers 1 on api_outbox_relay_active. */
  relayActive(api: Service): Promise<boolean>;
}

export interface Scenario {
  name: string;
  /** In the fast subset `npm run test:faults` runs (CI). */
  ci: boolean;
  summary: string;
  /** API replicas at the start (default 1); the scheduler writes through the last one. */
  apis?: number;
  /** Length of the steady phase, during which the fault runs; 0: the whole workload at once, then the fault. */
  steadySeconds: number;
  /** Whether catch-up ≤ 10 s is a target (a crashed process or the broker came back). */
  catchUpTarget: boolean;
  /** Runs as the steady phase starts (or once the workload is processed, without one). */
  fault?(ctx: ScenarioContext): Promise<void>;
}

/** When the fault starts in the steady phase: the pipeline is busy, and the producer goes on. */
const FAULT_AFTER_MS = 2_000;

async function killAndRestart(ctx: ScenarioContext, service: Service): Promise<void> {
  await delay(FAULT_AFTER_MS);
  ctx.progress(`SIGKILL ${service.name}`);
  await service.kill();
  await service.start();
  ctx.back(`${service.name} restarted`, service.upAt);
}

async function terminateBackends(ctx: ScenarioContext, seconds: number): Promise<void> {
  await delay(FAULT_AFTER_MS);
  ctx.progress(`terminating every backend of ${ctx.databaseName} for ${seconds} s`);
  let terminated = 0;
  await ctx.withServer(async (client) => {
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n
           FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
        [ctx.databaseName],
      );
      terminated += rows[0]?.n ?? 0;
      await delay(250);
    }
  });
  ctx.note(`${terminated} backends terminated in ${seconds} s`);
  ctx.back("backends no longer terminated");
}

/** Any constant: the advisory lock the injected trigger makes every outbox DELETE wait for. */
const HOLD_DELETES_LOCK = 0x686f6c64; // "hold"

/** The relay's DELETE of its published batch, waiting in the injected trigger for our lock. */
async function relayDeleteWaiting(client: pg.Client, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { rows } = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND query ILIKE '%delete%product_events%'`,
    );
    if (rows[0]) return rows[0].pid;
    await delay(10);
  }
  return undefined;
}

/**
 * Kills the API between the broker's acknowledgement of a batch and the outbox DELETE, with a fault
 * injected in the run's database rather than a hook in the product: a statement trigger makes every
 * DELETE on the outbox wait for an advisory lock the suite holds, so the relay reads and publishes
 * its batch and then waits. Once its DELETE waits (the broker acknowledged the batch), the API is
 * SIGKILLed and the DELETE's backend terminated with it, as if the process died before sending it;
 * then the trigger goes. The restarted relay publishes the batch again. (Racing row locks against a
 * relay that publishes in a few milliseconds caught the window only now and then.)
 */
async function killBetweenAckAndDelete(ctx: ScenarioContext): Promise<void> {
  await delay(FAULT_AFTER_MS);
  const api = ctx.apis[0] as Service;
  const hit = await ctx.withDatabase(async (holder) => {
    await holder.query("SELECT pg_advisory_lock($1)", [HOLD_DELETES_LOCK]);
    await holder.query(`
      CREATE FUNCTION faults_hold_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_advisory_xact_lock_shared(${HOLD_DELETES_LOCK}); RETURN NULL; END $$;
      CREATE TRIGGER faults_hold_delete BEFORE DELETE ON product_events
        FOR EACH STATEMENT EXECUTE FUNCTION faults_hold_delete();`);
    try {
      const pid = await relayDeleteWaiting(holder, 30_000);
      if (pid === undefined) return undefined;
      ctx.progress(`relay DELETE (backend ${pid}) waits after the broker's ack: SIGKILL ${api.name}`);
      await api.kill();
      await holder.query("SELECT pg_terminate_backend($1)", [pid]);
      return pid;
    } finally {
      await holder.query("DROP TRIGGER faults_hold_delete ON product_events; DROP FUNCTION faults_hold_delete()");
      await holder.query("SELECT pg_advisory_unlock($1)", [HOLD_DELETES_LOCK]);
    }
  });
  if (hit === undefined)
    throw new Error("never caught the relay between the broker's ack and the outbox DELETE in 30 s");
  ctx.note(`killed the API after the broker acknowledged a batch, before its DELETE (backend ${hit})`);
  await api.start();
  ctx.back(`${api.name} restarted`, api.upAt);
}

async function killActiveRelay(ctx: ScenarioContext): Promise<void> {
  await delay(FAULT_AFTER_MS);
  const states = await Promise.all(ctx.apis.map((api) => ctx.relayActive(api)));
  const active = ctx.apis.filter((_, index) => states[index]);
  if (active.length !== 1) throw new Error(`expected one active relay, found ${active.length}`);
  const victim = active[0] as Service;
  ctx.progress(`SIGKILL ${victim.name}, the active relay`);
  await victim.kill();
  // The other replica takes over: nothing is restarted for it, so catch-up runs from the crash.
  ctx.back(`${victim.name} killed`);
  await delay(12_000);
  await victim.start();
  ctx.note(`${victim.name} restarted 12 s after the kill`);
}

async function killBroker(ctx: ScenarioContext, downMs: number): Promise<void> {
  ctx.progress("SIGKILL the broker");
  await ctx.broker.kill();
  await delay(downMs);
  const started = Date.now();
  await ctx.broker.start();
  ctx.note(`broker down ${Math.round(downMs / 1000)} s, restarted in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  ctx.back("broker restarted");
}

/** 600 products of 4,000 accented characters written through REST while the broker is down. */
async function outboxBacklog(ctx: ScenarioContext): Promise<void> {
  ctx.progress("SIGKILL the broker, then 600 large products through REST");
  await ctx.broker.kill();
  const api = ctx.apis[0] as Service;
  const url = `http://127.0.0.1:${api.spec.port}/products/`;
  const timestamp = Date.now();
  const queue = Array.from({ length: 600 }, (_, index) => index);
  const post = async () => {
    for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
      const id = `backlog-${index}`;
      const content = {
        name: `Produto ${index}`,
        description: longAccentedDescription(index),
        price: "12.34",
        currency: "BRL",
        quantity: index,
        category: "Backlog",
      };
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          id,
          name: content.name,
          description: content.description,
          pricing: { amount: content.price, currency: content.currency },
          availability: { quantity: content.quantity, timestamp: new Date(timestamp).toISOString() },
          category: content.category,
        }),
      });
      if (res.status !== 201) throw new Error(`POST ${id}: ${res.status} ${await res.text()}`);
      ctx.directWrites.push({ id, content, timestamp });
    }
  };
  await Promise.all(Array.from({ length: 8 }, post));
  const pending = await ctx.withDatabase(async (client) => {
    const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM product_events");
    return rows[0]?.n ?? 0;
  });
  ctx.note(`600 products written while the broker was down; ${pending} events waiting in the outbox`);
  await delay(2_000);
  const started = Date.now();
  await ctx.broker.start();
  ctx.note(`broker restarted in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  ctx.back("broker restarted");
}

export const SCENARIOS: Scenario[] = [
  {
    name: "scheduler-kill",
    ci: true,
    summary: "SIGKILL the scheduler while it processes, start it again at once",
    steadySeconds: 20,
    catchUpTarget: true,
    fault: (ctx) => killAndRestart(ctx, ctx.schedulers[0] as Service),
  },
  {
    name: "api-kill",
    ci: true,
    summary: "SIGKILL the API (writes and relay in flight), start it again at once",
    steadySeconds: 20,
    catchUpTarget: true,
    fault: (ctx) => killAndRestart(ctx, ctx.apis[0] as Service),
  },
  {
    name: "broker-kill",
    ci: true,
    summary: "SIGKILL the broker, 5 s down, start it again (same data)",
    steadySeconds: 30,
    catchUpTarget: true,
    fault: async (ctx) => {
      await delay(FAULT_AFTER_MS);
      await killBroker(ctx, 5_000);
    },
  },
  {
    name: "db-terminate",
    ci: true,
    summary: "pg_terminate_backend on every backend of the run's database, every 250 ms for 10 s",
    steadySeconds: 20,
    catchUpTarget: false,
    fault: (ctx) => terminateBackends(ctx, 10),
  },
  {
    name: "replay",
    ci: true,
    summary: "once everything is processed, a scheduler with a new group reads the input again (tied timestamps)",
    steadySeconds: 0,
    catchUpTarget: false,
    fault: async (ctx) => {
      ctx.progress("replaying the input with a new consumer group");
      await ctx.replayWithNewGroup();
    },
  },
  {
    name: "api-kill-after-ack",
    ci: false,
    summary: "SIGKILL the API after the broker acknowledged a relay batch, before the outbox DELETE",
    steadySeconds: 20,
    catchUpTarget: true,
    fault: killBetweenAckAndDelete,
  },
  {
    name: "relay-failover",
    ci: false,
    summary: "two API replicas; SIGKILL the one whose relay is active (the other takes over)",
    apis: 2,
    steadySeconds: 20,
    catchUpTarget: true,
    fault: killActiveRelay,
  },
  {
    name: "db-terminate-30s",
    ci: false,
    summary: "pg_terminate_backend on every backend of the run's database, every 250 ms for 30 s",
    steadySeconds: 40,
    catchUpTarget: false,
    fault: (ctx) => terminateBackends(ctx, 30),
  },
  {
    name: "scheduler-join-leave",
    ci: false,
    summary: "a second scheduler joins the group, then leaves it (SIGTERM) 5 s later",
    steadySeconds: 20,
    catchUpTarget: false,
    fault: async (ctx) => {
      await delay(FAULT_AFTER_MS);
      ctx.progress("a second scheduler joins");
      const second = await ctx.addScheduler();
      await delay(5_000);
      ctx.progress("the second scheduler leaves");
      await second.stop();
      ctx.back(`${second.name} left`);
    },
  },
  {
    name: "api-freeze",
    ci: false,
    summary: "SIGSTOP the API for 20 s (past the scheduler's session timeout), then SIGCONT",
    steadySeconds: 35,
    catchUpTarget: false,
    fault: async (ctx) => {
      await delay(FAULT_AFTER_MS);
      const api = ctx.apis[0] as Service;
      ctx.progress(`SIGSTOP ${api.name} for 20 s`);
      api.signal("SIGSTOP");
      await delay(20_000);
      api.signal("SIGCONT");
      ctx.back(`${api.name} continued`);
    },
  },
  {
    name: "outbox-backlog",
    ci: false,
    summary: "broker SIGKILLed, 600 products of 4,000 accented characters written through REST, broker back",
    steadySeconds: 0,
    catchUpTarget: true,
    fault: outboxBacklog,
  },
  {
    name: "stale-and-future",
    ci: false,
    summary: "no fault: the workload's stale, duplicate and future-dated updates and bad records alone",
    steadySeconds: 10,
    catchUpTarget: false,
  },
];
