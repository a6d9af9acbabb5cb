/**
 * Waits for every promise to settle, then throws the first failure. For hooks that start several
 * things at once: with Promise.all, a failure returns while the others are still starting, and
 * whatever they start afterwards is never stopped. Assign results inside `.then` so after hooks see them.
 */
export async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (failed) throw failed.reason;
}
