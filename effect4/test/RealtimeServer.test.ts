/**
 * The in-process RealtimeServer, in memory (FakeSocket) and on 127.0.0.1, driven with raw frames
 * through the core's serializers, under TestClock (in memory).
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Exit, Fiber, Layer, Option, Queue, Ref, Schema, Stream } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import { Socket } from "effect/socket"
import { TestClock } from "effect/testing"
import type * as Model from "../../src/core/protocol/model.js"
import * as Serializer from "../../src/core/protocol/serializer.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"

// -------------------------------------------------------------------------------------
// a raw-frame client over any DOM-style WebSocket (the fake one, or Node's global one)
// -------------------------------------------------------------------------------------

interface Inbound extends Model.Message {
  readonly binary: boolean
}

interface DomSocket {
  binaryType: string
  onopen: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  send(data: string | Uint8Array): void
  close(code?: number, reason?: string): void
}

interface ConnectOptions {
  readonly vsn?: "1.0.0" | "2.0.0" | "none" | (string & {})
  readonly apikey?: string | null
  readonly path?: string
  /** Dial a real socket (Node's global WebSocket) at the server's listener instead of memory. */
  readonly real?: boolean
}

const connectRaw = (server: RealtimeServer.Server, options: ConnectOptions = {}) =>
  Effect.gen(function*() {
    const vsn = options.vsn ?? "2.0.0"
    const params = new URLSearchParams()
    if (options.apikey !== null) params.set("apikey", options.apikey ?? server.apiKey)
    if (vsn !== "none") params.set("vsn", vsn)
    const path = `${options.path ?? "/socket/websocket"}?${params}`
    const ws: DomSocket = options.real === true
      ? new globalThis.WebSocket(`ws://127.0.0.1:${server.port}${path}`) as unknown as DomSocket
      : server.webSocketConstructor(`ws://realtime.test${path}`)
    ws.binaryType = "arraybuffer"
    const serializer = vsn === "2.0.0" ? Serializer.v2 : Serializer.v1
    const inbox = yield* Queue.unbounded<Inbound>()
    const opened = yield* Deferred.make<void, string>()
    const closed = yield* Deferred.make<{ readonly code: number; readonly reason: string }>()
    ws.onopen = () => Deferred.doneUnsafe(opened, Exit.void)
    ws.onerror = (event: any) => Deferred.doneUnsafe(opened, Exit.fail(String(event.message)))
    ws.onclose = (event: any) => {
      Deferred.doneUnsafe(opened, Exit.fail("closed"))
      Deferred.doneUnsafe(closed, Exit.succeed({ code: event.code, reason: event.reason }))
    }
    ws.onmessage = (event: any) => {
      const data = event.data
      const frame: Model.Frame = typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer)
      const decoded = serializer.decode(frame)
      if (!decoded.ok) throw new Error(`client cannot decode: ${decoded.error.message}`)
      Queue.offerUnsafe(inbox, { ...decoded.value, binary: typeof frame !== "string" })
    }
    // a real socket is closed with the test's scope (in memory, the server's own scope closes it)
    if (options.real === true) yield* Effect.addFinalizer(() => Effect.sync(() => ws.close()))
    return { ws, serializer, inbox, opened, closed }
  })

type Raw = Effect.Success<ReturnType<typeof connectRaw>>

const client = (raw: Raw) => {
  let counter = 0
  const nextRef = () => String(++counter)
  const send = (message: Model.Message) =>
    Effect.sync(() => {
      const frame = raw.serializer.encode(message)
      if (!frame.ok) throw new Error(frame.error.message)
      raw.ws.send(frame.value)
    })
  const next = Queue.take(raw.inbox)
  /** Frames until the reply to a heartbeat sent now: everything the server sent before it. */
  const drain = Effect.gen(function*() {
    const ref = `sync-${nextRef()}`
    yield* send({ joinRef: null, ref, topic: "phoenix", event: "heartbeat", payload: {} })
    const out: Array<Inbound> = []
    while (true) {
      const message = yield* next
      if (message.topic === "phoenix" && message.ref === ref) return out
      out.push(message)
    }
  })
  /** Takes frames until one matches; the others are dropped. */
  const until = (predicate: (message: Inbound) => boolean) =>
    Effect.gen(function*() {
      while (true) {
        const message = yield* next
        if (predicate(message)) return message
      }
    })
  const push = (topic: string, event: string, payload: unknown, joinRef: string | null) =>
    Effect.gen(function*() {
      const ref = nextRef()
      yield* send({ joinRef, ref, topic, event, payload })
      return ref
    })
  const replyTo = (ref: string) => until((m) => m.event === "phx_reply" && m.ref === ref)
  const join = (topic: string, payload: unknown = { config: {} }) =>
    Effect.gen(function*() {
      const ref = nextRef()
      yield* send({ joinRef: ref, ref, topic, event: "phx_join", payload })
      const reply = yield* replyTo(ref)
      return { joinRef: ref, reply: reply.payload as any }
    })
  const joined = (topic: string, payload: unknown = { config: {} }) =>
    Effect.gen(function*() {
      const result = yield* join(topic, payload)
      expect(result.reply.status).toBe("ok")
      return result.joinRef
    })
  return { ...raw, send, next, drain, until, push, replyTo, join, joined, nextRef }
}

