/**
 * Hostile input from the wire (issue 11): what a server, or a peer through it, sends must not
 * crash the process, kill a stream or make an operation die with a defect.
 */
import { afterEach, assert, beforeEach, describe, it } from "@effect/vitest"
import {
  Cause,
  Context,
  Effect,
  Exit,
  Fiber,
  Formatter,
  Layer,
  Option,
  Queue,
  Result,
  Schema,
  SchemaIssue,
  type Scope,
  Stream
} from "effect"
import { HttpClient, HttpClientResponse } from "effect/http"
import { Socket } from "effect/socket"
import { describe as describeValue } from "../../src/core/describe.js"
import * as AccessToken from "../src/AccessToken.js"
import * as HttpBroadcast from "../src/HttpBroadcast.js"
import { describeIssue } from "../src/internal/describe.js"
import * as PostgresChanges from "../src/PostgresChanges.js"
import * as Presence from "../src/Presence.js"
import * as Protocol from "../src/Protocol.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeError from "../src/RealtimeError.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"

const URL = "ws://realtime.test/socket"
const DEPTH = 10_000

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

/** `{"a":{"a":...leaf...}}`, `depth` levels, as text (a JS value that deep cannot be stringified). */
export const deepObject = (depth: number, leaf = "1", key = "a") =>
  `{"${key}":`.repeat(depth) + leaf + "}".repeat(depth)
/** `[[[...leaf...]]]`, `depth` levels, as text. */
export const deepArray = (depth: number, leaf = "1") => "[".repeat(depth) + leaf + "]".repeat(depth)

const deepValue = (depth: number): unknown => JSON.parse(deepObject(depth))

/** The innermost element of nested arrays, and checks it is `DEPTH` levels down. */
const innermost = (u: unknown): unknown => {
  let levels = 0
  while (Array.isArray(u)) {
    u = u[0]
    levels++
  }
  assert.strictEqual(levels, DEPTH)
  return u
}

const setup = (): Effect.Effect<
  { readonly server: FakeSocket.FakeServer; readonly client: RealtimeClient.RealtimeClient },
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const { constructor, server } = yield* FakeSocket.make
    const layer = RealtimeClient.layer({ url: URL, apiKey: "anon" }).pipe(
      Layer.provide(Layer.succeed(Socket.WebSocketConstructor, constructor))
    )
    const context = yield* Layer.build(layer).pipe(Effect.orDie)
    return { server, client: Context.get(context, RealtimeClient.RealtimeClient) }
  })

const next = (connection: FakeSocket.FakeConnection) =>
  Effect.map(Queue.take(connection.sent), (frame) => Result.getOrThrow(Protocol.serverV2.decode(frame)))

const nextOf = (connection: FakeSocket.FakeConnection, event: string): Effect.Effect<Protocol.Message> =>
  Effect.flatMap(next(connection), (m) => m.event === event ? Effect.succeed(m) : nextOf(connection, event))

/** A server frame `[join_ref, null, topic, event, payload]` with the payload as raw JSON text. */
const pushText = (
  connection: FakeSocket.FakeConnection,
  joinRef: string | null,
  topic: string,
  event: string,
  payloadJson: string
) =>
  connection.send(`[${JSON.stringify(joinRef)},null,${JSON.stringify(topic)},${JSON.stringify(event)},${payloadJson}]`)

/** Answers the join with `status` and the raw JSON text `responseJson`. */
const replyText = (
  connection: FakeSocket.FakeConnection,
  join: Protocol.Message,
  status: string,
  responseJson: string
) =>
  connection.send(
    `[${JSON.stringify(join.joinRef)},${JSON.stringify(join.ref)},${JSON.stringify(join.topic)},"phx_reply",` +
      `{"status":${JSON.stringify(status)},"response":${responseJson}}]`
  )

const binding = { event: "*", schema: "public", table: "todos" } as const

