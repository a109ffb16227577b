/**
 * The channel and the client of the Effect 4 edition, over the fake socket and under `TestClock`:
 * the join and its outcomes (ok, rejected with the server's reason, timed out), the rejoin after a
 * lost join, typed broadcast streams, presence, and the client's registry and idle disconnect.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  Queue,
  Ref,
  Result,
  Schema,
  Scope,
  Stream
} from "effect"
import { Socket } from "effect/socket"
import { TestClock } from "effect/testing"
import * as AccessToken from "../src/AccessToken.js"
import * as Heartbeat from "../src/Heartbeat.js"
import * as Protocol from "../src/Protocol.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeError from "../src/RealtimeError.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"

const URL = "ws://realtime.test/socket"

interface Harness {
  readonly server: FakeSocket.FakeServer
  readonly client: RealtimeClient.RealtimeClient
}

const setup = (
  options: Partial<RealtimeClient.Options> = {},
  extra: Layer.Layer<any> = Layer.empty as Layer.Layer<any>
): Effect.Effect<Harness, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { constructor, server } = yield* FakeSocket.make
    const layer = RealtimeClient.layer({ url: URL, apiKey: "anon", ...options }).pipe(
      Layer.provide(Layer.succeed(Socket.WebSocketConstructor, constructor)),
      Layer.provide(extra)
    )
    const context = yield* Layer.build(layer).pipe(Effect.orDie)
    return { server, client: Context.get(context, RealtimeClient.RealtimeClient) }
  })

/** A decoded client frame: text (v2 array) or binary (kind 3), as the server sees it. */
const next = (connection: FakeSocket.FakeConnection): Effect.Effect<Protocol.Message> =>
  Effect.map(Queue.take(connection.sent), (frame) => Result.getOrThrow(Protocol.serverV2.decode(frame)))

const nextOf = (connection: FakeSocket.FakeConnection, event: string): Effect.Effect<Protocol.Message> =>
  Effect.flatMap(next(connection), (m) => m.event === event ? Effect.succeed(m) : nextOf(connection, event))

const serverSend = (connection: FakeSocket.FakeConnection, message: Protocol.Message) =>
  connection.send(Result.getOrThrow(Protocol.serverV2.encode(message)))

const reply = (
  connection: FakeSocket.FakeConnection,
  to: Protocol.Message,
  status: "ok" | "error",
  response: unknown = {}
) =>
  serverSend(connection, {
    joinRef: to.joinRef,
    ref: to.ref,
    topic: to.topic,
    event: "phx_reply",
    payload: { status, response }
  })

const broadcastFrame = (topic: string, event: string, payload: unknown): Protocol.Message => ({
  joinRef: null,
  ref: null,
  topic,
  event: "broadcast",
  payload: { type: "broadcast", event, payload }
})

/** Subscribes a channel and answers its join: returns the connection and the join message. */
const joined = (
  harness: Harness,
  channel: RealtimeChannel.RealtimeChannel,
  response: unknown = { postgres_changes: [] }
) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(channel.subscribe)
    const connection = yield* Queue.take(harness.server.connections)
    const join = yield* nextOf(connection, "phx_join")
    yield* reply(connection, join, "ok", response)
    yield* Fiber.join(fiber)
    return { connection, join }
  })

/** The first status with `tag` (the current one included). */
const awaitStatus = (channel: RealtimeChannel.RealtimeChannel, tag: RealtimeChannel.ChannelStatus["_tag"]) =>
  channel.statusChanges.pipe(
    Stream.filter((s) => s._tag === tag),
    Stream.runHead,
    Effect.map(Option.getOrThrow)
  )

/** Watches a channel's statuses from now until one with `tag` (forked, and started before it returns). */
const statusesUntil = (channel: RealtimeChannel.RealtimeChannel, tag: RealtimeChannel.ChannelStatus["_tag"]) =>
  channel.statusChanges.pipe(
    Stream.takeUntil((s) => s._tag === tag),
    Stream.runCollect,
    Effect.forkChild({ startImmediately: true })
  )

/** Lets the event loop finish its current I/O turn (the streams' end-of-turn wake-ups run). */
const nextIoTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

const Cursor = RealtimeChannel.broadcastEvent("cursor", Schema.Struct({ x: Schema.Number, y: Schema.Number }))

