/**
 * What the Node and browser batteries share: the whole client (`RealtimeClient`, `Transport`,
 * `AccessToken`, `HttpBroadcast` over `fetch`) over a given `WebSocketConstructor` layer, with the
 * policies of the options, and its `Config` form.
 *
 * @internal
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import { FetchHttpClient } from "effect/http"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Socket from "effect/socket/Socket"
import * as AccessToken from "../AccessToken.js"
import * as Heartbeat from "../Heartbeat.js"
import * as HttpBroadcast from "../HttpBroadcast.js"
import type * as Network from "../Network.js"
import * as RealtimeClient from "../RealtimeClient.js"
import type { InvalidArgument } from "../RealtimeError.js"
import * as Reconnect from "../Reconnect.js"
import type * as Transport from "../Transport.js"

/** @internal */
export interface Options extends RealtimeClient.Options {
  readonly accessToken?: string | Effect.Effect<string | null> | undefined
  readonly httpBroadcast?: boolean | undefined
  readonly reconnect?: Partial<Reconnect.Reconnect> | undefined
  readonly heartbeat?: Heartbeat.Options | undefined
}

/**
 * The policies given in the options. They are provided to the client's layer itself, so they win
 * over a `Reconnect` / `Heartbeat` in the surrounding context, wherever the battery is provided;
 * what the options leave out is read from that context when the layer is built (else the
 * defaults).
 *
 * @internal
 */
export const policies = (options: Options): Layer.Layer<Reconnect.Reconnect | Heartbeat.Heartbeat> =>
  Layer.mergeAll(
    options.reconnect === undefined
      ? Layer.empty as unknown as Layer.Layer<Reconnect.Reconnect>
      : Layer.succeed(Reconnect.Reconnect, { ...Reconnect.defaults, ...options.reconnect }),
    options.heartbeat === undefined
      ? Layer.empty as unknown as Layer.Layer<Heartbeat.Heartbeat>
      : Layer.succeed(Heartbeat.Heartbeat, Heartbeat.make(options.heartbeat))
  )

/** @internal */
export const layer = (
  options: Options,
  webSocket: Layer.Layer<Socket.WebSocketConstructor>,
  network?: Layer.Layer<Network.Network> | undefined
): Layer.Layer<
  RealtimeClient.RealtimeClient | Transport.Transport | AccessToken.AccessToken | HttpBroadcast.HttpBroadcast,
  InvalidArgument
> => {
  const token = AccessToken.layerFrom(options.accessToken)
  const http = options.httpBroadcast === false
    ? Layer.empty as unknown as Layer.Layer<HttpBroadcast.HttpBroadcast, InvalidArgument, AccessToken.AccessToken>
    : HttpBroadcast.layer({ url: options.url, apiKey: options.apiKey, timeout: options.timeout }).pipe(
      Layer.provide(FetchHttpClient.layer)
    )
  const client = RealtimeClient.layer(options).pipe(
    Layer.provideMerge(http),
    Layer.provideMerge(token),
    Layer.provide(webSocket),
    Layer.provide(policies(options))
  )
  return network === undefined ? client : Layer.provide(client, network)
}

/** @internal */
export const config: Config.Config<{ readonly url: string; readonly apiKey: Redacted.Redacted<string> }> = Config
  .all({
    url: Config.String("SUPABASE_URL"),
    apiKey: Config.Redacted("SUPABASE_ANON_KEY")
  })

/** @internal */
export const layerConfig = (
  webSocket: Layer.Layer<Socket.WebSocketConstructor>,
  options: Omit<Options, "url" | "apiKey"> = {},
  network?: Layer.Layer<Network.Network> | undefined
): Layer.Layer<
  RealtimeClient.RealtimeClient | Transport.Transport | AccessToken.AccessToken | HttpBroadcast.HttpBroadcast,
  InvalidArgument | Config.ConfigError
> => Layer.unwrap(Effect.map(config, (c) => layer({ ...options, ...c }, webSocket, network)))
