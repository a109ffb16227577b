/**
 * Presence payloads for tests, Effect-free (the core's types only): metas, `presence_state` and
 * `presence_diff` payloads from plain records, and short views of a state and of events. Used by the
 * core's sync tests (`test/core/presenceSync.test.ts`) and by both editions' Presence tests.
 */
import type { PresenceState, RawDiff, RawMeta, RawState } from "../../src/core/presence/sync.js"

/** A meta with `ref` as `phx_ref`, its `fields`, and `prev` as `phx_ref_prev` when given. */
export const meta = (ref: string, fields: Record<string, unknown> = {}, prev?: string): RawMeta =>
  prev === undefined ? { ...fields, phx_ref: ref } : { ...fields, phx_ref: ref, phx_ref_prev: prev }

/** A `presence_state` payload: each key with its metas. */
export const raw = (entries: Record<string, ReadonlyArray<RawMeta>>): RawState =>
  Object.fromEntries(Object.entries(entries).map(([key, metas]) => [key, { metas }]))

/** A `presence_diff` payload. */
export const diff = (
  joins: Record<string, ReadonlyArray<RawMeta>>,
  leaves: Record<string, ReadonlyArray<RawMeta>> = {}
): RawDiff => ({ joins: raw(joins), leaves: raw(leaves) })

/** A state as each key's `phx_ref`s. */
export const refs = (state: PresenceState): Record<string, ReadonlyArray<string>> =>
  Object.fromEntries([...state].map(([key, metas]) => [key, metas.map((m) => m.phx_ref)]))

/** Events as `Tag:key`. */
export const tags = (events: ReadonlyArray<{ readonly _tag: string; readonly key: string }>): Array<string> =>
  events.map((e) => `${e._tag}:${e.key}`)
