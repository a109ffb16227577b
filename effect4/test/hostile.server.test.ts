/**
 * Hostile (or buggy) servers and peers, beyond the frame decoder: presence states and diffs of odd
 * shapes, Postgres changes that match nothing, replies and `system` messages out of place, HTTP
 * broadcast answers of any kind. The client must not throw, end a stream or die, must log what it
 * drops, and an operation waiting must settle with a tagged error in the server's own words.
 */
import { afterEach, assert, beforeEach, describe, it } from "@effect/vitest"
import {
  Cause,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Metric,
  Option,
  Queue,
  References,
  Result,
  Schema,
  type Scope,
  Stream
} from "effect"
import { HttpClient, HttpClientResponse } from "effect/http"
import { Socket } from "effect/socket"
import { TestClock } from "effect/testing"
import * as AccessToken from "../src/AccessToken.js"
import * as HttpBroadcast from "../src/HttpBroadcast.js"
import * as Protocol from "../src/Protocol.js"
import * as RealtimeChannelModule from "../src/RealtimeChannel.js"
import type * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import type * as RealtimeError from "../src/RealtimeError.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"

// uncaught exceptions (a throw in the socket's message handler) fail the test that caused them
let uncaught: Array<unknown> = []
const onUncaught = (error: unknown) => uncaught.push(error)
beforeEach(() => {
  uncaught = []
  process.on("uncaughtException", onUncaught)
})
afterEach(() => {
  process.off("uncaughtException", onUncaught)
  assert.deepStrictEqual(uncaught.map(String), [], "no uncaught exception")
})

/** A client over a fake socket, and the warnings its runtime logs. */
const setup = (): Effect.Effect<
  {
    readonly server: FakeSocket.FakeServer
    readonly client: RealtimeClient.RealtimeClient
    readonly warnings: Array<string>
  },
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const warnings: Array<string> = []
    const capture = Logger.make(({ fiber, logLevel, message }) => {
      if (logLevel !== "Warn") return
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      warnings.push(`${text} ${JSON.stringify(fiber.getRef(References.CurrentLogAnnotations))}`)
    })
    const { constructor, server } = yield* FakeSocket.make
    const layer = RealtimeClient.layer({ url: "ws://realtime.test/socket", apiKey: "anon" }).pipe(
      Layer.provide(Layer.succeed(Socket.WebSocketConstructor, constructor))
    )
    const context = yield* Layer.build(layer).pipe(
      Effect.orDie,
      Effect.provide(Logger.layer([capture]))
    )
    return { server, client: Context.get(context, RealtimeClient.RealtimeClient), warnings }
  })

const nextOf = (connection: FakeSocket.FakeConnection, event: string): Effect.Effect<Protocol.Message> =>
  Effect.flatMap(
    Effect.map(Queue.take(connection.sent), (frame) => Result.getOrThrow(Protocol.serverV2.decode(frame))),
    (m) => m.event === event ? Effect.succeed(m) : nextOf(connection, event)
  )

/** A server frame `[join_ref, ref, topic, event, payload]` with the payload as raw JSON text. */
const frame = (
  connection: FakeSocket.FakeConnection,
  joinRef: string | null,
  ref: string | null,
  topic: string,
  event: string,
  payloadJson: string
) =>
  connection.send(
    `[${JSON.stringify(joinRef)},${JSON.stringify(ref)},${JSON.stringify(topic)},${
      JSON.stringify(event)
    },${payloadJson}]`
  )

const binding = { event: "*", schema: "public", table: "todos" } as const

/** Subscribes `channel` (its postgres bindings get ids 7, 8, …) and returns the wire. */
const joined = (server: FakeSocket.FakeServer, channel: RealtimeChannel.RealtimeChannel) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(channel.subscribe)
    const connection = yield* Queue.take(server.connections)
    const join = yield* nextOf(connection, "phx_join")
    const bindings = (join.payload as { config: { postgres_changes: ReadonlyArray<object> } }).config.postgres_changes
    const response = JSON.stringify({ postgres_changes: bindings.map((b, i) => ({ ...b, id: 7 + i })) })
    yield* frame(connection, join.joinRef, join.ref, join.topic, "phx_reply", `{"status":"ok","response":${response}}`)
    yield* Fiber.join(fiber)
    const push = (event: string, payloadJson: string, joinRef: string | null = join.joinRef) =>
      frame(connection, joinRef, null, join.topic, event, payloadJson)
    return { connection, join, push }
  })

/** Lets the fake wire deliver what was sent (it runs on the microtask queue). */
const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

