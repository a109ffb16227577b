/**
 * Presence sync, the pure algorithm: the state as an immutable `Map` from presence key to metas,
 * `syncState` / `syncDiff` with Phoenix `presence.js` semantics, a tagged event per change, and a
 * small reducer (`Syncer`) that buffers the diffs arriving before the first `presence_state` of a
 * join. Events are plain tagged objects unless the caller passes its own constructors (an edition
 * passes its tagged-enum constructors, so its users get its values). See the edition's `Presence`
 * module for how this differs from realtime-js.
 */
/**
 * One presence as the server sends it: the user's tracked fields plus `phx_ref` (unique per track)
 * and, on an update, `phx_ref_prev` (the ref it replaces).
 */
export interface RawMeta {
  readonly phx_ref: string
  readonly phx_ref_prev?: string | undefined
  readonly [field: string]: unknown
}

/**
 * The metas of one key as the server sends them.
 */
export interface RawPresence {
  readonly metas: ReadonlyArray<RawMeta>
}

/**
 * The payload of `presence_state`.
 */
export interface RawState {
  readonly [key: string]: RawPresence
}

/**
 * The payload of `presence_diff`.
 */
export interface RawDiff {
  readonly joins: RawState
  readonly leaves: RawState
}

/**
 * A presence in the public shape (as realtime-js's `presenceState()`): the user's fields plus
 * `presence_ref` (the server's `phx_ref`); `phx_ref_prev` is dropped.
 */
export type PresenceMeta<A extends object = { readonly [field: string]: unknown }> =
  & { readonly [K in keyof A]: A[K] }
  & { readonly presence_ref: string }

/**
 * The presence state: key → metas, in the server's order. A `Map`, so keys such as `__proto__`
 * are plain keys.
 */
export type PresenceState = ReadonlyMap<string, ReadonlyArray<RawMeta>>

/**
 * The state before any `presence_state`.
 */
export const empty: PresenceState = new Map()

// -----------------------------------------------------------------------------
// events
// -----------------------------------------------------------------------------

/** The fields of a `Join` event: metas that were not there before (`joined`). */
export interface Join<M = RawMeta> {
  readonly _tag: "Join"
  readonly key: string
  readonly current: ReadonlyArray<M>
  readonly joined: ReadonlyArray<M>
}

/** The fields of a `Leave` event: metas that are gone (`left`). */
export interface Leave<M = RawMeta> {
  readonly _tag: "Leave"
  readonly key: string
  readonly current: ReadonlyArray<M>
  readonly left: ReadonlyArray<M>
}

/** The fields of an `Update` event: metas replaced by a re-track (`previous[i]` became `updated[i]`). */
export interface Update<M = RawMeta> {
  readonly _tag: "Update"
  readonly key: string
  readonly current: ReadonlyArray<M>
  readonly previous: ReadonlyArray<M>
  readonly updated: ReadonlyArray<M>
}

/**
 * What a state or diff changed, per key. In all three, `current` is the key's metas after the
 * change (empty when the key is gone). A diff emits, per key, at most one of each, in the order
 * `Join`, `Update`, `Leave`; keys come in the order of `joins`, then `leaves`. A meta that joins and
 * leaves within one diff, and a join that repeats an existing meta unchanged, emit nothing.
 */
export type PresenceEvent<M = RawMeta> = Join<M> | Leave<M> | Update<M>

/** How events are built: plain objects by default, an edition's own values when it passes these. */
export interface Constructors {
  readonly Join: <M>(args: Omit<Join<M>, "_tag">) => Join<M>
  readonly Leave: <M>(args: Omit<Leave<M>, "_tag">) => Leave<M>
  readonly Update: <M>(args: Omit<Update<M>, "_tag">) => Update<M>
}

/** Plain tagged objects. */
export const plain: Constructors = {
  Join: (args) => ({ _tag: "Join", ...args }),
  Leave: (args) => ({ _tag: "Leave", ...args }),
  Update: (args) => ({ _tag: "Update", ...args })
}

/** The result of applying a state or a diff (`E`: the event values the constructors build). */
export interface SyncResult<E = PresenceEvent> {
  readonly state: PresenceState
  readonly events: ReadonlyArray<E>
}

// -----------------------------------------------------------------------------
// sync
// -----------------------------------------------------------------------------

/**
 * Replaces the state with a `presence_state` snapshot and reports what changed: keys and metas
 * missing from the snapshot leave, new ones join, re-tracked ones update. The resulting state is
 * exactly the snapshot.
 */
