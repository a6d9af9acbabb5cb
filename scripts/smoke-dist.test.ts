import { expect } from "chai";
import { testBrokers, testDatabaseUrl } from "../test/support/env.js";
import { runCommand } from "../test/support/run-command.js";

describe("the compiled services, installed as the image's final stage installs them @integration", function () {
  this.timeout(150_000);

  it("when dist/ is built and run with plain node and production dependencies only, then both services work and stop cleanly", async () => {
    const build = await runCommand("npm", ["run", "build"], { timeoutMs: 60_000 });
    expect(build.code, build.output).to.equal(0);
    const smoke = await runCommand(process.execPath, ["--import", "tsx", "scripts/smoke-dist.ts"], {
      env: { ...process.env, KAFKA_BROKER_URL: testBrokers(), TEST_DATABASE_URL: testDatabaseUrl() },
      timeoutMs: 120_000,
    });
    expect(smoke.code, smoke.output).to.equal(0);
    expect(smoke.output).to.match(/smoke-dist: ok in/);
  });
});
