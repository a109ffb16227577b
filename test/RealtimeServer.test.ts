/**
 * The in-process RealtimeServer, in memory (FakeSocket), driven with raw frames through the
 * Protocol serializers, under TestClock.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Socket from "@effect/platform/Socket"
import { assert, describe, expect, it } from "@effect/vitest"
import { RealtimeClient as RealtimeJs } from "@supabase/realtime-js"
import {
  Chunk,
  Clock,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Queue,
  Ref,
  Schema,
  Stream,
  TestClock
} from "effect"
import * as Protocol from "../src/Protocol.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"
import { settle } from "./support/turns.js"

// -------------------------------------------------------------------------------------
// a raw-frame client
// -------------------------------------------------------------------------------------

interface Inbound extends Protocol.Message {
  readonly binary: boolean
}

interface ConnectOptions {
  readonly vsn?: "1.0.0" | "2.0.0" | "none" | (string & {})
  readonly apikey?: string | null
  readonly path?: string
}

const connectRaw = (server: RealtimeServer.Server, options: ConnectOptions = {}) =>
  Effect.gen(function*() {
    const vsn = options.vsn ?? "2.0.0"
    const params = new URLSearchParams()
    if (options.apikey !== null) params.set("apikey", options.apikey ?? server.apiKey)
    if (vsn !== "none") params.set("vsn", vsn)
    const ws = server.webSocketConstructor(`ws://realtime.test${options.path ?? "/socket/websocket"}?${params}`)
    ws.binaryType = "arraybuffer"
    const serializer = vsn === "2.0.0" ? Protocol.v2 : Protocol.v1
    const inbox = yield* Queue.unbounded<Inbound>()
    const opened = yield* Deferred.make<void, string>()
    const closed = yield* Deferred.make<{ readonly code: number; readonly reason: string }>()
    ws.onopen = () => Deferred.unsafeDone(opened, Exit.void)
    ws.onerror = (event: any) => Deferred.unsafeDone(opened, Exit.fail(String(event.message)))
    ws.onclose = (event) => {
      Deferred.unsafeDone(opened, Exit.fail("closed"))
      Deferred.unsafeDone(closed, Exit.succeed({ code: event.code, reason: event.reason }))
    }
    ws.onmessage = (event) => {
      const data = event.data
      const frame: Protocol.Frame = typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer)
      const decoded = serializer.decode(frame)
      if (decoded._tag === "Left") throw new Error(`client cannot decode: ${decoded.left.message}`)
      inbox.unsafeOffer({ ...decoded.right, binary: typeof frame !== "string" })
    }
    return { ws, serializer, inbox, opened, closed }
  })

type Raw = Effect.Effect.Success<ReturnType<typeof connectRaw>>

const client = (raw: Raw) => {
  let counter = 0
  const nextRef = () => String(++counter)
  const send = (message: Protocol.Message) =>
    Effect.sync(() => {
      const frame = raw.serializer.encode(message)
      if (frame._tag === "Left") throw frame.left
      raw.ws.send(frame.right)
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

const isClosed = (c: Client) => Deferred.isDone(c.closed)

const server = (options: RealtimeServer.Options = {}) => RealtimeServer.make({ idleTimeout: false, ...options })

const broadcastConfig = (broadcast: object, extra: object = {}) => ({ config: { broadcast, ...extra } })

// -------------------------------------------------------------------------------------
// the fake socket under @effect/platform's Socket
// -------------------------------------------------------------------------------------

describe("FakeSocket", () => {
  it.scoped("serves Socket.makeWebSocket: sent frames, server frames, close code and reason", () =>
    Effect.gen(function*() {
      const fake = yield* FakeSocket.FakeServer
      const socket = yield* Socket.makeWebSocket("ws://fake.test/socket", { closeCodeIsError: () => true })
      const frames: Array<string | Uint8Array> = []
      const running = yield* Effect.fork(socket.runRaw((data) => {
        frames.push(data)
      }))
      const write = yield* socket.writer
      const connection = yield* Queue.take(fake.connections)
      expect(connection.url).toBe("ws://fake.test/socket")
      yield* write("hello")
      yield* write(new Uint8Array([1, 2, 3]))
      expect(yield* Queue.take(connection.sent)).toBe("hello")
      expect(yield* Queue.take(connection.sent)).toEqual(new Uint8Array([1, 2, 3]))
      yield* connection.send("world")
      yield* connection.send(new Uint8Array([4]))
      yield* settle
      expect(frames).toEqual(["world", new Uint8Array([4])])
      yield* connection.close(4000, "bye")
      const error = yield* Effect.flip(Fiber.join(running))
      expect(error.reason).toBe("Close")
      expect(error.reason === "Close" && [error.code, error.closeReason]).toEqual([4000, "bye"])
      expect(yield* Deferred.await(connection.closed)).toEqual({ code: 4000, reason: "bye" })
    }).pipe(Effect.provide(FakeSocket.layer)))

  it.scoped("refuseNext: the upgrade fails (open error), the answer is on upgradeResponse; attempts count", () =>
    Effect.gen(function*() {
      const { constructor, server: fake } = yield* FakeSocket.make
      yield* Ref.set(fake.refuseNext, 1)
      let created: FakeSocket.FakeWebSocket | undefined
      const socket = yield* Socket.makeWebSocket("ws://fake.test/socket").pipe(
        Effect.provideService(
          Socket.WebSocketConstructor,
          (url, protocols) => (created = constructor(url, protocols) as unknown as FakeSocket.FakeWebSocket) as never
        )
      )
      const error = yield* Effect.flip(socket.runRaw(() => {}))
      expect(error.reason).toBe("Open")
      expect(created?.upgradeResponse).toEqual({ status: 503, body: "refused by FakeServer" })
      expect(yield* Ref.get(fake.attempts)).toBe(1)
      // the next attempt is accepted
      const running = yield* Effect.fork(socket.runRaw(() => {}))
      expect((yield* Queue.take(fake.connections)).url).toBe("ws://fake.test/socket")
      expect(yield* Ref.get(fake.attempts)).toBe(2)
      yield* Fiber.interrupt(running)
    }))
})

describe("FakeSocket under TestClock", () => {
  it.scoped("one adjust runs each sleep's round trip over the fake wire before the next sleep", () =>
    Effect.gen(function*() {
      const fake = yield* FakeSocket.FakeServer
      const socket = yield* Socket.makeWebSocket("ws://fake.test/socket")
      const received = yield* Queue.unbounded<string | Uint8Array>()
      yield* Effect.forkScoped(socket.runRaw((data) => Queue.offer(received, data)))
      const write = yield* socket.writer
      const connection = yield* Queue.take(fake.connections)
      // the far end echoes every frame, from its own fiber
      yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(connection.sent), connection.send)))
      const answeredAt: Array<number> = []
      const pinger = yield* Effect.fork(Effect.gen(function*() {
        for (let i = 0; i < 5; i++) {
          yield* Effect.sleep("1 second")
          yield* write(`ping ${i}`)
          yield* Queue.take(received)
          answeredAt.push(yield* Clock.currentTimeMillis)
        }
      }))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("5 seconds")
      expect(answeredAt).toEqual([1000, 2000, 3000, 4000, 5000])
      yield* Fiber.join(pinger)
    }).pipe(Effect.provide(FakeSocket.layer)))
})

// -------------------------------------------------------------------------------------
// connection and heartbeat
// -------------------------------------------------------------------------------------

describe("connection", () => {
  it.scoped("answers heartbeats (vsn 2.0.0 array, vsn 1.0.0 object without join_ref)", () =>
    Effect.gen(function*() {
      const s = yield* server()
      for (const vsn of ["2.0.0", "1.0.0"] as const) {
        const c = yield* connectRaw(s, { vsn })
        yield* Deferred.await(c.opened)
        const frames: Array<unknown> = []
        const got = yield* Deferred.make<void>()
        c.ws.addEventListener("message", (e: any) => {
          frames.push(e.data)
          Deferred.unsafeDone(got, Exit.void)
        })
        c.ws.send(
          vsn === "2.0.0"
            ? JSON.stringify([null, "7", "phoenix", "heartbeat", {}])
            : JSON.stringify({ topic: "phoenix", event: "heartbeat", payload: {}, ref: "7" })
        )
        yield* Deferred.await(got)
        expect(JSON.parse(frames[0] as string)).toEqual(
          vsn === "2.0.0"
            ? [null, "7", "phoenix", "phx_reply", { status: "ok", response: {} }]
            : { topic: "phoenix", event: "phx_reply", payload: { status: "ok", response: {} }, ref: "7" }
        )
      }
      const state = yield* s.state
      expect(state.connections.map((c) => c.vsn)).toEqual(["2.0.0", "1.0.0"])
    }))

  it.scoped("records connections (url, vsn, params) and the frames they sent", () =>
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

  it.scoped("handshake errors: missing key 401, bad vsn 403, bad JWTs 401, unknown path 404", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const refused = (options: ConnectOptions) =>
        Effect.gen(function*() {
          const raw = yield* connectRaw(s, options)
          const exit = yield* Effect.exit(Deferred.await(raw.opened))
          expect(Exit.isFailure(exit)).toBe(true)
          const closed = yield* Deferred.await(raw.closed)
          expect(closed.code).toBe(1006)
        })
      const events = yield* Stream.runCollect(Stream.take(s.events, 7)).pipe(Effect.fork)
      yield* Effect.yieldNow()
      yield* refused({ apikey: null })
      yield* refused({ vsn: "3.0.0" })
      yield* refused({ apikey: RealtimeServer.signToken({ role: "anon", exp: -10 }) })
      yield* refused({ apikey: RealtimeServer.signToken({ role: "anon" }) })
      yield* refused({ apikey: "not-a-jwt" })
      yield* refused({ apikey: RealtimeServer.signToken({ role: "anon", exp: 99 }, "another secret") })
      yield* refused({ path: "/elsewhere/websocket" })
      const collected = Chunk.toArray(yield* Fiber.join(events))
      expect(collected.map((e) => e._tag === "ConnectionRefused" && [e.status, e.body])).toEqual([
        [401, "{\"error\":\"API key is missing\"}"],
        [403, ""],
        [401, "{\"error\":\"Token has expired 10 seconds ago\"}"],
        [401, "{\"error\":\"Fields `role` and `exp` are required in JWT\"}"],
        [401, "{\"error\":\"The token provided is not a valid JWT\"}"],
        [401, "{\"error\":\"Failed to validate JWT signature\"}"],
        [404, "{\"error\":\"Not Found\"}"]
      ])
    }))

  it.scoped("the /realtime/v1/websocket alias, and opaque sb_ keys", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s, { path: "/realtime/v1/websocket", apikey: "sb_publishable_test" })
      yield* c.joined("realtime:room")
      const [channel] = yield* s.subscribers("room")
      expect(channel!.claims.role).toBe("anon")
      const raw = yield* connectRaw(s, { apikey: "sb_publishable_unknown" })
      expect(Exit.isFailure(yield* Effect.exit(Deferred.await(raw.opened)))).toBe(true)
    }))

  it.scoped("malformed frames are dropped without closing the socket", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      c.ws.send("{not json")
      c.ws.send(JSON.stringify({ an: "object" }))
      c.ws.send(new Uint8Array([9, 1, 2]))
      c.ws.send(new Uint8Array([3, 200]))
      expect(yield* c.drain).toEqual([])
      expect(yield* isClosed(c)).toBe(false)
      expect((yield* s.stats).malformedFrames).toBe(4)
    }))

  it.scoped("idle timeout closes a silent socket (TestClock)", () =>
    Effect.gen(function*() {
      const s = yield* RealtimeServer.make({ idleTimeout: "60 seconds" })
      const c = yield* connect(s)
      yield* TestClock.adjust("59 seconds")
      yield* c.drain // activity
      yield* TestClock.adjust("59 seconds")
      expect(yield* isClosed(c)).toBe(false)
      yield* TestClock.adjust("2 seconds")
      expect((yield* Deferred.await(c.closed)).code).toBe(1000)
      yield* s.waitUntil((state) => state.connections.length === 0)
    }))
})

// -------------------------------------------------------------------------------------
// channels
// -------------------------------------------------------------------------------------

describe("join", () => {
  it.scoped("ok reply echoes postgres_changes bindings with integer ids, then system messages in order", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const bindings = [
        { event: "INSERT", schema: "public", table: "todos", filter: "id=eq.1" },
        { event: "*", schema: "public", table: "other" },
        { event: "INSERT", schema: "public", table: "todos", filter: "id=eq.1" }
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
      expect(echoed[0].id).toBe(echoed[2].id)
      expect(echoed[0].id).not.toBe(echoed[1].id)
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
    }))

  it.scoped("broadcast-only channels get postgres_changes: [] and no system message; lenient config", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const { reply } = yield* c.join("realtime:a", {
        config: { broadcast: { self: "TRUE", ack: "nope" }, postgres_changes: null }
      })
      expect(reply).toEqual({ status: "ok", response: { postgres_changes: [] } })
      expect(yield* c.drain).toEqual([])
      const [info] = yield* s.subscribers("a")
      expect(info).toMatchObject({ self: true, ack: false })
    }))

  it.scoped("join errors carry the server's exact reasons", () =>
    Effect.gen(function*() {
      const s = yield* server({
        limits: { maxChannelsPerClient: 2 },
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
      expect(yield* reason("room", { config: {} })).toBe("unmatched topic")
      expect(
        yield* reason("realtime:x", { config: {}, access_token: RealtimeServer.signToken({ role: "anon", exp: -5 }) })
      ).toBe("InvalidJWTToken: Token has expired 5 seconds ago")
      expect(yield* reason("realtime:x", { config: {}, access_token: RealtimeServer.signToken({ role: "anon" }) }))
        .toBe("InvalidJWTToken: Fields `role` and `exp` are required in JWT")
      expect(yield* reason("realtime:x", { config: {}, access_token: RealtimeServer.signToken({ exp: 100 }) }))
        .toBe("InvalidJWTToken: Fields `role` and `exp` are required in JWT")
      expect(yield* reason("realtime:x", { config: {}, access_token: "abc.def" })).toBe(
        "MalformedJWT: The token provided is not a valid JWT"
      )
      expect(
        yield* reason("realtime:x", {
          config: {},
          access_token: RealtimeServer.signToken({ role: "anon", exp: 100 }, "wrong")
        })
      ).toBe("JwtSignatureError: Failed to validate JWT signature")
      expect(
        yield* reason("realtime:x", {
          config: {},
          access_token: RealtimeServer.signToken({ role: "a", exp: "x" as any })
        })
      )
        .toBe("InvalidJWTToken: Token expiration time is invalid")
      expect(yield* reason("realtime:x", { config: { private: true } })).toBe(
        "Unauthorized: You do not have permissions to read from this Channel topic: x"
      )
      expect(yield* reason("realtime:x", { config: { broadcast: { replay: { since: 1 } } } })).toBe(
        "UnableToReplayMessages: Replay is not allowed for public channels"
      )
      const user = yield* s.makeToken({ role: "authenticated" })
      expect(
        yield* reason("realtime:x", {
          config: { private: true, broadcast: { replay: { since: "x" } } },
          access_token: user
        })
      ).toBe("UnableToReplayMessages: Replay params are not valid")
      yield* c.joined("realtime:one")
      yield* c.joined("realtime:two", { config: { private: true }, access_token: user })
      expect(yield* reason("realtime:three", { config: {} })).toBe("ChannelRateLimitReached: Too many channels")
      // a sb_ access_token falls back to the socket's key
      yield* c.joined("realtime:two", { config: {}, access_token: "sb_publishable_whatever" })
      expect((yield* s.stats).joinsRejected).toBe(11) // "unmatched topic" is Phoenix's, not a channel join error
    }))

  it.scoped("privateOnly tenants refuse public joins", () =>
    Effect.gen(function*() {
      const s = yield* server({ privateOnly: true })
      const c = yield* connect(s)
      const { reply } = yield* c.join("realtime:x")
      expect(reply.response.reason).toBe("PrivateOnly: This project only allows private channels")
    }))

  it.scoped("join errors are delayed by joinErrorDelay (TestClock)", () =>
    Effect.gen(function*() {
      const s = yield* server({ joinErrorDelay: "5 seconds" })
      const c = yield* connect(s)
      const ref = yield* c.push("realtime:", "phx_join", { config: {} }, "1")
      expect(yield* c.drain).toEqual([])
      yield* TestClock.adjust("4999 millis")
      expect(yield* c.drain).toEqual([])
      yield* TestClock.adjust("1 millis")
      const reply = yield* c.replyTo(ref)
      expect(reply.payload).toEqual({
        status: "error",
        response: { reason: "TopicNameRequired: You must provide a topic name" }
      })
    }))

  it.scoped("duplicate join: phx_close for the old join_ref, then the new join", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const first = yield* c.joined("realtime:room")
      yield* c.send({ joinRef: "9", ref: "9", topic: "realtime:room", event: "phx_join", payload: { config: {} } })
      const frames = (yield* c.drain).map((m) => [m.joinRef, m.ref, m.event])
      expect(frames).toEqual([[first, first, "phx_close"], ["9", "9", "phx_reply"]])
      const subscribers = yield* s.subscribers("room")
      expect(subscribers.map((ch) => ch.joinRef)).toEqual(["9"])
    }))

  it.scoped("unmatched topic, stale join_ref ignored, missing join_ref accepted, leave", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const ref = yield* c.push("realtime:nope", "broadcast", { type: "broadcast", event: "x", payload: {} }, "1")
      const unmatched = yield* c.replyTo(ref)
      expect(unmatched).toMatchObject({
        joinRef: "1",
        payload: { status: "error", response: { reason: "unmatched topic" } }
      })
      const joinRef = yield* c.joined("realtime:room", broadcastConfig({ ack: true, self: true }))
      // stale join_ref: dropped (no ack)
      yield* c.send({ joinRef: "stale", ref: "50", topic: "realtime:room", event: "phx_leave", payload: {} })
      expect(yield* c.drain).toEqual([])
      // missing join_ref: accepted (text broadcast, acked)
      c.ws.send(
        JSON.stringify([null, "51", "realtime:room", "broadcast", { type: "broadcast", event: "e", payload: {} }])
      )
      expect((yield* c.drain).map((m) => [m.ref, m.event])).toEqual([[null, "broadcast"], ["51", "phx_reply"]])
      // leave: ok reply, then phx_close with the join ref
      const leaveRef = yield* c.push("realtime:room", "phx_leave", {}, joinRef)
      expect((yield* c.drain).map((m) => [m.joinRef, m.ref, m.event, m.payload])).toEqual([
        [joinRef, leaveRef, "phx_reply", { status: "ok", response: {} }],
        [joinRef, joinRef, "phx_close", {}]
      ])
      expect(yield* s.subscribers("room")).toEqual([])
      // leave of a topic that is not joined: still ok
      const again = yield* c.push("realtime:room", "phx_leave", {}, joinRef)
      expect((yield* c.replyTo(again)).payload).toEqual({ status: "ok", response: {} })
    }))
})

// -------------------------------------------------------------------------------------
// broadcast
// -------------------------------------------------------------------------------------

describe("broadcast", () => {
  it.scoped("text fan-out with self and ack; payload_size_exceeded as a bare string", () =>
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
      const stats = yield* s.stats
      expect(stats).toMatchObject({ broadcastsReceived: 4, broadcastsDelivered: 3 })
    }))

  it.scoped("kind 3 JSON → kind 4 to vsn 2, converted text to vsn 1; kind 3 binary → kind 4, nothing to vsn 1", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const sender = yield* connect(s)
      const v2 = yield* connect(s)
      const v1 = yield* connect(s, { vsn: "1.0.0" })
      const js = yield* sender.joined("realtime:room", broadcastConfig({ ack: true }))
      yield* v2.joined("realtime:room")
      yield* v1.joined("realtime:room")
      const kind3 = (ref: string, payload: unknown) =>
        sender.send({
          joinRef: js,
          ref,
          topic: "realtime:room",
          event: "broadcast",
          payload: { type: "broadcast", event: "ev", payload }
        })
      yield* kind3("20", { json: true })
      yield* kind3("21", new Uint8Array([1, 2, 3]))
      expect((yield* sender.drain).map((m) => [m.ref, m.event])).toEqual([["20", "phx_reply"], ["21", "phx_reply"]])
      const got2 = yield* v2.drain
      expect(got2.map((m) => [m.binary, m.payload])).toEqual([
        [true, { type: "broadcast", event: "ev", payload: { json: true } }],
        [true, { type: "broadcast", event: "ev", payload: new Uint8Array([1, 2, 3]) }]
      ])
      const got1 = yield* v1.drain
      expect(got1.map((m) => [m.binary, m.topic, m.event, m.payload])).toEqual([
        [false, "realtime:room", "broadcast", { type: "broadcast", event: "ev", payload: { json: true } }]
      ])
      const received = yield* s.received("c1")
      expect(received.filter((f) => f.event === "broadcast").every((f) => f.binary)).toBe(true)
    }))

  it.scoped("public and private channels with the same name are different rooms", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const a = yield* connect(s)
      const b = yield* connect(s)
      const ja = yield* a.joined("realtime:room", broadcastConfig({}, { private: true }))
      yield* b.joined("realtime:room")
      yield* a.push("realtime:room", "broadcast", { type: "broadcast", event: "x", payload: {} }, ja)
      expect(yield* b.drain).toEqual([])
      expect((yield* s.subscribers("room", { private: true })).length).toBe(1)
    }))
})

// -------------------------------------------------------------------------------------
// presence
// -------------------------------------------------------------------------------------

describe("presence", () => {
  it.scoped("track, presence_state, update with phx_ref_prev, no-op re-track, untrack, leave on close", () =>
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
      const jb = yield* b.joined("realtime:room", { config: { presence: { key: "bob", enabled: true } } })
      const [state] = yield* b.drain
      expect(state!.payload).toEqual({ ada: { metas: [meta1] } })

      // update: a join with phx_ref_prev and a leave of the old meta, to everyone
      yield* track(a, ja, { name: "Ada", away: true })
      const [, diff2] = yield* a.drain
      const [diff2b] = yield* b.drain
      expect(diff2b!.payload).toEqual(diff2!.payload)
      const meta2 = (diff2!.payload as any).joins.ada.metas[0]
      expect(meta2).toMatchObject({ name: "Ada", away: true, phx_ref_prev: meta1.phx_ref })
      expect(meta2.phx_ref).not.toBe(meta1.phx_ref)
      expect((diff2!.payload as any).leaves).toEqual({ ada: { metas: [meta1] } })

      // identical payload: ok, no diff
      yield* track(a, ja, { name: "Ada", away: true })
      expect((yield* a.drain).map((m) => m.event)).toEqual(["phx_reply"])

      // bad payloads
      const bad = yield* track(b, jb, "nope")
      expect((yield* b.replyTo(bad)).payload).toEqual({
        status: "error",
        response: { reason: "Presence track payload must be a map" }
      })
      const unknown = yield* b.push("realtime:room", "presence", { type: "presence", event: "dance" }, jb)
      expect((yield* b.replyTo(unknown)).payload).toEqual({ status: "error", response: {} })

      yield* track(b, jb, { name: "Bob" })
      yield* b.drain
      expect((yield* a.drain).map((m) => Object.keys((m.payload as any).joins))).toEqual([["bob"]])
      expect(Object.keys(yield* s.presence("room"))).toEqual(["ada", "bob"])
      // untrack: leave diff
      yield* b.push("realtime:room", "presence", { type: "presence", event: "untrack" }, jb)
      const untracked = (yield* a.drain).map((m) => m.payload as any)
      expect(Object.keys(untracked[0].leaves)).toEqual(["bob"])
      // the tracker gets its own diffs too
      expect((yield* b.drain).map((m) => m.event)).toEqual(["phx_reply", "presence_diff"])
      // socket drop: leaves for ada
      yield* s.dropConnection({ connection: "c1", abrupt: true })
      const leaves = (yield* b.drain).map((m) => m.payload as any)
      expect(leaves).toEqual([{ joins: {}, leaves: { ada: { metas: [meta2] } } }])
      expect(yield* s.presence("room")).toEqual({})
    }))

  it.scoped("Track message size exceeded; Too many presence messages per second", () =>
    Effect.gen(function*() {
      const s = yield* server({ limits: { maxPayloadBytes: 20, maxPresenceEventsPerSecond: 1 } })
      const a = yield* connect(s)
      const b = yield* connect(s)
      const ja = yield* a.joined("realtime:room")
      const jb = yield* b.joined("realtime:room")
      yield* a.push(
        "realtime:room",
        "presence",
        { type: "presence", event: "track", payload: { s: "x".repeat(40) } },
        ja
      )
      expect((yield* a.drain).map((m) => [m.event, (m.payload as any).message])).toEqual([
        ["system", "Track message size exceeded"],
        ["phx_close", undefined]
      ])
      yield* b.push("realtime:room", "presence", { type: "presence", event: "untrack" }, jb)
      expect((yield* b.drain).map((m) => [m.event, (m.payload as any).message])).toEqual([
        ["system", "Too many presence messages per second"],
        ["phx_close", undefined]
      ])
    }))

  it.scoped("per-channel presence rate limit: 5 calls per 30 s, then shutdown", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const a = yield* connect(s)
      const ja = yield* a.joined("realtime:room")
      for (let i = 0; i < 5; i++) {
        yield* a.push("realtime:room", "presence", { type: "presence", event: "track", payload: { i } }, ja)
      }
      yield* a.drain
      yield* TestClock.adjust("30 seconds")
      for (let i = 0; i < 5; i++) {
        yield* a.push("realtime:room", "presence", { type: "presence", event: "track", payload: { i } }, ja)
      }
      yield* a.push("realtime:room", "presence", { type: "presence", event: "untrack" }, ja)
      const frames = yield* a.drain
      expect(frames.slice(-2).map((m) => [m.event, m.payload])).toEqual([
        ["system", {
          extension: "system",
          status: "error",
          message: "Client presence rate limit exceeded",
          channel: "room"
        }],
        ["phx_close", {}]
      ])
    }))
})

// -------------------------------------------------------------------------------------
// tokens
// -------------------------------------------------------------------------------------

describe("access tokens", () => {
  it.scoped("access_token: never replied; sb_/same/null ignored; new valid → Subscribed again; invalid → shutdown", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const token = yield* s.makeToken()
      const jr = yield* c.joined("realtime:db", {
        config: { postgres_changes: [{ event: "*", schema: "public" }] },
        access_token: token
      })
      yield* c.drain
      const send = (access_token: unknown) => c.push("realtime:db", "access_token", { access_token }, jr)
      yield* send(null)
      yield* send("sb_publishable_test")
      yield* send(token)
      expect(yield* c.drain).toEqual([])
      const fresh = yield* s.makeToken({ role: "authenticated", expiresIn: "2 hours" })
      yield* send(fresh)
      expect((yield* c.drain).map((m) => [m.joinRef, m.event, (m.payload as any).message])).toEqual([
        [jr, "system", "Subscribed to PostgreSQL"]
      ])
      expect((yield* s.subscribers("db"))[0]!.claims.exp).toBe(7200)
      yield* send("garbage")
      expect((yield* c.drain).map((m) => [m.event, m.payload])).toEqual([
        ["system", {
          extension: "system",
          status: "error",
          message: "The token provided is not a valid JWT",
          channel: "db"
        }],
        ["phx_close", {}]
      ])
    }))

  it.scoped("token expiry (TestClock): system error at exp, then phx_close", () =>
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

  it.scoped("expireToken forces the expiry path", () =>
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
  it.scoped("delivered only to matching bindings, with the matching ids", () =>
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
      const first = (frames[0]!.payload as any).data
      expect(first).toEqual({
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

  it.effect("column types are inferred as a table would have them: a small integer is an int4, not a string", () =>
    Effect.gen(function*() {
      const s = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const binding = { event: "INSERT", schema: "public", table: "orders" } as const
      const db = yield* client.channel("db", { postgresChanges: [binding] })
      const Order = Schema.Struct({ id: Schema.String, total: Schema.Number })
      // with the default int8: "string", an int8 `total` would fail Schema.Number and be skipped
      const received = yield* db.postgresChanges(binding, Order).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* db.subscribe
      yield* s.emitChange({ table: "orders", type: "INSERT", record: { id: "o-1", total: 10 } })
      // a row with its types given: what arrives first if the one above was skipped
      const columns = [{ name: "id", type: "text" }, { name: "total", type: "float8" }]
      yield* s.emitChange({ table: "orders", type: "INSERT", record: { id: "o-2", total: 11 }, columns })
      const [change] = Chunk.toReadonlyArray(yield* Fiber.join(received))
      expect(change!.new).toEqual({ id: "o-1", total: 10 })
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.scoped("inferred column types: int4 within its range, int8 beyond, float8, bool, text, arrays, jsonb", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* c.joined("realtime:db", { config: { postgres_changes: [{ event: "*", schema: "public", table: "t" }] } })
      yield* c.drain
      const record = {
        small: 2_147_483_647,
        negative: -2_147_483_648,
        big: 2_147_483_648,
        huge: -9_007_199_254_740_991,
        price: 9.5,
        ok: true,
        name: "x",
        none: null,
        tags: ["a", "b"],
        ids: [1, 2],
        wide: [1, 3_000_000_000],
        empty: [],
        mixed: [1, "a"],
        doc: { a: 1 }
      }
      yield* s.emitChange({ table: "t", type: "INSERT", record })
      const [frame] = yield* c.drain
      expect((frame!.payload as any).data.columns).toEqual([
        { name: "small", type: "int4" },
        { name: "negative", type: "int4" },
        { name: "big", type: "int8" },
        { name: "huge", type: "int8" },
        { name: "price", type: "float8" },
        { name: "ok", type: "bool" },
        { name: "name", type: "text" },
        { name: "none", type: "text" },
        { name: "tags", type: "_text" },
        { name: "ids", type: "_int4" },
        { name: "wide", type: "_int8" },
        { name: "empty", type: "jsonb" },
        { name: "mixed", type: "jsonb" },
        { name: "doc", type: "jsonb" }
      ])
    }))

  it.scoped("filter parse errors arrive as system postgres_changes errors; the channel stays open", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* c.joined("realtime:db", {
        config: { postgres_changes: [{ event: "*", schema: "public", table: "t", filter: "id=in.1,2" }] }
      })
      const [system] = yield* c.drain
      expect(system!.payload).toMatchObject({ extension: "postgres_changes", status: "error", channel: "db" })
      expect((system!.payload as any).message).toMatch(/parenthes/)
      expect(yield* s.emitChange({ table: "t", type: "INSERT", record: { id: 1 } })).toBe(0)
      expect((yield* s.subscribers("db")).length).toBe(1)
    }))
})

// -------------------------------------------------------------------------------------
// private channels
// -------------------------------------------------------------------------------------

describe("private channels", () => {
  it.scoped("policy: write denied is dropped without ack; readers only; presence write denied; revoked read", () =>
    Effect.gen(function*() {
      const s = yield* server({
        policy: (claims) => ({
          broadcastRead: claims.sub !== "writer-only",
          broadcastWrite: claims.sub === "writer" || claims.sub === "writer-only",
          presenceRead: claims.sub === "writer",
          presenceWrite: false
        })
      })
      const token = (sub: string) => s.makeToken({ claims: { sub } })
      const reader = yield* connect(s)
      const writer = yield* connect(s)
      const config = { config: { private: true, broadcast: { ack: true, self: true } } }
      const jr = yield* reader.joined("realtime:secret", { ...config, access_token: yield* token("reader") })
      const jw = yield* writer.joined("realtime:secret", { ...config, access_token: yield* token("writer") })
      yield* writer.drain
      // denied write: no ack, not delivered
      yield* reader.push("realtime:secret", "broadcast", { type: "broadcast", event: "x", payload: {} }, jr)
      expect(yield* reader.drain).toEqual([])
      expect(yield* writer.drain).toEqual([])
      // allowed write: acked, delivered to readers (self included)
      yield* writer.push("realtime:secret", "broadcast", { type: "broadcast", event: "x", payload: {} }, jw)
      expect((yield* writer.drain).map((m) => m.event)).toEqual(["broadcast", "phx_reply"])
      expect((yield* reader.drain).map((m) => m.event)).toEqual(["broadcast"])
      // presence write denied
      const t = yield* reader.push("realtime:secret", "presence", { type: "presence", event: "track", payload: {} }, jr)
      expect((yield* reader.replyTo(t)).payload).toEqual({ status: "error", response: {} })
      // a token that loses presence read: shutdown
      yield* writer.push("realtime:secret", "access_token", { access_token: yield* token("reader") }, jw)
      expect((yield* writer.drain).map((m) => [m.event, (m.payload as any).message])).toEqual([
        ["system", "You no longer have permission to read from this Channel topic: secret"],
        ["phx_close", undefined]
      ])
    }))

  it.scoped("a channel without broadcast read gets no broadcasts", () =>
    Effect.gen(function*() {
      const s = yield* server({
        policy: (claims) => ({
          broadcastRead: claims.sub === "a",
          broadcastWrite: true,
          presenceRead: true,
          presenceWrite: true
        })
      })
      const a = yield* connect(s)
      const b = yield* connect(s)
      const ja = yield* a.joined("realtime:p", {
        config: { private: true },
        access_token: yield* s.makeToken({ claims: { sub: "a" } })
      })
      yield* b.joined("realtime:p", {
        config: { private: true },
        access_token: yield* s.makeToken({ claims: { sub: "b" } })
      })
      yield* a.push("realtime:p", "broadcast", { type: "broadcast", event: "x", payload: {} }, ja)
      yield* s.dbSend({ topic: "p", event: "db", payload: { n: 1 }, id: "m1" })
      expect(yield* b.drain).toEqual([])
      const got = yield* a.drain
      expect(got.map((m) => [m.binary, m.payload])).toEqual([
        [true, { type: "broadcast", event: "db", payload: { n: 1 }, meta: { id: "m1" } }]
      ])
    }))
})

// -------------------------------------------------------------------------------------
// replay
// -------------------------------------------------------------------------------------

describe("replay", () => {
  const replayJoin = (replay: unknown, extra: object = {}) => ({
    config: { private: true, broadcast: { replay }, ...extra }
  })
  /** `[binary, join_ref, event, id, replayed]` of broadcast frames. */
  const summary = (frames: ReadonlyArray<Inbound>) =>
    frames.map((m) => {
      const payload = m.payload as any
      return [m.binary, m.joinRef, m.event, payload?.meta?.id ?? null, payload?.meta?.replayed ?? false]
    })

  it.scoped("JSON rows as text pushes, binary rows as kind 4, oldest first with meta; before presence_state", () =>
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
        config: {
          private: true,
          broadcast: { replay: { since: 0 }, replication_ready: true },
          presence: { enabled: true, key: "ada" },
          postgres_changes: [{ event: "*", schema: "public", table: "t" }]
        }
      })
      expect(reply.status).toBe("ok")
      const after = yield* c.drain
      expect(after.map((m) => m.event)).toEqual([
        "broadcast",
        "broadcast",
        "broadcast",
        "presence_state",
        "system",
        "system"
      ])
      const [r1, r2, r3] = after
      expect([r1, r3].map((m) => [m.binary, m.joinRef, m.ref, m.topic, m.payload])).toEqual([
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
      // kind 4 carries no join_ref; its metadata is the meta
      expect([r2!.binary, r2!.topic, r2!.payload]).toEqual([true, "realtime:room", {
        type: "broadcast",
        event: "b",
        payload: new Uint8Array([1, 2]),
        meta: { replayed: true, id: "r2" }
      }])
      // the store, read-only
      const rows = yield* s.messages("room")
      expect(rows.map((row) => [row.id, row.topic, row.event, row.private, row.insertedAt])).toEqual([
        ["r1", "room", "a", true, 0],
        ["r2", "room", "b", true, 1000],
        ["pub", "room", "public", false, 1000],
        ["r3", "room", "c", true, 2000]
      ])
      expect(rows[1]!.payload).toEqual(new Uint8Array([1, 2]))
      expect((yield* s.messages()).length).toBe(5)
      expect((yield* s.state).messages("realtime:other").map((row) => row.id)).toEqual(["other"])
    }))

  it.scoped("only dbSend stores: WS and HTTP broadcasts are not replayable; generated ids are UUIDs", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const joinRef = yield* c.joined("realtime:room", broadcastConfig({ ack: true }, { private: true }))
      yield* c.push("realtime:room", "broadcast", { type: "broadcast", event: "ws", payload: {} }, joinRef)
      const response = yield* s.handleHttp({
        method: "POST",
        path: "/api/broadcast",
        headers: { apikey: s.serviceRoleKey, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ topic: "room", event: "http", payload: {}, private: true }] })
      })
      expect(response.status).toBe(202)
      expect(yield* s.messages("room")).toEqual([])
      yield* s.dbSend({ topic: "room", event: "db", payload: { ok: true } })
      const [row] = yield* s.messages("room")
      expect(row!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      const other = yield* connect(s)
      yield* other.joined("realtime:room", replayJoin({ since: 0 }))
      expect(summary(yield* other.drain)).toEqual([[false, "1", "broadcast", row!.id, true]])
    }))

  it.scoped("limit: the newest rows, clamped to [1, 25], absent ⇒ 25; since filters by inserted_at", () =>
    Effect.gen(function*() {
      const s = yield* server()
      for (let i = 0; i < 30; i++) {
        yield* s.dbSend({ topic: "feed", event: "e", payload: { i }, id: `m${i}` })
        yield* TestClock.adjust("10 millis")
      }
      const c = yield* connect(s)
      const replayed = (replay: unknown) =>
        Effect.gen(function*() {
          yield* c.joined("realtime:feed", replayJoin(replay))
          return (yield* c.drain).map((m) => (m.payload as any).payload.i as number)
        })
      const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k)
      expect(yield* replayed({ since: 0, limit: 3 })).toEqual([27, 28, 29])
      expect(yield* replayed({ since: 0, limit: 0 })).toEqual([29])
      expect(yield* replayed({ since: 0, limit: -4 })).toEqual([29])
      expect(yield* replayed({ since: 0, limit: 100 })).toEqual(range(5, 30))
      expect(yield* replayed({ since: 0 })).toEqual(range(5, 30))
      expect(yield* replayed({ since: 0, limit: null })).toEqual(range(5, 30))
      // m20 was inserted at 200 ms: inclusive
      expect(yield* replayed({ since: 200 })).toEqual(range(20, 30))
      expect(yield* replayed({ since: 201, limit: 2 })).toEqual([28, 29])
      expect(yield* replayed({ since: 10_000 })).toEqual([])
    }))

  it.scoped("retention: rows older than 72 hours are gone (not replayed)", () =>
    Effect.gen(function*() {
      const s = yield* server()
      yield* s.dbSend({ topic: "old", event: "e", payload: {}, id: "first" })
      yield* TestClock.adjust("1 hour")
      yield* s.dbSend({ topic: "old", event: "e", payload: {}, id: "second" })
      yield* TestClock.adjust("71 hours")
      const c = yield* connect(s)
      yield* c.joined("realtime:old", replayJoin({ since: 0 }))
      expect(summary(yield* c.drain).map(([, , , id]) => id)).toEqual(["first", "second"])
      yield* TestClock.adjust("1 millis")
      yield* c.joined("realtime:old", replayJoin({ since: 0 }))
      expect(summary(yield* c.drain).map(([, , , id]) => id)).toEqual(["second"])
      expect((yield* s.messages("old")).map((row) => row.id)).toEqual(["second"])
    }))

  it.scoped("dedupe: a replayed id arriving live is not delivered again to that channel; others get it", () =>
    Effect.gen(function*() {
      const s = yield* server()
      yield* s.dbSend({ topic: "d", event: "e", payload: { v: 1 }, id: "m1" })
      const replayer = yield* connect(s)
      const plain = yield* connect(s)
      const vsn1 = yield* connect(s, { vsn: "1.0.0" })
      yield* replayer.joined("realtime:d", replayJoin({ since: 0 }))
      yield* vsn1.joined("realtime:d", replayJoin({ since: 0 }))
      yield* plain.joined("realtime:d", { config: { private: true } })
      expect(summary(yield* replayer.drain)).toEqual([[false, "1", "broadcast", "m1", true]])
      expect(summary(yield* vsn1.drain)).toEqual([[false, null, "broadcast", "m1", true]])
      expect(yield* plain.drain).toEqual([])
      // the same row's broadcast arrives late: only the channel that did not replay it gets it
      expect(yield* s.dbSend({ topic: "d", event: "e", payload: { v: 1 }, id: "m1" })).toBe(1)
      expect(yield* replayer.drain).toEqual([])
      expect(yield* vsn1.drain).toEqual([])
      expect(summary(yield* plain.drain)).toEqual([[true, null, "broadcast", "m1", false]])
      expect((yield* s.messages("d")).map((row) => row.id)).toEqual(["m1"]) // not stored twice
      // other ids reach everyone
      expect(yield* s.dbSend({ topic: "d", event: "e", payload: { v: 2 }, id: "m2" })).toBe(3)
      expect(summary(yield* replayer.drain)).toEqual([[true, null, "broadcast", "m2", false]])
      // a new join starts with what it replays: m1 and m2 again
      yield* replayer.joined("realtime:d", replayJoin({ since: 0 }))
      expect(summary(yield* replayer.drain).map(([, , , id]) => id)).toEqual(["m1", "m2"])
      // a channel joined without replay remembers nothing
      yield* replayer.joined("realtime:d", { config: { private: true } })
      expect(yield* s.dbSend({ topic: "d", event: "e", payload: { v: 1 }, id: "m1" })).toBe(2)
      expect(summary(yield* replayer.drain)).toEqual([[true, null, "broadcast", "m1", false]])
    }))

  it.scoped("vsn 1.0.0 receivers get the JSON rows as text; binary rows are skipped", () =>
    Effect.gen(function*() {
      const s = yield* server()
      yield* s.dbSend({ topic: "v1", event: "json", payload: { a: 1 }, id: "j1" })
      yield* s.dbSend({ topic: "v1", event: "bin", payload: new Uint8Array([9]), id: "b1" })
      yield* s.dbSend({ topic: "v1", event: "json", payload: [1, 2], id: "j2" })
      const c = yield* connect(s, { vsn: "1.0.0" })
      yield* c.joined("realtime:v1", replayJoin({ since: 0 }))
      const frames = yield* c.drain
      expect(frames.map((m) => [m.binary, m.ref, m.topic, m.event, m.payload])).toEqual([
        [false, null, "realtime:v1", "broadcast", {
          type: "broadcast",
          event: "json",
          payload: { a: 1 },
          meta: { replayed: true, id: "j1" }
        }],
        [false, null, "realtime:v1", "broadcast", {
          type: "broadcast",
          event: "json",
          payload: [1, 2],
          meta: { replayed: true, id: "j2" }
        }]
      ])
      // the replayed ids are remembered on vsn 1.0.0 too
      expect(yield* s.dbSend({ topic: "v1", event: "json", payload: { a: 1 }, id: "j1" })).toBe(0)
      expect(yield* c.drain).toEqual([])
    }))

  it.scoped("join errors: public channel, invalid params, no broadcast read; a replay that is not a map is ignored", () =>
    Effect.gen(function*() {
      const s = yield* server({
        policy: (claims) => ({
          broadcastRead: claims.sub !== "presence-only",
          broadcastWrite: true,
          presenceRead: true,
          presenceWrite: true
        })
      })
      yield* s.dbSend({ topic: "x", event: "e", payload: {}, id: "m1" })
      const c = yield* connect(s)
      const reason = (payload: unknown) =>
        c.join("realtime:x", payload).pipe(Effect.map(({ reply }) => {
          expect(reply.status).toBe("error")
          return reply.response.reason as string
        }))
      const publicChannel = "UnableToReplayMessages: Replay is not allowed for public channels"
      expect(yield* reason({ config: { broadcast: { replay: { since: 0 } } } })).toBe(publicChannel)
      expect(yield* reason({ config: { private: false, broadcast: { replay: null } } })).toBe(publicChannel)
      const invalid = "UnableToReplayMessages: Replay params are not valid"
      for (
        const replay of [
          {},
          { limit: 5 },
          { since: null },
          { since: "0" },
          { since: 1.5 },
          { since: 0, limit: "5" },
          { since: 0, limit: 2.5 },
          { since: 1e300 }
        ]
      ) {
        expect(yield* reason(replayJoin(replay))).toBe(invalid)
      }
      const presenceOnly = yield* s.makeToken({ claims: { sub: "presence-only" } })
      expect(yield* reason({ ...replayJoin({ since: 0 }), access_token: presenceOnly })).toBe(
        "Unauthorized: You do not have permissions to read from this Channel topic: x"
      )
      expect(yield* reason({ ...replayJoin(null), access_token: presenceOnly })).toBe(
        "Unauthorized: You do not have permissions to read from this Channel topic: x"
      )
      // without replay, presence read is enough to join
      yield* c.joined("realtime:x", { config: { private: true }, access_token: presenceOnly })
      // not a map: the join proceeds, nothing replayed
      for (const replay of [null, 5, "since"]) {
        yield* c.joined("realtime:x", replayJoin(replay))
        expect(yield* c.drain).toEqual([])
      }
      yield* c.joined("realtime:x", replayJoin({ since: 0, limit: false }))
      expect(summary(yield* c.drain)).toEqual([[false, expect.any(String), "broadcast", "m1", true]])
    }))

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
      const got = yield* channel.broadcast("*").pipe(Stream.take(3), Stream.runCollect, Effect.fork)
      yield* channel.subscribe
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "c" }, id: "c" }) // deduped
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "live" }, id: "d" })
      const messages = Chunk.toReadonlyArray(yield* Fiber.join(got))
      expect(messages.map((m) => [m.event, m.payload, m.meta])).toEqual([
        ["blob", new Uint8Array([7]), { replayed: true, id: "b" }],
        ["note", { text: "c" }, { replayed: true, id: "c" }],
        ["note", { text: "live" }, { id: "d" }]
      ])
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))
})

