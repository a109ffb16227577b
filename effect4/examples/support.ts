/**
 * What the examples share: where to connect. By default an embedded Realtime server on 127.0.0.1
 * (the test kit's `RealtimeServer`); with `SUPABASE_URL` and `SUPABASE_ANON_KEY` set, your project.
 */
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import type { Scope } from "effect"
import { AccessToken, RealtimeClient } from "../src/index.js"
import { NodeRealtime } from "../src/node/index.js"
import { RealtimeServer } from "../src/testing/index.js"

export class Endpoint extends Context.Service<Endpoint, {
  readonly url: string
  readonly apiKey: Redacted.Redacted<string>
  /** The embedded server, when no project is configured. */
  readonly server: Option.Option<RealtimeServer.Server>
}>()("examples/Endpoint") {}

/** The project from the environment, or an embedded server on 127.0.0.1 for the scope's lifetime. */
export const EndpointLive: Layer.Layer<Endpoint, RealtimeServer.ListenError | Config.ConfigError> = Layer.effect(
  Endpoint,
  Effect.gen(function*() {
    const url = yield* Config.option(Config.String("SUPABASE_URL"))
    const key = yield* Config.option(Config.Redacted("SUPABASE_ANON_KEY"))
    if (Option.isSome(url) && Option.isSome(key)) {
      yield* Effect.log(`using the Supabase project at ${url.value}`)
      return Endpoint.of({ url: url.value, apiKey: key.value, server: Option.none() })
    }
    const server = yield* RealtimeServer.makeListen()
    return Endpoint.of({ url: server.url, apiKey: Redacted.make(server.apiKey), server: Option.some(server) })
  })
)

/** A client of its own (examples use several to show them talking), closed with the scope. */
export const connect = (options: {
  readonly accessToken?: string | Effect.Effect<string | null> | undefined
} = {}): Effect.Effect<RealtimeClient.RealtimeClient, never, Endpoint | Scope.Scope> =>
  Effect.gen(function*() {
    const endpoint = yield* Endpoint
    const context = yield* Layer.build(
      NodeRealtime.layer({ url: endpoint.url, apiKey: endpoint.apiKey, accessToken: options.accessToken })
    ).pipe(Effect.orDie)
    return Context.get(context, RealtimeClient.RealtimeClient)
  })

/** The token source of a client built with `connect`. */
export const tokenOf = (client: RealtimeClient.RealtimeClient): AccessToken.AccessToken => client.accessToken
