import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { parse } from "yaml";
import { configVariables } from "#platform/env.js";
import { loadApiConfig } from "../api/src/config.js";
import { loadSchedulerConfig } from "../scheduler/src/config.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

interface Service {
  image?: string;
  build?: { context: string; target: string };
  command?: unknown;
  environment?: Record<string, unknown> | string[];
  ports?: (string | number)[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition: string }> | string[];
}

/** The file as YAML, aliases resolved, `${…}` left as written. */
const raw = parse(read("docker-compose.yml")) as { services: Record<string, Service> };

/** What Compose substitutes with nothing set in the shell: `${X:-d}` and `${X-d}` give d, `${X}` nothing. */
function interpolate(value: string): string {
  return value.replace(/\$(?:(\$)|\{([A-Za-z_]\w*)(?::?-([^}]*))?\}|([A-Za-z_]\w*))/g, (_, dollar, _name, fallback) =>
    dollar ? "$" : (fallback ?? ""),
  );
}

function service(name: string): Service {
  const found = raw.services[name];
  expect(found, `service ${name}`).to.not.equal(undefined);
  return found!;
}

/** The environment as written (uninterpolated), from either the map or the list form. */
function environment(name: string): Record<string, string> {
  const env = service(name).environment ?? {};
  const entries = Array.isArray(env)
    ? env.map((line) => [line.split("=", 1)[0]!, line.slice(line.indexOf("=") + 1)])
    : Object.entries(env).map(([key, value]) => [key, String(value ?? "")]);
  return Object.fromEntries(entries);
}

/** "host:container" pairs, defaults of `${…}` applied; a bare "container" publishes nothing fixed. */
function publishedPorts(name: string): { published: number; target: number }[] {
  return (service(name).ports ?? []).map((port) => {
    const parts = interpolate(String(port))
      .replace(/\/tcp$/, "")
      .split(":");
    expect(parts.length, `${name} port ${port}: host:container`).to.be.within(2, 3);
    return { published: Number(parts.at(-2)), target: Number(parts.at(-1)) };
  });
}

/** NAME://host:port,… as a map from listener name to host:port. */
function listeners(value: string): Map<string, string> {
  return new Map(
    value.split(",").map((listener) => {
      const match = /^(\w+):\/\/(.*)$/.exec(listener.trim());
      expect(match, `listener ${listener}`).to.not.equal(null);
      return [match![1]!, match![2]!];
    }),
  );
}

const portOf = (hostPort: string) => Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));

