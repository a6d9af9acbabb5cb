import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { loadApiConfig } from "../api/src/config.js";
import { loadSchedulerConfig } from "../scheduler/src/config.js";
import { ConfigError, configVariables } from "./env.js";
import { formatLine, formatRecord, resolveLogFormat } from "./log-format.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const plain = { color: false };
// Local time, as the formatter shows it.
const time = new Date(2024, 5, 29, 12, 4, 5, 123).toISOString();

describe("log format", () => {
  it("shows time, level, service and message in columns, then the fields as key=value", () => {
    const line = formatRecord(
      { level: "info", time, service: "api", msg: "api listening", port: 8000, auth: false, host: "0.0.0.0" },
      plain,
    );
    expect(line).to.equal("12:04:05.123 INFO  api       api listening port=8000 auth=false host=0.0.0.0");
  });

  it("quotes text that would be ambiguous and writes objects as JSON", () => {
    const line = formatRecord(
      { level: "warn", time, service: "scheduler", msg: "retrying", reason: "two words", empty: "", topic: { a: [1] } },
      plain,
    );
    expect(line).to.equal('12:04:05.123 WARN  scheduler retrying reason="two words" empty="" topic={"a":[1]}');
  });

  it("puts an error's stack and multi-line text indented below the line, the error's own fields inline", () => {
    const err = {
      type: "Error",
      message: "connect ECONNREFUSED",
      stack: "Error: connect ECONNREFUSED\n    at x (y.js:1:1)",
      code: "ECONNREFUSED",
    };
    const line = formatRecord(
      { level: 50, time, service: "api", msg: "database down", err, postgres: "line 1\nline 2\n" },
      plain,
    );
    expect(line).to.equal(
      [
        "12:04:05.123 ERROR api       database down err.code=ECONNREFUSED postgres=↓",
        "    Error: connect ECONNREFUSED",
        "        at x (y.js:1:1)",
        "    line 1",
        "    line 2",
      ].join("\n"),
    );
  });

  it("formats a JSON log line, and shows any other line as it is in the service's columns", () => {
    const json = JSON.stringify({ level: "info", time, service: "api", msg: "api stopped" });
    expect(formatLine(json, { ...plain, service: "other" })).to.equal("12:04:05.123 INFO  api       api stopped");
    expect(formatLine("kafka: started pid 42", { ...plain, service: "kafka" })).to.match(
      /^\d\d:\d\d:\d\d\.\d{3} {7}kafka {5}kafka: started pid 42$/,
    );
    expect(formatLine('{"not":"a record"}', { ...plain, service: "api" })).to.match(/ api {7}\{"not":"a record"\}$/);
  });

  it("colours levels and services only when asked", () => {
    const record = { level: "error", time, service: "api", msg: "failed" };
    expect(formatRecord(record, { color: true })).to.include("\u001b[31mERROR\u001b[0m");
    expect(formatRecord(record, plain)).not.to.include("\u001b[");
  });

  it("resolves auto to pretty on a terminal and to JSON elsewhere", () => {
    expect(resolveLogFormat("auto", { isTTY: true })).to.equal("pretty");
    expect(resolveLogFormat("auto", { isTTY: false })).to.equal("json");
    expect(resolveLogFormat("auto", {})).to.equal("json");
    expect(resolveLogFormat("json", { isTTY: true })).to.equal("json");
    expect(resolveLogFormat("pretty", { isTTY: false })).to.equal("pretty");
  });

  it("is a setting of both services, LOG_FORMAT (auto, json or pretty)", () => {
    for (const load of [loadApiConfig, loadSchedulerConfig]) {
      expect(configVariables(load)).to.deep.include({ name: "LOG_FORMAT", default: "auto" });
      expect(load({ LOG_FORMAT: "pretty" }).logFormat).to.equal("pretty");
      expect(() => load({ LOG_FORMAT: "fancy" }))
        .to.throw(ConfigError)
        .with.property("message")
        .that.includes('LOG_FORMAT="fancy": expected one of auto, json, pretty');
    }
  });

  it("makes createLogger write formatted lines in pretty mode and JSON lines in json mode", async () => {
    const script = [
      'import { createLogger } from "./platform/logger.ts";',
      'createLogger("api", "info", process.argv[1]).info({ port: 8000 }, "api listening");',
    ].join("\n");
    const run = async (format: string) => {
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, format], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "inherit"],
      });
      let stdout = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk;
      });
      await new Promise((resolve) => child.on("close", resolve));
      return stdout;
    };
    const [pretty, json] = await Promise.all([run("pretty"), run("json")]);
    expect(pretty).to.match(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}api {7}api listening port=8000\n$/);
    expect(JSON.parse(json)).to.include({ level: "info", service: "api", msg: "api listening", port: 8000 });
  });
});
