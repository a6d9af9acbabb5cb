import type { EachBatchHandler } from "kafkajs";
import { type ChunkProcessorDeps, createChunkProcessor, systemClock } from "./chunk-processor.js";

/** What the handler needs; time is the system clock. */
export type BatchHandlerDeps = Omit<ChunkProcessorDeps, "clock" | "random">;

/**
 * The processing loop as a kafkajs eachBatch handler: the payload becomes the chunk processor's
 * ports (see createChunkProcessor for the rules). Run it with eachBatchAutoResolve: false and
 * autoCommit: false, so offsets move only when the processor commits them.
 */
export function createBatchHandler(deps: BatchHandlerDeps): EachBatchHandler {
  const processor = createChunkProcessor({ ...deps, clock: systemClock });
  return async (payload) => {
    const { batch } = payload;
    const { topic, partition } = batch;
    deps.logger.debug(
      {
        topic,
        partition,
        records: batch.messages.length,
        firstOffset: batch.firstOffset(),
        lastOffset: batch.lastOffset(),
        lag: batch.offsetLag(),
      },
      "batch received",
    );
    await processor.processBatch(
      {
        topic,
        partition,
        messages: batch.messages,
        lastOffset: batch.lastOffset(),
        highWatermark: batch.highWatermark,
      },
      {
        resolveOffset: (offset) => payload.resolveOffset(offset),
        commitOffset: (next) =>
          payload.commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: next }] }] }),
        heartbeat: () => payload.heartbeat(),
        isRunning: () => payload.isRunning(),
        isStale: () => payload.isStale(),
      },
    );
  };
}