/** Subscribes `channel` (answering its join with one postgres binding id, 7) and returns the wire. */
const joined = (server: FakeSocket.FakeServer, channel: RealtimeChannel.RealtimeChannel) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(channel.subscribe)
    const connection = yield* Queue.take(server.connections)
    const join = yield* nextOf(connection, "phx_join")
    const bindings = (join.payload as { config: { postgres_changes: ReadonlyArray<object> } }).config.postgres_changes
    yield* replyText(
      connection,
      join,
      "ok",
      JSON.stringify({ postgres_changes: bindings.map((b, i) => ({ ...b, id: 7 + i })) })
    )
    yield* Fiber.join(fiber)
    return { connection, joinRef: join.joinRef! }
  })

interface Collected<A, E> {
  readonly items: Queue.Queue<A>
  readonly fiber: Fiber.Fiber<void, E>
}

/** Runs `stream` in the background, its items into a queue; the fiber ends only if the stream does. */
const collect = <A, E>(stream: Stream.Stream<A, E>): Effect.Effect<Collected<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const items = yield* Queue.unbounded<A>()
    const fiber = yield* stream.pipe(Stream.runForEach((a) => Queue.offer(items, a)), Effect.forkScoped)
    yield* Effect.yieldNow
    return { items, fiber }
  })

/** The next item, or a failure at once if the stream ended (it must not). */
const takeAlive = <A, E>(collected: Collected<A, E>) =>
  Effect.raceFirst(
    Queue.take(collected.items),
    Effect.flatMap(
      Fiber.await(collected.fiber),
      (exit) => Effect.die(new Error(`the stream ended: ${String(exit).slice(0, 300)}`))
    )
  )

/** Lets the fake wire deliver what was sent (it runs on the microtask queue). */
const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

/** The typed failure of an exit (`None` for a success, a defect or an interruption). */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): Option.Option<E> =>
  Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : Option.none()

const changeJson = (record: string, columns = `[{"name":"id","type":"int4"},{"name":"title","type":"text"}]`) =>
  `{"ids":[7],"data":{"schema":"public","table":"todos","commit_timestamp":"2024-01-01T00:00:00Z",` +
  `"type":"INSERT","columns":${columns},"record":${record},"errors":null}}`

const Todo = Schema.Struct({ id: Schema.Number, title: Schema.String })