const change = (ids: string) =>
  `{${ids}"data":{"schema":"public","table":"todos","commit_timestamp":"2024-01-01T00:00:00Z",` +
  `"type":"INSERT","columns":[{"name":"id","type":"int4"}],"record":{"id":1},"errors":null}}`

describe("hostile server: presence", () => {
  it.effect("a presence_state with some malformed entries keeps the good ones and logs the rest", () =>
    Effect.gen(function*() {
      const { client, server, warnings } = yield* setup()
      const channel = yield* client.channel("room", { presence: { key: "me" } })
      const presence = channel.presence()
      const { push } = yield* joined(server, channel)
      yield* push(
        "presence_state",
        `{"ok":{"metas":[{"phx_ref":"r1","n":1}]},"noMetas":{},"notArray":{"metas":"x"},` +
          `"noRef":{"metas":[{"n":2}]},"mixed":{"metas":[{"phx_ref":"r2"},7,null]}}`
      )
      yield* settle
      assert.deepStrictEqual([...(yield* presence.state).keys()], ["ok", "mixed"])
      assert.strictEqual(warnings.filter((w) => w.includes("presence_state")).length, 1, warnings.join("\n"))
    }))

  it.effect("a presence_diff without leaves (or joins) is applied, not dropped in silence", () =>
    Effect.gen(function*() {
      const { client, server, warnings } = yield* setup()
      const channel = yield* client.channel("room", { presence: { key: "me" } })
      const presence = channel.presence()
      const wire = yield* joined(server, channel)
      const { push } = wire
      yield* push("presence_state", `{}`)
      yield* push("presence_diff", `{"joins":{"a":{"metas":[{"phx_ref":"r1"}]},"b":{"metas":[{"phx_ref":"r2"}]}}}`)
      yield* push("presence_diff", `{"leaves":{"a":{"metas":[{"phx_ref":"r1"}]}}}`)
      yield* settle
      assert.deepStrictEqual([...(yield* presence.state).keys()], ["b"])
      // the first is logged, the second counted in the next line, a minute later at the earliest
      assert.strictEqual(warnings.filter((w) => w.includes("presence_diff")).length, 1, warnings.join("\n"))
      // a minute on, the heartbeats answered
      const { connection } = wire
      yield* nextOf(connection, "heartbeat").pipe(
        Effect.flatMap((hb) =>
          frame(connection, null, hb.ref, "phoenix", "phx_reply", `{"status":"ok","response":{}}`)
        ),
        Effect.forever,
        Effect.forkScoped
      )
      for (let i = 0; i < 6; i++) {
        yield* TestClock.adjust("10 seconds")
        yield* settle
      }
      yield* push("presence_diff", `{"joins":{"c":{"metas":[{"phx_ref":"r3"}]}}}`)
      yield* settle
      assert.deepStrictEqual([...(yield* presence.state).keys()], ["b", "c"])
      const lines = warnings.filter((w) => w.includes("presence_diff"))
      assert.strictEqual(lines.length, 2, warnings.join("\n"))
      assert.include(lines[1], `"ignored":3`)
      assert.include(lines[1], `"unloggedBefore":1`)
    }))

  it.effect("presence payloads that are not objects are dropped, logged, and leave the state alone", () =>
    Effect.gen(function*() {
      const { client, server, warnings } = yield* setup()
      const channel = yield* client.channel("room", { presence: { key: "me" } })
      const presence = channel.presence()
      const { push } = yield* joined(server, channel)
      yield* push("presence_state", `{"a":{"metas":[{"phx_ref":"r1"}]}}`)
      for (const payload of [`"x"`, `null`, `[1,2]`, `7`]) {
        yield* push("presence_state", payload)
        yield* push("presence_diff", payload)
      }
      yield* settle
      assert.deepStrictEqual([...(yield* presence.state).keys()], ["a"])
      // the first is logged, the rest counted in the next (throttled) line
      assert.isAbove(warnings.filter((w) => w.includes("presence")).length, 0, warnings.join("\n"))
    }))

  it.effect("diffs waiting for a presence_state over the bound are dropped, and logged", () =>
    Effect.gen(function*() {
      const { client, server, warnings } = yield* setup()
      const channel = yield* client.channel("room", { presence: { key: "me" } })
      const presence = channel.presence()
      const { push } = yield* joined(server, channel)
      for (let i = 0; i <= 1_000; i++) {
        yield* push("presence_diff", `{"joins":{"k${i}":{"metas":[{"phx_ref":"r${i}"}]}},"leaves":{}}`)
      }
      yield* push("presence_state", `{}`)
      yield* settle
      const state = yield* presence.state
      assert.strictEqual(state.size, 1_000)
      assert.isFalse(state.has("k0"))
      assert.isTrue(warnings.some((w) => w.includes("waiting for a presence_state dropped")), warnings.join("\n"))
    }))

  it.effect("prototype keys, duplicated refs, leaves of keys never joined, many keys: no pollution, no crash", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("room", { presence: { key: "me" } })
      const presence = channel.presence()
      const events = yield* Effect.forkChild(presence.events.pipe(Stream.take(3), Stream.runCollect))
      const { push } = yield* joined(server, channel)
      yield* push(
        "presence_state",
        `{"__proto__":{"metas":[{"phx_ref":"p1","polluted":true}]},"constructor":{"metas":[{"phx_ref":"c1"},` +
          `{"phx_ref":"c1","second":true}]},"toString":{"metas":[{"phx_ref":"t1"}]}}`
      )
      yield* push(
        "presence_diff",
        `{"joins":{"hasOwnProperty":{"metas":[{"phx_ref":"h1"}]}},` +
          `"leaves":{"ghost":{"metas":[{"phx_ref":"g1"}]},"__proto__":{"metas":[{"phx_ref":"nope"}]}}}`
      )
      const many = Array.from({ length: 20_000 }, (_, i) => `"k${i}":{"metas":[{"phx_ref":"m${i}"}]}`).join(",")
      yield* push("presence_diff", `{"joins":{${many}},"leaves":{}}`)
      yield* settle
      const state = yield* presence.state
      assert.strictEqual(state.size, 20_004)
      assert.deepStrictEqual(state.get("constructor"), [{ second: true, presence_ref: "c1" }])
      assert.deepStrictEqual(state.get("__proto__"), [{ polluted: true, presence_ref: "p1" }])
      assert.isUndefined(({} as Record<string, unknown>).polluted)
      assert.isFalse(state.has("ghost"))
      assert.strictEqual(yield* presence.occupancy.pipe(Effect.map((o) => o.connections)), 20_004)
      yield* Fiber.join(events)
    }))

  it.effect("a peer's meta that fails the view's schema is left out; the other views and streams go on", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("room", { presence: { key: "me" } })
      const typed = channel.presence(Schema.Struct({ name: Schema.String }))
      const untyped = channel.presence()
      const { push } = yield* joined(server, channel)
      yield* push(
        "presence_state",
        `{"good":{"metas":[{"phx_ref":"r1","name":"ada"}]},"bad":{"metas":[{"phx_ref":"r2","name":7}]}}`
      )
      yield* settle
      assert.deepStrictEqual([...(yield* typed.state).keys()], ["good"])
      assert.deepStrictEqual([...(yield* untyped.state).keys()], ["good", "bad"])
    }))
})

