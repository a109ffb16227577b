import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Socket from "@effect/platform/Socket"
import { assert, describe, it } from "@effect/vitest"
import {
  Chunk,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  Queue,
  Ref,
  Schema,
  Scope,
  Stream,
  TestClock
} from "effect"
import * as AccessToken from "../src/AccessToken.js"
import * as HttpBroadcast from "../src/HttpBroadcast.js"
import * as Protocol from "../src/Protocol.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeError from "../src/RealtimeError.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"
import { awaitStatus, statusesUntil } from "./support/status.js"

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
const next = (connection: FakeSocket.FakeConnection) =>
  Effect.map(Queue.take(connection.sent), (frame) => Either.getOrThrow(Protocol.serverV2.decode(frame)))

const nextOf = (connection: FakeSocket.FakeConnection, event: string): Effect.Effect<Protocol.Message> =>
  Effect.flatMap(next(connection), (m) => m.event === event ? Effect.succeed(m) : nextOf(connection, event))

const serverSend = (connection: FakeSocket.FakeConnection, message: Protocol.Message) =>
  connection.send(Either.getOrThrow(Protocol.serverV2.encode(message)))

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

/** Lets the event loop finish its current I/O turn (the streams' end-of-turn wake-ups run). */
const nextIoTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** Subscribes a channel and answers its join: returns the connection and the join message. */
const joined = (
  harness: Harness,
  channel: RealtimeChannel.RealtimeChannel,
  response: unknown = { postgres_changes: [] }
) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(channel.subscribe)
    const connection = yield* Queue.take(harness.server.connections)
    const join = yield* nextOf(connection, "phx_join")
    yield* reply(connection, join, "ok", response)
    yield* Fiber.join(fiber)
    return { connection, join }
  })

