/**
 * Parity with the Effect 3 edition: the scenarios of `test/RealtimeChannel.test.ts`,
 * `test/RealtimeClient.test.ts` and `test/Transport.test.ts` that the other Effect 4 test files did
 * not cover yet, and the whole of `test/Protocol.test.ts` and `test/Presence.test.ts`, ported one for
 * one (same names, same assertions; Effect 4's API), over the fake socket and under `TestClock`.
 * `/work/notes/parity.md` lists the pairs.
 */
import { assert, describe, expect, it } from "@effect/vitest"
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
  Redacted,
  Ref,
  Result,
  Schema,
  Scope,
  Stream
} from "effect"
import { HttpClient, HttpClientResponse } from "effect/http"
import { Socket } from "effect/socket"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { createRequire } from "node:module"
import * as AccessToken from "../src/AccessToken.js"
import * as HttpBroadcast from "../src/HttpBroadcast.js"
import * as Presence from "../src/Presence.js"
import type { PresenceEvent, PresenceState, RawDiff, RawMeta, RawState } from "../src/Presence.js"
import * as Protocol from "../src/Protocol.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeError from "../src/RealtimeError.js"
import { ProtocolError } from "../src/RealtimeError.js"
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

// -------------------------------------------------------------------------------------
// Protocol: the scenarios of the Effect 3 edition's test/Protocol.test.ts
// -------------------------------------------------------------------------------------

const encoder = new TextEncoder()

/** Concatenates byte arrays and UTF-8 strings into one frame. */
const bytes = (...parts: ReadonlyArray<ReadonlyArray<number> | string>): Uint8Array => {
  const chunks = parts.map((part) => typeof part === "string" ? encoder.encode(part) : Uint8Array.from(part))
  const out = new Uint8Array(chunks.reduce((n, chunk) => n + chunk.length, 0))
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

const hex = (frame: Protocol.Frame): string =>
  typeof frame === "string" ? frame : Array.from(frame, (b) => b.toString(16).padStart(2, "0")).join(" ")

const right = <A>(either: Result.Result<A, ProtocolError>): A => {
  if (Result.isFailure(either)) throw new Error(`expected Right, got ${either.failure.message}`)
  return either.success
}

const left = <A>(either: Result.Result<A, ProtocolError>): ProtocolError => {
  if (Result.isSuccess(either)) throw new Error(`expected Left, got ${JSON.stringify(either.success)}`)
  expect(either.failure).toBeInstanceOf(ProtocolError)
  return either.failure
}

const isObjectWith = <K extends string>(u: unknown, key: K): u is { readonly [k in K]: unknown } =>
  typeof u === "object" && u !== null && key in u

const reason = <A>(either: Result.Result<A, ProtocolError>): ProtocolError["reason"] => left(either).reason

const msg = (
  joinRef: string | null,
  ref: string | null,
  topic: string,
  event: string,
  payload: unknown
): Protocol.Message => ({ joinRef, ref, topic, event, payload })

// -------------------------------------------------------------------------------------
// vsn 1.0.0
// -------------------------------------------------------------------------------------

describe("Protocol (parity with the Effect 3 edition): v1", () => {
  it("encodes objects in realtime-js key order, join_ref omitted when null", () => {
    expect(right(Protocol.v1.encode(msg("6", "6", "realtime:room2", "phx_join", { a: 1 })))).toBe(
      `{"topic":"realtime:room2","event":"phx_join","payload":{"a":1},"ref":"6","join_ref":"6"}`
    )
    expect(right(Protocol.v1.encode(msg(null, "12", "phoenix", "heartbeat", {})))).toBe(
      `{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"12"}`
    )
  })

  it("server encode never carries join_ref", () => {
    expect(right(Protocol.serverV1.encode(msg("6", "6", "realtime:a", "phx_reply", { status: "ok", response: {} }))))
      .toBe(`{"topic":"realtime:a","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"6"}`)
  })

  it("decodes with a missing join_ref or ref as null", () => {
    expect(right(Protocol.v1.decode(`{"topic":"t","event":"e","payload":{"x":1},"ref":"3"}`))).toEqual(
      msg(null, "3", "t", "e", { x: 1 })
    )
    expect(right(Protocol.v1.decode(`{"topic":"t","event":"e","payload":null}`))).toEqual(
      msg(null, null, "t", "e", null)
    )
    expect(right(Protocol.serverV1.decode(`{"topic":"t","event":"e","payload":[],"ref":null,"join_ref":"1"}`)))
      .toEqual(msg("1", null, "t", "e", []))
  })

  it("rejects binary frames, bad JSON and bad shapes", () => {
    expect(reason(Protocol.v1.decode(new Uint8Array([4, 0, 0, 0, 1])))).toBe("InvalidEnvelope")
    expect(reason(Protocol.serverV1.decode(new Uint8Array([3])))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`{"topic":`))).toBe("MalformedJson")
    expect(reason(Protocol.v1.decode(`[null,null,"t","e",{}]`))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`null`))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`{"topic":1,"event":"e","payload":{}}`))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`{"topic":"t","event":"e"}`))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`{"topic":"t","event":"e","payload":{},"ref":7}`))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`{"topic":"t","event":"e","payload":{},"join_ref":false}`))).toBe(
      "InvalidEnvelope"
    )
  })

  it("refuses binary payloads and unencodable payloads", () => {
    expect(reason(Protocol.v1.encode(msg(null, "1", "t", "e", new Uint8Array([1]))))).toBe("UnsupportedPayload")
    expect(
      reason(
        Protocol.v1.encode(
          msg("1", "2", "t", "broadcast", { type: "broadcast", event: "x", payload: new ArrayBuffer(2) })
        )
      )
    ).toBe("UnsupportedPayload")
    expect(reason(Protocol.v1.encode(msg(null, "1", "t", "e", { n: 1n })))).toBe("UnsupportedPayload")
    expect(reason(Protocol.serverV1.encode(msg(null, "1", "t", "e", new Uint8Array([1]))))).toBe("UnsupportedPayload")
  })

  it("sends broadcasts as text", () => {
    const message = msg("1", "2", "realtime:t", "broadcast", { type: "broadcast", event: "x", payload: { a: 1 } })
    const frame = right(Protocol.v1.encode(message))
    expect(typeof frame).toBe("string")
    expect(right(Protocol.serverV1.decode(frame))).toEqual(message)
  })
})

// -------------------------------------------------------------------------------------
// vsn 2.0.0 text
// -------------------------------------------------------------------------------------

describe("Protocol (parity with the Effect 3 edition): v2 text", () => {
  it("encodes JSON arrays (observed heartbeat and join)", () => {
    expect(right(Protocol.v2.encode(msg(null, "12", Protocol.PHOENIX_TOPIC, Protocol.Events.heartbeat, {})))).toBe(
      `[null,"12","phoenix","heartbeat",{}]`
    )
    expect(
      right(Protocol.v2.encode(msg("6", "9", "realtime:room1", "presence", {
        type: "presence",
        event: "track",
        payload: { online: true }
      })))
    ).toBe(`["6","9","realtime:room1","presence",{"type":"presence","event":"track","payload":{"online":true}}]`)
  })

  it("decodes JSON arrays", () => {
    expect(right(Protocol.v2.decode(`["6","6","realtime:room1","phx_reply",{"status":"ok","response":{}}]`))).toEqual(
      msg("6", "6", "realtime:room1", "phx_reply", { status: "ok", response: {} })
    )
    expect(right(Protocol.v2.decode(`[null,null,"t","e",null]`))).toEqual(msg(null, null, "t", "e", null))
  })

  it("ignores elements after the fifth, as Phoenix's V2 serializer does", () => {
    const decoded = Protocol.v2.decode(`["1","2","t","e",{"a":1},"extra",3]`)
    expect(Result.getOrThrow(decoded)).toEqual({ joinRef: "1", ref: "2", topic: "t", event: "e", payload: { a: 1 } })
  })

  it("reports bad JSON as MalformedJson and bad shapes as InvalidEnvelope", () => {
    expect(reason(Protocol.v2.decode(``))).toBe("MalformedJson")
    expect(reason(Protocol.v2.decode(`[null,null,"t","e",`))).toBe("MalformedJson")
    for (
      const frame of [
        `{}`,
        `"x"`,
        `null`,
        `[null,null,"t","e"]`,
        `[1,null,"t","e",{}]`,
        `[null,2,"t","e",{}]`,
        `[null,null,null,"e",{}]`,
        `[null,null,"t",["e"],{}]`
      ]
    ) {
      expect(reason(Protocol.v2.decode(frame)), frame).toBe("InvalidEnvelope")
      expect(reason(Protocol.serverV2.decode(frame)), frame).toBe("InvalidEnvelope")
    }
  })

  it("reports payloads JSON cannot encode as UnsupportedPayload", () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(reason(Protocol.v2.encode(msg(null, "1", "t", "e", cyclic)))).toBe("UnsupportedPayload")
    expect(reason(Protocol.v2.encode(msg(null, "1", "t", "e", { n: 1n })))).toBe("UnsupportedPayload")
    expect(reason(Protocol.serverV2.encode(msg(null, "1", "t", "e", { n: 1n })))).toBe("UnsupportedPayload")
  })

  it("rejects messages whose envelope fields have the wrong type", () => {
    const bad = { joinRef: 1, ref: null, topic: "t", event: "e", payload: {} } as unknown as Protocol.Message
    expect(reason(Protocol.v2.encode(bad))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.encode(bad))).toBe("InvalidEnvelope")
    expect(reason(Protocol.serverV2.encode(bad))).toBe("InvalidEnvelope")
  })
})

