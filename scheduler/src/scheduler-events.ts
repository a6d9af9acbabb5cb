/** A commit of the group's offset for a partition. */
export interface CommittedEvent {
  topic: string;
  partition: number;
  /** The next offset to read: everything before it is persisted or dead-lettered. */
  offset: bigint;
}

/** A record the error topic acknowledged. */
export interface DeadLetteredEvent {
  topic: string;
  partition: number;
  offset: string;
  code: string;
  message: string;
  /** Published without its value (and original headers): the whole record was too large for the error topic. */
  truncated: boolean;
}

/** A backoff wait after a transient failure, before the unfinished records are tried again. */
export interface RetryingEvent {
  topic: string;
  partition: number;
  /** Offset of the first record not finished yet. */
  offset: string;
  /** Failures in a row since the chunk last made progress: the backoff's step. */
  attempt: number;
  delayMs: number;
  reason: string;
}

/** What the scheduler reports to observers (tests, tools) as it works. */
export type SchedulerEventMap = {
  committed: [CommittedEvent];
  "dead-lettered": [DeadLetteredEvent];
  retrying: [RetryingEvent];
};
