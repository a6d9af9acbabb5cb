import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root, where tests run the project's commands. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface CommandResult {
  /** Null when the command was killed (e.g. at its timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  output: string;
}

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  /** Default: the repository's root. */
  cwd?: string;
  /** A hung command is SIGKILLed then, so it fails its test instead of the whole run. */
  timeoutMs: number;
  /** Run in a process group of its own, killed whole at the timeout (the command starts others). */
  detached?: boolean;
}

/** Runs a command to its end with its output collected, as a user would from a shell. */
export function runCommand(command: string, args: readonly string[], options: CommandOptions): Promise<CommandResult> {
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  const result: CommandResult = { code: null, stdout: "", stderr: "", output: "" };
  child.stdout.on("data", (chunk: Buffer) => {
    result.stdout += chunk.toString("utf8");
    result.output += chunk.toString("utf8");
  });
  child.stderr.on("data", (chunk: Buffer) => {
    result.stderr += chunk.toString("utf8");
    result.output += chunk.toString("utf8");
  });
  const timer = setTimeout(() => {
    const note = `\n[test] '${[command, ...args].join(" ")}' still running after ${options.timeoutMs} ms; killed\n`;
    result.stderr += note;
    result.output += note;
    try {
      if (options.detached && child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      else child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, options.timeoutMs);
  return new Promise((resolve, reject) => {
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      result.code = code;
      resolve(result);
    });
  });
}