// -------------------------------------------------------------------------------------
// vsn 2.0.0 binary
// -------------------------------------------------------------------------------------

describe("Protocol (parity with the Effect 3 edition): v2 kind 3 (user broadcast push)", () => {
  it("matches realtime-js byte for byte: JSON payload, no metadata", () => {
    const frame = right(
      Protocol.v2.encode(msg("6", "7", "realtime:room1", "broadcast", {
        type: "broadcast",
        event: "x",
        payload: { hello: "wörld" }
      }))
    )
    expect(hex(frame)).toBe(
      hex(bytes([0x03, 0x01, 0x01, 0x0e, 0x01, 0x00, 0x01], "6", "7", "realtime:room1", "x", `{"hello":"wörld"}`))
    )
  })

  it("matches realtime-js byte for byte: binary payload", () => {
    const expected = hex(
      bytes([0x03, 0x01, 0x01, 0x0e, 0x03, 0x00, 0x00], "6", "8", "realtime:room1", "bin", [1, 2, 3])
    )
    const make = (payload: unknown) =>
      Protocol.v2.encode(msg("6", "8", "realtime:room1", "broadcast", { type: "broadcast", event: "bin", payload }))
    expect(hex(right(make(new Uint8Array([1, 2, 3]))))).toBe(expected)
    expect(hex(right(make(new Uint8Array([1, 2, 3]).buffer)))).toBe(expected)
  })

  it("matches realtime-js byte for byte: persist metadata", () => {
    const frame = right(
      Protocol.v2.encode(msg("1", "2", "realtime:t", "broadcast", {
        type: "broadcast",
        event: "ev",
        payload: { z: 1 },
        persist: { ttl: 5 }
      }))
    )
    expect(hex(frame)).toBe(
      hex(
        bytes(
          [0x03, 0x01, 0x01, 0x0a, 0x02, 0x15, 0x01],
          "1",
          "2",
          "realtime:t",
          "ev",
          `{"persist":{"ttl":5}}`,
          `{"z":1}`
        )
      )
    )
  })

  it("sends null refs as empty fields and a missing user payload as {}", () => {
    const frame = right(Protocol.v2.encode(msg(null, null, "t", "broadcast", { type: "broadcast", event: "e" })))
    expect(hex(frame)).toBe(hex(bytes([3, 0, 0, 1, 1, 0, 1], "t", "e", "{}")))
  })

  it("only carries allow-listed metadata keys, in payload order", () => {
    const payload = { type: "broadcast", event: "e", b: 2, payload: 1, a: 1, other: true, persist: undefined }
    const none = right(
      Protocol.makeV2({ metadataKeys: [] }).encode(msg("1", "2", "t", "broadcast", { ...payload, persist: true }))
    )
    expect(hex(none)).toBe(hex(bytes([3, 1, 1, 1, 1, 0, 1], "1", "2", "t", "e", "1")))
    const two = right(Protocol.makeV2({ metadataKeys: ["a", "b"] }).encode(msg("1", "2", "t", "broadcast", payload)))
    expect(hex(two)).toBe(hex(bytes([3, 1, 1, 1, 1, 13, 1], "1", "2", "t", "e", `{"b":2,"a":1}`, "1")))
    const undefinedPersist = right(Protocol.v2.encode(msg("1", "2", "t", "broadcast", payload)))
    expect(hex(undefinedPersist)).toBe(hex(bytes([3, 1, 1, 1, 1, 0, 1], "1", "2", "t", "e", "1")))
  })

  it("rejects fields over 255 UTF-8 bytes, naming the field and its length", () => {
    const broadcast = (joinRef: string, topic: string, event: string, extra: object = {}) =>
      Protocol.v2.encode(msg(joinRef, "2", topic, "broadcast", { type: "broadcast", event, payload: {}, ...extra }))
    expect(left(broadcast("1", "t".repeat(256), "e")).detail).toBe("topic length 256 exceeds maximum of 255")
    // 128 × "ö" is 128 UTF-16 units but 256 UTF-8 bytes
    expect(left(broadcast("1", "ö".repeat(128), "e")).detail).toBe("topic length 256 exceeds maximum of 255")
    expect(right(broadcast("1", "t".repeat(255), "e"))).toBeInstanceOf(Uint8Array)
    expect(left(broadcast("1", "t", "🙂".repeat(64))).detail).toBe("userEvent length 256 exceeds maximum of 255")
    expect(left(broadcast("j".repeat(300), "t", "e")).detail).toBe("joinRef length 300 exceeds maximum of 255")
    const tooLong = left(broadcast("1", "t", "e", { persist: { note: "x".repeat(300) } }))
    expect(tooLong.reason).toBe("FieldTooLong")
    expect(tooLong.detail).toMatch(/^metadata length \d+ exceeds maximum of 255$/)
  })

  it("reports unencodable user payloads and metadata as UnsupportedPayload", () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const broadcast = (payload: object) => Protocol.v2.encode(msg("1", "2", "t", "broadcast", payload))
    expect(reason(broadcast({ type: "broadcast", event: "e", payload: cyclic }))).toBe("UnsupportedPayload")
    expect(reason(broadcast({ type: "broadcast", event: "e", payload: () => 1 }))).toBe("UnsupportedPayload")
    expect(reason(broadcast({ type: "broadcast", event: "e", payload: {}, persist: 1n }))).toBe("UnsupportedPayload")
  })

  it("is decoded by the server side, metadata keys merged into the payload", () => {
    const message = msg("1", "2", "realtime:t", "broadcast", {
      type: "broadcast",
      event: "ev",
      payload: { z: 1 },
      persist: { ttl: 5 }
    })
    expect(right(Protocol.serverV2.decode(right(Protocol.v2.encode(message))))).toEqual(message)
  })

  it("server decode: metadata cannot override type, event or payload", () => {
    const frame = bytes([3, 0, 0, 1, 1, 15, 1], "t", "e", `{"event":"bad"}`, "[1]")
    expect(right(Protocol.serverV2.decode(frame)).payload).toEqual({ type: "broadcast", event: "e", payload: [1] })
  })
})

describe("Protocol (parity with the Effect 3 edition): v2 kind 4 (user broadcast)", () => {
  it("decodes the observed frame with metadata", () => {
    const frame = bytes([0x04, 0x0e, 0x01, 0x0b, 0x01], "realtime:room1", "x", `{"id":"m1"}`, `{"b":2}`)
    expect(right(Protocol.v2.decode(frame))).toEqual(
      msg(null, null, "realtime:room1", "broadcast", {
        type: "broadcast",
        event: "x",
        payload: { b: 2 },
        meta: { id: "m1" }
      })
    )
  })

  it("decodes without metadata (no meta key at all)", () => {
    const decoded = right(Protocol.v2.decode(bytes([4, 1, 2, 0, 1], "t", "ev", `"s"`)))
    expect(decoded.payload).toStrictEqual({ type: "broadcast", event: "ev", payload: "s" })
    expect(Object.keys(decoded.payload as object)).toEqual(["type", "event", "payload"])
  })

  it("decodes binary user payloads as a copy of the bytes", () => {
    const frame = bytes([4, 1, 1, 0, 0], "t", "e", [9, 8, 7])
    const decoded = right(Protocol.v2.decode(frame))
    const payload = decoded.payload as { readonly payload: Uint8Array }
    expect(payload.payload).toEqual(new Uint8Array([9, 8, 7]))
    expect(payload.payload.constructor).toBe(Uint8Array)
    frame.fill(0)
    expect(payload.payload).toEqual(new Uint8Array([9, 8, 7]))
  })

  it("copies out of a Node Buffer and out of a view with an offset", () => {
    const inner = bytes([4, 1, 1, 0, 0], "t", "e", [1, 2])
    const outer = new Uint8Array(inner.length + 10)
    outer.set(inner, 5)
    const sub = outer.subarray(5, 5 + inner.length)
    expect((right(Protocol.v2.decode(sub)).payload as { payload: Uint8Array }).payload).toEqual(new Uint8Array([1, 2]))
    const buffer = Buffer.from(inner)
    const fromBuffer = (right(Protocol.v2.decode(buffer)).payload as { payload: Uint8Array }).payload
    expect(fromBuffer.constructor).toBe(Uint8Array)
    expect(Array.from(fromBuffer)).toEqual([1, 2])
  })

  it("decodes UTF-8 fields", () => {
    const decoded = right(Protocol.v2.decode(bytes([4, 19, 5, 0, 1], "realtime:wörld🙂", "évé", "{}")))
    expect(decoded.topic).toBe("realtime:wörld🙂")
    expect((decoded.payload as { event: string }).event).toBe("évé")
  })

  it("round trips through encodeUserBroadcast", () => {
    const json = right(
      Protocol.encodeUserBroadcast({
        topic: "realtime:a",
        event: "e",
        payload: { a: [1] },
        meta: { id: "m", replayed: true }
      })
    )
    expect(hex(json)).toBe(hex(bytes([4, 10, 1, 26, 1], "realtime:a", "e", `{"id":"m","replayed":true}`, `{"a":[1]}`)))
    expect(right(Protocol.v2.decode(json))).toEqual(
      msg(null, null, "realtime:a", "broadcast", {
        type: "broadcast",
        event: "e",
        payload: { a: [1] },
        meta: { id: "m", replayed: true }
      })
    )
    const binary = right(Protocol.encodeUserBroadcast({ topic: "t", event: "e", payload: new Uint8Array([5]) }))
    expect(hex(binary)).toBe(hex(bytes([4, 1, 1, 0, 0], "t", "e", [5])))
  })
})

