/**
 * Presence: the state of who is on a channel and the sync algorithm that keeps it right.
 *
 * The server sends one `presence_state` after a join (`{ key: { metas: [...] } }`) and then
 * `presence_diff`s (`{ joins, leaves }`). This module holds the pure part: the state as an immutable
 * `Map` from presence key to metas, `syncState` / `syncDiff` with Phoenix `presence.js` semantics,
 * a tagged event per change, and a small reducer (`Syncer`) that buffers the diffs arriving before
 * the first `presence_state` of a join.
 *
 * Where this differs from realtime-js (all on purpose):
 * - A re-track (the server sends the same key in `joins` with `phx_ref_prev` and in `leaves` with the
 *   old ref) is one `Update` event, not a `join` followed by a `leave`.
 * - The state is never mutated by event consumers, so remaining metas keep their `phx_ref` and a later
 *   leave removes them (realtime-js renames `phx_ref` in place when it builds a leave payload, which
 *   leaves ghosts behind when two sockets share a key).
 * - A join of a `phx_ref` already present replaces that meta; a leave of an unknown key or ref is a
 *   no-op; `syncState` makes the state equal to the server's snapshot, content included.
 * - `current` in every event is the key's metas *after* the change (realtime-js passes the metas
 *   before the change to `join` and after it to `leave`).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import { dual } from "effect/Function"
import * as Sync from "../../src/core/presence/sync.js"
import type * as Protocol from "./Protocol.js"

// The algorithm is the core's (`src/core/presence/sync.ts`); this module gives it the Effect 4 shape:
// `dual` signatures and `Data.taggedEnum` events (the core builds them with these constructors).

// -----------------------------------------------------------------------------
// wire models
// -----------------------------------------------------------------------------

/**
 * One presence as the server sends it: the user's tracked fields plus `phx_ref` (unique per track)
 * and, on an update, `phx_ref_prev` (the ref it replaces): a `Protocol.PresenceMetaPayload`.
 *
 * @since 0.1.0
 * @category models
 */
export type RawMeta = Protocol.PresenceMetaPayload

/**
 * The metas of one key as the server sends them: a `Protocol.PresenceEntry`.
 *
 * @since 0.1.0
 * @category models
 */
export type RawPresence = Protocol.PresenceEntry

/**
 * The payload of `presence_state`: a `Protocol.PresenceStatePayload`.
 *
 * @since 0.1.0
 * @category models
 */
export type RawState = Protocol.PresenceStatePayload

/**
 * The payload of `presence_diff`: a `Protocol.PresenceDiffPayload`.
 *
 * @since 0.1.0
 * @category models
 */
export type RawDiff = Protocol.PresenceDiffPayload

/**
 * A presence in the public shape (as realtime-js's `presenceState()`): the user's fields plus
 * `presence_ref` (the server's `phx_ref`); `phx_ref_prev` is dropped.
 *
 * @since 0.1.0
 * @category models
 */
export type PresenceMeta<A extends object = { readonly [field: string]: unknown }> = Sync.PresenceMeta<A>

/**
 * The presence state: key → metas, in the server's order. A `Map`, so keys such as `__proto__`
 * are plain keys.
 *
 * @since 0.1.0
 * @category models
 */
export type PresenceState = Sync.PresenceState

/**
 * The state before any `presence_state`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const empty: PresenceState = Sync.empty

// -----------------------------------------------------------------------------
// events
// -----------------------------------------------------------------------------

/**
 * What a state or diff changed, per key. In all three, `current` is the key's metas after the
 * change (empty when the key is gone).
 *
 * - `Join`: metas that were not there before (`joined`).
 * - `Leave`: metas that are gone (`left`).
 * - `Update`: metas replaced by a re-track. A joined meta whose `phx_ref_prev` is the `phx_ref` of a
 *   meta that leaves in the same diff (same key) is an update of it (`previous[i]` became
 *   `updated[i]`), and so is a join that carries an existing `phx_ref` with different content. Metas
 *   that are genuinely new or gone in the same diff still produce a `Join` / `Leave`.
 *
 * A diff emits, per key, at most one of each, in the order `Join`, `Update`, `Leave`; keys come in
 * the order of `joins`, then `leaves`. A meta that joins and leaves within one diff, and a join that
 * repeats an existing meta unchanged, emit nothing.
 *
 * @since 0.1.0
 * @category models
 */
export type PresenceEvent<M = RawMeta> = Data.TaggedEnum<{
  Join: {
    readonly key: string
    readonly current: ReadonlyArray<M>
    readonly joined: ReadonlyArray<M>
  }
  Leave: {
    readonly key: string
    readonly current: ReadonlyArray<M>
    readonly left: ReadonlyArray<M>
  }
  Update: {
    readonly key: string
    readonly current: ReadonlyArray<M>
    readonly previous: ReadonlyArray<M>
    readonly updated: ReadonlyArray<M>
  }
}>

