/**
 * The presence sync of the core (`src/core/presence/sync.ts`), tested once for both editions:
 * `syncDiff` / `syncState` with Phoenix `presence.js` semantics (re-tracks as one Update, no ghosts,
 * malformed input skipped), the `Syncer` reducer that buffers diffs until its join's state, the
 * public shape, and a property against a simulated server. Plain TypeScript: no Effect. Each
 * edition's `Presence.test.ts` tests only its surface (`dual` forms, `Data.taggedEnum` events).
 */
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Sync from "../../src/core/presence/sync.js"
import type { PresenceEvent, PresenceState, RawDiff, RawMeta, RawState } from "../../src/core/presence/sync.js"
import { diff, meta, raw, refs, tags } from "../support/presence.js"

const stateOf = (entries: Record<string, ReadonlyArray<RawMeta>>): PresenceState =>
  Sync.syncState(Sync.empty, raw(entries)).state

describe("syncDiff", () => {
  it("a new key joins", () => {
    const { events, state } = Sync.syncDiff(Sync.empty, diff({ ada: [meta("1", { x: 1 })] }))
    expect(refs(state)).toEqual({ ada: ["1"] })
    expect(events).toEqual([
      Sync.plain.Join({ key: "ada", current: [meta("1", { x: 1 })], joined: [meta("1", { x: 1 })] })
    ])
  })

  it("an existing key gains a meta; current is the key's metas after the join", () => {
    const s0 = stateOf({ ada: [meta("1")] })
    const { events, state } = Sync.syncDiff(s0, diff({ ada: [meta("2")] }))
    expect(refs(state)).toEqual({ ada: ["1", "2"] })
    expect(events).toEqual([
      Sync.plain.Join({ key: "ada", current: [meta("1"), meta("2")], joined: [meta("2")] })
    ])
  })

  it("one of several metas leaves: the key stays", () => {
    const s0 = stateOf({ ada: [meta("1"), meta("2")] })
    const { events, state } = Sync.syncDiff(s0, diff({}, { ada: [meta("1")] }))
    expect(refs(state)).toEqual({ ada: ["2"] })
    expect(events).toEqual([Sync.plain.Leave({ key: "ada", current: [meta("2")], left: [meta("1")] })])
  })

  it("the last meta leaves: the key is removed", () => {
    const s0 = stateOf({ ada: [meta("1")], bob: [meta("9")] })
    const { events, state } = Sync.syncDiff(s0, diff({}, { ada: [meta("1")] }))
    expect(refs(state)).toEqual({ bob: ["9"] })
    expect(state.has("ada")).toBe(false)
    expect(events).toEqual([Sync.plain.Leave({ key: "ada", current: [], left: [meta("1")] })])
  })

  it("a re-track (phx_ref_prev = a leaving ref of the same key) is one Update", () => {
    const s0 = stateOf({ ada: [meta("1", { status: "away" })] })
    const next = meta("2", { status: "online" }, "1")
    const { events, state } = Sync.syncDiff(s0, diff({ ada: [next] }, { ada: [meta("1", { status: "away" })] }))
    expect(refs(state)).toEqual({ ada: ["2"] })
    expect(events).toEqual([
      Sync.plain.Update({
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
    const { events, state } = Sync.syncDiff(s0, diff({ ada: [upd, fresh] }, { ada: [meta("1"), meta("2")] }))
    expect(refs(state)).toEqual({ ada: ["3", "4"] })
    expect(tags(events)).toEqual(["Join:ada", "Update:ada", "Leave:ada"])
    const [join, update, leave] = events
    expect(join).toMatchObject({ joined: [fresh] })
    expect(update).toMatchObject({ previous: [meta("1")], updated: [upd] })
    expect(leave).toMatchObject({ left: [meta("2")], current: [upd, fresh] })
  })

  it("a joined meta whose phx_ref_prev is not leaving is a Join (the old meta stays)", () => {
    const s0 = stateOf({ ada: [meta("1")] })
    const { events, state } = Sync.syncDiff(s0, diff({ ada: [meta("2", {}, "1")] }))
    expect(refs(state)).toEqual({ ada: ["1", "2"] })
    expect(tags(events)).toEqual(["Join:ada"])
  })

  it("a phx_ref_prev pointing into another key is not an update", () => {
    const s0 = stateOf({ ada: [meta("1")] })
    const { events } = Sync.syncDiff(s0, diff({ bob: [meta("2", {}, "1")] }, { ada: [meta("1")] }))
    expect(tags(events)).toEqual(["Join:bob", "Leave:ada"])
  })

  it("re-tracks batched in one diff resolve to one Update from the ref in the state", () => {
    const s0 = stateOf({ ada: [meta("1", { v: 0 })] })
    const { events, state } = Sync.syncDiff(
      s0,
      diff({ ada: [meta("2", { v: 1 }, "1"), meta("3", { v: 2 }, "2")] }, { ada: [meta("1"), meta("2")] })
    )
    expect(refs(state)).toEqual({ ada: ["3"] })
    expect(events).toEqual([
      Sync.plain.Update({
        key: "ada",
        current: [meta("3", { v: 2 }, "2")],
        previous: [meta("1", { v: 0 })],
        updated: [meta("3", { v: 2 }, "2")]
      })
    ])
  })

  it("a meta that joins and leaves within one diff changes nothing and emits nothing", () => {
    const s0 = stateOf({ ada: [meta("1")] })
    const { events, state } = Sync.syncDiff(s0, diff({ ada: [meta("2")] }, { ada: [meta("2")] }))
    expect(refs(state)).toEqual({ ada: ["1"] })
    expect(events).toEqual([])
  })

  it("a leave for an unknown ref is a no-op", () => {
    const s0 = stateOf({ ada: [meta("1")] })
    const { events, state } = Sync.syncDiff(s0, diff({}, { ada: [meta("nope")] }))
    expect(refs(state)).toEqual({ ada: ["1"] })
    expect(events).toEqual([])
  })

  it("a leave for a key not in the state is a no-op", () => {
    const s0 = stateOf({ ada: [meta("1")] })
    const { events, state } = Sync.syncDiff(s0, diff({}, { ghost: [meta("1")] }))
    expect(refs(state)).toEqual({ ada: ["1"] })
    expect(state.has("ghost")).toBe(false)
    expect(events).toEqual([])
  })

  it("a join whose phx_ref exists replaces it: unchanged → no event, changed → Update", () => {
    const s0 = stateOf({ ada: [meta("1", { v: 1 }), meta("2")] })
    const same = Sync.syncDiff(s0, diff({ ada: [meta("1", { v: 1 })] }))
    expect(refs(same.state)).toEqual({ ada: ["2", "1"] })
    expect(same.events).toEqual([])
    const changed = Sync.syncDiff(s0, diff({ ada: [meta("1", { v: 2 })] }))
    expect(refs(changed.state)).toEqual({ ada: ["2", "1"] })
    expect(changed.state.get("ada")![1]).toEqual(meta("1", { v: 2 }))
    expect(changed.events).toEqual([
      Sync.plain.Update({
        key: "ada",
        current: [meta("2"), meta("1", { v: 2 })],
        previous: [meta("1", { v: 1 })],
        updated: [meta("1", { v: 2 })]
      })
    ])
  })

  it("a ref repeated inside one join is kept once", () => {
    const { state } = Sync.syncDiff(Sync.empty, diff({ ada: [meta("1", { v: 1 }), meta("1", { v: 2 })] }))
    expect(state.get("ada")).toEqual([meta("1", { v: 2 })])
  })

  it("two sockets sharing a key: re-track and untrack leave no ghosts", () => {
    let s = Sync.empty
    s = Sync.syncDiff(s, diff({ ada: [meta("a1", { dev: "phone" })] })).state
    s = Sync.syncDiff(s, diff({ ada: [meta("b1", { dev: "laptop" })] })).state
    // socket a re-tracks
    const up = Sync.syncDiff(
      s,
      diff({ ada: [meta("a2", { dev: "phone", typing: true }, "a1")] }, { ada: [meta("a1", { dev: "phone" })] })
    )
    expect(tags(up.events)).toEqual(["Update:ada"])
    expect(refs(up.state)).toEqual({ ada: ["b1", "a2"] })
    // both untrack, one at a time
    const l1 = Sync.syncDiff(up.state, diff({}, { ada: [meta("b1", { dev: "laptop" })] }))
    expect(refs(l1.state)).toEqual({ ada: ["a2"] })
    expect(l1.events).toEqual([
      Sync.plain.Leave({
        key: "ada",
        current: [meta("a2", { dev: "phone", typing: true }, "a1")],
        left: [meta("b1", { dev: "laptop" })]
      })
    ])
    // building the public shape must not disturb the state (realtime-js renames phx_ref in place)
    Sync.toPublic(l1.state)
    l1.events.map((event) => Sync.toPublicEvent(event))
    const l2 = Sync.syncDiff(l1.state, diff({}, { ada: [meta("a2")] }))
    expect(l2.state.size).toBe(0)
    expect(tags(l2.events)).toEqual(["Leave:ada"])
  })

  it("keys such as __proto__ and constructor are plain keys", () => {
    const payload = JSON.parse(
      `{"joins":{"__proto__":{"metas":[{"phx_ref":"1"}]},"constructor":{"metas":[{"phx_ref":"2"}]}},"leaves":{}}`
    )
    const { state } = Sync.syncDiff(Sync.empty, payload)
    expect([...state.keys()]).toEqual(["__proto__", "constructor"])
    const pub = Sync.toPublic(state)
    expect(Object.keys(pub)).toEqual(["__proto__", "constructor"])
    expect(pub["__proto__"]).toEqual([{ presence_ref: "1" }])
    expect(Object.getPrototypeOf(pub)).toBe(null)
  })

  it("malformed entries are skipped without throwing", () => {
    const bad = {
      joins: { a: { metas: [{ phx_ref: 1 }, null, { phx_ref: "ok" }] }, b: "x", c: { metas: "no" } },
      leaves: [1, 2]
    } as unknown as RawDiff
    const { events, state } = Sync.syncDiff(Sync.empty, bad)
    expect(refs(state)).toEqual({ a: ["ok"] })
    expect(tags(events)).toEqual(["Join:a"])
    expect(Sync.syncDiff(Sync.empty, null as unknown as RawDiff).events).toEqual([])
    expect(Sync.isRawDiff(bad)).toBe(false)
    expect(Sync.isRawDiff(diff({ a: [meta("1")] }))).toBe(true)
    expect(Sync.isRawState(raw({ a: [meta("1", {}, "0")] }))).toBe(true)
    expect(Sync.isRawState({ a: { metas: [{ phx_ref: "1", phx_ref_prev: 3 }] } })).toBe(false)
  })
})

describe("syncState", () => {
  it("the first state: every key joins", () => {
    const { events, state } = Sync.syncState(Sync.empty, raw({ ada: [meta("1")], bob: [meta("2")] }))
    expect(refs(state)).toEqual({ ada: ["1"], bob: ["2"] })
    expect(tags(events)).toEqual(["Join:ada", "Join:bob"])
  })

  it("a state replacing a state computes joins, leaves and updates", () => {
    const s0 = stateOf({ ada: [meta("1"), meta("2")], bob: [meta("3")], cy: [meta("4", { v: 1 })] })
    const { events, state } = Sync.syncState(
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
    const { events, state } = Sync.syncState(s0, raw({ ada: [meta("1", { v: 2 })] }))
    expect(state.get("ada")).toEqual([meta("1", { v: 2 })])
    expect(tags(events)).toEqual(["Update:ada"])
    expect(Sync.syncState(state, raw({ ada: [meta("1", { v: 2 })] })).events).toEqual([])
  })

  it("an empty state clears everything", () => {
    const s0 = stateOf({ ada: [meta("1")], bob: [meta("2")] })
    const { events, state } = Sync.syncState(s0, {})
    expect(state.size).toBe(0)
    expect(tags(events)).toEqual(["Leave:ada", "Leave:bob"])
  })
})

describe("Syncer", () => {
  it("diffs before the first state are buffered, then applied after it", () => {
    let s = Sync.makeSyncer()
    const d1 = Sync.receiveDiff(s, "1", diff({ bob: [meta("2")] }))
    expect(d1.synced).toBe(false)
    expect(d1.events).toEqual([])
    expect(d1.syncer.pending).toHaveLength(1)
    s = d1.syncer
    const st = Sync.receiveState(s, "1", raw({ ada: [meta("1")] }))
    expect(st.synced).toBe(true)
    expect(refs(st.syncer.state)).toEqual({ ada: ["1"], bob: ["2"] })
    expect(tags(st.events)).toEqual(["Join:ada", "Join:bob"])
    expect(st.syncer.pending).toEqual([])
    const d2 = Sync.receiveDiff(st.syncer, "1", diff({}, { ada: [meta("1")] }))
    expect(d2.synced).toBe(true)
    expect(refs(d2.syncer.state)).toEqual({ bob: ["2"] })
  })

  it("a replayed diff already contained in the snapshot changes nothing", () => {
    const s = Sync.receiveDiff(Sync.makeSyncer(), "1", diff({ ada: [meta("1")] }, { bob: [meta("0")] })).syncer
    const st = Sync.receiveState(s, "1", raw({ ada: [meta("1")] }))
    expect(refs(st.syncer.state)).toEqual({ ada: ["1"] })
    expect(tags(st.events)).toEqual(["Join:ada"])
  })

  it("after a rejoin, diffs wait for the new join's state; diffs of another join are dropped", () => {
    let s = Sync.receiveState(Sync.makeSyncer(), "1", raw({ ada: [meta("1")] })).syncer
    // channel rejoined with join ref 5: diffs are buffered until the state of join 5
    const a = Sync.receiveDiff(s, "5", diff({ bob: [meta("2")] }))
    expect(a.synced).toBe(false)
    s = Sync.receiveDiff(a.syncer, "4", diff({ cy: [meta("3")] })).syncer
    const st = Sync.receiveState(s, "5", raw({ dee: [meta("4")] }))
    expect(st.dropped).toBe(1)
    expect(refs(st.syncer.state)).toEqual({ dee: ["4"], bob: ["2"] })
    expect(tags(st.events)).toEqual(["Join:dee", "Leave:ada", "Join:bob"])
    expect(st.syncer.joinRef).toBe("5")
  })

  it("the buffer is bounded, oldest first", () => {
    let s = Sync.makeSyncer({ maxPending: 2 })
    let dropped = 0
    for (const ref of ["1", "2", "3"]) {
      const r = Sync.receiveDiff(s, "1", diff({ [`k${ref}`]: [meta(ref)] }))
      s = r.syncer
      dropped += r.dropped
    }
    expect(dropped).toBe(1)
    const st = Sync.receiveState(s, "1", {})
    expect(refs(st.syncer.state)).toEqual({ k2: ["2"], k3: ["3"] })
  })
})

describe("constructors", () => {
  it("events are plain tagged objects by default, and an edition's own values when it passes constructors", () => {
    const made: Array<string> = []
    const make: Sync.Constructors = {
      Join: (args) => (made.push(`Join:${args.key}`), Sync.plain.Join(args)),
      Leave: (args) => (made.push(`Leave:${args.key}`), Sync.plain.Leave(args)),
      Update: (args) => (made.push(`Update:${args.key}`), Sync.plain.Update(args))
    }
    const first = Sync.syncDiff(Sync.empty, diff({ ada: [meta("1")] }))
    expect(first.events).toStrictEqual([{ _tag: "Join", key: "ada", current: [meta("1")], joined: [meta("1")] }])
    const s0 = stateOf({ ada: [meta("1")], bob: [meta("2")] })
    Sync.syncState(s0, raw({ ada: [meta("3", {}, "1")], cy: [meta("4")] }), make)
    Sync.syncDiff(s0, diff({}, { bob: [meta("2")] }), make)
    const buffered = Sync.receiveDiff(Sync.makeSyncer(), "1", diff({ dee: [meta("5")] }), make).syncer
    Sync.receiveState(buffered, "1", {}, make)
    Sync.toPublicEvent(first.events[0]!, make)
    expect(made).toEqual(["Update:ada", "Join:cy", "Leave:bob", "Leave:bob", "Join:dee", "Join:ada"])
  })
})

describe("public shape", () => {
  it("toPublic renames phx_ref to presence_ref and drops phx_ref_prev", () => {
    const s = stateOf({ u2: [meta("r2", { name: "bob" }, "r1")] })
    expect(Sync.toPublic(s)).toEqual({ u2: [{ name: "bob", presence_ref: "r2" }] })
    expect(Object.keys(Sync.toPublic(s)["u2"]![0]!)).toEqual(["name", "presence_ref"])
  })

  it("toPublicEvent maps every meta list", () => {
    const e = Sync.plain.Update({
      key: "k",
      current: [meta("2", { a: 1 }, "1")],
      previous: [meta("1", { a: 0 })],
      updated: [meta("2", { a: 1 }, "1")]
    })
    expect(Sync.toPublicEvent(e)).toEqual(
      Sync.plain.Update({
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

const truthOf = (server: Server) => canonical(Sync.syncState(Sync.empty, server.snapshot()).state)

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

describe("property", () => {
  it("applying the server's diffs and resyncs reproduces its truth; events describe every change", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("a", "b", "c", "__proto__"), { minLength: CLIENTS, maxLength: CLIENTS }),
        fc.array(opArb, { maxLength: 80 }),
        (keyOf, ops) => {
          const server = new Server(keyOf)
          let syncer = Sync.makeSyncer()
          let joinRef = 1
          let awaitingState = true
          const shadow = new Map<string, Map<string, RawMeta>>()
          const feed = (result: Sync.SyncerResult) => {
            syncer = result.syncer
            replay(shadow, result.events, syncer.state)
          }
          const sendState = () => {
            feed(Sync.receiveState(syncer, String(joinRef), server.snapshot()))
            awaitingState = false
          }
          const flush = () => {
            const d = server.takeDiff()
            if (d !== undefined) feed(Sync.receiveDiff(syncer, String(joinRef), d))
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
