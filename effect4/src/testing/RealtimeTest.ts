/**
 * Test your app's realtime code with no Supabase project: an in-process Realtime server in memory
 * and clients connected to it (socket and HTTP API alike), deterministic under `TestClock`.
 *
 * ```ts
 * it.effect("notifies the room", () =>
 *   Effect.gen(function*() {
 *     const server = yield* RealtimeServer.RealtimeServer
 *     yield* myApp                                   // uses RealtimeClient as in production
 *     yield* server.waitUntil((s) => s.stats.broadcastsDelivered > 0)
 *   }).pipe(Effect.provide(RealtimeTest.layer())))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as AccessToken from "../AccessToken.js"
import * as HttpBroadcast from "../HttpBroadcast.js"
import * as RealtimeClient from "../RealtimeClient.js"
import type * as Transport from "../Transport.js"
import * as RealtimeServer from "./RealtimeServer.js"

/**
 * Options of a test client: the client's options (the endpoint and key are the server's).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions extends Partial<RealtimeClient.Options> {
  /** A static token or an Effect that fetches one; default none (the server's anon apikey). */
  readonly accessToken?: string | Effect.Effect<string | null> | undefined
}

const clientLayer = (
  server: RealtimeServer.Server,
  options: ClientOptions
): Layer.Layer<
  RealtimeClient.RealtimeClient | Transport.Transport | AccessToken.AccessToken | HttpBroadcast.HttpBroadcast
> => {
  const token = AccessToken.layerFrom(options.accessToken)
  const connection = { url: server.url, apiKey: server.apiKey }
  return RealtimeClient.layer({ ...options, ...connection }).pipe(
    Layer.provideMerge(
      HttpBroadcast.layer({ ...connection, timeout: options.timeout }).pipe(
        Layer.provide(Layer.succeed(HttpClient.HttpClient, server.httpClient))
      )
    ),
    Layer.provideMerge(token),
    Layer.provide(Layer.succeed(Socket.WebSocketConstructor, server.webSocketConstructor)),
    Layer.orDie
  )
}

/**
 * A client connected in memory to the `RealtimeServer` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: ClientOptions = {}): Layer.Layer<
  RealtimeClient.RealtimeClient | Transport.Transport | AccessToken.AccessToken | HttpBroadcast.HttpBroadcast,
  never,
  RealtimeServer.RealtimeServer
> => Layer.unwrap(Effect.map(RealtimeServer.RealtimeServer, (server) => clientLayer(server, options)))

/**
 * An in-memory server and a client connected to it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: {
  readonly server?: RealtimeServer.Options | undefined
  readonly client?: ClientOptions | undefined
} = {}): Layer.Layer<
  | RealtimeServer.RealtimeServer
  | RealtimeClient.RealtimeClient
  | Transport.Transport
  | AccessToken.AccessToken
  | HttpBroadcast.HttpBroadcast
> => layerClient(options.client).pipe(Layer.provideMerge(RealtimeServer.layer(options.server)))

/**
 * Another client of the same server, for the scope: tests of what several users see.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeClient = Effect.fnUntraced(function*(
  options: ClientOptions = {}
): Effect.fn.Return<RealtimeClient.RealtimeClient, never, RealtimeServer.RealtimeServer | Scope.Scope> {
  const server = yield* RealtimeServer.RealtimeServer
  const context = yield* Layer.build(clientLayer(server, options))
  return Context.get(context, RealtimeClient.RealtimeClient)
})