type Client = ReturnType<typeof client>

const connect = (server: RealtimeServer.Server, options: ConnectOptions = {}) =>
  Effect.gen(function*() {
    const raw = yield* connectRaw(server, options)
    yield* Deferred.await(raw.opened)
    return client(raw)
  })

const server = (options: RealtimeServer.Options = {}) => RealtimeServer.make({ idleTimeout: false, ...options })

const broadcastConfig = (broadcast: object, extra: object = {}) => ({ config: { broadcast, ...extra } })

const json = (r: RealtimeServer.HttpResponse) =>
  r.body.byteLength === 0 ? undefined : JSON.parse(new TextDecoder().decode(r.body))

// -------------------------------------------------------------------------------------
// the fake socket under Effect 4's Socket
// -------------------------------------------------------------------------------------

describe("FakeSocket", () => {
  it.effect("serves Socket.makeWebSocket: sent frames, server frames, close code and reason", () =>
    Effect.gen(function*() {
      const fake = yield* FakeSocket.FakeServer
      const socket = yield* Socket.makeWebSocket("ws://fake.test/socket", { headers: { "X-Api-Key": "k" } })
      const reader = yield* socket.reader
      const writer = yield* socket.writer
      const connection = yield* Queue.take(fake.connections)
      expect(connection.url).toBe("ws://fake.test/socket")
      expect(connection.headers).toEqual({ "x-api-key": "k" })
      yield* writer.write("hello")
      yield* writer.write(new Uint8Array([1, 2, 3]))
      expect(yield* Queue.take(connection.sent)).toBe("hello")
      expect(yield* Queue.take(connection.sent)).toEqual(new Uint8Array([1, 2, 3]))
      yield* connection.send("world")
      yield* connection.send(new Uint8Array([4]))
      const frames: Array<string | Uint8Array> = []
      while (frames.length < 2) frames.push(...(yield* reader.pull))
      expect(frames).toEqual(["world", new Uint8Array([4])])
      yield* connection.close(4000, "bye")
      const error = yield* Effect.flip(reader.pull)
      expect(error.reason._tag).toBe("SocketCloseError")
      expect(error.reason._tag === "SocketCloseError" && [error.reason.code, error.reason.closeReason]).toEqual([
        4000,
        "bye"
      ])
      expect(yield* Deferred.await(connection.closed)).toEqual({ code: 4000, reason: "bye" })
    }).pipe(Effect.provide(FakeSocket.layer)))

  it.effect("refuseNext: the upgrade fails (open error), the answer is on upgradeResponse; attempts count", () =>
    Effect.gen(function*() {
      const { constructor, server: fake } = yield* FakeSocket.make
      yield* Ref.set(fake.refuseNext, 1)
      let created: FakeSocket.FakeWebSocket | undefined
      const socket = yield* Socket.makeWebSocket("ws://fake.test/socket").pipe(
        Effect.provideService(Socket.WebSocketConstructor, (url, options) => created = constructor(url, options))
      )
      const error = yield* Effect.flip(socket.reader)
      expect(error.reason._tag).toBe("SocketOpenError")
      expect(created?.upgradeResponse).toEqual({ status: 503, body: "refused by FakeServer" })
      expect(yield* Ref.get(fake.attempts)).toBe(1)
      // the next attempt is accepted
      yield* Effect.scoped(socket.reader)
      expect(yield* Ref.get(fake.attempts)).toBe(2)
      expect((yield* Queue.take(fake.connections)).url).toBe("ws://fake.test/socket")
    }))
})

