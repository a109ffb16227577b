/**
 * Never stuck: a subscribe of the Effect 3 edition settles within its bounds however the server and
 * the socket misbehave (joins never answered, connections dropped, long outages), and one subscriber
 * giving up or failing does not close the channel for the others. Over the test server
 * (`RealtimeTest.layer`) and under `TestClock`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, TestClock } from "effect"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"
import { awaitStatus } from "./support/status.js"

describe("RealtimeChannel: subscribe settles within its bounds", () => {
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
})