export const syncState = (
  self: PresenceState,
  newState: RawState,
  make: Constructors = plain
): SyncResult => {
  const joins = normalize(newState)
  const leaves = new Map<string, Array<RawMeta>>()
  for (const [key, metas] of self) {
    const kept = joins.get(key)
    const gone = kept === undefined ? metas : metas.filter((meta) => !kept.some((k) => k.phx_ref === meta.phx_ref))
    if (gone.length > 0) leaves.set(key, [...gone])
  }
  return apply(self, joins, leaves, make)
}

/**
 * Applies a `presence_diff`: for each key, joined metas are added (a meta with a `phx_ref` already
 * present replaces it), then left metas are removed by `phx_ref`; a key with no metas left is
 * removed. Unknown keys and refs in `leaves` are ignored.
 */
export const syncDiff = (self: PresenceState, diff: RawDiff, make: Constructors = plain): SyncResult => {
  const raw: unknown = diff
  const joins = normalize(isObject(raw) ? (raw as { readonly joins?: unknown }).joins : undefined)
  const leaves = normalize(isObject(raw) ? (raw as { readonly leaves?: unknown }).leaves : undefined)
  return apply(self, joins, leaves, make)
}

const apply = (
  self: PresenceState,
  joins: ReadonlyMap<string, ReadonlyArray<RawMeta>>,
  leaves: ReadonlyMap<string, ReadonlyArray<RawMeta>>,
  make: Constructors
): SyncResult => {
  const next = new Map(self)
  const events: Array<PresenceEvent> = []
  const keys = new Set([...joins.keys(), ...leaves.keys()])
  for (const key of keys) {
    const before = self.get(key) ?? []
    const after = applyKey(key, before, joins.get(key) ?? [], leaves.get(key) ?? [], events, make)
    if (after.length > 0) next.set(key, after)
    else next.delete(key)
  }
  return { state: next, events }
}

const applyKey = (
  key: string,
  before: ReadonlyArray<RawMeta>,
  joined: ReadonlyArray<RawMeta>,
  left: ReadonlyArray<RawMeta>,
  events: Array<PresenceEvent>,
  make: Constructors
): ReadonlyArray<RawMeta> => {
  const joinedByRef = new Map(joined.map((meta) => [meta.phx_ref, meta]))
  const leftRefs = new Set(left.map((meta) => meta.phx_ref))
  // Phoenix order: the metas the join does not replace, then the joined metas; then the leaves.
  const after = before
    .filter((meta) => !joinedByRef.has(meta.phx_ref))
    .concat(joined)
    .filter((meta) => !leftRefs.has(meta.phx_ref))
  if (after.length === before.length && after.every((meta, i) => meta === before[i])) {
    return before
  }

  const beforeByRef = new Map(before.map((meta) => [meta.phx_ref, meta]))
  const afterRefs = new Set(after.map((meta) => meta.phx_ref))
  const removedRefs = new Set(before.filter((meta) => !afterRefs.has(meta.phx_ref)).map((meta) => meta.phx_ref))

  const newMetas: Array<RawMeta> = []
  const previous: Array<RawMeta> = []
  const updated: Array<RawMeta> = []
  const paired = new Set<string>()
  for (const meta of after) {
    const old = beforeByRef.get(meta.phx_ref)
    if (old !== undefined) {
      // a join repeating an existing ref: an update if the user's fields changed, else nothing
      if (old !== meta && joinedByRef.has(meta.phx_ref) && !sameFields(old, meta)) {
        previous.push(old)
        updated.push(meta)
      }
      continue
    }
    const prev = resolvePrev(meta, beforeByRef, joinedByRef, afterRefs)
    if (prev !== undefined && removedRefs.has(prev) && !paired.has(prev)) {
      paired.add(prev)
      previous.push(beforeByRef.get(prev)!)
      updated.push(meta)
    } else {
      newMetas.push(meta)
    }
  }
  const gone = before.filter((meta) => removedRefs.has(meta.phx_ref) && !paired.has(meta.phx_ref))

  if (newMetas.length > 0) events.push(make.Join({ key, current: after, joined: newMetas }))
  if (updated.length > 0) events.push(make.Update({ key, current: after, previous, updated }))
  if (gone.length > 0) events.push(make.Leave({ key, current: after, left: gone }))
  return after
}

// Follows `phx_ref_prev` through metas that joined and left within the same diff (several
// re-tracks batched into one diff), to the ref that was in the state before.
const resolvePrev = (
  meta: RawMeta,
  beforeByRef: ReadonlyMap<string, RawMeta>,
  joinedByRef: ReadonlyMap<string, RawMeta>,
  afterRefs: ReadonlySet<string>
): string | undefined => {
  let prev = meta.phx_ref_prev
  for (let hops = 0; hops <= joinedByRef.size; hops++) {
    if (prev === undefined || beforeByRef.has(prev) || afterRefs.has(prev)) return prev
    const through = joinedByRef.get(prev)
    if (through === undefined) return prev
    prev = through.phx_ref_prev
  }
  return undefined
}