describe("FakeSocket under TestClock", () => {
  it.effect("one adjust runs each sleep's round trip over the fake wire before the next sleep", () =>
    Effect.gen(function*() {
      const fake = yield* FakeSocket.FakeServer
      const socket = yield* Socket.makeWebSocket("ws://fake.test/socket")
      const reader = yield* socket.reader
      const writer = yield* socket.writer
      const connection = yield* Queue.take(fake.connections)
      // the far end echoes every frame, from its own fiber
      yield* Effect.forkChild(Effect.forever(Effect.flatMap(Queue.take(connection.sent), connection.send)))
      const answeredAt: Array<number> = []
      const pinger = yield* Effect.forkChild(Effect.gen(function*() {
        for (let i = 0; i < 5; i++) {
          yield* Effect.sleep("1 second")
          yield* writer.write(`ping ${i}`)
          yield* reader.pull
          answeredAt.push(yield* Clock.currentTimeMillis)
        }
      }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("5 seconds")
      expect(answeredAt).toEqual([1000, 2000, 3000, 4000, 5000])
      yield* Fiber.join(pinger)
    }).pipe(Effect.provide(FakeSocket.layer)))
})

// -------------------------------------------------------------------------------------
// connection
// -------------------------------------------------------------------------------------

describe("connection", () => {
  it.effect("handshake errors: missing key 401, bad vsn 403, bad JWT 401, unknown path 404", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const refused = (options: ConnectOptions) =>
        Effect.gen(function*() {
          const raw = yield* connectRaw(s, options)
          const exit = yield* Effect.exit(Deferred.await(raw.opened))
          expect(Exit.isFailure(exit)).toBe(true)
          expect((yield* Deferred.await(raw.closed)).code).toBe(1006)
          return (raw.ws as FakeSocket.FakeWebSocket).upgradeResponse
        })
      const events = yield* Stream.runCollect(Stream.take(s.events, 4)).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      expect(yield* refused({ apikey: null })).toEqual({ status: 401, body: "{\"error\":\"API key is missing\"}" })
      yield* refused({ vsn: "3.0.0" })
      yield* refused({ apikey: RealtimeServer.signToken({ role: "anon", exp: -10 }) })
      yield* refused({ path: "/elsewhere/websocket" })
      const collected = yield* Fiber.join(events)
      expect(collected.map((e) => e._tag === "ConnectionRefused" && [e.status, e.body])).toEqual([
        [401, "{\"error\":\"API key is missing\"}"],
        [403, ""],
        [401, "{\"error\":\"Token has expired 10 seconds ago\"}"],
        [404, "{\"error\":\"Not Found\"}"]
      ])
      expect((yield* s.stats).connectionsRefused).toBe(4)
    }))

  it.effect("records connections (url, vsn, params) and the frames they sent", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s, { vsn: "none" })
      yield* c.drain
      const [info] = yield* s.connections
      expect(info).toMatchObject({ id: "c1", transport: "memory", vsn: "1.0.0", path: "/socket/websocket", open: true })
      expect(info!.params.apikey).toBe(s.apiKey)
      const received = yield* s.received("c1")
      expect(received.map((f) => [f.topic, f.event, f.binary])).toEqual([["phoenix", "heartbeat", false]])
    }))

  it.effect("idle timeout closes a silent socket (TestClock)", () =>
    Effect.gen(function*() {
      const s = yield* RealtimeServer.make({ idleTimeout: "60 seconds" })
      const c = yield* connect(s)
      yield* TestClock.adjust("59 seconds")
      yield* c.drain // activity
      yield* TestClock.adjust("59 seconds")
      expect(yield* Deferred.isDone(c.closed)).toBe(false)
      yield* TestClock.adjust("2 seconds")
      expect((yield* Deferred.await(c.closed)).code).toBe(1000)
      yield* s.waitUntil((state) => state.connections.length === 0)
    }))
})

// -------------------------------------------------------------------------------------
// join
// -------------------------------------------------------------------------------------

describe("join", () => {
  it.effect("ok reply echoes postgres_changes bindings with integer ids, then system messages in order", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const bindings = [
        { event: "INSERT", schema: "public", table: "todos", filter: "id=eq.1" },
        { event: "*", schema: "public", table: "other" }
      ]
      const { joinRef, reply } = yield* c.join("realtime:room", {
        config: {
          broadcast: { self: true, ack: true, replication_ready: true },
          presence: { key: "ada", enabled: true },
          postgres_changes: bindings,
          private: false
        },
        access_token: s.apiKey,
        version: "realtime-js/2.109.0"
      })
      expect(reply.status).toBe("ok")
      const echoed = reply.response.postgres_changes
      expect(echoed.map(({ id: _, ...rest }: any) => rest)).toEqual(bindings)
      expect(echoed.every((b: any) => Number.isInteger(b.id))).toBe(true)
      const after = yield* c.drain
      expect(after.map((m) => [m.joinRef, m.ref, m.event, m.payload])).toEqual([
        [joinRef, null, "presence_state", {}],
        [joinRef, null, "system", {
          extension: "postgres_changes",
          status: "ok",
          message: "Subscribed to PostgreSQL",
          channel: "room"
        }],
        [joinRef, null, "system", {
          extension: "system",
          status: "ok",
          message: "Replication connection established",
          channel: "room"
        }]
      ])
      expect(Option.getOrThrow(yield* s.lastJoinPayload("room"))).toMatchObject({ version: "realtime-js/2.109.0" })
      const [info] = yield* s.subscribers("realtime:room")
      expect(info).toMatchObject({ ack: true, self: true, presenceKey: "ada", joinRef, private: false })
      const state = yield* s.state
      expect(state.channels.map((ch) => [ch.connection, ch.topic])).toEqual([["c1", "realtime:room"]])
      expect(state.connection("c1")?.topics).toEqual(["realtime:room"])
    }))

  it.effect("join errors carry the server's exact reasons", () =>
    Effect.gen(function*() {
      const s = yield* server({
        limits: { maxChannelsPerClient: 1 },
        policy: (claims) => ({
          broadcastRead: claims.role === "authenticated",
          broadcastWrite: false,
          presenceRead: false,
          presenceWrite: false
        })
      })
      const c = yield* connect(s)
      const reason = (topic: string, payload: unknown) =>
        c.join(topic, payload).pipe(Effect.map(({ reply }) => {
          expect(reply.status).toBe("error")
          return reply.response.reason as string
        }))
      expect(yield* reason("realtime:", { config: {} })).toBe("TopicNameRequired: You must provide a topic name")
      expect(
        yield* reason("realtime:x", { config: {}, access_token: RealtimeServer.signToken({ role: "anon", exp: -5 }) })
      ).toBe("InvalidJWTToken: Token has expired 5 seconds ago")
      expect(yield* reason("realtime:x", { config: {}, access_token: "abc.def" })).toBe(
        "MalformedJWT: The token provided is not a valid JWT"
      )
      expect(yield* reason("realtime:x", { config: { private: true } })).toBe(
        "Unauthorized: You do not have permissions to read from this Channel topic: x"
      )
      yield* c.joined("realtime:one")
      expect(yield* reason("realtime:two", { config: {} })).toBe("ChannelRateLimitReached: Too many channels")
      expect((yield* s.stats).joinsRejected).toBe(5)
    }))

  it.effect("rejectJoins and delayJoins (TestClock)", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* s.rejectJoins({ topic: "room", reason: "nope" })
      expect((yield* c.join("realtime:room")).reply).toEqual({ status: "error", response: { reason: "nope" } })
      yield* s.delayJoins({ delay: "5 seconds" })
      const late = yield* c.join("realtime:room").pipe(Effect.forkChild)
      yield* TestClock.adjust("4 seconds")
      expect(late.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(late)).reply.status).toBe("ok")
    }))
})

