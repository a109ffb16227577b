/**
 * A presence room: three users track themselves (typed: the view's schema checks the meta before it
 * is sent), one updates its status (one `Update` event, not a leave plus a join), one leaves;
 * everyone's view stays in sync, and the occupancy counts follow.
 * Run: npm exec -- tsx examples/presence.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Exit, Option, Schema, Scope, Stream } from "effect"
import type { RealtimeClient } from "../src/index.js"
import { connect, EndpointLive } from "./support.js"

const Status = Schema.Struct({ name: Schema.String, status: Schema.Literals(["online", "away"]) })

const enter = (client: RealtimeClient.RealtimeClient, name: string) =>
  Effect.gen(function*() {
    const room = yield* client.channel("room:presence", { presence: { key: name } })
    yield* room.subscribe
    yield* room.presence(Status).track({ name, status: "online" })
    return room
  })

const program = Effect.gen(function*() {
  const observerClient = yield* connect()
  const room = yield* observerClient.channel("room:presence", { presence: { key: "observer" } })
  const presence = room.presence(Status)
  yield* presence.events.pipe(
    Stream.runForEach((event) =>
      event._tag === "Sync"
        ? Effect.log(`in the room: ${[...event.state.keys()].join(", ") || "nobody"}`)
        : Effect.log(`${event._tag.toLowerCase()}: ${event.key}`)
    ),
    Effect.forkScoped
  )
  yield* room.subscribe

  const ada = yield* enter(yield* connect(), "ada")
  const bobScope = yield* Scope.make()
  yield* enter(yield* connect(), "bob").pipe(Scope.provide(bobScope))
  yield* presence.changes.pipe(Stream.takeUntil((state) => state.size === 2), Stream.runDrain)

  // a typo in the meta is refused before anything is sent
  const refused = yield* ada.presence(Status).track({ name: "ada", status: "afk" as "away" }).pipe(Effect.flip)
  yield* Effect.log(`refused: ${refused._tag}`)
  yield* ada.presence(Status).track({ name: "ada", status: "away" })
  yield* presence.changes.pipe(
    Stream.takeUntil((state) => state.get("ada")?.[0]?.status === "away"),
    Stream.runDrain
  )
  yield* Scope.close(bobScope, Exit.void) // bob's client leaves
  const final = yield* presence.changes.pipe(Stream.takeUntil((state) => !state.has("bob")), Stream.runLast)
  yield* Effect.log(`finally: ${JSON.stringify([...final.pipe(Option.getOrThrow).entries()])}`)
  const { connections, keys } = yield* presence.occupancy
  yield* Effect.log(`occupancy: keys=${keys} connections=${connections}`)
}).pipe(Effect.scoped, Effect.timeout("10 seconds"), Effect.provide(EndpointLive))

NodeRuntime.runMain(program)
