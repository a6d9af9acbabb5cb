import { expect } from "chai";
import { expectWellFormedXml } from "../../test/support/well-formed-xml.js";
import { barChart, escapeXml, formatNumber, groupedBarChart, niceScale, stackedBarChart } from "./svg.js";

function checkWellFormed(svg: string): string[] {
  const names = expectWellFormedXml(svg);
  expect(names[0]).to.equal("svg");
  return names;
}

const titles = (svg: string) => [...svg.matchAll(/<title>([^<]*)<\/title>/g)].map((m) => m[1]);

describe("svg charts", () => {
  it("picks round axis ends in steps of 1, 2 or 5", () => {
    expect(niceScale(11_064)).to.deep.equal({ max: 12_000, step: 2_000 });
    expect(niceScale(495)).to.deep.equal({ max: 500, step: 100 });
    expect(niceScale(0.72)).to.deep.include({ step: 0.2 });
    expect(niceScale(0)).to.deep.equal({ max: 1, step: 0.2 });
  });

  it("formats numbers with grouped thousands and fewer decimals as they grow", () => {
    expect(formatNumber(22_172.4)).to.equal("22,172");
    expect(formatNumber(42.44)).to.equal("42.4");
    expect(formatNumber(0.725)).to.equal("0.73");
  });

  it("when given bars, then it draws one titled bar and one label per row, and the reference line", () => {
    const svg = barChart({
      title: "Throughput <pipeline> & ceilings",
      unit: "msg/s",
      bars: [
        { label: "kafka pipe", value: 22_172 },
        { label: "pg upsert", value: 22_084 },
        { label: "composed ceiling", value: 11_064 },
        { label: "end to end", value: 3_375, color: "#e15759" },
      ],
      references: [{ value: 6_638, label: "target 0.6× composed" }],
    });
    const names = checkWellFormed(svg);
    expect(names.filter((n) => n === "rect")).to.have.length(1 + 4); // background + bars
    expect(titles(svg)).to.deep.equal([
      "kafka pipe: 22,172 msg/s",
      "pg upsert: 22,084 msg/s",
      "composed ceiling: 11,064 msg/s",
      "end to end: 3,375 msg/s",
      "target 0.6× composed: 6,638",
    ]);
    expect(svg).to.include(">end to end</text>");
    expect(svg).to.include("Throughput &lt;pipeline&gt; &amp; ceilings");
    expect(svg).to.include('fill="#e15759"');
  });

  it("when given stacked rows, then each positive part is a titled segment and the legend names the series", () => {
    const svg = stackedBarChart({
      title: "CPU per message",
      unit: "µs/msg",
      series: ["bench", "api", "scheduler", "relay", "pg", "kafka"],
      rows: [
        { label: "kafka ceiling", parts: [36, 0, 0, 0, 0, 23] },
        { label: "end to end", parts: [58, 242, 126, 0, 71, 23] },
      ],
      references: [{ value: 282, label: "2× ceilings" }],
    });
    checkWellFormed(svg);
    const segments = titles(svg).filter((t) => t?.includes(", "));
    expect(segments).to.deep.equal([
      "kafka ceiling, bench: 36 µs/msg",
      "kafka ceiling, kafka: 23 µs/msg",
      "end to end, bench: 58 µs/msg",
      "end to end, api: 242 µs/msg",
      "end to end, scheduler: 126 µs/msg",
      "end to end, pg: 71 µs/msg",
      "end to end, kafka: 23 µs/msg",
    ]);
    for (const series of ["bench", "api", "scheduler", "relay", "pg", "kafka"])
      expect(svg).to.include(`>${series}</text>`);
    expect(svg).to.include(">520</text>"); // the end-to-end total
  });

  it("when given groups, then it draws a column per series in each group, labelled by group", () => {
    const svg = groupedBarChart({
      title: "Latency by offered rate",
      unit: "ms",
      series: ["p50", "p90", "p99", "max"],
      groups: [
        { label: "1,000 msg/s", values: [79, 200, 495, 610] },
        { label: "1,687 msg/s", values: [50, 120, 208, 300] },
      ],
      references: [{ value: 100, label: "target p99 100 ms" }],
    });
    checkWellFormed(svg);
    expect(titles(svg)).to.include.members(["1,000 msg/s, p99: 495 ms", "1,687 msg/s, max: 300 ms"]);
    expect(titles(svg).filter((t) => t?.includes(", p"))).to.have.length(6);
    expect(svg).to.include(">1,687 msg/s</text>");
    expect(svg).to.include("target p99 100 ms");
  });

  it("when there is nothing to draw, then it still is a well-formed chart", () => {
    checkWellFormed(barChart({ title: "empty", unit: "x", bars: [] }));
    checkWellFormed(stackedBarChart({ title: "empty", unit: "x", series: [], rows: [] }));
    checkWellFormed(groupedBarChart({ title: "empty", unit: "x", series: [], groups: [] }));
  });

  it("escapes what XML reserves", () => {
    expect(escapeXml(`a<b>&"c'`)).to.equal("a&lt;b&gt;&amp;&quot;c&apos;");
  });
});