describe("Protocol (parity with the Effect 3 edition): v2 Phoenix kinds 0, 1, 2", () => {
  it("decodes kind 0 (server push, no ref)", () => {
    expect(right(Protocol.v2.decode(bytes([0, 1, 1, 3], "5", "t", "evt", [1, 2])))).toEqual(
      msg("5", null, "t", "evt", new Uint8Array([1, 2]))
    )
    expect(right(Protocol.v2.decode(bytes([0, 0, 1, 1], "t", "e")))).toEqual(
      msg(null, null, "t", "e", new Uint8Array())
    )
  })

  it("decodes kind 1 (reply)", () => {
    expect(right(Protocol.v2.decode(bytes([1, 1, 2, 1, 2], "5", "12", "t", "ok", [7])))).toEqual(
      msg("5", "12", "t", "phx_reply", { status: "ok", response: new Uint8Array([7]) })
    )
  })

  it("decodes kind 2 (broadcast)", () => {
    expect(right(Protocol.v2.decode(bytes([2, 1, 2], "t", "ev", [1, 2, 3])))).toEqual(
      msg(null, null, "t", "ev", new Uint8Array([1, 2, 3]))
    )
  })

  it("encodes kinds 0, 1, 2 in the server layouts", () => {
    expect(
      hex(
        right(Protocol.encodePhoenixPush({ joinRef: "5", topic: "t", event: "evt", payload: new Uint8Array([1, 2]) }))
      )
    )
      .toBe(hex(bytes([0, 1, 1, 3], "5", "t", "evt", [1, 2])))
    expect(
      hex(
        right(
          Protocol.encodePhoenixReply({
            joinRef: "5",
            ref: "12",
            topic: "t",
            status: "ok",
            response: new Uint8Array([7])
          })
        )
      )
    ).toBe(hex(bytes([1, 1, 2, 1, 2], "5", "12", "t", "ok", [7])))
    expect(hex(right(Protocol.encodePhoenixBroadcast({ topic: "t", event: "ev", payload: new Uint8Array([1, 2, 3]) }))))
      .toBe(hex(bytes([2, 1, 2], "t", "ev", [1, 2, 3])))
    expect(
      left(Protocol.encodePhoenixBroadcast({ topic: "t".repeat(256), event: "e", payload: new Uint8Array() })).detail
    )
      .toBe("topic length 256 exceeds maximum of 255")
  })

  it("client encodes a Uint8Array payload as kind 0 (client layout, with ref); the server decodes it", () => {
    const message = msg("5", "6", "t", "custom", new Uint8Array([1, 2]))
    const frame = right(Protocol.v2.encode(message))
    expect(hex(frame)).toBe(hex(bytes([0, 1, 1, 1, 6], "5", "6", "t", "custom", [1, 2])))
    expect(right(Protocol.serverV2.decode(frame))).toEqual(message)
  })
})

describe("Protocol (parity with the Effect 3 edition): v2 binary errors", () => {
  it("UnknownBinaryKind", () => {
    expect(reason(Protocol.v2.decode(new Uint8Array([5, 0, 0, 0, 0])))).toBe("UnknownBinaryKind")
    expect(reason(Protocol.v2.decode(new Uint8Array([255])))).toBe("UnknownBinaryKind")
    // kind 3 only travels client → server, kinds 1, 2, 4 only server → client
    expect(reason(Protocol.v2.decode(bytes([3, 0, 0, 1, 1, 0, 1], "t", "e", "{}")))).toBe("UnknownBinaryKind")
    expect(reason(Protocol.serverV2.decode(bytes([4, 1, 1, 0, 1], "t", "e", "{}")))).toBe("UnknownBinaryKind")
    expect(reason(Protocol.serverV2.decode(bytes([1, 0, 0, 1, 2], "t", "ok")))).toBe("UnknownBinaryKind")
    expect(reason(Protocol.serverV2.decode(bytes([2, 1, 1], "t", "e")))).toBe("UnknownBinaryKind")
  })

  it("TruncatedFrame", () => {
    expect(reason(Protocol.v2.decode(new Uint8Array()))).toBe("TruncatedFrame")
    expect(reason(Protocol.serverV2.decode(new Uint8Array()))).toBe("TruncatedFrame")
    for (const header of [[0], [0, 1, 1], [1, 0, 0, 0], [2, 1], [4, 1, 1, 0]]) {
      expect(reason(Protocol.v2.decode(Uint8Array.from(header))), String(header)).toBe("TruncatedFrame")
    }
    expect(reason(Protocol.v2.decode(bytes([4, 14, 1, 0, 1], "realtime:r", "x")))).toBe("TruncatedFrame")
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 5, 1], "t", "e", "{}")))).toBe("TruncatedFrame")
    expect(reason(Protocol.v2.decode(bytes([0, 1, 1, 9], "1", "t", "e")))).toBe("TruncatedFrame")
    expect(reason(Protocol.v2.decode(bytes([1, 1, 1, 1, 3], "1", "2", "t", "ok")))).toBe("TruncatedFrame")
    expect(reason(Protocol.v2.decode(bytes([2, 1, 3], "t", "e")))).toBe("TruncatedFrame")
    expect(reason(Protocol.serverV2.decode(bytes([3, 1, 1, 1, 1, 0], "1", "2", "t", "e")))).toBe("TruncatedFrame")
    expect(reason(Protocol.serverV2.decode(bytes([3, 1, 1, 1, 1, 9, 1], "1", "2", "t", "e", "{}")))).toBe(
      "TruncatedFrame"
    )
    expect(reason(Protocol.serverV2.decode(bytes([0, 1, 1, 1, 1], "1", "2", "t")))).toBe("TruncatedFrame")
  })

  it("MalformedJson in the user payload or metadata", () => {
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 0, 1], "t", "e", "{")))).toBe("MalformedJson")
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 0, 1], "t", "e")))).toBe("MalformedJson")
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 2, 1], "t", "e", "{x", "{}")))).toBe("MalformedJson")
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 0, 1], "t", "e", [0x22, 0xff, 0x22])))).toBe("MalformedJson")
    expect(reason(Protocol.serverV2.decode(bytes([3, 0, 0, 1, 1, 0, 1], "t", "e", "nope")))).toBe("MalformedJson")
    expect(reason(Protocol.serverV2.decode(bytes([3, 0, 0, 1, 1, 1, 1], "t", "e", "{", "{}")))).toBe("MalformedJson")
  })

  it("InvalidEnvelope for unknown encodings, bad UTF-8 fields and non-object kind 3 metadata", () => {
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 0, 2], "t", "e", "{}")))).toBe("InvalidEnvelope")
    expect(reason(Protocol.serverV2.decode(bytes([3, 0, 0, 1, 1, 0, 9], "t", "e", "{}")))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 0, 1], [0xc3], "e", "{}")))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v2.decode(bytes([2, 1, 1], "t", [0x80])))).toBe("InvalidEnvelope")
    expect(reason(Protocol.serverV2.decode(bytes([3, 0, 0, 1, 1, 2, 1], "t", "e", "[]", "{}")))).toBe("InvalidEnvelope")
  })

  it("rejects values that are not frames", () => {
    for (const serializer of [Protocol.v1, Protocol.v2, Protocol.serverV1, Protocol.serverV2]) {
      for (const frame of [undefined, null, 42, {}, new ArrayBuffer(3)]) {
        expect(Result.isFailure(serializer.decode(frame as unknown as Protocol.Frame))).toBe(true)
      }
    }
  })
})

// -------------------------------------------------------------------------------------
// round trips
// -------------------------------------------------------------------------------------