describe("RealtimeChannel", () => {
  it.scoped("subscribe sends the join payload realtime-js sends and succeeds on ok", () =>
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
      assert.strictEqual(channel.topic, "realtime:room1")
      assert.strictEqual((yield* channel.status)._tag, "Idle")
      const statuses = yield* channel.statusChanges.pipe(Stream.take(3), Stream.runCollect, Effect.fork)
      yield* Effect.yieldNow()
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
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(yield* Fiber.join(statuses)).map((s) => s._tag),
        ["Idle", "Joining", "Subscribed"]
      )
      assert.deepStrictEqual(yield* channel.bindingIds, Option.some([[111], [222]]))
    }))

  it.scoped("a join rejected by the server fails subscribe with the server's code and reason", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("secret", { private: true })
      const fiber = yield* Effect.fork(Effect.flip(channel.subscribe))
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

  // every join error string's code and expiry is the core's (test/core/channelRejection.test.ts)
  it("a join error reply is the core's rejection as a tagged error: JoinRejected with its code, or TokenExpired", () => {
    const rejected = RealtimeError.joinRejected("realtime:x", {
      reason: "PrivateOnly: This project only allows private channels"
    })
    assert.instanceOf(rejected, RealtimeError.JoinRejected)
    assert.deepInclude(rejected, {
      topic: "realtime:x",
      code: "PrivateOnly",
      reason: "PrivateOnly: This project only allows private channels"
    })
    assert.include(rejected.message, "PrivateOnly: This project only allows private channels")
    const expired = RealtimeError.joinRejected("realtime:x", {
      reason: "InvalidJWTToken: Token has expired 12 seconds ago"
    })
    assert.instanceOf(expired, RealtimeError.TokenExpired)
    assert.deepInclude(expired, { topic: "realtime:x", reason: "InvalidJWTToken: Token has expired 12 seconds ago" })
    const unknown = RealtimeError.joinRejected("realtime:x", "unmatched topic")
    assert.deepInclude(unknown, { _tag: "JoinRejected", code: "Unknown", reason: "unmatched topic" })
  })

  it.scoped("a first join without reply times out, leaves the late join, and is retried after 1 s", () =>
    Effect.gen(function*() {
      const harness = yield* setup({ timeout: "5 seconds" })
      const channel = yield* harness.client.channel("slow")
      const statuses = yield* statusesUntil(channel, "Subscribed")
      const fiber = yield* Effect.fork(channel.subscribe)
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

  it.scoped("a first join that keeps timing out fails subscribe with JoinTimeout after maxRejoinFailures", () =>
    Effect.gen(function*() {
      const harness = yield* setup({ timeout: "5 seconds" })
      const channel = yield* harness.client.channel("slow", {}, { maxRejoinFailures: 3 })
      const fiber = yield* Effect.fork(Effect.flip(channel.subscribe))
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
      assert.include(closed._tag === "Closed" ? closed.reason : "", "gave up after 3 failed joins")
    }))

  it.scoped("a subscriber that gives up before the reply leaves the join that may still land", () =>
    Effect.gen(function*() {
      const harness = yield* setup({ timeout: "5 seconds" })
      const channel = yield* harness.client.channel("slow")
      const fiber = yield* Effect.fork(channel.subscribe.pipe(Effect.timeoutOption("1 second")))
      const connection = yield* Queue.take(harness.server.connections)
      const join = yield* nextOf(connection, "phx_join")
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* Fiber.join(fiber)))
      const leave = yield* nextOf(connection, "phx_leave")
      assert.strictEqual(leave.joinRef, join.ref)
      assert.deepStrictEqual(yield* channel.status, RealtimeChannel.ChannelStatus.Closed({ reason: "the join failed" }))
    }))

  it.scoped("closing the subscription's scope leaves; the socket closes after the idle delay", () =>
    Effect.gen(function*() {
      const harness = yield* setup({ disconnectOnEmptyAfter: "50 seconds" })
      const scope = yield* Scope.make()
      const channel = yield* harness.client.channel("room")
      const fiber = yield* Effect.fork(Scope.extend(channel.subscribe, scope))
      const connection = yield* Queue.take(harness.server.connections)
      const join = yield* nextOf(connection, "phx_join")
      yield* reply(connection, join, "ok", { postgres_changes: [] })
      yield* Fiber.join(fiber)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      const leave = yield* nextOf(connection, "phx_leave")
      assert.deepStrictEqual([leave.joinRef, leave.topic, leave.payload], [join.ref, "realtime:room", {}])
      yield* reply(connection, leave, "ok")
      yield* Fiber.join(closing)
      const status = yield* channel.status
      assert.deepStrictEqual(status, RealtimeChannel.ChannelStatus.Closed({ reason: "left" }))
      yield* TestClock.adjust("49 seconds")
      assert.strictEqual((yield* harness.client.state)._tag, "Open")
      yield* TestClock.adjust("1 second")
      const closed = yield* Deferred.await(connection.closed)
      assert.strictEqual(closed.code, 1000)
      assert.strictEqual((yield* harness.client.state)._tag, "Closed")
    }))

  it.scoped("an empty or blank presence key, or replay on a public channel, is an InvalidArgument", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      for (const key of ["", "  "]) {
        // not Effect.flip: a channel made by mistake would be the failure vitest tries to print
        const invalid = yield* Effect.either(harness.client.channel("room", { presence: { key } }))
        assert.isTrue(Either.isLeft(invalid), `key ${JSON.stringify(key)} accepted`)
        if (Either.isLeft(invalid)) {
          assert.strictEqual(invalid.left._tag, "InvalidArgument")
          assert.include(invalid.left.message, "presence.key")
        }
      }
      const replay = yield* Effect.flip(harness.client.channel("room", { broadcast: { replay: { since: 0 } } }))
      assert.strictEqual(replay._tag, "InvalidArgument")
      assert.include(replay.message, "must be a private channel")
      assert.strictEqual((yield* harness.client.channels).length, 0)
    }))

  it.scoped("the same topic with the same config shares one join; another config is an error", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const a = yield* harness.client.channel("shared", { broadcast: { self: true } })
      const b = yield* harness.client.channel("shared", { broadcast: { self: true } })
      assert.strictEqual(a, b)
      const conflict = yield* Effect.flip(harness.client.channel("shared", { broadcast: { self: false } }))
      assert.strictEqual(conflict._tag, "InvalidArgument")
      assert.include(conflict.message, "another config")
      const { connection } = yield* joined(harness, a)
      yield* b.subscribe
      assert.isTrue(Option.isNone(yield* Queue.poll(connection.sent)), "no second join")
      assert.strictEqual((yield* harness.client.channels).length, 1)
    }))

  it.scoped("phx_close and phx_error of an earlier join are ignored", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("room")
      const { connection, join } = yield* joined(harness, channel)
      const stale = "999"
      yield* serverSend(connection, { joinRef: stale, ref: stale, topic: join.topic, event: "phx_close", payload: {} })
      yield* serverSend(connection, { joinRef: stale, ref: stale, topic: join.topic, event: "phx_error", payload: {} })
      // a frame of the current join after them proves they were processed
      const events = yield* channel.system.pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* Effect.yieldNow()
      yield* serverSend(connection, {
        joinRef: join.ref,
        ref: null,
        topic: join.topic,
        event: "system",
        payload: { extension: "postgres_changes", status: "ok", message: "Subscribed to PostgreSQL", channel: "room" }
      })
      const [system] = Chunk.toReadonlyArray(yield* Fiber.join(events))
      assert.strictEqual(system!.message, "Subscribed to PostgreSQL")
      assert.strictEqual((yield* channel.status)._tag, "Subscribed")
    }))

  it.scoped("phx_error errors the channel and it rejoins after 1 s with a new join ref", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("room")
      const { connection, join } = yield* joined(harness, channel)
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
      assert.strictEqual(rejoining._tag === "Rejoining" && Duration.toMillis(rejoining.delay), 1000)
      yield* TestClock.adjust("1 second")
      const rejoin = yield* nextOf(connection, "phx_join")
      assert.notStrictEqual(rejoin.ref, join.ref)
      assert.strictEqual(rejoin.joinRef, rejoin.ref)
      yield* reply(connection, rejoin, "ok", { postgres_changes: [] })
      yield* awaitStatus(channel, "Subscribed")
    }))

  it.scoped("replay after a rejoin: replayed broadcasts arrive once, and the gap counts them once they end", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const duplicatesBefore = (yield* Metric.value(RealtimeChannel.metrics.duplicates)).count
      const channel = yield* harness.client.channel("room", { private: true, broadcast: { replay: { since: 0 } } })
      const received = yield* channel.broadcast("*").pipe(Stream.take(2), Stream.runCollect, Effect.fork)
      const gaps = yield* channel.gaps.pipe(Stream.take(1), Stream.runCollect, Effect.fork)
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
      const events = Chunk.toReadonlyArray(yield* Fiber.join(received))
      assert.deepStrictEqual(events.map((b) => [b.meta?.id, b.meta?.replayed ?? false]), [["m1", false], [
        "m2",
        true
      ]])
      yield* TestClock.adjust("1 second")
      const [gap] = Chunk.toReadonlyArray(yield* Fiber.join(gaps))
      assert.deepStrictEqual([gap!.replayed, gap!.complete, gap!.reason], [1, true, ""])
      assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.duplicates)).count - duplicatesBefore, 1)
    }))

  it.scoped("after a socket drop, the channel rejoins on reconnect with a freshly fetched token", () =>
    Effect.gen(function*() {
      const fetches = yield* Ref.make(0)
      const tokenLayer = AccessToken.layerEffect(
        Ref.updateAndGet(fetches, (n) => n + 1).pipe(Effect.map((n) => `token-${n}`))
      )
      const harness = yield* setup({}, tokenLayer)
      const channel = yield* harness.client.channel("room")
      const { connection, join } = yield* joined(harness, channel)
      assert.strictEqual((join.payload as { access_token: string }).access_token, "token-1")
      yield* connection.terminate
      yield* awaitStatus(channel, "Errored")
      yield* TestClock.adjust("1 second")
      const second = yield* Queue.take(harness.server.connections)
      const rejoin = yield* nextOf(second, "phx_join")
      assert.strictEqual((rejoin.payload as { access_token: string }).access_token, "token-2")
      yield* reply(second, rejoin, "ok", { postgres_changes: [] })
      yield* awaitStatus(channel, "Subscribed")
    }))

  it.scoped("a channel closed by the server for an expired token rejoins with a fresh token", () =>
    Effect.gen(function*() {
      const fetches = yield* Ref.make(0)
      const tokenLayer = AccessToken.layerEffect(
        Ref.updateAndGet(fetches, (n) => n + 1).pipe(Effect.map((n) => `t${n}`))
      )
      const harness = yield* setup({}, tokenLayer)
      const channel = yield* harness.client.channel("room")
      const { connection, join } = yield* joined(harness, channel)
      const lost = yield* statusesUntil(channel, "Rejoining")
      yield* serverSend(connection, {
        joinRef: join.ref,
        ref: null,
        topic: join.topic,
        event: "system",
        payload: { extension: "system", status: "error", message: "Token has expired 3 seconds ago", channel: "room" }
      })
      yield* serverSend(connection, {
        joinRef: join.ref,
        ref: join.ref,
        topic: join.topic,
        event: "phx_close",
        payload: {}
      })
      const errored = (yield* Fiber.join(lost)).find((s) => s._tag === "Errored")
      assert.strictEqual(errored?._tag === "Errored" && errored.reason, "Token has expired 3 seconds ago")
      yield* TestClock.adjust("1 second")
      const rejoin = yield* nextOf(connection, "phx_join")
      assert.strictEqual((rejoin.payload as { access_token: string }).access_token, "t2")
      yield* reply(connection, rejoin, "ok", { postgres_changes: [] })
      yield* awaitStatus(channel, "Subscribed")
    }))

  it.scoped("a permanent rejection on rejoin stops the channel: no resubscribe loop", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("room", { private: true })
      const { connection, join } = yield* joined(harness, channel)
      yield* serverSend(connection, {
        joinRef: join.ref,
        ref: null,
        topic: join.topic,
        event: "system",
        payload: {
          extension: "system",
          status: "error",
          message: "You no longer have permission to read from this Channel topic: room",
          channel: "room"
        }
      })
      yield* serverSend(connection, {
        joinRef: join.ref,
        ref: join.ref,
        topic: join.topic,
        event: "phx_close",
        payload: {}
      })
      yield* TestClock.adjust("1 second")
      const rejoin = yield* nextOf(connection, "phx_join")
      yield* reply(connection, rejoin, "error", {
        reason: "Unauthorized: You do not have permissions to read from this Channel topic: room"
      })
      const closed = yield* awaitStatus(channel, "Closed")
      assert.include(closed._tag === "Closed" ? closed.reason : "", "Unauthorized")
      yield* TestClock.adjust("5 minutes")
      const frames = Chunk.toReadonlyArray(yield* Queue.takeAll(connection.sent))
        .map((f) => Either.getOrThrow(Protocol.serverV2.decode(f)).event)
      assert.notInclude(frames, "phx_join")
    }))

  it.scoped("transient rejoin failures back off 1/2/5 s and stop after maxRejoinFailures", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("room", {}, { maxRejoinFailures: 3 })
      const { connection, join } = yield* joined(harness, channel)
      // the join held (a heartbeat interval): losing it is no failure
      yield* TestClock.adjust("25 seconds")
      yield* serverSend(connection, {
        joinRef: join.ref,
        ref: join.ref,
        topic: join.topic,
        event: "phx_error",
        payload: {}
      })
      for (const delay of [1000, 2000, 5000]) {
        yield* TestClock.adjust(delay)
        const rejoin = yield* nextOf(connection, "phx_join")
        yield* reply(connection, rejoin, "error", {
          reason: "RealtimeRestarting: Realtime is restarting, please standby"
        })
      }
      const closed = yield* awaitStatus(channel, "Closed")
      assert.include(closed._tag === "Closed" ? closed.reason : "", "gave up after 3 failed joins")
    }))

  describe("broadcast", () => {
    const Cursor = RealtimeChannel.broadcastEvent("cursor", Schema.Struct({ x: Schema.Number, y: Schema.Number }))

    it.scoped("a stream that falls behind its bufferSize drops the newest events, counted", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const droppedBefore = (yield* Metric.value(RealtimeChannel.metrics.dropped)).count
        const channel = yield* harness.client.channel("room", {}, { bufferSize: 2 })
        // a consumer stuck on its first event: what arrives in later I/O turns waits in its buffer
        const gate = yield* Deferred.make<void>()
        const received: Array<number> = []
        const stream = yield* channel.broadcast("*").pipe(
          Stream.take(3),
          Stream.runForEach((b) =>
            Effect.zipRight(
              Effect.sync(() => received.push((b.payload as { seq: number }).seq)),
              Deferred.await(gate)
            )
          ),
          Effect.fork
        )
        const { connection } = yield* joined(harness, channel)
        for (let seq = 1; seq <= 6; seq++) {
          yield* serverSend(connection, {
            joinRef: null,
            ref: null,
            topic: "realtime:room",
            event: "broadcast",
            payload: { type: "broadcast", event: "tick", payload: { seq } }
          })
          yield* nextIoTurn
        }
        assert.deepStrictEqual(received, [1])
        yield* Deferred.succeed(gate, void 0)
        yield* Fiber.join(stream)
        assert.deepStrictEqual(received, [1, 2, 3])
        assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.dropped)).count - droppedBefore, 3)
      }))

    it.scoped("a consumer that keeps up loses nothing to wake-up batching: 10,000 frames in one turn, bufferSize 16", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const droppedBefore = (yield* Metric.value(RealtimeChannel.metrics.dropped)).count
        const channel = yield* harness.client.channel("room", {}, { bufferSize: 16 })
        let ticks = 0
        // a chunk at a time (Stream.runFold recurses per element of a chunk: 10,000 overflow the stack)
        const stream = yield* channel.broadcast("*").pipe(
          Stream.takeUntil((b) => b.event === "end"),
          Stream.runForEachChunk((chunk) => {
            for (const b of chunk) if (b.event === "tick") ticks++
            return Effect.void
          }),
          Effect.fork
        )
        const { connection } = yield* joined(harness, channel)
        const tick = (seq: number) =>
          Either.getOrThrow(Protocol.serverV2.encode({
            joinRef: null,
            ref: null,
            topic: "realtime:room",
            event: "broadcast",
            payload: { type: "broadcast", event: "tick", payload: { seq } }
          }))
        // one synchronous delivery (one socket task), then the end mark in a later turn
        yield* Effect.sync(() => {
          for (let seq = 1; seq <= 10_000; seq++) Effect.runSync(connection.send(tick(seq)))
        })
        yield* nextIoTurn
        yield* serverSend(connection, {
          joinRef: null,
          ref: null,
          topic: "realtime:room",
          event: "broadcast",
          payload: { type: "broadcast", event: "end", payload: {} }
        })
        yield* Fiber.join(stream)
        assert.strictEqual(ticks, 10_000)
        assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.dropped)).count - droppedBefore, 0)
      }))

    it.scoped("streams text and binary (kind 4) broadcasts, decoded with the schema; mismatches are skipped", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const failuresBefore = (yield* Metric.value(RealtimeChannel.metrics.decodeFailures)).count
        const channel = yield* harness.client.channel("room")
        const typed = yield* channel.broadcast(Cursor).pipe(Stream.take(2), Stream.runCollect, Effect.fork)
        const all = yield* channel.broadcast("*").pipe(Stream.take(4), Stream.runCollect, Effect.fork)
        const { connection } = yield* joined(harness, channel)
        yield* serverSend(connection, {
          joinRef: null,
          ref: null,
          topic: "realtime:room",
          event: "broadcast",
          payload: { type: "broadcast", event: "cursor", payload: { x: 1, y: 2 } }
        })
        yield* serverSend(connection, {
          joinRef: null,
          ref: null,
          topic: "realtime:room",
          event: "broadcast",
          payload: { type: "broadcast", event: "cursor", payload: { x: "bad" } }
        })
        yield* connection.send(Either.getOrThrow(Protocol.encodeUserBroadcast({
          topic: "realtime:room",
          event: "Cursor",
          payload: { x: 3, y: 4 },
          meta: { id: "m1" }
        })))
        yield* connection.send(Either.getOrThrow(Protocol.encodeUserBroadcast({
          topic: "realtime:room",
          event: "bin",
          payload: new Uint8Array([1, 2, 3])
        })))
        const received = Chunk.toReadonlyArray(yield* Fiber.join(typed))
        assert.deepStrictEqual(received, [
          { event: "cursor", payload: { x: 1, y: 2 }, meta: undefined },
          { event: "Cursor", payload: { x: 3, y: 4 }, meta: { id: "m1" } }
        ])
        const everything = Chunk.toReadonlyArray(yield* Fiber.join(all))
        assert.deepStrictEqual(everything.map((b) => b.event), ["cursor", "cursor", "Cursor", "bin"])
        assert.deepStrictEqual(everything[3]!.payload, new Uint8Array([1, 2, 3]))
        // the mismatch was counted (and logged), not delivered
        assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.decodeFailures)).count - failuresBefore, 1)
      }))

    it.scoped("onDecodeError: \"fail\" emits what came before the mismatch, then fails with PayloadDecodeError", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const typed = yield* channel.broadcast(Cursor, { onDecodeError: "fail" }).pipe(
          Stream.runCollect,
          Effect.flip,
          Effect.fork
        )
        const before = yield* channel.broadcast(Cursor, { onDecodeError: "fail" }).pipe(
          Stream.take(1),
          Stream.runCollect,
          Effect.fork
        )
        const { connection } = yield* joined(harness, channel)
        const cursor = (payload: unknown): Protocol.Message => ({
          joinRef: null,
          ref: null,
          topic: "realtime:room",
          event: "broadcast",
          payload: { type: "broadcast", event: "cursor", payload }
        })
        yield* serverSend(connection, cursor({ x: 1, y: 2 }))
        yield* serverSend(connection, cursor({ x: "bad" }))
        const error = yield* Fiber.join(typed)
        assert.instanceOf(error, RealtimeError.PayloadDecodeError)
        assert.strictEqual(error.topic, "realtime:room")
        assert.strictEqual(error.event, "cursor")
        assert.isDefined(error.issue)
        assert.include(error.message, "does not match its schema")
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(before)), [{
          event: "cursor",
          payload: { x: 1, y: 2 },
          meta: undefined
        }])
      }))

    it.scoped("send without ack writes a kind-3 frame; a payload that does not encode is InvalidArgument", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const { connection, join } = yield* joined(harness, channel)
        yield* channel.send(Cursor, { x: 1, y: 2 })
        const frame = yield* Queue.take(connection.sent)
        assert.instanceOf(frame, Uint8Array)
        assert.strictEqual((frame as Uint8Array)[0], 3)
        const message = Either.getOrThrow(Protocol.serverV2.decode(frame))
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

    it.scoped("send with ack waits for the reply; payload_size_exceeded is PayloadTooLarge; no reply is PushTimeout", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", { broadcast: { ack: true } })
        const { connection } = yield* joined(harness, channel)
        const first = yield* Effect.fork(channel.send("e", { a: 1 }))
        const pushed = yield* next(connection)
        yield* Effect.yieldNow()
        assert.isTrue(Option.isNone(yield* Fiber.poll(first)), "waits for the ack")
        yield* reply(connection, pushed, "ok")
        yield* Fiber.join(first)
        const second = yield* Effect.fork(Effect.flip(channel.send("e", { big: true })))
        yield* reply(connection, yield* next(connection), "error", "payload_size_exceeded")
        assert.strictEqual((yield* Fiber.join(second))._tag, "PayloadTooLarge")
        const third = yield* Effect.fork(Effect.flip(channel.send("e", {}, { timeout: "2 seconds" })))
        yield* next(connection)
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual((yield* Fiber.join(third))._tag, "PushTimeout")
      }))

    it.scoped("not joined: send goes over HTTP when the HttpBroadcast layer is provided", () =>
      Effect.gen(function*() {
        const requests: Array<{ url: string; body: unknown }> = []
        const http = HttpClient.make((request) =>
          Effect.sync(() => {
            const text = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
            requests.push({ url: request.url, body: text.startsWith("{") ? JSON.parse(text) : null })
            return HttpClientResponse.fromWeb(request, new Response(null, { status: 202 }))
          })
        )
        const httpLayer = HttpBroadcast.layer({ url: URL, apiKey: "anon" }).pipe(
          Layer.provide(Layer.succeed(HttpClient.HttpClient, http)),
          Layer.provide(AccessToken.layerNone),
          Layer.orDie
        )
        const harness = yield* setup({}, httpLayer)
        const channel = yield* harness.client.channel("room")
        yield* channel.send("hello", { a: 1 })
        // the batch endpoint, as realtime-js: every server version has it (the single-event one
        // exists from v2.97.0 on)
        assert.deepStrictEqual(requests, [{
          url: "http://realtime.test/api/broadcast",
          body: { messages: [{ topic: "room", event: "hello", payload: { a: 1 }, private: false }] }
        }])
        // bytes need the single-event endpoint
        yield* channel.send("bytes", new Uint8Array([1, 2]))
        assert.strictEqual(requests[1]?.url, "http://realtime.test/api/broadcast/room/events/bytes")
        assert.strictEqual(yield* Ref.get(harness.server.attempts), 0, "no socket was opened")
      }))

    it.scoped("not joined and no HTTP layer: send fails with ChannelClosed instead of hanging", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const error = yield* Effect.flip(channel.send("e", {}))
        assert.strictEqual(error._tag, "ChannelClosed")
      }))
  })

  describe("postgres changes", () => {
    const todos = { event: "INSERT", schema: "public", table: "todos" } as const
    const all = { event: "*", schema: "public", table: "items", filter: "owner=eq.7" } as const

    it.scoped("matches server ids by content (reordered reply) and keeps int8 above 2^53 exact", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("db", { postgresChanges: [todos, all] })
        const Todo = Schema.Struct({ id: Schema.String, title: Schema.String })
        const inserted = yield* channel.postgresChanges(todos, Todo).pipe(
          Stream.take(1),
          Stream.runCollect,
          Effect.fork
        )
        const items = yield* channel.postgresChanges(all).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
        const { connection } = yield* joined(harness, channel, {
          postgres_changes: [
            { id: 22, event: "*", schema: "public", table: "items", filter: "owner=eq.7" },
            { id: 11, event: "INSERT", schema: "public", table: "todos" }
          ]
        })
        assert.deepStrictEqual(yield* channel.bindingIds, Option.some([[11], [22]]))
        const change = (ids: Array<number>, table: string, type: string, record: object) =>
          serverSend(connection, {
            joinRef: null,
            ref: null,
            topic: "realtime:db",
            event: "postgres_changes",
            payload: {
              ids,
              data: {
                schema: "public",
                table,
                commit_timestamp: "2024-01-01T00:00:00Z",
                type,
                columns: [{ name: "id", type: "int8" }, { name: "title", type: "text" }],
                record,
                errors: null
              }
            }
          })
        yield* change([22], "items", "UPDATE", { id: "3", title: "not a todo" })
        yield* change([11], "todos", "INSERT", { id: "9007199254740993", title: "big" })
        const [todo] = Chunk.toReadonlyArray(yield* Fiber.join(inserted))
        assert.strictEqual(todo!.eventType, "INSERT")
        assert.deepStrictEqual(todo!.new, { id: "9007199254740993", title: "big" })
        const [item] = Chunk.toReadonlyArray(yield* Fiber.join(items))
        assert.strictEqual(item!.table, "items")
        const missing = yield* Effect.flip(Stream.runDrain(channel.postgresChanges({ event: "DELETE", schema: "x" })))
        assert.strictEqual(missing._tag, "InvalidArgument")
      }))

    it.scoped("an int8 beyond 2^53 sent as a JSON number (as Realtime does) arrives exact", () =>
      Effect.gen(function*() {
        for (const int8 of ["string", "bigint"] as const) {
          const harness = yield* setup({ int8 })
          const channel = yield* harness.client.channel("db", { postgresChanges: [todos] })
          const changes = yield* channel.postgresChanges(todos).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
          const { connection } = yield* joined(harness, channel, {
            postgres_changes: [{ id: 11, event: "INSERT", schema: "public", table: "todos" }]
          })
          // the raw text: a JS number could not even hold this value
          yield* connection.send(
            `[null,null,"realtime:db","postgres_changes",{"ids":[11],"data":{"schema":"public","table":"todos",` +
              `"commit_timestamp":"2024-01-01T00:00:00Z","type":"INSERT","columns":[{"name":"id","type":"int8"},` +
              `{"name":"score","type":"float8"}],"record":{"id":9007199254740993,"score":0.5},"errors":null}}]`
          )
          const [change] = Chunk.toReadonlyArray(yield* Fiber.join(changes))
          assert.deepStrictEqual(change!.new, {
            id: int8 === "string" ? "9007199254740993" : 9007199254740993n,
            score: 0.5
          })
        }
      }))

    it.scoped("a server reply that does not match the bindings fails the join with PostgresBindingMismatch", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("db", { postgresChanges: [todos] })
        const fiber = yield* Effect.fork(Effect.flip(channel.subscribe))
        const connection = yield* Queue.take(harness.server.connections)
        const join = yield* nextOf(connection, "phx_join")
        yield* reply(connection, join, "ok", {
          postgres_changes: [{ id: 1, event: "DELETE", schema: "public", table: "todos" }]
        })
        assert.strictEqual((yield* Fiber.join(fiber))._tag, "PostgresBindingMismatch")
        yield* nextOf(connection, "phx_leave")
      }))
  })

  describe("access tokens", () => {
    it.scoped("the first join waits for the token source (no token-less join)", () =>
      Effect.gen(function*() {
        const tokenLayer = AccessToken.layerEffect(Effect.as(Effect.sleep("3 seconds"), "slow-token"))
        const harness = yield* setup({}, tokenLayer)
        const channel = yield* harness.client.channel("room")
        const fiber = yield* Effect.fork(channel.subscribe)
        yield* TestClock.adjust("3 seconds")
        const connection = yield* Queue.take(harness.server.connections)
        const join = yield* nextOf(connection, "phx_join")
        assert.strictEqual((join.payload as { access_token: string }).access_token, "slow-token")
        yield* reply(connection, join, "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
      }))

    it.scoped("a subscriber interrupted while the join's token is fetched does not strand the others", () =>
      Effect.gen(function*() {
        const tokenLayer = AccessToken.layerEffect(Effect.as(Effect.sleep("3 seconds"), "slow-token"))
        const harness = yield* setup({}, tokenLayer)
        // the socket is open (another channel joined): a subscribe fetches the token in its own fiber
        const other = yield* harness.client.channel("other")
        const warm = yield* Effect.fork(other.subscribe)
        yield* TestClock.adjust("3 seconds")
        const connection = yield* Queue.take(harness.server.connections)
        yield* reply(connection, yield* nextOf(connection, "phx_join"), "ok", { postgres_changes: [] })
        yield* Fiber.join(warm)
        const room = yield* harness.client.channel("room")
        const first = yield* Effect.fork(room.subscribe)
        yield* Effect.yieldNow()
        const second = yield* Effect.fork(room.subscribe)
        yield* Effect.yieldNow()
        // the first subscriber gives up while its fetch is under way: the join is still written
        // (the source's fetch goes on in a fiber of its own)
        const interrupting = yield* Effect.fork(Fiber.interrupt(first))
        yield* TestClock.adjust("3 seconds")
        yield* Fiber.join(interrupting)
        yield* TestClock.adjust("3 seconds")
        const join = yield* nextOf(connection, "phx_join")
        assert.strictEqual(join.topic, "realtime:room")
        assert.strictEqual((join.payload as { access_token: string }).access_token, "slow-token")
        yield* reply(connection, join, "ok", { postgres_changes: [] })
        yield* Fiber.join(second)
      }))

    it.scoped("a token set while the join is on the wire is pushed once joined (the join carried the old one)", () =>
      Effect.gen(function*() {
        const harness = yield* setup({}, AccessToken.layerStatic("t1"))
        const channel = yield* harness.client.channel("room")
        const fiber = yield* Effect.fork(channel.subscribe)
        const connection = yield* Queue.take(harness.server.connections)
        const join = yield* nextOf(connection, "phx_join")
        assert.strictEqual((join.payload as { access_token: string }).access_token, "t1")
        yield* harness.client.setAuth("t2")
        // the client has seen the change (the channel is still joining)
        yield* nextIoTurn
        yield* reply(connection, join, "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        yield* Effect.fork(channel.send("after", {}))
        const push = yield* next(connection)
        assert.deepStrictEqual(
          [push.event, push.joinRef, push.payload],
          ["access_token", join.ref, { access_token: "t2" }]
        )
        assert.strictEqual((yield* next(connection)).event, "broadcast")
      }))

    it.scoped("a token source that never answers: a subscriber can give up, the join goes on with the last token after the join timeout", () =>
      Effect.gen(function*() {
        let calls = 0
        const tokenLayer = AccessToken.layerEffect(
          Effect.suspend(() => ++calls === 1 ? Effect.succeed("t1") : Effect.never)
        )
        const harness = yield* setup({}, tokenLayer)
        const other = yield* harness.client.channel("other")
        const { connection } = yield* joined(harness, other)
        const room = yield* harness.client.channel("room")
        // the socket is open: the subscriber's own fiber asks the source, which never answers
        const impatient = yield* Effect.fork(Effect.timeout(room.subscribe, "5 seconds"))
        yield* TestClock.adjust("5 seconds")
        assert.strictEqual((yield* Effect.flip(Fiber.join(impatient)))._tag, "TimeoutException")
        const patient = yield* Effect.fork(room.subscribe)
        yield* TestClock.adjust("10 seconds")
        const join = yield* nextOf(connection, "phx_join")
        assert.strictEqual(join.topic, "realtime:room")
        assert.strictEqual((join.payload as { access_token: string }).access_token, "t1")
        yield* reply(connection, join, "ok", { postgres_changes: [] })
        yield* Fiber.join(patient)
        assert.strictEqual(calls, 2)
      }))

    it.scoped("a subscribe in an uninterruptible region with a token source that never answers joins after the join timeout", () =>
      Effect.gen(function*() {
        let calls = 0
        const tokens = yield* AccessToken.make({
          fetch: Effect.suspend(() =>
            ++calls === 1 ? Effect.succeed("t1") : calls === 2 ? Effect.never : Effect.succeed("t3")
          )
        })
        const harness = yield* setup({}, Layer.succeed(AccessToken.AccessToken, tokens))
        const other = yield* harness.client.channel("other")
        const { connection } = yield* joined(harness, other)
        const room = yield* harness.client.channel("room")
        // the caller's region is uninterruptible (an acquire, a finalizer): the bounds hold all the same
        const fiber = yield* Effect.fork(Effect.uninterruptible(room.subscribe))
        yield* TestClock.adjust("10 seconds")
        const join = yield* nextOf(connection, "phx_join")
        assert.strictEqual((join.payload as { access_token: string }).access_token, "t1")
        yield* reply(connection, join, "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        // the hung fetch was given up at its own timeout: the next refresh calls the source again
        yield* TestClock.adjust("10 seconds")
        assert.deepStrictEqual(yield* tokens.refresh, Option.some("t3"))
      }))

    it.scoped("a token fetch of a join cycle that ended never answers a later subscribe's join", () =>
      Effect.gen(function*() {
        // the first fetch answers at once, the second after 16 s (past the 10 s join timeout)
        let calls = 0
        const tokenLayer = AccessToken.layerEffect(
          Effect.suspend(() => ++calls === 1 ? Effect.succeed("t1") : Effect.as(Effect.sleep("16 seconds"), "t2")),
          // a slow source, not a failed one (its fetches may take a minute)
          { timeout: "1 minute" }
        )
        const harness = yield* setup({}, tokenLayer)
        const other = yield* harness.client.channel("other")
        const { connection } = yield* joined(harness, other)
        const room = yield* harness.client.channel("room")
        // a subscriber gives up at 5 s: its fetch goes on detached (bounded at 15 s), the channel leaves
        const impatient = yield* Effect.fork(Effect.timeout(room.subscribe, "5 seconds"))
        yield* TestClock.adjust("5 seconds")
        yield* Effect.flip(Fiber.join(impatient))
        yield* TestClock.adjust("3 seconds")
        // a new subscribe at 8 s waits for the same fetch, which answers at 16 s
        const patient = yield* Effect.fork(room.subscribe)
        yield* Effect.yieldNow()
        // at 15 s the old cycle's fetch gives up (last token: t1): it must not write the new join
        yield* TestClock.adjust("8 seconds")
        const join = yield* nextOf(connection, "phx_join")
        assert.strictEqual((join.payload as { access_token: string }).access_token, "t2")
        yield* reply(connection, join, "ok", { postgres_changes: [] })
        yield* Fiber.join(patient)
      }))

    it.scoped("a token set during a rejoin's backoff and while the socket is down is the one the rejoin carries", () =>
      Effect.gen(function*() {
        const harness = yield* setup({}, AccessToken.layerStatic("t1"))
        const channel = yield* harness.client.channel("room")
        const { connection, join } = yield* joined(harness, channel)
        const lost = yield* statusesUntil(channel, "Rejoining")
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: join.ref,
          topic: join.topic,
          event: "phx_error",
          payload: {}
        })
        yield* Fiber.join(lost)
        yield* harness.client.setAuth("t2")
        yield* TestClock.adjust("1 second")
        const rejoin = yield* nextOf(connection, "phx_join")
        assert.strictEqual((rejoin.payload as { access_token: string }).access_token, "t2")
        yield* reply(connection, rejoin, "ok", { postgres_changes: [] })
        yield* awaitStatus(channel, "Subscribed")
        yield* connection.terminate
        yield* awaitStatus(channel, "Errored")
        yield* harness.client.setAuth("t3")
        yield* TestClock.adjust("1 second")
        const second = yield* Queue.take(harness.server.connections)
        const reconnected = yield* nextOf(second, "phx_join")
        assert.strictEqual((reconnected.payload as { access_token: string }).access_token, "t3")
      }))

    it.scoped("channels joining at once share one fetch of the token source and its token", () =>
      Effect.gen(function*() {
        let calls = 0
        const tokenLayer = AccessToken.layerEffect(
          Effect.as(Effect.sleep("1 second"), "fresh").pipe(
            Effect.tap(() => Effect.sync(() => calls++))
          )
        )
        const harness = yield* setup({}, tokenLayer)
        const channels = yield* Effect.forEach(["a", "b", "c"], (name) => harness.client.channel(name))
        const fibers = yield* Effect.forEach(channels, (channel) => Effect.fork(channel.subscribe))
        yield* TestClock.adjust("1 second")
        const connection = yield* Queue.take(harness.server.connections)
        for (let i = 0; i < channels.length; i++) {
          const join = yield* nextOf(connection, "phx_join")
          assert.strictEqual((join.payload as { access_token: string }).access_token, "fresh")
          yield* reply(connection, join, "ok", { postgres_changes: [] })
        }
        yield* Fiber.joinAll(fibers)
        assert.strictEqual(calls, 1)
      }))

    it.scoped("setAuth pushes access_token to joined channels, only when it changed", () =>
      Effect.gen(function*() {
        const harness = yield* setup({}, AccessToken.layerStatic("t1"))
        const channel = yield* harness.client.channel("room")
        const { connection, join } = yield* joined(harness, channel)
        yield* harness.client.setAuth("t1")
        yield* harness.client.setAuth("t2")
        const push = yield* next(connection)
        assert.deepStrictEqual(
          [push.event, push.joinRef, push.payload],
          ["access_token", join.ref, { access_token: "t2" }]
        )
        yield* harness.client.setAuth("t2")
        yield* harness.client.setAuth(null)
        const cleared = yield* next(connection)
        assert.deepStrictEqual(cleared.payload, { access_token: null })
      }))
  })

  describe("presence", () => {
    it.scoped("track pushes the meta; state and events follow presence_state and presence_diff", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", { presence: { key: "ada" } })
        const Meta = Schema.Struct({ name: Schema.String })
        const view = channel.presence(Meta)
        const events = yield* view.events.pipe(Stream.take(4), Stream.runCollect, Effect.fork)
        const { connection, join } = yield* joined(harness, channel)
        const invalid = yield* Effect.flip(channel.track([] as never))
        assert.strictEqual(invalid._tag, "InvalidArgument")
        const tracking = yield* Effect.fork(channel.track({ name: "Ada" }))
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
        const received = Chunk.toReadonlyArray(yield* Fiber.join(events))
        assert.deepStrictEqual(received.map((e) => e._tag), ["Join", "Sync", "Join", "Sync"])
        const state = yield* view.state
        assert.deepStrictEqual([...state.keys()], ["ada", "bob"])
        assert.deepStrictEqual(state.get("bob"), [{ name: "Bob", presence_ref: "r2" }])
      }))
  })

  describe("presence views", () => {
    it.scoped("changes: a state that arrives while the consumer handles the first element is not missed", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", { presence: { key: "ada" } })
        const { connection, join } = yield* joined(harness, channel)
        const release = yield* Deferred.make<void>()
        const firstTaken = yield* Deferred.make<void>()
        // a consumer that is busy with the first element until released
        const seen = yield* channel.presence().changes.pipe(
          Stream.zipWithIndex,
          Stream.mapEffect(([state, i]) =>
            i === 0
              ? Effect.as(Effect.zipRight(Deferred.succeed(firstTaken, void 0), Deferred.await(release)), state)
              : Effect.succeed(state)
          ),
          Stream.take(2),
          Stream.runCollect,
          Effect.fork
        )
        yield* Deferred.await(firstTaken)
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: null,
          topic: join.topic,
          event: "presence_state",
          payload: { bob: { metas: [{ phx_ref: "r1" }] } }
        })
        yield* Deferred.succeed(release, void 0)
        const states = Chunk.toReadonlyArray(yield* Fiber.join(seen))
        assert.deepStrictEqual(states.map((state) => [...state.keys()]), [[], ["bob"]])
      }))
  })

  describe("lifecycle (every subscribe settles, nothing loops)", () => {
    const systemError = (connection: FakeSocket.FakeConnection, join: Protocol.Message, message: string) =>
      Effect.zipRight(
        serverSend(connection, {
          joinRef: join.ref,
          ref: null,
          topic: join.topic,
          event: "system",
          payload: { extension: "system", status: "error", message, channel: "room" }
        }),
        serverSend(connection, { joinRef: join.ref, ref: join.ref, topic: join.topic, event: "phx_close", payload: {} })
      )

    it.scoped("a first join refused with a transient error is retried after 1 s; subscribe waits for it", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const fiber = yield* Effect.fork(channel.subscribe)
        const connection = yield* Queue.take(harness.server.connections)
        const join = yield* nextOf(connection, "phx_join")
        yield* reply(connection, join, "error", {
          reason: "RealtimeRestarting: Realtime is restarting, please standby"
        })
        const rejoining = yield* awaitStatus(channel, "Rejoining")
        assert.strictEqual(rejoining._tag === "Rejoining" && Duration.toMillis(rejoining.delay), 1000)
        yield* TestClock.adjust("1 second")
        const again = yield* nextOf(connection, "phx_join")
        yield* reply(connection, again, "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        assert.strictEqual((yield* channel.status)._tag, "Subscribed")
      }))

    it.scoped("a server that closes every join at once: joins back off 1/2/5 s and stop with its reason", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", {}, { maxRejoinFailures: 4 })
        const { connection, join } = yield* joined(harness, channel)
        const reason = "ChannelRateLimitReached: Too many channels"
        yield* systemError(connection, join, reason)
        for (const delay of [1000, 2000, 5000]) {
          yield* awaitStatus(channel, "Rejoining")
          // nothing before the backoff ends
          yield* TestClock.adjust(delay - 1)
          assert.isTrue(Option.isNone(yield* Queue.poll(connection.sent)), `no join before ${delay} ms`)
          yield* TestClock.adjust(1)
          const rejoin = yield* nextOf(connection, "phx_join")
          yield* reply(connection, rejoin, "ok", { postgres_changes: [] })
          yield* awaitStatus(channel, "Subscribed")
          yield* systemError(connection, rejoin, reason)
        }
        const closed = yield* awaitStatus(channel, "Closed")
        assert.strictEqual(closed._tag === "Closed" && closed.reason, `gave up after 4 failed joins: ${reason}`)
        yield* TestClock.adjust("1 minute")
        const frames = Chunk.toReadonlyArray(yield* Queue.takeAll(connection.sent))
          .map((f) => Either.getOrThrow(Protocol.serverV2.decode(f)).event)
        assert.notInclude(frames, "phx_join")
      }))

    it.scoped("an oversized track fails with PayloadTooLarge, and the meta is not tracked again after the rejoin", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", { presence: { key: "me" } })
        const { connection, join } = yield* joined(harness, channel)
        const track = yield* Effect.fork(Effect.flip(channel.track({ blob: "x".repeat(1000) })))
        yield* nextOf(connection, "presence")
        yield* systemError(connection, join, "Track message size exceeded")
        assert.strictEqual((yield* Fiber.join(track))._tag, "PayloadTooLarge")
        yield* awaitStatus(channel, "Rejoining")
        yield* TestClock.adjust("1 second")
        const rejoin = yield* nextOf(connection, "phx_join")
        yield* reply(connection, rejoin, "ok", { postgres_changes: [] })
        yield* awaitStatus(channel, "Subscribed")
        yield* TestClock.adjust("1 second")
        const frames = Chunk.toReadonlyArray(yield* Queue.takeAll(connection.sent))
          .map((f) => Either.getOrThrow(Protocol.serverV2.decode(f)).event)
        assert.notInclude(frames, "presence")
      }))

    it.scoped("presence after a rejoin: who left while we were away gets a Leave; who stayed gets no new Join", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", { presence: { key: "me" } })
        const { connection, join } = yield* joined(harness, channel)
        const meta = (ref: string) => ({ metas: [{ phx_ref: ref, name: ref }] })
        const events = yield* channel.presence().events.pipe(
          Stream.map((e) => e._tag === "Sync" ? "Sync" : `${e._tag} ${e.key}`),
          Stream.take(6),
          Stream.runCollect,
          Effect.fork
        )
        yield* Effect.yieldNow()
        const presence = (joinRef: string, event: string, payload: unknown) =>
          serverSend(connection, { joinRef, ref: null, topic: join.topic, event, payload })
        yield* presence(join.ref!, "presence_state", {})
        yield* presence(join.ref!, "presence_diff", { joins: { stay: meta("1") }, leaves: {} })
        yield* presence(join.ref!, "presence_diff", { joins: { gone: meta("2") }, leaves: {} })
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
        yield* reply(connection, rejoin, "ok", { postgres_changes: [] })
        yield* presence(rejoin.ref!, "presence_state", { stay: meta("1") })
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(events)), [
          "Sync",
          "Join stay",
          "Sync",
          "Join gone",
          "Sync",
          "Leave gone"
        ])
        const state = yield* channel.presence().state
        assert.deepStrictEqual([...state.keys()], ["stay"])
      }))

    it.effect("a subscribe arriving during the backoff after a stable join was lost settles within the 170 s bound", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const channel = yield* client.channel("room")
        yield* channel.subscribe
        // held for a heartbeat interval: its loss starts the backoff over (1 s), uncounted
        yield* TestClock.adjust("25 seconds")
        yield* server.crashChannel({ topic: "room" })
        yield* awaitStatus(channel, "Rejoining")
        // a second subscriber arrives during that backoff; no join is answered any more
        yield* server.delayJoins({ topic: "room", times: 20, delay: "1 day" })
        const second = yield* Effect.fork(channel.subscribe)
        yield* Effect.yieldNow()
        yield* TestClock.adjust("170 seconds")
        const exit = yield* Fiber.poll(second)
        assert.isTrue(Option.isSome(exit), "the subscribe still waits after 170 s")
        assert.strictEqual((yield* Effect.flip(Fiber.join(second)))._tag, "JoinTimeout")
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

    it.effect("a subscribe waiting through socket outages settles within the bound, however far the socket's backoff", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const channel = yield* client.channel("room")
        yield* channel.subscribe
        // connections that end at once: the socket's reconnect backoff climbs to 10 s
        for (const delay of [1000, 2000, 5000]) {
          yield* server.dropConnection({ abrupt: true })
          yield* awaitStatus(channel, "Errored")
          yield* TestClock.adjust(delay)
          yield* awaitStatus(channel, "Subscribed")
        }
        yield* server.dropConnection({ abrupt: true })
        yield* awaitStatus(channel, "Errored")
        // a second subscriber; no join is answered any more, and every connection ends just before
        // its join would time out: each failure takes 10 s of reconnect delay and 9.9 s of waiting
        yield* server.delayJoins({ topic: "room", times: 20, delay: "1 day" })
        const second = yield* Effect.fork(channel.subscribe)
        yield* Effect.yieldNow()
        for (let i = 0; i < 8; i++) {
          yield* TestClock.adjust("10 seconds")
          yield* TestClock.adjust("9900 millis")
          yield* server.dropConnection({ abrupt: true })
        }
        yield* TestClock.adjust("10800 millis")
        const exit = yield* Fiber.poll(second)
        assert.isTrue(Option.isSome(exit), "the subscribe still waits after 170 s")
        const error = yield* Effect.flip(Fiber.join(second))
        assert.strictEqual(error._tag, "SocketClosed")
        // the first subscriber's channel goes on trying
        assert.notStrictEqual((yield* channel.status)._tag, "Closed")
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

    it.effect("a subscribe arriving while the socket reconnects settles within the 168 s bound", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const channel = yield* client.channel("room")
        yield* channel.subscribe
        yield* server.delayJoins({ topic: "room", times: 20, delay: "1 day" })
        yield* server.dropConnection({ code: 1000 })
        yield* awaitStatus(channel, "Errored")
        // the socket's 1 s wait, then ten join timeouts and their backoff: 169 s without a deadline
        const second = yield* Effect.fork(channel.subscribe)
        yield* Effect.yieldNow()
        yield* TestClock.adjust("168 seconds")
        assert.isTrue(Option.isSome(yield* Fiber.poll(second)), "the subscribe still waits after 168 s")
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

    it.effect("a subscriber that gives up while the server is slow to join leaves no channel on the server", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const channel = yield* client.channel("room")
        yield* server.delayJoins({ topic: "room", delay: "500 millis" })
        const fiber = yield* Effect.fork(Effect.scoped(channel.subscribe))
        yield* server.waitUntil((s) => s.stats.framesReceived > 0)
        // the join is on the server, not processed yet: the subscriber gives up, its leave follows
        yield* Fiber.interrupt(fiber)
        yield* server.waitUntil((s) => s.connections.some((c) => s.received(c.id).some((m) => m.event === "phx_leave")))
        // Phoenix handles a socket's frames in order: the slow join, then the leave
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual((yield* server.subscribers("room")).map((c) => c.joinRef), [])
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

    it.effect("a subscribe that fails waiting through an outage does not close the channel for its subscribers", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const channel = yield* client.channel("room")
        yield* channel.subscribe
        // a long outage: 12 refused upgrades, about 100 s of reconnecting
        yield* server.refuseConnections(12, { status: 503 })
        yield* server.dropConnection({ abrupt: true })
        yield* awaitStatus(channel, "Errored")
        // a second subscribe waits through it, and fails after ten failed attempts
        const second = yield* Effect.fork(Effect.scoped(channel.subscribe))
        yield* Effect.yieldNow()
        yield* TestClock.adjust("3 minutes")
        assert.strictEqual((yield* Effect.flip(Fiber.join(second)))._tag, "SocketClosed")
        // the first subscriber's channel waited for the socket, and rejoined when it came back
        assert.strictEqual((yield* channel.status)._tag, "Subscribed")
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

    it.effect("a subscriber that gives up while the channel waits for the socket does not get it closed for the others", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const channel = yield* client.channel("room")
        yield* channel.subscribe
        // a long outage: 15 refused upgrades, 2 minutes of reconnecting
        yield* server.refuseConnections(15, { status: 503 })
        yield* server.dropConnection({ abrupt: true })
        yield* awaitStatus(channel, "Errored")
        // a second subscriber comes and goes during it
        const second = yield* Effect.fork(Effect.scoped(channel.subscribe))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(second)
        // the outage is not the first subscriber's failure: the channel rejoins when it ends
        yield* TestClock.adjust("3 minutes")
        assert.strictEqual((yield* channel.status)._tag, "Subscribed")
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

    it.scoped("presence on leave: every member gets a Leave, then an empty Sync, as presence().state says", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room", { presence: { key: "me" } })
        const scope = yield* Scope.make()
        const fiber = yield* Effect.fork(Scope.extend(channel.subscribe, scope))
        const connection = yield* Queue.take(harness.server.connections)
        const join = yield* nextOf(connection, "phx_join")
        yield* reply(connection, join, "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        const events: Array<string> = []
        yield* channel.presence().events.pipe(
          Stream.runForEach((e) =>
            Effect.sync(() =>
              events.push(e._tag === "Sync" ? `Sync ${[...e.state.keys()].join(",")}` : `${e._tag} ${e.key}`)
            )
          ),
          Effect.fork
        )
        yield* Effect.yieldNow()
        const meta = (ref: string) => ({ metas: [{ phx_ref: ref, name: ref }] })
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: null,
          topic: join.topic,
          event: "presence_state",
          payload: { a: meta("1"), b: meta("2") }
        })
        yield* channel.presence().changes.pipe(
          Stream.filter((state) => state.size === 2),
          Stream.take(1),
          Stream.runDrain
        )
        yield* Scope.close(scope, Exit.void)
        yield* Effect.repeatN(Effect.yieldNow(), 10)
        assert.deepStrictEqual(events, [
          "Join a",
          "Join b",
          "Sync a,b",
          "Leave a",
          "Leave b",
          "Sync "
        ])
        assert.strictEqual((yield* channel.presence().state).size, 0)
      }))

    it.scoped("a reply with the join's ref but another topic or join ref does not subscribe the channel", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const fiber = yield* Effect.fork(channel.subscribe)
        const connection = yield* Queue.take(harness.server.connections)
        const join = yield* nextOf(connection, "phx_join")
        const ok = { status: "ok", response: { postgres_changes: [] } }
        yield* serverSend(connection, {
          joinRef: join.ref,
          ref: join.ref,
          topic: "realtime:other",
          event: "phx_reply",
          payload: ok
        })
        yield* serverSend(connection, {
          joinRef: "999",
          ref: join.ref,
          topic: join.topic,
          event: "phx_reply",
          payload: ok
        })
        // a frame after them, awaited, proves they were processed
        const system = yield* channel.system.pipe(Stream.take(1), Stream.runDrain, Effect.fork)
        yield* Effect.yieldNow()
        yield* serverSend(connection, {
          joinRef: null,
          ref: null,
          topic: join.topic,
          event: "system",
          payload: { extension: "system", status: "ok", message: "probe", channel: "room" }
        })
        yield* Fiber.join(system)
        yield* Effect.repeatN(Effect.yieldNow(), 10)
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "subscribe settled on a foreign reply")
        assert.strictEqual((yield* channel.status)._tag, "Joining")
        yield* reply(connection, join, "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        assert.strictEqual((yield* channel.status)._tag, "Subscribed")
      }))

    it.scoped("disconnect cancels the idle disconnect armed when the last channel left", () =>
      Effect.gen(function*() {
        const harness = yield* setup({ disconnectOnEmptyAfter: "50 seconds" })
        const scope = yield* Scope.make()
        const channel = yield* harness.client.channel("room").pipe(Scope.extend(scope))
        const fiber = yield* Effect.fork(Scope.extend(channel.subscribe, scope))
        const connection = yield* Queue.take(harness.server.connections)
        yield* reply(connection, yield* nextOf(connection, "phx_join"), "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        yield* Scope.close(scope, Exit.void)
        yield* harness.client.disconnect
        yield* harness.client.connect
        yield* Queue.take(harness.server.connections)
        yield* TestClock.adjust("60 seconds")
        const state = yield* harness.client.state
        assert.strictEqual(state._tag, "Open", "the old idle timer closed the new connection")
      }))

    it.scoped("statusChanges shows one Closed when the subscription and then the channel's scope close", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const outer = yield* Scope.make()
        const channel = yield* harness.client.channel("room").pipe(Scope.extend(outer))
        const statuses = yield* channel.statusChanges.pipe(Stream.runCollect, Effect.fork)
        yield* Effect.yieldNow()
        const inner = yield* Scope.make()
        const fiber = yield* Effect.fork(Scope.extend(channel.subscribe, inner))
        const connection = yield* Queue.take(harness.server.connections)
        yield* reply(connection, yield* nextOf(connection, "phx_join"), "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
        yield* Scope.close(inner, Exit.void)
        yield* Scope.close(outer, Exit.void)
        const tags = Chunk.toReadonlyArray(yield* Fiber.join(statuses)).map((s) => s._tag)
        assert.deepStrictEqual(tags, ["Idle", "Joining", "Subscribed", "Closed"])
      }))

    it.scoped("a refused connection says so: 503 is retried with its status and body, 401 stops with them", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        yield* Ref.set(harness.server.refuseNext, 1)
        const channel = yield* harness.client.channel("room")
        const fiber = yield* Effect.fork(channel.subscribe)
        const reconnecting = yield* harness.client.stateChanges.pipe(
          Stream.filter((s) => s._tag === "Reconnecting"),
          Stream.runHead,
          Effect.map(Option.getOrThrow)
        )
        assert.deepInclude(reconnecting, { status: 503, body: "refused by FakeServer" })
        assert.include(reconnecting._tag === "Reconnecting" ? reconnecting.reason : "", "HTTP 503")
        const errored = yield* awaitStatus(channel, "Errored")
        assert.include(errored._tag === "Errored" ? errored.reason : "", "HTTP 503 refused by FakeServer")
        yield* TestClock.adjust("1 second")
        const connection = yield* Queue.take(harness.server.connections)
        yield* reply(connection, yield* nextOf(connection, "phx_join"), "ok", { postgres_changes: [] })
        yield* Fiber.join(fiber)
      }))
  })
})
