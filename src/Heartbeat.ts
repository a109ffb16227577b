/**
 * The heartbeat policy and what it reports. Every `interval` the client sends a heartbeat on topic
 * `phoenix`; a heartbeat still unanswered after `timeout` (default: the interval, as realtime-js)
 * closes the socket, which then reconnects.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"

/**
 * @since 0.1.0
 * @category models
 */
export interface Heartbeat {
  readonly interval: Duration.Duration
  readonly timeout: Duration.Duration
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Heartbeat: Context.Tag<Heartbeat, Heartbeat> = Context.GenericTag<Heartbeat>(
  "supabase-realtime-effect/Heartbeat"
)

/**
 * What happened to a heartbeat: `Sent`, answered `Ok` or `Error` (with the round trip), `Timeout`
 * (no answer in time: the socket is closed and reconnects), or `Disconnected` (the connection
 * ended: no heartbeat until the next one opens).
 *
 * @since 0.1.0
 * @category models
 */
export type HeartbeatStatus = Data.TaggedEnum<{
  Sent: { readonly ref: string }
  Ok: { readonly ref: string; readonly latency: Duration.Duration }
  Error: { readonly ref: string; readonly latency: Duration.Duration; readonly response: unknown }
  Timeout: { readonly ref: string }
  Disconnected: {}
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const HeartbeatStatus = Data.taggedEnum<HeartbeatStatus>()

/**
 * realtime-js's: every 25 s, timeout 25 s.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaults: Heartbeat = { interval: Duration.seconds(25), timeout: Duration.seconds(25) }

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: {
  readonly interval?: Duration.DurationInput | undefined
  readonly timeout?: Duration.DurationInput | undefined
}): Layer.Layer<Heartbeat> => {
  const interval = Duration.decode(options.interval ?? defaults.interval)
  return Layer.succeed(Heartbeat, { interval, timeout: Duration.decode(options.timeout ?? interval) })
}
