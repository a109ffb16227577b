import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as Socket from "@effect/platform/Socket"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as AccessToken from "../AccessToken.js"
import * as HttpBroadcast from "../HttpBroadcast.js"
import * as RealtimeClient from "../RealtimeClient.js"
import type { InvalidArgument } from "../RealtimeError.js"
import type * as Transport from "../Transport.js"

/** @internal */
export interface Options extends RealtimeClient.Options {
  readonly accessToken?: string | Effect.Effect<string | null> | undefined
  readonly httpBroadcast?: boolean | undefined
}

/** @internal */
export const layer = (
  options: Options,
  webSocket: Layer.Layer<Socket.WebSocketConstructor>
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
  return RealtimeClient.layer(options).pipe(
    Layer.provideMerge(http),
    Layer.provideMerge(token),
    Layer.provide(webSocket)
  )
}

/** @internal */
export const config: Config.Config<{ readonly url: string; readonly apiKey: Redacted.Redacted<string> }> = Config
  .all({
    url: Config.string("SUPABASE_URL"),
    apiKey: Config.redacted("SUPABASE_ANON_KEY")
  })

/** @internal */
export const layerConfig = (
  webSocket: Layer.Layer<Socket.WebSocketConstructor>,
  options: Omit<Options, "url" | "apiKey"> = {}
): Layer.Layer<
  RealtimeClient.RealtimeClient | Transport.Transport | AccessToken.AccessToken | HttpBroadcast.HttpBroadcast,
  InvalidArgument | ConfigError.ConfigError
> => Layer.unwrapEffect(Effect.map(config, (c) => layer({ ...options, ...c }, webSocket)))
