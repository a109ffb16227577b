/**
 * What the device says about its network and its page: online, offline, resumed. The transport
 * reads it when it is provided: while the device is offline it waits for the network instead of
 * spending reconnect attempts, and when the network or the page comes back it reconnects at once
 * instead of waiting out its backoff (and, while connected, sends a heartbeat at once to find out
 * whether the socket survived). `BrowserRealtime.layer` provides `layerBrowser`; in Node nothing
 * does, and the transport keeps to its schedule.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as CoreNetwork from "./core/network.js"

/**
 * A change the device reports.
 *
 * - `Online` / `Offline`: the network came back or went away (`online` / `offline` events).
 * - `Resumed`: the page became visible again or was resumed after being frozen
 *   (`visibilitychange` to visible, `resume`, a `pageshow` from the back-forward cache): timers
 *   may have stood still and the socket may be dead.
 *
 * @since 0.1.0
 * @category models
 */
export type NetworkSignal = Data.TaggedEnum<{
  Online: {}
  Offline: {}
  Resumed: {}
}>

/**
 * Builds the signals (`NetworkSignal.Online()`, …).
 *
 * @since 0.1.0
 * @category constructors
 */
export const NetworkSignal = Data.taggedEnum<NetworkSignal>()

// the edition's signal of a core tag
const signalOf = (tag: CoreNetwork.SignalTag): NetworkSignal => NetworkSignal[tag]()

/**
 * What the device says about its network. Build one with `make` (over a synchronous source),
 * `makeManual`, or `layerBrowser`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Network {
  /** Whether the device says it is online now. */
  readonly isOnline: Effect.Effect<boolean>
  /** The signals from now on. */
  readonly signals: Stream.Stream<NetworkSignal>
  /** Whether the device says it is online now, read synchronously (for the transport). */
  readonly unsafeIsOnline: () => boolean
  /** Calls `listener` with every signal until the returned function is called. */
  readonly unsafeSubscribe: (listener: (signal: NetworkSignal) => void) => () => void
}

/**
 * The device's network, read by the transport when provided.
 *
 * @since 0.1.0
 * @category tags
 */
export const Network: Context.Tag<Network, Network> = Context.GenericTag<Network>(
  "supabase-realtime-effect/Network"
)

/**
 * A `Network` over a synchronous source: `isOnline` and a way to subscribe to signals.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (source: {
  readonly isOnline: () => boolean
  readonly subscribe: (listener: (signal: NetworkSignal) => void) => () => void
}): Network => ({
  isOnline: Effect.sync(source.isOnline),
  signals: Stream.async<NetworkSignal>((emit) => {
    const unsubscribe = source.subscribe((signal) => {
      emit.single(signal)
    })
    return Effect.sync(unsubscribe)
  }),
  unsafeIsOnline: source.isOnline,
  unsafeSubscribe: source.subscribe
})

/**
 * A network the caller drives: for tests, or for a platform with its own reachability API (call
 * `set` and `resume` from its callbacks).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeManual = (online = true): {
  readonly network: Network
  /** Reports the network up or down (a signal only when it changes). */
  readonly set: (online: boolean) => void
  /** Reports that the app came back to the foreground. */
  readonly resume: () => void
} => {
  const { resume, set, source } = CoreNetwork.manual(online, signalOf)
  return { network: make(source), set, resume }
}

/**
 * The page's view: `navigator.onLine` with the `online` / `offline` events of `window`, and
 * `visibilitychange` (to visible), `resume` (phoenix 1.8.16 listens to it too: Chrome does not
 * always fire `visibilitychange` after a frozen page resumes) and `pageshow` from the
 * back-forward cache as `Resumed`. Where there is no `window` (a worker, Node), it is always online
 * and never signals.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBrowser: Layer.Layer<Network> = Layer.sync(Network, () => make(CoreNetwork.browser(signalOf)))
