/**
 * Parity with the Effect 3 edition: the scenarios of `test/RealtimeChannel.test.ts` and
 * `test/RealtimeClient.test.ts` that the other Effect 4 test files did not cover yet, ported one
 * for one (same names, same assertions), over the fake socket and under `TestClock`.
 * `/work/notes/parity.md` lists the pairs.
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
import { HttpClient, HttpClientResponse } from "effect/http"
import { Socket } from "effect/socket"
import { TestClock } from "effect/testing"
import * as AccessToken from "../src/AccessToken.js"
import * as HttpBroadcast from "../src/HttpBroadcast.js"
import * as Protocol from "../src/Protocol.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeError from "../src/RealtimeError.js"
import * as Reconnect from "../src/Reconnect.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"
import * as Transport from "../src/Transport.js"
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

const replyOk = (connection: FakeSocket.FakeConnection, to: Protocol.Message) => reply(connection, to, "ok")

/** Lets the event loop finish its current I/O turn (the streams' end-of-turn wake-ups run). */
const nextIoTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

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

// Effect 4's streams collect arrays (Effect 3's collected chunks)
const toArray = <A>(array: ReadonlyArray<A>): ReadonlyArray<A> => array

// Effect 3's `Fiber.poll`
const poll = <A, E>(fiber: Fiber.Fiber<A, E>): Effect.Effect<Option.Option<Exit.Exit<A, E>>> =>
  Effect.sync(() => Option.fromNullishOr(fiber.pollUnsafe()))

const Cursor = RealtimeChannel.broadcastEvent("cursor", Schema.Struct({ x: Schema.Number, y: Schema.Number }))
const todos = { event: "INSERT", schema: "public", table: "todos" } as const
const all = { event: "*", schema: "public", table: "items", filter: "owner=eq.7" } as const

/** A `system` error and the `phx_close` after it, as the server shuts a channel down. */
const systemError = (connection: FakeSocket.FakeConnection, join: Protocol.Message, message: string) =>
  Effect.andThen(
    serverSend(connection, {
      joinRef: join.ref,
      ref: null,
      topic: join.topic,
      event: "system",
      payload: { extension: "system", status: "error", message, channel: "room" }
    }),
    serverSend(connection, { joinRef: join.ref, ref: join.ref, topic: join.topic, event: "phx_close", payload: {} })
  )

