/**
 * A channel's presence, typed: the view `channel.presence(schema)` returns, over the channel's raw
 * presence (its synced state, and a stream of its states and diffs).
 *
 * @internal
 */
import type * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Presence from "../../Presence.js"
import type * as Channel from "../../RealtimeChannel.js"
import { InvalidArgument } from "../../RealtimeError.js"
import * as DescribeIssue from "../describe.js"
import { safeDecoder } from "./decode.js"

/** What the listeners of a channel's presence get: the events of a diff or state, or the new state. */
export type Item = ReadonlyArray<Presence.PresenceEvent> | Presence.PresenceState

/** What a view needs from its channel. */
export interface Source {
  /** The state now. */
  readonly state: () => Presence.PresenceState
  /** Every item from now on. */
  readonly items: Stream.Stream<Item>
  /** The state now, then every item (the first seeded as the stream starts). */
  readonly fromNow: Stream.Stream<Item>
  /** The channel's `track`. */
  readonly track: Channel.RealtimeChannel["track"]
  /** A meta did not match the view's schema (counted). */
  readonly mismatch: () => void
}

/** How many are present: distinct keys, and metas. */
export const occupancyOf = (state: Presence.PresenceState): Channel.Occupancy => {
  let connections = 0
  for (const metas of state.values()) connections += metas.length
  return { keys: state.size, connections }
}

/** The view of a channel's presence, metas decoded with `schema` (those that do not match left out). */
export const makeView = (source: Source, schema: Schema.Codec<any, any> | undefined): Channel.PresenceView<any> => {
  const decode = schema === undefined ? undefined : safeDecoder(schema)
  const convertMeta = (meta: Presence.RawMeta): Presence.PresenceMeta<any> | undefined => {
    const publicMeta = Presence.toPublicMeta(meta)
    if (decode === undefined) return publicMeta
    const { presence_ref, ...fields } = publicMeta
    const decoded = decode(fields)
    return Result.isSuccess(decoded) ? { ...decoded.success, presence_ref } : undefined
  }
  const convertMetas = (metas: ReadonlyArray<Presence.RawMeta>) => {
    const out: Array<Presence.PresenceMeta<any>> = []
    for (const meta of metas) {
      const converted = convertMeta(meta)
      if (converted !== undefined) out.push(converted)
      else source.mismatch()
    }
    return out
  }
  const snapshot = (state: Presence.PresenceState): Channel.PresenceSnapshot<any> => {
    const out = new Map<string, ReadonlyArray<Presence.PresenceMeta<any>>>()
    for (const [key, metas] of state) {
      const converted = convertMetas(metas)
      if (converted.length > 0) out.set(key, converted)
    }
    return out
  }
  const convertEvent = (event: Presence.PresenceEvent): Channel.PresenceChange<any> => {
    const current = convertMetas(event.current)
    switch (event._tag) {
      case "Join":
        return Presence.PresenceEvent.Join({ key: event.key, current, joined: convertMetas(event.joined) })
      case "Leave":
        return Presence.PresenceEvent.Leave({ key: event.key, current, left: convertMetas(event.left) })
      case "Update":
        return Presence.PresenceEvent.Update({
          key: event.key,
          current,
          previous: convertMetas(event.previous),
          updated: convertMetas(event.updated)
        })
    }
  }
  // the current state, then every new one: seeded as the listener registers, so that a state that
  // arrives while the consumer handles the first is not missed
  const states = source.fromNow.pipe(Stream.filter((item): item is Presence.PresenceState => item instanceof Map))
  const encode = schema === undefined ? undefined : Schema.encodeUnknownEffect(schema)
  return {
    occupancy: Effect.sync(() => occupancyOf(source.state())),
    occupancyChanges: states.pipe(
      Stream.map(occupancyOf),
      Stream.changesWith((a, b) => a.keys === b.keys && a.connections === b.connections)
    ),
    track: (meta, options) =>
      encode === undefined ? source.track(meta, options) : encode(meta).pipe(
        Effect.mapError((error) =>
          new InvalidArgument({
            detail: `track: the presence meta does not match its schema: ${DescribeIssue.describeIssue(error.issue)}`
          })
        ),
        Effect.flatMap((encoded) => source.track(encoded as object, options))
      ),
    state: Effect.sync(() => snapshot(source.state())),
    changes: Stream.map(states, snapshot),
    // every item gives at least one event (a state a Sync, a diff its non-empty events)
    events: Stream.mapArray(source.items, (items) => {
      const out: Array<Channel.PresenceChange<any>> = []
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!
        if (item instanceof Map) out.push({ _tag: "Sync", state: snapshot(item as Presence.PresenceState) })
        else for (const event of item as ReadonlyArray<Presence.PresenceEvent>) out.push(convertEvent(event))
      }
      return out as unknown as Arr.NonEmptyReadonlyArray<Channel.PresenceChange<any>>
    })
  }
}