// Reads a raw state defensively (it comes from the wire): entries without a `metas` array and metas
// without a string `phx_ref` are skipped; a ref repeated within a key keeps its last content at its
// first position.
const normalize = (raw: unknown): Map<string, ReadonlyArray<RawMeta>> => {
  const out = new Map<string, ReadonlyArray<RawMeta>>()
  if (!isObject(raw) || Array.isArray(raw)) return out
  for (const key of Object.keys(raw)) {
    const presence = (raw as Record<string, unknown>)[key]
    if (!hasMetas(presence)) continue
    const metas: Array<RawMeta> = []
    const index = new Map<string, number>()
    for (const meta of presence.metas) {
      if (!isRawMeta(meta)) continue
      const at = index.get(meta.phx_ref)
      if (at === undefined) {
        index.set(meta.phx_ref, metas.length)
        metas.push(meta)
      } else {
        metas[at] = meta
      }
    }
    if (metas.length > 0) out.set(key, metas)
  }
  return out
}

// `Predicate.isObject` of effect: an object or a function
const isObject = (u: unknown): u is object => (typeof u === "object" && u !== null) || typeof u === "function"

const has = <K extends PropertyKey>(u: unknown, key: K): u is { readonly [k in K]: unknown } => isObject(u) && key in u

const hasMetas = (u: unknown): u is { readonly metas: ReadonlyArray<unknown> } =>
  has(u, "metas") && Array.isArray(u.metas)

const isRawMeta = (u: unknown): u is RawMeta =>
  has(u, "phx_ref") && typeof u.phx_ref === "string" &&
  (!has(u, "phx_ref_prev") || u.phx_ref_prev === undefined || typeof u.phx_ref_prev === "string")

// `phx_ref_prev` belongs to the ref (a snapshot may omit it), so it is not compared.
const sameFields = (a: RawMeta, b: RawMeta): boolean => {
  const { phx_ref_prev: _a, ...restA } = a
  const { phx_ref_prev: _b, ...restB } = b
  return jsonEquals(restA, restB)
}

// JSON equality (keys in any order, `undefined` fields as absent). Iterative: a meta comes from a
// peer, who chooses its depth, so no recursion here (an explicit stack of pairs still to compare).
const jsonEquals = (left: unknown, right: unknown): boolean => {
  const stack: Array<unknown> = [left, right]
  while (stack.length > 0) {
    const b = stack.pop()
    const a = stack.pop()
    if (a === b) continue
    if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
      if (typeof a === "number" && typeof b === "number" && Number.isNaN(a) && Number.isNaN(b)) continue
      return false
    }
    if (Array.isArray(a)) {
      if (!Array.isArray(b) || a.length !== b.length) return false
      for (let i = 0; i < a.length; i++) stack.push(a[i], b[i])
      continue
    }
    if (Array.isArray(b)) return false
    const ra = a as Record<string, unknown>
    const rb = b as Record<string, unknown>
    const ka = Object.keys(ra).filter((k) => ra[k] !== undefined)
    const kb = Object.keys(rb).filter((k) => rb[k] !== undefined)
    if (ka.length !== kb.length) return false
    for (const k of ka) {
      if (!Object.prototype.hasOwnProperty.call(rb, k)) return false
      stack.push(ra[k], rb[k])
    }
  }
  return true
}

/**
 * Checks the shape of a `presence_state` payload (an object of `{ metas: [{ phx_ref: string }] }`).
 * The sync functions skip malformed entries anyway; this lets a caller log and count them.
 */
export const isRawState = (u: unknown): u is RawState =>
  isObject(u) && !Array.isArray(u) &&
  Object.keys(u).every((key) => {
    const presence = (u as Record<string, unknown>)[key]
    return hasMetas(presence) && presence.metas.every(isRawMeta)
  })

/**
 * Checks the shape of a `presence_diff` payload.
 */
export const isRawDiff = (u: unknown): u is RawDiff =>
  has(u, "joins") && has(u, "leaves") && isRawState(u.joins) && isRawState(u.leaves)

// -----------------------------------------------------------------------------
// pending diffs
// -----------------------------------------------------------------------------

/**
 * The presence reducer of one channel: the state, the join it belongs to, and the diffs waiting for
 * that join's first `presence_state`. Immutable; feed it with {@link receiveState} and
 * {@link receiveDiff}.
 *
 * Like Phoenix `presence.js`: a diff is applied only when the state was synced for the channel's
 * current join (`joinRef`); otherwise it is buffered and replayed right after the next
 * `presence_state` of that join (diffs buffered for another join are dropped then). A rejoin keeps
 * the state, so the next snapshot reports what changed while the channel was away. Replaying a diff
 * the snapshot already contains is harmless (joins replace, unknown leaves are no-ops).
 *
 * The buffer is bounded (`maxPending`, oldest dropped first): a channel without presence enabled
 * still gets diffs on public topics and never a `presence_state`.
 */
