/**
 * The browser batteries: the global `WebSocket` (`Socket.layerWebSocketConstructorGlobal`; the
 * transport switches its `binaryType` to "arraybuffer", as the default "blob" is decoded
 * asynchronously and reorders binary frames against text frames), HTTP broadcast over `fetch`, and
 * the page's network and visibility signals.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Socket from "effect/socket/Socket"
import type * as AccessToken from "../AccessToken.js"
import type * as Heartbeat from "../Heartbeat.js"
import type * as HttpBroadcast from "../HttpBroadcast.js"
import * as Batteries from "../internal/batteries.js"
import * as Network from "../Network.js"
import type * as RealtimeClient from "../RealtimeClient.js"
import type { InvalidArgument } from "../RealtimeError.js"
import type * as Reconnect from "../Reconnect.js"
import type * as Transport from "../Transport.js"

/**
 * `Socket.WebSocketConstructor` over `globalThis.WebSocket` (browsers, Deno, Bun, Node ≥ 22):
 * Effect's own `Socket.layerWebSocketConstructorGlobal`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWebSocketConstructor: Layer.Layer<Socket.WebSocketConstructor> =
  Socket.layerWebSocketConstructorGlobal

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends RealtimeClient.Options {
  /** A static token, or an Effect that fetches a fresh one (your auth session). Default: none (the apikey). */
  readonly accessToken?: string | Effect.Effect<string | null> | undefined
  /** Provide the HTTP broadcast service (and with it the fallback of `send`). Default true. */
  readonly httpBroadcast?: boolean | undefined
  /**
   * The reconnect and rejoin schedules. They win over a `Reconnect` layer; left out, the client
   * uses the `Reconnect` in context when its layer is built, else realtime-js's 1 s, 2 s, 5 s, 10 s.
   */
  readonly reconnect?: Partial<Reconnect.Reconnect> | undefined
  /**
   * The heartbeat policy. It wins over a `Heartbeat` layer; left out, the client uses the
   * `Heartbeat` in context when its layer is built, else 25 s / 25 s.
   */
  readonly heartbeat?: Heartbeat.Options | undefined
  /**
   * Follow the page's network and visibility (`Network.layerBrowser`): no reconnect attempts
   * while offline, and a reconnect (or a heartbeat) at once when the network or the page comes
   * back. Default true.
   */
  readonly network?: boolean | undefined
}

/**
 * The client for browsers: global `WebSocket`, HTTP broadcast over `fetch`, the page's network
 * and visibility signals. Provides `RealtimeClient`, `Transport`, `AccessToken` and `HttpBroadcast`.
 *
 * Policies: the `reconnect` / `heartbeat` options, or `Reconnect.layer` / `Heartbeat.layer`
 * provided to this layer (`layer(options).pipe(Layer.provide(Reconnect.layer(...)))`) or outside
 * it. They are read when the layer is built: a policy provided inside the built client cannot
 * reach it (it logs a warning), nor can a sibling in `Layer.mergeAll`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<
  RealtimeClient.RealtimeClient | Transport.Transport | AccessToken.AccessToken | HttpBroadcast.HttpBroadcast,
  InvalidArgument
> =>
  Batteries.layer(
    options,
    layerWebSocketConstructor,
    options.network === false ? undefined : Network.layerBrowser
  )