describe("RealtimeChannel (Effect 4)", () => {
  describe("subscribe", () => {
    it.effect("sends the join payload realtime-js sends and succeeds on ok", () =>
      Effect.gen(function*() {
        const harness = yield* setup({}, AccessToken.layerStatic("USERJWT"))
        const channel = yield* harness.client.channel("room1", {
          broadcast: { self: true, ack: true },
          presence: { key: "u1" },
          postgresChanges: [
            { event: "INSERT", schema: "public", table: "todos", filter: "id=eq.1" },
            { event: "*", schema: "public", table: "other" }
          ],
          private: true
        })
        assert.isTrue(RealtimeChannel.isRealtimeChannel(channel))
        assert.strictEqual(channel.topic, "realtime:room1")
        assert.strictEqual((yield* channel.status)._tag, "Idle")
        const statuses = yield* statusesUntil(channel, "Subscribed")
        const { join } = yield* joined(harness, channel, {
          postgres_changes: [
            { id: 111, event: "INSERT", schema: "public", table: "todos", filter: "id=eq.1" },
            { id: 222, event: "*", schema: "public", table: "other" }
          ]
        })
        assert.strictEqual(join.joinRef, join.ref)
        assert.deepStrictEqual(join.payload, {
          config: {
            broadcast: { ack: true, self: true },
            presence: { key: "u1", enabled: true },
            postgres_changes: [
              { event: "INSERT", schema: "public", table: "todos", filter: "id=eq.1" },
              { event: "*", schema: "public", table: "other" }
            ],
            private: true
          },
          access_token: "USERJWT"
        })
        const seen = yield* Fiber.join(statuses)
        assert.deepStrictEqual(seen.map((s) => s._tag), ["Idle", "Joining", "Subscribed"])
        const subscribed = seen[2]!
        assert.isTrue(subscribed._tag === "Subscribed" && !subscribed.rejoined)
        assert.deepStrictEqual(yield* channel.bindingIds, Option.some([[111], [222]]))
        // the token is never shown
        const last = Option.getOrThrow(yield* channel.lastJoinPayload)
        assert.strictEqual((last as { readonly access_token?: string }).access_token, "<redacted>")
        assert.deepStrictEqual((channel as unknown as { toJSON(): unknown }).toJSON(), {
          _id: "RealtimeChannel",
          topic: "realtime:room1",
          status: subscribed
        })
      }))

    it.effect("a join rejected by the server fails subscribe with the server's code and reason", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("secret", { private: true })
        const fiber = yield* Effect.forkChild(Effect.flip(channel.subscribe))
        const connection = yield* Queue.take(harness.server.connections)
        const join = yield* nextOf(connection, "phx_join")
        yield* reply(connection, join, "error", {
          reason: "Unauthorized: You do not have permissions to read from this Channel topic: secret"
        })
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "JoinRejected")
        if (error._tag === "JoinRejected") {
          assert.strictEqual(error.code, "Unauthorized")
          assert.strictEqual(error.topic, "realtime:secret")
          assert.include(error.message, "You do not have permissions")
        }
        assert.strictEqual((yield* channel.status)._tag, "Closed")
      }))

    it.effect("a first join without reply times out, leaves the late join, and is retried after 1 s", () =>
      Effect.gen(function*() {
        const harness = yield* setup({ timeout: "5 seconds" })
        const channel = yield* harness.client.channel("slow")
        const statuses = yield* statusesUntil(channel, "Subscribed")
        const fiber = yield* Effect.forkChild(channel.subscribe)
        const connection = yield* Queue.take(harness.server.connections)
        const join = yield* nextOf(connection, "phx_join")
        yield* TestClock.adjust("5 seconds")
        const leave = yield* nextOf(connection, "phx_leave")
        assert.strictEqual(leave.joinRef, join.ref)
        yield* awaitStatus(channel, "Rejoining")
        yield* TestClock.adjust("1 second")
        const again = yield* nextOf(connection, "phx_join")
        yield* reply(connection, again, "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        assert.deepStrictEqual((yield* Fiber.join(statuses)).map((s) => s._tag), [
          "Idle",
          "Joining",
          "TimedOut",
          "Rejoining",
          "Joining",
          "Subscribed"
        ])
      }))

    it.effect("a first join that keeps timing out fails subscribe with JoinTimeout after maxRejoinFailures", () =>
      Effect.gen(function*() {
        const harness = yield* setup({ timeout: "5 seconds" })
        const channel = yield* harness.client.channel("slow", {}, { maxRejoinFailures: 3 })
        const fiber = yield* Effect.forkChild(Effect.flip(channel.subscribe))
        const connection = yield* Queue.take(harness.server.connections)
        for (const backoff of [1000, 2000]) {
          yield* nextOf(connection, "phx_join")
          yield* TestClock.adjust("5 seconds")
          yield* awaitStatus(channel, "Rejoining")
          yield* TestClock.adjust(backoff)
        }
        yield* nextOf(connection, "phx_join")
        yield* TestClock.adjust("5 seconds")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "JoinTimeout")
        const closed = yield* channel.status
        // the third timeout and the subscribe's deadline (3 timeouts and the 2 delays between them)
        // fall at the same instant: either may close the channel
        assert.match(
          closed._tag === "Closed" ? closed.reason : "",
          /gave up after 3 failed joins|no join within 18000 ms/
        )
      }))

    it.effect("a subscriber that gives up before the reply leaves the join that may still land", () =>
      Effect.gen(function*() {
        const harness = yield* setup({ timeout: "5 seconds" })
        const channel = yield* harness.client.channel("slow")
        const fiber = yield* Effect.forkChild(channel.subscribe.pipe(Effect.timeoutOption("1 second")))
        const connection = yield* Queue.take(harness.server.connections)
        const join = yield* nextOf(connection, "phx_join")
        yield* TestClock.adjust("1 second")
        assert.isTrue(Option.isNone(yield* Fiber.join(fiber)))
        const leave = yield* nextOf(connection, "phx_leave")
        assert.strictEqual(leave.joinRef, join.ref)
        assert.deepStrictEqual(
          yield* channel.status,
          RealtimeChannel.ChannelStatus.Closed({ reason: "the join failed" })
        )
      }))

    it.effect("an empty or blank presence key, or replay on a public channel, is an InvalidArgument", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        for (const key of ["", "  "]) {
          const exit = yield* Effect.exit(harness.client.channel("room", { presence: { key } }))
          assert.isTrue(Exit.isFailure(exit))
        }
        const replay = yield* Effect.flip(harness.client.channel("room", { broadcast: { replay: { since: 0 } } }))
        assert.strictEqual(replay._tag, "InvalidArgument")
        assert.include(replay.message, "must be a private channel")
        assert.strictEqual((yield* harness.client.channels).length, 0)
      }))
  })

  describe("rejoin", () => {
    it.effect("phx_error errors the channel; it rejoins after 1 s with a new join ref, Subscribed { rejoined }", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const { connection, join } = yield* joined(harness, channel)
        const gaps = yield* channel.gaps.pipe(
          Stream.take(1),
          Stream.runCollect,
          Effect.forkChild({ startImmediately: true })
        )
        const lost = yield* statusesUntil(channel, "Rejoining")
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: join.ref,
          topic: join.topic,
          event: "phx_error",
          payload: {}
        })
        const [subscribed, errored, rejoining] = yield* Fiber.join(lost)
        assert.strictEqual(subscribed?._tag, "Subscribed")
        assert.strictEqual(errored?._tag === "Errored" && errored.reason, "channel crashed on the server")
        assert.strictEqual(rejoining?._tag === "Rejoining" && Duration.toMillis(rejoining.delay), 1000)
        const back = yield* statusesUntil(channel, "Subscribed")
        yield* TestClock.adjust("1 second")
        const rejoin = yield* nextOf(connection, "phx_join")
        assert.notStrictEqual(rejoin.ref, join.ref)
        assert.strictEqual(rejoin.joinRef, rejoin.ref)
        yield* reply(connection, rejoin, "ok", { postgres_changes: [] })
        const after = (yield* Fiber.join(back)).at(-1)!
        assert.strictEqual(after._tag, "Subscribed")
        if (after._tag === "Subscribed") {
          assert.isTrue(after.rejoined)
          assert.strictEqual(Duration.toMillis(after.downtime), 1000)
        }
        const [gap] = yield* Fiber.join(gaps)
        assert.strictEqual(Duration.toMillis(gap!.downtime), 1000)
        assert.strictEqual(gap!.replayed, 0)
        assert.isFalse(gap!.complete)
        assert.include(gap!.reason, "no replay")
      }))

    it.effect("after a socket drop, the channel rejoins on reconnect with a freshly fetched token", () =>
      Effect.gen(function*() {
        let fetches = 0
        const tokenLayer = AccessToken.layerEffect(Effect.sync(() => `token-${++fetches}`))
        const harness = yield* setup({}, tokenLayer)
        const channel = yield* harness.client.channel("room")
        const rejoinsBefore = (yield* Metric.value(RealtimeChannel.metrics.rejoins)).count
        const { connection, join } = yield* joined(harness, channel)
        assert.strictEqual((join.payload as { access_token: string }).access_token, "token-1")
        yield* connection.terminate
        yield* awaitStatus(channel, "Errored")
        yield* TestClock.adjust("1 second")
        const second = yield* Queue.take(harness.server.connections)
        const rejoin = yield* nextOf(second, "phx_join")
        assert.strictEqual((rejoin.payload as { access_token: string }).access_token, "token-2")
        yield* reply(second, rejoin, "ok", { postgres_changes: [] })
        const status = yield* awaitStatus(channel, "Subscribed")
        assert.isTrue(status._tag === "Subscribed" && status.rejoined)
        assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.rejoins)).count - rejoinsBefore, 1)
      }))

    it.effect("replay after a rejoin: replayed broadcasts arrive once, and the gap counts them once they end", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const duplicatesBefore = (yield* Metric.value(RealtimeChannel.metrics.duplicates)).count
        const channel = yield* harness.client.channel("room", { private: true, broadcast: { replay: { since: 0 } } })
        const received = yield* channel.broadcast("*").pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
        const gaps = yield* channel.gaps.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
        const { connection, join } = yield* joined(harness, channel)
        const stored = (id: string, replayed: boolean): Protocol.Message => ({
          joinRef: null,
          ref: null,
          topic: "realtime:room",
          event: "broadcast",
          payload: { type: "broadcast", event: "e", payload: { id }, meta: replayed ? { id, replayed } : { id } }
        })
        yield* serverSend(connection, stored("m1", false))
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: join.ref,
          topic: join.topic,
          event: "phx_error",
          payload: {}
        })
        yield* awaitStatus(channel, "Rejoining")
        yield* TestClock.adjust("1 second")
        const rejoin = yield* nextOf(connection, "phx_join")
        const config = (rejoin.payload as { config: { broadcast: { replay: { since: number } } } }).config
        assert.strictEqual(config.broadcast.replay.since, 0)
        yield* reply(connection, rejoin, "ok", { postgres_changes: [] })
        yield* awaitStatus(channel, "Subscribed")
        // the server replays what it stored since: m1 had arrived already
        yield* serverSend(connection, stored("m1", true))
        yield* serverSend(connection, stored("m2", true))
        const events = yield* Fiber.join(received)
        assert.deepStrictEqual(events.map((b) => [b.meta?.id, b.meta?.replayed ?? false]), [["m1", false], [
          "m2",
          true
        ]])
        yield* TestClock.adjust("1 second")
        const [gap] = yield* Fiber.join(gaps)
        assert.deepStrictEqual([gap!.replayed, gap!.complete, gap!.reason], [1, true, ""])
        assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.duplicates)).count - duplicatesBefore, 1)
      }))

    it.effect("a permanent rejection on rejoin stops the channel: no resubscribe loop", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const { connection, join } = yield* joined(harness, channel)
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: join.ref,
          topic: join.topic,
          event: "phx_close",
          payload: {}
        })
        yield* awaitStatus(channel, "Rejoining")
        yield* TestClock.adjust("1 second")
        const rejoin = yield* nextOf(connection, "phx_join")
        yield* reply(connection, rejoin, "error", { reason: "Unauthorized: You do not have permissions" })
        const closed = yield* awaitStatus(channel, "Closed")
        assert.include(closed._tag === "Closed" ? closed.reason : "", "Unauthorized")
        yield* TestClock.adjust("1 minute")
        assert.isTrue(Option.isNone(
          yield* Queue.poll(connection.sent).pipe(
            Effect.map(
              Option.filter((frame) => Result.getOrThrow(Protocol.serverV2.decode(frame)).event === "phx_join")
            )
          )
        ))
      }))
  })

  describe("broadcast", () => {
    it.effect("typed streams decode with the schema; a mismatch is skipped and counted", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const failuresBefore = (yield* Metric.value(RealtimeChannel.metrics.decodeFailures)).count
        const channel = yield* harness.client.channel("room")
        const typed = yield* channel.broadcast(Cursor).pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
        const all = yield* channel.broadcast("*").pipe(Stream.take(4), Stream.runCollect, Effect.forkChild)
        const { connection } = yield* joined(harness, channel)
        yield* serverSend(connection, broadcastFrame("realtime:room", "cursor", { x: 1, y: 2 }))
        yield* serverSend(connection, broadcastFrame("realtime:room", "cursor", { x: "bad" }))
        yield* connection.send(Result.getOrThrow(Protocol.encodeUserBroadcast({
          topic: "realtime:room",
          event: "Cursor",
          payload: { x: 3, y: 4 },
          meta: { id: "m1" }
        })))
        yield* connection.send(Result.getOrThrow(Protocol.encodeUserBroadcast({
          topic: "realtime:room",
          event: "bin",
          payload: new Uint8Array([1, 2, 3])
        })))
        assert.deepStrictEqual(yield* Fiber.join(typed), [
          { event: "cursor", payload: { x: 1, y: 2 }, meta: undefined },
          { event: "Cursor", payload: { x: 3, y: 4 }, meta: { id: "m1" } }
        ])
        const everything = yield* Fiber.join(all)
        assert.deepStrictEqual(everything.map((b) => b.event), ["cursor", "cursor", "Cursor", "bin"])
        assert.deepStrictEqual(everything[3]!.payload, new Uint8Array([1, 2, 3]))
        assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.decodeFailures)).count - failuresBefore, 1)
      }))

    it.effect("onDecodeError: \"fail\" emits what came before the mismatch, then fails with PayloadDecodeError", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const typed = yield* channel.broadcast(Cursor, { onDecodeError: "fail" }).pipe(
          Stream.runCollect,
          Effect.flip,
          Effect.forkChild
        )
        const before = yield* channel.broadcast(Cursor, { onDecodeError: "fail" }).pipe(
          Stream.take(1),
          Stream.runCollect,
          Effect.forkChild
        )
        const { connection } = yield* joined(harness, channel)
        yield* serverSend(connection, broadcastFrame("realtime:room", "cursor", { x: 1, y: 2 }))
        yield* serverSend(connection, broadcastFrame("realtime:room", "cursor", { x: "bad" }))
        const error = yield* Fiber.join(typed)
        assert.instanceOf(error, RealtimeError.PayloadDecodeError)
        assert.strictEqual(error.topic, "realtime:room")
        assert.strictEqual(error.event, "cursor")
        assert.isDefined(error.issue)
        assert.include(error.message, "does not match its schema")
        assert.deepStrictEqual(yield* Fiber.join(before), [{
          event: "cursor",
          payload: { x: 1, y: 2 },
          meta: undefined
        }])
      }))

    it.effect("a stream that falls behind its bufferSize drops the newest events, counted", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const droppedBefore = (yield* Metric.value(RealtimeChannel.metrics.dropped)).count
        const channel = yield* harness.client.channel("room", {}, { bufferSize: 2 })
        const latch = yield* Deferred.make<void>()
        const received: Array<unknown> = []
        yield* channel.broadcast("e").pipe(
          Stream.runForEach((b) => Effect.andThen(Deferred.await(latch), Effect.sync(() => received.push(b.payload)))),
          Effect.forkChild
        )
        const { connection } = yield* joined(harness, channel)
        yield* serverSend(connection, broadcastFrame("realtime:room", "e", 0))
        yield* nextIoTurn
        for (let i = 1; i <= 5; i++) {
          yield* serverSend(connection, broadcastFrame("realtime:room", "e", i))
          yield* nextIoTurn
        }
        yield* Deferred.succeed(latch, void 0)
        yield* nextIoTurn
        yield* Effect.yieldNow
        assert.deepStrictEqual(received, [0, 1, 2])
        assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.dropped)).count - droppedBefore, 3)
      }))

    it.effect("send without ack writes a kind-3 frame; a payload that does not encode is InvalidArgument", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const { connection, join } = yield* joined(harness, channel)
        yield* channel.send(Cursor, { x: 1, y: 2 })
        const frame = yield* Queue.take(connection.sent)
        assert.instanceOf(frame, Uint8Array)
        assert.strictEqual((frame as Uint8Array)[0], 3)
        const message = Result.getOrThrow(Protocol.serverV2.decode(frame))
        assert.deepStrictEqual(message, {
          joinRef: join.ref,
          ref: message.ref,
          topic: "realtime:room",
          event: "broadcast",
          payload: { type: "broadcast", event: "cursor", payload: { x: 1, y: 2 } }
        })
        const invalid = yield* Effect.flip(channel.send(Cursor, { x: "no" } as never))
        assert.strictEqual(invalid._tag, "InvalidArgument")
      }))

    it.effect("send with ack waits for the reply; payload_size_exceeded is PayloadTooLarge; no reply is PushTimeout", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", { broadcast: { ack: true } })
        const { connection } = yield* joined(harness, channel)
        const first = yield* Effect.forkChild(channel.send("e", { a: 1 }))
        const pushed = yield* next(connection)
        yield* Effect.yieldNow
        assert.isUndefined(first.pollUnsafe(), "waits for the ack")
        yield* reply(connection, pushed, "ok")
        yield* Fiber.join(first)
        const second = yield* Effect.forkChild(Effect.flip(channel.send("e", { big: true })))
        yield* reply(connection, yield* next(connection), "error", "payload_size_exceeded")
        assert.strictEqual((yield* Fiber.join(second))._tag, "PayloadTooLarge")
        const third = yield* Effect.forkChild(Effect.flip(channel.send("e", {}, { timeout: "2 seconds" })))
        yield* next(connection)
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual((yield* Fiber.join(third))._tag, "PushTimeout")
      }))

    it.effect("not joined and no HTTP layer: send fails with ChannelClosed instead of hanging", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const error = yield* Effect.flip(channel.send("e", {}))
        assert.strictEqual(error._tag, "ChannelClosed")
      }))
  })

  describe("presence", () => {
    it.effect("track pushes the meta; events and state follow presence_state and presence_diff", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", { presence: { key: "ada" } })
        const view = channel.presence(Schema.Struct({ name: Schema.String }))
        const events = yield* view.events.pipe(Stream.take(6), Stream.runCollect, Effect.forkChild)
        const { connection, join } = yield* joined(harness, channel)
        const invalid = yield* Effect.flip(channel.track([] as never))
        assert.strictEqual(invalid._tag, "InvalidArgument")
        const tracking = yield* Effect.forkChild(view.track({ name: "Ada" }))
        const track = yield* nextOf(connection, "presence")
        assert.deepStrictEqual(track.payload, { type: "presence", event: "track", payload: { name: "Ada" } })
        yield* reply(connection, track, "ok")
        yield* Fiber.join(tracking)
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: null,
          topic: join.topic,
          event: "presence_state",
          payload: { ada: { metas: [{ phx_ref: "r1", name: "Ada" }] } }
        })
        yield* serverSend(connection, {
          joinRef: null,
          ref: null,
          topic: join.topic,
          event: "presence_diff",
          payload: { joins: { bob: { metas: [{ phx_ref: "r2", name: "Bob" }] } }, leaves: {} }
        })
        yield* serverSend(connection, {
          joinRef: null,
          ref: null,
          topic: join.topic,
          event: "presence_diff",
          payload: { joins: {}, leaves: { ada: { metas: [{ phx_ref: "r1", name: "Ada" }] } } }
        })
        const received = yield* Fiber.join(events)
        assert.deepStrictEqual(
          received.map((e) => e._tag === "Sync" ? `Sync ${[...e.state.keys()].join(",")}` : `${e._tag} ${e.key}`),
          ["Join ada", "Sync ada", "Join bob", "Sync ada,bob", "Leave ada", "Sync bob"]
        )
        const state = yield* view.state
        assert.deepStrictEqual([...state.keys()], ["bob"])
        assert.deepStrictEqual(state.get("bob"), [{ name: "Bob", presence_ref: "r2" }])
        assert.deepStrictEqual(yield* view.occupancy, { keys: 1, connections: 1 })
        const untracking = yield* Effect.forkChild(channel.untrack())
        const untrack = yield* nextOf(connection, "presence")
        assert.deepStrictEqual(untrack.payload, { type: "presence", event: "untrack" })
        yield* reply(connection, untrack, "ok")
        yield* Fiber.join(untracking)
      }))

    it.effect("a typed track whose meta does not encode fails with InvalidArgument and sends nothing", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", { presence: { key: "ada" } })
        const view = channel.presence(Schema.Struct({ name: Schema.String }))
        const { connection } = yield* joined(harness, channel)
        const error = yield* Effect.flip(view.track({ name: 1 } as never))
        assert.strictEqual(error._tag, "InvalidArgument")
        assert.isTrue(Option.isNone(yield* Queue.poll(connection.sent)))
      }))

    it.effect("occupancyChanges counts keys and connections without repeating equal counts", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", { presence: { key: "me" } })
        const changes = yield* channel.presence().occupancyChanges.pipe(
          Stream.take(3),
          Stream.runCollect,
          Effect.forkChild({ startImmediately: true })
        )
        const { connection, join } = yield* joined(harness, channel)
        const meta = (ref: string) => ({ phx_ref: ref })
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: null,
          topic: join.topic,
          event: "presence_state",
          payload: { a: { metas: [meta("1"), meta("2")] } }
        })
        yield* nextIoTurn
        // a diff that changes no count is not repeated
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: null,
          topic: join.topic,
          event: "presence_diff",
          payload: { joins: { a: { metas: [meta("3")] } }, leaves: { a: { metas: [meta("2")] } } }
        })
        yield* nextIoTurn
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: null,
          topic: join.topic,
          event: "presence_diff",
          payload: { joins: { b: { metas: [meta("4")] } }, leaves: {} }
        })
        assert.deepStrictEqual(yield* Fiber.join(changes), [
          { keys: 0, connections: 0 },
          { keys: 1, connections: 2 },
          { keys: 2, connections: 3 }
        ])
      }))
  })
})

