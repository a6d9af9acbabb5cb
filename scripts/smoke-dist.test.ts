import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { testBrokers, testDatabaseUrl } from "../test/support/env.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Runs a command in the repository; resolves with its exit code and everything it printed. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("the compiled services, installed as the image's final stage installs them @integration", function () {
  this.timeout(150_000);

  it("when dist/ is built and run with plain node and production dependencies only, then both services work and stop cleanly", async () => {
    const build = await run("npm", ["run", "build"], process.env, 60_000);
    expect(build.code, build.output).to.equal(0);
    const smoke = await run(
      process.execPath,
      ["--import", "tsx", "scripts/smoke-dist.ts"],
      { ...process.env, KAFKA_BROKER_URL: testBrokers(), TEST_DATABASE_URL: testDatabaseUrl() },
      120_000,
    );
    expect(smoke.code, smoke.output).to.equal(0);
    expect(smoke.output).to.match(/smoke-dist: ok in/);
  });
});
