/**
 * Testing your app's realtime code with the test kit: no Supabase project, no network, no sleeps.
 * `RealtimeTest.layer()` gives an in-process Realtime server in memory and a client connected to it;
 * `TestClock` drives heartbeats, timeouts and rejoins. The same code runs under vitest with
 * `it.effect` (see the README); here it runs as a script.
 * Run: npm exec -- tsx examples/testing.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Fiber, Schema, type Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { RealtimeChannel, RealtimeClient } from "../src/index.js"
import { RealtimeServer, RealtimeTest } from "../src/testing/index.js"

// ---- the app under test: announces every new order on the "ops" channel --------------------------
const Order = Schema.Struct({ id: Schema.String, total: Schema.Number })
const OrderCreated = RealtimeChannel.broadcastEvent("order-created", Order)
const orders = { event: "INSERT", schema: "public", table: "orders" } as const
const columns = [{ name: "id", type: "text" }, { name: "total", type: "int4" }]

const announceOrders = Effect.gen(function*() {
  const client = yield* RealtimeClient.RealtimeClient
  const db = yield* client.channel("orders-feed", { postgresChanges: [orders] })
  const ops = yield* client.channel("ops", { broadcast: { ack: true } })
  yield* ops.subscribe
  yield* db.postgresChanges(orders, Order).pipe(
    Stream.runForEach((change) => change.eventType === "INSERT" ? ops.send(OrderCreated, change.new) : Effect.void),
    Effect.forkScoped
  )
  yield* db.subscribe
})

// ---- the tests --------------------------------------------------------------------------------------
const check = (
  name: string,
  test: Effect.Effect<void, unknown, RealtimeServer.RealtimeServer | RealtimeClient.RealtimeClient | Scope.Scope>
) =>
  test.pipe(
    Effect.scoped,
    Effect.provide(RealtimeTest.layer()),
    Effect.provide(TestClock.layer()),
    Effect.tap(() => Effect.log(`✓ ${name}`))
  )

const listenOps = Effect.gen(function*() {
  const watcher = yield* RealtimeTest.makeClient()
  const ops = yield* watcher.channel("ops")
  yield* ops.subscribe
  return ops
})

const announcesNewOrders = check(
  "a new order row is announced on ops",
  Effect.gen(function*() {
    const server = yield* RealtimeServer.RealtimeServer
    const ops = yield* listenOps
    const heard = yield* ops.broadcast(OrderCreated).pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
    yield* announceOrders
    yield* server.emitChange({ table: "orders", type: "INSERT", record: { id: "o-1", total: 42 }, columns })
    const [message] = yield* Fiber.join(heard)
    if (message?.payload.id !== "o-1" || message.payload.total !== 42) {
      return yield* Effect.fail(new Error(`unexpected announcement: ${JSON.stringify(message)}`))
    }
  })
)

const survivesACrash = check(
  "the app keeps announcing after the feed channel crashes and rejoins",
  Effect.gen(function*() {
    const server = yield* RealtimeServer.RealtimeServer
    const ops = yield* listenOps
    const heard = yield* ops.broadcast(OrderCreated).pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
    yield* announceOrders
    yield* server.crashChannel({ topic: "orders-feed" })
    yield* TestClock.adjust("1 second") // the rejoin backoff, on the test clock
    yield* server.waitUntil((s) => s.subscribers("orders-feed").some((c) => c.postgresSubscribed))
    yield* server.emitChange({ table: "orders", type: "INSERT", record: { id: "o-2", total: 7 }, columns })
    yield* Fiber.join(heard)
  })
)

const program = Effect.gen(function*() {
  yield* announcesNewOrders
  yield* survivesACrash
  yield* Effect.log("all checks passed")
})

NodeRuntime.runMain(program)