describe("Protocol (parity with the Effect 3 edition): round trips", () => {
  const textMessages: ReadonlyArray<Protocol.Message> = [
    msg("6", "6", "realtime:room1", "phx_join", { config: { broadcast: { self: true } }, access_token: "jwt" }),
    msg(null, "12", "phoenix", "heartbeat", {}),
    msg("6", "13", "realtime:room1", "phx_leave", {}),
    msg("6", "11", "realtime:room1", "access_token", { access_token: null }),
    msg("6", "9", "realtime:room1", "presence", { type: "presence", event: "untrack" })
  ]

  it("client encode → server decode, both vsns", () => {
    for (const message of textMessages) {
      expect(right(Protocol.serverV1.decode(right(Protocol.v1.encode(message))))).toEqual(message)
      expect(right(Protocol.serverV2.decode(right(Protocol.v2.encode(message))))).toEqual(message)
    }
    const broadcasts = [
      msg("1", "2", "realtime:t", "broadcast", { type: "broadcast", event: "e", payload: [1, "ü"] }),
      msg("1", "2", "realtime:t", "broadcast", { type: "broadcast", event: "e", payload: new Uint8Array([0, 255]) })
    ]
    for (const message of broadcasts) {
      const frame = right(Protocol.v2.encode(message))
      expect(frame).toBeInstanceOf(Uint8Array)
      expect(right(Protocol.serverV2.decode(frame))).toEqual(message)
    }
  })

  it("server encode → client decode, both vsns", () => {
    const serverMessages = [
      msg("6", "6", "realtime:room1", "phx_reply", { status: "ok", response: { postgres_changes: [] } }),
      msg(null, null, "realtime:room1", "postgres_changes", { ids: [1], data: { type: "INSERT" } }),
      msg("6", null, "realtime:room1", "presence_state", { u: { metas: [{ phx_ref: "r" }] } }),
      msg(null, null, "realtime:room1", "broadcast", { type: "broadcast", event: "x", payload: { a: 1 } })
    ]
    for (const message of serverMessages) {
      expect(right(Protocol.v1.decode(right(Protocol.serverV1.encode(message))))).toEqual({ ...message, joinRef: null })
      expect(right(Protocol.v2.decode(right(Protocol.serverV2.encode(message))))).toEqual(message)
    }
  })

  it("server encode of binary payloads picks kinds 0, 1, 2, 4", () => {
    const cases: ReadonlyArray<readonly [Protocol.Message, number]> = [
      [msg("6", null, "t", "custom", new Uint8Array([1])), 0],
      [msg("6", "7", "t", "phx_reply", { status: "error", response: new Uint8Array([2]) }), 1],
      [msg(null, null, "t", "custom", new Uint8Array([3])), 2],
      [msg(null, null, "t", "broadcast", { type: "broadcast", event: "e", payload: new Uint8Array([4]) }), 4],
      [
        msg(null, null, "t", "broadcast", {
          type: "broadcast",
          event: "e",
          payload: new Uint8Array([5]),
          meta: { id: "m", replayed: true }
        }),
        4
      ]
    ]
    for (const [message, kind] of cases) {
      const frame = right(Protocol.serverV2.encode(message))
      expect(frame).toBeInstanceOf(Uint8Array)
      expect((frame as Uint8Array)[0]).toBe(kind)
      expect(right(Protocol.v2.decode(frame))).toEqual(message)
    }
  })

  it("serializer(vsn) picks the default serializers", () => {
    expect(Protocol.serializer("1.0.0")).toBe(Protocol.v1)
    expect(Protocol.serializer("2.0.0")).toBe(Protocol.v2)
    expect(Protocol.v1.vsn).toBe("1.0.0")
    expect(Protocol.serverV2.vsn).toBe("2.0.0")
  })
})

// -------------------------------------------------------------------------------------
// schemas
// -------------------------------------------------------------------------------------

describe("Protocol (parity with the Effect 3 edition): schemas", () => {
  it("V2TextFrame decodes and encodes the tuple", () => {
    const tuple = ["6", null, "realtime:room1", "system", { extension: "postgres_changes" }]
    const message = msg("6", null, "realtime:room1", "system", { extension: "postgres_changes" })
    expect(Schema.decodeUnknownSync(Protocol.V2TextFrame)(tuple)).toEqual(message)
    expect(Schema.encodeSync(Protocol.V2TextFrame)(message)).toEqual(tuple)
  })

  it("V1TextFrame omits join_ref when null on encode", () => {
    expect(Schema.encodeSync(Protocol.V1TextFrame)(msg(null, "1", "t", "e", {}))).toStrictEqual({
      topic: "t",
      event: "e",
      payload: {},
      ref: "1"
    })
  })

  it("JoinPayload models the realtime-js join", () => {
    const payload = {
      config: {
        broadcast: { self: true, ack: true, replay: { since: 1, limit: 10 } },
        presence: { key: "u1", enabled: true },
        postgres_changes: [
          { event: "INSERT", schema: "public", table: "todos", filter: "id=eq.1" },
          { event: "*", schema: "public", table: "other", select: ["id"] }
        ],
        private: true
      },
      access_token: "USERJWT",
      future: "ignored"
    }
    const decoded = Schema.decodeUnknownSync(Protocol.JoinPayload)(payload)
    expect(decoded.config.postgres_changes?.[1]?.select).toEqual(["id"])
    expect(decoded.access_token).toBe("USERJWT")
  })

  it("payload schemas tolerate unknown keys; presence metas keep their fields", () => {
    expect(Schema.decodeUnknownSync(Protocol.ReplyPayload)({ status: "ok", response: {}, extra: 1 }).status).toBe("ok")
    expect(
      Schema.decodeUnknownSync(Protocol.SystemPayload)({
        extension: "system",
        status: "error",
        message: "Too many messages per second",
        extra: true
      }).channel
    ).toBeUndefined()
    const state = Schema.decodeUnknownSync(Protocol.PresenceStatePayload)({
      ada: { metas: [{ phx_ref: "r1", phx_ref_prev: "r0", name: "Ada" }] }
    })
    expect(state.ada?.metas[0]).toEqual({ phx_ref: "r1", phx_ref_prev: "r0", name: "Ada" })
    const diff = Schema.decodeUnknownSync(Protocol.PresenceDiffPayload)({
      joins: {},
      leaves: { b: { metas: [{ phx_ref: "x" }] } }
    })
    expect(diff.leaves.b?.metas).toHaveLength(1)
    const change = Schema.decodeUnknownSync(Protocol.PostgresChangesPayload)({
      ids: [111],
      data: {
        schema: "public",
        table: "todos",
        commit_timestamp: "2024-01-01T00:00:00Z",
        type: "UPDATE",
        columns: [{ name: "id", type: "int8" }],
        record: { id: 1 },
        old_record: { id: 1 },
        errors: null
      }
    })
    expect(change.data.type).toBe("UPDATE")
    expect(
      Schema.decodeUnknownSync(Protocol.BroadcastPayload)({
        type: "broadcast",
        event: "x",
        payload: { b: 2 },
        meta: { id: "m1", replayed: true }
      }).meta?.replayed
    ).toBe(true)
    expect(Schema.decodeUnknownSync(Protocol.AccessTokenPayload)({ access_token: null }).access_token).toBeNull()
    expect(Schema.decodeUnknownSync(Protocol.HeartbeatPayload)({})).toEqual({})
    expect(
      Schema.decodeUnknownSync(Protocol.JoinReplyResponse)({
        postgres_changes: [{ id: 1, event: "*", schema: "public" }]
      }).postgres_changes
    ).toHaveLength(1)
    expect(Schema.is(Protocol.PresencePushPayload)({ type: "presence", event: "untrack" })).toBe(true)
  })
})

// -------------------------------------------------------------------------------------
// properties
// -------------------------------------------------------------------------------------

const utf8Length = (s: string): number => encoder.encode(s).length

/** A string that fits a binary length byte and survives UTF-8 (no lone surrogates). */
const field = (minLength = 0) =>
  fc.string({ unit: "grapheme", minLength, maxLength: 30 }).filter((s) => utf8Length(s) <= 255)

const refArb = fc.option(field(1), { nil: null })

const nonBroadcastEvent = fc.oneof(
  fc.constantFrom(...Object.values(Protocol.Events).filter((e) => e !== "broadcast")),
  field()
).filter((e) => e !== "broadcast")

/** JSON values, normalised through JSON (`-0` becomes `0`). */
const jsonPayload = fc.jsonValue().map((value) => JSON.parse(JSON.stringify(value)) as unknown)

const bytesArb = fc.uint8Array({ maxLength: 64 })

/** Arrays and values shaped like, or almost like, an envelope. */
const envelopeish = (() => {
  const slot = fc.oneof(fc.constant(null), fc.string(), fc.integer(), fc.boolean(), fc.jsonValue({ maxDepth: 1 }))
  const stringy = fc.oneof({ weight: 4, arbitrary: fc.string() }, { weight: 1, arbitrary: slot })
  const nullableString = fc.oneof(fc.constant(null), stringy)
  return fc.oneof(
    fc.tuple(nullableString, nullableString, stringy, stringy, fc.jsonValue()),
    fc.array(slot, { maxLength: 7 }),
    fc.jsonValue(),
    fc.record(
      { topic: stringy, event: stringy, payload: fc.jsonValue(), ref: nullableString, join_ref: nullableString },
      { requiredKeys: [] }
    )
  )
})()

const sameOutcome = (
  handwritten: Result.Result<Protocol.Message, ProtocolError>,
  schema: Result.Result<Protocol.Message, unknown>
) => {
  expect(Result.isSuccess(handwritten)).toBe(Result.isSuccess(schema))
  if (Result.isSuccess(handwritten) && Result.isSuccess(schema)) expect(handwritten.success).toEqual(schema.success)
}