// -------------------------------------------------------------------------------------
// rate limits
// -------------------------------------------------------------------------------------

describe("rate limits", () => {
  it.scoped("events per second: Too many messages per second, then phx_close; the window resets", () =>
    Effect.gen(function*() {
      const s = yield* server({ limits: { maxEventsPerSecond: 3 } })
      const c = yield* connect(s)
      const jr = yield* c.joined("realtime:room")
      for (let i = 0; i < 3; i++) yield* c.push("realtime:room", "custom", {}, jr)
      expect(yield* c.drain).toEqual([])
      yield* c.push("realtime:room", "broadcast", { type: "broadcast", event: "x", payload: {} }, jr)
      expect((yield* c.drain).map((m) => [m.event, (m.payload as any).message])).toEqual([
        ["system", "Too many messages per second"],
        ["phx_close", undefined]
      ])
      yield* TestClock.adjust("1 second")
      const jr2 = yield* c.joined("realtime:room")
      yield* c.push("realtime:room", "custom", {}, jr2)
      expect(yield* c.drain).toEqual([])
    }))

  it.scoped("joins per second: ClientJoinRateLimitReached and the socket closed with 1001", () =>
    Effect.gen(function*() {
      const s = yield* server({ limits: { maxJoinsPerSecond: 2 } })
      const c = yield* connect(s)
      yield* c.joined("realtime:a")
      yield* c.joined("realtime:b")
      const { reply } = yield* c.join("realtime:c")
      expect(reply.response.reason).toBe("ClientJoinRateLimitReached: Too many joins per second")
      expect((yield* Deferred.await(c.closed)).code).toBe(1001)
      // and new connections get a 429 while the window lasts
      const raw = yield* connectRaw(s)
      expect(Exit.isFailure(yield* Effect.exit(Deferred.await(raw.opened)))).toBe(true)
      yield* TestClock.adjust("1 second")
      yield* connect(s)
    }))

  it.scoped("concurrent users: connect refused past the limit", () =>
    Effect.gen(function*() {
      const s = yield* server({ limits: { maxConcurrentUsers: 1 } })
      yield* connect(s)
      const raw = yield* connectRaw(s)
      expect(Exit.isFailure(yield* Effect.exit(Deferred.await(raw.opened)))).toBe(true)
      const state = yield* s.state
      expect(state.stats.connectionsRefused).toBe(1)
    }))
})

