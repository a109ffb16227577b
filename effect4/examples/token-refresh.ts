/**
 * Token refresh: the access token comes from an Effect (your auth session). The client waits for it
 * before the first join, refreshes it on every heartbeat and before every rejoin, and pushes it to
 * joined channels only when it changed. When the server closes a channel because the token expired,
 * the channel rejoins with a fresh one instead of going silent.
 * Run: npm exec -- tsx examples/token-refresh.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Option, Ref, Stream } from "effect"
import { connect, Endpoint, EndpointLive } from "./support.js"

const program = Effect.gen(function*() {
  const { server } = yield* Endpoint
  if (Option.isNone(server)) return yield* Effect.log("this example drives token expiry on the embedded server only")
  const issued = yield* Ref.make(0)
  // stands in for `supabase.auth.getSession()`: a fresh short-lived user token each call
  const session = Ref.updateAndGet(issued, (n) => n + 1).pipe(
    Effect.tap((n) => Effect.log(`auth: issuing token #${n}`)),
    Effect.andThen(server.value.makeToken({ role: "authenticated", expiresIn: "1 hour" }))
  )
  const client = yield* connect({ accessToken: session })
  const room = yield* client.channel("private-room", { private: true })
  yield* room.statusChanges.pipe(
    Stream.runForEach((status) =>
      Effect.log(`channel: ${status._tag}${"reason" in status ? ` (${status.reason})` : ""}`)
    ),
    Effect.forkScoped
  )
  yield* room.subscribe
  // the server decides the token is expired: system error + phx_close, as Realtime does
  yield* server.value.expireToken({ topic: "private-room" })
  yield* room.statusChanges.pipe(Stream.filter((s) => s._tag === "Rejoining"), Stream.take(1), Stream.runDrain)
  yield* room.statusChanges.pipe(Stream.filter((s) => s._tag === "Subscribed"), Stream.take(1), Stream.runDrain)
  yield* Effect.log(`rejoined after expiry; tokens issued: ${yield* Ref.get(issued)}`)
}).pipe(Effect.scoped, Effect.timeout("15 seconds"), Effect.provide(EndpointLive))

NodeRuntime.runMain(program)
