/**
 * Presence end to end: several clients of the in-process server (in memory, TestClock).
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option, Schema, Scope, Stream, TestClock, TestContext, TestServices } from "effect"
import * as fc from "fast-check"
import type * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"

const Meta = Schema.Struct({ name: Schema.String, n: Schema.Number })
type Meta = typeof Meta.Type

const TOPIC = "presence:room"

/** The server's presence table in the client's public shape, for comparison. */
const serverView = (table: RealtimeServer.PresenceTable) => {
  const out: Record<string, Array<string>> = {}
  for (const [key, { metas }] of Object.entries(table)) {
    out[key] = metas.map((m) => JSON.stringify({ name: m.name, n: m.n, presence_ref: m.phx_ref })).sort()
  }
  return out
}

const clientView = (state: RealtimeChannel.PresenceSnapshot<Meta>) => {
  const out: Record<string, Array<string>> = {}
  for (const [key, metas] of state) {
    out[key] = metas.map((m) => JSON.stringify({ name: m.name, n: m.n, presence_ref: m.presence_ref })).sort()
  }
  return out
}

const same = (a: Record<string, Array<string>>, b: Record<string, Array<string>>) =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort())

/** Waits until the client's view equals the server's table (it converges as diffs arrive). */
const converged = (server: RealtimeServer.Server, channel: RealtimeChannel.RealtimeChannel) =>
  Effect.gen(function*() {
    const expected = serverView(yield* server.presence(TOPIC))
    yield* channel.presence(Meta).changes.pipe(
      Stream.filter((state) => same(clientView(state), expected)),
      Stream.take(1),
      Stream.runDrain
    )
  })

const join = (client: RealtimeClient.RealtimeClient, key: string) =>
  Effect.gen(function*() {
    const channel = yield* client.channel(TOPIC, { presence: { key } })
    yield* channel.subscribe
    return channel
  })