describe("RealtimeClient (Effect 4)", () => {
  describe("registry", () => {
    it.effect("the client carries its type id; one channel per topic, with or without the prefix", () =>
      Effect.gen(function*() {
        const { client } = yield* setup()
        assert.isTrue(RealtimeClient.isRealtimeClient(client))
        assert.isFalse(RealtimeClient.isRealtimeClient({ connect: client.connect, channel: client.channel }))
        const a = yield* client.channel("room")
        const b = yield* client.channel("realtime:room")
        assert.strictEqual(a, b)
        assert.deepStrictEqual((yield* client.channels).map((c) => c.topic), ["realtime:room"])
      }))

    it.effect("the same topic with the same config shares one join; another config is refused and creates nothing", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const a = yield* harness.client.channel("shared", { broadcast: { self: true } })
        const b = yield* harness.client.channel("shared", { broadcast: { self: true } })
        assert.strictEqual(a, b)
        const conflict = yield* Effect.flip(harness.client.channel("shared", { broadcast: { self: false } }))
        assert.strictEqual(conflict._tag, "InvalidArgument")
        assert.include(conflict.message, "another config")
        assert.include(conflict.message, "realtime:shared")
        const { connection } = yield* joined(harness, a)
        yield* b.subscribe
        assert.isTrue(Option.isNone(yield* Queue.poll(connection.sent)), "no second join")
        assert.strictEqual((yield* harness.client.channels).length, 1)
      }))

    it.effect("a channel lives while any scope holds it: the last release leaves and frees the topic", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const first = yield* Scope.make()
        const second = yield* Scope.make()
        const channel = yield* harness.client.channel("room").pipe(Scope.provide(first))
        assert.strictEqual(yield* harness.client.channel("room").pipe(Scope.provide(second)), channel)
        const { connection } = yield* joined(harness, channel)

        yield* Scope.close(first, Exit.void)
        assert.strictEqual((yield* channel.status)._tag, "Subscribed", "released by one scope of two")

        yield* Scope.close(second, Exit.void)
        const leave = yield* nextOf(connection, "phx_leave")
        assert.strictEqual(leave.topic, "realtime:room")
        assert.strictEqual((yield* channel.status)._tag, "Closed")
        assert.deepStrictEqual(yield* harness.client.channels, [])
        const other = yield* harness.client.channel("room", { private: true })
        assert.notStrictEqual(other, channel)
      }))

    it.effect("removeChannel leaves at once whatever holds it and ends its streams; it refuses to subscribe", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const events = yield* channel.broadcast("e").pipe(Stream.runCollect, Effect.forkChild)
        const statuses = yield* channel.statusChanges.pipe(
          Stream.runCollect,
          Effect.forkChild({ startImmediately: true })
        )
        const { connection } = yield* joined(harness, channel)
        yield* harness.client.removeChannel(channel)
        yield* nextOf(connection, "phx_leave")
        assert.strictEqual((yield* Fiber.join(events)).length, 0, "its streams end")
        assert.deepStrictEqual((yield* Fiber.join(statuses)).map((s) => s._tag), [
          "Idle",
          "Joining",
          "Subscribed",
          "Closed"
        ])
        assert.deepStrictEqual(yield* harness.client.channels, [])
        const error = yield* Effect.flip(channel.subscribe)
        assert.strictEqual(error._tag, "ChannelClosed")
        // removing it again is a no-op, and so is removing another client's channel
        yield* harness.client.removeChannel(channel)
        const other = yield* setup()
        const theirs = yield* other.client.channel("room")
        yield* harness.client.removeChannel(theirs)
        assert.deepStrictEqual((yield* other.client.channels).map((c) => c.topic), ["realtime:room"])
      }))

    it.effect("removeAllChannels leaves every channel and closes the socket", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const a = yield* harness.client.channel("a")
        const b = yield* harness.client.channel("b")
        const subscribing = yield* Effect.forkChild(Effect.all([a.subscribe, b.subscribe], { concurrency: 2 }))
        const connection = yield* Queue.take(harness.server.connections)
        yield* reply(connection, yield* nextOf(connection, "phx_join"), "ok", { postgres_changes: [] })
        yield* reply(connection, yield* nextOf(connection, "phx_join"), "ok", { postgres_changes: [] })
        yield* Fiber.join(subscribing)
        yield* harness.client.removeAllChannels
        const leaves = [(yield* nextOf(connection, "phx_leave")).topic, (yield* nextOf(connection, "phx_leave")).topic]
        assert.sameMembers(leaves, ["realtime:a", "realtime:b"])
        assert.deepStrictEqual(yield* harness.client.channels, [])
        assert.strictEqual((yield* harness.client.state)._tag, "Closed")
      }))
  })

  describe("idle disconnect", () => {
    it.effect("closing the subscription's scope leaves; the socket closes disconnectOnEmptyAfter later, not before", () =>
      Effect.gen(function*() {
        const harness = yield* setup({ disconnectOnEmptyAfter: "30 seconds" })
        const scope = yield* Scope.make()
        const channel = yield* harness.client.channel("room")
        const fiber = yield* Effect.forkChild(Scope.provide(channel.subscribe, scope))
        const connection = yield* Queue.take(harness.server.connections)
        const join = yield* nextOf(connection, "phx_join")
        yield* reply(connection, join, "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        yield* Scope.close(scope, Exit.void)
        const leave = yield* nextOf(connection, "phx_leave")
        assert.deepStrictEqual([leave.joinRef, leave.topic, leave.payload], [join.ref, "realtime:room", {}])
        assert.deepStrictEqual(yield* channel.status, RealtimeChannel.ChannelStatus.Closed({ reason: "left" }))
        yield* TestClock.adjust("29 seconds")
        assert.strictEqual((yield* harness.client.state)._tag, "Open")
        yield* TestClock.adjust("1 second")
        const closed = yield* Deferred.await(connection.closed)
        assert.strictEqual(closed.code, 1000)
        assert.strictEqual((yield* harness.client.state)._tag, "Closed")
      }))

    it.effect("a subscribe within the grace period cancels the idle disconnect and reuses the socket", () =>
      Effect.gen(function*() {
        // heartbeats far apart: this fake server does not answer them
        const harness = yield* setup({ disconnectOnEmptyAfter: "30 seconds" }, Heartbeat.layer({ interval: "1 hour" }))
        const scope = yield* Scope.make()
        const channel = yield* harness.client.channel("room")
        const fiber = yield* Effect.forkChild(Scope.provide(channel.subscribe, scope))
        const connection = yield* Queue.take(harness.server.connections)
        yield* reply(connection, yield* nextOf(connection, "phx_join"), "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        yield* Scope.close(scope, Exit.void)
        yield* TestClock.adjust("20 seconds")
        const again = yield* Effect.forkChild(channel.subscribe)
        yield* reply(connection, yield* nextOf(connection, "phx_join"), "ok", { postgres_changes: [] })
        yield* Fiber.join(again)
        yield* TestClock.adjust("1 minute")
        assert.strictEqual((yield* harness.client.state)._tag, "Open")
        assert.strictEqual(yield* Ref.get(harness.server.attempts), 1, "one socket")
      }))

    it.effect("disconnectOnEmptyAfter 0 closes the socket as the last channel leaves", () =>
      Effect.gen(function*() {
        const harness = yield* setup({ disconnectOnEmptyAfter: 0 })
        const scope = yield* Scope.make()
        const channel = yield* harness.client.channel("room")
        const fiber = yield* Effect.forkChild(Scope.provide(channel.subscribe, scope))
        const connection = yield* Queue.take(harness.server.connections)
        yield* reply(connection, yield* nextOf(connection, "phx_join"), "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        yield* Scope.close(scope, Exit.void)
        const closed = yield* Deferred.await(connection.closed)
        assert.strictEqual(closed.code, 1000)
        assert.strictEqual((yield* harness.client.state)._tag, "Closed")
      }))
  })
})
