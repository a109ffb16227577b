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
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Policy from "./internal/policy.js"

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
export const Heartbeat: Context.Service<Heartbeat, Heartbeat> = Context.Service<Heartbeat>(
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
 * The options of `layer` (and of the `heartbeat` option of `NodeRealtime.layer` /
 * `BrowserRealtime.layer`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How often to send a heartbeat; default 25 s. */
  readonly interval?: Duration.Input | undefined
  /** How long to wait for its answer before closing the socket; default the interval. */
  readonly timeout?: Duration.Input | undefined
}

/**
 * The policy from options, with the defaults for what is left out.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Heartbeat => {
  const interval = Duration.fromInputUnsafe(options.interval ?? defaults.interval)
  return { interval, timeout: Duration.fromInputUnsafe(options.timeout ?? interval) }
}

/**
 * The policy, read by the client when its layer is built: provide this layer to the client's layer
 * (`Layer.provide`) or outside it, or pass `heartbeat` in `NodeRealtime.layer` /
 * `BrowserRealtime.layer` options instead. Provided inside an already built client, it cannot
 * reach it, and logs a warning saying so.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Heartbeat> =>
  Layer.effect(Heartbeat, Effect.as(Policy.warnIfLate("Heartbeat.layer", "heartbeat"), make(options)))