// -------------------------------------------------------------------------------------
// fault injection
// -------------------------------------------------------------------------------------

describe("faults", () => {
  it.scoped("dropConnection with a code, or abruptly", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const a = yield* connect(s)
      const b = yield* connect(s)
      yield* s.dropConnection({ connection: "c1", code: 4001, reason: "bye" })
      expect(yield* Deferred.await(a.closed)).toEqual({ code: 4001, reason: "bye" })
      yield* s.dropConnection({ abrupt: true })
      expect((yield* Deferred.await(b.closed)).code).toBe(1006)
      const state = yield* s.state
      expect(state.closedConnections.map((c) => [c.id, c.closeCode])).toEqual([["c1", 4001], ["c2", 1006]])
    }))

  it.scoped("pauseHeartbeats / resumeHeartbeats", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* s.pauseHeartbeats()
      yield* c.send({ joinRef: null, ref: "h1", topic: "phoenix", event: "heartbeat", payload: {} })
      yield* s.waitUntil((state) => state.received("c1").length === 1)
      yield* s.resumeHeartbeats()
      const reply = yield* c.drain
      expect(reply).toEqual([])
      yield* s.pauseHeartbeats("c1")
      expect((yield* s.connections)[0]!.heartbeatsPaused).toBe(true)
    }))

  it.scoped("rejectJoins and delayJoins (TestClock)", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* s.rejectJoins({ topic: "room", reason: "RealtimeRestarting: Realtime is restarting, please standby" })
      const { reply } = yield* c.join("realtime:room")
      expect(reply.response.reason).toBe("RealtimeRestarting: Realtime is restarting, please standby")
      yield* c.joined("realtime:room")
      yield* s.delayJoins({ delay: "3 seconds", times: 2 })
      const ref = yield* c.push("realtime:slow", "phx_join", { config: {} }, "99")
      expect(yield* c.drain).toEqual([])
      // not joined yet: messages to the topic are unmatched
      const early = yield* c.push("realtime:slow", "custom", {}, "99")
      expect((yield* c.replyTo(early)).payload).toEqual({ status: "error", response: { reason: "unmatched topic" } })
      yield* TestClock.adjust("3 seconds")
      expect((yield* c.replyTo(ref)).payload).toEqual({ status: "ok", response: { postgres_changes: [] } })
      yield* s.clearJoinRules
      yield* c.joined("realtime:fast")
    }))

  it.scoped("crashChannel (phx_error), shutdownChannel (system error + phx_close), custom system/push", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const ja = yield* c.joined("realtime:a")
      const jb = yield* c.joined("realtime:b")
      yield* s.sendSystem({ topic: "a" }, { message: "hello" })
      yield* s.push({ topic: "realtime:a" }, "custom", { x: 1 })
      yield* s.crashChannel({ topic: "a" })
      yield* s.shutdownChannel({ topic: "b" }, "Realtime was unable to connect to the project database")
      expect((yield* c.drain).map((m) => [m.joinRef, m.ref, m.topic, m.event, m.payload])).toEqual([
        [ja, null, "realtime:a", "system", { extension: "system", status: "ok", message: "hello", channel: "a" }],
        [ja, null, "realtime:a", "custom", { x: 1 }],
        [ja, ja, "realtime:a", "phx_error", { reason: "channel_crash" }],
        [jb, null, "realtime:b", "system", {
          extension: "system",
          status: "error",
          message: "Realtime was unable to connect to the project database",
          channel: "b"
        }],
        [jb, jb, "realtime:b", "phx_close", {}]
      ])
      expect((yield* s.state).channels).toEqual([])
    }))

  it.scoped("refuseConnections for N attempts", () =>
    Effect.gen(function*() {
      const s = yield* server()
      yield* s.refuseConnections(2, { status: 503, error: "down" })
      for (let i = 0; i < 2; i++) {
        const raw = yield* connectRaw(s)
        expect(Exit.isFailure(yield* Effect.exit(Deferred.await(raw.opened)))).toBe(true)
      }
      yield* connect(s)
      expect((yield* s.stats).connectionsRefused).toBe(2)
    }))

  it.scoped("disconnectAll: Server requested disconnect, then close 1012", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* c.joined("realtime:room")
      expect(yield* s.disconnectAll).toBe(1)
      const message = yield* c.next
      expect([message.joinRef, message.event, message.payload]).toEqual([
        null,
        "system",
        { extension: "system", status: "ok", message: "Server requested disconnect" }
      ])
      expect((yield* Deferred.await(c.closed)).code).toBe(1012)
    }))
})

