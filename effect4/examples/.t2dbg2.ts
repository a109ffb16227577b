import { NodeRuntime } from "@effect/platform-node"
import { Effect, Schema, Stream, Fiber, Layer, Context } from "effect"
import { RealtimeClient } from "../src/index.js"
import { RealtimeServer, RealtimeTest } from "../src/testing/index.js"
import { NodeRealtime } from "../src/node/index.js"

const Order = Schema.Struct({ id: Schema.String, total: Schema.Number })
const orders = { event: "INSERT", schema: "public", table: "orders" } as const
const columns = [{ name: "id", type: "text" }, { name: "total", type: "int4" }]
const mode = process.argv[2]

const body = (client: RealtimeClient.RealtimeClient, server: RealtimeServer.Server) => Effect.gen(function*() {
  const db = yield* client.channel("orders-feed", { postgresChanges: [orders] })
  const f = yield* db.postgresChanges(orders, Order).pipe(Stream.take(1), Stream.runCollect, Effect.forkChild({ startImmediately: process.argv[3] === "si" }))
  if (process.argv[3] === "y") yield* Effect.yieldNow
  yield* db.subscribe
  if (process.argv[3] === "ya") yield* Effect.yieldNow
  yield* Effect.log("subscribed")
  yield* server.emitChange({ table: "orders", type: "INSERT", record: { id: "o-1", total: 42 }, columns })
  yield* Effect.log("got", yield* Fiber.join(f).pipe(Effect.timeout("2 seconds"), Effect.exit))
  const g = yield* db.postgresChanges(orders).pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
  yield* Effect.sleep(100)
  yield* server.emitChange({ table: "orders", type: "INSERT", record: { id: "o-2", total: 42 }, columns })
  yield* Effect.log("got untyped", yield* Fiber.join(g).pipe(Effect.timeout("2 seconds"), Effect.exit))
})

const program = mode === "listen"
  ? Effect.gen(function*() {
    const server = yield* RealtimeServer.makeListen()
    const ctx = yield* Layer.build(NodeRealtime.layer({ url: server.url, apiKey: server.apiKey }))
    yield* body(Context.get(ctx, RealtimeClient.RealtimeClient), server)
  }).pipe(Effect.scoped)
  : Effect.gen(function*() {
    yield* body(yield* RealtimeClient.RealtimeClient, yield* RealtimeServer.RealtimeServer)
  }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer()))

NodeRuntime.runMain(program.pipe(Effect.orDie))
