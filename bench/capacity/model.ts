import type { CallStats } from "../pipeline/call-stats.js";
import type { CpuUse } from "../pipeline/cpu-window.js";

/** One topology's end-to-end run. */
export interface ConfigResult {
  schedulers: number;
  apiReplicas: number;
  messages: number;
  seconds: number;
  perSecond: number;
  /** How fast the bench produced the workload meanwhile: above perSecond, or the feed was the limit. */
  feedPerS: number;
  lost: number;
  duplicates: number;
  /** Process start → group settled: not timed. */
  startupS: number;
  /** The API process whose relay held the lease (api_outbox_relay_active), e.g. "api#1". */
  relayOn: string | undefined;
  /** Which API replica each scheduler called, in scheduler order. */
  schedulerApis: string[];
  cpu: CpuUse | undefined;
  calls: CallStats | undefined;
}

/** CPU per message of each component, in µs: what the model scales. */
export interface ComponentCosts {
  scheduler: number;
  /** The API serving BatchCreateProducts, without the relay (unless `relay` is undefined). */
  api: number;
  /** The active outbox relay; undefined when no run had it in a process of its own (then it is in `api`). */
  relay: number | undefined;
  postgres: number;
  kafka: number;
  /** Where the figures come from, for the report. */
  source: string;
}

export interface PlanOptions {
  /** Share of a core each process (and each PostgreSQL or broker core) may be kept busy: headroom for bursts and GC. */
  utilisation: number;
  /** Partitions one scheduler instance works on at once (PARTITIONS_CONSUMED_CONCURRENTLY). */
  partitionsPerInstance: number;
}

export const DEFAULT_PLAN: PlanOptions = { utilisation: 0.7, partitionsPerInstance: 3 };

/** What a message rate needs, from the components' CPU per message. */
export interface CapacityPlan {
  ratePerS: number;
  schedulers: number;
  partitions: number;
  apiReplicas: number;
  /** Cores the one active relay needs: more than `utilisation` means one relay cannot keep up. */
  relayCores: number | undefined;
  relayFits: boolean;
  postgresCores: number;
  kafkaCores: number;
  /** All of it, for one rate: the cores a cluster needs at `utilisation`. */
  totalCores: number;
}

const perMessage = (seconds: number, messages: number) => (seconds * 1e6) / messages;

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The relay's own process, when it served no scheduler (1×2): its CPU is the relay's alone. */
export function relayApart(result: ConfigResult): number | undefined {
  if (!result.relayOn || result.schedulerApis.includes(result.relayOn)) return undefined;
  return result.cpu?.processes?.[result.relayOn];
}

/**
 * The components' costs from the runs: each the median over the topologies of its CPU per message
 * (more instances should not change it; a median keeps one noisy topology from moving it), the
 * relay's from the runs where it had a replica of its own (1×2), taken out of the API's.
 */
export function componentCosts(results: readonly ConfigResult[]): ComponentCosts | undefined {
  const measured = results.filter((r) => r.cpu && r.messages > 0);
  if (measured.length === 0) return undefined;
  const per = (seconds: (cpu: CpuUse) => number, runs = measured) =>
    median(runs.map((r) => perMessage(seconds(r.cpu as CpuUse), r.messages)));
  const split = measured.filter((r) => relayApart(r) !== undefined);
  const api = per((cpu) => cpu.api + cpu.relay);
  const relay = split.length > 0 ? median(split.map((r) => perMessage(relayApart(r) ?? 0, r.messages))) : undefined;
  const names = (runs: readonly ConfigResult[]) => runs.map((r) => `${r.schedulers}×${r.apiReplicas}`).join(", ");
  return {
    scheduler: per((cpu) => cpu.scheduler),
    api: relay === undefined ? api : api - relay,
    relay,
    postgres: per((cpu) => cpu.postgres),
    kafka: per((cpu) => cpu.kafka),
    source: `medians of ${names(measured)}${split.length > 0 ? `; the relay apart in ${names(split)}` : ""}`,
  };
}

/**
 * Instances, partitions and cores for `ratePerS`. A Node process runs on one core, so scheduler
 * instances and API replicas are cores ÷ utilisation, rounded up; the relay is one thread
 * whatever the rate (one lease holder); PostgreSQL and the broker are cores. Partitions: each
 * instance needs `partitionsPerInstance` to keep its calls overlapping, and one partition's
 * chunks go one after the other through scheduler, API and PostgreSQL, so a partition carries at
 * most utilisation × 1e6 / (scheduler + API + PostgreSQL µs) messages per second.
 */
export function planCapacity(
  costs: ComponentCosts,
  ratePerS: number,
  options: PlanOptions = DEFAULT_PLAN,
): CapacityPlan {
  const cores = (us: number) => (ratePerS * us) / 1e6;
  const instances = (us: number) => Math.max(1, Math.ceil(cores(us) / options.utilisation - 1e-9));
  const schedulers = instances(costs.scheduler);
  const serialUs = costs.scheduler + costs.api + costs.postgres;
  const perPartition = (options.utilisation * 1e6) / serialUs;
  const relayCores = costs.relay === undefined ? undefined : cores(costs.relay);
  return {
    ratePerS,
    schedulers,
    partitions: Math.max(schedulers * options.partitionsPerInstance, Math.ceil(ratePerS / perPartition)),
    apiReplicas: instances(costs.api),
    relayCores,
    relayFits: relayCores === undefined || relayCores <= options.utilisation,
    postgresCores: cores(costs.postgres) / options.utilisation,
    kafkaCores: cores(costs.kafka) / options.utilisation,
    totalCores:
      cores(costs.scheduler + costs.api + (costs.relay ?? 0) + costs.postgres + costs.kafka) / options.utilisation,
  };
}

/** A limit that adding instances does not lift, and the rate at which it is reached. */
export interface Limit {
  what: string;
  maxRatePerS: number;
}

/**
 * The limits, lowest first: `machineCores` cores shared by everything (this box), one relay
 * process, one partition (lifted by more partitions, listed for scale). PostgreSQL scales up only:
 * its limit is the cores of the largest machine, `postgresMaxCores`.
 */
export function limits(
  costs: ComponentCosts,
  machineCores: number,
  postgresMaxCores: number,
  options: PlanOptions = DEFAULT_PLAN,
): Limit[] {
  const total = costs.scheduler + costs.api + (costs.relay ?? 0) + costs.postgres + costs.kafka;
  const found: Limit[] = [
    { what: `this machine (${machineCores} cores, everything on it)`, maxRatePerS: (machineCores * 1e6) / total },
    {
      what: "one partition (chunks in order through scheduler, API, PostgreSQL)",
      maxRatePerS: (options.utilisation * 1e6) / (costs.scheduler + costs.api + costs.postgres),
    },
    {
      what: `PostgreSQL primary on ${postgresMaxCores} cores`,
      maxRatePerS: (options.utilisation * postgresMaxCores * 1e6) / costs.postgres,
    },
  ];
  if (costs.relay !== undefined) {
    found.push({
      what: "the one active outbox relay (one thread)",
      maxRatePerS: (options.utilisation * 1e6) / costs.relay,
    });
  }
  return found.sort((a, b) => a.maxRatePerS - b.maxRatePerS);
}