describe("presence end to end", () => {
  it.effect("three clients: join, update (one event), untrack, leave; two sockets share a key", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const observerClient = yield* RealtimeClient.RealtimeClient
      const observer = yield* join(observerClient, "observer")
      const events = yield* observer.presence(Meta).events.pipe(
        Stream.filter((e) => e._tag !== "Sync"),
        Stream.take(5),
        Stream.runCollect,
        Effect.fork
      )
      const ada1 = yield* join(yield* RealtimeTest.makeClient(), "ada")
      const adaScope = yield* Scope.make()
      const ada2 = yield* join(yield* RealtimeTest.makeClient(), "ada").pipe(Scope.extend(adaScope))
      yield* ada1.track({ name: "ada", n: 1 })
      yield* ada2.track({ name: "ada", n: 2 })
      yield* ada1.track({ name: "ada", n: 10 }) // re-track: an Update, not a leave + join
      yield* converged(server, observer)
      const state = yield* observer.presence(Meta).state
      assert.deepStrictEqual(state.get("ada")!.map((m) => m.n).sort((a, b) => a - b), [2, 10])
      yield* ada1.untrack()
      yield* Scope.close(adaScope, Exit.void) // the second "ada" socket leaves: no ghost remains
      yield* converged(server, observer)
      assert.isFalse((yield* observer.presence(Meta).state).has("ada"))
      const tags = Chunk.toReadonlyArray(yield* Fiber.join(events)).map((e) => `${e._tag}:${e.key}`)
      assert.deepStrictEqual(tags.slice(0, 3), ["Join:ada", "Join:ada", "Update:ada"])
      assert.deepStrictEqual(tags.slice(3), ["Leave:ada", "Leave:ada"])
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("the tracked meta is tracked again after the socket drops and the channel rejoins", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const observer = yield* join(yield* RealtimeClient.RealtimeClient, "observer")
      const bobClient = yield* RealtimeTest.makeClient()
      const bob = yield* join(bobClient, "bob")
      yield* bob.track({ name: "bob", n: 1 })
      yield* converged(server, observer)
      const bobConnection = (yield* server.subscribers(TOPIC)).find((c) => c.presenceKey === "bob")!.connection
      yield* server.dropConnection({ connection: bobConnection, abrupt: true })
      yield* server.waitUntil((s) => !("bob" in s.presence(TOPIC)))
      yield* TestClock.adjust("1 second") // bob's client reconnects, rejoins and tracks again
      yield* server.waitUntil((s) => "bob" in s.presence(TOPIC))
      yield* converged(server, observer)
      assert.deepStrictEqual((yield* observer.presence(Meta).state).get("bob")!.map((m) => m.n), [1])
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("typed track: the meta is encoded with the view's schema; one that does not encode sends nothing", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      // a schema whose encoded side differs: `since` is a Date here, an ISO string on the wire
      const Member = Schema.Struct({ name: Schema.String, since: Schema.Date })
      const observer = yield* join(yield* RealtimeClient.RealtimeClient, "observer")
      const ada = yield* join(yield* RealtimeTest.makeClient(), "ada")
      const since = new Date("2026-12-03T10:00:00.000Z")
      yield* ada.presence(Member).track({ name: "ada", since })
      const table = yield* server.waitFor((s) => s.presence(TOPIC)["ada"])
      assert.deepStrictEqual(table.metas.map((m) => m.since), ["2026-12-03T10:00:00.000Z"])
      const seen = yield* observer.presence(Member).changes.pipe(
        Stream.filter((state) => state.has("ada")),
        Stream.runHead
      )
      const meta = seen.pipe(Option.getOrThrow).get("ada")![0]!
      assert.strictEqual(meta.since.getTime(), since.getTime())

      const framesBefore = (yield* server.state).stats.framesReceived
      const error = yield* Effect.flip(
        ada.presence(Member).track({ name: "ada", since: new Date(Number.NaN) })
      )
      assert.strictEqual(error._tag, "InvalidArgument")
      assert.include(error.message, "does not match its schema")
      assert.strictEqual((yield* server.state).stats.framesReceived, framesBefore, "nothing was sent")
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("occupancy counts keys and connections without decoding, and changes only when they change", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const observer = yield* join(yield* RealtimeClient.RealtimeClient, "observer")
      const view = observer.presence()
      assert.deepStrictEqual(yield* view.occupancy, { keys: 0, connections: 0 })
      const counts = yield* view.occupancyChanges.pipe(Stream.take(4), Stream.runCollect, Effect.fork)
      const ada1 = yield* join(yield* RealtimeTest.makeClient(), "ada")
      const ada2 = yield* join(yield* RealtimeTest.makeClient(), "ada")
      const bob = yield* join(yield* RealtimeTest.makeClient(), "bob")
      yield* ada1.track({ tab: 1 })
      yield* server.waitUntil((s) => s.presence(TOPIC)["ada"]?.metas.length === 1)
      yield* ada2.track({ tab: 2 })
      yield* server.waitUntil((s) => s.presence(TOPIC)["ada"]?.metas.length === 2)
      yield* ada1.track({ tab: 1, again: true }) // an update: the same counts, not repeated
      yield* bob.track({ tab: 3 })
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(yield* Fiber.join(counts)),
        [
          { keys: 0, connections: 0 },
          { keys: 1, connections: 1 },
          { keys: 1, connections: 2 },
          { keys: 2, connections: 3 }
        ]
      )
      assert.deepStrictEqual(yield* view.occupancy, { keys: 2, connections: 3 })
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  type Op =
    | { readonly _tag: "track"; readonly client: number; readonly n: number }
    | { readonly _tag: "untrack"; readonly client: number }
    | { readonly _tag: "drop"; readonly client: number }

  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      _tag: fc.constant("track" as const),
      client: fc.integer({ min: 0, max: 2 }),
      n: fc.integer({ min: 0, max: 3 })
    }),
    fc.record({ _tag: fc.constant("untrack" as const), client: fc.integer({ min: 0, max: 2 }) }),
    fc.record({ _tag: fc.constant("drop" as const), client: fc.integer({ min: 0, max: 2 }) })
  )

  it(
    "property: after random track / untrack / disconnect across clients, every client's state equals the server's",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
          const program = Effect.gen(function*() {
            const server = yield* RealtimeServer.RealtimeServer
            // clients 0 and 1 share the key "shared"; client 2 is "solo"
            const keys = ["shared", "shared", "solo"]
            const clients = [
              yield* RealtimeClient.RealtimeClient,
              yield* RealtimeTest.makeClient(),
              yield* RealtimeTest.makeClient()
            ]
            const channels = yield* Effect.forEach(clients, (client, i) => join(client, keys[i]!))
            for (const step of ops) {
              const channel = channels[step.client]!
              if (step._tag === "track") yield* channel.track({ name: keys[step.client]!, n: step.n })
              else if (step._tag === "untrack") yield* channel.untrack()
              else {
                const connection = (yield* server.state).connections[step.client]?.id
                if (connection === undefined) continue
                // a connection that held a heartbeat interval: the reconnect backoff starts over
                yield* TestClock.adjust("25 seconds")
                yield* server.dropConnection({ connection, abrupt: true })
                yield* TestClock.adjust("1 second")
                yield* channel.statusChanges.pipe(
                  Stream.filter((s) => s._tag === "Subscribed"),
                  Stream.take(1),
                  Stream.runDrain
                )
              }
            }
            // let re-tracks after rejoins land, then every view must equal the server's table
            yield* TestClock.adjust("1 second")
            // bounded on the real clock: a view that never converges fails the property (with its
            // counterexample) instead of hanging until the test's timeout
            yield* Effect.forEach(channels, (channel) => converged(server, channel), { discard: true }).pipe(
              Effect.timeoutFail({
                duration: "5 seconds",
                onTimeout: () =>
                  new Error(`presence views did not converge to the server's table after ${JSON.stringify(ops)}`)
              }),
              TestServices.provideLive
            )
            const expected = serverView(yield* server.presence(TOPIC))
            for (const channel of channels) {
              assert.isTrue(same(clientView(yield* channel.presence(Meta).state), expected))
            }
          }).pipe(
            Effect.scoped,
            // the property is about sync, not about the per-channel presence rate limit (5 per 30 s)
            Effect.provide(RealtimeTest.layer({ server: { limits: { clientPresenceMaxCalls: 1_000 } } })),
            Effect.provide(TestContext.TestContext)
          )
          await Effect.runPromise(program)
        }),
        { numRuns: 25 }
      )
    },
    60_000
  )
})
