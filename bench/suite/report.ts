import { configName, roleCosts } from "../capacity/report.js";
import { CPU_ROLES, type CpuUse, cpuUsPerMessage } from "../pipeline/cpu-window.js";
import { formatNumber } from "../shared/svg.js";
import {
  apiCpuChart,
  apiThroughputChart,
  capacityCpuChart,
  capacityThroughputChart,
  latencyChart,
  pipelineCpuChart,
  pipelineThroughputChart,
  ROLE_LABELS,
} from "./charts.js";
import { WAKE_INTERVAL_MS, type WakeCost, wakeCostSummary } from "./machine.js";
import type { SuiteResults } from "./results.js";
import { checkTargets } from "./targets.js";

export interface RenderedReport {
  markdown: string;
  /** SVG files, named relative to the chart folder the Markdown links to. */
  charts: { file: string; svg: string }[];
}

/** A Markdown table; `numeric` right-aligns every column but the first. */
export function markdownTable(headers: string[], rows: (string | number)[][], numeric = true): string[] {
  const cell = (value: string | number) => String(value).replace(/\|/g, "\\|");
  return [
    `| ${headers.map(cell).join(" | ")} |`,
    `| ${headers.map((_, i) => (i === 0 || !numeric ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((row) => `| ${row.map(cell).join(" | ")} |`),
  ];
}

const verdict = (pass: boolean | undefined) => (pass === undefined ? "n/a" : pass ? "pass" : "**FAIL**");
const loads = (l: number[]) => l.map((v) => v.toFixed(2)).join(" / ");
const us = (v: number | undefined) => (v === undefined ? "–" : formatNumber(v));

/** Rows of µs per message by role (and others, and cores busy) for a set of windows. */
function cpuRows(windows: [string, CpuUse | undefined, number][]): (string | number)[][] {
  return windows.flatMap(([name, cpu, messages]) => {
    if (!cpu || messages <= 0) return [];
    const per = (seconds: number) => us((seconds * 1e6) / messages);
    return [
      [
        name,
        ...CPU_ROLES.map((role) => per(cpu[role])),
        us(cpuUsPerMessage(cpu, messages)),
        per(cpu.others),
        (cpu.machine / cpu.seconds).toFixed(2),
      ],
    ];
  });
}

/**
 * The Markdown report of one `npm run bench` and its charts: machine and commit, the targets of
 * issue 10 with pass/fail, the summary lines, then throughput, latency, CPU and capacity, each
 * with its chart and table. Pure: the caller writes the files.
 */
export function renderReport(results: SuiteResults, chartDir: string): RenderedReport {
  const charts: { file: string; svg: string }[] = [];
  const chart = (file: string, alt: string, svg: string) => {
    charts.push({ file, svg });
    return `![${alt}](${chartDir}/${file})`;
  };
  const { pipeline, api, capacity, machine, versions, git } = results;
  const apiSummary = api?.summary;
  const lines: string[] = [`# Benchmark report ${results.stamp}`, ""];
  if (results.quick) {
    lines.push(
      "> **Quick smoke run** (`npm run bench -- --quick`): small workloads that prove the benches work end to end.",
      "> Its numbers are not measurements.",
      "",
    );
  }
  if (machine.loadBefore[0] !== undefined && machine.loadBefore[0] >= Math.max(2, machine.cores)) {
    lines.push(
      `> The machine was busy when the run started (load ${machine.loadBefore[0].toFixed(2)} on ${machine.cores} cores): rates are noisy; compare CPU per message rather than rates.`,
      "",
    );
  }
  lines.push(
    "## Machine and code",
    "",
    ...markdownTable(
      ["what", "value"],
      [
        ["cores", `${machine.cores} × ${machine.cpuModel ?? "unknown CPU"}, ${machine.memoryGiB} GiB, ${machine.os}`],
        ["load average (1/5/15 min)", `before ${loads(machine.loadBefore)}, after ${loads(machine.loadAfter)}`],
        ...(machine.wakeCost ? [["CPU per wake-up", wakeCostSummary(machine.wakeCost, formatNumber)]] : []),
        [
          "versions",
          `Node ${versions.node}, PostgreSQL ${versions.postgres ?? "unknown"}, Kafka ${versions.kafka ?? "unknown"}, kafkajs ${versions.kafkajs ?? "unknown"}`,
        ],
        [
          "commit",
          `${git.commit ?? "unknown"}${git.dirty ? " (with uncommitted changes)" : git.dirty === false ? " (clean)" : ""}`,
        ],
        ["run", `${results.startedAt} → ${results.finishedAt}`],
        ...Object.entries(results.commands).map(([bench, args]) => [
          `bench:${bench}`,
          `\`${args.join(" ") || "(defaults)"}\``,
        ]),
      ],
      false,
    ),
    "",
  );
  if (results.failures.length > 0) {
    lines.push(
      `**Failed:** ${results.failures.map((f) => `${f.bench} (exit ${f.exitCode})`).join(", ")}; see its output.`,
      "",
    );
  }

  lines.push("## Targets (issue 10)", "");
  const checks = checkTargets(pipeline?.summary, apiSummary);
  lines.push(
    ...markdownTable(
      ["target", "measured", "result"],
      checks.map((c) => [c.target, c.measured, verdict(c.pass)]),
      false,
    ),
  );
  lines.push("", "```text", ...results.summaryLines, "```", "");

  if (pipeline || api) lines.push("## Throughput", "");
  if (pipeline) {
    lines.push(
      chart("pipeline-throughput.svg", "pipeline throughput beside its ceilings", pipelineThroughputChart(pipeline)),
      "",
    );
    const { settings, e2e } = pipeline;
    lines.push(
      `${formatNumber(pipeline.workload.records)} records (${formatNumber(pipeline.workload.distinctIds)} products, ` +
        `${formatNumber(pipeline.workload.updates)} updates), ${settings.partitions} partitions, API_BATCH_SIZE ${settings.apiBatchSize}, ` +
        `${settings.apiProtocol}; relay ${pipeline.options.relay}, services as ${pipeline.options.pipeline} processes. ` +
        `End to end: rows done at ${e2e.rowsDoneS.toFixed(2)} s of ${e2e.seconds.toFixed(2)} s` +
        (e2e.calls
          ? `; ${formatNumber(e2e.calls.calls)} calls of ${formatNumber(e2e.calls.recordsPerCall)} records, ` +
            `${formatNumber(e2e.calls.schedulerCallMs)} ms each at the scheduler, ${formatNumber(e2e.calls.apiHandlerMs)} ms in the API.`
          : "."),
      "",
    );
  }
  if (api && apiSummary) {
    lines.push(chart("api-throughput.svg", "single creates beside the raw pg baseline", apiThroughputChart(api)), "");
    lines.push(
      ...markdownTable(
        ["phase", "creates/s", "p50 ms", "p99 ms", "errors", "vs pg", "by round"],
        api.phases.map((p) => [
          p.name,
          formatNumber(p.perSecond),
          p.p50Ms.toFixed(2),
          p.p99Ms.toFixed(2),
          p.errors,
          p.ratioToBaseline.toFixed(2),
          p.roundsPerSecond.map((r) => formatNumber(r)).join(", "),
        ]),
      ),
      "",
      `${api.options.concurrency} concurrent clients, ${api.options.rounds} rounds of ${(api.options.durationS / api.options.rounds).toFixed(1)} s each, pool ${api.dbPoolMax}${api.dbWriteConcurrency === undefined ? "" : `, ${api.dbWriteConcurrency} upserts in flight`}.`,
      "",
    );
  }

  if (pipeline) {
    lines.push(
      "## Latency",
      "",
      chart("latency.svg", "latency percentiles by offered rate", latencyChart(pipeline)),
      "",
    );
    lines.push(
      ...markdownTable(
        [
          "offered",
          "sent at",
          "p50 ms",
          "p90 ms",
          "p99 ms",
          "max ms",
          "record → write p50/p99",
          "write → event p50/p99",
          "lost",
        ],
        pipeline.latencies.map((l) => [
          `${formatNumber(l.ratePerS)}/s`,
          `${formatNumber(l.sentPerS)}/s`,
          formatNumber(l.p50Ms),
          formatNumber(l.p90Ms),
          formatNumber(l.p99Ms),
          formatNumber(l.maxMs),
          `${formatNumber(l.toWriteP50Ms)} / ${formatNumber(l.toWriteP99Ms)}`,
          `${formatNumber(l.writeToEventP50Ms)} / ${formatNumber(l.writeToEventP99Ms)}`,
          l.lost,
        ]),
      ),
      "",
    );
    const batching = pipeline.latencies.flatMap(({ ratePerS, calls }) =>
      calls
        ? [
            `at ${formatNumber(ratePerS)}/s ${formatNumber(calls.calls)} calls of ${formatNumber(calls.recordsPerCall)} records`,
          ]
        : [],
    );
    if (batching.length > 0) lines.push(`Scheduler calls: ${batching.join("; ")}.`, "");
    if (machine.wakeCost) lines.push(wakeCostText(machine.wakeCost), "");
  }

  if (pipeline || api) lines.push("## CPU", "");
  if (pipeline) {
    lines.push(chart("pipeline-cpu.svg", "CPU per message by process", pipelineCpuChart(pipeline)), "");
    lines.push(
      "µs of CPU per message by process; *all* is every process but *others* (the rest of the machine), " +
        "*cores* how many cores the machine kept busy over the window.",
      "",
      ...markdownTable(
        ["phase", ...ROLE_LABELS, "all", "others", "cores"],
        cpuRows([
          ["preload produce", pipeline.preload.cpu, pipeline.preload.messages],
          ["kafka pipe ceiling", pipeline.kafkaPipe.cpu, pipeline.kafkaPipe.messages],
          ["pg upsert ceiling", pipeline.pgCeiling.cpu, pipeline.pgCeiling.messages],
          ["end to end", pipeline.e2e.cpu, pipeline.e2e.messages],
          ...pipeline.latencies.map(
            (l) => [`open loop ${formatNumber(l.ratePerS)}/s`, l.cpu, l.sent] as [string, CpuUse | undefined, number],
          ),
        ]),
      ),
      "",
    );
  }
  if (api) {
    lines.push(chart("api-cpu.svg", "CPU per create by process", apiCpuChart(api)), "");
    lines.push(
      ...markdownTable(
        ["phase", "bench ms", "api ms", "pg ms", "cores busy"],
        api.phases.flatMap((p) => {
          if (!p.cpu || p.creates === 0) return [];
          const ms = (s: number | undefined) => (s === undefined ? "–" : ((s * 1000) / p.creates).toFixed(3));
          return [
            [p.name, ms(p.cpu.bench), ms(p.cpu.apiChild), ms(p.cpu.postgres), (p.cpu.machine / p.seconds).toFixed(2)],
          ];
        }),
      ),
      "",
    );
  }

  if (capacity) {
    lines.push(
      "## Capacity",
      "",
      "Each topology is schedulers × API replicas, every one its own process, on this machine; the first replica " +
        "holds the relay and the schedulers call the others first. The model and its reasoning: " +
        "[bench/README.md](../README.md#capacity-model).",
      "",
      chart("capacity-throughput.svg", "end to end by topology", capacityThroughputChart(capacity)),
      "",
      chart("capacity-cpu.svg", "CPU per message by topology", capacityCpuChart(capacity)),
      "",
      ...markdownTable(
        ["topology", "msg/s", "fed at", ...ROLE_LABELS, "all", "relay on", "per process µs/msg", "lost"],
        capacity.results.map((r) => [
          configName(r),
          formatNumber(r.perSecond),
          formatNumber(r.feedPerS),
          ...roleCosts(r).map(us),
          r.relayOn ?? "?",
          Object.entries(r.cpu?.processes ?? {})
            .map(([name, seconds]) => `${name} ${us((seconds * 1e6) / r.messages)}`)
            .join(", "),
          r.lost,
        ]),
      ),
      "",
    );
    const { costs } = capacity;
    if (costs) {
      lines.push(
        `CPU per message the model scales (from ${costs.source}): scheduler ${us(costs.scheduler)} µs, API ${us(costs.api)} µs, ` +
          `relay ${costs.relay === undefined ? "inside the API" : `${us(costs.relay)} µs`}, PostgreSQL ${us(costs.postgres)} µs, ` +
          `Kafka ${us(costs.kafka)} µs. Each process and core kept at most 70% busy.`,
        "",
        ...markdownTable(
          [
            "msg/s",
            "scheduler instances",
            "input partitions",
            "API replicas",
            "relay (one thread), cores",
            "PostgreSQL cores",
            "Kafka cores",
            "all cores",
          ],
          capacity.plans.map((p) => [
            formatNumber(p.ratePerS),
            p.schedulers,
            p.partitions,
            p.apiReplicas,
            p.relayCores === undefined
              ? "–"
              : `${p.relayCores.toFixed(2)}${p.relayFits ? "" : " — **too much for one**"}`,
            p.postgresCores.toFixed(1),
            p.kafkaCores.toFixed(1),
            p.totalCores.toFixed(1),
          ]),
        ),
        "",
        "What saturates first, lowest rate first:",
        "",
        ...capacity.limits.map((l) => `- ${l.what}: ${formatNumber(l.maxRatePerS)} msg/s`),
        "",
      );
    }
  }

  if (pipeline) {
    const f = pipeline.final;
    lines.push(
      "## Checks",
      "",
      `Rows ${formatNumber(f.rows)} of ${formatNumber(f.expectedRows)}, dead-lettered ${f.deadLettered}, events lost ${f.lost}, ` +
        `duplicate events ${f.duplicates}, service warnings ${f.serviceWarnings}.`,
      "",
    );
  }
  return { markdown: `${lines.join("\n").trimEnd()}\n`, charts };
}

/** Why the open-loop phases cost more per message than end to end, in this machine's numbers. */
function wakeCostText(cost: WakeCost): string {
  return (
    `At a low rate every hop (a fetch, an RPC, a SQL round trip, a produce) carries a few records and pays ` +
    `for waking its process up. On this machine, measured before the benches: a Node.js timer that fires every ` +
    `${WAKE_INTERVAL_MS} ms costs ${formatNumber(cost.timerUs)} µs of CPU per wake, and a PostgreSQL round trip every ` +
    `${WAKE_INTERVAL_MS} ms costs the client ${formatNumber(cost.pgRoundTripIdleUs)} µs against ` +
    `${formatNumber(cost.pgRoundTripBusyUs)} µs back to back. That fixed price per hop, not work per record, is ` +
    "why the open-loop phases spend more CPU per message than end to end (see CPU below)."
  );
}
