/**
 * The channel of the Effect 3 edition over the fake socket and under `TestClock`: the join and its
 * outcomes (ok, rejected with the server's reason mapped to a tagged error, timed out, refused for a
 * while), the access token it joins with, and the rejoin after a lost join (backoff, fresh token,
 * replay, giving up). Its streams and sends, its presence, and the bounds of a subscribe are in
 * `RealtimeChannel.streams.test.ts`, `RealtimeChannel.presence.test.ts` and
 * `RealtimeChannel.bounds.test.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  Chunk,
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
  Scope,
  Stream,
  TestClock
} from "effect"
import * as AccessToken from "../src/AccessToken.js"
import * as Protocol from "../src/Protocol.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeError from "../src/RealtimeError.js"
import { joined, nextIoTurn, setup } from "./support/client.js"
import { next, nextOf, reply, serverSend, systemError } from "./support/frames.js"
import { awaitStatus, statusesUntil } from "./support/status.js"

describe("RealtimeChannel", () => {
  describe("subscribe", () => {
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
        assert.deepStrictEqual(
          yield* channel.status,
          RealtimeChannel.ChannelStatus.Closed({ reason: "the join failed" })
        )
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

  describe("access token", () => {
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

  describe("rejoin", () => {
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

    it.scoped("phx_close and phx_error of an earlier join are ignored", () =>
      Effect.gen(function*() {
        const harness = yield* setup()
        const channel = yield* harness.client.channel("room")
        const { connection, join } = yield* joined(harness, channel)
        const stale = "999"
        yield* serverSend(connection, {
          joinRef: stale,
          ref: stale,
          topic: join.topic,
          event: "phx_close",
          payload: {}
        })
        yield* serverSend(connection, {
          joinRef: stale,
          ref: stale,
          topic: join.topic,
          event: "phx_error",
          payload: {}
        })
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
  })
})
