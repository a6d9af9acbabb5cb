import { setTimeout as delay } from "node:timers/promises";

/** Sums the samples of a Prometheus metric whose labels contain every `match` fragment. */
export function metricSum(text: string, name: string, ...match: string[]): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) continue;
    if (match.every((fragment) => line.includes(fragment))) sum += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
  }
  return sum;
}

/** Polls `url` until metric `name` satisfies `done`; throws after `timeoutMs`. */
export async function untilMetric(
  url: string,
  name: string,
  done: (value: number) => boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await fetch(url).then(
      (res) => res.text(),
      () => "",
    );
    if (done(metricSum(text, name))) return;
    if (Date.now() > deadline) throw new Error(`${url}: ${name} not as expected after ${timeoutMs} ms`);
    await delay(50);
  }
}
