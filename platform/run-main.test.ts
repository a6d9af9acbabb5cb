import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { describeError, isProcessAlive } from "./run-main.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

describe("describeError", () => {
  it("says that nothing was given for a bare undefined or null rejection", () => {
    expect(describeError(undefined)).to.equal("no error given (rejected with undefined)");
    expect(describeError(null)).to.equal("no error given (rejected with null)");
  });

  it("shows strings as they are and other values readably", () => {
    expect(describeError("lock file exists")).to.equal("lock file exists");
    expect(describeError({ code: "57P03", detail: "starting up" })).to.equal(
      "{ code: '57P03', detail: 'starting up' }",
    );
    expect(describeError(42)).to.equal("42");
  });

  it("gives an Error's stack, then its causes", () => {
    const error = new Error("could not open the database", { cause: new TypeError("bad port") });
    const text = describeError(error);
    expect(text).to.match(/^Error: could not open the database\n {4}at /);
    expect(text).to.match(/\ncaused by: TypeError: bad port\n {4}at /);
  });

  it("lists the errors of an AggregateError, and the fields of an Error without a message", () => {
    const refused = Object.assign(new Error(""), { code: "ECONNREFUSED", port: 5432 });
    const text = describeError(new AggregateError([refused, "second"], "all attempts failed"));
    expect(text).to.match(/^AggregateError: all attempts failed\n/);
    expect(text).to.match(/\n {2}- Error \{ code: 'ECONNREFUSED', port: 5432 \}\n {8}at /);
    expect(text).to.match(/\n {2}- second$/);
  });
});

describe("runMain", () => {
  it("when main rejects with undefined, then the service exits 1 saying so, not printing `undefined` alone", async () => {
    const script = [
      'import { runMain } from "./platform/run-main.ts";',
      'runMain("demo", () => Promise.reject(undefined));',
    ].join("\n");
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    const code = await new Promise((resolve) => child.on("close", resolve));
    expect(code).to.equal(1);
    expect(stderr).to.equal("demo: failed to start: no error given (rejected with undefined)\n");
  });
});

describe("isProcessAlive", () => {
  it("when a process has exited but its parent has not reaped it (a zombie), then it is gone (Linux: /proc)", async () => {
    // The background sleep's parent becomes `sleep 5` (exec), which never waits for it.
    const parent = spawn("sh", ["-c", "sleep 0.1 & echo $!; exec sleep 5"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const [line] = (await once(parent.stdout, "data")) as [Buffer];
      const zombie = Number(line.toString().trim());
      await delay(500);
      expect(readFileSync(`/proc/${zombie}/stat`, "utf8"), "the child is a zombie").to.match(/\) Z /);
      expect(isProcessAlive(zombie)).to.equal(false);
      expect(isProcessAlive(parent.pid ?? 0)).to.equal(true);
      expect(isProcessAlive(process.pid)).to.equal(true);
    } finally {
      parent.kill("SIGKILL");
    }
  });
});