describe("hostile input: depth", () => {
  it.effect("a deep presence meta seen twice with the same phx_ref (diff before state) does not crash", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("room", { presence: { key: "me" } })
      const presence = channel.presence()
      const { connection, joinRef } = yield* joined(server, channel)
      const meta = `{"phx_ref":"r1","deep":${deepObject(DEPTH)}}`
      // the peer's join diff arrives before the join's presence_state: buffered, replayed after it
      yield* pushText(
        connection,
        joinRef,
        "realtime:room",
        "presence_diff",
        `{"joins":{"peer":{"metas":[${meta}]}},"leaves":{}}`
      )
      yield* pushText(connection, joinRef, "realtime:room", "presence_state", `{"peer":{"metas":[${meta}]}}`)
      // and once more as a join repeating the same meta
      yield* pushText(
        connection,
        joinRef,
        "realtime:room",
        "presence_diff",
        `{"joins":{"peer":{"metas":[${meta}]}},"leaves":{}}`
      )
      yield* settle
      const state = yield* presence.state
      assert.deepStrictEqual([...state.keys()], ["peer"])
      assert.strictEqual(state.get("peer")!.length, 1)
    }))

  it("presence: equal deep metas are equal, different ones are an update (no recursion)", () => {
    const a = { phx_ref: "r1", deep: deepValue(DEPTH) }
    const b = { phx_ref: "r1", deep: deepValue(DEPTH) }
    const c = { phx_ref: "r1", deep: JSON.parse(deepObject(DEPTH, "2")) }
    const start = Presence.syncState(Presence.empty, { k: { metas: [a] } }).state
    assert.deepStrictEqual(Presence.syncDiff(start, { joins: { k: { metas: [b] } }, leaves: {} }).events, [])
    const changed = Presence.syncDiff(start, { joins: { k: { metas: [c] } }, leaves: {} }).events
    assert.deepStrictEqual(changed.map((e) => e._tag), ["Update"])
  })

  it.effect("a deep broadcast payload that does not match a typed stream is skipped; the stream lives", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("room")
      interface Tree {
        readonly c: ReadonlyArray<Tree>
      }
      const Tree: Schema.Codec<Tree> = Schema.Struct({ c: Schema.Array(Schema.suspend(() => Tree)) })
      const typed = yield* collect(channel.broadcast("e", Todo))
      const recursive = yield* collect(channel.broadcast("e", Tree))
      const { connection } = yield* joined(server, channel)
      const deepTree = `{"c":[`.repeat(DEPTH) + `{"c":[]}` + "]}".repeat(DEPTH)
      for (const payload of [deepObject(DEPTH), deepArray(DEPTH), `{"id":${deepArray(DEPTH)},"title":"x"}`, deepTree]) {
        yield* pushText(
          connection,
          null,
          "realtime:room",
          "broadcast",
          `{"type":"broadcast","event":"e","payload":${payload}}`
        )
      }
      yield* pushText(
        connection,
        null,
        "realtime:room",
        "broadcast",
        `{"type":"broadcast","event":"e","payload":{"id":1,"title":"ok","c":[]}}`
      )
      const first = yield* takeAlive(typed)
      assert.deepStrictEqual(first.payload, { id: 1, title: "ok" })
      assert.deepStrictEqual((yield* takeAlive(recursive)).payload, { c: [] })
      assert.isUndefined(typed.fiber.pollUnsafe())
      assert.isUndefined(recursive.fiber.pollUnsafe())
    }))

  it.effect("typed postgres changes: a deep row that does not match is skipped; the stream lives", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("db", { postgresChanges: [binding] })
      const typed = yield* collect(channel.postgresChanges(binding, Todo))
      const { connection } = yield* joined(server, channel)
      yield* pushText(
        connection,
        null,
        "realtime:db",
        "postgres_changes",
        changeJson(`{"id":${deepObject(DEPTH)},"title":"x"}`)
      )
      yield* pushText(connection, null, "realtime:db", "postgres_changes", changeJson(`{"id":1,"title":"ok"}`))
      assert.deepStrictEqual((yield* takeAlive(typed)).new, { id: 1, title: "ok" })
      assert.isUndefined(typed.fiber.pollUnsafe())
    }))

  it.effect("a deep array column does not kill an untyped postgres stream (converted without recursion)", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("db", { postgresChanges: [binding] })
      const untyped = yield* collect(channel.postgresChanges(binding))
      const { connection } = yield* joined(server, channel)
      const tags = `[{"name":"id","type":"int4"},{"name":"tags","type":"_int4"}]`
      const send = (json: string) => pushText(connection, null, "realtime:db", "postgres_changes", json)
      // as a JSON array, as a Postgres array literal, and deep `errors`
      yield* send(changeJson(`{"id":1,"tags":${deepArray(DEPTH, `"7"`)}}`, tags))
      yield* send(changeJson(`{"id":2,"tags":${JSON.stringify("{".repeat(DEPTH) + "7" + "}".repeat(DEPTH))}}`, tags))
      yield* send(changeJson(`{"id":3}`, tags).replace(`"errors":null`, `"errors":[${deepArray(DEPTH)}]`))
      yield* send(changeJson(`{"id":4,"tags":"{{1,2},{3,4}}"}`, tags))
      const changes = []
      for (let i = 0; i < 4; i++) changes.push(yield* takeAlive(untyped))
      assert.deepStrictEqual(changes.map((c) => c.new.id), [1, 2, 3, 4])
      for (const change of changes.slice(0, 2)) assert.strictEqual(innermost(change.new.tags), 7)
      assert.isTrue(changes[2]!.errors![0]!.length <= 1_000)
      assert.deepStrictEqual(changes[3]!.new, { id: 4, tags: [[1, 2], [3, 4]] })
      assert.isUndefined(untyped.fiber.pollUnsafe())
    }))

  it("convertChange: a deep array column is converted without recursion", () => {
    const data = (tags: unknown) => ({
      schema: "public",
      table: "t",
      commit_timestamp: "",
      type: "INSERT",
      columns: [{ name: "tags", type: "_int4" }],
      record: { tags },
      errors: [JSON.parse(deepArray(DEPTH))]
    })
    for (const tags of [JSON.parse(deepArray(DEPTH, `"7"`)), "{".repeat(DEPTH) + "7" + "}".repeat(DEPTH)]) {
      const change = Result.getOrThrow(PostgresChanges.convertChange(data(tags)))
      assert.strictEqual(innermost(change.new.tags), 7)
      assert.isTrue(change.errors![0]!.length <= 1_000)
    }
    const fine = PostgresChanges.convertChange(data("{{1,2},{3,4}}"))
    assert.deepStrictEqual(Result.getOrThrow(fine).new, { tags: [[1, 2], [3, 4]] })
  })

  it.effect("a join rejected with a deeply nested response fails subscribe with a tagged error", () =>
    Effect.gen(function*() {
      for (const response of [deepArray(DEPTH), deepObject(DEPTH), `{"reason":${deepArray(DEPTH)}}`]) {
        const { client, server } = yield* setup()
        const channel = yield* client.channel("room")
        const fiber = yield* Effect.forkChild(Effect.exit(channel.subscribe))
        const connection = yield* Queue.take(server.connections)
        const join = yield* nextOf(connection, "phx_join")
        yield* replyText(connection, join, "error", response)
        const exit = yield* Fiber.join(fiber)
        assert.isTrue(Exit.isFailure(exit))
        const error = failureOf(exit)
        assert.isTrue(Option.isSome(error), `a failure, not a defect: ${String(exit)}`)
        const e = Option.getOrThrow(error) as RealtimeError.JoinRejected
        assert.strictEqual(e._tag, "JoinRejected")
        assert.isTrue(e.message.length < 2_000)
      }
    }))

  it.effect("an ok join reply with deeply nested postgres_changes fails with PostgresBindingMismatch, not a defect", () =>
    Effect.gen(function*() {
      const entries = [
        deepArray(DEPTH),
        `[${deepArray(DEPTH)}]`,
        `[{"id":7,"event":"*","schema":"public","table":"todos","filter":${deepObject(DEPTH)}}]`,
        `[{"id":7,"event":"*","schema":"public","table":"todos","select":[${deepArray(DEPTH)}]}]`
      ]
      for (const entry of entries) {
        const { client, server } = yield* setup()
        const channel = yield* client.channel("db", { postgresChanges: [binding] })
        const fiber = yield* Effect.forkChild(Effect.exit(channel.subscribe))
        const connection = yield* Queue.take(server.connections)
        const join = yield* nextOf(connection, "phx_join")
        yield* replyText(connection, join, "ok", `{"postgres_changes":${entry}}`)
        const exit = yield* Fiber.join(fiber)
        // a non-string filter counts as none (so that entry matches); the others match no binding
        if (Exit.isSuccess(exit)) continue
        const error = failureOf(exit)
        assert.isTrue(Option.isSome(error), `a failure, not a defect: ${String(exit).slice(0, 300)}`)
        assert.strictEqual((Option.getOrThrow(error) as { _tag: string })._tag, "PostgresBindingMismatch")
      }
    }))

  it("siblings: protocol decoding, exact numbers and the describers take 10,000 levels", () => {
    const v2 = Protocol.serializer("2.0.0")
    for (const payload of [deepObject(DEPTH), deepArray(DEPTH)]) {
      const frame = `[null,null,"realtime:db","postgres_changes",{"n":12345678901234567890,"x":${payload}}]`
      assert.isTrue(Result.isSuccess(v2.decode(frame)))
      assert.isDefined(PostgresChanges.parseJsonPreservingPrecision(frame))
      assert.isTrue(describeValue(JSON.parse(payload)).length <= 1_000)
      assert.isTrue(Result.isSuccess(
        Protocol.serializer("1.0.0").decode(
          `{"topic":"t","event":"e","payload":${payload},"ref":null}`
        )
      ))
    }
    // Effect 4 issues carry the input (for `, actual …`) only with `reportInput: true`
    const result = Schema.decodeUnknownResult(Todo)({ id: deepValue(DEPTH), title: 1 }, {
      errors: "all",
      reportInput: true
    })
    const issue = Result.getFailure(result).pipe(Option.getOrThrow).issue
    const text = describeIssue(issue)
    assert.isTrue(text.length <= 1_000)
    assert.match(text, /\["id"\]: Expected number/)
    assert.match(text, /\["title"\]: Expected string, actual 1/)
    // what it replaces is not bounded: Effect 4's default formatter does not throw on it (Effect 3's
    // TreeFormatter did), but it prints the input thousands of levels down
    assert.isAbove(SchemaIssue.makeFormatterDefault()(issue).length, 2_000)
  })
})

