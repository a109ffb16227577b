/**
 * A stream obtained and forked (`Effect.forkScoped`) before `subscribe` sees every event after the
 * join, against the in-process server in memory: also a stream that forks fibers of its own (the
 * merge of two of the channel's streams, a merge of merges, a `mapEffect` with concurrency). The
 * same tests run against the Effect 4 edition, where a forked fiber starts only when its parent
 * yields (`effect4/test/subscribeOrder.test.ts`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Option, Schema, Stream } from "effect"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"

const Chat = RealtimeChannel.broadcastEvent("chat", Schema.Struct({ text: Schema.String }))

const within = <A, E>(fiber: Fiber.Fiber<A, E>) => Fiber.join(fiber).pipe(Effect.timeoutOption("5 seconds"))

describe("streams forked before subscribe (in-process server, in memory)", () => {
  it.live("the merge of the status and a broadcast stream sees the join and the first broadcast", () =>
    Effect.gen(function*() {
      const client = yield* RealtimeClient.RealtimeClient
      const room = yield* client.channel("merged", { broadcast: { self: true, ack: true } })
      const merged = Stream.merge(
        room.statusChanges.pipe(Stream.map((status) => status._tag as string)),
        room.broadcast(Chat).pipe(Stream.map((b) => `chat:${b.payload.text}`))
      )
      const seen = yield* merged.pipe(
        Stream.takeUntil((item) => item === "chat:first"),
        Stream.runCollect,
        Effect.forkScoped
      )
      yield* room.subscribe
      yield* room.send(Chat, { text: "first" })
      const items = Option.getOrElse(Option.map(yield* within(seen), (as) => Chunk.toArray(as)), () => [])
      // the status stream starts with the status it finds (Idle or Joining), then every change
      const statuses = items.filter((item) => !item.startsWith("chat:"))
      assert.deepStrictEqual(statuses.slice(-2), ["Joining", "Subscribed"])
      assert.isTrue(["Idle", "Joining"].includes(statuses[0]!))
      assert.deepStrictEqual(items.filter((item) => item.startsWith("chat:")), ["chat:first"])
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.live("the merge of two broadcast streams sees the first broadcast on each", () =>
    Effect.gen(function*() {
      const client = yield* RealtimeClient.RealtimeClient
      const room = yield* client.channel("merged-broadcasts", { broadcast: { self: true, ack: true } })
      const merged = Stream.merge(
        room.broadcast(Chat).pipe(Stream.map((b) => `typed:${b.payload.text}`)),
        room.broadcast("*").pipe(Stream.map((b) => `any:${b.event}`))
      )
      const seen = yield* merged.pipe(Stream.take(2), Stream.runCollect, Effect.forkScoped)
      yield* room.subscribe
      yield* room.send(Chat, { text: "first" })
      const items = yield* within(seen)
      assert.deepStrictEqual(
        Option.map(items, (as) => Chunk.toArray(as).sort()),
        Option.some(["any:chat", "typed:first"])
      )
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.live("the merge of a merge (three of the channel's streams) sees the first broadcast on each", () =>
    Effect.gen(function*() {
      const client = yield* RealtimeClient.RealtimeClient
      const room = yield* client.channel("merged-merge", { broadcast: { self: true, ack: true } })
      const merged = Stream.merge(
        Stream.merge(
          room.broadcast(Chat).pipe(Stream.map((b) => `typed:${b.payload.text}`)),
          room.broadcast("chat").pipe(Stream.map((b) => `named:${b.event}`))
        ),
        room.broadcast("*").pipe(Stream.map((b) => `any:${b.event}`))
      )
      const seen = yield* merged.pipe(Stream.take(3), Stream.runCollect, Effect.forkScoped)
      yield* room.subscribe
      yield* room.send(Chat, { text: "first" })
      const items = yield* within(seen)
      assert.deepStrictEqual(
        Option.map(items, (as) => Chunk.toArray(as).sort()),
        Option.some(["any:chat", "named:chat", "typed:first"])
      )
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.live("a stream with a nested fork (mapEffect with concurrency) sees the first broadcast", () =>
    Effect.gen(function*() {
      const client = yield* RealtimeClient.RealtimeClient
      const room = yield* client.channel("nested-fork", { broadcast: { self: true, ack: true } })
      const seen = yield* room.broadcast(Chat).pipe(
        Stream.mapEffect((b) => Effect.succeed(b.payload.text), { concurrency: 2 }),
        Stream.runHead,
        Effect.forkScoped
      )
      yield* room.subscribe
      yield* room.send(Chat, { text: "first" })
      const head = yield* within(seen)
      assert.deepStrictEqual(Option.flatten(head), Option.some("first"))
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.live("the presence state of the join reaches a merged stream forked before subscribe", () =>
    Effect.gen(function*() {
      const client = yield* RealtimeClient.RealtimeClient
      const room = yield* client.channel("merged-presence", { presence: { key: "ada" } })
      const presence = room.presence()
      const merged = Stream.merge(
        presence.events.pipe(Stream.map((event) => event._tag as string)),
        room.system.pipe(Stream.map(() => "system"))
      )
      const seen = yield* merged.pipe(Stream.filter((tag) => tag === "Sync"), Stream.runHead, Effect.forkScoped)
      yield* room.subscribe
      const head = yield* within(seen)
      assert.deepStrictEqual(Option.flatten(head), Option.some("Sync"))
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))
})

describe("many first joins at once (in-process server, in memory)", () => {
  const rooms = 100

  it.live("each channel's merge of merges forked before subscribe sees its first broadcast", () =>
    Effect.gen(function*() {
      const client = yield* RealtimeClient.RealtimeClient
      const heard = yield* Effect.forEach(Array.from({ length: rooms }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          const room = yield* client.channel(`many-${i}`, { broadcast: { self: true, ack: true } })
          const merged = Stream.merge(
            Stream.merge(
              room.broadcast(Chat).pipe(Stream.map((b) => `typed:${b.payload.text}`)),
              room.broadcast("chat").pipe(Stream.map((b) => `named:${b.event}`))
            ),
            room.broadcast("*").pipe(Stream.map((b) => `any:${b.event}`))
          )
          const seen = yield* merged.pipe(Stream.take(3), Stream.runCollect, Effect.forkScoped)
          yield* room.subscribe
          yield* room.send(Chat, { text: `${i}` })
          return Option.map(yield* within(seen), (as) => [...Chunk.toReadonlyArray(as)].sort())
        }), { concurrency: "unbounded" })
      heard.forEach((items, i) =>
        assert.deepStrictEqual(items, Option.some(["any:chat", "named:chat", `typed:${i}`]), `room ${i}`)
      )
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))
})