describe("hostile server: postgres changes", () => {
  it.effect("changes without ids, with ids of no binding, or without data are dropped and logged; streams go on", () =>
    Effect.gen(function*() {
      const { client, server, warnings } = yield* setup()
      const channel = yield* client.channel("db", { postgresChanges: [binding] })
      const changes = yield* Effect.forkChild(channel.postgresChanges(binding).pipe(Stream.take(1), Stream.runCollect))
      const all = yield* Effect.forkChild(channel.postgresChanges().pipe(Stream.take(1), Stream.runCollect))
      yield* Effect.yieldNow
      const { push } = yield* joined(server, channel)
      for (const payload of [change(""), change(`"ids":"7",`), change(`"ids":[999],`), `{"ids":[7]}`, `"x"`]) {
        yield* push("postgres_changes", payload)
      }
      yield* push("postgres_changes", change(`"ids":[7],`))
      assert.deepStrictEqual((yield* Fiber.join(changes)).map((c) => c.new), [{ id: 1 }])
      assert.deepStrictEqual((yield* Fiber.join(all)).map((c) => c.new), [{ id: 1 }])
      assert.isAbove(warnings.filter((w) => w.includes("postgres_changes")).length, 0, warnings.join("\n"))
    }))

  it.effect("odd columns, records and types: converted as far as they go, malformed ones skipped; no crash", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("db", { postgresChanges: [binding] })
      const changes = yield* Effect.forkChild(channel.postgresChanges(binding).pipe(Stream.take(3), Stream.runCollect))
      yield* Effect.yieldNow
      const { push } = yield* joined(server, channel)
      const data = (columns: string, record: string, errors = "null") =>
        `{"ids":[7],"data":{"schema":"public","table":"todos","commit_timestamp":"x","type":"INSERT",` +
        `"columns":${columns},"record":${record},"errors":${errors}}}`
      yield* push("postgres_changes", data(`[{"name":"id","type":"no_such_type"}]`, `{"id":"7","extra":true}`))
      // malformed columns: skipped (and logged by the stream)
      yield* push("postgres_changes", data(`[{"name":"id"},7,null,{"type":"int4"}]`, `{"id":"8"}`))
      yield* push("postgres_changes", data(`"not a list"`, `{"id":8}`))
      yield* push("postgres_changes", data(`[]`, `{"id":9}`, `["Error 413: Payload Too Large",7]`))
      yield* push("postgres_changes", data(`[{"name":"__proto__","type":"jsonb"}]`, `{"__proto__":{"polluted":1}}`))
      const got = yield* Fiber.join(changes)
      assert.deepStrictEqual(got[0]!.new, { id: "7", extra: true })
      assert.deepStrictEqual(got[1]!.errors, ["Error 413: Payload Too Large", "7"])
      assert.deepStrictEqual(Object.keys(got[2]!.new), ["__proto__"])
      assert.isUndefined(({} as Record<string, unknown>).polluted)
    }))

  it.effect("a system error for the bindings is logged with the server's words; the channel stays", () =>
    Effect.gen(function*() {
      const { client, server, warnings } = yield* setup()
      const channel = yield* client.channel("db", { postgresChanges: [binding] })
      const { push } = yield* joined(server, channel)
      const words = "Error parsing `filter` params: [\\\"foo\\\", \\\"hey\\\"]"
      yield* push(
        "system",
        `{"extension":"postgres_changes","status":"error","message":"${words}","channel":"db","extra":{"x":1}}`
      )
      yield* settle
      assert.strictEqual((yield* channel.status)._tag, "Subscribed")
      assert.isTrue(warnings.some((w) => w.includes("Error parsing `filter` params")), warnings.join("\n"))
    }))

  it.effect("a system error for the bindings that the server repeats is logged at most once a minute, not once a frame", () =>
    Effect.gen(function*() {
      const { client, server, warnings } = yield* setup()
      const channel = yield* client.channel("db", { postgresChanges: [binding] })
      const { push } = yield* joined(server, channel)
      const error = `{"extension":"postgres_changes","status":"error","message":"no such table"}`
      for (let i = 0; i < 100; i++) yield* push("system", error)
      yield* settle
      const lines = () => warnings.filter((w) => w.includes("could not subscribe to Postgres changes"))
      assert.strictEqual(lines().length, 1, warnings.join("\n"))
      assert.strictEqual((yield* channel.status)._tag, "Subscribed")
    }))
})

