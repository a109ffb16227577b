/**
 * A channel's presence as its views show it: how many are present, and the state and events with
 * their metas in the public shape, each decoded with the view's schema (the edition's decoder).
 */
import * as Sync from "../presence/sync.js"

/** How many are present: distinct keys, and metas (connections). */
export interface Occupancy {
  readonly keys: number
  readonly connections: number
}

/** What the channel's presence streams carry: the events of a diff or state, or the new state. */
export type Item = ReadonlyArray<Sync.PresenceEvent> | Sync.PresenceState

/** How many are present in `state`. */
export const occupancyOf = (state: Sync.PresenceState): Occupancy => {
  let connections = 0
  for (const metas of state.values()) connections += metas.length
  return { keys: state.size, connections }
}

/** Two occupancies with the same counts. */
export const sameOccupancy = (a: Occupancy, b: Occupancy): boolean =>
  a.keys === b.keys && a.connections === b.connections

/** What a view's decoder returns for fields that do not match its schema. */
export const NoMatch: unique symbol = Symbol.for("supabase-realtime-effect/channel/presence/NoMatch")

/** The fields of a meta decoded (`NoMatch` when they do not match). */
export type Decode = (fields: { readonly [field: string]: unknown }) => unknown

/** A view's conversions of the raw presence into the public shape, metas decoded. */
export interface Conversion<M> {
  /** The state, keys whose metas all fail to decode left out. */
  readonly snapshot: (state: Sync.PresenceState) => ReadonlyMap<string, ReadonlyArray<M>>
  /** An event, metas that fail to decode left out. */
  readonly event: (event: Sync.PresenceEvent) => Sync.PresenceEvent<M>
}

/**
 * The conversions of a view: metas in the public shape, decoded with `decode` when given (a meta
 * that does not match is left out and `mismatch` is called); events built with `make`.
 */
export const conversion = <M>(
  decode: Decode | undefined,
  make: Sync.Constructors,
  mismatch: () => void
): Conversion<M> => {
  const convertMeta = (meta: Sync.RawMeta): M | typeof NoMatch => {
    const publicMeta = Sync.toPublicMeta(meta)
    if (decode === undefined) return publicMeta as unknown as M
    const { presence_ref, ...fields } = publicMeta
    const decoded = decode(fields)
    return decoded === NoMatch ? NoMatch : { ...(decoded as object), presence_ref } as M
  }
  const convertMetas = (metas: ReadonlyArray<Sync.RawMeta>): Array<M> => {
    const out: Array<M> = []
    for (const meta of metas) {
      const converted = convertMeta(meta)
      if (converted !== NoMatch) out.push(converted)
      else mismatch()
    }
    return out
  }
  return {
    snapshot: (state) => {
      const out = new Map<string, ReadonlyArray<M>>()
      for (const [key, metas] of state) {
        const converted = convertMetas(metas)
        if (converted.length > 0) out.set(key, converted)
      }
      return out
    },
    event: (event) => {
      const current = convertMetas(event.current)
      switch (event._tag) {
        case "Join":
          return make.Join({ key: event.key, current, joined: convertMetas(event.joined) })
        case "Leave":
          return make.Leave({ key: event.key, current, left: convertMetas(event.left) })
        case "Update":
          return make.Update({
            key: event.key,
            current,
            previous: convertMetas(event.previous),
            updated: convertMetas(event.updated)
          })
      }
    }
  }
}

/** What the channel's presence streams get when it leaves: a `Leave` per key present, in order. */
export const leaveAll = (state: Sync.PresenceState, make: Sync.Constructors): Array<Sync.PresenceEvent> => {
  const events: Array<Sync.PresenceEvent> = []
  for (const [key, metas] of state) events.push(make.Leave({ key, current: [], left: metas }))
  return events
}