// -------------------------------------------------------------------------------------
// HTTP API
// -------------------------------------------------------------------------------------

const json = (r: RealtimeServer.HttpResponse) =>
  r.body.byteLength === 0 ? undefined : JSON.parse(new TextDecoder().decode(r.body))

describe("HTTP broadcast API", () => {
  it.scoped("batch: 202 and text delivery (meta id), auth, validation, private skip", () =>
    Effect.gen(function*() {
      const s = yield* server({
        policy: (claims) => ({
          broadcastRead: true,
          broadcastWrite: claims.role === "service_role",
          presenceRead: true,
          presenceWrite: true
        })
      })
      const c = yield* connect(s)
      const v1 = yield* connect(s, { vsn: "1.0.0" })
      yield* c.joined("realtime:room")
      yield* c.joined("realtime:secret", { config: { private: true }, access_token: s.serviceRoleKey })
      yield* v1.joined("realtime:room")
      const post = (body: unknown, headers: Record<string, string> = { apikey: s.apiKey }) =>
        s.handleHttp({
          method: "POST",
          path: "/realtime/v1/api/broadcast?apikey=ignored",
          headers: { "Content-Type": "application/json", ...headers },
          body: JSON.stringify(body)
        })
      const ok = yield* post({
        messages: [
          { topic: "room", event: "a", payload: { n: 1 } },
          { topic: "room", event: "b", payload: { n: 2 }, id: "m-2" },
          { topic: "secret", event: "c", payload: {}, private: true }
        ]
      })
      expect(ok.status).toBe(202)
      expect(ok.body.byteLength).toBe(0)
      expect(ok.headers["x-rate-limit"]).toBe("100")
      expect((yield* c.drain).map((m) => [m.binary, m.payload])).toEqual([
        [false, { type: "broadcast", event: "a", payload: { n: 1 } }],
        [false, { type: "broadcast", event: "b", payload: { n: 2 }, meta: { id: "m-2" } }]
      ])
      expect((yield* v1.drain).map((m) => m.payload)).toEqual([
        { type: "broadcast", event: "a", payload: { n: 1 } },
        { type: "broadcast", event: "b", payload: { n: 2 }, meta: { id: "m-2" } }
      ])
      // Bearer wins over apikey; service_role may write the private topic
      const privateOk = yield* post(
        { messages: [{ topic: "secret", event: "c", payload: {}, private: true }] },
        { apikey: s.apiKey, authorization: `Bearer ${s.serviceRoleKey}` }
      )
      expect(privateOk.status).toBe(202)
      expect((yield* c.drain).map((m) => [m.topic, m.payload])).toEqual([
        ["realtime:secret", { type: "broadcast", event: "c", payload: {} }]
      ])
      expect(yield* post({ messages: [] }, {})).toMatchObject({ status: 401 })
      expect(json(yield* post({ messages: [] }, { apikey: "bad" }))).toEqual({ message: "Unauthorized" })
      const invalid = yield* post({ messages: [{ topic: "room", event: "a", payload: "x" }, { event: "b" }] })
      expect(invalid.status).toBe(422)
      expect(json(invalid)).toEqual({
        errors: { messages: [{ payload: ["is invalid"] }, { topic: ["can't be blank"], payload: ["can't be blank"] }] }
      })
      expect(json(yield* post({}))).toEqual({ errors: { messages: ["can't be blank"] } })
      const notFound = yield* s.handleHttp({ method: "GET", path: "/api/nothing", headers: {} })
      expect(notFound.status).toBe(404)
      const preflight = yield* s.handleHttp({ method: "OPTIONS", path: "/api/broadcast", headers: {} })
      expect(preflight.status).toBe(204)
      expect(preflight.headers["access-control-allow-origin"]).toBe("*")
    }))

  it.scoped("single event: JSON and octet-stream as kind 4; V1 gets JSON only; 415, 422, 403, 429", () =>
    Effect.gen(function*() {
      const s = yield* server({
        limits: { maxPayloadBytes: 50, maxEventsPerSecond: 7 },
        policy: () => ({ broadcastRead: true, broadcastWrite: false, presenceRead: true, presenceWrite: true })
      })
      const v2 = yield* connect(s)
      const v1 = yield* connect(s, { vsn: "1.0.0" })
      yield* v2.joined("realtime:room one")
      yield* v1.joined("realtime:room one")
      const post = (path: string, body: string | Uint8Array, contentType?: string) =>
        s.handleHttp({
          method: "POST",
          path,
          headers: contentType === undefined
            ? { apikey: s.apiKey }
            : { apikey: s.apiKey, "content-type": contentType },
          body
        })
      const base = `/api/broadcast/${encodeURIComponent("room one")}/events/ev`
      expect((yield* post(base, JSON.stringify({ a: 1 }), "application/json")).status).toBe(202)
      expect((yield* post(base, "[1,2]")).status).toBe(202)
      expect((yield* post(base, new Uint8Array([7, 8]), "application/octet-stream")).status).toBe(202)
      expect((yield* v2.drain).map((m) => [m.binary, m.payload])).toEqual([
        [true, { type: "broadcast", event: "ev", payload: { a: 1 } }],
        [true, { type: "broadcast", event: "ev", payload: [1, 2] }],
        [true, { type: "broadcast", event: "ev", payload: new Uint8Array([7, 8]) }]
      ])
      expect((yield* v1.drain).map((m) => m.payload)).toEqual([
        { type: "broadcast", event: "ev", payload: { a: 1 } },
        { type: "broadcast", event: "ev", payload: [1, 2] }
      ])
      const unsupported = yield* post(base, "x", "text/plain")
      expect([unsupported.status, json(unsupported)]).toEqual([415, {
        error: "Unsupported Media Type. Use application/json or application/octet-stream"
      }])
      expect(json(yield* post(base, "null", "application/json"))).toEqual({ errors: { payload: ["can't be blank"] } })
      expect(json(yield* post(base, JSON.stringify({ s: "x".repeat(100) })))).toEqual({
        errors: { payload: ["Payload size exceeds tenant limit"] }
      })
      const denied = yield* post(`${base}?private=true`, "{}")
      expect([denied.status, json(denied)]).toEqual([403, { message: "Unauthorized" }])
      const limited = yield* post(base, "{}")
      expect([limited.status, json(limited)]).toEqual([429, { message: "Too many requests" }])
    }))

  it.scoped("fetch and HttpClient answered in memory", () =>
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
          HttpClientRequest.bodyUnsafeJson({ messages: [{ topic: "room", event: "e", payload: { via: "client" } }] })
        )
      ).pipe(
        Effect.provide(
          RealtimeServer.layerHttpClient.pipe(Layer.provide(Layer.succeed(RealtimeServer.RealtimeServer, s)))
        )
      )
      expect(viaClient.status).toBe(202)
      expect((yield* c.drain).map((m) => (m.payload as any).payload)).toEqual([{ via: "fetch" }, { via: "client" }])
    }))
})

