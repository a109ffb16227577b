/**
 * Seeded fuzzing of what a server (or a peer through it) can send, against a subscribed client with
 * presence, a typed broadcast stream and a typed postgres stream (issue 11): random and mutated
 * text frames, binary frames of every kind with lying lengths, JSON nested up to 10,000 levels,
 * huge numbers and huge strings. Afterwards the client is still subscribed, every stream is alive
 * and receives a valid message, and nothing was thrown out of the socket's message handler.
 *
 * `FUZZ_FRAMES` (default 20,000) and `FUZZ_SEED` (default 11) pick the run; `npm run fuzz` sends a
 * million.
 */
import { afterEach, assert, beforeEach, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Logger, Queue, Result, Schema, type Scope, Stream } from "effect"
import { Socket } from "effect/socket"
import fc from "fast-check"
import { frame, str, TOPIC } from "../../test/support/fuzzFrames.js"
import * as Protocol from "../src/Protocol.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"

const FRAMES = Number(process.env.FUZZ_FRAMES ?? 20_000)
const SEED = Number(process.env.FUZZ_SEED ?? 11)

let uncaught: Array<unknown> = []
const onUncaught = (error: unknown) => uncaught.push(error)
beforeEach(() => {
  uncaught = []
  process.on("uncaughtException", onUncaught)
})
afterEach(() => {
  process.off("uncaughtException", onUncaught)
})

// -----------------------------------------------------------------------------
// the client under fuzz
// -----------------------------------------------------------------------------

const Cursor = RealtimeChannel.broadcastEvent("cursor", Schema.Struct({ x: Schema.Number, y: Schema.Number }))
const Todo = Schema.Struct({ id: Schema.Number, title: Schema.String })
const binding = { event: "*", schema: "public", table: "todos" } as const

const setup = Effect.gen(function*() {
  const { constructor, server } = yield* FakeSocket.make
  const layer = RealtimeClient.layer({ url: "ws://realtime.test/socket", apiKey: "anon" }).pipe(
    Layer.provide(Layer.succeed(Socket.WebSocketConstructor, constructor))
  )
  const context = yield* Layer.build(layer).pipe(Effect.orDie)
  return { server, client: Context.get(context, RealtimeClient.RealtimeClient) }
})

/** Runs a stream for the test's scope: counts its items and keeps the last few. */
const watch = <A, E>(stream: Stream.Stream<A, E>): Effect.Effect<
  { readonly seen: Queue.Queue<A>; readonly count: () => number; readonly fiber: Fiber.Fiber<void, E> },
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const seen = yield* Queue.sliding<A>(16)
    let count = 0
    const fiber = yield* stream.pipe(
      Stream.runForEach((a) => {
        count++
        return Queue.offer(seen, a)
      }),
      Effect.forkScoped
    )
    return { seen, count: () => count, fiber }
  })

const settle = Effect.repeat(Effect.yieldNow, { times: 10 })

// every log line is formatted as a real logger would (and must not throw), then dropped
const logged = { lines: 0, longest: 0 }
const countingLogger = Logger.map(Logger.formatLogFmt, (line) => {
  logged.lines++
  logged.longest = Math.max(logged.longest, line.length)
})

/** Waits for an item of `seen` matching `f` (the stream may have kept fuzzed ones before it). */
const awaitItem = <A>(seen: Queue.Queue<A>, f: (a: A) => boolean): Effect.Effect<A> =>
  Effect.flatMap(Queue.take(seen), (a) => f(a) ? Effect.succeed(a) : awaitItem(seen, f))

describe("fuzz", () => {
  it.effect(
    `${FRAMES} hostile frames (seed ${SEED}): still subscribed, every stream alive, nothing thrown`,
    () =>
      Effect.gen(function*() {
        const { client, server } = yield* setup
        const channel = yield* client.channel("room", { presence: { key: "me" }, postgresChanges: [binding] })
        const broadcasts = yield* watch(channel.broadcast(Cursor))
        const all = yield* watch(channel.broadcast("*"))
        const changes = yield* watch(channel.postgresChanges(binding, Todo))
        const presence = yield* watch(channel.presence().events)
        const system = yield* watch(channel.system)
        yield* Effect.yieldNow

        const subscribed = yield* Effect.forkChild(channel.subscribe)
        const connection = yield* Queue.take(server.connections)
        let join: Protocol.Message
        do {
          join = Result.getOrThrow(Protocol.serverV2.decode(yield* Queue.take(connection.sent)))
        } while (join.event !== "phx_join")
        const joinRef = join.joinRef!
        yield* connection.send(
          `[${str(joinRef)},${str(join.ref!)},${str(TOPIC)},"phx_reply",{"status":"ok","response":` +
            `{"postgres_changes":[{"id":7,"event":"*","schema":"public","table":"todos"}]}}]`
        )
        yield* Fiber.join(subscribed)

        const arbitrary = frame(joinRef)
        const BATCH = 500
        for (let sent = 0, batch = 0; sent < FRAMES; batch++) {
          const frames = fc.sample(arbitrary, {
            seed: SEED * 1_000_003 + batch,
            numRuns: Math.min(BATCH, FRAMES - sent)
          })
          for (const f of frames) {
            yield* connection.send(f)
            if (++sent % 50 === 0) yield* settle
          }
          yield* Queue.clear(connection.sent) // what the client sends back is not under test
        }
        yield* settle

        assert.deepStrictEqual(uncaught.map(String), [], "nothing thrown out of the socket's message handler")
        // skipped frames were logged, each line bounded however big or deep the frame
        assert.isTrue(logged.lines > 0)
        assert.isBelow(logged.longest, 4_000)
        assert.strictEqual((yield* channel.status)._tag, "Subscribed")
        for (const s of [broadcasts, all, changes, presence, system]) {
          assert.isUndefined(s.fiber.pollUnsafe(), "stream alive")
        }

        // and everything still works
        yield* connection.send(
          `[null,null,${str(TOPIC)},"broadcast",{"type":"broadcast","event":"cursor","payload":{"x":-42,"y":7}}]`
        )
        yield* connection.send(
          `[null,null,${str(TOPIC)},"postgres_changes",{"ids":[7],"data":{"schema":"public","table":"todos",` +
            `"commit_timestamp":"2024-01-01T00:00:00Z","type":"INSERT","columns":[{"name":"id","type":"int4"},` +
            `{"name":"title","type":"text"}],"record":{"id":"-42","title":"after the fuzz"},"errors":null}}]`
        )
        yield* connection.send(
          `[${str(joinRef)},null,${str(TOPIC)},"presence_state",{"after":{"metas":[{"phx_ref":"after-1","n":1}]}}]`
        )
        assert.deepStrictEqual(
          (yield* awaitItem(broadcasts.seen, (b) => b.payload.x === -42)).payload,
          { x: -42, y: 7 }
        )
        yield* awaitItem(all.seen, (b) => (b.payload as { x?: unknown } | null)?.x === -42)
        assert.strictEqual((yield* awaitItem(changes.seen, (c) => c.new.id === -42)).new.title, "after the fuzz")
        yield* awaitItem(presence.seen, (e) => e._tag === "Sync" && e.state.has("after"))
        assert.isTrue(broadcasts.count() > 0 && changes.count() > 0 && presence.count() > 0)
        assert.deepStrictEqual(uncaught.map(String), [])
      }).pipe(Effect.provide(Logger.layer([countingLogger]))),
    { timeout: Math.max(60_000, FRAMES * 2) }
  )
})
