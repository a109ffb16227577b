/**
 * A broadcast chat between two clients: each sends a line and sees the other's.
 * Run: npm exec -- tsx examples/chat.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Fiber, Schema, Stream } from "effect"
import { RealtimeChannel } from "../src/index.js"
import { connect, EndpointLive } from "./support.js"

const Message = RealtimeChannel.broadcastEvent(
  "message",
  Schema.Struct({ from: Schema.String, text: Schema.String })
)

const member = (name: string) =>
  Effect.gen(function*() {
    const client = yield* connect()
    // ack: `send` succeeds once the server has the message, or fails with a tagged error
    const room = yield* client.channel("chat:lobby", { broadcast: { ack: true } })
    const inbox = yield* room.broadcast(Message).pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
    yield* room.subscribe
    return { name, room, inbox }
  })

const program = Effect.gen(function*() {
  const ada = yield* member("ada")
  const bob = yield* member("bob")
  yield* ada.room.send(Message, { from: "ada", text: "hello bob" })
  yield* bob.room.send(Message, { from: "bob", text: "hi ada!" })
  for (const { inbox, name } of [ada, bob]) {
    const [line] = yield* Fiber.join(inbox)
    yield* Effect.log(`${name} received from ${line!.payload.from}: ${line!.payload.text}`)
  }
}).pipe(Effect.scoped, Effect.timeout("10 seconds"), Effect.provide(EndpointLive))

NodeRuntime.runMain(program)