describe("Protocol (parity with the Effect 3 edition): properties", () => {
  const serializers = [Protocol.v1, Protocol.v2, Protocol.serverV1, Protocol.serverV2]

  it("decode never throws on arbitrary strings", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: "binary" }), envelopeish.map((value) => JSON.stringify(value) ?? "")),
        (frame) => {
          for (const serializer of serializers) expect(Result.isResult(serializer.decode(frame))).toBe(true)
        }
      ),
      { numRuns: 500 }
    )
  })

  it("decode never throws on arbitrary bytes, including bytes that start with a known kind", () => {
    const small = fc.uint8Array({ maxLength: 40 })
    const kinded = fc.tuple(
      fc.integer({ min: 0, max: 4 }),
      fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 6 }),
      small
    )
      .map(([kind, header, rest]) => Uint8Array.from([kind, ...header, ...rest]))
    fc.assert(
      fc.property(fc.oneof(small, kinded), (frame) => {
        for (const serializer of serializers) {
          const result = serializer.decode(frame)
          expect(Result.isResult(result)).toBe(true)
          if (Result.isFailure(result)) expect(result.failure).toBeInstanceOf(ProtocolError)
        }
      }),
      { numRuns: 1000 }
    )
  })

  it("the hand-written v2 text decoder and V2TextFrame agree", () => {
    const decodeSchema = Schema.decodeUnknownResult(Protocol.V2TextFrame)
    fc.assert(
      fc.property(envelopeish, (value) => {
        const text = JSON.stringify(value)
        sameOutcome(Protocol.v2.decode(text), decodeSchema(JSON.parse(text)))
        sameOutcome(Protocol.serverV2.decode(text), decodeSchema(JSON.parse(text)))
      }),
      { numRuns: 1000 }
    )
  })

  it("the hand-written v1 decoder and V1TextFrame agree", () => {
    const decodeSchema = Schema.decodeUnknownResult(Protocol.V1TextFrame)
    fc.assert(
      fc.property(envelopeish, (value) => {
        const text = JSON.stringify(value)
        sameOutcome(Protocol.v1.decode(text), decodeSchema(JSON.parse(text)))
      }),
      { numRuns: 1000 }
    )
  })

  it("text encode → decode is the identity (both directions, both vsns)", () => {
    fc.assert(
      fc.property(
        refArb,
        refArb,
        fc.string({ unit: "binary" }),
        nonBroadcastEvent,
        jsonPayload,
        (joinRef, ref, topic, event, payload) => {
          const message = msg(joinRef, ref, topic, event, payload)
          expect(right(Protocol.serverV2.decode(right(Protocol.v2.encode(message))))).toEqual(message)
          expect(right(Protocol.v2.decode(right(Protocol.serverV2.encode(message))))).toEqual(message)
          expect(right(Protocol.serverV1.decode(right(Protocol.v1.encode(message))))).toEqual(message)
          expect(right(Protocol.v1.decode(right(Protocol.serverV1.encode(message))))).toEqual({
            ...message,
            joinRef: null
          })
        }
      ),
      { numRuns: 500 }
    )
  })

  it("kind 3 encode → server decode is the identity (JSON and binary user payloads, persist)", () => {
    const userPayload = fc.oneof(jsonPayload.filter((v) => v !== null), bytesArb)
    const persist = fc.option(fc.oneof(fc.boolean(), fc.record({ ttl: fc.nat() })), { nil: undefined })
    fc.assert(
      fc.property(
        refArb,
        refArb,
        field(),
        field(),
        userPayload,
        persist,
        (joinRef, ref, topic, event, payload, keep) => {
          const message = msg(
            joinRef,
            ref,
            topic,
            "broadcast",
            keep === undefined
              ? { type: "broadcast", event, payload }
              : { type: "broadcast", event, payload, persist: keep }
          )
          const frame = right(Protocol.v2.encode(message))
          expect(frame).toBeInstanceOf(Uint8Array)
          expect(right(Protocol.serverV2.decode(frame))).toEqual(message)
        }
      ),
      { numRuns: 500 }
    )
  })

  it("kind 4 encode → client decode is the identity (JSON and binary user payloads, meta)", () => {
    const userPayload = fc.oneof(jsonPayload.filter((v) => v !== null), bytesArb)
    const meta = fc.option(fc.record({ id: fc.uuid(), replayed: fc.boolean() }, { requiredKeys: ["id"] }), {
      nil: undefined
    })
    fc.assert(
      fc.property(field(), field(), userPayload, meta, (topic, event, payload, meta) => {
        const frame = right(
          Protocol.encodeUserBroadcast(meta === undefined ? { topic, event, payload } : { topic, event, payload, meta })
        )
        expect(right(Protocol.v2.decode(frame))).toEqual(
          msg(
            null,
            null,
            topic,
            "broadcast",
            meta === undefined ? { type: "broadcast", event, payload } : { type: "broadcast", event, payload, meta }
          )
        )
      }),
      { numRuns: 500 }
    )
  })

  it("binary kinds 0, 1, 2 encode → decode is the identity", () => {
    fc.assert(
      fc.property(refArb, refArb, field(), field(), bytesArb, (joinRef, ref, topic, event, payload) => {
        // client kind 0 → server
        const push = msg(joinRef, ref, topic, event === "broadcast" ? "b" : event, payload)
        expect(right(Protocol.serverV2.decode(right(Protocol.v2.encode(push))))).toEqual(push)
        // server kinds 0 / 2 → client (server pushes carry no ref)
        const serverPush = msg(joinRef, null, topic, event, payload)
        expect(right(Protocol.v2.decode(right(Protocol.serverV2.encode(serverPush))))).toEqual(serverPush)
        // server kind 1 → client
        const reply = msg(joinRef, ref, topic, "phx_reply", { status: event, response: payload })
        expect(right(Protocol.v2.decode(right(Protocol.serverV2.encode(reply))))).toEqual(reply)
      }),
      { numRuns: 500 }
    )
  })
})

// -------------------------------------------------------------------------------------
// interop with realtime-js's own serializer (2.109, dev dependency)
// -------------------------------------------------------------------------------------

describe("Protocol (parity with the Effect 3 edition): interop with @supabase/realtime-js Serializer", () => {
  // realtime-js measures fields in UTF-16 units and writes them with `charCodeAt`: it only agrees on ASCII
  const ascii = (minLength = 0) => fc.string({ unit: "grapheme-ascii", minLength, maxLength: 40 })
  const asciiRef = fc.option(fc.stringMatching(/^[0-9]{1,6}$/), { nil: null })
  const toArrayBuffer = (u: Uint8Array): ArrayBuffer => u.slice().buffer as ArrayBuffer

  interface RealtimeJsSerializer {
    encode(message: object, callback: (frame: ArrayBuffer | string) => unknown): unknown
    decode(frame: ArrayBuffer | string, callback: (message: never) => unknown): unknown
  }
  const RealtimeJsSerializer: new(allowedMetadataKeys?: Array<string>) => RealtimeJsSerializer = createRequire(
    import.meta.url
  )("@supabase/realtime-js/dist/main/lib/serializer.js").default
  const theirs = new RealtimeJsSerializer(["persist"])
  const theirEncode = (message: Protocol.Message): string | Uint8Array => {
    const payload = message.payload as Record<string, unknown>
    const inner = payload.payload
    const out = theirs.encode(
      {
        join_ref: message.joinRef,
        ref: message.ref,
        topic: message.topic,
        event: message.event,
        payload: inner instanceof Uint8Array ? { ...payload, payload: toArrayBuffer(inner) } : payload
      },
      (frame: ArrayBuffer | string) => frame
    ) as ArrayBuffer | string
    return typeof out === "string" ? out : new Uint8Array(out)
  }
  const theirDecode = (frame: Protocol.Frame): Protocol.Message => {
    const decoded = theirs.decode(
      typeof frame === "string" ? frame : toArrayBuffer(frame),
      (m: { join_ref: string | null; ref: string | null; topic: string; event: string; payload: unknown }) => m
    ) as { join_ref: string | null; ref: string | null; topic: string; event: string; payload: unknown }
    const payload = decoded.payload as Record<string, unknown>
    return {
      joinRef: decoded.join_ref,
      ref: decoded.ref,
      topic: decoded.topic,
      event: decoded.event,
      payload: isObjectWith(payload, "payload") && payload.payload instanceof ArrayBuffer
        ? { ...payload, payload: new Uint8Array(payload.payload) }
        : payload
    }
  }

  it("encodes broadcasts and text pushes to the same frames", () => {
    const userPayload = fc.oneof(jsonPayload.filter((v) => v !== null), bytesArb)
    const persist = fc.option(fc.oneof(fc.boolean(), fc.record({ ttl: fc.nat() })), { nil: undefined })
    fc.assert(
      fc.property(
        asciiRef,
        asciiRef,
        ascii(),
        ascii(),
        userPayload,
        persist,
        (joinRef, ref, topic, event, payload, keep) => {
          const broadcast = msg(
            joinRef,
            ref,
            topic,
            "broadcast",
            keep === undefined
              ? { type: "broadcast", event, payload }
              : { type: "broadcast", event, payload, persist: keep }
          )
          expect(hex(right(Protocol.v2.encode(broadcast)))).toBe(hex(theirEncode(broadcast)))
          const text = msg(joinRef, ref, topic, event === "broadcast" ? "b" : event, { payload: null, x: [1] })
          expect(right(Protocol.v2.encode(text))).toBe(theirEncode(text))
        }
      ),
      { numRuns: 300 }
    )
  })

  it("decodes kind 4 and text frames to the same messages", () => {
    const userPayload = fc.oneof(jsonPayload, bytesArb)
    const meta = fc.option(fc.record({ id: fc.uuid(), replayed: fc.boolean() }, { requiredKeys: ["id"] }), {
      nil: undefined
    })
    fc.assert(
      fc.property(ascii(), ascii(), userPayload, meta, (topic, event, payload, meta) => {
        const kind4 = right(
          Protocol.encodeUserBroadcast(meta === undefined ? { topic, event, payload } : { topic, event, payload, meta })
        )
        expect(right(Protocol.v2.decode(kind4))).toEqual(theirDecode(kind4))
        const text = right(Protocol.serverV2.encode(msg("1", null, topic, event, { payload: meta ?? null, x: 1 })))
        expect(right(Protocol.v2.decode(text))).toEqual(theirDecode(text))
      }),
      { numRuns: 300 }
    )
  })
})

// -------------------------------------------------------------------------------------
// Presence: the scenarios of the Effect 3 edition's test/Presence.test.ts (its sync algorithm is
// the core's; these run it through the Effect 4 wrapper)
// -------------------------------------------------------------------------------------

