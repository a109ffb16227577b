/**
 * What the examples share: where to connect. By default an embedded Realtime server on 127.0.0.1
 * (the test kit's `RealtimeServer`); with `SUPABASE_URL` and `SUPABASE_ANON_KEY` set, your project.
 */
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import type { Scope } from "effect"
import { AccessToken, RealtimeClient } from "supabase-realtime-effect"
import { NodeRealtime } from "supabase-realtime-effect/node"
import { RealtimeServer } from "supabase-realtime-effect/testing"

export class Endpoint extends Context.Tag("examples/Endpoint")<Endpoint, {
  readonly url: string
  readonly apiKey: Redacted.Redacted<string>
  /** The embedded server, when no project is configured. */
  readonly server: Option.Option<RealtimeServer.Server>
}>() {}

/** The project from the environment, or an embedded server on 127.0.0.1 for the scope's lifetime. */
export const EndpointLive: Layer.Layer<
  Endpoint,
  RealtimeServer.ListenError | import("effect").ConfigError.ConfigError
> = Layer.scoped(
  Endpoint,
  Effect.gen(function*() {
    const url = yield* Config.option(Config.string("SUPABASE_URL"))
    const key = yield* Config.option(Config.redacted("SUPABASE_ANON_KEY"))
    if (Option.isSome(url) && Option.isSome(key)) {
      yield* Effect.log(`using the Supabase project at ${url.value}`)
      return { url: url.value, apiKey: key.value, server: Option.none() }
    }
    const server = yield* RealtimeServer.makeListen()
    return { url: server.url, apiKey: Redacted.make(server.apiKey), server: Option.some(server) }
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
