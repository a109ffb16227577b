/**
 * Missed events: after the socket drops, the channel rejoins and says so. A private channel with
 * replay catches up on the broadcasts sent from the database while it was away (once each, in
 * order, marked replayed), and `gaps` tells the app whether anything may still be missing: the
 * moments to refetch.
 * Run: npm exec -- tsx examples/catch-up.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Duration, Effect, Option, Stream } from "effect"
import { connect, Endpoint, EndpointLive } from "./support.js"

const program = Effect.gen(function*() {
  const { server } = yield* Endpoint
  if (Option.isNone(server)) return yield* Effect.log("this example drops sockets on the embedded server only")
  const client = yield* connect()
  const room = yield* client.channel("orders", { private: true, broadcast: { replay: { since: Date.now() } } })

  yield* room.broadcast("order").pipe(
    Stream.runForEach((b) =>
      Effect.log(`order ${JSON.stringify(b.payload)}${b.meta?.replayed === true ? " (replayed)" : ""}`)
    ),
    Effect.forkScoped
  )
  // the "refetch now" moments: a gap replay could not close is where the app reloads its state
  yield* room.gaps.pipe(
    Stream.runForEach((gap) =>
      gap.complete
        ? Effect.log(
          `rejoined after ${Duration.format(gap.downtime)}: ${gap.replayed} missed orders replayed, nothing missing`
        )
        : Effect.log(`rejoined after ${Duration.format(gap.downtime)}: refetch (${gap.reason})`)
    ),
    Effect.forkScoped
  )
  yield* room.subscribe

  yield* server.value.dbSend({ topic: "orders", event: "order", payload: { id: 1 } })
  yield* Effect.sleep("200 millis")
  // the socket drops; while the client is away the database sends two more orders
  yield* server.value.dropConnection({ abrupt: true })
  yield* room.statusChanges.pipe(Stream.filter((s) => s._tag === "Errored"), Stream.runHead)
  yield* server.value.dbSend({ topic: "orders", event: "order", payload: { id: 2 } })
  yield* server.value.dbSend({ topic: "orders", event: "order", payload: { id: 3 } })
  yield* room.gaps.pipe(Stream.runHead)
  yield* server.value.dbSend({ topic: "orders", event: "order", payload: { id: 4 } })
  yield* Effect.sleep("200 millis")
}).pipe(Effect.scoped, Effect.timeout("15 seconds"), Effect.provide(EndpointLive))

NodeRuntime.runMain(program)