// -------------------------------------------------------------------------------------
// broadcast
// -------------------------------------------------------------------------------------

describe("broadcast", () => {
  it.effect("between two clients: text fan-out with self and ack; payload_size_exceeded", () =>
    Effect.gen(function*() {
      const s = yield* server({ limits: { maxPayloadBytes: 100 } })
      const a = yield* connect(s)
      const b = yield* connect(s)
      const ja = yield* a.joined("realtime:room", broadcastConfig({ self: false, ack: true }))
      const jb = yield* b.joined("realtime:room", broadcastConfig({ self: true }))
      const text = (c: Client, joinRef: string, ref: string, payload: unknown) =>
        Effect.sync(() => c.ws.send(JSON.stringify([joinRef, ref, "realtime:room", "broadcast", payload])))
      yield* text(a, ja, "10", { type: "broadcast", event: "hi", payload: { n: 1 }, extra: true })
      expect((yield* a.drain).map((m) => [m.ref, m.event, m.payload])).toEqual([
        ["10", "phx_reply", { status: "ok", response: {} }]
      ])
      expect((yield* b.drain).map((m) => [m.joinRef, m.event, m.payload, m.binary])).toEqual([
        [null, "broadcast", { type: "broadcast", event: "hi", payload: { n: 1 }, extra: true }, false]
      ])
      // b has self: true and no ack
      yield* text(b, jb, "11", { type: "broadcast", event: "me", payload: {} })
      expect((yield* b.drain).map((m) => m.event)).toEqual(["broadcast"])
      expect((yield* a.drain).map((m) => m.event)).toEqual(["broadcast"])
      // oversize: error reply with ack, dropped silently without
      yield* text(a, ja, "12", { type: "broadcast", event: "big", payload: { s: "x".repeat(200) } })
      expect((yield* a.drain).map((m) => m.payload)).toEqual([{ status: "error", response: "payload_size_exceeded" }])
      yield* text(b, jb, "13", { type: "broadcast", event: "big", payload: { s: "x".repeat(200) } })
      expect(yield* b.drain).toEqual([])
      expect(yield* a.drain).toEqual([])
      expect(yield* s.stats).toMatchObject({ broadcastsReceived: 4, broadcastsDelivered: 3 })
    }))
})

// -------------------------------------------------------------------------------------
// presence
// -------------------------------------------------------------------------------------

