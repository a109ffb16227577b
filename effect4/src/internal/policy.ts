/**
 * Policy layers (`Reconnect.layer`, `Heartbeat.layer`) are read by the client once, when its layer
 * is built. A policy layer built where a client already exists (`Effect.provide(policy)` inside
 * `Effect.provide(client)`) cannot reach that client: it says so instead of being dropped silently.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

// the key of `Transport.Transport` (importing Transport here would be an import cycle): a service's
// identity is its key string
const TransportKey = Context.Service<unknown>("supabase-realtime-effect/Transport")

/** @internal */
export const lateMessage = (name: string, option: string): string =>
  `${name} was provided below a RealtimeClient that is already built, so that client keeps its own policy. ` +
  `Pass \`${option}\` in the client's options (NodeRealtime.layer / BrowserRealtime.layer), ` +
  `provide the policy to the client's layer (\`NodeRealtime.layer(options).pipe(Layer.provide(${name}(...)))\`), ` +
  `or provide it outside the client's layer.`

/** @internal */
export const warnIfLate = (name: string, option: string): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.serviceOption(TransportKey),
    (transport) => Option.isSome(transport) ? Effect.logWarning(lateMessage(name, option)) : Effect.void
  )