describe("docker-compose.yml", () => {
  it("when read, then it has exactly postgres, kafka, api and scheduler, each with a healthcheck", () => {
    expect(Object.keys(raw.services).sort()).to.deep.equal(["api", "kafka", "postgres", "scheduler"]);
    for (const [name, { healthcheck }] of Object.entries(raw.services)) {
      expect(healthcheck?.disable, `${name} healthcheck`).to.not.equal(true);
      expect(healthcheck?.test, `${name} healthcheck test`).to.be.an("array").that.is.not.empty;
    }
  });

  it("when read, then each service is published on the port the README and the tools use", () => {
    expect(publishedPorts("api")).to.deep.equal([{ published: 8000, target: 8000 }]);
    expect(publishedPorts("kafka")).to.deep.equal([{ published: 9092, target: 9092 }]);
    expect(publishedPorts("postgres")).to.deep.equal([{ published: 5432, target: 5432 }]);
    expect(publishedPorts("scheduler")).to.deep.equal([{ published: 9464, target: 9464 }]);
    // The defaults agree with the services' own, so nothing but the variables below needs setting.
    expect(loadApiConfig({}).port).to.equal(8000);
    expect(loadSchedulerConfig({}).metricsPort).to.equal(9464);
  });

  it("when read, then the api and scheduler healthchecks ask /readyz and /healthz on their ports", () => {
    expect(String(service("api").healthcheck?.test)).to.include("http://127.0.0.1:8000/readyz");
    expect(String(service("scheduler").healthcheck?.test)).to.include("http://127.0.0.1:9464/healthz");
  });

  it("when read, then Kafka is the version scripts/kafka.sh runs", () => {
    const version = /^KAFKA_VERSION="([^"]+)"$/m.exec(read("scripts/kafka.sh"))?.[1];
    expect(version, "KAFKA_VERSION in scripts/kafka.sh").to.be.a("string");
    expect(service("kafka").image).to.equal(`apache/kafka:${version}`);
  });

  it("when read, then Kafka serves the services on kafka:19092 and the host on localhost:9092, the controller inside", () => {
    const env = environment("kafka");
    const bound = listeners(env.KAFKA_LISTENERS!);
    const advertised = listeners(env.KAFKA_ADVERTISED_LISTENERS!);
    expect([...advertised.values()].sort()).to.deep.equal(["kafka:19092", "localhost:9092"]);
    for (const [name, address] of advertised) {
      expect(portOf(bound.get(name) ?? ""), `${name} is bound on its advertised port`).to.equal(portOf(address));
    }
    const hostListener = [...advertised].find(([, address]) => address === "localhost:9092")![0];
    const internalListener = [...advertised].find(([, address]) => address === "kafka:19092")![0];
    expect(env.KAFKA_INTER_BROKER_LISTENER_NAME).to.equal(internalListener);
    expect(publishedPorts("kafka").map(({ target }) => target)).to.deep.equal([portOf(bound.get(hostListener)!)]);

    const controller = env.KAFKA_CONTROLLER_LISTENER_NAMES!;
    expect(bound.get(controller), "controller listener").to.match(/^localhost:\d+$/);
    expect(advertised.has(controller)).to.equal(false);
    expect(env.KAFKA_CONTROLLER_QUORUM_VOTERS).to.equal(`${env.KAFKA_NODE_ID}@${bound.get(controller)}`);

    for (const name of ["api", "scheduler"]) {
      expect(environment(name).KAFKA_BROKER_URL, `${name} KAFKA_BROKER_URL`).to.equal("kafka:19092");
    }
  });

  it("when read, then the api and scheduler share one API_TOKEN from the shell, and the topic names", () => {
    const api = environment("api");
    const scheduler = environment("scheduler");
    expect(api.API_TOKEN).to.match(/^\$\{API_TOKEN(:?-[^}]*)?\}$/);
    for (const name of ["API_TOKEN", "TRANSFORMED_TOPIC"]) {
      expect(scheduler[name], name).to.equal(api[name]);
    }
    const defaults = loadSchedulerConfig({}).kafka.topics;
    expect([scheduler.TOPIC_NAME, scheduler.TRANSFORMED_TOPIC, scheduler.ERROR_TOPIC_NAME]).to.deep.equal([
      defaults.input,
      defaults.persisted,
      defaults.errors,
    ]);
  });

  it("when read, then the api reaches postgres and the scheduler reaches the api by service name", () => {
    const postgres = environment("postgres");
    const database = new URL(environment("api").DATABASE_URL!);
    expect([database.hostname, database.port, database.username, database.password, database.pathname]).to.deep.equal([
      "postgres",
      "5432",
      postgres.POSTGRES_USER,
      postgres.POSTGRES_PASSWORD,
      `/${postgres.POSTGRES_DB}`,
    ]);
    expect(environment("scheduler").API_URL).to.equal("http://api:8000");
  });

  it("when read, then the api waits for a healthy postgres and kafka, the scheduler for kafka and the api", () => {
    expect(service("api").depends_on).to.deep.equal({
      postgres: { condition: "service_healthy" },
      kafka: { condition: "service_healthy" },
    });
    expect(service("scheduler").depends_on).to.deep.equal({
      kafka: { condition: "service_healthy" },
      api: { condition: "service_healthy" },
    });
  });

  it("when read, then every variable the api and scheduler are given is one their configuration reads", () => {
    const known = {
      api: configVariables(loadApiConfig).map(({ name }) => name),
      scheduler: configVariables(loadSchedulerConfig).map(({ name }) => name),
    };
    for (const [name, variables] of Object.entries(known)) {
      const unknown = Object.keys(environment(name)).filter((variable) => !variables.includes(variable));
      expect(unknown, `${name} sets variables its configuration never reads`).to.deep.equal([]);
    }
  });

  it("when read, then the api and scheduler run the Dockerfile targets of their name, compiled, with plain node", () => {
    const dockerfile = read("Dockerfile");
    const stages = dockerfile.split(/^FROM /m).slice(1);
    for (const name of ["api", "scheduler"]) {
      expect(service(name).build).to.deep.equal({ context: ".", target: name });
      expect(service(name).command, `${name} keeps the image's CMD`).to.equal(undefined);
      const stage = stages.find((text) => new RegExp(`^\\S+ AS ${name}\\s*$`, "m").test(text.split("\n")[0]!));
      expect(stage, `Dockerfile stage ${name}`).to.be.a("string");
      const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(stage!)?.[1] ?? "null") as string[] | null;
      expect(cmd?.[0], `${name} CMD`).to.equal("node");
      expect(cmd?.at(-1)).to.equal(`dist/${name}/src/main.js`);
      expect(cmd?.join(" ")).to.not.include("tsx");
      expect(stage).to.match(/^HEALTHCHECK /m);
    }
  });
});

describe("docker-compose.yml interpolation in these checks", () => {
  it("when a value names a variable, then its default applies as Compose does with nothing set", () => {
    const cases = [
      [`\${POSTGRES_PORT:-5432}:5432`, "5432:5432"],
      [`\${A-x}/\${B}/$C/$$D`, "x///$D"],
    ];
    for (const [written, interpolated] of cases) expect(interpolate(written!)).to.equal(interpolated);
  });
});