describe("RealtimeChannel (parity with the Effect 3 edition)", () => {
  it("maps every join error string of the server to its tagged error", () => {
    const cases: Array<[string, string, string]> = [
      ["TopicNameRequired: You must provide a topic name", "JoinRejected", "TopicNameRequired"],
      ["InvalidJWTToken: Token has expired 12 seconds ago", "TokenExpired", ""],
      ["InvalidJWTToken: Fields `role` and `exp` are required in JWT", "JoinRejected", "InvalidJWTToken"],
      ["InvalidJWTToken: Token expiration time is invalid", "JoinRejected", "InvalidJWTToken"],
      ["MalformedJWT: The token provided is not a valid JWT", "JoinRejected", "MalformedJWT"],
      ["JwtSignatureError: Failed to validate JWT signature", "JoinRejected", "JwtSignatureError"],
      [
        "JwtSignerError: Failed to generate JWT signer, check your JWT secret or JWKS configuration",
        "JoinRejected",
        "JwtSignerError"
      ],
      ["Unauthorized: You do not have permissions to read from this Channel topic: x", "JoinRejected", "Unauthorized"],
      ["PrivateOnly: This project only allows private channels", "JoinRejected", "PrivateOnly"],
      ["ChannelRateLimitReached: Too many channels", "JoinRejected", "ChannelRateLimitReached"],
      ["ConnectionRateLimitReached: Too many connected users", "JoinRejected", "ConnectionRateLimitReached"],
      ["ClientJoinRateLimitReached: Too many joins per second", "JoinRejected", "ClientJoinRateLimitReached"],
      ["TenantNotFound: Tenant with the given ID does not exist", "JoinRejected", "TenantNotFound"],
      ["RealtimeDisabledForTenant: Realtime disabled for this tenant", "JoinRejected", "RealtimeDisabledForTenant"],
      ["RealtimeRestarting: Realtime is restarting, please standby", "JoinRejected", "RealtimeRestarting"],
      ["IncreaseConnectionPool: Please increase your connection pool size", "JoinRejected", "IncreaseConnectionPool"],
      [
        "DatabaseLackOfConnections: Database can't accept more connections, Realtime won't connect",
        "JoinRejected",
        "DatabaseLackOfConnections"
      ],
      [
        "UnableToConnectToProject: Realtime was unable to connect to the project database",
        "JoinRejected",
        "UnableToConnectToProject"
      ],
      [
        "InitializingProjectConnection: Realtime is initializing the project connection",
        "JoinRejected",
        "InitializingProjectConnection"
      ],
      ["UnableToReplayMessages: Replay is not allowed for public channels", "JoinRejected", "UnableToReplayMessages"],
      ["UnknownErrorOnChannel: boom", "JoinRejected", "UnknownErrorOnChannel"],
      ["Unknown Error on Channel", "JoinRejected", "Unknown"],
      ["unmatched topic", "JoinRejected", "Unknown"]
    ]
    for (const [reason, tag, code] of cases) {
      const error = RealtimeError.joinRejected("realtime:x", { reason })
      assert.strictEqual(error._tag, tag, reason)
      if (error._tag === "JoinRejected") assert.strictEqual(error.code, code, reason)
      assert.include(error.message, reason)
    }
  })

  it.effect("phx_close and phx_error of an earlier join are ignored", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("room")
      const { connection, join } = yield* joined(harness, channel)
      const stale = "999"
      yield* serverSend(connection, { joinRef: stale, ref: stale, topic: join.topic, event: "phx_close", payload: {} })
      yield* serverSend(connection, { joinRef: stale, ref: stale, topic: join.topic, event: "phx_error", payload: {} })
      // a frame of the current join after them proves they were processed
      const events = yield* channel.system.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* Effect.yieldNow
      yield* serverSend(connection, {
        joinRef: join.ref,
        ref: null,
        topic: join.topic,
        event: "system",
        payload: { extension: "postgres_changes", status: "ok", message: "Subscribed to PostgreSQL", channel: "room" }
      })
      const [system] = toArray(yield* Fiber.join(events))
      assert.strictEqual(system!.message, "Subscribed to PostgreSQL")
      assert.strictEqual((yield* channel.status)._tag, "Subscribed")
    }))

  it.effect("a channel closed by the server for an expired token rejoins with a fresh token", () =>
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

  it.effect("transient rejoin failures back off 1/2/5 s and stop after maxRejoinFailures", () =>
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

  it.effect("a consumer that keeps up loses nothing to wake-up batching: 10,000 frames in one turn, bufferSize 16", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const droppedBefore = (yield* Metric.value(RealtimeChannel.metrics.dropped)).count
      const channel = yield* harness.client.channel("room", {}, { bufferSize: 16 })
      let ticks = 0
      // a chunk at a time (Stream.runFold recurses per element of a chunk: 10,000 overflow the stack)
      const stream = yield* channel.broadcast("*").pipe(
        Stream.takeUntil((b) => b.event === "end"),
        Stream.runForEachArray((chunk) => {
          for (const b of chunk) if (b.event === "tick") ticks++
          return Effect.void
        }),
        Effect.forkChild
      )
      const { connection } = yield* joined(harness, channel)
      const tick = (seq: number) =>
        Result.getOrThrow(Protocol.serverV2.encode({
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

  it.effect("streams text and binary (kind 4) broadcasts, decoded with the schema; mismatches are skipped", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const failuresBefore = (yield* Metric.value(RealtimeChannel.metrics.decodeFailures)).count
      const channel = yield* harness.client.channel("room")
      const typed = yield* channel.broadcast(Cursor).pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      const all = yield* channel.broadcast("*").pipe(Stream.take(4), Stream.runCollect, Effect.forkChild)
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
      const received = toArray(yield* Fiber.join(typed))
      assert.deepStrictEqual(received, [
        { event: "cursor", payload: { x: 1, y: 2 }, meta: undefined },
        { event: "Cursor", payload: { x: 3, y: 4 }, meta: { id: "m1" } }
      ])
      const everything = toArray(yield* Fiber.join(all))
      assert.deepStrictEqual(everything.map((b) => b.event), ["cursor", "cursor", "Cursor", "bin"])
      assert.deepStrictEqual(everything[3]!.payload, new Uint8Array([1, 2, 3]))
      // the mismatch was counted (and logged), not delivered
      assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.decodeFailures)).count - failuresBefore, 1)
    }))

  it.effect("not joined: send goes over HTTP when the HttpBroadcast layer is provided", () =>
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

  it.effect("matches server ids by content (reordered reply) and keeps int8 above 2^53 exact", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("db", { postgresChanges: [todos, all] })
      const Todo = Schema.Struct({ id: Schema.String, title: Schema.String })
      const inserted = yield* channel.postgresChanges(todos, Todo).pipe(
        Stream.take(1),
        Stream.runCollect,
        Effect.forkChild
      )
      const items = yield* channel.postgresChanges(all).pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
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
      const [todo] = toArray(yield* Fiber.join(inserted))
      assert.strictEqual(todo!.eventType, "INSERT")
      assert.deepStrictEqual(todo!.new, { id: "9007199254740993", title: "big" })
      const [item] = toArray(yield* Fiber.join(items))
      assert.strictEqual(item!.table, "items")
      const missing = yield* Effect.flip(Stream.runDrain(channel.postgresChanges({ event: "DELETE", schema: "x" })))
      assert.strictEqual(missing._tag, "InvalidArgument")
    }))

  it.effect("an int8 beyond 2^53 sent as a JSON number (as Realtime does) arrives exact", () =>
    Effect.gen(function*() {
      for (const int8 of ["string", "bigint"] as const) {
        const harness = yield* setup({ int8 })
        const channel = yield* harness.client.channel("db", { postgresChanges: [todos] })
        const changes = yield* channel.postgresChanges(todos).pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
        const { connection } = yield* joined(harness, channel, {
          postgres_changes: [{ id: 11, event: "INSERT", schema: "public", table: "todos" }]
        })
        // the raw text: a JS number could not even hold this value
        yield* connection.send(
          `[null,null,"realtime:db","postgres_changes",{"ids":[11],"data":{"schema":"public","table":"todos",` +
            `"commit_timestamp":"2024-01-01T00:00:00Z","type":"INSERT","columns":[{"name":"id","type":"int8"},` +
            `{"name":"score","type":"float8"}],"record":{"id":9007199254740993,"score":0.5},"errors":null}}]`
        )
        const [change] = toArray(yield* Fiber.join(changes))
        assert.deepStrictEqual(change!.new, {
          id: int8 === "string" ? "9007199254740993" : 9007199254740993n,
          score: 0.5
        })
      }
    }))

  it.effect("a server reply that does not match the bindings fails the join with PostgresBindingMismatch", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("db", { postgresChanges: [todos] })
      const fiber = yield* Effect.forkChild(Effect.flip(channel.subscribe))
      const connection = yield* Queue.take(harness.server.connections)
      const join = yield* nextOf(connection, "phx_join")
      yield* reply(connection, join, "ok", {
        postgres_changes: [{ id: 1, event: "DELETE", schema: "public", table: "todos" }]
      })
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "PostgresBindingMismatch")
      yield* nextOf(connection, "phx_leave")
    }))

  it.effect("the first join waits for the token source (no token-less join)", () =>
    Effect.gen(function*() {
      const tokenLayer = AccessToken.layerEffect(Effect.as(Effect.sleep("3 seconds"), "slow-token"))
      const harness = yield* setup({}, tokenLayer)
      const channel = yield* harness.client.channel("room")
      const fiber = yield* Effect.forkChild(channel.subscribe)
      yield* TestClock.adjust("3 seconds")
      const connection = yield* Queue.take(harness.server.connections)
      const join = yield* nextOf(connection, "phx_join")
      assert.strictEqual((join.payload as { access_token: string }).access_token, "slow-token")
      yield* reply(connection, join, "ok", { postgres_changes: [] })
      yield* Fiber.join(fiber)
    }))

  it.effect("setAuth pushes access_token to joined channels, only when it changed", () =>
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

  it.effect("changes: a state that arrives while the consumer handles the first element is not missed", () =>
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
            ? Effect.as(Effect.andThen(Deferred.succeed(firstTaken, void 0), Deferred.await(release)), state)
            : Effect.succeed(state)
        ),
        Stream.take(2),
        Stream.runCollect,
        Effect.forkChild
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
      const states = toArray(yield* Fiber.join(seen))
      assert.deepStrictEqual(states.map((state) => [...state.keys()]), [[], ["bob"]])
    }))

  it.effect("a first join refused with a transient error is retried after 1 s; subscribe waits for it", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("room")
      const fiber = yield* Effect.forkChild(channel.subscribe)
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

  it.effect("a server that closes every join at once: joins back off 1/2/5 s and stop with its reason", () =>
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
      const frames = toArray(yield* Queue.clear(connection.sent))
        .map((f) => Result.getOrThrow(Protocol.serverV2.decode(f)).event)
      assert.notInclude(frames, "phx_join")
    }))

  it.effect("an oversized track fails with PayloadTooLarge, and the meta is not tracked again after the rejoin", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("room", { presence: { key: "me" } })
      const { connection, join } = yield* joined(harness, channel)
      const track = yield* Effect.forkChild(Effect.flip(channel.track({ blob: "x".repeat(1000) })))
      yield* nextOf(connection, "presence")
      yield* systemError(connection, join, "Track message size exceeded")
      assert.strictEqual((yield* Fiber.join(track))._tag, "PayloadTooLarge")
      yield* awaitStatus(channel, "Rejoining")
      yield* TestClock.adjust("1 second")
      const rejoin = yield* nextOf(connection, "phx_join")
      yield* reply(connection, rejoin, "ok", { postgres_changes: [] })
      yield* awaitStatus(channel, "Subscribed")
      yield* TestClock.adjust("1 second")
      const frames = toArray(yield* Queue.clear(connection.sent))
        .map((f) => Result.getOrThrow(Protocol.serverV2.decode(f)).event)
      assert.notInclude(frames, "presence")
    }))

  it.effect("presence after a rejoin: who left while we were away gets a Leave; who stayed gets no new Join", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("room", { presence: { key: "me" } })
      const { connection, join } = yield* joined(harness, channel)
      const meta = (ref: string) => ({ metas: [{ phx_ref: ref, name: ref }] })
      const events = yield* channel.presence().events.pipe(
        Stream.map((e) => e._tag === "Sync" ? "Sync" : `${e._tag} ${e.key}`),
        Stream.take(6),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Effect.yieldNow
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
      assert.deepStrictEqual(toArray(yield* Fiber.join(events)), [
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
      const second = yield* Effect.forkChild(channel.subscribe)
      yield* Effect.yieldNow
      yield* TestClock.adjust("170 seconds")
      const exit = yield* poll(second)
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
      const second = yield* Effect.forkChild(channel.subscribe)
      yield* Effect.yieldNow
      for (let i = 0; i < 8; i++) {
        yield* TestClock.adjust("10 seconds")
        yield* TestClock.adjust("9900 millis")
        yield* server.dropConnection({ abrupt: true })
      }
      yield* TestClock.adjust("10800 millis")
      const exit = yield* poll(second)
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
      const second = yield* Effect.forkChild(channel.subscribe)
      yield* Effect.yieldNow
      yield* TestClock.adjust("168 seconds")
      assert.isTrue(Option.isSome(yield* poll(second)), "the subscribe still waits after 168 s")
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
      const second = yield* Effect.forkChild(Effect.scoped(channel.subscribe))
      yield* Effect.yieldNow
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
      const second = yield* Effect.forkChild(Effect.scoped(channel.subscribe))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(second)
      // the outage is not the first subscriber's failure: the channel rejoins when it ends
      yield* TestClock.adjust("3 minutes")
      assert.strictEqual((yield* channel.status)._tag, "Subscribed")
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("presence on leave: every member gets a Leave, then an empty Sync, as presence().state says", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("room", { presence: { key: "me" } })
      const scope = yield* Scope.make()
      const fiber = yield* Effect.forkChild(Scope.provide(channel.subscribe, scope))
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
        Effect.forkChild
      )
      yield* Effect.yieldNow
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
      yield* Effect.repeat(Effect.yieldNow, { times: 10 })
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

  it.effect("a reply with the join's ref but another topic or join ref does not subscribe the channel", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const channel = yield* harness.client.channel("room")
      const fiber = yield* Effect.forkChild(channel.subscribe)
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
      const system = yield* channel.system.pipe(Stream.take(1), Stream.runDrain, Effect.forkChild)
      yield* Effect.yieldNow
      yield* serverSend(connection, {
        joinRef: null,
        ref: null,
        topic: join.topic,
        event: "system",
        payload: { extension: "system", status: "ok", message: "probe", channel: "room" }
      })
      yield* Fiber.join(system)
      yield* Effect.repeat(Effect.yieldNow, { times: 10 })
      assert.isTrue(Option.isNone(yield* poll(fiber)), "subscribe settled on a foreign reply")
      assert.strictEqual((yield* channel.status)._tag, "Joining")
      yield* reply(connection, join, "ok", { postgres_changes: [] })
      yield* Fiber.join(fiber)
      assert.strictEqual((yield* channel.status)._tag, "Subscribed")
    }))

  it.effect("disconnect cancels the idle disconnect armed when the last channel left", () =>
    Effect.gen(function*() {
      const harness = yield* setup({ disconnectOnEmptyAfter: "50 seconds" })
      const scope = yield* Scope.make()
      const channel = yield* harness.client.channel("room").pipe(Scope.provide(scope))
      const fiber = yield* Effect.forkChild(Scope.provide(channel.subscribe, scope))
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

  it.effect("statusChanges shows one Closed when the subscription and then the channel's scope close", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      const outer = yield* Scope.make()
      const channel = yield* harness.client.channel("room").pipe(Scope.provide(outer))
      const statuses = yield* channel.statusChanges.pipe(Stream.runCollect, Effect.forkChild)
      yield* Effect.yieldNow
      const inner = yield* Scope.make()
      const fiber = yield* Effect.forkChild(Scope.provide(channel.subscribe, inner))
      const connection = yield* Queue.take(harness.server.connections)
      yield* reply(connection, yield* nextOf(connection, "phx_join"), "ok", { postgres_changes: [] })
      yield* Fiber.join(fiber)
      yield* Scope.close(inner, Exit.void)
      yield* Scope.close(outer, Exit.void)
      const tags = toArray(yield* Fiber.join(statuses)).map((s) => s._tag)
      assert.deepStrictEqual(tags, ["Idle", "Joining", "Subscribed", "Closed"])
    }))

  it.effect("a refused connection says so: 503 is retried with its status and body, 401 stops with them", () =>
    Effect.gen(function*() {
      const harness = yield* setup()
      yield* Ref.set(harness.server.refuseNext, 1)
      const channel = yield* harness.client.channel("room")
      const fiber = yield* Effect.forkChild(channel.subscribe)
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

describe("RealtimeClient (parity with the Effect 3 edition)", () => {
  it.effect("the services carry their type ids: a client, its transport and its token source are recognised", () =>
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

  it.effect("persist travels in the broadcast push", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("room")
      const subscribing = yield* Effect.forkChild(channel.subscribe)
      const connection = yield* Queue.take(server.connections)
      yield* replyOk(connection, yield* nextOf(connection, "phx_join"))
      yield* Fiber.join(subscribing)
      yield* channel.send("e", { n: 1 }, { persist: { ttl: 60 } })
      const push = yield* nextOf(connection, "broadcast")
      assert.deepStrictEqual(push.payload, { type: "broadcast", event: "e", payload: { n: 1 }, persist: { ttl: 60 } })
    }))

  it.effect("persist on protocol vsn 1.0.0 is refused with InvalidArgument, and nothing is sent", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup({ vsn: "1.0.0" })
      const channel = yield* client.channel("room")
      const subscribing = yield* Effect.forkChild(channel.subscribe)
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
      const sent = toArray(yield* Queue.clear(connection.sent)).map((f) => JSON.parse(String(f)))
      assert.deepStrictEqual(sent.filter((m) => m.event === "broadcast"), [])
    }))

  it.effect("as the client's schedule: reconnect attempts follow it and stop when it ends", () =>
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
        Effect.forkChild
      )
      yield* Effect.yieldNow
      yield* client.connect
      for (let i = 0; i < 3; i++) {
        const connection = yield* Queue.take(server.connections)
        yield* connection.close(1006)
        yield* TestClock.adjust("10 seconds")
      }
      const seen = toArray(yield* Fiber.join(states))
      assert.deepStrictEqual(
        seen.map((s) => s._tag === "Reconnecting" ? Duration.toMillis(s.delay) : s._tag),
        [1000, 2000, "Closed"]
      )
    }))
})