describe("Presence (parity with the Effect 3 edition)", () => {
  const meta = (ref: string, fields: Record<string, unknown> = {}, prev?: string): RawMeta =>
    prev === undefined ? { ...fields, phx_ref: ref } : { ...fields, phx_ref: ref, phx_ref_prev: prev }

  const raw = (entries: Record<string, ReadonlyArray<RawMeta>>): RawState =>
    Object.fromEntries(Object.entries(entries).map(([key, metas]) => [key, { metas }]))

  const diff = (
    joins: Record<string, ReadonlyArray<RawMeta>>,
    leaves: Record<string, ReadonlyArray<RawMeta>> = {}
  ): RawDiff => ({ joins: raw(joins), leaves: raw(leaves) })

  const refs = (state: PresenceState): Record<string, ReadonlyArray<string>> =>
    Object.fromEntries([...state].map(([key, metas]) => [key, metas.map((m) => m.phx_ref)]))

  const tags = (events: ReadonlyArray<PresenceEvent>) => events.map((e) => `${e._tag}:${e.key}`)

  const stateOf = (entries: Record<string, ReadonlyArray<RawMeta>>): PresenceState =>
    Presence.syncState(Presence.empty, raw(entries)).state

  describe("Presence.syncDiff", () => {
    it("a new key joins", () => {
      const { events, state } = Presence.syncDiff(Presence.empty, diff({ ada: [meta("1", { x: 1 })] }))
      expect(refs(state)).toEqual({ ada: ["1"] })
      expect(events).toEqual([
        Presence.PresenceEvent.Join({ key: "ada", current: [meta("1", { x: 1 })], joined: [meta("1", { x: 1 })] })
      ])
    })

    it("an existing key gains a meta; current is the key's metas after the join", () => {
      const s0 = stateOf({ ada: [meta("1")] })
      const { events, state } = Presence.syncDiff(s0, diff({ ada: [meta("2")] }))
      expect(refs(state)).toEqual({ ada: ["1", "2"] })
      expect(events).toEqual([
        Presence.PresenceEvent.Join({ key: "ada", current: [meta("1"), meta("2")], joined: [meta("2")] })
      ])
    })

    it("one of several metas leaves: the key stays", () => {
      const s0 = stateOf({ ada: [meta("1"), meta("2")] })
      const { events, state } = Presence.syncDiff(s0, diff({}, { ada: [meta("1")] }))
      expect(refs(state)).toEqual({ ada: ["2"] })
      expect(events).toEqual([Presence.PresenceEvent.Leave({ key: "ada", current: [meta("2")], left: [meta("1")] })])
    })

    it("the last meta leaves: the key is removed", () => {
      const s0 = stateOf({ ada: [meta("1")], bob: [meta("9")] })
      const { events, state } = Presence.syncDiff(s0, diff({}, { ada: [meta("1")] }))
      expect(refs(state)).toEqual({ bob: ["9"] })
      expect(state.has("ada")).toBe(false)
      expect(events).toEqual([Presence.PresenceEvent.Leave({ key: "ada", current: [], left: [meta("1")] })])
    })

    it("a re-track (phx_ref_prev = a leaving ref of the same key) is one Update", () => {
      const s0 = stateOf({ ada: [meta("1", { status: "away" })] })
      const next = meta("2", { status: "online" }, "1")
      const { events, state } = Presence.syncDiff(s0, diff({ ada: [next] }, { ada: [meta("1", { status: "away" })] }))
      expect(refs(state)).toEqual({ ada: ["2"] })
      expect(events).toEqual([
        Presence.PresenceEvent.Update({
          key: "ada",
          current: [next],
          previous: [meta("1", { status: "away" })],
          updated: [next]
        })
      ])
    })

    it("an update next to a genuine join and a genuine leave of the same key", () => {
      const s0 = stateOf({ ada: [meta("1"), meta("2")] })
      const upd = meta("3", { v: 2 }, "1")
      const fresh = meta("4")
      const { events, state } = Presence.syncDiff(s0, diff({ ada: [upd, fresh] }, { ada: [meta("1"), meta("2")] }))
      expect(refs(state)).toEqual({ ada: ["3", "4"] })
      expect(tags(events)).toEqual(["Join:ada", "Update:ada", "Leave:ada"])
      const [join, update, leave] = events
      expect(join).toMatchObject({ joined: [fresh] })
      expect(update).toMatchObject({ previous: [meta("1")], updated: [upd] })
      expect(leave).toMatchObject({ left: [meta("2")], current: [upd, fresh] })
    })

    it("a joined meta whose phx_ref_prev is not leaving is a Join (the old meta stays)", () => {
      const s0 = stateOf({ ada: [meta("1")] })
      const { events, state } = Presence.syncDiff(s0, diff({ ada: [meta("2", {}, "1")] }))
      expect(refs(state)).toEqual({ ada: ["1", "2"] })
      expect(tags(events)).toEqual(["Join:ada"])
    })

    it("a phx_ref_prev pointing into another key is not an update", () => {
      const s0 = stateOf({ ada: [meta("1")] })
      const { events } = Presence.syncDiff(s0, diff({ bob: [meta("2", {}, "1")] }, { ada: [meta("1")] }))
      expect(tags(events)).toEqual(["Join:bob", "Leave:ada"])
    })

    it("re-tracks batched in one diff resolve to one Update from the ref in the state", () => {
      const s0 = stateOf({ ada: [meta("1", { v: 0 })] })
      const { events, state } = Presence.syncDiff(
        s0,
        diff({ ada: [meta("2", { v: 1 }, "1"), meta("3", { v: 2 }, "2")] }, { ada: [meta("1"), meta("2")] })
      )
      expect(refs(state)).toEqual({ ada: ["3"] })
      expect(events).toEqual([
        Presence.PresenceEvent.Update({
          key: "ada",
          current: [meta("3", { v: 2 }, "2")],
          previous: [meta("1", { v: 0 })],
          updated: [meta("3", { v: 2 }, "2")]
        })
      ])
    })

    it("a meta that joins and leaves within one diff changes nothing and emits nothing", () => {
      const s0 = stateOf({ ada: [meta("1")] })
      const { events, state } = Presence.syncDiff(s0, diff({ ada: [meta("2")] }, { ada: [meta("2")] }))
      expect(refs(state)).toEqual({ ada: ["1"] })
      expect(events).toEqual([])
    })

    it("a leave for an unknown ref is a no-op", () => {
      const s0 = stateOf({ ada: [meta("1")] })
      const { events, state } = Presence.syncDiff(s0, diff({}, { ada: [meta("nope")] }))
      expect(refs(state)).toEqual({ ada: ["1"] })
      expect(events).toEqual([])
    })

    it("a leave for a key not in the state is a no-op", () => {
      const s0 = stateOf({ ada: [meta("1")] })
      const { events, state } = Presence.syncDiff(s0, diff({}, { ghost: [meta("1")] }))
      expect(refs(state)).toEqual({ ada: ["1"] })
      expect(state.has("ghost")).toBe(false)
      expect(events).toEqual([])
    })

    it("a join whose phx_ref exists replaces it: unchanged → no event, changed → Update", () => {
      const s0 = stateOf({ ada: [meta("1", { v: 1 }), meta("2")] })
      const same = Presence.syncDiff(s0, diff({ ada: [meta("1", { v: 1 })] }))
      expect(refs(same.state)).toEqual({ ada: ["2", "1"] })
      expect(same.events).toEqual([])
      const changed = Presence.syncDiff(s0, diff({ ada: [meta("1", { v: 2 })] }))
      expect(refs(changed.state)).toEqual({ ada: ["2", "1"] })
      expect(changed.state.get("ada")![1]).toEqual(meta("1", { v: 2 }))
      expect(changed.events).toEqual([
        Presence.PresenceEvent.Update({
          key: "ada",
          current: [meta("2"), meta("1", { v: 2 })],
          previous: [meta("1", { v: 1 })],
          updated: [meta("1", { v: 2 })]
        })
      ])
    })

    it("a ref repeated inside one join is kept once", () => {
      const { state } = Presence.syncDiff(Presence.empty, diff({ ada: [meta("1", { v: 1 }), meta("1", { v: 2 })] }))
      expect(state.get("ada")).toEqual([meta("1", { v: 2 })])
    })

    it("two sockets sharing a key: re-track and untrack leave no ghosts", () => {
      let s = Presence.empty
      s = Presence.syncDiff(s, diff({ ada: [meta("a1", { dev: "phone" })] })).state
      s = Presence.syncDiff(s, diff({ ada: [meta("b1", { dev: "laptop" })] })).state
      // socket a re-tracks
      const up = Presence.syncDiff(
        s,
        diff({ ada: [meta("a2", { dev: "phone", typing: true }, "a1")] }, { ada: [meta("a1", { dev: "phone" })] })
      )
      expect(tags(up.events)).toEqual(["Update:ada"])
      expect(refs(up.state)).toEqual({ ada: ["b1", "a2"] })
      // both untrack, one at a time
      const l1 = Presence.syncDiff(up.state, diff({}, { ada: [meta("b1", { dev: "laptop" })] }))
      expect(refs(l1.state)).toEqual({ ada: ["a2"] })
      expect(l1.events).toEqual([
        Presence.PresenceEvent.Leave({
          key: "ada",
          current: [meta("a2", { dev: "phone", typing: true }, "a1")],
          left: [meta("b1", { dev: "laptop" })]
        })
      ])
      // building the public shape must not disturb the state (realtime-js renames phx_ref in place)
      Presence.toPublic(l1.state)
      l1.events.map(Presence.toPublicEvent)
      const l2 = Presence.syncDiff(l1.state, diff({}, { ada: [meta("a2")] }))
      expect(l2.state.size).toBe(0)
      expect(tags(l2.events)).toEqual(["Leave:ada"])
    })

    it("keys such as __proto__ and constructor are plain keys", () => {
      const payload = JSON.parse(
        `{"joins":{"__proto__":{"metas":[{"phx_ref":"1"}]},"constructor":{"metas":[{"phx_ref":"2"}]}},"leaves":{}}`
      )
      const { state } = Presence.syncDiff(Presence.empty, payload)
      expect([...state.keys()]).toEqual(["__proto__", "constructor"])
      const pub = Presence.toPublic(state)
      expect(Object.keys(pub)).toEqual(["__proto__", "constructor"])
      expect(pub["__proto__"]).toEqual([{ presence_ref: "1" }])
      expect(Object.getPrototypeOf(pub)).toBe(null)
    })

    it("malformed entries are skipped without throwing", () => {
      const bad = {
        joins: { a: { metas: [{ phx_ref: 1 }, null, { phx_ref: "ok" }] }, b: "x", c: { metas: "no" } },
        leaves: [1, 2]
      } as unknown as RawDiff
      const { events, state } = Presence.syncDiff(Presence.empty, bad)
      expect(refs(state)).toEqual({ a: ["ok"] })
      expect(tags(events)).toEqual(["Join:a"])
      expect(Presence.syncDiff(Presence.empty, null as unknown as RawDiff).events).toEqual([])
      expect(Presence.isRawDiff(bad)).toBe(false)
      expect(Presence.isRawDiff(diff({ a: [meta("1")] }))).toBe(true)
      expect(Presence.isRawState(raw({ a: [meta("1", {}, "0")] }))).toBe(true)
      expect(Presence.isRawState({ a: { metas: [{ phx_ref: "1", phx_ref_prev: 3 }] } })).toBe(false)
    })

    it("is dual (data-last form)", () => {
      const r = Presence.syncDiff(diff({ a: [meta("1")] }))(Presence.empty)
      expect(refs(r.state)).toEqual({ a: ["1"] })
      expect(refs(Presence.syncState(raw({ b: [meta("2")] }))(r.state).state)).toEqual({ b: ["2"] })
    })
  })

  describe("Presence.syncState", () => {
    it("the first state: every key joins", () => {
      const { events, state } = Presence.syncState(Presence.empty, raw({ ada: [meta("1")], bob: [meta("2")] }))
      expect(refs(state)).toEqual({ ada: ["1"], bob: ["2"] })
      expect(tags(events)).toEqual(["Join:ada", "Join:bob"])
    })

    it("a state replacing a state computes joins, leaves and updates", () => {
      const s0 = stateOf({ ada: [meta("1"), meta("2")], bob: [meta("3")], cy: [meta("4", { v: 1 })] })
      const { events, state } = Presence.syncState(
        s0,
        raw({ ada: [meta("2"), meta("5")], cy: [meta("6", { v: 2 }, "4")], dee: [meta("7")] })
      )
      expect(refs(state)).toEqual({ ada: ["2", "5"], cy: ["6"], dee: ["7"] })
      expect(tags(events)).toEqual(["Join:ada", "Leave:ada", "Update:cy", "Join:dee", "Leave:bob"])
      expect(events[0]).toMatchObject({ joined: [meta("5")], current: [meta("2"), meta("5")] })
      expect(events[1]).toMatchObject({ left: [meta("1")] })
      expect(events[2]).toMatchObject({ previous: [meta("4", { v: 1 })], updated: [meta("6", { v: 2 }, "4")] })
      expect(events[4]).toMatchObject({ left: [meta("3")], current: [] })
    })

    it("the result is exactly the snapshot, content included", () => {
      const s0 = stateOf({ ada: [meta("1", { v: 1 })] })
      const { events, state } = Presence.syncState(s0, raw({ ada: [meta("1", { v: 2 })] }))
      expect(state.get("ada")).toEqual([meta("1", { v: 2 })])
      expect(tags(events)).toEqual(["Update:ada"])
      expect(Presence.syncState(state, raw({ ada: [meta("1", { v: 2 })] })).events).toEqual([])
    })

    it("an empty state clears everything", () => {
      const s0 = stateOf({ ada: [meta("1")], bob: [meta("2")] })
      const { events, state } = Presence.syncState(s0, {})
      expect(state.size).toBe(0)
      expect(tags(events)).toEqual(["Leave:ada", "Leave:bob"])
    })
  })

  describe("Presence.Syncer", () => {
    it("diffs before the first state are buffered, then applied after it", () => {
      let s = Presence.makeSyncer()
      const d1 = Presence.receiveDiff(s, "1", diff({ bob: [meta("2")] }))
      expect(d1.synced).toBe(false)
      expect(d1.events).toEqual([])
      expect(d1.syncer.pending).toHaveLength(1)
      s = d1.syncer
      const st = Presence.receiveState(s, "1", raw({ ada: [meta("1")] }))
      expect(st.synced).toBe(true)
      expect(refs(st.syncer.state)).toEqual({ ada: ["1"], bob: ["2"] })
      expect(tags(st.events)).toEqual(["Join:ada", "Join:bob"])
      expect(st.syncer.pending).toEqual([])
      const d2 = Presence.receiveDiff(st.syncer, "1", diff({}, { ada: [meta("1")] }))
      expect(d2.synced).toBe(true)
      expect(refs(d2.syncer.state)).toEqual({ bob: ["2"] })
    })

    it("a replayed diff already contained in the snapshot changes nothing", () => {
      const s =
        Presence.receiveDiff(Presence.makeSyncer(), "1", diff({ ada: [meta("1")] }, { bob: [meta("0")] })).syncer
      const st = Presence.receiveState(s, "1", raw({ ada: [meta("1")] }))
      expect(refs(st.syncer.state)).toEqual({ ada: ["1"] })
      expect(tags(st.events)).toEqual(["Join:ada"])
    })

    it("after a rejoin, diffs wait for the new join's state; diffs of another join are dropped", () => {
      let s = Presence.receiveState(Presence.makeSyncer(), "1", raw({ ada: [meta("1")] })).syncer
      // channel rejoined with join ref 5: diffs are buffered until the state of join 5
      const a = Presence.receiveDiff(s, "5", diff({ bob: [meta("2")] }))
      expect(a.synced).toBe(false)
      s = Presence.receiveDiff(a.syncer, "4", diff({ cy: [meta("3")] })).syncer
      const st = Presence.receiveState(s, "5", raw({ dee: [meta("4")] }))
      expect(st.dropped).toBe(1)
      expect(refs(st.syncer.state)).toEqual({ dee: ["4"], bob: ["2"] })
      expect(tags(st.events)).toEqual(["Join:dee", "Leave:ada", "Join:bob"])
      expect(st.syncer.joinRef).toBe("5")
    })

    it("the buffer is bounded, oldest first", () => {
      let s = Presence.makeSyncer({ maxPending: 2 })
      let dropped = 0
      for (const ref of ["1", "2", "3"]) {
        const r = Presence.receiveDiff(s, "1", diff({ [`k${ref}`]: [meta(ref)] }))
        s = r.syncer
        dropped += r.dropped
      }
      expect(dropped).toBe(1)
      const st = Presence.receiveState(s, "1", {})
      expect(refs(st.syncer.state)).toEqual({ k2: ["2"], k3: ["3"] })
    })

    it("is dual (data-last form)", () => {
      const r = Presence.receiveState("1", raw({ a: [meta("1")] }))(Presence.makeSyncer())
      expect(refs(r.syncer.state)).toEqual({ a: ["1"] })
      const d = Presence.receiveDiff("1", diff({ b: [meta("2")] }))(r.syncer)
      expect(refs(d.syncer.state)).toEqual({ a: ["1"], b: ["2"] })
    })
  })

  describe("Presence public shape", () => {
    it("toPublic renames phx_ref to presence_ref and drops phx_ref_prev", () => {
      const s = stateOf({ u2: [meta("r2", { name: "bob" }, "r1")] })
      expect(Presence.toPublic(s)).toEqual({ u2: [{ name: "bob", presence_ref: "r2" }] })
      expect(Object.keys(Presence.toPublic(s)["u2"]![0]!)).toEqual(["name", "presence_ref"])
    })

    it("toPublicEvent maps every meta list", () => {
      const e = Presence.PresenceEvent.Update({
        key: "k",
        current: [meta("2", { a: 1 }, "1")],
        previous: [meta("1", { a: 0 })],
        updated: [meta("2", { a: 1 }, "1")]
      })
      expect(Presence.toPublicEvent(e)).toEqual(
        Presence.PresenceEvent.Update({
          key: "k",
          current: [{ a: 1, presence_ref: "2" }],
          previous: [{ a: 0, presence_ref: "1" }],
          updated: [{ a: 1, presence_ref: "2" }]
        })
      )
    })
  })

  // -----------------------------------------------------------------------------
  // property: a simulated server's diffs (and resyncs) reproduce its truth exactly
  // -----------------------------------------------------------------------------

  type Op =
    | { readonly _tag: "track"; readonly client: number; readonly payload: number }
    | { readonly _tag: "untrack"; readonly client: number }
    | { readonly _tag: "flush" }
    | { readonly _tag: "resync" }
    | { readonly _tag: "rejoin" }

  const CLIENTS = 5

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({ _tag: fc.constant("track" as const), client: fc.nat(CLIENTS - 1), payload: fc.nat(2) })
    },
    { weight: 3, arbitrary: fc.record({ _tag: fc.constant("untrack" as const), client: fc.nat(CLIENTS - 1) }) },
    { weight: 4, arbitrary: fc.constant({ _tag: "flush" as const }) },
    { weight: 1, arbitrary: fc.constant({ _tag: "resync" as const }) },
    { weight: 1, arbitrary: fc.constant({ _tag: "rejoin" as const }) }
  )

  class Server {
    refCounter = 0
    readonly tracked = new Map<number, { readonly ref: string; readonly payload: number }>()
    joins = new Map<string, Array<RawMeta>>()
    leaves = new Map<string, Array<RawMeta>>()
    constructor(readonly keyOf: ReadonlyArray<string>) {}

    private push(into: Map<string, Array<RawMeta>>, key: string, m: RawMeta) {
      const list = into.get(key) ?? []
      list.push(m)
      into.set(key, list)
    }

    private metaOf(client: number): RawMeta | undefined {
      const t = this.tracked.get(client)
      return t && meta(t.ref, { client, payload: t.payload })
    }

    track(client: number, payload: number) {
      const key = this.keyOf[client]!
      const old = this.tracked.get(client)
      if (old !== undefined && old.payload === payload) return // unchanged payload: server no-op
      const ref = `r${++this.refCounter}`
      this.tracked.set(client, { ref, payload })
      this.push(this.joins, key, meta(ref, { client, payload }, old?.ref))
      if (old !== undefined) this.push(this.leaves, key, meta(old.ref, { client, payload: old.payload }))
    }

    untrack(client: number) {
      const m = this.metaOf(client)
      if (m === undefined) return
      this.tracked.delete(client)
      this.push(this.leaves, this.keyOf[client]!, m)
    }

    takeDiff(): RawDiff | undefined {
      if (this.joins.size === 0 && this.leaves.size === 0) return undefined
      const d: RawDiff = {
        joins: Object.fromEntries([...this.joins].map(([k, metas]) => [k, { metas }])),
        leaves: Object.fromEntries([...this.leaves].map(([k, metas]) => [k, { metas }]))
      }
      this.joins = new Map()
      this.leaves = new Map()
      return d
    }

    snapshot(): RawState {
      const out: Record<string, { metas: Array<RawMeta> }> = Object.create(null) // `__proto__` is a key
      for (const client of [...this.tracked.keys()].sort()) {
        const key = this.keyOf[client]!
        ;(out[key] ??= { metas: [] }).metas.push(this.metaOf(client)!)
      }
      return out
    }
  }

  const canonical = (state: PresenceState) =>
    Object.fromEntries(
      [...state].sort(([a], [b]) => (a < b ? -1 : 1)).map((
        [key, metas]
      ) => [key, metas.map((m) => `${m.phx_ref}/${String(m["client"])}/${String(m["payload"])}`).sort()])
    )

  const truthOf = (server: Server) => canonical(Presence.syncState(Presence.empty, server.snapshot()).state)

  // by ref, without `phx_ref_prev` (a snapshot may omit it; it is not part of a meta's content)
  const byRef = (metas: ReadonlyArray<RawMeta>) =>
    [...metas].sort((a, b) => (a.phx_ref < b.phx_ref ? -1 : 1)).map(({ phx_ref_prev: _, ...rest }) => rest)

  // Replays events onto a shadow state: it must match the syncer's state after every step. Each
  // event's own lists must agree with its `current` (the key after that diff), and the last event of a
  // run of events on one key must have the shadow's metas for that key as `current`.
  const replay = (
    shadow: Map<string, Map<string, RawMeta>>,
    events: ReadonlyArray<PresenceEvent>,
    state: PresenceState
  ) => {
    const currentRefs = (e: PresenceEvent) => new Set(e.current.map((m) => m.phx_ref))
    events.forEach((e, i) => {
      const metas = shadow.get(e.key) ?? new Map<string, RawMeta>()
      switch (e._tag) {
        case "Join":
          for (const m of e.joined) {
            expect(metas.has(m.phx_ref)).toBe(false)
            expect(currentRefs(e).has(m.phx_ref)).toBe(true)
            metas.set(m.phx_ref, m)
          }
          break
        case "Leave":
          for (const m of e.left) {
            expect(metas.has(m.phx_ref)).toBe(true)
            expect(currentRefs(e).has(m.phx_ref)).toBe(false)
            metas.delete(m.phx_ref)
          }
          break
        case "Update":
          expect(e.previous.length).toBe(e.updated.length)
          for (const m of e.previous) {
            expect(metas.has(m.phx_ref)).toBe(true)
            metas.delete(m.phx_ref)
          }
          for (const m of e.updated) {
            expect(currentRefs(e).has(m.phx_ref)).toBe(true)
            metas.set(m.phx_ref, m)
          }
          break
      }
      if (metas.size === 0) shadow.delete(e.key)
      else shadow.set(e.key, metas)
      if (events[i + 1]?.key !== e.key) expect(byRef(e.current)).toEqual(byRef([...metas.values()]))
    })
    const asState: PresenceState = new Map([...shadow].map(([k, metas]) => [k, [...metas.values()]]))
    expect(canonical(asState)).toEqual(canonical(state))
  }

  describe("Presence property", () => {
    it("applying the server's diffs and resyncs reproduces its truth; events describe every change", () => {
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom("a", "b", "c", "__proto__"), { minLength: CLIENTS, maxLength: CLIENTS }),
          fc.array(opArb, { maxLength: 80 }),
          (keyOf, ops) => {
            const server = new Server(keyOf)
            let syncer = Presence.makeSyncer()
            let joinRef = 1
            let awaitingState = true
            const shadow = new Map<string, Map<string, RawMeta>>()
            const feed = (result: Presence.SyncerResult) => {
              syncer = result.syncer
              replay(shadow, result.events, syncer.state)
            }
            const sendState = () => {
              feed(Presence.receiveState(syncer, String(joinRef), server.snapshot()))
              awaitingState = false
            }
            const flush = () => {
              const d = server.takeDiff()
              if (d !== undefined) feed(Presence.receiveDiff(syncer, String(joinRef), d))
            }
            for (const op of ops) {
              switch (op._tag) {
                case "track":
                  server.track(op.client, op.payload)
                  break
                case "untrack":
                  server.untrack(op.client)
                  break
                case "flush":
                  flush()
                  if (!awaitingState) expect(canonical(syncer.state)).toEqual(truthOf(server))
                  break
                case "resync":
                  sendState()
                  break
                case "rejoin":
                  joinRef++
                  awaitingState = true
                  break
              }
            }
            flush()
            if (awaitingState) sendState()
            expect(canonical(syncer.state)).toEqual(truthOf(server))
            expect(syncer.pending).toEqual([])
          }
        ),
        { numRuns: 500 }
      )
    })
  })
})