describe("presence", () => {
  it.effect("track: presence_state, presence_diff with phx_ref_prev on update, leave on close", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const a = yield* connect(s)
      const ja = yield* a.joined("realtime:room", { config: { presence: { key: "ada", enabled: true } } })
      expect((yield* a.drain).map((m) => [m.event, m.payload])).toEqual([["presence_state", {}]])
      const track = (c: Client, joinRef: string, payload: unknown) =>
        c.push("realtime:room", "presence", { type: "presence", event: "track", payload }, joinRef)
      const t1 = yield* track(a, ja, { name: "Ada" })
      const afterTrack = yield* a.drain
      expect(afterTrack[0]).toMatchObject({ ref: t1, event: "phx_reply", payload: { status: "ok", response: {} } })
      expect(afterTrack[1]).toMatchObject({ joinRef: null, event: "presence_diff" })
      const diff1 = afterTrack[1]!.payload as any
      expect(diff1.leaves).toEqual({})
      const meta1 = diff1.joins.ada.metas[0]
      expect(meta1).toMatchObject({ name: "Ada" })
      expect(typeof meta1.phx_ref).toBe("string")

      const b = yield* connect(s)
      yield* b.joined("realtime:room", { config: { presence: { key: "bob", enabled: true } } })
      const [state] = yield* b.drain
      expect(state!.event).toBe("presence_state")
      expect(state!.payload).toEqual({ ada: { metas: [meta1] } })

      // update: a join with phx_ref_prev and a leave of the old meta, to everyone
      yield* track(a, ja, { name: "Ada", away: true })
      const [, diff2] = yield* a.drain
      const [diff2b] = yield* b.drain
      expect(diff2b!.payload).toEqual(diff2!.payload)
      const meta2 = (diff2!.payload as any).joins.ada.metas[0]
      expect(meta2).toMatchObject({ name: "Ada", away: true, phx_ref_prev: meta1.phx_ref })
      expect((diff2!.payload as any).leaves).toEqual({ ada: { metas: [meta1] } })
      expect(Object.keys(yield* s.presence("room"))).toEqual(["ada"])
      expect((yield* s.subscribers("room")).find((ch) => ch.presenceKey === "ada")?.tracked).toMatchObject({
        name: "Ada",
        away: true
      })

      // socket drop: leaves for ada
      yield* s.dropConnection({ connection: "c1", abrupt: true })
      const leaves = (yield* b.drain).map((m) => m.payload as any)
      expect(leaves).toEqual([{ joins: {}, leaves: { ada: { metas: [meta2] } } }])
      expect(yield* s.presence("room")).toEqual({})
      expect((yield* Deferred.await(a.closed)).code).toBe(1006)
    }))
})

// -------------------------------------------------------------------------------------
// access tokens
// -------------------------------------------------------------------------------------

describe("access tokens", () => {
  it.effect("token expiry (TestClock): system error at exp, then phx_close; a refreshed token keeps it", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const token = RealtimeServer.signToken({ role: "authenticated", exp: 30 })
      const jr = yield* c.joined("realtime:room", { config: {}, access_token: token })
      yield* TestClock.adjust("29 seconds")
      expect(yield* c.drain).toEqual([])
      yield* TestClock.adjust("1 second")
      const frames = [yield* c.next, yield* c.next]
      expect(frames.map((m) => [m.joinRef, m.ref, m.event, m.payload])).toEqual([
        [jr, null, "system", {
          extension: "system",
          status: "error",
          message: "Token has expired 0 seconds ago",
          channel: "room"
        }],
        [jr, jr, "phx_close", {}]
      ])
      // a refreshed token keeps the channel alive past the old exp
      const jr2 = yield* c.joined("realtime:room", {
        config: {},
        access_token: yield* s.makeToken({ expiresIn: "60 seconds" })
      })
      yield* c.push("realtime:room", "access_token", { access_token: yield* s.makeToken({ expiresIn: "1 hour" }) }, jr2)
      yield* TestClock.adjust("10 minutes")
      expect(yield* c.drain).toEqual([])
      expect((yield* s.subscribers("room")).length).toBe(1)
    }))

  it.effect("expireToken forces the expiry path", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* c.joined("realtime:a")
      yield* c.joined("realtime:b")
      expect(yield* s.expireToken({ topic: "b" })).toBe(1)
      expect((yield* c.drain).map((m) => [m.topic, m.event, (m.payload as any).message])).toEqual([
        ["realtime:b", "system", "Token has expired 0 seconds ago"],
        ["realtime:b", "phx_close", undefined]
      ])
    }))
})

// -------------------------------------------------------------------------------------
// postgres changes
// -------------------------------------------------------------------------------------

describe("postgres changes", () => {
  it.effect("delivered only to matching bindings (filters evaluated), with the matching ids", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const { reply } = yield* c.join("realtime:db", {
        config: {
          postgres_changes: [
            { event: "INSERT", schema: "public", table: "todos", filter: "owner=eq.ada" },
            { event: "*", schema: "public", table: "todos", filter: "id=in.(1,2)" },
            { event: "DELETE", schema: "public", table: "todos" }
          ]
        }
      })
      const [insertId, anyId, deleteId] = reply.response.postgres_changes.map((b: any) => b.id)
      yield* c.drain
      const emit = (change: RealtimeServer.ChangeInput) => s.emitChange(change)
      expect(yield* emit({ table: "todos", type: "INSERT", record: { id: 1, owner: "ada" } })).toBe(1)
      expect(yield* emit({ table: "todos", type: "INSERT", record: { id: 3, owner: "bob" } })).toBe(0)
      expect(yield* emit({ table: "todos", type: "update", record: { id: 2, owner: "x" }, old_record: { id: 2 } }))
        .toBe(1)
      expect(yield* emit({ table: "todos", type: "DELETE", old_record: { id: 9 } })).toBe(1)
      expect(yield* emit({ schema: "private", table: "todos", type: "DELETE", old_record: { id: 1 } })).toBe(0)
      const frames = yield* c.drain
      expect(frames.map((m) => [m.joinRef, m.event, (m.payload as any).ids])).toEqual([
        [null, "postgres_changes", [insertId, anyId]],
        [null, "postgres_changes", [anyId]],
        [null, "postgres_changes", [deleteId]]
      ])
      expect((frames[0]!.payload as any).data).toEqual({
        schema: "public",
        table: "todos",
        commit_timestamp: "1970-01-01T00:00:00.000Z",
        type: "INSERT",
        columns: [{ name: "id", type: "int4" }, { name: "owner", type: "text" }],
        record: { id: 1, owner: "ada" },
        errors: null
      })
      expect(Object.keys((frames[2]!.payload as any).data)).not.toContain("record")
    }))
})

