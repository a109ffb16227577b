/**
 * The in-process RealtimeServer: the fake socket, the handshake and connections, joins, access
 * tokens, and its layers; in memory (FakeSocket), driven with raw frames, under TestClock.
 */
import * as Socket from "@effect/platform/Socket"
import { assert, describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Deferred, Effect, Exit, Fiber, Option, Queue, Ref, Stream, TestClock } from "effect"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import {
  broadcastConfig,
  connect,
  type ConnectOptions,
  connectRaw,
  isClosed,
  server
} from "./support/realtimeServer.js"
import { settle } from "./support/turns.js"

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