describe("Transport (parity with the Effect 3 edition)", () => {
  it("turns a Supabase project URL into the Realtime endpoint", () => {
    assert.deepStrictEqual(
      Transport.connectionUrl({ url: "https://abcd.supabase.co", apiKey: "k" }),
      Result.succeed("wss://abcd.supabase.co/realtime/v1/websocket?apikey=k&vsn=2.0.0")
    )
    assert.deepStrictEqual(
      Transport.connectionUrl({ url: "http://127.0.0.1:54321/", apiKey: "k" }),
      Result.succeed("ws://127.0.0.1:54321/realtime/v1/websocket?apikey=k&vsn=2.0.0")
    )
  })

  it("refuses bad URLs with a tagged error, never echoing a query string", () => {
    const bad = Transport.connectionUrl({ url: "not a url", apiKey: "k" })
    assert.isTrue(Result.isFailure(bad) && bad.failure._tag === "InvalidArgument")
    const query = Transport.connectionUrl({ url: "wss://x.supabase.co/realtime/v1?apikey=SECRET", apiKey: "k" })
    assert.isTrue(Result.isFailure(query))
    if (Result.isFailure(query)) assert.notInclude(query.failure.message, "SECRET")
    assert.isTrue(Result.isFailure(Transport.connectionUrl({ url: "ftp://x", apiKey: "k" })))
  })

  it("never echoes a malformed URL (it may hold the key), and refuses credentials in it", () => {
    for (
      const url of [
        "https://abc.supabase.co apikey=SECRET",
        "wss//abc.supabase.co/realtime/v1/SECRET",
        "SECRET",
        "wss://user:SECRET@abc.supabase.co/realtime/v1",
        "SECRET://abc.supabase.co"
      ]
    ) {
      const bad = Transport.connectionUrl({ url, apiKey: "k" })
      assert.isTrue(Result.isFailure(bad), url)
      if (Result.isFailure(bad)) {
        assert.strictEqual(bad.failure._tag, "InvalidArgument")
        assert.notInclude(bad.failure.message, "SECRET", url)
        assert.notInclude(bad.failure.message, "abc.supabase.co", url)
      }
    }
    const spaces = Transport.connectionUrl({ url: "https://abc.supabase.co apikey=SECRET", apiKey: "k" })
    if (Result.isFailure(spaces)) assert.include(spaces.failure.message, "whitespace")
  })

  it("refuses an empty or blank apiKey", () => {
    for (const apiKey of ["", "   ", Redacted.make(""), Redacted.make("\n")]) {
      const bad = Transport.connectionUrl({ url: "wss://x.supabase.co/realtime/v1", apiKey })
      assert.isTrue(
        Result.isFailure(bad) && bad.failure._tag === "InvalidArgument" && bad.failure.message.includes("apiKey")
      )
    }
  })
})