// -------------------------------------------------------------------------------------
// layers and waiting
// -------------------------------------------------------------------------------------

describe("realtime-js in memory", () => {
  it.scopedLive("webSocketClass as transport and fetch for the REST fallback", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const client = yield* Effect.acquireRelease(
        Effect.sync(() =>
          new RealtimeJs(s.url, {
            params: { apikey: s.apiKey },
            transport: s.webSocketClass as any,
            fetch: s.fetch as any
          })
        ),
        (client) =>
          Effect.promise(async () => {
            await client.removeAllChannels()
            await client.disconnect()
          })
      )
      const channel = client.channel("room", { config: { broadcast: { self: true, ack: true } } })
      const got = yield* Deferred.make<any>()
      channel.on("broadcast", { event: "*" }, (message: any) => Deferred.unsafeDone(got, Exit.succeed(message)))
      yield* Effect.async<void, Error>((resume) => {
        channel.subscribe((status, error) => {
          if (status === "SUBSCRIBED") resume(Effect.void)
          else if (status !== "CLOSED") resume(Effect.fail(error ?? new Error(status)))
        })
      })
      const sent = yield* Effect.promise(() =>
        client.channel("room").send({ type: "broadcast", event: "rest", payload: { n: 1 } })
      )
      expect(sent).toBe("ok")
      expect(yield* Deferred.await(got)).toEqual({ type: "broadcast", event: "rest", payload: { n: 1 } })
      const [connection] = yield* s.connections
      expect(connection).toMatchObject({ transport: "memory", vsn: "2.0.0" })
    }))
})

