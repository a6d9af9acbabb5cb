import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { Kafka, logLevel } from "kafkajs";
import { isProcessAlive } from "#platform/run-main.js";
import { freeBrokerPort } from "../test/support/free-port.js";
import { type CommandResult, runCommand } from "../test/support/run-command.js";

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "kafka.sh");
/** Apart from TEST_PORT_RANGE: this suite's brokers must not collide with the other suites' servers. */
const START_TIMEOUT_MS = 45_000;
const STOP_TIMEOUT_MS = 40_000;
const QUICK_TIMEOUT_MS = 10_000;

type Run = CommandResult;

/** `bash scripts/kafka.sh <command>`; its process group is SIGKILLed at timeoutMs (the broker has its own session). */
function kafkaSh(command: "start" | "stop" | "status", env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return runCommand("bash", [SCRIPT, command], { env, timeoutMs, detached: true });
}

/** Live processes running the broker of this config file. */
function brokerPids(configFile: string): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
        return cmdline.includes(`kafka.Kafka ${configFile}`) && isProcessAlive(pid);
      } catch {
        return false;
      }
    });
}

function readPid(pidFile: string): number {
  return Number(readFileSync(pidFile, "utf8").trim());
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await delay(100);
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.setTimeout(1_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}

/** The brokers listed by a Kafka DescribeCluster request, with short bounds so a dead broker fails fast. */
async function describeCluster(port: number): Promise<number[]> {
  const kafka = new Kafka({
    clientId: "kafka-sh-test",
    brokers: [`127.0.0.1:${port}`],
    connectionTimeout: 2_000,
    requestTimeout: 5_000,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1_000 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const cluster = await admin.describeCluster();
    return cluster.brokers.map((broker) => broker.port);
  } finally {
    await admin.disconnect();
  }
}

describe("scripts/kafka.sh start / stop / status after a hard kill @integration", function () {
  this.timeout(QUICK_TIMEOUT_MS);
  let port: number;
  let shimDir: string;
  const dataDirs: string[] = [];

  before(async () => {
    port = await freeBrokerPort();
    // A slow `setsid`, as on a loaded machine: the broker's pid file is written ~0.5 s after
    // kafka.sh forks it, so a start that reads the pid file too early sees the previous run's.
    shimDir = await mkdtemp(path.join(os.tmpdir(), "kafka-sh-test-bin-"));
    const setsid = execFileSync("bash", ["-c", "command -v setsid"], { encoding: "utf8" }).trim();
    await writeFile(path.join(shimDir, "setsid"), `#!/bin/sh\nsleep 0.5\nexec ${setsid} "$@"\n`);
    await chmod(path.join(shimDir, "setsid"), 0o755);
  });

  async function dataDir(): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), "kafka-sh-test-"));
    dataDirs.push(dir);
    return dir;
  }

  function envFor(dir: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of ["KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "KAFKA_START_TIMEOUT", "KAFKA_HEAP_OPTS"]) {
      delete env[name];
    }
    return {
      ...env,
      KAFKA_BROKER_URL: `127.0.0.1:${port}`,
      KAFKA_DATA_DIR: dir,
      KAFKA_START_TIMEOUT: "40",
      KAFKA_HEAP_OPTS: "-Xmx256m -Xms128m",
      PATH: `${shimDir}${path.delimiter}${process.env.PATH ?? ""}`,
    };
  }

  after(async function () {
    this.timeout(STOP_TIMEOUT_MS + QUICK_TIMEOUT_MS);
    for (const dir of dataDirs) {
      if (brokerPids(path.join(dir, "server.properties")).length > 0) {
        await kafkaSh("stop", envFor(dir), STOP_TIMEOUT_MS);
      }
      // Whatever `stop` could not reach (e.g. a pid file lost by a broken start).
      for (const pid of brokerPids(path.join(dir, "server.properties"))) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // exited meanwhile
        }
      }
      await rm(dir, { recursive: true, force: true });
    }
    if (shimDir) await rm(shimDir, { recursive: true, force: true });
  });

  it("when the broker was SIGKILLed, then start runs a new one and stop stops it", async function () {
    this.timeout(2 * START_TIMEOUT_MS + STOP_TIMEOUT_MS);
    const dir = await dataDir();
    const env = envFor(dir);
    const pidFile = path.join(dir, "broker.pid");
    const configFile = path.join(dir, "server.properties");

    const first = await kafkaSh("start", env, START_TIMEOUT_MS);
    expect(first.code, first.stderr).to.equal(0);
    const killed = readPid(pidFile);
    expect(isProcessAlive(killed), `pid ${killed} from broker.pid`).to.equal(true);

    process.kill(killed, "SIGKILL");
    await until(() => !isProcessAlive(killed), `pid ${killed} gone after SIGKILL`, QUICK_TIMEOUT_MS);
    // A many-threaded JVM's main thread is a zombie before its other threads have closed the sockets.
    await until(async () => !(await portOpen(port)), `port ${port} closed after SIGKILL`, QUICK_TIMEOUT_MS);
    await until(async () => !(await portOpen(port + 1)), `port ${port + 1} closed after SIGKILL`, QUICK_TIMEOUT_MS);
    // What a hard kill leaves: the pid file and the log dir's lock file.
    expect(readPid(pidFile)).to.equal(killed);
    expect(existsSync(path.join(dir, "logs", ".lock")), "logs/.lock left by the killed broker").to.equal(true);
    const down = await kafkaSh("status", env, QUICK_TIMEOUT_MS);
    expect([down.code, down.stdout.trim()], down.stderr).to.deep.equal([3, "not running"]);

    const again = await kafkaSh("start", env, START_TIMEOUT_MS);
    expect(again.code, again.stderr).to.equal(0);
    expect(existsSync(pidFile), `broker.pid after start\n${again.stderr}`).to.equal(true);
    const restarted = readPid(pidFile);
    expect(restarted).to.not.equal(killed);
    expect(brokerPids(configFile)).to.deep.equal([restarted]);
    expect(again.stderr).to.include(`started pid ${restarted} `);
    expect(await describeCluster(port)).to.deep.equal([port]);
    const up = await kafkaSh("status", env, QUICK_TIMEOUT_MS);
    expect(up.code, up.stderr).to.equal(0);
    expect(up.stdout).to.include(`running (pid ${restarted}, 127.0.0.1:${port}`);

    const stopped = await kafkaSh("stop", env, STOP_TIMEOUT_MS);
    expect(stopped.code, stopped.stderr).to.equal(0);
    expect(stopped.stderr).to.include(`stopping pid ${restarted}`);
    expect(isProcessAlive(restarted), `pid ${restarted} after stop`).to.equal(false);
    await until(async () => !(await portOpen(port)), `port ${port} closed after stop`, QUICK_TIMEOUT_MS);
    expect(existsSync(pidFile), "broker.pid after stop").to.equal(false);
    const finalStatus = await kafkaSh("status", env, QUICK_TIMEOUT_MS);
    expect(finalStatus.code, finalStatus.stdout).to.equal(3);
  });

  it("when the controller port is taken, then start fails with a clear message and starts nothing", async () => {
    const dir = await dataDir();
    const squatter = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      squatter.once("error", reject);
      squatter.listen({ port: port + 1, host: "127.0.0.1", exclusive: true }, resolve);
    });
    try {
      const run = await kafkaSh("start", envFor(dir), QUICK_TIMEOUT_MS);
      expect(run.code, run.stderr).to.equal(1);
      expect(run.stderr).to.include(`error: port 127.0.0.1:${port + 1} (controller) is in use by another process`);
      expect(brokerPids(path.join(dir, "server.properties"))).to.deep.equal([]);
      expect(existsSync(path.join(dir, "broker.pid")), "broker.pid").to.equal(false);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it("when the broker exits during startup and a stale pid file is there, then start fails with the log's tail and cleans up", async function () {
    this.timeout(START_TIMEOUT_MS);
    const dir = await dataDir();
    // Storage of another node: Kafka refuses it right after the JVM is up.
    await mkdir(path.join(dir, "logs"));
    await writeFile(
      path.join(dir, "logs", "meta.properties"),
      "version=1\nnode.id=2\ncluster.id=3Lx1cIoxRNWgGyy7Ptj1lw\ndirectory.id=9Uv2WWgAQq-R0nDqvDkm4Q\n",
    );
    // The pid of a process that has exited, as a hard-killed broker leaves it.
    const gone = spawn("true");
    await new Promise((resolve) => gone.on("close", resolve));
    const stalePid = gone.pid as number;
    await writeFile(path.join(dir, "broker.pid"), `${stalePid}\n`);

    const run = await kafkaSh("start", envFor(dir), START_TIMEOUT_MS);
    expect(run.code, run.stderr).to.equal(1);
    expect(run.stderr).to.include("Stored node id 2 doesn't match previous node id 1");
    expect(run.stderr).to.match(/error: broker process \d+ exited during startup/);
    expect(run.stderr).to.not.include(`broker process ${stalePid} `);
    expect(brokerPids(path.join(dir, "server.properties"))).to.deep.equal([]);
    expect(existsSync(path.join(dir, "broker.pid")), "broker.pid").to.equal(false);
  });
});
