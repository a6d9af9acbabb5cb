/**
 * Resolves once `condition` holds, checking it every 20 ms: for state that emits no event (a
 * gauge, pg_stat_activity). Rejects after timeoutMs naming `what`.
 */
export async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
