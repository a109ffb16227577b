/**
 * Cursor sharing with a Schema-typed payload: positions are validated on the way out and decoded
 * on the way in (a malformed one would be logged and skipped, never crash the stream).
 * Run: npm exec -- tsx examples/cursors.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Fiber, Schema, Stream } from "effect"
import { RealtimeChannel } from "../src/index.js"
import { connect, EndpointLive } from "./support.js"

class Cursor extends Schema.Class<Cursor>("Cursor")({
  user: Schema.String,
  x: Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1920 })),
  y: Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1080 }))
}) {}

const CursorMoved = RealtimeChannel.broadcastEvent("cursor", Cursor)

const program = Effect.gen(function*() {
  const sender = yield* connect()
  const watcher = yield* connect()
  const board = yield* watcher.channel("board:1")
  const seen = yield* board.broadcast(CursorMoved).pipe(
    Stream.tap(({ payload }) => Effect.log(`${payload.user} is at (${payload.x}, ${payload.y})`)),
    Stream.take(5),
    Stream.runDrain,
    Effect.forkChild
  )
  yield* board.subscribe
  const mine = yield* sender.channel("board:1")
  yield* mine.subscribe
  for (let i = 0; i < 5; i++) {
    yield* mine.send(CursorMoved, new Cursor({ user: "ada", x: 100 + i * 40, y: 200 + i * 10 }))
  }
  // the schema refuses a bad position before it reaches the wire
  const refused = yield* Effect.flip(mine.send(CursorMoved, { user: "ada", x: -5, y: 0 } as Cursor))
  yield* Effect.log(`refused: ${refused._tag}`)
  yield* Fiber.join(seen)
}).pipe(Effect.scoped, Effect.timeout("10 seconds"), Effect.provide(EndpointLive))

NodeRuntime.runMain(program)
