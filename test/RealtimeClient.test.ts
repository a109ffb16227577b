/**
 * The client: its channel registry (one channel per topic, handles counted per scope), removal,
 * the idle disconnect, and the reconnect schedules it is given. Over the fake socket, under
 * `TestClock`.
 */
import * as Socket from "@effect/platform/Socket"
import { assert, describe, it } from "@effect/vitest"
import {
  Chunk,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Queue,
  Redacted,
  Scope,
  Stream,
  TestClock
} from "effect"
import * as AccessToken from "../src/AccessToken.js"
import * as Heartbeat from "../src/Heartbeat.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as Reconnect from "../src/Reconnect.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import * as Transport from "../src/Transport.js"
import { joined, setup, URL } from "./support/client.js"
import { decode, nextOf, reply, replyOk } from "./support/frames.js"

/** Every frame sent so far on a connection, decoded, without waiting. */
const drain = (connection: FakeSocket.FakeConnection) =>
  Effect.map(Queue.takeAll(connection.sent), (frames) => Chunk.toReadonlyArray(frames).map(decode))

describe("RealtimeClient", () => {
  it.scoped("the services carry their type ids: a client, its transport and its token source are recognised", () =>
    Effect.gen(function*() {
      const { client } = yield* setup()
      assert.isTrue(RealtimeClient.isRealtimeClient(client))
      assert.isTrue(AccessToken.isAccessToken(client.accessToken))
      assert.isFalse(RealtimeClient.isRealtimeClient({ connect: client.connect, channel: client.channel }))
      assert.isFalse(Transport.isTransport(client))
      const transport = yield* Transport.Transport.pipe(
        Effect.provide(
          Transport.layer({ url: URL, apiKey: "anon" }).pipe(
            Layer.provide(Layer.succeed(Socket.WebSocketConstructor, (yield* FakeSocket.make).constructor))
          )
        )
      )
      assert.isTrue(Transport.isTransport(transport))
    }))

  it.scoped("an empty or blank apiKey, plain or Redacted, fails the layer with InvalidArgument naming it", () =>
    Effect.gen(function*() {
      const { constructor } = yield* FakeSocket.make
      for (const apiKey of ["", "   ", Redacted.make(""), Redacted.make("\n")]) {
        const layer = RealtimeClient.layer({ url: URL, apiKey }).pipe(
          Layer.provide(Layer.succeed(Socket.WebSocketConstructor, constructor))
        )
        const error = yield* Effect.flip(Layer.build(layer))
        assert.strictEqual(error._tag, "InvalidArgument")
        assert.include(error.message, "apiKey")
      }
    }))

  describe("registry", () => {
    it.scoped("one channel per topic: the same name and config give the same channel, with or without the prefix", () =>
      Effect.gen(function*() {
        const { client } = yield* setup()
        const a = yield* client.channel("room", { broadcast: { self: true } })
        const b = yield* client.channel("realtime:room", { broadcast: { self: true } })
        assert.strictEqual(a, b)
        assert.strictEqual(a.topic, "realtime:room")
        assert.deepStrictEqual((yield* client.channels).map((c) => c.topic), ["realtime:room"])
      }))

    it.scoped("another config on a held topic is refused with an error naming the topic, and creates nothing", () =>
      Effect.gen(function*() {
        const { client } = yield* setup()
        yield* client.channel("room", { broadcast: { self: true } })
        const error = yield* Effect.flip(client.channel("room", { broadcast: { self: false } }))
        assert.strictEqual(error._tag, "InvalidArgument")
        assert.include(error.message, "realtime:room")
        assert.strictEqual((yield* client.channels).length, 1)
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

    it.scoped("a channel lives while any scope holds it: the last release leaves and frees the topic", () =>
      Effect.gen(function*() {
        const { client, server } = yield* setup()
        const first = yield* Scope.make()
        const second = yield* Scope.make()
        const channel = yield* client.channel("room").pipe(Scope.extend(first))
        assert.strictEqual(yield* client.channel("room").pipe(Scope.extend(second)), channel)
        const subscribing = yield* Effect.fork(channel.subscribe)
        const connection = yield* Queue.take(server.connections)
        yield* replyOk(connection, yield* nextOf(connection, "phx_join"))
        yield* Fiber.join(subscribing)

        yield* Scope.close(first, Exit.void)
        assert.strictEqual((yield* channel.status)._tag, "Subscribed", "released by one scope of two")
        assert.notInclude((yield* drain(connection)).map((m) => m.event), "phx_leave")

        yield* Scope.close(second, Exit.void)
        const leave = yield* nextOf(connection, "phx_leave")
        assert.strictEqual(leave.topic, "realtime:room")
        assert.strictEqual((yield* channel.status)._tag, "Closed")
        assert.deepStrictEqual(yield* client.channels, [])
        // the topic is free again, for another config too
        const other = yield* client.channel("room", { private: true })
        assert.notStrictEqual(other, channel)
      }))

    it.scoped("removeChannel leaves at once whatever holds it; the removed channel refuses to subscribe", () =>
      Effect.gen(function*() {
        const { client, server } = yield* setup()
        const channel = yield* client.channel("room")
        const events = yield* channel.broadcast("e").pipe(Stream.runCollect, Effect.fork)
        const subscribing = yield* Effect.fork(channel.subscribe)
        const connection = yield* Queue.take(server.connections)
        yield* replyOk(connection, yield* nextOf(connection, "phx_join"))
        yield* Fiber.join(subscribing)

        yield* client.removeChannel(channel)
        yield* nextOf(connection, "phx_leave")
        assert.strictEqual(Chunk.size(yield* Fiber.join(events)), 0, "its streams end")
        assert.deepStrictEqual(yield* client.channels, [])
        const error = yield* Effect.flip(channel.subscribe)
        assert.strictEqual(error._tag, "ChannelClosed")
        // removing it again is a no-op, and so is removing a channel of another client
        yield* client.removeChannel(channel)
        const other = yield* setup()
        const theirs = yield* other.client.channel("room")
        yield* client.removeChannel(theirs)
        assert.deepStrictEqual((yield* other.client.channels).map((c) => c.topic), ["realtime:room"])
      }))

    it.scoped("removeAllChannels leaves every channel and closes the socket", () =>
      Effect.gen(function*() {
        const { client, server } = yield* setup()
        const a = yield* client.channel("a")
        const b = yield* client.channel("b")
        const subscribing = yield* Effect.fork(Effect.all([a.subscribe, b.subscribe], { concurrency: 2 }))
        const connection = yield* Queue.take(server.connections)
        yield* replyOk(connection, yield* nextOf(connection, "phx_join"))
        yield* replyOk(connection, yield* nextOf(connection, "phx_join"))
        yield* Fiber.join(subscribing)

        yield* client.removeAllChannels
        const leaves = (yield* drain(connection)).filter((m) => m.event === "phx_leave").map((m) => m.topic)
        assert.sameMembers(leaves, ["realtime:a", "realtime:b"])
        assert.deepStrictEqual(yield* client.channels, [])
        assert.strictEqual((yield* client.state)._tag, "Closed")
      }))
  })

  describe("idle disconnect", () => {
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

    it.scoped("the socket closes disconnectOnEmptyAfter after the last channel left, not before", () =>
      Effect.gen(function*() {
        const { client, server } = yield* setup({ disconnectOnEmptyAfter: "30 seconds" })
        const scope = yield* Scope.make()
        const channel = yield* client.channel("room").pipe(Scope.extend(scope))
        const subscribing = yield* Effect.fork(channel.subscribe)
        const connection = yield* Queue.take(server.connections)
        yield* replyOk(connection, yield* nextOf(connection, "phx_join"))
        yield* Fiber.join(subscribing)

        yield* Scope.close(scope, Exit.void)
        yield* TestClock.adjust("29 seconds")
        assert.strictEqual((yield* client.state)._tag, "Open")
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* client.state)._tag, "Closed")
      }))

    it.scoped("a subscribe within the grace period cancels the idle disconnect and reuses the socket", () =>
      Effect.gen(function*() {
        // heartbeats far apart: this fake server does not answer them
        const { client, server } = yield* setup({}, Heartbeat.layer({ interval: "1 hour" }))
        const scope = yield* Scope.make()
        const first = yield* client.channel("a").pipe(Scope.extend(scope))
        const subscribing = yield* Effect.fork(first.subscribe)
        const connection = yield* Queue.take(server.connections)
        yield* replyOk(connection, yield* nextOf(connection, "phx_join"))
        yield* Fiber.join(subscribing)
        yield* Scope.close(scope, Exit.void)

        yield* TestClock.adjust("40 seconds")
        const second = yield* client.channel("b")
        const again = yield* Effect.fork(second.subscribe)
        yield* replyOk(connection, yield* nextOf(connection, "phx_join"))
        yield* Fiber.join(again)
        yield* TestClock.adjust("5 minutes")
        assert.strictEqual((yield* client.state)._tag, "Open")
        assert.isTrue(Option.isNone(yield* Queue.poll(server.connections)), "no second connection")
      }))

    it.scoped("disconnectOnEmptyAfter 0 closes the socket as the last channel leaves", () =>
      Effect.gen(function*() {
        const { client, server } = yield* setup({ disconnectOnEmptyAfter: 0 })
        const scope = yield* Scope.make()
        const channel = yield* client.channel("room").pipe(Scope.extend(scope))
        const subscribing = yield* Effect.fork(channel.subscribe)
        const connection = yield* Queue.take(server.connections)
        yield* replyOk(connection, yield* nextOf(connection, "phx_join"))
        yield* Fiber.join(subscribing)
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual((yield* client.state)._tag, "Closed")
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
  })

  describe("send persist over the socket", () => {
    it.scoped("persist travels in the broadcast push", () =>
      Effect.gen(function*() {
        const { client, server } = yield* setup()
        const channel = yield* client.channel("room")
        const subscribing = yield* Effect.fork(channel.subscribe)
        const connection = yield* Queue.take(server.connections)
        yield* replyOk(connection, yield* nextOf(connection, "phx_join"))
        yield* Fiber.join(subscribing)
        yield* channel.send("e", { n: 1 }, { persist: { ttl: 60 } })
        const push = yield* nextOf(connection, "broadcast")
        assert.deepStrictEqual(push.payload, { type: "broadcast", event: "e", payload: { n: 1 }, persist: { ttl: 60 } })
      }))

    it.scoped("persist on protocol vsn 1.0.0 is refused with InvalidArgument, and nothing is sent", () =>
      Effect.gen(function*() {
        const { client, server } = yield* setup({ vsn: "1.0.0" })
        const channel = yield* client.channel("room")
        const subscribing = yield* Effect.fork(channel.subscribe)
        const connection = yield* Queue.take(server.connections)
        const join = JSON.parse(String(yield* Queue.take(connection.sent)))
        yield* connection.send(JSON.stringify({
          topic: join.topic,
          event: "phx_reply",
          ref: join.ref,
          payload: { status: "ok", response: {} }
        }))
        yield* Fiber.join(subscribing)
        const error = yield* Effect.flip(channel.send("e", {}, { persist: true }))
        assert.strictEqual(error._tag, "InvalidArgument")
        assert.include(error.message, "vsn 2.0.0")
        const sent = Chunk.toReadonlyArray(yield* Queue.takeAll(connection.sent)).map((f) => JSON.parse(String(f)))
        assert.deepStrictEqual(sent.filter((m) => m.event === "broadcast"), [])
      }))
  })

  describe("Reconnect", () => {
    it.scoped("as the client's schedule: reconnect attempts follow it and stop when it ends", () =>
      Effect.gen(function*() {
        const { constructor, server } = yield* FakeSocket.make
        const layer = RealtimeClient.layer({ url: URL, apiKey: "anon" }).pipe(
          Layer.provide(Layer.succeed(Socket.WebSocketConstructor, constructor)),
          Layer.provide(Reconnect.layer({ reconnect: Reconnect.exponential({ jitter: false, maxAttempts: 2 }) }))
        )
        const client = Context.get(yield* Layer.build(layer).pipe(Effect.orDie), RealtimeClient.RealtimeClient)
        const states = yield* client.stateChanges.pipe(
          Stream.drop(1),
          Stream.filter((s) => s._tag === "Reconnecting" || s._tag === "Closed"),
          Stream.take(3),
          Stream.runCollect,
          Effect.fork
        )
        yield* Effect.yieldNow()
        yield* client.connect
        for (let i = 0; i < 3; i++) {
          const connection = yield* Queue.take(server.connections)
          yield* connection.close(1006)
          yield* TestClock.adjust("10 seconds")
        }
        const seen = Chunk.toReadonlyArray(yield* Fiber.join(states))
        assert.deepStrictEqual(
          seen.map((s) => s._tag === "Reconnecting" ? Duration.toMillis(s.delay) : s._tag),
          [1000, 2000, "Closed"]
        )
      }))
  })
})
