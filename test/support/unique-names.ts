import { randomBytes } from "node:crypto";

/**
 * Random hex for a name that must not collide with another's. A test's topics, groups and databases
 * also need the run's marker, so that the run's cleanup finds them: they take runScopedSuffix or
 * runScopedDatabasePrefix (env.ts) instead.
 */
export function randomSuffix(bytes = 6): string {
  return randomBytes(bytes).toString("hex");
}

/** A product id no other test uses: `<prefix>-<random>`. */
export function uniqueId(prefix = "p"): string {
  return `${prefix}-${randomSuffix(8)}`;
}