// -------------------------------------------------------------------------------------
// replay
// -------------------------------------------------------------------------------------

describe("replay", () => {
  it.effect("dbSend rows: JSON as text pushes, binary as kind 4, oldest first with meta; realtime.messages", () =>
    Effect.gen(function*() {
      const s = yield* server()
      yield* s.dbSend({ topic: "room", event: "a", payload: { n: 1 }, id: "r1" })
      yield* TestClock.adjust("1 second")
      yield* s.dbSend({ topic: "realtime:room", event: "b", payload: new Uint8Array([1, 2]), id: "r2" })
      yield* s.dbSend({ topic: "room", event: "public", payload: {}, private: false, id: "pub" }) // not replayable
      yield* s.dbSend({ topic: "other", event: "x", payload: {}, id: "other" }) // another topic
      yield* TestClock.adjust("1 second")
      yield* s.dbSend({ topic: "room", event: "c", payload: { n: 3 }, id: "r3" })
      const c = yield* connect(s)
      const { joinRef, reply } = yield* c.join("realtime:room", {
        config: { private: true, broadcast: { replay: { since: 0 } }, presence: { enabled: true, key: "ada" } }
      })
      expect(reply.status).toBe("ok")
      const after = yield* c.drain
      expect(after.map((m) => m.event)).toEqual(["broadcast", "broadcast", "broadcast", "presence_state"])
      const [r1, r2, r3] = after
      expect([r1, r3].map((m) => [m!.binary, m!.joinRef, m!.ref, m!.topic, m!.payload])).toEqual([
        [false, joinRef, null, "realtime:room", {
          type: "broadcast",
          event: "a",
          payload: { n: 1 },
          meta: { replayed: true, id: "r1" }
        }],
        [false, joinRef, null, "realtime:room", {
          type: "broadcast",
          event: "c",
          payload: { n: 3 },
          meta: { replayed: true, id: "r3" }
        }]
      ])
      expect([r2!.binary, r2!.topic, r2!.payload]).toEqual([true, "realtime:room", {
        type: "broadcast",
        event: "b",
        payload: new Uint8Array([1, 2]),
        meta: { replayed: true, id: "r2" }
      }])
      const rows = yield* s.messages("room")
      expect(rows.map((row) => [row.id, row.topic, row.event, row.private, row.insertedAt])).toEqual([
        ["r1", "room", "a", true, 0],
        ["r2", "room", "b", true, 1000],
        ["pub", "room", "public", false, 1000],
        ["r3", "room", "c", true, 2000]
      ])
      expect((yield* s.messages()).length).toBe(5)
      expect((yield* s.state).messages("realtime:other").map((row) => row.id)).toEqual(["other"])
      // a public join asking for replay is refused
      const refused = yield* c.join("realtime:pub", { config: { broadcast: { replay: { since: 1 } } } })
      expect(refused.reply.response.reason).toBe("UnableToReplayMessages: Replay is not allowed for public channels")
    }))
})

// -------------------------------------------------------------------------------------
// faults
// -------------------------------------------------------------------------------------

describe("faults", () => {
  it.effect("crashChannel, shutdownChannel, refuseConnections, disconnectAll", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* c.joined("realtime:a")
      yield* c.joined("realtime:b")
      expect(yield* s.crashChannel({ topic: "a" })).toBe(1)
      expect(yield* s.shutdownChannel({ topic: "b" }, "going away")).toBe(1)
      expect((yield* c.drain).map((m) => [m.topic, m.event, m.payload])).toEqual([
        ["realtime:a", "phx_error", { reason: "channel_crash" }],
        ["realtime:b", "system", { extension: "system", status: "error", message: "going away", channel: "b" }],
        ["realtime:b", "phx_close", {}]
      ])
      yield* s.refuseConnections(1, { status: 503, error: "maintenance" })
      const raw = yield* connectRaw(s)
      expect(Exit.isFailure(yield* Effect.exit(Deferred.await(raw.opened)))).toBe(true)
      expect((raw.ws as FakeSocket.FakeWebSocket).upgradeResponse).toEqual({
        status: 503,
        body: "{\"error\":\"maintenance\"}"
      })
      yield* c.joined("realtime:c")
      expect(yield* s.disconnectAll).toBe(1)
      const system = yield* c.next
      expect((system.payload as any).message).toBe("Server requested disconnect")
      expect((yield* Deferred.await(c.closed)).code).toBe(1012)
    }))
})

