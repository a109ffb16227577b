/**
 * The transport's metrics (global, prefixed `realtime_`), public as `Transport.metrics` (not marked
 * internal: the public declaration is their type).
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/** Frames in/out, bad and unrouted frames, reconnects, heartbeat round trips. */
export const metrics = {
  framesIn: Metric.counter("realtime_frames_in", {
    description: "Frames received from the Realtime socket",
    incremental: true
  }),
  framesOut: Metric.counter("realtime_frames_out", {
    description: "Frames written to the Realtime socket",
    incremental: true
  }),
  framesBad: Metric.counter("realtime_frames_bad", {
    description: "Frames received that could not be decoded (skipped)",
    incremental: true
  }),
  framesUnrouted: Metric.counter("realtime_frames_unrouted", {
    description: "Frames received for a topic no channel listens to",
    incremental: true
  }),
  reconnects: Metric.counter("realtime_reconnects", {
    description: "Socket reconnect attempts",
    incremental: true
  }),
  heartbeatLatency: Metric.histogram(
    "realtime_heartbeat_latency_ms",
    MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
    "Heartbeat round trip in milliseconds"
  )
} as const
