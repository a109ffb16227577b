/**
 * Policy layers (`Reconnect.layer`, `Heartbeat.layer`) are read by the client once, when its layer
 * is built. A policy layer built where a client already exists (`Effect.provide(policy)` inside
 * `Effect.provide(client)`) cannot reach that client: it says so instead of being dropped silently
 * (the text is the core's, `core/policy.ts`).
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Policy from "../core/policy.js"

// the key of `Transport.Transport` (importing Transport here would be an import cycle)
const TransportKey = Context.GenericTag<unknown>("supabase-realtime-effect/Transport")

/** @internal */
export const warnIfLate = (name: string, option: string): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.serviceOption(TransportKey),
    (transport) => Option.isSome(transport) ? Effect.logWarning(Policy.lateMessage(name, option)) : Effect.void
  )