// -------------------------------------------------------------------------------------
// HTTP API
// -------------------------------------------------------------------------------------

describe("HTTP broadcast API", () => {
  it.effect("handleHttp: 202 and text delivery (meta id), auth, validation", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* c.joined("realtime:room")
      const post = (body: unknown, headers: Record<string, string> = { apikey: s.apiKey }) =>
        s.handleHttp({
          method: "POST",
          path: "/realtime/v1/api/broadcast",
          headers: { "Content-Type": "application/json", ...headers },
          body: JSON.stringify(body)
        })
      const ok = yield* post({
        messages: [
          { topic: "room", event: "a", payload: { n: 1 } },
          { topic: "room", event: "b", payload: { n: 2 }, id: "m-2" }
        ]
      })
      expect(ok.status).toBe(202)
      expect((yield* c.drain).map((m) => [m.binary, m.payload])).toEqual([
        [false, { type: "broadcast", event: "a", payload: { n: 1 } }],
        [false, { type: "broadcast", event: "b", payload: { n: 2 }, meta: { id: "m-2" } }]
      ])
      expect(yield* post({ messages: [] }, {})).toMatchObject({ status: 401 })
      expect(json(yield* post({}))).toEqual({ errors: { messages: ["can't be blank"] } })
    }))

  it.effect("fetch and the in-memory HttpClient (layerHttpClient)", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* c.joined("realtime:room")
      const response = yield* Effect.promise(() =>
        s.fetch(`${s.httpUrl}/api/broadcast/room/events/e`, {
          method: "POST",
          headers: { apikey: s.apiKey, "content-type": "application/json" },
          body: JSON.stringify({ via: "fetch" })
        })
      )
      expect(response.status).toBe(202)
      const viaClient = yield* HttpClient.execute(
        HttpClientRequest.post(`${s.httpUrl}/realtime/v1/api/broadcast`).pipe(
          HttpClientRequest.setHeader("apikey", s.apiKey),
          HttpClientRequest.bodyJsonUnsafe({ messages: [{ topic: "room", event: "e", payload: { via: "client" } }] })
        )
      ).pipe(
        Effect.provide(
          RealtimeServer.layerHttpClient.pipe(Layer.provide(Layer.succeed(RealtimeServer.RealtimeServer, s)))
        )
      )
      expect(viaClient.status).toBe(202)
      expect((yield* c.drain).map((m) => (m.payload as any).payload)).toEqual([{ via: "fetch" }, { via: "client" }])
    }))

  it.live("over 127.0.0.1: a real WebSocket joins, an HTTP POST to /api/broadcast reaches it", () =>
    Effect.gen(function*() {
      const s = yield* RealtimeServer.makeListen({ idleTimeout: false })
      expect(s.port).toBeGreaterThan(0)
      expect(s.url).toBe(`ws://127.0.0.1:${s.port}/socket`)
      const c = yield* connect(s, { real: true })
      yield* c.joined("realtime:room")
      const response = yield* HttpClient.execute(
        HttpClientRequest.post(`${s.httpUrl}/api/broadcast`).pipe(
          HttpClientRequest.setHeader("apikey", s.apiKey),
          HttpClientRequest.bodyJsonUnsafe({ messages: [{ topic: "room", event: "e", payload: { via: "tcp" } }] })
        )
      ).pipe(Effect.provide(FetchHttpClient.layer))
      expect(response.status).toBe(202)
      const message = yield* c.until((m) => m.event === "broadcast")
      expect(message.payload).toEqual({ type: "broadcast", event: "e", payload: { via: "tcp" } })
      const [connection] = yield* s.connections
      expect(connection).toMatchObject({ transport: "ws", vsn: "2.0.0" })
      // a refused upgrade over TCP: the status reaches the client as a failed open
      const refused = yield* connectRaw(s, { real: true, apikey: null })
      expect(Exit.isFailure(yield* Effect.exit(Deferred.await(refused.opened)))).toBe(true)
    }).pipe(Effect.timeout("10 seconds")))
})

// -------------------------------------------------------------------------------------
// layers and waiting
// -------------------------------------------------------------------------------------

