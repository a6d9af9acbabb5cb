/** A consumer's assignment as kafkajs reports it on GROUP_JOIN: partitions by topic. */
export type MemberAssignment = Record<string, number[]>;

/**
 * True once every member has joined and their latest assignments of `topic` hold each of its
 * `partitions` exactly once. During a rebalance a member that has not rejoined yet still shows its
 * old partitions, which overlap the new ones of the others, so overlap means "not yet".
 */
export function groupSettled(
  latest: readonly (MemberAssignment | undefined)[],
  topic: string,
  partitions: number,
): boolean {
  const owners = new Array<number>(partitions).fill(0);
  for (const assignment of latest) {
    if (assignment === undefined) return false;
    for (const partition of assignment[topic] ?? []) {
      if (partition < 0 || partition >= partitions) return false;
      owners[partition] = (owners[partition] ?? 0) + 1;
    }
  }
  return owners.every((count) => count === 1);
}