describe("hostile server: replies and system messages", () => {
  it.effect("replies to no request, replies with odd statuses and non-object responses: settled or logged", () =>
    Effect.gen(function*() {
      const { client, server, warnings } = yield* setup()
      const channel = yield* client.channel("room", { broadcast: { ack: true } })
      const { connection, join, push } = yield* joined(server, channel)
      // a reply to a ref nobody waits for
      yield* frame(connection, join.joinRef, "999", join.topic, "phx_reply", `{"status":"ok","response":{}}`)
      yield* settle
      assert.isTrue(warnings.some((w) => w.includes("phx_reply")), warnings.join("\n"))
      // a push answered with a status that is neither ok nor error, and with odd responses
      for (const reply of [`{"status":"timeout","response":"late"}`, `{"status":7}`, `"x"`, `null`]) {
        const send = yield* Effect.forkChild(Effect.exit(channel.send("e", { a: 1 })))
        const pushed = yield* nextOf(connection, "broadcast")
        yield* frame(connection, pushed.joinRef, pushed.ref, pushed.topic, "phx_reply", reply)
        const exit = yield* Fiber.join(send)
        const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : Option.none()
        assert.isTrue(Option.isSome(error), `a failure, not a defect: ${String(exit).slice(0, 300)}`)
        assert.strictEqual((Option.getOrThrow(error) as RealtimeError.PushRejected)._tag, "PushRejected")
      }
      // a system message with unknown fields and odd types reaches the system stream
      const system = yield* Effect.forkChild(channel.system.pipe(Stream.take(1), Stream.runCollect))
      yield* Effect.yieldNow
      yield* push("system", `"not an object"`)
      yield* push("system", `{"extension":7,"status":null,"message":{"a":1},"unknown":[1]}`)
      assert.deepStrictEqual(yield* Fiber.join(system), [{
        extension: "",
        status: "",
        message: "",
        channel: undefined
      }])
      assert.strictEqual((yield* channel.status)._tag, "Subscribed")
    }))

  it.effect("phx_close and phx_error of another join, or of a topic never joined, change nothing and are counted", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("room")
      const { connection, join } = yield* joined(server, channel)
      const before = (yield* Metric.value(RealtimeChannelModule.metrics.stale)).count
      for (const event of ["phx_close", "phx_error"]) {
        yield* frame(connection, "old", "old", join.topic, event, `{}`)
        yield* frame(connection, null, "old", join.topic, event, `{"reason":"channel_crash"}`)
        yield* frame(connection, null, null, "realtime:never", event, `{}`)
      }
      yield* settle
      assert.strictEqual((yield* channel.status)._tag, "Subscribed")
      assert.strictEqual((yield* Metric.value(RealtimeChannelModule.metrics.stale)).count - before, 4)
    }))
})

