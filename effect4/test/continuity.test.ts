/**
 * Continuity across rejoins: the status says a join is a rejoin and how long the channel was
 * without one, `gaps` says when events may have been missed, and on a private channel with replay
 * every rejoin catches up on the broadcasts sent meanwhile, once each and in order. Against the
 * in-process server, under `TestClock`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import type * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"
import { awaitStatus } from "./support/status.js"

const TOPIC = "realtime:room"

/** Drops this client's socket at the server and lets it reconnect and rejoin (1 s backoff). */
const dropAndRejoin = (channel: RealtimeChannel.RealtimeChannel, away: Duration.Input = "0 seconds") =>
  Effect.gen(function*() {
    const server = yield* RealtimeServer.RealtimeServer
    const lost = yield* channel.statusChanges.pipe(
      Stream.filter((s) => s._tag === "Errored"),
      Stream.runHead,
      Effect.forkChild({ startImmediately: true })
    )
    yield* Effect.yieldNow
    yield* server.dropConnection({ abrupt: true })
    yield* Fiber.join(lost)
    return Effect.gen(function*() {
      yield* TestClock.adjust(away)
      yield* TestClock.adjust("1 second")
      return yield* awaitStatus(channel, "Subscribed")
    })
  })

const collect = <A>(stream: Stream.Stream<A, any>, n: number) =>
  stream.pipe(
    Stream.take(n),
    Stream.runCollect,
    Effect.map((as): ReadonlyArray<A> => as),
    Effect.forkChild({ startImmediately: true })
  )

