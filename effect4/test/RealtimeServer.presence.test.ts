/**
 * The in-process RealtimeServer's presence: track, diffs, untrack, limits; in memory (FakeSocket),
 * driven with raw frames, under TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { TestClock } from "effect/testing"
import { type Client, connect, server } from "./support/realtimeServer.js"

describe("presence", () => {
  it.effect("track, presence_state, update with phx_ref_prev, no-op re-track, untrack, leave on close", () =>
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
      expect(state!.event).toBe("presence_state")
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
      expect(Object.keys(yield* s.presence("room"))).toEqual(["ada"])
      expect((yield* s.subscribers("room")).find((ch) => ch.presenceKey === "ada")?.tracked).toMatchObject({
        name: "Ada",
        away: true
      })

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
      expect((yield* Deferred.await(a.closed)).code).toBe(1006)
    }))

  it.effect("Track message size exceeded; Too many presence messages per second", () =>
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

  it.effect("per-channel presence rate limit: 5 calls per 30 s, then shutdown", () =>
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
