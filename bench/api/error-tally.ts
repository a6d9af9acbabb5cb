/** Counts failed creates by message, so a report can show what went wrong without flooding. */
export class ErrorTally {
  count = 0;
  readonly #messages = new Map<string, number>();

  add(error: unknown): void {
    this.count++;
    const message = error instanceof Error ? error.message : String(error);
    this.#messages.set(message, (this.#messages.get(message) ?? 0) + 1);
  }

  addAll(other: ErrorTally): void {
    this.count += other.count;
    for (const [message, count] of other.#messages)
      this.#messages.set(message, (this.#messages.get(message) ?? 0) + count);
  }

  /** Distinct messages, most frequent first. */
  samples(limit = 5): { message: string; count: number }[] {
    return [...this.#messages]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([message, count]) => ({ message, count }));
  }
}
