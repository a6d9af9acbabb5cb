import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import type { LogLevel } from "#platform/env.js";
import { formatLine, parseRecord } from "#platform/log-format.js";

/** Lines of each part kept for the message when it dies. */
export const KEPT_LINES = 30;

/** Where the parts' output goes: passed through (json) or formatted for a person (pretty). */
export interface Output {
  format: "json" | "pretty";
  color: boolean;
  /** Records below this level are not shown (the parts log at info or lower, for their readiness lines). */
  level: LogLevel;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be run at all (e.g. ENOENT). */
  error?: Error;
}

const LEVEL_VALUES: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

export function levelValue(level: unknown): number {
  if (typeof level === "number") return level;
  return LEVEL_VALUES[String(level)] ?? 30;
}

/** The more verbose of `level` and info: parts must log the info lines that say they are ready. */
export function partLogLevel(level: LogLevel): LogLevel {
  return level !== "silent" && levelValue(level) < levelValue("info") ? level : "info";
}

function shownAt(level: LogLevel): number {
  return level === "silent" ? Number.POSITIVE_INFINITY : levelValue(level);
}

export interface PartOptions {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  output: Output;
  /** Removed from the start of plain-text lines before showing them (a tool's own "name: " prefix). */
  stripPrefix?: string;
}

/**
 * A child process of `npm start`: in its own process group (detached), so the terminal's Ctrl-C
 * reaches npm start only and it stops the parts itself, in order. Its stdin is a pipe that is never
 * written: when npm start dies, it closes, and the part stops itself (exit-with-parent.ts).
 */
export class Part {
  readonly name: string;
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private readonly lines: { raw: string; shown: string }[] = [];
  private readonly waiters = new Set<(record: Record<string, unknown>) => void>();
  private exit: Exit | undefined;

  constructor(private readonly options: PartOptions) {
    this.name = options.name;
    this.child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stdin?.on("error", () => {});
    const read = (stream: NodeJS.ReadableStream | null, to: "stdout" | "stderr") => {
      if (!stream) return Promise.resolve();
      const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
      lines.on("line", (line) => this.onLine(line, to));
      return new Promise<void>((resolve) => lines.once("close", resolve));
    };
    const drained = Promise.all([read(this.child.stdout, "stdout"), read(this.child.stderr, "stderr")]);
    this.exited = new Promise<Exit>((resolve) => {
      this.child.once("error", (error) => {
        // Only a failed spawn leaves the process unborn; later errors (a kill failing) do not end it.
        if (this.child.pid === undefined) resolve({ code: null, signal: null, error });
      });
      this.child.once("exit", (code, signal) => {
        // Its last lines first, unless a grandchild still holds the pipes open.
        void Promise.race([drained, delay(1_000)]).then(() => resolve({ code, signal }));
      });
    }).then((exit) => {
      this.exit = exit;
      return exit;
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The last lines of its output, as a person reads them. */
  lastLines(): string[] {
    return this.lines.map((line) => line.shown);
  }

  /** The last lines of its output, as it wrote them. */
  lastRawLines(): string[] {
    return this.lines.map((line) => line.raw);
  }

  /** Resolves with the first record (from now on) that matches; rejects after timeoutMs, naming `what`. */
  waitForRecord(match: (record: Record<string, unknown>) => boolean, timeoutMs: number, what: string) {
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${what}: not seen after ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      const check = (record: Record<string, unknown>) => {
        if (!match(record)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(record);
      };
      this.waiters.add(check);
    });
  }

  /**
   * SIGTERM to the part (not its group: a wrapper stops its own children in order), then, past
   * timeoutMs or once `force` resolves, SIGKILL to its whole group. Anything left in the group
   * after the part exited is killed too: nothing it started outlives it.
   */
  async stop(timeoutMs: number, force: Promise<unknown>): Promise<"stopped" | "killed"> {
    let outcome: "stopped" | "killed" = "stopped";
    if (this.running) {
      this.signal("SIGTERM", false);
      const waited = new AbortController();
      const result = await Promise.race([
        this.exited.then(() => "exited" as const),
        delay(timeoutMs, "timeout" as const, { signal: waited.signal }).catch(() => "exited" as const),
        force.then(() => "forced" as const),
      ]);
      waited.abort();
      if (result !== "exited") {
        this.kill();
        outcome = "killed";
        await Promise.race([this.exited, delay(5_000)]);
      }
    }
    this.signal("SIGKILL", true);
    return outcome;
  }

  /** SIGKILL to the part's whole process group. */
  kill(): void {
    this.signal("SIGKILL", true);
  }

  private signal(signal: NodeJS.Signals, group: boolean): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(group ? -pid : pid, signal);
    } catch {
      // Gone already.
    }
  }

  private onLine(line: string, to: "stdout" | "stderr"): void {
    const { output, name, stripPrefix } = this.options;
    const record = parseRecord(line);
    const text =
      record === undefined && stripPrefix && line.startsWith(stripPrefix) ? line.slice(stripPrefix.length) : line;
    this.lines.push({ raw: line, shown: formatLine(text, { color: false, service: name }) });
    if (this.lines.length > KEPT_LINES) this.lines.shift();
    if (record !== undefined) for (const waiter of [...this.waiters]) waiter(record);
    if (record !== undefined && levelValue(record.level) < shownAt(output.level)) return;
    const shown = output.format === "pretty" ? formatLine(text, { color: output.color, service: name }) : line;
    output[to].write(`${shown}\n`);
  }
}