/**
 * @since 0.1.0
 * @category models
 */
export interface PresenceEventDefinition extends Data.TaggedEnum.WithGenerics<1> {
  readonly taggedEnum: PresenceEvent<this["A"]>
}

/**
 * Constructors (`PresenceEvent.Join({...})`), `$is` and `$match` for {@link PresenceEvent}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const PresenceEvent = Data.taggedEnum<PresenceEventDefinition>()

/**
 * The result of applying a state or a diff.
 *
 * @since 0.1.0
 * @category models
 */
export type SyncResult = Sync.SyncResult<PresenceEvent>

// -----------------------------------------------------------------------------
// sync
// -----------------------------------------------------------------------------

/**
 * Replaces the state with a `presence_state` snapshot and reports what changed: keys and metas
 * missing from the snapshot leave, new ones join, re-tracked ones update. The resulting state is
 * exactly the snapshot.
 *
 * @since 0.1.0
 * @category sync
 */
export const syncState: {
  (newState: RawState): (self: PresenceState) => SyncResult
  (self: PresenceState, newState: RawState): SyncResult
} = dual(2, (self: PresenceState, newState: RawState): SyncResult => Sync.syncState(self, newState, PresenceEvent))

/**
 * Applies a `presence_diff`: for each key, joined metas are added (a meta with a `phx_ref` already
 * present replaces it), then left metas are removed by `phx_ref`; a key with no metas left is
 * removed. Unknown keys and refs in `leaves` are ignored.
 *
 * @since 0.1.0
 * @category sync
 */
export const syncDiff: {
  (diff: RawDiff): (self: PresenceState) => SyncResult
  (self: PresenceState, diff: RawDiff): SyncResult
} = dual(2, (self: PresenceState, diff: RawDiff): SyncResult => Sync.syncDiff(self, diff, PresenceEvent))

/**
 * Checks the shape of a `presence_state` payload (an object of `{ metas: [{ phx_ref: string }] }`).
 * The sync functions skip malformed entries anyway; this lets a caller log and count them.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRawState: (u: unknown) => u is RawState = Sync.isRawState

/**
 * Checks the shape of a `presence_diff` payload.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRawDiff: (u: unknown) => u is RawDiff = Sync.isRawDiff

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
 *
 * @since 0.1.0
 * @category models
 */
export type Syncer = Sync.Syncer

/**
 * What feeding a {@link Syncer} produced. `synced` is true when the state was (re)computed, the
 * moment realtime-js fires `sync`; `dropped` counts buffered diffs discarded by this step.
 *
 * @since 0.1.0
 * @category models
 */
export type SyncerResult = Sync.SyncerResult<PresenceEvent>

/**
 * An empty reducer (no state, no join synced yet).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSyncer: (options?: { readonly maxPending?: number | undefined }) => Syncer = Sync.makeSyncer

/**
 * Feeds a `presence_state`. `joinRef` is the channel's current join ref (not the frame's, which is
 * `null` on broadcasts).
 *
 * @since 0.1.0
 * @category sync
 */
export const receiveState: {
  (joinRef: string, raw: RawState): (self: Syncer) => SyncerResult
  (self: Syncer, joinRef: string, raw: RawState): SyncerResult
} = dual(
  3,
  (self: Syncer, joinRef: string, raw: RawState): SyncerResult => Sync.receiveState(self, joinRef, raw, PresenceEvent)
)

/**
 * Feeds a `presence_diff`: applied when the state is synced for `joinRef` (the channel's current
 * join ref), buffered otherwise.
 *
 * @since 0.1.0
 * @category sync
 */
export const receiveDiff: {
  (joinRef: string, raw: RawDiff): (self: Syncer) => SyncerResult
  (self: Syncer, joinRef: string, raw: RawDiff): SyncerResult
} = dual(
  3,
  (self: Syncer, joinRef: string, raw: RawDiff): SyncerResult => Sync.receiveDiff(self, joinRef, raw, PresenceEvent)
)

// -----------------------------------------------------------------------------
// public shape
// -----------------------------------------------------------------------------

/**
 * A raw meta in the public shape: `phx_ref` becomes `presence_ref`, `phx_ref_prev` is dropped.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toPublicMeta: (meta: RawMeta) => PresenceMeta = Sync.toPublicMeta

/**
 * The state in the public shape of realtime-js's `presenceState()`: `{ key: [meta, ...] }`. The
 * object has no prototype, so any key (`__proto__` included) is an own property.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toPublic: (state: PresenceState) => { readonly [key: string]: ReadonlyArray<PresenceMeta> } = Sync.toPublic

/**
 * An event with its metas in the public shape.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toPublicEvent = (event: PresenceEvent): PresenceEvent<PresenceMeta> =>
  Sync.toPublicEvent(event, PresenceEvent)
