/**
 * The README's runnable examples. A fenced block opened with "```sh test" is run by
 * scripts/readme.test.ts against a system started the way `npm start` starts it. Inside one:
 *
 *   curl -s localhost:8000/products/12345      a command (a trailing "\" continues it)
 *   #> "version":1                             output the command must print; "…" matches anything
 *   # a comment                                ignored
 *
 * Blocks without "test" (installation, Docker, tools this machine lacks) are documentation only.
 */
export interface ReadmeStep {
  /** The command as the README shows it, continuation lines joined. */
  command: string;
  /** Fragments its output must contain, in this order. */
  expect: string[];
  /** 1-based line of the command in the README, for failure messages. */
  line: number;
}

const OPENING = /^```(?:sh|bash) +test\s*$/;

export function readmeSteps(markdown: string): ReadmeStep[] {
  const lines = markdown.split("\n");
  const steps: ReadmeStep[] = [];
  let inBlock = false;
  let pending = "";
  let pendingLine = 0;
  for (const [index, line] of lines.entries()) {
    if (!inBlock) {
      inBlock = OPENING.test(line);
      continue;
    }
    if (line.startsWith("```")) {
      if (pending !== "") throw new Error(`README line ${pendingLine}: the block ends inside a continued command`);
      inBlock = false;
      continue;
    }
    if (pending === "" && line.startsWith("#>")) {
      const step = steps.at(-1);
      if (step === undefined) throw new Error(`README line ${index + 1}: expected output before any command`);
      step.expect.push(line.slice(2).trim());
      continue;
    }
    if (pending === "" && (line.trim() === "" || line.trimStart().startsWith("#"))) continue;
    if (pending === "") pendingLine = index + 1;
    pending += line;
    if (line.endsWith("\\")) {
      pending += "\n";
      continue;
    }
    steps.push({ command: pending, expect: [], line: pendingLine });
    pending = "";
  }
  if (inBlock) throw new Error("README: a ```sh test block is never closed");
  return steps;
}

/** A regular expression for an expected fragment: literal text, with "…" standing for anything. */
export function fragmentPattern(fragment: string): RegExp {
  const parts = fragment.split("…").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(parts.join("[\\s\\S]*?"));
}

/** Whether `output` contains every fragment, in order. */
export function matchesInOrder(output: string, fragments: readonly string[]): boolean {
  let rest = output;
  for (const fragment of fragments) {
    const match = fragmentPattern(fragment).exec(rest);
    if (match === null) return false;
    rest = rest.slice(match.index + match[0].length);
  }
  return true;
}
