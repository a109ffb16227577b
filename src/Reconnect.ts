/**
 * When to reconnect the socket and when to rejoin a channel, as `Schedule`s. The defaults are
 * realtime-js's: 1 s, 2 s, 5 s, 10 s, then every 10 s, reset after a successful open (or join).
 * Provide another layer to swap them: a jittered exponential backoff with a cap, a bounded number
 * of attempts, or anything a `Schedule` can say.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as CorePolicy from "./core/policy.js"
import * as Policy from "./internal/policy.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Reconnect {
  /** Delays between socket reconnect attempts; when it ends, the client stops reconnecting. */
  readonly reconnect: Schedule.Schedule<unknown, unknown>
  /** Delays between channel rejoin attempts; when it ends, the channel stops with an error. */
  readonly rejoin: Schedule.Schedule<unknown, unknown>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Reconnect: Context.Tag<Reconnect, Reconnect> = Context.GenericTag<Reconnect>(
  "supabase-realtime-effect/Reconnect"
)

/**
 * realtime-js's schedule: 1 s, 2 s, 5 s, 10 s, then 10 s forever.
 *
 * @since 0.1.0
 * @category schedules
 */
export const realtimeJs: Schedule.Schedule<unknown, unknown> = Schedule.fromDelays(
  ...CorePolicy.REALTIME_JS_DELAYS_MILLIS
).pipe(
  // the table's last delay, forever
  Schedule.andThen(Schedule.spaced(CorePolicy.realtimeJsDelayMillis(CorePolicy.REALTIME_JS_DELAYS_MILLIS.length)))
)

/**
 * An exponential backoff: `base · factorⁿ`, capped at `cap`, each delay multiplied by a random
 * factor in [0.8, 1.2] when `jitter` is on (deterministic under `TestRandom`), and at most
 * `maxAttempts` attempts when given.
 *
 * @since 0.1.0
 * @category schedules
 */
export const exponential = (options?: {
  readonly base?: Duration.DurationInput | undefined
  readonly factor?: number | undefined
  readonly cap?: Duration.DurationInput | undefined
  readonly jitter?: boolean | undefined
  readonly maxAttempts?: number | undefined
}): Schedule.Schedule<unknown, unknown> => {
  const cap = Duration.decode(options?.cap ?? "30 seconds")
  let schedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential(
    options?.base ?? "1 second",
    options?.factor ?? 2
  ).pipe(Schedule.modifyDelay((_, delay) => Duration.min(delay, cap)))
  if (options?.jitter ?? true) schedule = Schedule.jittered(schedule)
  if (options?.maxAttempts !== undefined) {
    schedule = schedule.pipe(Schedule.intersect(Schedule.recurs(options.maxAttempts)))
  }
  return schedule
}

/**
 * The defaults: `realtimeJs` for both.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaults: Reconnect = { reconnect: realtimeJs, rejoin: realtimeJs }

/**
 * The schedules, read by the client when its layer is built: provide this layer to the client's
 * layer (`Layer.provide`) or outside it, or pass `reconnect` in `NodeRealtime.layer` /
 * `BrowserRealtime.layer` options instead. Provided inside an already built client, it cannot
 * reach it, and logs a warning saying so.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Partial<Reconnect>): Layer.Layer<Reconnect> =>
  Layer.effect(Reconnect, Effect.as(Policy.warnIfLate("Reconnect.layer", "reconnect"), { ...defaults, ...options }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerDefault: Layer.Layer<Reconnect> = Layer.succeed(Reconnect, defaults)