describe("hostile peers: broadcast", () => {
  it.effect("a peer's broadcast without a string event is dropped and logged; the streams go on", () =>
    Effect.gen(function*() {
      const { client, server, warnings } = yield* setup()
      const channel = yield* client.channel("room")
      const all = yield* Effect.forkChild(channel.broadcast("*").pipe(Stream.take(1), Stream.runCollect))
      yield* Effect.yieldNow
      const { push } = yield* joined(server, channel)
      for (const payload of [`{"type":"broadcast","payload":{"a":1}}`, `{"event":7}`, `"x"`, `null`]) {
        yield* push("broadcast", payload, null)
      }
      yield* push("broadcast", `{"type":"broadcast","event":"e","payload":{"a":2}}`, null)
      assert.deepStrictEqual((yield* Fiber.join(all)).map((b) => b.payload), [{ a: 2 }])
      assert.isTrue(warnings.some((w) => w.includes("ignored a broadcast frame")), warnings.join("\n"))
    }))
})

describe("hostile server: HTTP broadcast", () => {
  const answering = (response: () => Response | Promise<Response>) =>
    HttpClient.make((request) => Effect.promise(async () => HttpClientResponse.fromWeb(request, await response())))
  const sendWith = (client: HttpClient.HttpClient, timeout?: Duration.Input) =>
    Effect.flatMap(HttpBroadcast.HttpBroadcast, (http) => http.send("room", "e", { a: 1 })).pipe(
      Effect.provide(
        HttpBroadcast.layer({ url: "https://abc.supabase.co", apiKey: "anon", timeout }).pipe(
          Layer.provide(Layer.succeed(HttpClient.HttpClient, client)),
          Layer.provide(AccessToken.layerNone)
        )
      ),
      Effect.flip
    )

  it.effect("odd statuses, non-JSON and huge bodies: HttpBroadcastFailed with the server's words, bounded", () =>
    Effect.gen(function*() {
      const huge = "x".repeat(1_000_000)
      const cases: ReadonlyArray<readonly [number, string, string, string]> = [
        [418, "I'm a teapot", "UnexpectedStatus", "I'm a teapot"],
        [302, "", "UnexpectedStatus", "the server answered 302 without a message"],
        [599, "<html>oops</html>", "ServerError", "<html>oops</html>"],
        [422, JSON.stringify({ message: huge }), "Invalid", "xxxx"],
        [403, JSON.stringify({ error: huge }), "Forbidden", "xxxx"],
        [500, huge, "ServerError", "xxxx"],
        [429, `{"message":7,"error":null}`, "RateLimited", "the server answered 429 without a message"]
      ]
      for (const [status, body, reason, words] of cases) {
        const error = yield* sendWith(answering(() => new Response(body, { status })))
        assert.strictEqual(error._tag, "HttpBroadcastFailed")
        if (error._tag !== "HttpBroadcastFailed") return
        assert.strictEqual(error.reason, reason)
        assert.strictEqual(error.status, status)
        assert.include(error.detail, words)
        assert.isBelow(error.message.length, 1_200, `${status}: the message is bounded`)
      }
    }))

  it.effect("a server that never answers, or never ends its body: Timeout", () =>
    Effect.gen(function*() {
      const never = answering(() => new Promise<Response>(() => {}))
      const endless = answering(() => new Response(new ReadableStream({ pull: () => new Promise(() => {}) })))
      for (const client of [never, endless]) {
        const fiber = yield* Effect.forkChild(sendWith(client, "1 second"))
        yield* TestClock.adjust("1 second")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "HttpBroadcastFailed")
        if (error._tag === "HttpBroadcastFailed") assert.strictEqual(error.reason, "Timeout")
      }
    }))
})
