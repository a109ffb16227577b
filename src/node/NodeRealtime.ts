/**
 * The Node batteries: a `WebSocketConstructor` over the client's own Node WebSocket (RFC 6455 over
 * `node:http(s)`: it parses frames where the TCP chunk holds them, delivers binary frames
 * synchronously as bytes in order with text, refuses a frame over `maxFrameBytes` from its header,
 * and keeps the HTTP answer of a refused upgrade), HTTP broadcast over the global `fetch`, and
 * `layer` / `layerConfig` that give the whole client.
 *
 * @since 0.1.0
 */
import * as Socket from "@effect/platform/Socket"
import type * as ConfigError from "effect/ConfigError"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as AccessToken from "../AccessToken.js"
import { NodeWebSocket } from "../core/node/webSocket.js"
import type * as Heartbeat from "../Heartbeat.js"
import type * as HttpBroadcast from "../HttpBroadcast.js"
import * as Batteries from "../internal/batteries.js"
import type * as RealtimeClient from "../RealtimeClient.js"
import type { InvalidArgument } from "../RealtimeError.js"
import type * as Reconnect from "../Reconnect.js"
import * as Transport from "../Transport.js"

/**
 * `Socket.WebSocketConstructor` over the client's own Node WebSocket (`src/core/node/webSocket.ts`),
 * on every Node version: messages go straight from the TCP chunk to the listener, with no event
 * object built per frame by a stream or an `EventTarget` shim. To use `ws` or the global WebSocket
 * instead, provide another `Socket.WebSocketConstructor` layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWebSocketConstructor: Layer.Layer<Socket.WebSocketConstructor> = Layer.suspend(() =>
  layerWebSocketConstructorWith({})
)

/**
 * As `layerWebSocketConstructor`, with `maxFrameBytes` as the socket's largest accepted message
 * (the socket's `maxPayload`; default 8 MiB, as the client's option): a larger frame is refused while
 * it is read, and the connection closes with 1009.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWebSocketConstructorWith = (
  options: { readonly maxFrameBytes?: number | undefined }
): Layer.Layer<Socket.WebSocketConstructor> => {
  const maxPayload = options.maxFrameBytes ?? Transport.defaultMaxFrameBytes
  return Layer.succeed(
    Socket.WebSocketConstructor,
    (url, protocols) => new NodeWebSocket(url, protocols, { maxPayload }) as unknown as globalThis.WebSocket
  )
}

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
}

/**
 * The client for Node: the Node WebSocket transport, HTTP broadcast over `fetch`, and the token source of
 * `options.accessToken`. Provides `RealtimeClient`, `Transport`, `AccessToken` and `HttpBroadcast`.
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
> => Batteries.layer(options, layerWebSocketConstructorWith(options))

/**
 * `layer` configured from the environment: `SUPABASE_URL` (project URL or Realtime endpoint) and
 * `SUPABASE_ANON_KEY` (kept `Redacted`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (options: Omit<Options, "url" | "apiKey"> = {}): Layer.Layer<
  RealtimeClient.RealtimeClient | Transport.Transport | AccessToken.AccessToken | HttpBroadcast.HttpBroadcast,
  InvalidArgument | ConfigError.ConfigError
> => Batteries.layerConfig(layerWebSocketConstructorWith(options), options)
