import { performance } from "node:perf_hooks";
import { metricSum } from "./metrics-text.js";
import type { Pipeline } from "./services.js";

/** What the services' metrics say about the scheduler's calls to the API over a window. */
export interface CallStats {
  calls: number;
  /** Records per BatchCreateProducts call. */
  recordsPerCall: number;
  /** Mean call time seen by the scheduler, and by the API's handler (the difference is transport and encoding). */
  schedulerCallMs: number;
  apiHandlerMs: number;
  /**
   * Share of the partition workers' time spent waiting on calls: near 1 means the API (or the
   * database behind it) is the limit, low means time goes to fetching, committing or the CPU queue.
   */
  callShare: number;
  eventsPublished: number;
}

/** Reads the metrics now; the returned function reads them again and gives the difference. */
export async function openCallWindow(
  pipeline: Pipeline,
  partitions: number,
): Promise<() => Promise<CallStats | undefined>> {
  const read = async () => {
    const text = await pipeline.metrics().catch(() => "");
    return {
      at: performance.now(),
      calls: metricSum(text, "scheduler_api_call_duration_seconds_count", 'status="ok"'),
      callSeconds: metricSum(text, "scheduler_api_call_duration_seconds_sum", 'status="ok"'),
      records: metricSum(text, "scheduler_records_total", 'outcome="persisted"'),
      handlerCalls: metricSum(text, "api_request_duration_seconds_count", "BatchCreateProducts", 'status="ok"'),
      handlerSeconds: metricSum(text, "api_request_duration_seconds_sum", "BatchCreateProducts", 'status="ok"'),
      events: metricSum(text, "api_events_published_total"),
    };
  };
  const start = await read();
  return async () => {
    const end = await read();
    const calls = end.calls - start.calls;
    if (calls <= 0) return undefined;
    const handlerCalls = end.handlerCalls - start.handlerCalls;
    return {
      calls,
      recordsPerCall: (end.records - start.records) / calls,
      schedulerCallMs: ((end.callSeconds - start.callSeconds) * 1000) / calls,
      apiHandlerMs: handlerCalls > 0 ? ((end.handlerSeconds - start.handlerSeconds) * 1000) / handlerCalls : 0,
      callShare: ((end.callSeconds - start.callSeconds) * 1000) / (partitions * (end.at - start.at)),
      eventsPublished: end.events - start.events,
    };
  };
}
