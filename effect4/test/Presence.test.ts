/**
 * The Effect 4 edition's Presence surface: `dual` forms, `Data.taggedEnum` events, the public shape
 * and the reducer, as thin wrappers over the core's algorithm (`src/core/presence/sync.ts`), whose
 * semantics `test/core/presenceSync.test.ts` (at the repository root) covers once for both editions.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { pipe } from "effect/Function"
import * as CoreSync from "../../src/core/presence/sync.js"
import { diff, meta, raw, refs, tags } from "../../test/support/presence.js"
import * as Presence from "../src/Presence.js"
import type { PresenceEvent, PresenceMeta, PresenceState, RawDiff, RawState } from "../src/Presence.js"

describe("Presence: dual forms", () => {
  const s0 = Presence.syncState(Presence.empty, raw({ ada: [meta("1")] })).state

  it("syncState: data-first, data-last and pipe give the same result", () => {
    const snapshot = raw({ ada: [meta("1")], bob: [meta("2")] })
    const first = Presence.syncState(s0, snapshot)
    const last = Presence.syncState(snapshot)(s0)
    const piped = pipe(s0, Presence.syncState(snapshot))
    expect(last).toEqual(first)
    expect(piped).toEqual(first)
    expect(refs(first.state)).toEqual({ ada: ["1"], bob: ["2"] })
    expect(tags(first.events)).toEqual(["Join:bob"])
  })

  it("syncDiff: data-first, data-last and pipe give the same result", () => {
    const d = diff({ bob: [meta("2")] }, { ada: [meta("1")] })
    const first = Presence.syncDiff(s0, d)
    expect(Presence.syncDiff(d)(s0)).toEqual(first)
    expect(pipe(s0, Presence.syncDiff(d))).toEqual(first)
    expect(refs(first.state)).toEqual({ bob: ["2"] })
    expect(tags(first.events)).toEqual(["Join:bob", "Leave:ada"])
  })

  it("receiveState / receiveDiff: data-first, data-last and pipe give the same result", () => {
    const syncer = Presence.makeSyncer()
    const buffered = Presence.receiveDiff(syncer, "1", diff({ bob: [meta("2")] }))
    expect(Presence.receiveDiff("1", diff({ bob: [meta("2")] }))(syncer)).toEqual(buffered)
    expect(buffered.synced).toBe(false)
    const state = Presence.receiveState(buffered.syncer, "1", raw({ ada: [meta("1")] }))
    expect(Presence.receiveState("1", raw({ ada: [meta("1")] }))(buffered.syncer)).toEqual(state)
    expect(pipe(buffered.syncer, Presence.receiveState("1", raw({ ada: [meta("1")] })))).toEqual(state)
    expect(state.synced).toBe(true)
    expect(tags(state.events)).toEqual(["Join:ada", "Join:bob"])
    const next = pipe(state.syncer, Presence.receiveDiff("1", diff({}, { ada: [meta("1")] })))
    expect(refs(next.syncer.state)).toEqual({ bob: ["2"] })
  })

  it("the results are the core's (the wrapper adds no logic)", () => {
    const d = diff({ ada: [meta("2", { v: 2 }, "1")] }, { ada: [meta("1")] })
    const ours = Presence.syncDiff(s0, d)
    const core = CoreSync.syncDiff(s0, d)
    expect(refs(ours.state)).toEqual(refs(core.state))
    expect(ours.events).toEqual(core.events)
    expect(Presence.makeSyncer({ maxPending: 3 })).toEqual(CoreSync.makeSyncer({ maxPending: 3 }))
    expect(Presence.empty).toBe(CoreSync.empty)
  })
})

describe("Presence: tagged events", () => {
  it("events are the edition's PresenceEvent values: constructors, $is, $match", () => {
    const s0 = Presence.syncState(Presence.empty, raw({ ada: [meta("1", { v: 1 })], bob: [meta("3")] })).state
    const { events } = Presence.syncDiff(
      s0,
      diff({ ada: [meta("2", { v: 2 }, "1")], cy: [meta("4")] }, { ada: [meta("1")], bob: [meta("3")] })
    )
    expect(events).toEqual([
      Presence.PresenceEvent.Update({
        key: "ada",
        current: [meta("2", { v: 2 }, "1")],
        previous: [meta("1", { v: 1 })],
        updated: [meta("2", { v: 2 }, "1")]
      }),
      Presence.PresenceEvent.Join({ key: "cy", current: [meta("4")], joined: [meta("4")] }),
      Presence.PresenceEvent.Leave({ key: "bob", current: [], left: [meta("3")] })
    ])
    expect(events.map((e) => Presence.PresenceEvent.$is("Update")(e))).toEqual([true, false, false])
    const described = events.map(
      Presence.PresenceEvent.$match({
        Join: (e) => `+${e.key}:${e.joined.length}`,
        Leave: (e) => `-${e.key}:${e.left.length}`,
        Update: (e) => `~${e.key}:${e.previous[0]!.phx_ref}>${e.updated[0]!.phx_ref}`
      })
    )
    expect(described).toEqual(["~ada:1>2", "+cy:1", "-bob:1"])
  })

  it("a constructor builds the same value the sync functions emit", () => {
    const { events } = Presence.syncDiff(Presence.empty, diff({ ada: [meta("1")] }))
    const built = Presence.PresenceEvent.Join({ key: "ada", current: [meta("1")], joined: [meta("1")] })
    expect(events[0]).toEqual(built)
    expect(built._tag).toBe("Join")
  })

  it("types: the event union, its generic meta, the results", () => {
    const r = Presence.syncDiff(Presence.empty, diff({ ada: [meta("1")] }))
    expectTypeOf(r.events).toEqualTypeOf<ReadonlyArray<PresenceEvent>>()
    expectTypeOf(r.state).toEqualTypeOf<PresenceState>()
    expectTypeOf<PresenceEvent["_tag"]>().toEqualTypeOf<"Join" | "Leave" | "Update">()
    expectTypeOf(Presence.receiveDiff(Presence.makeSyncer(), "1", diff({})).events).toEqualTypeOf<
      ReadonlyArray<PresenceEvent>
    >()
    const join = Presence.PresenceEvent.Join({ key: "k", current: [{ n: 1 }], joined: [{ n: 1 }] })
    expectTypeOf(join.joined).toEqualTypeOf<ReadonlyArray<{ n: number }>>()
    expectTypeOf(Presence.toPublicEvent).returns.toEqualTypeOf<PresenceEvent<PresenceMeta>>()
    expectTypeOf<PresenceMeta<{ readonly name: string }>>().toEqualTypeOf<
      { readonly name: string } & { readonly presence_ref: string }
    >()
  })
})

describe("Presence: public shape", () => {
  it("toPublic / toPublicMeta rename phx_ref and drop phx_ref_prev", () => {
    const s = Presence.syncState(Presence.empty, raw({ u: [meta("r2", { name: "bob" }, "r1")] })).state
    expect(Presence.toPublic(s)).toEqual({ u: [{ name: "bob", presence_ref: "r2" }] })
    expect(Presence.toPublicMeta(meta("r2", { name: "bob" }, "r1"))).toEqual({ name: "bob", presence_ref: "r2" })
    // no prototype: any key is an own property
    const proto = Presence.syncState(Presence.empty, JSON.parse("{\"__proto__\":{\"metas\":[{\"phx_ref\":\"1\"}]}}"))
    expect(Object.keys(Presence.toPublic(proto.state))).toEqual(["__proto__"])
  })

  it("toPublicEvent keeps the event tagged (the edition's constructors)", () => {
    const e = Presence.PresenceEvent.Update({
      key: "k",
      current: [meta("2", { a: 1 }, "1")],
      previous: [meta("1", { a: 0 })],
      updated: [meta("2", { a: 1 }, "1")]
    })
    const pub = Presence.toPublicEvent(e)
    expect(pub).toEqual(
      Presence.PresenceEvent.Update({
        key: "k",
        current: [{ a: 1, presence_ref: "2" }],
        previous: [{ a: 0, presence_ref: "1" }],
        updated: [{ a: 1, presence_ref: "2" }]
      })
    )
    expect(Presence.PresenceEvent.$is("Update")(pub)).toBe(true)
  })
})

describe("Presence: guards and wire input", () => {
  it("isRawState / isRawDiff", () => {
    expect(Presence.isRawState(raw({ a: [meta("1", {}, "0")] }))).toBe(true)
    expect(Presence.isRawState({ a: { metas: [{ phx_ref: 1 }] } })).toBe(false)
    expect(Presence.isRawDiff(diff({ a: [meta("1")] }))).toBe(true)
    expect(Presence.isRawDiff({ joins: {} })).toBe(false)
  })

  it("malformed wire input never throws", () => {
    for (const bad of [null, 1, "x", [], { joins: 1, leaves: null }, { a: { metas: "x" } }]) {
      expect(() => Presence.syncDiff(Presence.empty, bad as unknown as RawDiff)).not.toThrow()
      expect(() => Presence.syncState(Presence.empty, bad as unknown as RawState)).not.toThrow()
      expect(Presence.syncDiff(Presence.empty, bad as unknown as RawDiff).events).toEqual([])
    }
  })
})