describe("hostile input: decode errors (PayloadDecodeError)", () => {
  const Cursor = RealtimeChannel.broadcastEvent("cursor", Schema.Struct({ x: Schema.Number }))

  it.effect("onDecodeError 'fail': a typed broadcast stream emits what came before, then fails with PayloadDecodeError", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("room")
      const failing = yield* collect(channel.broadcast(Cursor, { onDecodeError: "fail" }))
      const named = yield* collect(channel.broadcast("cursor", Cursor.schema, { onDecodeError: "fail" }))
      const skipping = yield* collect(channel.broadcast(Cursor, { onDecodeError: "skip" }))
      const byDefault = yield* collect(channel.broadcast(Cursor))
      yield* Effect.yieldNow
      const { connection } = yield* joined(server, channel)
      const send = (payload: string) =>
        pushText(
          connection,
          null,
          "realtime:room",
          "broadcast",
          `{"type":"broadcast","event":"cursor","payload":${payload}}`
        )
      yield* send(`{"x":1}`)
      yield* send(`{"x":${deepObject(DEPTH)}}`)
      yield* send(`{"x":2}`)
      for (const collected of [failing, named]) {
        const exit = yield* Fiber.await(collected.fiber)
        const error = Option.getOrUndefined(failureOf(exit))
        assert.deepStrictEqual((yield* Queue.clear(collected.items)).map((b) => b.payload), [{ x: 1 }])
        assert.isDefined(error)
        if (error === undefined) return
        assert.strictEqual(error._tag, "PayloadDecodeError")
        assert.strictEqual(error.topic, "realtime:room")
        assert.strictEqual(error.event, "cursor")
        assert.match(error.detail, /^\["x"\]: Expected number, actual \{"a":/)
        assert.isTrue(error.message.length < 1_200)
        assert.strictEqual(error.issue?._tag, "Composite")
        // printing the error (as runMain does) never walks the payload
        assert.isTrue(Cause.pretty(Cause.fail(error)).length < 5_000)
        assert.isTrue(JSON.stringify(error).length < 1_200)
      }
      // the default and "skip": skipped, the stream goes on
      for (const collected of [skipping, byDefault]) {
        assert.deepStrictEqual((yield* takeAlive(collected)).payload, { x: 1 })
        assert.deepStrictEqual((yield* takeAlive(collected)).payload, { x: 2 })
      }
    }))

  it.effect("onDecodeError 'fail': a typed postgres stream fails with PayloadDecodeError; malformed changes stay skipped", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup()
      const channel = yield* client.channel("db", { postgresChanges: [binding] })
      const failing = yield* channel.postgresChanges(binding, Todo, { onDecodeError: "fail" }).pipe(
        Stream.runCollect,
        Effect.result,
        Effect.forkChild
      )
      yield* Effect.yieldNow
      const { connection } = yield* joined(server, channel)
      const send = (json: string) => pushText(connection, null, "realtime:db", "postgres_changes", json)
      yield* send(changeJson(`{"id":1,"title":"a"}`))
      yield* send(`{"ids":[7],"data":{"type":"NOPE"}}`) // malformed: skipped and logged, not a decode error
      yield* send(changeJson(`{"id":"x","title":"b"}`))
      yield* send(changeJson(`{"id":3,"title":"c"}`))
      const result = yield* Fiber.join(failing)
      const error = Result.getFailure(result).pipe(Option.getOrThrow)
      assert.strictEqual(error._tag, "PayloadDecodeError")
      if (error._tag !== "PayloadDecodeError") return
      assert.strictEqual(error.event, "postgres_changes todos")
      assert.match(error.detail, /\["id"\]: Expected number, actual "x"/)
    }))

  it("types: the error channel follows onDecodeError", () => {
    type ErrorOf<S> = S extends Stream.Stream<any, infer E, any> ? E : never
    const channel = null as unknown as RealtimeChannel.RealtimeChannel
    // compiles only when A and B are the same type
    const check = <A, B extends A>(_: [A] extends [B] ? true : false) => {}
    if (channel !== null) {
      const byDefault = () => channel.broadcast(Cursor)
      check<ErrorOf<ReturnType<typeof byDefault>>, never>(true)
      const fail = () => channel.broadcast(Cursor, { onDecodeError: "fail" })
      const skip = () => channel.broadcast(Cursor, { onDecodeError: "skip" })
      const either = (mode: "skip" | "fail") => channel.broadcast("cursor", Cursor.schema, { onDecodeError: mode })
      const pg = () => channel.postgresChanges(binding, Todo, { onDecodeError: "fail" })
      check<ErrorOf<ReturnType<typeof fail>>, RealtimeError.PayloadDecodeError>(true)
      check<ErrorOf<ReturnType<typeof skip>>, never>(true)
      check<ErrorOf<ReturnType<typeof either>>, RealtimeError.PayloadDecodeError>(true)
      check<ErrorOf<ReturnType<typeof pg>>, RealtimeError.PayloadDecodeError | RealtimeError.InvalidArgument>(true)
    }
  })
})

