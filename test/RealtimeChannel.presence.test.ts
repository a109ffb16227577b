/**
 * Presence on a channel of the Effect 3 edition, over the fake socket and under `TestClock`: track,
 * events and state from `presence_state` / `presence_diff`, what a rejoin and a leave do to the
 * state, and a track the server refuses. The sync algorithm itself is tested once for both editions
 * in `test/core/presenceSync.test.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Exit, Fiber, Queue, Schema, Scope, Stream, TestClock } from "effect"
import * as Protocol from "../src/Protocol.js"
import { joined, setup } from "./support/client.js"
import { nextOf, reply, serverSend, systemError } from "./support/frames.js"
import { awaitStatus } from "./support/status.js"

describe("RealtimeChannel: presence", () => {
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
})