describe("layers", () => {
  it.scoped("layerWebSocketConstructor serves @effect/platform's Socket", () =>
    Effect.gen(function*() {
      const s = yield* RealtimeServer.RealtimeServer
      const socket = yield* Socket.makeWebSocket(`${s.url}/websocket?apikey=${s.apiKey}&vsn=2.0.0`)
      const replies = yield* Queue.unbounded<string>()
      const write = yield* socket.writer
      yield* socket.runRaw((data) => {
        replies.unsafeOffer(typeof data === "string" ? data : new TextDecoder().decode(data))
      }, { onOpen: Effect.orDie(write(JSON.stringify([null, "1", "phoenix", "heartbeat", {}]))) }).pipe(
        Effect.forkScoped
      )
      expect(JSON.parse(yield* Queue.take(replies))).toEqual([null, "1", "phoenix", "phx_reply", {
        status: "ok",
        response: {}
      }])
      const [connection] = yield* s.waitFor((state) => state.connections.length > 0 ? state.connections : undefined)
      expect(connection!.vsn).toBe("2.0.0")
    }).pipe(Effect.provide(RealtimeServer.layerWebSocketConstructor())))

  it.scoped("waitFor resolves on server events; the server closes sockets when its scope closes", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const waiting = yield* s.waitFor((state) => state.subscribers("late")[0]).pipe(Effect.fork)
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