describe("layers", () => {
  it.effect("layerWebSocketConstructor serves Effect's Socket", () =>
    Effect.gen(function*() {
      const s = yield* RealtimeServer.RealtimeServer
      const socket = yield* Socket.makeWebSocket(`${s.url}/websocket?apikey=${s.apiKey}&vsn=2.0.0`)
      const reader = yield* socket.reader
      const writer = yield* socket.writer
      yield* writer.write(JSON.stringify([null, "1", "phoenix", "heartbeat", {}]))
      const [reply] = yield* reader.pull
      expect(JSON.parse(reply as string)).toEqual([null, "1", "phoenix", "phx_reply", { status: "ok", response: {} }])
      const [connection] = yield* s.waitFor((state) => state.connections.length > 0 ? state.connections : undefined)
      expect(connection!.vsn).toBe("2.0.0")
    }).pipe(Effect.provide(RealtimeServer.layerWebSocketConstructor())))

  it.effect("waitFor resolves on server events", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const waiting = yield* s.waitFor((state) => state.subscribers("late")[0]).pipe(Effect.forkChild)
      const c = yield* connect(s)
      const joinRef = yield* c.joined("realtime:late")
      const channel = yield* Fiber.join(waiting)
      assert.strictEqual(channel.joinRef, joinRef)
    }))

  it.effect("stopping the server closes its sockets with 1001", () =>
    Effect.gen(function*() {
      const closed = yield* Effect.scoped(Effect.gen(function*() {
        const s = yield* server()
        const c = yield* connect(s)
        return c.closed
      }))
      expect((yield* Deferred.await(closed)).code).toBe(1001)
    }))
})

// -------------------------------------------------------------------------------------
// RealtimeTest: our client wired to the server
// -------------------------------------------------------------------------------------

const Chat = RealtimeChannel.broadcastEvent("chat", Schema.Struct({ text: Schema.String }))

const collect = <A, E>(stream: Stream.Stream<A, E>, n: number) =>
  stream.pipe(Stream.take(n), Stream.runCollect, Effect.forkChild({ startImmediately: true }))

describe("RealtimeTest", () => {
  it.effect("two clients in one room see each other's broadcasts, JSON and binary, with ack", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const ada = yield* RealtimeClient.RealtimeClient
      const bob = yield* RealtimeTest.makeClient()
      const a = yield* ada.channel("room", { broadcast: { ack: true } })
      const b = yield* bob.channel("room", { broadcast: { ack: true } })
      const atA = yield* collect(a.broadcast("*"), 2)
      const atB = yield* collect(b.broadcast("*"), 2)
      yield* a.subscribe
      yield* b.subscribe
      yield* a.send(Chat, { text: "from ada" })
      yield* b.send("chat", { text: "from bob" })
      yield* a.send("bytes", new Uint8Array([1, 2, 3]))
      yield* b.send("bytes", new Uint8Array([4]))
      const fromB = yield* Fiber.join(atA)
      const fromA = yield* Fiber.join(atB)
      assert.deepStrictEqual(fromA.map((m) => m.payload), [{ text: "from ada" }, new Uint8Array([1, 2, 3])])
      assert.deepStrictEqual(fromB.map((m) => m.payload), [{ text: "from bob" }, new Uint8Array([4])])
      const state = yield* server.state
      expect(state.subscribers("room").length).toBe(2)
      const broadcasts = state.received(state.connections[0]!.id).filter((f) => f.event === "broadcast")
      assert.isTrue(broadcasts.length === 2 && broadcasts.every((f) => f.binary))
    }).pipe(Effect.provide(RealtimeTest.layer())))

  it.effect("one long TestClock.adjust: heartbeats and token pushes are answered in between; the join lasts", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const room = yield* client.channel("private-room", { private: true })
      yield* room.subscribe
      const first = (yield* server.subscribers("private-room"))[0]!
      yield* TestClock.adjust("11 minutes") // the first token (10 minutes) would have expired by now
      expect((yield* room.status)._tag).toBe("Subscribed")
      const now = (yield* server.subscribers("private-room"))[0]!
      expect(now.joinRef).toBe(first.joinRef)
      expect(now.claims.exp as number).toBeGreaterThan(first.claims.exp as number)
      expect((yield* server.stats).connectionsOpened).toBe(1)
    }).pipe(
      Effect.provide(RealtimeTest.layer({
        client: {
          // a fresh user token valid for 10 minutes of the (test) clock
          accessToken: Effect.map(
            Clock.currentTimeMillis,
            (now) => RealtimeServer.signToken({ role: "authenticated", exp: Math.floor(now / 1000) + 600 })
          )
        }
      }))
    ))

  it.effect("our client: replayed messages carry meta.replayed and meta.id, then live ones meta.id", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "old" }, id: "too-old" })
      yield* TestClock.adjust("10 seconds")
      const since = yield* Clock.currentTimeMillis
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "a" }, id: "a" })
      yield* server.dbSend({ topic: "inbox", event: "blob", payload: new Uint8Array([7]), id: "b" })
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "c" }, id: "c" })
      const channel = yield* client.channel("inbox", { private: true, broadcast: { replay: { since, limit: 2 } } })
      const got = yield* collect(channel.broadcast("*"), 3)
      yield* channel.subscribe
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "c" }, id: "c" }) // deduped
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "live" }, id: "d" })
      const messages = yield* Fiber.join(got)
      expect(messages.map((m) => [m.event, m.payload, m.meta])).toEqual([
        ["blob", new Uint8Array([7]), { replayed: true, id: "b" }],
        ["note", { text: "c" }, { replayed: true, id: "c" }],
        ["note", { text: "live" }, { id: "d" }]
      ])
    }).pipe(Effect.provide(RealtimeTest.layer())))
})
