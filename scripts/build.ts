/**
 * `npm run build`: compiles the services (tsconfig.build.json: api/src, scheduler/src, lib, gen; no
 * tests, no bench) to dist/, then writes dist/package.json, so that `node dist/api/src/main.js` and
 * `node dist/scheduler/src/main.js` run with plain node: no tsx, no loader, no flags.
 *
 * Why a dist/package.json rather than conditional `imports` in the root one: Node takes "type" and
 * "imports" from the package.json nearest to the importing file, so inside dist/ `#gen/*` resolves
 * against dist/ (the compiled gen/) and outside it against the root (gen/*.ts, for tsx and tsc).
 * Conditional imports would need a custom condition flag on every node command of one side. The
 * OpenAPI document also reads `version` from ../../../package.json, which in dist/ is this file.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT_DIR = path.join(ROOT, "dist");

// Files of sources deleted or renamed since the last build would otherwise still be shipped.
rmSync(OUT_DIR, { recursive: true, force: true });

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const compiled = spawnSync(process.execPath, [tsc, "-p", path.join(ROOT, "tsconfig.build.json")], {
  cwd: ROOT,
  stdio: "inherit",
});
if (compiled.status !== 0) process.exit(compiled.status ?? 1);

const root = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as Record<string, unknown>;
// dist/ mirrors the root's layout, so the root's import map holds there unchanged.
const distPackage = {
  name: root.name,
  version: root.version,
  private: true,
  type: root.type,
  imports: root.imports,
};
writeFileSync(path.join(OUT_DIR, "package.json"), `${JSON.stringify(distPackage, null, 2)}\n`);
