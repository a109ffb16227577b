/**
 * What a channel of the Effect 3 edition delivers and sends, over the fake socket and under
 * `TestClock`: typed broadcast streams (decode failures skipped or failing, a lagging consumer's
 * drops counted, no loss to wake-up batching), sends with and without ack and over HTTP when not
 * joined, and Postgres changes (server ids matched by content, int8 kept exact).
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import {
  Chunk,
  Deferred,
  Effect,
  Either,
  Fiber,
  Layer,
  Metric,
  Option,
  Queue,
  Ref,
  Schema,
  Stream,
  TestClock
} from "effect"
import * as AccessToken from "../src/AccessToken.js"
import * as HttpBroadcast from "../src/HttpBroadcast.js"
import * as Protocol from "../src/Protocol.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeError from "../src/RealtimeError.js"
import { joined, nextIoTurn, setup, URL } from "./support/client.js"
import { next, nextOf, reply, serverSend } from "./support/frames.js"

const Cursor = RealtimeChannel.broadcastEvent("cursor", Schema.Struct({ x: Schema.Number, y: Schema.Number }))
const todos = { event: "INSERT", schema: "public", table: "todos" } as const
const all = { event: "*", schema: "public", table: "items", filter: "owner=eq.7" } as const

describe("RealtimeChannel: streams and sends", () => {
  describe("broadcast", () => {
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
  })

  describe("send", () => {
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
})
