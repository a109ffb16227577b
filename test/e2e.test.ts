/**
 * The client against the in-process Realtime server, in memory (TestClock): what users see.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Clock, Context, Effect, Fiber, Layer, Option, Schedule, Schema, Stream, TestClock } from "effect"
import { createServer } from "node:net"
import * as NodeRealtime from "../src/node/NodeRealtime.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as Reconnect from "../src/Reconnect.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"
import { awaitStatus, statusesUntil } from "./support/status.js"

const Chat = RealtimeChannel.broadcastEvent("chat", Schema.Struct({ text: Schema.String }))

const collect = <A, E>(stream: Stream.Stream<A, E>, n: number) =>
  stream.pipe(Stream.take(n), Stream.runCollect, Effect.map(Chunk.toReadonlyArray), Effect.fork)

describe("end to end (in-process server, in memory)", () => {
  // users fork their streams the plain way before subscribing (the README's first program): the
  // stream must be listening when subscribe returns
  it.live("streams forked the plain way (forkScoped) before subscribe hear the first event after it", () =>
    Effect.gen(function*() {
      const client = yield* RealtimeClient.RealtimeClient
      const room = yield* client.channel("plain-fork", { broadcast: { self: true, ack: true } })
      const heard = yield* room.broadcast(Chat).pipe(Stream.runHead, Effect.forkScoped)
      const statuses = yield* room.statusChanges.pipe(Stream.take(3), Stream.runCollect, Effect.forkScoped)
      yield* room.subscribe
      yield* room.send(Chat, { text: "first" })
      const message = yield* Fiber.join(heard).pipe(Effect.timeoutOption("5 seconds"))
      assert.deepStrictEqual(Option.map(Option.flatten(message), (m) => m.payload), Option.some({ text: "first" }))
      const seen = yield* Fiber.join(statuses).pipe(Effect.timeoutOption("5 seconds"))
      assert.deepStrictEqual(
        Option.map(seen, (s) => Chunk.toReadonlyArray(s).map((status) => status._tag)),
        Option.some(["Idle", "Joining", "Subscribed"])
      )
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

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
      // on the wire: kind-3 binary frames from the client, as realtime-js sends them
      const state = yield* server.state
      const c1 = state.connections[0]!.id
      const broadcasts = state.received(c1).filter((f) => f.event === "broadcast")
      assert.isTrue(broadcasts.length === 2 && broadcasts.every((f) => f.binary))
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("a vsn 1.0.0 client and a vsn 2.0.0 client share a room", () =>
    Effect.gen(function*() {
      const v2 = yield* RealtimeClient.RealtimeClient
      const v1 = yield* RealtimeTest.makeClient({ vsn: "1.0.0" })
      const a = yield* v2.channel("mixed", { broadcast: { ack: true } })
      const b = yield* v1.channel("mixed", { broadcast: { ack: true } })
      const atV1 = yield* collect(b.broadcast(Chat), 1)
      const atV2 = yield* collect(a.broadcast(Chat), 1)
      yield* a.subscribe
      yield* b.subscribe
      yield* a.send(Chat, { text: "kind 3 in, JSON out" })
      yield* b.send(Chat, { text: "text in, text out" })
      assert.deepStrictEqual((yield* Fiber.join(atV1))[0]!.payload, { text: "kind 3 in, JSON out" })
      assert.deepStrictEqual((yield* Fiber.join(atV2))[0]!.payload, { text: "text in, text out" })
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("self: true echoes to the sender; self: false does not", () =>
    Effect.gen(function*() {
      const client = yield* RealtimeClient.RealtimeClient
      const echo = yield* client.channel("echo", { broadcast: { self: true, ack: true } })
      const mine = yield* collect(echo.broadcast(Chat), 1)
      yield* echo.subscribe
      yield* echo.send(Chat, { text: "me" })
      assert.deepStrictEqual((yield* Fiber.join(mine))[0]!.payload, { text: "me" })
      // self: false — the sender is the only subscriber, so the server delivers the (acked) send to nobody
      const server = yield* RealtimeServer.RealtimeServer
      const quiet = yield* client.channel("quiet", { broadcast: { self: false, ack: true } })
      yield* quiet.subscribe
      const before = (yield* server.stats).broadcastsDelivered
      yield* quiet.send(Chat, { text: "not to me" })
      assert.strictEqual((yield* server.stats).broadcastsDelivered, before)
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("HTTP fallback: an unsubscribed channel's send reaches subscribers through the REST API", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const listener = yield* RealtimeTest.makeClient()
      const room = yield* listener.channel("alerts")
      const got = yield* collect(room.broadcast(Chat), 1)
      yield* room.subscribe
      const client = yield* RealtimeClient.RealtimeClient
      const sender = yield* client.channel("alerts")
      yield* sender.send(Chat, { text: "over http" })
      assert.deepStrictEqual((yield* Fiber.join(got))[0]!.payload, { text: "over http" })
      assert.strictEqual((yield* server.stats).httpRequests, 1)
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("postgres changes with a filter: only matching rows arrive, with exact int8", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const binding = { event: "*", schema: "public", table: "todos", filter: "owner=eq.ada" } as const
      const db = yield* client.channel("db", { postgresChanges: [binding] })
      const changes = yield* collect(db.postgresChanges(binding), 2)
      yield* db.subscribe
      const columns = [{ name: "id", type: "int8" }, { name: "owner", type: "text" }]
      yield* server.emitChange({ table: "todos", type: "INSERT", record: { id: "1", owner: "bob" }, columns })
      yield* server.emitChange({
        table: "todos",
        type: "INSERT",
        record: { id: "9007199254740993", owner: "ada" },
        columns
      })
      yield* server.emitChange({ table: "other", type: "INSERT", record: { id: "2", owner: "ada" }, columns })
      yield* server.emitChange({ table: "todos", type: "DELETE", old_record: { id: "5", owner: "ada" }, columns })
      const received = yield* Fiber.join(changes)
      assert.deepStrictEqual(received.map((c) => c.eventType), ["INSERT", "DELETE"])
      assert.deepStrictEqual(received[0]!.new, { id: "9007199254740993", owner: "ada" })
      assert.deepStrictEqual(received[1]!.old, { id: "5", owner: "ada" })
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("disconnect then connect: subscribed channels rejoin on their own", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const room = yield* client.channel("room")
      yield* room.subscribe
      yield* client.disconnect
      const errored = yield* awaitStatus(room, "Errored")
      assert.include(errored._tag === "Errored" ? errored.reason : "", "disconnected")
      assert.strictEqual((yield* client.state)._tag, "Closed")
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* server.state).connections.length, 0, "no reconnect after disconnect")
      yield* client.connect
      yield* awaitStatus(room, "Subscribed")
      assert.strictEqual((yield* server.subscribers("room")).length, 1)
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("removeChannel leaves and ends the channel's streams; removeAllChannels disconnects", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const a = yield* client.channel("a")
      const b = yield* client.channel("b")
      const streamOfA = yield* a.broadcast("*").pipe(Stream.runCollect, Effect.fork)
      const statusesOfA = yield* a.statusChanges.pipe(Stream.runCollect, Effect.fork)
      yield* a.subscribe
      yield* b.subscribe
      yield* client.removeChannel(a)
      yield* Fiber.join(streamOfA) // the stream ended
      // so did the status stream, on Closed (it started at Idle or Joining: streams start asynchronously)
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(yield* Fiber.join(statusesOfA)).map((s) => s._tag).slice(-2),
        ["Subscribed", "Closed"]
      )
      assert.deepStrictEqual(yield* a.status, RealtimeChannel.ChannelStatus.Closed({ reason: "removed" }))
      // a status stream started after the removal gives the last status and ends
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(yield* Stream.runCollect(a.statusChanges)),
        [RealtimeChannel.ChannelStatus.Closed({ reason: "removed" })]
      )
      yield* server.waitUntil((s) => s.subscribers("a").length === 0)
      assert.deepStrictEqual((yield* client.channels).map((c) => c.topic), ["realtime:b"])
      const again = yield* Effect.flip(a.subscribe)
      assert.strictEqual(again._tag, "ChannelClosed")
      yield* client.removeAllChannels
      assert.deepStrictEqual(yield* client.channels, [])
      assert.strictEqual((yield* client.state)._tag, "Closed")
      yield* server.waitUntil((s) => s.connections.length === 0)
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  describe("faults", () => {
    it.effect("a crashed channel rejoins; a dropped socket reconnects and rejoins", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const room = yield* client.channel("room")
        yield* room.subscribe
        const lost = yield* statusesUntil(room, "Rejoining")
        yield* server.crashChannel({ topic: "room" })
        assert.deepStrictEqual((yield* Fiber.join(lost)).map((s) => s._tag), ["Subscribed", "Errored", "Rejoining"])
        yield* TestClock.adjust("1 second")
        yield* awaitStatus(room, "Subscribed")
        yield* server.dropConnection({ abrupt: true })
        yield* awaitStatus(room, "Errored")
        yield* TestClock.adjust("1 second")
        yield* awaitStatus(room, "Subscribed")
        const state = yield* server.state
        assert.strictEqual(state.stats.connectionsOpened, 2)
        assert.strictEqual(state.subscribers("room").length, 1)
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

    it.effect("a server that stops answering heartbeats is left and reconnected", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const room = yield* client.channel("room")
        yield* room.subscribe
        const timeout = yield* client.heartbeats.pipe(
          Stream.filter((s) => s._tag === "Timeout"),
          Stream.runHead,
          Effect.fork
        )
        yield* server.pauseHeartbeats()
        yield* TestClock.adjust("50 seconds")
        assert.isTrue(Option.isSome(yield* Fiber.join(timeout)))
        yield* server.resumeHeartbeats()
        yield* TestClock.adjust("1 second")
        yield* awaitStatus(room, "Subscribed")
        assert.strictEqual((yield* server.stats).connectionsOpened, 2)
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

    it.effect("a rate-limit shutdown is reported and rejoined", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const room = yield* client.channel("room")
        const system = yield* collect(room.system, 1)
        yield* room.subscribe
        const lost = yield* statusesUntil(room, "Rejoining")
        yield* server.shutdownChannel({ topic: "room" }, "Too many messages per second")
        const errored = (yield* Fiber.join(lost)).find((s) => s._tag === "Errored")
        assert.strictEqual(errored?._tag === "Errored" && errored.reason, "Too many messages per second")
        assert.strictEqual((yield* Fiber.join(system))[0]!.message, "Too many messages per second")
        yield* TestClock.adjust("1 second")
        yield* awaitStatus(room, "Subscribed")
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

    it.effect("tokens refreshed on heartbeats are pushed: the channel outlives its first token", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const room = yield* client.channel("private-room", { private: true })
        yield* room.subscribe
        const first = (yield* server.subscribers("private-room"))[0]!
        yield* TestClock.adjust("11 minutes") // the first token (10 minutes) would have expired by now
        assert.strictEqual((yield* room.status)._tag, "Subscribed")
        const now = (yield* server.subscribers("private-room"))[0]!
        assert.strictEqual(now.joinRef, first.joinRef, "same join: no resubscribe was needed")
        assert.isAbove(now.claims.exp as number, first.claims.exp as number)
        const pushes = (yield* server.received(now.connection)).filter((f) => f.event === "access_token")
        assert.isAbove(pushes.length, 0)
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer({ client: { accessToken: tenMinuteToken } }))))

    it.effect("a channel the server closes for an expired token rejoins with a freshly fetched token", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const room = yield* client.channel("private-room", { private: true })
        yield* room.subscribe
        const first = (yield* server.subscribers("private-room"))[0]!
        yield* TestClock.adjust("1 minute")
        const lost = yield* statusesUntil(room, "Rejoining")
        yield* server.expireToken({ topic: "private-room" })
        const errored = (yield* Fiber.join(lost)).find((s) => s._tag === "Errored")
        assert.include(errored?._tag === "Errored" ? errored.reason : "", "Token has expired")
        yield* TestClock.adjust("1 second")
        yield* awaitStatus(room, "Subscribed")
        const second = (yield* server.subscribers("private-room"))[0]!
        assert.notStrictEqual(second.joinRef, first.joinRef)
        assert.isAbove(second.claims.exp as number, first.claims.exp as number)
      }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer({ client: { accessToken: tenMinuteToken } }))))

    it.effect("a join denied by policy fails subscribe with JoinRejected (Unauthorized); an expired token with TokenExpired", () =>
      Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const denied = yield* client.channel("secret", { private: true })
        const error = yield* Effect.flip(denied.subscribe)
        assert.strictEqual(error._tag, "JoinRejected")
        if (error._tag === "JoinRejected") assert.strictEqual(error.code, "Unauthorized")
        const expired = yield* server.makeToken({ expiresIn: "-1 minutes" })
        yield* client.setAuth(expired)
        const open = yield* client.channel("open")
        const tokenError = yield* Effect.flip(open.subscribe)
        assert.strictEqual(tokenError._tag, "TokenExpired")
      }).pipe(
        Effect.scoped,
        Effect.provide(RealtimeTest.layer({
          server: {
            policy: (_, subtopic) => {
              const allowed = subtopic !== "secret"
              return { broadcastRead: allowed, broadcastWrite: allowed, presenceRead: allowed, presenceWrite: allowed }
            }
          }
        }))
      ))
  })
})

// a fresh user token valid for 10 minutes of the (test) clock, signed with the server's default secret
const tenMinuteToken = Effect.map(
  Clock.currentTimeMillis,
  (now) => RealtimeServer.signToken({ role: "authenticated", exp: Math.floor(now / 1000) + 600 })
)

describe("end to end over real sockets (127.0.0.1)", () => {
  it.scopedLive("a bad API key fails subscribe at once with the upgrade's status and body, and stops reconnecting", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.makeListen()
      const context = yield* Layer.build(NodeRealtime.layer({ url: server.url, apiKey: "not-a-key" }))
      const client = Context.get(context, RealtimeClient.RealtimeClient)
      const room = yield* client.channel("room")
      const error = yield* Effect.flip(room.subscribe)
      assert.strictEqual(error._tag, "SocketClosed")
      if (error._tag === "SocketClosed") {
        assert.strictEqual(error.status, 401)
        assert.include(error.body ?? "", "error")
      }
      const state = yield* client.state
      assert.strictEqual(state._tag, "Closed")
      assert.strictEqual(state._tag === "Closed" && state.status, 401)
      assert.include(state._tag === "Closed" ? state.reason : "", "upgrade refused: HTTP 401")
      const status = yield* room.status
      assert.include(status._tag === "Closed" ? status.reason : "", "HTTP 401")
    }))

  it.scopedLive("a closed port: subscribe is retried on the schedule, then fails with the connection's error", () =>
    Effect.gen(function*() {
      // a port that was just free: nothing listens there
      const port = yield* Effect.async<number>((resume) => {
        const probe = createServer().listen(0, "127.0.0.1", () => {
          const { port } = probe.address() as { port: number }
          probe.close(() => resume(Effect.succeed(port)))
        })
      })
      const layer = NodeRealtime.layer({ url: `ws://127.0.0.1:${port}/socket`, apiKey: "anon" }).pipe(
        Layer.provide(
          Reconnect.layer({ reconnect: Schedule.spaced("20 millis"), rejoin: Schedule.spaced("20 millis") })
        )
      )
      const client = Context.get(yield* Layer.build(layer), RealtimeClient.RealtimeClient)
      const room = yield* client.channel("room", {}, { maxRejoinFailures: 3 })
      const error = yield* Effect.flip(room.subscribe)
      assert.strictEqual(error._tag, "SocketClosed")
      assert.include(error.message, "ECONNREFUSED")
      const status = yield* room.status
      assert.include(status._tag === "Closed" ? status.reason : "", "gave up after 3 failed joins")
    }))

  it.scopedLive("two clients in one room: broadcasts both ways (JSON and binary), presence, HTTP send", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.makeListen()
      const connect = Effect.map(
        Layer.build(NodeRealtime.layer({ url: server.url, apiKey: server.apiKey })),
        (context) => Context.get(context, RealtimeClient.RealtimeClient)
      ).pipe(Effect.orDie)
      const ada = yield* connect
      const bob = yield* connect
      const a = yield* ada.channel("room", { broadcast: { ack: true }, presence: { key: "ada" } })
      const b = yield* bob.channel("room", { broadcast: { ack: true }, presence: { key: "bob" } })
      const atA = yield* collect(a.broadcast("*"), 2)
      const atB = yield* collect(b.broadcast("*"), 2)
      yield* a.subscribe
      yield* b.subscribe
      yield* a.send(Chat, { text: "hi bob" })
      yield* b.send("bytes", new Uint8Array([9, 8, 7]))
      yield* a.track({ online: true })
      yield* b.track({ online: true })
      // an unsubscribed channel sends over HTTP (fetch to the listener)
      const httpSender = yield* (yield* connect).channel("room")
      yield* httpSender.send(Chat, { text: "over http" })
      const atBob = yield* Fiber.join(atB)
      const atAda = yield* Fiber.join(atA)
      assert.deepStrictEqual(atBob.map((m) => m.payload), [{ text: "hi bob" }, { text: "over http" }])
      assert.deepStrictEqual(atAda.map((m) => m.payload), [new Uint8Array([9, 8, 7]), { text: "over http" }])
      const presence = yield* a.presence().changes.pipe(
        Stream.filter((state) => state.has("ada") && state.has("bob")),
        Stream.runHead,
        Effect.timeout("5 seconds")
      )
      assert.isTrue(Option.isSome(presence))
      const connections = yield* server.connections
      assert.isTrue(connections.every((c) => c.transport === "ws" && c.vsn === "2.0.0"))
    }))
})
