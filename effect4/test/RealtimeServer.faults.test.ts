/**
 * The in-process RealtimeServer's limits and injected faults; in memory (FakeSocket), driven with
 * raw frames, under TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import { connect, connectRaw, server } from "./support/realtimeServer.js"

describe("rate limits", () => {
  it.effect("events per second: Too many messages per second, then phx_close; the window resets", () =>
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

  it.effect("joins per second: ClientJoinRateLimitReached and the socket closed with 1001", () =>
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

  it.effect("concurrent users: connect refused past the limit", () =>
    Effect.gen(function*() {
      const s = yield* server({ limits: { maxConcurrentUsers: 1 } })
      yield* connect(s)
      const raw = yield* connectRaw(s)
      expect(Exit.isFailure(yield* Effect.exit(Deferred.await(raw.opened)))).toBe(true)
      const state = yield* s.state
      expect(state.stats.connectionsRefused).toBe(1)
    }))
})

describe("faults", () => {
  it.effect("dropConnection with a code, or abruptly", () =>
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

  it.effect("pauseHeartbeats / resumeHeartbeats", () =>
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

  it.effect("rejectJoins and delayJoins (TestClock)", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* s.rejectJoins({ topic: "room", reason: "RealtimeRestarting: Realtime is restarting, please standby" })
      const { reply } = yield* c.join("realtime:room")
      expect(reply).toEqual({
        status: "error",
        response: { reason: "RealtimeRestarting: Realtime is restarting, please standby" }
      })
      yield* c.joined("realtime:room")
      yield* s.delayJoins({ delay: "3 seconds", times: 2 })
      const ref = yield* c.push("realtime:slow", "phx_join", { config: {} }, "99")
      expect(yield* c.drain).toEqual([])
      // not joined yet: messages to the topic are unmatched
      const early = yield* c.push("realtime:slow", "custom", {}, "99")
      expect((yield* c.replyTo(early)).payload).toEqual({ status: "error", response: { reason: "unmatched topic" } })
      yield* TestClock.adjust("2999 millis")
      expect(yield* c.drain).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect((yield* c.replyTo(ref)).payload).toEqual({ status: "ok", response: { postgres_changes: [] } })
      yield* s.clearJoinRules
      yield* c.joined("realtime:fast")
    }))

  it.effect("crashChannel (phx_error), shutdownChannel (system error + phx_close), custom system/push", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const ja = yield* c.joined("realtime:a")
      const jb = yield* c.joined("realtime:b")
      yield* s.sendSystem({ topic: "a" }, { message: "hello" })
      yield* s.push({ topic: "realtime:a" }, "custom", { x: 1 })
      expect(yield* s.crashChannel({ topic: "a" })).toBe(1)
      expect(yield* s.shutdownChannel({ topic: "b" }, "Realtime was unable to connect to the project database")).toBe(1)
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

  it.effect("refuseConnections for N attempts", () =>
    Effect.gen(function*() {
      const s = yield* server()
      yield* s.refuseConnections(2, { status: 503, error: "down" })
      for (let i = 0; i < 2; i++) {
        const raw = yield* connectRaw(s)
        expect(Exit.isFailure(yield* Effect.exit(Deferred.await(raw.opened)))).toBe(true)
        expect((raw.ws as FakeSocket.FakeWebSocket).upgradeResponse).toEqual({
          status: 503,
          body: "{\"error\":\"down\"}"
        })
      }
      yield* connect(s)
      expect((yield* s.stats).connectionsRefused).toBe(2)
    }))

  it.effect("disconnectAll: Server requested disconnect, then close 1012", () =>
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