describe("hostile input: errors that carry what the server sent", () => {
  it("PushRejected, HttpBroadcastFailed, JoinRejected: printing and logging them never walks a deep value", () => {
    const deep = deepValue(DEPTH)
    const errors = [
      new RealtimeError.PushRejected({ topic: "t", event: "e", response: deep }),
      new RealtimeError.HttpBroadcastFailed({ reason: "Invalid", status: 422, body: deep, detail: "d" }),
      RealtimeError.joinRejected("t", JSON.parse(deepArray(DEPTH)))
    ]
    for (const error of errors) {
      assert.isBelow(JSON.stringify(error).length, 2_000)
      assert.isBelow(Formatter.format(error).length, 2_000)
      assert.isBelow(Cause.pretty(Cause.fail(error)).length, 5_000)
      assert.isBelow(error.message.length, 1_200)
    }
  })

  it.effect("an HTTP broadcast answered with deeply nested `errors` fails with HttpBroadcastFailed, not a defect", () =>
    Effect.gen(function*() {
      const body = `{"errors":{"payload":${deepArray(DEPTH, `"too deep"`)}}}`
      const client = HttpClient.make((request) =>
        Effect.succeed(
          HttpClientResponse.fromWeb(
            request,
            new Response(body, { status: 422, headers: { "content-type": "application/json" } })
          )
        )
      )
      const exit = yield* Effect.flatMap(HttpBroadcast.HttpBroadcast, (http) => http.send("room", "e", { a: 1 })).pipe(
        Effect.provide(
          HttpBroadcast.layer({ url: "https://abc.supabase.co", apiKey: "anon" }).pipe(
            Layer.provide(Layer.succeed(HttpClient.HttpClient, client)),
            Layer.provide(AccessToken.layerNone)
          )
        ),
        Effect.exit
      )
      const error = failureOf(exit)
      assert.isTrue(Option.isSome(error), `a failure, not a defect: ${String(exit).slice(0, 300)}`)
      const failed = Option.getOrThrow(error) as RealtimeError.HttpBroadcastFailed
      assert.strictEqual(failed._tag, "HttpBroadcastFailed")
      assert.strictEqual(failed.status, 422)
      assert.isBelow(failed.message.length, 1_200)
    }))
})