describe("continuity", () => {
  it.effect("a rejoin says so in the status (with the downtime) and in gaps; without replay it is never complete", () =>
    Effect.gen(function*() {
      const client = yield* RealtimeClient.RealtimeClient
      const channel = yield* client.channel("room")
      yield* channel.subscribe
      const first = yield* channel.status
      assert.deepStrictEqual(first._tag === "Subscribed" && [first.rejoined, Duration.toMillis(first.downtime)], [
        false,
        0
      ])
      const gaps = yield* collect(channel.gaps, 1)
      const rejoin = yield* dropAndRejoin(channel)
      const again = yield* rejoin
      assert.isTrue(again._tag === "Subscribed" && again.rejoined)
      assert.strictEqual(again._tag === "Subscribed" && Duration.toMillis(again.downtime), 1000)
      const [gap] = yield* Fiber.join(gaps)
      assert.strictEqual(Duration.toMillis(gap!.downtime), 1000)
      assert.strictEqual(gap!.replayed, 0)
      assert.isFalse(gap!.complete)
      assert.include(gap!.reason, "no replay")
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("replay: what was sent while away arrives once, in order, marked replayed; the gap is complete", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const channel = yield* client.channel("room", { private: true, broadcast: { replay: { since: 0 } } })
      const received = yield* collect(channel.broadcast("*"), 4)
      const gaps = yield* collect(channel.gaps, 1)
      yield* channel.subscribe
      yield* TestClock.adjust("100 seconds")
      yield* server.dbSend({ topic: "room", event: "live", payload: { n: 1 }, id: "m1" })
      yield* server.waitUntil((s) => s.stats.broadcastsDelivered >= 1)
      const rejoin = yield* dropAndRejoin(channel)
      // sent while the socket is down: only a replay can bring them
      yield* server.dbSend({ topic: "room", event: "missed", payload: { n: 2 }, id: "m2" })
      yield* server.dbSend({ topic: "room", event: "missed", payload: { n: 3 }, id: "m3" })
      yield* rejoin
      yield* server.dbSend({ topic: "room", event: "live", payload: { n: 4 }, id: "m4" })
      const events = yield* Fiber.join(received)
      assert.deepStrictEqual(
        events.map((b) => [b.event, (b.payload as { n: number }).n, b.meta?.replayed ?? false]),
        [["live", 1, false], ["missed", 2, true], ["missed", 3, true], ["live", 4, false]]
      )
      // the replay has ended once none came for a second (a live broadcast does not end it)
      yield* TestClock.adjust("1 second")
      const [gap] = yield* Fiber.join(gaps)
      assert.deepStrictEqual([gap!.replayed, gap!.complete, gap!.reason], [2, true, ""])
      // the rejoin asked from when the socket was last known alive (the heartbeat answered at 100 s),
      // less 5 s, not from 0: m1 came again in the replay and was not delivered twice
      const join = (yield* server.state).channels.find((c) => c.topic === TOPIC)!.joinPayload as {
        config: { broadcast: { replay: { since: number } } }
      }
      assert.strictEqual(join.config.broadcast.replay.since, 100_000 - 5_000)
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("a join lost again during the replay: that gap is incomplete, and the next replay starts from the first loss", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const channel = yield* client.channel("room", { private: true, broadcast: { replay: { since: 0 } } })
      const gaps = yield* collect(channel.gaps, 2)
      yield* channel.subscribe
      yield* TestClock.adjust("100 seconds")
      const first = yield* dropAndRejoin(channel)
      yield* first
      // within the replay's quiet second, the socket drops again (its reconnect backoff is at 2 s now)
      const second = yield* dropAndRejoin(channel, "1 second")
      yield* second
      yield* TestClock.adjust("1 second")
      const [cut, next] = yield* Fiber.join(gaps)
      assert.isFalse(cut!.complete)
      assert.include(cut!.reason, "lost again during the replay")
      assert.isTrue(next!.complete)
      const join = (yield* server.state).channels.find((c) => c.topic === TOPIC)!.joinPayload as {
        config: { broadcast: { replay: { since: number } } }
      }
      assert.strictEqual(join.config.broadcast.replay.since, 100_000 - 5_000, "from the first loss")
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("a replay that returns its limit says more may have been missed", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const channel = yield* client.channel("room", { private: true, broadcast: { replay: { since: 0, limit: 2 } } })
      const gaps = yield* collect(channel.gaps, 1)
      const received = yield* collect(channel.broadcast("missed"), 2)
      yield* channel.subscribe
      const rejoin = yield* dropAndRejoin(channel)
      for (let n = 1; n <= 3; n++) yield* server.dbSend({ topic: "room", event: "missed", payload: { n }, id: `m${n}` })
      yield* rejoin
      const [gap] = yield* Fiber.join(gaps)
      assert.deepStrictEqual([gap!.replayed, gap!.complete], [2, false])
      assert.include(gap!.reason, "limit (2)")
      // the newest two, oldest first
      assert.deepStrictEqual((yield* Fiber.join(received)).map((b) => (b.payload as { n: number }).n), [2, 3])
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("a replay the server failed to run is retried; replay params it refuses fail the subscribe", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      yield* server.rejectJoins({ reason: "UnableToReplayMessages: Realtime was unable to replay messages" })
      const channel = yield* client.channel("room", { private: true, broadcast: { replay: { since: 0 } } })
      const subscribed = yield* Effect.forkChild(channel.subscribe)
      yield* awaitStatus(channel, "Rejoining")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(subscribed)
      yield* server.rejectJoins({ reason: "UnableToReplayMessages: Replay params are not valid" })
      const other = yield* client.channel("other", { private: true, broadcast: { replay: { since: 0 } } })
      const error = yield* Effect.flip(other.subscribe)
      assert.strictEqual(error._tag, "JoinRejected")
      assert.strictEqual((yield* other.status)._tag, "Closed")
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("a quiet channel's replay ends a second after the rejoin; Postgres changes make a gap incomplete", () =>
    Effect.gen(function*() {
      const client = yield* RealtimeClient.RealtimeClient
      const channel = yield* client.channel("room", {
        private: true,
        broadcast: { replay: { since: 0 } },
        postgresChanges: [{ event: "*", schema: "public", table: "todos" }]
      })
      const gaps = yield* collect(channel.gaps, 1)
      yield* channel.subscribe
      const rejoin = yield* dropAndRejoin(channel)
      yield* rejoin
      yield* TestClock.adjust("1 second")
      const [gap] = yield* Fiber.join(gaps)
      assert.deepStrictEqual([gap!.replayed, gap!.complete], [0, false])
      assert.include(gap!.reason, "Postgres changes are not replayed")
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))
})
