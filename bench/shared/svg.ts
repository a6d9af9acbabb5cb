/**
 * Bar charts as standalone SVG text, for the Markdown reports: no library, no fonts or scripts to
 * load, readable in any browser or on GitHub. Each bar carries a `<title>` ("label: value unit")
 * so that a reader (and a test) can find a bar's exact value.
 */

/** Colours of successive series; distinct in print and for the common colour-vision deficiencies. */
export const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];

/** A dashed line across the plot at `value` (a target, a ceiling), labelled. */
export interface Reference {
  value: number;
  label: string;
}

export interface BarChart {
  title: string;
  unit: string;
  bars: { label: string; value: number; color?: string }[];
  references?: Reference[];
}

export interface StackedBarChart {
  title: string;
  unit: string;
  series: string[];
  /** `parts[i]` is series i's share of the row. */
  rows: { label: string; parts: number[] }[];
  references?: Reference[];
}

export interface GroupedBarChart {
  title: string;
  unit: string;
  series: string[];
  /** `values[i]` is series i's bar in the group. */
  groups: { label: string; values: number[] }[];
  references?: Reference[];
}

/** Targets and ceilings drawn over the bars: dark, so as not to read as one of the series. */
const REFERENCE = "#222222";
const WIDTH = 760;
const LABEL_WIDTH = 210;
const VALUE_WIDTH = 90;
const ROW = 26;
const BAR = 18;
const TOP = 34;
const LEGEND = 22;
const AXIS = 30;

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", '"': "quot", "'": "apos" }[c]};`);
}

