/**
 * The Transport's connection lifecycle over the fake socket: heartbeats, backoff and reconnects,
 * refused upgrades, open timeouts, a reconnect schedule's end, the Network's offline state.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, Option, Queue, Ref, Schedule, Stream } from "effect"
import { Socket } from "effect/socket"
import { TestClock } from "effect/testing"
import * as Heartbeat from "../src/Heartbeat.js"
import * as Network from "../src/Network.js"
import * as Reconnect from "../src/Reconnect.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import * as Transport from "../src/Transport.js"
import { awaitState, connected, nextFrame, reply, setup } from "./support/transport.js"

describe("Transport", () => {
  it.effect("heartbeats every interval on topic phoenix and reports sent / ok with latency", () =>
    Effect.gen(function*() {
      const { connection, transport } = yield* connected()
      const statuses = yield* transport.heartbeats.pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      yield* Effect.yieldNow
      yield* TestClock.adjust("24 seconds")
      assert.isTrue(Option.isNone(yield* Queue.poll(connection.sent)))
      yield* TestClock.adjust("1 second")
      const heartbeat = yield* nextFrame(connection)
      assert.deepStrictEqual([heartbeat[0], heartbeat[2], heartbeat[3], heartbeat[4]], [
        null,
        "phoenix",
        "heartbeat",
        {}
      ])
      yield* TestClock.adjust("120 millis")
      yield* reply(connection, heartbeat)
      const [sent, ok] = yield* Fiber.join(statuses)
      assert.strictEqual(sent!._tag, "Sent")
      assert.strictEqual(ok!._tag, "Ok")
      if (ok!._tag === "Ok") assert.strictEqual(Duration.toMillis(ok!.latency), 120)
      // next heartbeat 25 s after the reply; the connection stays open past the timeout
      yield* TestClock.adjust("25 seconds")
      const second = yield* nextFrame(connection)
      assert.strictEqual(second[3], "heartbeat")
      yield* reply(connection, second)
      yield* TestClock.adjust("20 seconds")
      assert.strictEqual((yield* transport.state)._tag, "Open")
    }))

  it.effect("an unanswered heartbeat closes the socket (1000) and reconnects after the backoff", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected({}, Heartbeat.layer({ interval: "10 seconds" }))
      const statuses = yield* transport.heartbeats.pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      yield* Effect.yieldNow
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* nextFrame(connection))[3], "heartbeat")
      yield* TestClock.adjust("10 seconds")
      const closed = yield* Deferred.await(connection.closed)
      assert.strictEqual(closed.code, 1000)
      const state = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(state.reason, "heartbeat timeout")
      assert.strictEqual(Duration.toMillis(state.delay), 1000)
      assert.deepStrictEqual((yield* Fiber.join(statuses)).map((s) => s._tag), ["Sent", "Timeout", "Disconnected"])
      assert.isTrue(Option.isNone(yield* Queue.poll(server.connections)))
      yield* TestClock.adjust("999 millis")
      assert.isTrue(Option.isNone(yield* Queue.poll(server.connections)))
      yield* TestClock.adjust("1 millis")
      yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
    }))

  it.effect("backs off 1 s, 2 s, 5 s, 10 s, 10 s while refused, and resets after a connection held 25 s", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected()
      const delays = yield* transport.stateChanges.pipe(
        Stream.filter((s) => s._tag === "Reconnecting"),
        Stream.map((s) => [s.attempt, Duration.toMillis(s.delay)]),
        Stream.take(6),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Effect.yieldNow
      yield* Ref.set(server.refuseNext, 4)
      yield* connection.close(4001, "kicked")
      yield* awaitState(transport, "Reconnecting")
      for (const ms of [1000, 2000, 5000, 10000, 10000]) yield* TestClock.adjust(ms)
      const second = yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
      assert.strictEqual(yield* Ref.get(server.attempts), 6)
      // held for a heartbeat interval: the backoff starts over
      yield* TestClock.adjust("25 seconds")
      yield* second.terminate
      yield* awaitState(transport, "Reconnecting")
      yield* TestClock.adjust("1 second")
      yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
      assert.deepStrictEqual(yield* Fiber.join(delays), [
        [1, 1000],
        [2, 2000],
        [3, 5000],
        [4, 10000],
        [5, 10000],
        [1, 1000]
      ])
    }))

  it.effect("reports the close code and reason in the state, and reconnects on any close", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected()
      yield* connection.close(1001, "going away")
      const state = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(state.code, 1001)
      assert.strictEqual(state.reason, "closed (1001: going away)")
      yield* TestClock.adjust("1 second")
      const second = yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
      yield* TestClock.adjust("25 seconds")
      yield* second.close(1000, "normal")
      const again = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(again.attempt, 1)
      assert.strictEqual(again.code, 1000)
      assert.strictEqual(again.reason, "closed by the server (1000: normal)")
      yield* TestClock.adjust("1 second")
      const third = yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
      yield* third.terminate
      const lost = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(lost.code, 1006)
      assert.strictEqual(lost.reason, "connection lost (1006: connection reset)")
    }))

  it.effect("an upgrade refused with a 503 is in the state (status, body) and retried", () =>
    Effect.gen(function*() {
      const { server, transport } = yield* setup()
      yield* Ref.set(server.refuseNext, 1)
      yield* transport.connect
      const state = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(state.status, 503)
      assert.strictEqual(state.body, "refused by FakeServer")
      assert.strictEqual(state.reason, "upgrade refused: HTTP 503 refused by FakeServer")
      yield* TestClock.adjust("1 second")
      yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
    }))

  it.effect("an upgrade refused with a 401 closes for good until the next connect; waiting pushes fail", () =>
    Effect.gen(function*() {
      const refusing = FakeSocket.makeConstructor((peer) =>
        peer.url.includes("apikey=bad") ? { refuse: { status: 401, body: "invalid key" } } : {
          onMessage: () => {},
          onClose: () => {}
        }
      )
      const transport = yield* Transport.make({ url: "ws://realtime.test/socket", apiKey: "bad" }).pipe(
        Effect.provideService(Socket.WebSocketConstructor, refusing)
      )
      const waiting = yield* transport.push({ joinRef: null, ref: "1", topic: "realtime:a", event: "x", payload: {} })
        .pipe(Effect.flip, Effect.forkChild)
      yield* Effect.yieldNow
      yield* transport.connect
      const state = yield* awaitState(transport, "Closed")
      assert.strictEqual(state.status, 401)
      assert.strictEqual(state.body, "invalid key")
      assert.include(state.reason, "upgrade refused: HTTP 401")
      const error = yield* Fiber.join(waiting)
      assert.strictEqual(error._tag, "SocketClosed")
      if (error._tag === "SocketClosed") assert.strictEqual(error.status, 401)
    }))

  it.effect("a socket that never opens times out after openTimeout; a constructor that throws is a failed attempt", () =>
    Effect.gen(function*() {
      let closedWith: number | undefined
      const silent = (): Socket.WebSocketLike => ({
        readyState: 0,
        addEventListener: () => {},
        removeEventListener: () => {},
        close: (code) => {
          closedWith = code
        },
        send: () => {}
      })
      const transport = yield* Transport.make({
        url: "ws://realtime.test/socket",
        apiKey: "k",
        openTimeout: "2 seconds"
      })
        .pipe(Effect.provideService(Socket.WebSocketConstructor, silent))
      yield* transport.connect
      yield* TestClock.adjust("2 seconds")
      const state = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(state.reason, "no answer to the upgrade within 2000 ms")
      assert.strictEqual(closedWith, 1000)
      yield* transport.disconnect()

      const throwing = yield* Transport.make({ url: "ws://realtime.test/socket", apiKey: "k" }).pipe(
        Effect.provideService(Socket.WebSocketConstructor, () => {
          throw new Error("no WebSocket here")
        })
      )
      yield* throwing.connect
      const failed = yield* awaitState(throwing, "Reconnecting")
      assert.strictEqual(failed.reason, "connection failed: no WebSocket here")
    }))

  it.effect("a server that closes every connection at once is reconnected to on the backoff", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected()
      const delays = yield* transport.stateChanges.pipe(
        Stream.filter((s) => s._tag === "Reconnecting"),
        Stream.map((s) => Duration.toMillis(s.delay)),
        Stream.take(4),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Effect.yieldNow
      yield* connection.close(1011, "internal error")
      yield* awaitState(transport, "Reconnecting")
      for (const ms of [1000, 2000, 5000]) {
        yield* TestClock.adjust(ms)
        const next = yield* Queue.take(server.connections)
        yield* awaitState(transport, "Open")
        yield* next.close(1011, "internal error")
        yield* awaitState(transport, "Reconnecting")
      }
      assert.deepStrictEqual(yield* Fiber.join(delays), [1000, 2000, 5000, 10000])
    }))

  it.effect("in-flight requests fail with SocketClosed when the connection drops", () =>
    Effect.gen(function*() {
      const { connection, transport } = yield* connected()
      const ref = transport.makeRef()
      const fiber = yield* transport.request({ joinRef: null, ref, topic: "realtime:a", event: "x", payload: {} }).pipe(
        Effect.flip,
        Effect.forkChild
      )
      yield* nextFrame(connection)
      yield* connection.close(4000, "bye")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "SocketClosed")
      if (error._tag === "SocketClosed") {
        assert.strictEqual(error.code, 4000)
        assert.include(error.message, "bye")
      }
    }))

  it.effect("a custom reconnect schedule that ends leaves the transport Closed", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected(
        {},
        Reconnect.layer({ reconnect: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 2 })) })
      )
      yield* Ref.set(server.refuseNext, 10)
      yield* connection.close(4000, "bye")
      yield* awaitState(transport, "Reconnecting")
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      const state = yield* awaitState(transport, "Closed")
      assert.include(state.reason, "gave up")
      assert.strictEqual(yield* Ref.get(server.attempts), 3)
    }))

  // Effect 4 resumes a waiting fiber inside the call that wakes it: a consumer of the state that
  // reconnects on Closed runs while the finished loop is still in its handle

  it.effect("a connect made by a state consumer as the reconnect schedule gives up starts a new loop", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected(
        {},
        Reconnect.layer({ reconnect: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 1 })) })
      )
      const seen: Array<string> = []
      let reconnected = 0
      yield* transport.stateChanges.pipe(
        Stream.runForEach((state) => {
          seen.push(state._tag)
          return state._tag === "Closed" && state.reason.includes("gave up") && reconnected++ === 0
            ? transport.connect
            : Effect.void
        }),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Ref.set(server.refuseNext, 10)
      yield* connection.close(4000, "bye")
      yield* awaitState(transport, "Reconnecting")
      // the retry is refused, the schedule gives up, the consumer connects: a new loop tries again
      yield* TestClock.adjust("1 second")
      yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(reconnected, 1)
      assert.deepStrictEqual(seen.slice(seen.indexOf("Closed")), ["Closed", "Connecting", "Reconnecting"])
    }))

  it.effect("while the Network is offline no attempt is made; back online, it connects at once", () =>
    Effect.gen(function*() {
      const manual = Network.makeManual(false)
      const { server, transport } = yield* setup({}, Layer.succeed(Network.Network, manual.network))
      yield* transport.connect
      const offline = yield* awaitState(transport, "Offline")
      assert.include(offline.reason, "no network")
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* Ref.get(server.attempts), 0)
      manual.set(true)
      yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
    }))
})