export interface Syncer {
  readonly state: PresenceState
  /** The join ref of the last `presence_state`, if any. */
  readonly joinRef: string | undefined
  readonly pending: ReadonlyArray<{ readonly joinRef: string; readonly diff: RawDiff }>
  readonly maxPending: number
}

/**
 * What feeding a {@link Syncer} produced. `synced` is true when the state was (re)computed, the
 * moment realtime-js fires `sync`; `dropped` counts buffered diffs discarded by this step.
 */
export interface SyncerResult<E = PresenceEvent> {
  readonly syncer: Syncer
  readonly events: ReadonlyArray<E>
  readonly synced: boolean
  readonly dropped: number
}

/**
 * An empty reducer (no state, no join synced yet).
 */
export const makeSyncer = (options?: { readonly maxPending?: number | undefined }): Syncer => ({
  state: empty,
  joinRef: undefined,
  pending: [],
  maxPending: Math.max(0, options?.maxPending ?? 1000)
})

/**
 * Feeds a `presence_state`. `joinRef` is the channel's current join ref (not the frame's, which is
 * `null` on broadcasts).
 */
export const receiveState = (
  self: Syncer,
  joinRef: string,
  raw: RawState,
  make: Constructors = plain
): SyncerResult => {
  const first = syncState(self.state, raw, make)
  let state = first.state
  const events = [...first.events]
  let dropped = 0
  for (const entry of self.pending) {
    if (entry.joinRef !== joinRef) {
      dropped++
      continue
    }
    const result = syncDiff(state, entry.diff, make)
    state = result.state
    events.push(...result.events)
  }
  return { syncer: { ...self, state, joinRef, pending: [] }, events, synced: true, dropped }
}

/**
 * Feeds a `presence_diff`: applied when the state is synced for `joinRef` (the channel's current
 * join ref), buffered otherwise.
 */
export const receiveDiff = (
  self: Syncer,
  joinRef: string,
  raw: RawDiff,
  make: Constructors = plain
): SyncerResult => {
  if (self.joinRef !== undefined && self.joinRef === joinRef) {
    const result = syncDiff(self.state, raw, make)
    return { syncer: { ...self, state: result.state }, events: result.events, synced: true, dropped: 0 }
  }
  const pending = [...self.pending, { joinRef, diff: raw }]
  const dropped = Math.max(0, pending.length - self.maxPending)
  return {
    syncer: { ...self, pending: dropped > 0 ? pending.slice(dropped) : pending },
    events: [],
    synced: false,
    dropped
  }
}

// -----------------------------------------------------------------------------
// public shape
// -----------------------------------------------------------------------------

/**
 * A raw meta in the public shape: `phx_ref` becomes `presence_ref`, `phx_ref_prev` is dropped.
 */
export const toPublicMeta = (meta: RawMeta): PresenceMeta => {
  const entries: Array<[string, unknown]> = []
  for (const field of Object.keys(meta)) {
    if (field !== "phx_ref" && field !== "phx_ref_prev" && field !== "presence_ref") {
      entries.push([field, meta[field]])
    }
  }
  entries.push(["presence_ref", meta.phx_ref])
  return Object.fromEntries(entries) as PresenceMeta
}

/**
 * The state in the public shape of realtime-js's `presenceState()`: `{ key: [meta, ...] }`. The
 * object has no prototype, so any key (`__proto__` included) is an own property.
 */
export const toPublic = (state: PresenceState): { readonly [key: string]: ReadonlyArray<PresenceMeta> } => {
  const out: Record<string, ReadonlyArray<PresenceMeta>> = Object.create(null)
  for (const [key, metas] of state) out[key] = metas.map(toPublicMeta)
  return out
}

/**
 * An event with its metas in the public shape.
 */
export const toPublicEvent = (event: PresenceEvent, make: Constructors = plain): PresenceEvent<PresenceMeta> => {
  const current = event.current.map(toPublicMeta)
  switch (event._tag) {
    case "Join":
      return make.Join({ key: event.key, current, joined: event.joined.map(toPublicMeta) })
    case "Leave":
      return make.Leave({ key: event.key, current, left: event.left.map(toPublicMeta) })
    case "Update":
      return make.Update({
        key: event.key,
        current,
        previous: event.previous.map(toPublicMeta),
        updated: event.updated.map(toPublicMeta)
      })
  }
}