/** 1,234 / 56.7 / 0.123: grouped thousands, fewer decimals as numbers grow. */
export function formatNumber(value: number): string {
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** An axis from 0 to a round number ≥ `max`, in steps of 1, 2 or 5 × 10ⁿ (at most about 6 of them). */
export function niceScale(max: number): { max: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { max: 1, step: 0.2 };
  const rough = max / 6;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

const attrs = (values: Record<string, string | number>) =>
  Object.entries(values)
    .map(([key, value]) => `${key}="${typeof value === "number" ? round(value) : escapeXml(value)}"`)
    .join(" ");
const round = (n: number) => String(Math.round(n * 10) / 10);
const text = (x: number, y: number, content: string, extra: Record<string, string | number> = {}) =>
  `<text ${attrs({ x, y, ...extra })}>${escapeXml(content)}</text>`;
const rect = (x: number, y: number, width: number, height: number, fill: string, title: string) =>
  `<rect ${attrs({ x, y, width: Math.max(0, width), height, fill })}><title>${escapeXml(title)}</title></rect>`;

function svgDocument(height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" ${attrs({ width: WIDTH, height, viewBox: `0 0 ${WIDTH} ${height}` })} font-family="sans-serif" font-size="12">`,
    `<rect ${attrs({ x: 0, y: 0, width: WIDTH, height, fill: "#ffffff" })}/>`,
    text(10, 20, title, { "font-size": 15, "font-weight": "bold" }),
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

function legend(series: string[], y: number): string[] {
  let x = LABEL_WIDTH;
  return series.flatMap((name, i) => {
    const at = x;
    x += 24 + name.length * 7;
    return [
      `<rect ${attrs({ x: at, y: y - 10, width: 12, height: 12, fill: PALETTE[i % PALETTE.length] as string })}/>`,
      text(at + 16, y, name),
    ];
  });
}

/** The horizontal value axis under rows, with grid lines and the reference lines over them. */
function horizontalAxis(scale: { max: number; step: number }, top: number, bottom: number, unit: string) {
  const plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
  const x = (value: number) => LABEL_WIDTH + (Math.min(value, scale.max) / scale.max) * plot;
  const lines: string[] = [];
  for (let tick = 0; tick <= scale.max + 1e-9; tick += scale.step) {
    lines.push(`<line ${attrs({ x1: x(tick), y1: top, x2: x(tick), y2: bottom, stroke: "#e0e0e0" })}/>`);
    lines.push(text(x(tick), bottom + 14, formatNumber(tick), { "text-anchor": "middle", fill: "#555555" }));
  }
  lines.push(text(WIDTH - VALUE_WIDTH, bottom + 28, unit, { "text-anchor": "end", fill: "#555555" }));
  return { x, lines };
}

function verticalReferences(refs: Reference[], x: (v: number) => number, top: number, bottom: number): string[] {
  return refs.flatMap((ref) => [
    `<line ${attrs({ x1: x(ref.value), y1: top - 4, x2: x(ref.value), y2: bottom, stroke: REFERENCE, "stroke-dasharray": "5 3" })}><title>${escapeXml(`${ref.label}: ${formatNumber(ref.value)}`)}</title></line>`,
    text(x(ref.value) + 3, top - 6, ref.label, { fill: REFERENCE, "font-size": 11 }),
  ]);
}

/** One horizontal bar per row, its value written after it. */
export function barChart(chart: BarChart): string {
  const refs = chart.references ?? [];
  const top = TOP + (refs.length > 0 ? 14 : 0);
  const bottom = top + chart.bars.length * ROW;
  const scale = niceScale(Math.max(...chart.bars.map((b) => b.value), ...refs.map((r) => r.value), 0));
  const axis = horizontalAxis(scale, top, bottom, chart.unit);
  const body = [...axis.lines];
  chart.bars.forEach((bar, i) => {
    const y = top + i * ROW + (ROW - BAR) / 2;
    const color = bar.color ?? (PALETTE[0] as string);
    body.push(text(LABEL_WIDTH - 8, y + BAR - 5, bar.label, { "text-anchor": "end" }));
    body.push(
      rect(
        LABEL_WIDTH,
        y,
        axis.x(bar.value) - LABEL_WIDTH,
        BAR,
        color,
        `${bar.label}: ${formatNumber(bar.value)} ${chart.unit}`,
      ),
    );
    body.push(text(axis.x(bar.value) + 4, y + BAR - 5, formatNumber(bar.value)));
  });
  body.push(...verticalReferences(refs, axis.x, top, bottom));
  return svgDocument(bottom + AXIS + 4, chart.title, body);
}

/** One horizontal bar per row, split into the series' parts, its total written after it. */
export function stackedBarChart(chart: StackedBarChart): string {
  const refs = chart.references ?? [];
  const top = TOP + LEGEND + (refs.length > 0 ? 14 : 0);
  const bottom = top + chart.rows.length * ROW;
  const total = (row: { parts: number[] }) => row.parts.reduce((sum, part) => sum + Math.max(0, part), 0);
  const scale = niceScale(Math.max(...chart.rows.map(total), ...refs.map((r) => r.value), 0));
  const axis = horizontalAxis(scale, top, bottom, chart.unit);
  const body = [...legend(chart.series, TOP + 8), ...axis.lines];
  chart.rows.forEach((row, i) => {
    const y = top + i * ROW + (ROW - BAR) / 2;
    body.push(text(LABEL_WIDTH - 8, y + BAR - 5, row.label, { "text-anchor": "end" }));
    let sum = 0;
    row.parts.forEach((part, s) => {
      if (!(part > 0)) return;
      const x0 = axis.x(sum);
      sum += part;
      const name = chart.series[s] ?? `series ${s + 1}`;
      body.push(
        rect(
          x0,
          y,
          axis.x(sum) - x0,
          BAR,
          PALETTE[s % PALETTE.length] as string,
          `${row.label}, ${name}: ${formatNumber(part)} ${chart.unit}`,
        ),
      );
    });
    body.push(text(axis.x(sum) + 4, y + BAR - 5, formatNumber(sum)));
  });
  body.push(...verticalReferences(refs, axis.x, top, bottom));
  return svgDocument(bottom + AXIS + 4, chart.title, body);
}

/** Columns: one group per category along the bottom, one column per series in each. */
export function groupedBarChart(chart: GroupedBarChart): string {
  const refs = chart.references ?? [];
  const height = 320;
  const top = TOP + LEGEND + 10;
  const bottom = height - AXIS - 14;
  const left = 70;
  const right = WIDTH - 20;
  const scale = niceScale(Math.max(...chart.groups.flatMap((g) => g.values), ...refs.map((r) => r.value), 0));
  const y = (value: number) => bottom - (Math.min(value, scale.max) / scale.max) * (bottom - top);
  const body = [...legend(chart.series, TOP + 8)];
  for (let tick = 0; tick <= scale.max + 1e-9; tick += scale.step) {
    body.push(`<line ${attrs({ x1: left, y1: y(tick), x2: right, y2: y(tick), stroke: "#e0e0e0" })}/>`);
    body.push(text(left - 6, y(tick) + 4, formatNumber(tick), { "text-anchor": "end", fill: "#555555" }));
  }
  body.push(text(10, top - 8, chart.unit, { fill: "#555555" }));
  const groupWidth = (right - left) / Math.max(1, chart.groups.length);
  const barWidth = Math.min(40, (groupWidth * 0.8) / Math.max(1, chart.series.length));
  chart.groups.forEach((group, g) => {
    const start = left + g * groupWidth + (groupWidth - barWidth * chart.series.length) / 2;
    group.values.forEach((value, s) => {
      const x = start + s * barWidth;
      const name = chart.series[s] ?? `series ${s + 1}`;
      body.push(
        rect(
          x + 1,
          y(value),
          barWidth - 2,
          bottom - y(value),
          PALETTE[s % PALETTE.length] as string,
          `${group.label}, ${name}: ${formatNumber(value)} ${chart.unit}`,
        ),
      );
      body.push(
        text(x + barWidth / 2, y(value) - 3, formatNumber(value), { "text-anchor": "middle", "font-size": 10 }),
      );
    });
    body.push(text(left + (g + 0.5) * groupWidth, bottom + 16, group.label, { "text-anchor": "middle" }));
  });
  for (const ref of refs) {
    body.push(
      `<line ${attrs({ x1: left, y1: y(ref.value), x2: right, y2: y(ref.value), stroke: REFERENCE, "stroke-dasharray": "5 3" })}><title>${escapeXml(`${ref.label}: ${formatNumber(ref.value)}`)}</title></line>`,
    );
    // At the left, where the groups leave room (their columns are centred).
    body.push(text(left + 4, y(ref.value) - 4, ref.label, { fill: REFERENCE, "font-size": 11 }));
  }
  return svgDocument(height, chart.title, body);
}
